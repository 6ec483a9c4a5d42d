# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
PSNR / SSIM / LR-PSNR / diversity sigma of one model against the sampling temperature and the number of DDIM steps,
on one test set, next to bicubic: the measurements behind the defaults a model stores (docs/sampling_defaults.md).
Sample k of every image uses `torch.Generator().manual_seed(seed + k)`, the package's seed rule.

    python benchmarks/sampling_table.py --model bicubic --hr-dir ../shared/datasets/Set14/HR \
        --lr-dir ../shared/datasets/Set14/LR_bicubic/X4 --temperatures 0,0.25,0.5,0.75,1 --steps 10 \
        --json results/set14_clean.json
"""

import argparse
import os
import sys

import numpy as np
import torch
from tqdm.auto import tqdm

from srdiff_diffusers.evaluation.metrics import diversity_sigma_torch, lr_psnr_torch, psnr_torch, ssim_torch
from srdiff_diffusers.matlab_resize import imresize
from srdiff_diffusers.image_processor import SRDiffImageProcessor
from srdiff_diffusers.seeds import sample_generators

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def scores(sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor, scale: int) -> dict:
    """The paper's metrics (RGB, whole image, uint8) of (K, 3, H, W) uint8 samples of one image."""
    hr_k, lr_k = hr.expand_as(sr), lr.expand(sr.shape[0], *lr.shape[1:])
    row = {
        "psnr": psnr_torch(sr, hr_k).mean().item(),
        "ssim": ssim_torch(sr, hr_k).mean().item(),
        "lr_psnr": lr_psnr_torch(sr, lr_k, scale).mean().item(),
    }
    if sr.shape[0] > 1:
        row["sigma"] = diversity_sigma_torch(sr).item()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A shipped model name, folder or Hub id.")
    _common.add_pair_arguments(parser)
    parser.add_argument("--temperatures", default="0,0.25,0.5,0.75,1", help="Comma-separated temperatures.")
    parser.add_argument("--steps", default="10", help="Comma-separated DDIM step counts.")
    parser.add_argument("--num-samples", type=int, default=2, help="Samples per image (sigma needs 2).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = parser.parse_args()
    temperatures = [float(value) for value in args.temperatures.split(",")]
    step_counts = [int(value) for value in args.steps.split(",")]
    pairs = _common.pair_paths(parser, args)

    pipe = _common.pair_pipeline(parser, args, "ddim")
    processor = SRDiffImageProcessor
    settings = [(steps, temperature) for steps in step_counts for temperature in temperatures]
    results = {"bicubic": [], **{setting: [] for setting in settings}}
    for lr_path, hr_path in tqdm(pairs, desc="images", unit="image"):
        lr8, hr8 = _common.load_pair(lr_path, hr_path, args.scale)
        lr, hr = processor.numpy_to_pt(lr8), processor.numpy_to_pt(hr8)
        bicubic = processor.to_uint8(imresize(processor.uint8_to_float(lr), scale=args.scale))
        results["bicubic"].append(scores(bicubic, hr, lr, args.scale))
        for steps, temperature in settings:
            out = pipe(
                processor.uint8_to_float(lr), num_inference_steps=steps, temperature=temperature,
                num_images_per_prompt=args.num_samples, generator=sample_generators(args.seed, args.num_samples),
                output_type="pt",
            ).images  # fmt: skip
            results[(steps, temperature)].append(scores(processor.to_uint8(out), hr, lr, args.scale))

    rows = []
    for key, per_image in results.items():
        name = "bicubic" if key == "bicubic" else f"DDIM {key[0]}, temperature {key[1]:g}"
        row = {"setting": name}
        for metric in ("psnr", "ssim", "lr_psnr", "sigma"):
            values = [r[metric] for r in per_image if metric in r]
            row[metric] = round(float(np.mean(values)), 4 if metric == "ssim" else 2) if values else "-"
        rows.append(row)
    _common.print_table(rows, ["setting", "psnr", "ssim", "lr_psnr", "sigma"], title=f"{args.model} on {args.lr_dir}")
    if args.json:
        _common.write_json(args.json, {"model": args.model, "lr_dir": str(args.lr_dir), "rows": rows})


if __name__ == "__main__":
    main()
