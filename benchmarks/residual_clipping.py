# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
How much of the residual HR - up(LR) the clamp of the diffused signal cuts off, for each `residual_rescale`: the
share of clipped values, and the PSNR of a perfect model that predicts the clipped residual exactly (its ceiling).

    python benchmarks/residual_clipping.py --hr-dir ../shared/datasets/Set14/HR \
        --lr-dir data/Set14-real/LR_realistic/X4 --rescales 1,2
"""

import argparse
import math
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from srdiff_diffusers.image_processor import SRDiffImageProcessor
from srdiff_diffusers.pipelines.srdiff_formulas import SRDiffFormulas


def load01(path: Path) -> torch.Tensor:
    with PIL.Image.open(path) as image:
        return SRDiffImageProcessor.uint8_to_float(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hr-dir", type=Path, required=True)
    parser.add_argument("--lr-dir", type=Path, required=True, help="LR images with the HR images' file names.")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--rescales", default="1,2", help="Comma-separated `residual_rescale` values.")
    args = parser.parse_args()

    lr_paths = sorted(args.lr_dir.glob("*.png"))
    if not lr_paths:
        parser.error(f"--lr-dir {args.lr_dir}: no PNG images.")
    print(f"{len(lr_paths)} images of {args.lr_dir}\n\n| rescale | clipped values | clip ceiling (PSNR) |\n|---:|---:|---:|")
    for rescale in (float(r) for r in args.rescales.split(",")):
        formulas = SRDiffFormulas(args.scale, residual_rescale=rescale)
        clipped = squared_error = count = 0
        for lr_path in lr_paths:
            lr = load01(lr_path)[None]
            hr = load01(args.hr_dir / lr_path.name)[None, :, : lr.shape[-2] * args.scale, : lr.shape[-1] * args.scale]
            x0 = formulas.residual_from_image(hr, lr)
            best = (formulas.image_from_residual(x0, lr).clamp(-1, 1) + 1) / 2  # the clamped residual, predicted exactly
            clipped += (x0.abs() == 1).sum().item()
            squared_error += ((best - hr) ** 2).sum().item()
            count += hr.numel()
        print(f"| {rescale:g} | {100 * clipped / count:.2f}% | {10 * math.log10(count / squared_error):.2f} dB |")


if __name__ == "__main__":
    main()
