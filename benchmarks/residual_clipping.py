# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
How much of the residual HR - up(LR) the clamp of the diffused signal cuts off, for each `residual_rescale`: the
share of clipped values, and the PSNR of a perfect model that predicts the clipped residual exactly (its ceiling).

    python benchmarks/residual_clipping.py --hr-dir ../shared/datasets/Set14/HR \
        --lr-dir data/Set14-real/LR_realistic/X4 --rescales 1,2
"""

import argparse
import math
import os
import sys

from srdiff_diffusers.pipelines.srdiff_formulas import SRDiffFormulas

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_pair_arguments(parser)
    parser.add_argument("--rescales", default="1,2", help="Comma-separated `residual_rescale` values.")
    args = parser.parse_args()
    pairs = _common.pair_paths(parser, args)

    print("\n| rescale | clipped values | clip ceiling (PSNR) |\n|---:|---:|---:|")
    for rescale in (float(r) for r in args.rescales.split(",")):
        formulas = SRDiffFormulas(args.scale, residual_rescale=rescale)
        clipped = squared_error = count = 0
        for lr_path, hr_path in pairs:
            lr, hr = map(_common.to_batch01, _common.load_pair(lr_path, hr_path, args.scale))
            x0 = formulas.residual_from_image(hr, lr)
            # a perfect model: it predicts the clamped residual exactly
            best = (formulas.image_from_residual(x0, lr).clamp(-1, 1) + 1) / 2
            clipped += (x0.abs() == 1).sum().item()
            squared_error += ((best - hr) ** 2).sum().item()
            count += hr.numel()
        print(f"| {rescale:g} | {100 * clipped / count:.2f}% | {10 * math.log10(count / squared_error):.2f} dB |")


if __name__ == "__main__":
    main()
