# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
How much PSNR over bicubic a test set leaves to win: for each image, the best linear filter of the bicubic upscale
(a KxK window of all three channels, plus a constant, per output channel), fitted by least squares *to that image's
own HR*. No model can use the HR, so this oracle is a generous reference for what a restoring estimate gains, and a
posterior sample scores about 3 dB below the posterior mean (docs/training.md).

    python benchmarks/linear_oracle.py --hr-dir ../shared/datasets/Set14/HR \
        --lr-dir data/Set14-real/LR_realistic/X4 --kernel-sizes 7,13
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio
from tqdm.auto import tqdm

from srdiff_diffusers import imresize
from srdiff_diffusers.image_processor import SRDiffImageProcessor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def oracle_filter(upscaled: torch.Tensor, hr: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The least-squares fit of `hr` (1, 3, H, W) by KxK windows of `upscaled` (1, 3, H, W), float64."""
    pad = kernel_size // 2
    windows = F.unfold(F.pad(upscaled, (pad,) * 4, mode="reflect"), kernel_size)[0]  # (3 K K, H W)
    features = torch.cat([windows, torch.ones_like(windows[:1])]).T  # (H W, 3 K K + 1)
    targets = hr.reshape(3, -1).T
    # lstsq, not the normal equations: the windows are strongly correlated and X^T X loses 0.06 dB to its condition
    weights = torch.linalg.lstsq(features, targets, driver="gelsd").solution
    return (features @ weights).T.reshape(hr.shape)


def to_uint8_array(batch01: torch.Tensor) -> np.ndarray:
    return SRDiffImageProcessor.pt_to_numpy(SRDiffImageProcessor.to_uint8(batch01))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_pair_arguments(parser)
    parser.add_argument("--kernel-sizes", default="7,13", help="Comma-separated odd window sides K.")
    args = parser.parse_args()
    kernel_sizes = [int(value) for value in args.kernel_sizes.split(",")]
    if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
        parser.error(f"--kernel-sizes {args.kernel_sizes}: each must be odd and positive.")
    pairs = _common.pair_paths(parser, args)

    psnrs = {"bicubic": [], **{k: [] for k in kernel_sizes}}
    for lr_path, hr_path in tqdm(pairs, desc="Fitting", unit="image"):
        lr, hr = _common.load_pair(lr_path, hr_path, args.scale)
        upscaled = imresize(_common.to_batch01(lr), scale=args.scale).clamp(0, 1).double()
        psnrs["bicubic"].append(peak_signal_noise_ratio(hr, to_uint8_array(upscaled)))
        hr01 = _common.to_batch01(hr, torch.float64)
        for k in kernel_sizes:
            psnrs[k].append(peak_signal_noise_ratio(hr, to_uint8_array(oracle_filter(upscaled, hr01, k))))
    rows = [{"estimate": "bicubic" if key == "bicubic" else f"oracle linear filter, {key}x{key}x3 window",
             "PSNR (dB)": f"{np.mean(values):.2f}"} for key, values in psnrs.items()]  # fmt: skip
    _common.print_table(rows, ["estimate", "PSNR (dB)"], title="PSNR: RGB, uint8, whole image")


if __name__ == "__main__":
    main()
