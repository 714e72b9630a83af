#!/usr/bin/env python3
"""A forged-signature UDP flood against one node of a live mesh (issue 12, item 4).

    python3 Tests/Benchmarks/flood_bench.py --binary .build/debug/prunemesh --nodes 3 \
        --rate 50000 --seconds 10 --source 127.0.0.2

Makes N keys and a genesis with the LAN default timings (probe 1 s, timeout 500 ms, suspicion
4-6x), starts N `--membership-only` nodes on 127.0.0.1 and waits until all list N alive. Then
`prunemesh dev flood` (from --flood-binary) sends --rate datagrams/s for --seconds to node 0 from
--source: well-formed envelopes of this mesh claiming node 1's key (a member, so they pass every
check but the signature), fresh sequence numbers, random signatures. Meanwhile it polls every
node's /status every 100 ms. Reports for node 0 over the flood: CPU % (utime+stime from
/proc/PID/stat), signature verifications/s (`signature_verifications`, or `rejects.badSignature`
for a build without that counter), rejects by reason, kernel receive-buffer drops (/proc/net/udp),
its /status latency; and over all nodes: times a peer listed node 0 as suspect (polls), suspicions
peers started, refutations by node 0.
"""
import argparse, json, os, shutil, subprocess, tempfile, time

from bench_mesh import Mesh, status, wait

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def udp_drops(port):
    """Kernel drops (receive buffer full) of the UDP socket bound to `port`."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port:
                total += int(parts[-1])
    return total

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/debug/prunemesh", help="the nodes' binary")
    ap.add_argument("--flood-binary", default=None, help="binary with `dev flood` (default: --binary)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--source", default="127.0.0.2")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    flooder = os.path.abspath(a.flood_binary or a.binary)
    d = tempfile.mkdtemp(prefix="prunemesh-flood-")
    procs = []
    try:
        mesh = Mesh(binary, d, a.nodes, "flood")
        genesis, ids = mesh.genesis, mesh.ids

        started, target = mesh.start_all(first_up_seconds=60)
        procs += started
        def converged():
            ss = [status(f"{d}/s{i}") for i in range(a.nodes)]
            return all(s is not None and s["members_by_state"].get("alive") == a.nodes for s in ss)
        wait("mesh converged", 60, converged)
        time.sleep(2)  # let join-time gossip settle before the baseline

        port = int(target.rsplit(":", 1)[1])
        before = [status(f"{d}/s{i}") for i in range(a.nodes)]
        cpu0, drops0 = cpu_seconds(procs[0].pid), udp_drops(port)
        t0 = time.monotonic()
        flood = subprocess.Popen([flooder, "dev", "flood", "--target", target, "--genesis", genesis, "--spoof-sender", ids[1],
                                  "--rate", str(a.rate), "--seconds", str(a.seconds), "--source", a.source, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        suspect_polls, status_failures, latencies, polls = 0, 0, [], 0
        while flood.poll() is None:
            polls += 1
            s0 = status(f"{d}/s0", timeout=2.0)
            if s0 is None:
                status_failures += 1
            else:
                latencies.append(s0["_latency_ms"])
            for i in range(1, a.nodes):
                s = status(f"{d}/s{i}")
                if s and any(m["id"] == ids[0] and m["state"] != "alive" for m in s["members"]):
                    suspect_polls += 1
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        out, err = flood.communicate()
        cpu1, drops1 = cpu_seconds(procs[0].pid), udp_drops(port)
        time.sleep(1)  # a suspicion started at the very end still shows up
        after = [status(f"{d}/s{i}") for i in range(a.nodes)]
        sent = json.loads(out) if out.strip() else {"error": err}

        def delta(i, path):
            def get(s):
                for p in path:
                    s = (s or {}).get(p, 0)
                return s or 0
            return get(after[i]) - get(before[i])
        c0 = lambda p: delta(0, ["counters"] + p)
        has_counter = "signature_verifications" in (after[0] or {}).get("counters", {})
        verifies = c0(["signature_verifications"]) if has_counter else c0(["rejects", "badSignature"]) + c0(["messages_in"])
        rejects = {k: v - before[0]["counters"]["rejects"].get(k, 0) for k, v in after[0]["counters"]["rejects"].items()}
        report = {
            "nodes": a.nodes, "rate_requested": a.rate, "seconds": a.seconds, "source": a.source, "flooder": sent,
            "node0_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 1),
            "node0_verifies_per_s": round(verifies / elapsed),
            "node0_verify_count_source": "signature_verifications" if has_counter else "badSignature + messages_in",
            "node0_rejects": {k: v for k, v in rejects.items() if v},
            "node0_kernel_drops": drops1 - drops0,
            "node0_status_polls": polls, "node0_status_failures": status_failures,
            "node0_status_latency_ms_max": round(max(latencies), 1) if latencies else None,
            "polls_where_a_peer_saw_node0_not_alive": suspect_polls,
            "suspicions_started_by_peers": sum(delta(i, ["counters", "suspicions_started"]) for i in range(1, a.nodes)),
            "suspicions_started_by_node0": c0(["suspicions_started"]),
            "refutations_by_node0": c0(["refutations"]),
            "node0_probes_failed": c0(["probes_failed"]),
        }
        if has_counter:
            report["node0_verify_gate"] = after[0]["counters"].get("verify_gate")
        print(json.dumps(report, indent=1))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if a.keep:
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    main()
