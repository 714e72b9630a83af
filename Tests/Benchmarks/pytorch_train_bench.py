#!/usr/bin/env python3
"""PyTorch reference figures for PruneMesh's CNN on Fashion-MNIST (side-by-side comparison).

The LEAF CNN adapted to 28x28x1: conv 5x5 same 32 -> ReLU -> maxpool 2 -> conv 5x5 same 64 -> ReLU
-> maxpool 2 -> flatten -> dense 2048 -> ReLU -> dense 10 (6,497,162 parameters).
Data: the same IDX .gz files PruneMesh reads, normalised the same way: (x/255 - mean) / std with
mean and std over the training set's pixels.

Timing mode (default): --steps N training steps of batch 64 (SGD lr 0.01 momentum 0.9) timed after
a warm-up, then inference at batch 256 and batch 1; prints one JSON line.
Accuracy mode: --epochs E trains E epochs over the shuffled training set and adds test accuracy.

    python3 Tests/Benchmarks/pytorch_train_bench.py --threads 1 --steps 200
    python3 Tests/Benchmarks/pytorch_train_bench.py --threads 2 --epochs 2
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Reads an IDX file (plain or gzip) with the same strict checks as PruneMesh's reader."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        sys.exit(f"{path}: bad IDX magic")
    if raw[2] != 0x08:
        sys.exit(f"{path}: IDX type 0x{raw[2]:02X} is not supported (need 0x08 unsigned byte)")
    ndims = raw[3]
    header = 4 + 4 * ndims
    if ndims < 1 or len(raw) < header:
        sys.exit(f"{path}: bad IDX dimension count {ndims}")
    dims = struct.unpack(">" + "I" * ndims, raw[4:header])
    if len(raw) != header + int(np.prod(dims)):
        sys.exit(f"{path}: size {len(raw)} != header {header} + data {int(np.prod(dims))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def find(directory, stem):
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            path = os.path.join(directory, name + suffix)
            if os.path.exists(path):
                return path
    sys.exit(f"{directory}: missing {stem}[.gz]; apt-get install dataset-fashion-mnist or pass --data DIR")


def load(directory):
    tr_x = read_idx(find(directory, "train-images-idx3-ubyte"))
    tr_y = read_idx(find(directory, "train-labels-idx1-ubyte"))
    te_x = read_idx(find(directory, "t10k-images-idx3-ubyte"))
    te_y = read_idx(find(directory, "t10k-labels-idx1-ubyte"))
    scaled = tr_x.astype(np.float64) / 255.0
    mean, std = float(scaled.mean()), float(scaled.std())

    def tensor(x):
        x = (x.astype(np.float32) / 255.0 - np.float32(mean)) / np.float32(std)
        return torch.from_numpy(np.ascontiguousarray(x[:, None, :, :]))

    return (tensor(tr_x), torch.from_numpy(tr_y.astype(np.int64)),
            tensor(te_x), torch.from_numpy(te_y.astype(np.int64)), mean, std)


class LeafCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(7 * 7 * 64, 2048), nn.ReLU(), nn.Linear(2048, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="directory with the four IDX files (plain or .gz)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--steps", type=int, default=200, help="timed training steps (after warm-up)")
    p.add_argument("--warmup", type=int, default=20, help="untimed training steps first")
    p.add_argument("--epochs", type=int, default=0, help="if > 0: train this many epochs and report test accuracy")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    generator = torch.Generator().manual_seed(a.seed)
    tr_x, tr_y, te_x, te_y, mean, std = load(a.data)
    model = LeafCNN(classes=int(tr_y.max()) + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    result = {"threads": a.threads, "batch": a.batch, "torch_version": torch.__version__,
              "params": sum(t.numel() for t in model.parameters()), "pixel_mean": mean, "pixel_std": std}

    model.train()
    order = torch.randperm(len(tr_x), generator=generator)
    n = len(tr_x)

    def batch_at(k):
        idx = order[(k * a.batch) % (n - a.batch + 1):][:a.batch]
        return tr_x[idx], tr_y[idx]

    for k in range(a.warmup):
        step(*batch_at(k))
    # Time steps in blocks of 20 and report the median block, so a burst of load elsewhere on the
    # machine skews one block rather than the figure.
    blocks = []
    done = 0
    while done < a.steps:
        m = min(20, a.steps - done)
        t0 = time.perf_counter()
        for k in range(m):
            step(*batch_at(a.warmup + done + k))
        blocks.append(m * a.batch / (time.perf_counter() - t0))
        done += m
    result["steps"] = a.steps
    result["train_samples_per_second"] = round(statistics.median(blocks), 1)
    result["train_samples_per_second_mean"] = round(statistics.mean(blocks), 1)

    model.eval()
    with torch.no_grad():
        xb = te_x[:256]
        model(xb)
        rates = []
        for _ in range(10):
            t0 = time.perf_counter()
            model(xb)
            rates.append(256 / (time.perf_counter() - t0))
        result["infer_batch256_samples_per_second"] = round(statistics.median(rates), 1)
        x1 = te_x[:1]
        for _ in range(20):
            model(x1)
        lat = []
        for i in range(200):
            t0 = time.perf_counter()
            model(te_x[i:i + 1])
            lat.append((time.perf_counter() - t0) * 1000)
        result["infer_batch1_ms"] = round(statistics.median(lat), 3)

    if a.epochs > 0:
        torch.manual_seed(a.seed)
        model = LeafCNN(classes=int(tr_y.max()) + 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        t0 = time.perf_counter()
        per_epoch = []
        for epoch in range(a.epochs):
            model.train()
            perm = torch.randperm(n, generator=generator)
            for i in range(0, n, a.batch):
                idx = perm[i:i + a.batch]
                step(tr_x[idx], tr_y[idx])
            per_epoch.append(round(accuracy(model, te_x, te_y), 4))
        result["epochs"] = a.epochs
        result["test_accuracy_per_epoch"] = per_epoch
        result["test_accuracy"] = per_epoch[-1]
        result["epochs_seconds"] = round(time.perf_counter() - t0, 1)

    print(json.dumps(result))


if __name__ == "__main__":
    main()
