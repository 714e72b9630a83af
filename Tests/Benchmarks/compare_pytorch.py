#!/usr/bin/env python3
"""PruneMesh against PyTorch on the same model, batch and thread count, side by side in one run.

Alternates `prunemesh bench train/infer` (full model only) with pytorch_train_bench.py for
--rounds rounds, so both see the same machine load, and prints the medians and the ratios.

    swift build -c release --product prunemesh
    python3 Tests/Benchmarks/compare_pytorch.py --threads 2 --rounds 3
    python3 Tests/Benchmarks/compare_pytorch.py --threads 1 --rounds 3 --json

Needs PyTorch (pip install torch==2.13.0+cpu numpy); without it, says so and exits 2.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternations of the two (medians are reported)")
    p.add_argument("--seconds", type=float, default=8, help="seconds per PruneMesh measurement")
    p.add_argument("--steps", type=int, default=120, help="timed PyTorch training steps per round")
    p.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "prunemesh"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0+cpu numpy", file=sys.stderr)
        sys.exit(2)
    if not os.path.exists(a.binary):
        sys.exit(f"{a.binary} not found: swift build -c release --product prunemesh")

    ours = {"train": [], "infer": [], "latency": []}
    theirs = {"train": [], "infer": [], "latency": []}
    for r in range(a.rounds):
        t = run_json([a.binary, "bench", "train", "--keep", "none", "--threads", str(a.threads),
                      "--seconds", str(a.seconds), "--json"])
        i = run_json([a.binary, "bench", "infer", "--keep", "none", "--threads", str(a.threads),
                      "--seconds", str(a.seconds / 2), "--json"])
        torch_result = run_json([sys.executable, os.path.join(HERE, "pytorch_train_bench.py"),
                                 "--threads", str(a.threads), "--steps", str(a.steps)])
        ours["train"].append(t["train_samples_per_second"])
        ours["infer"].append(i["infer_batch256_samples_per_second"])
        ours["latency"].append(i["infer_batch1_ms"])
        theirs["train"].append(torch_result["train_samples_per_second"])
        theirs["infer"].append(torch_result["infer_batch256_samples_per_second"])
        theirs["latency"].append(torch_result["infer_batch1_ms"])
        print(f"round {r + 1}: prunemesh train {t['train_samples_per_second']:.0f}/s, "
              f"pytorch {torch_result['train_samples_per_second']:.0f}/s", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in ours.items()}
    ref = {k: statistics.median(v) for k, v in theirs.items()}
    result = {
        "threads": a.threads,
        "rounds": a.rounds,
        "torch_version": torch_result.get("torch_version"),
        "prunemesh_train_samples_per_second": round(med["train"], 1),
        "pytorch_train_samples_per_second": round(ref["train"], 1),
        "train_ratio": round(med["train"] / ref["train"], 3),
        "prunemesh_infer_batch256_samples_per_second": round(med["infer"], 1),
        "pytorch_infer_batch256_samples_per_second": round(ref["infer"], 1),
        "infer_ratio": round(med["infer"] / ref["infer"], 3),
        "prunemesh_infer_batch1_ms": round(med["latency"], 3),
        "pytorch_infer_batch1_ms": round(ref["latency"], 3),
        "latency_ratio": round(ref["latency"] / med["latency"], 3),
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{'':28}{'PruneMesh':>12}{'PyTorch':>12}{'ratio':>8}")
        print(f"{'train samples/s (batch 64)':28}{med['train']:12.0f}{ref['train']:12.0f}{result['train_ratio']:8.2f}")
        print(f"{'infer samples/s (batch 256)':28}{med['infer']:12.0f}{ref['infer']:12.0f}{result['infer_ratio']:8.2f}")
        print(f"{'batch-1 latency ms':28}{med['latency']:12.3f}{ref['latency']:12.3f}{result['latency_ratio']:8.2f}")
        print(f"({a.threads} thread(s), medians of {a.rounds} alternating rounds; ratio > 1 means PruneMesh is faster)")


if __name__ == "__main__":
    main()
