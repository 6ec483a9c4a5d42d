# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Cost of `--degradation realistic`: degrading one training batch against one optimizer step of each stage.

    python benchmarks/bench_degradation.py --clock cpu        # on a busy machine: one thread, CPU time
    python benchmarks/bench_degradation.py --threads 2        # both cores, wall clock

Target (issue 16): degrading a batch costs under 20% of the step it feeds.
"""

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from _common import set_clock, time_call
from srdiff_diffusers import RRDBEncoder, SRDiffUNet2DModel
from srdiff_diffusers.degradations import degrade
from srdiff_diffusers.pipelines.pipeline_srdiff import default_scheduler


def rrdb_step(batch: int, patch: int):
    encoder = RRDBEncoder(num_features=32, num_blocks=8)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-4)
    lr, hr = torch.rand(batch, 3, patch // 4, patch // 4) * 2 - 1, torch.rand(batch, 3, patch, patch) * 2 - 1

    def step():
        loss = F.l1_loss(encoder(lr, return_dict=False)[0], hr)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def diffusion_step(batch: int, patch: int):
    encoder = RRDBEncoder(num_features=32, num_blocks=8).eval().requires_grad_(False)
    unet = SRDiffUNet2DModel(block_out_channels=(32, 64, 64, 128), condition_channels=encoder.condition_channels)
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-4)
    scheduler = default_scheduler()
    lr, x0 = torch.rand(batch, 3, patch // 4, patch // 4) * 2 - 1, torch.rand(batch, 3, patch, patch) * 2 - 1

    def step():
        with torch.no_grad():
            condition = encoder.encode(lr)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 100, (batch,))
        loss = F.l1_loss(unet(scheduler.add_noise(x0, noise, t), t, condition).sample, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def degrade_batch(batch: int, patch: int):
    rng = np.random.default_rng(0)
    hr = [torch.rand(3, patch, patch) for _ in range(batch)]
    counter = iter(range(10**9))

    def run():
        k = next(counter)
        for index, image in enumerate(hr):
            degrade(image, 4, np.random.default_rng([0, k, index]))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    set_clock(args.clock)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cpu")

    def median(fn):
        fn()  # warm-up
        return statistics.median(time_call(fn, device) for _ in range(args.repeats))

    print(f"batch {args.batch}, {args.threads} thread(s), {args.clock} clock, median of {args.repeats}\n")
    print("| stage | HR patch | one step | degrading the batch | share |")
    print("| --- | --- | --- | --- | --- |")
    for stage, make_step, patch in (("rrdb", rrdb_step, 96), ("rrdb", rrdb_step, 128), ("diffusion", diffusion_step, 96)):
        step = median(make_step(args.batch, patch))
        cost = median(degrade_batch(args.batch, patch))
        print(f"| {stage} | {patch} | {step:.3f} s | {cost:.3f} s | {100 * cost / step:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
