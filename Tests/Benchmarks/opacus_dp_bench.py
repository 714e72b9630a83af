#!/usr/bin/env python3
"""Opacus DP-SGD throughput beside PruneMesh's `train --dp`, same model, batch and threads.

Model (PruneMesh spec 28x28x1:conv5x16,relu,pool2,conv5x32,relu,pool2,dense64,relu,dense10,
114,314 parameters): conv 5x5 same 16 -> ReLU -> maxpool 2 -> conv 5x5 same 32 -> ReLU ->
maxpool 2 -> flatten -> dense 64 -> ReLU -> dense 10. Inputs (x/255 - 0.5)/0.5 as `train --dp`.
Poisson sampling at q = batch/60000, clip 1, noise multiplier 1, SGD momentum 0.9.

Times --steps optimiser steps after a warm-up in three modes: plain PyTorch (no DP), Opacus
ghost clipping (grad_sample_mode="ghost", its fastest), and Opacus per-sample hooks
(grad_sample_mode="hooks"), and prints one JSON line with samples/s for each. Then run the
PruneMesh side with the same batch and threads, e.g.:

    pip install torch==2.13.0+cpu opacus
    python3 Tests/Benchmarks/opacus_dp_bench.py --threads 2 --batch 256 --steps 100
    M=28x28x1:conv5x16,relu,pool2,conv5x32,relu,pool2,dense64,relu,dense10
    .build/release/prunemesh train --dp --noise-multiplier 1 --clip 1 --model $M --batch 256 --threads 2 --epochs 1 --json
    .build/release/prunemesh train --model $M --batch 256 --threads 2 --epochs 1 --json
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory, prefix):
    def find(name):
        for suffix in ("", ".gz"):
            p = os.path.join(directory, name + suffix)
            if os.path.exists(p):
                return p
        raise SystemExit(f"{name} not found in {directory}")
    x = read_idx(find(f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy((x - 0.5) / 0.5).unsqueeze(1), torch.from_numpy(y)


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


def run(mode, x, y, batch, steps, warmup):
    torch.manual_seed(0)
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    dataset = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True)
    if mode != "plain":
        from opacus import PrivacyEngine
        engine = PrivacyEngine()
        made = engine.make_private(module=net, optimizer=optimizer, data_loader=loader, criterion=criterion,
                                   noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=True,
                                   grad_sample_mode=mode)
        if mode == "ghost":
            net, optimizer, criterion, loader = made
        else:
            net, optimizer, loader = made
    samples, done, start = 0, 0, None
    while done < warmup + steps:
        for xb, yb in loader:
            if done == warmup:
                start, samples = time.perf_counter(), 0
            optimizer.zero_grad()
            loss = criterion(net(xb), yb)
            loss.backward()
            optimizer.step()
            samples += len(yb)
            done += 1
            if done >= warmup + steps:
                break
    return samples / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--modes", default="plain,ghost,hooks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load(args.data, "train")
    result = {"batch": args.batch, "threads": args.threads, "steps": args.steps, "torch": torch.__version__}
    for mode in args.modes.split(","):
        result[f"{mode}_samples_per_second"] = run(mode, x, y, args.batch, args.steps, args.warmup)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
