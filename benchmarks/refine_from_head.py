# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Does the noise predictor improve on the RRDB head when it only refines it? Each LR image's head output is diffused to
t-bar = strength * T and denoised (`pipe(lr, init_image=head, strength=s)`, the refinement of docs/manipulation.md);
prints the mean PSNR (RGB, uint8, whole image: `srdiff evaluate`'s convention) of the head and of each strength.

    python benchmarks/refine_from_head.py --model ../runs/export-realistic-3000 \
        --hr-dir ../shared/datasets/Set14/HR --lr-dir data/Set14-real/LR_realistic/X4 --strengths 0.1,0.3,0.5
"""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from skimage.metrics import peak_signal_noise_ratio
from tqdm.auto import tqdm

from srdiff_diffusers import SRDiffPipeline, resolve_model
from srdiff_diffusers.evaluation.loop import super_resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A model name, folder or Hub id.")
    parser.add_argument("--hr-dir", type=Path, required=True)
    parser.add_argument("--lr-dir", type=Path, required=True, help="LR images with the HR images' file names.")
    parser.add_argument("--strengths", default="0.1,0.3,0.5", help="Comma-separated strengths in (0, 1).")
    parser.add_argument("--scheduler", default="ddim", help="Sampler of `pipe.fast_scheduler`, or ddpm.")
    parser.add_argument("--steps", type=int, default=10, help="Steps of the full schedule; a strength runs its share.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    strengths = [float(value) for value in args.strengths.split(",")]
    lr_paths = sorted(args.lr_dir.glob("*.png"))
    if not lr_paths:
        parser.error(f"--lr-dir {args.lr_dir}: no PNG images.")

    pipe = SRDiffPipeline.from_pretrained(resolve_model(args.model))
    if args.scheduler != "ddpm":
        pipe.scheduler = pipe.fast_scheduler(args.scheduler)
    pipe.set_progress_bar_config(disable=True)
    scale = pipe.upscale_factor
    psnrs = {"head": [], **{strength: [] for strength in strengths}}
    for lr_path in tqdm(lr_paths, desc="Refining", unit="image"):
        lr = np.array(PIL.Image.open(lr_path).convert("RGB"))
        hr = np.array(PIL.Image.open(args.hr_dir / lr_path.name).convert("RGB"))[: lr.shape[0] * scale, : lr.shape[1] * scale]
        head = super_resolve("rrdb", lr, scale=scale, pipe=pipe)[0]
        psnrs["head"].append(peak_signal_noise_ratio(hr, head))
        for strength in strengths:
            generator = torch.Generator().manual_seed(args.seed)
            refined = pipe(lr, init_image=head, strength=strength, num_inference_steps=args.steps,
                           generator=generator, output_type="np").images[0]  # fmt: skip
            refined = np.round(np.clip(refined, 0, 1) * 255).astype(np.uint8)
            psnrs[strength].append(peak_signal_noise_ratio(hr, refined))
    print(f"\n{len(lr_paths)} images of {args.lr_dir}, {args.scheduler} {args.steps} steps\n")
    print("| start | PSNR |\n|---|---:|")
    for key, values in psnrs.items():
        print(f"| {'RRDB head' if key == 'head' else f'head, refined at strength {key:g}'} | {np.mean(values):.2f} dB |")


if __name__ == "__main__":
    main()
