# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Does the noise predictor improve on the RRDB head when it only refines it? Each LR image's head output is diffused to
t-bar = strength * T and denoised (`pipe(lr, init_image=head, strength=s)`, the refinement of docs/manipulation.md);
prints the mean PSNR (RGB, uint8, whole image: `srdiff evaluate`'s convention) of the head and of each strength.

    python benchmarks/refine_from_head.py --model ../runs/export-realistic-3000 \
        --hr-dir ../shared/datasets/Set14/HR --lr-dir data/Set14-real/LR_realistic/X4 --strengths 0.1,0.3,0.5
"""

import argparse
import os
import sys

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio
from tqdm.auto import tqdm

from srdiff_diffusers.evaluation.loop import super_resolve
from srdiff_diffusers.image_processor import SRDiffImageProcessor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A model name, folder or Hub id.")
    _common.add_pair_arguments(parser)
    parser.add_argument("--strengths", default="0.1,0.3,0.5", help="Comma-separated strengths in (0, 1).")
    parser.add_argument("--scheduler", default="ddim", help="Sampler of `pipe.fast_scheduler`, or ddpm.")
    parser.add_argument("--steps", type=int, default=10, help="Steps of the full schedule; a strength runs its share.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    strengths = [float(value) for value in args.strengths.split(",")]
    pairs = _common.pair_paths(parser, args)

    pipe = _common.pair_pipeline(parser, args, args.scheduler)
    psnrs = {"head": [], **{strength: [] for strength in strengths}}
    for lr_path, hr_path in tqdm(pairs, desc="Refining", unit="image"):
        lr, hr = _common.load_pair(lr_path, hr_path, args.scale)
        head = super_resolve("rrdb", lr, scale=args.scale, pipe=pipe)[0]
        psnrs["head"].append(peak_signal_noise_ratio(hr, head))
        for strength in strengths:
            generator = torch.Generator().manual_seed(args.seed)
            refined = pipe(lr, init_image=head, strength=strength, num_inference_steps=args.steps,
                           generator=generator, output_type="np").images[0]  # fmt: skip
            psnrs[strength].append(peak_signal_noise_ratio(hr, SRDiffImageProcessor.numpy_to_uint8(refined)))
    rows = [{"start": "RRDB head" if key == "head" else f"head, refined at strength {key:g}",
             "PSNR (dB)": f"{np.mean(values):.2f}"} for key, values in psnrs.items()]  # fmt: skip
    _common.print_table(rows, ["start", "PSNR (dB)"], title=f"{args.scheduler}, {args.steps} steps")


if __name__ == "__main__":
    main()
