#!/usr/bin/env bash
# Fuzzes the wire decoder (envelope decode, receive path, chunk reassembly, importance release
# payloads) with libFuzzer for a bounded time.
#
#   Tests/Fuzz/run-wire-fuzz.sh SECONDS [extra libFuzzer flags…]
#
# Builds Sources/WireFuzz with -sanitize=fuzzer,address and -DFUZZING in its own scratch path
# (.build-fuzz), writes a seed corpus of valid signed datagrams, datagram sequences and payloads
# (WireFuzz --make-corpus), then fuzzes with 512 MB RSS and 64 MB per-allocation limits. The
# growing corpus stays in .build-fuzz/wire-fuzz/corpus, crash reproducers in …/artifacts.
# Replay a reproducer without libFuzzer: swift run WireFuzz FILE.
set -euo pipefail

seconds=${1:?usage: run-wire-fuzz.sh SECONDS [libFuzzer flags]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work=${WIRE_FUZZ_DIR:-$root/.build-fuzz/wire-fuzz}
flags=(--scratch-path .build-fuzz --product WireFuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)

swift build "${flags[@]}"
bin="$(swift build "${flags[@]}" --show-bin-path)/WireFuzz"

mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$bin" --make-corpus "$work/seeds"

export SWIFT_BACKTRACE=enable=no
exec "$bin" "$work/corpus" "$work/seeds" \
    -max_total_time="$seconds" \
    -rss_limit_mb=512 \
    -malloc_limit_mb=64 \
    -max_len=16384 \
    -timeout=10 \
    -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" \
    "$@"
