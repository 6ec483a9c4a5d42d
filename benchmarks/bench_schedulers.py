"""Steps against quality and time for SRDiff's samplers: DDPM (the paper's 100 steps) vs DDIM, DPM-Solver++ and UniPC
at few steps ("trailing" spacing, predicted x0 clipped, see `SRDiffPipeline.fast_scheduler`).

For each image (a center crop of an HR image and its x-scale LR image) and each `scheduler:steps` config it reports
PSNR against HR, LR-PSNR against the LR input (both in the paper's RGB convention) and PSNR against the 100-step DDPM
output for the same seed, plus the time per image. Example:

    python benchmarks/bench_schedulers.py --model path/to/srdiff-model \\
        --hr-dir ../shared/datasets/Set14/HR --lr-dir ../shared/datasets/Set14/LR_bicubic/X4 \\
        --max-images 5 --crop 128 --json schedulers.json

`--random-tiny` runs it on a random tiny model instead of `--model`, only to check that it works.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

DEFAULT_CONFIGS = [
    "ddpm:100", "ddpm:25",
    "ddim:10", "ddim:20", "ddim:25",
    "dpmsolver++:10", "dpmsolver++:20", "dpmsolver++:25",
    "unipc:10", "unipc:20", "unipc:25",
]  # fmt: skip
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def load_pipeline(args):
    from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, SRDiffUNet2DModel

    if args.random_tiny:
        torch.manual_seed(0)
        encoder = RRDBEncoder(num_features=8, num_blocks=2, upscale_factor=4)
        unet = SRDiffUNet2DModel(block_out_channels=(8, 16, 16, 32), condition_channels=8, upscale_factor=4)
        pipe = SRDiffPipeline(unet=unet.eval(), encoder=encoder.eval())
    else:
        pipe = SRDiffPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(args.device)


def set_scheduler(pipe, base_config, name: str) -> None:
    from diffusers import DDPMScheduler

    pipe.scheduler = DDPMScheduler.from_config(base_config) if name == "ddpm" else pipe.fast_scheduler(name)


def parse_configs(items):
    configs = []
    for item in items:
        name, _, steps = item.partition(":")
        if name not in ("ddpm", "ddim", "dpmsolver++", "unipc") or not steps.isdigit() or int(steps) < 1:
            raise SystemExit(f"bad config {item!r}: use scheduler:steps with ddpm, ddim, dpmsolver++ or unipc")
        configs.append((name, int(steps)))
    if ("ddpm", 100) not in configs:
        configs.insert(0, ("ddpm", 100))  # the reference
    return configs


def main() -> int:
    from srdiff_diffusers.evaluation.loop import prepare_pair
    from srdiff_diffusers.evaluation.metrics import lr_psnr, psnr

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="A saved SRDiffPipeline folder.")
    source.add_argument("--random-tiny", action="store_true", help="A random tiny model (checks the script only).")
    parser.add_argument("--hr-dir", required=True, help="Folder of HR images.")
    parser.add_argument(
        "--lr-dir", default=None, help="Matching LR images (same names); default: MATLAB bicubic of HR."
    )
    parser.add_argument("--max-images", type=int, default=5)
    parser.add_argument("--crop", type=int, default=128, help="Center crop of each HR image, in HR pixels.")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="scheduler:steps items.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    parser.add_argument("--json", default=None, help="Write per-image and mean results here (atomically).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = parse_configs(args.configs)

    hr_dir = Path(args.hr_dir)
    if not hr_dir.is_dir():
        raise SystemExit(f"--hr-dir {hr_dir} is not a folder")
    files = sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.max_images]
    if not files:
        raise SystemExit(f"no images in {hr_dir}")
    pipe = load_pipeline(args)
    base_config = dict(pipe.scheduler.config)
    scale = pipe.upscale_factor

    rows = []
    for path in files:
        lr_path = Path(args.lr_dir) / path.name if args.lr_dir else None
        hr, lr = prepare_pair(
            np.asarray(PIL.Image.open(path).convert("RGB")),
            None if lr_path is None else np.asarray(PIL.Image.open(lr_path).convert("RGB")),
            scale=scale,
            crop=args.crop,
            name=path.name,
        )
        reference = None
        for name, steps in configs:
            set_scheduler(pipe, base_config, name)
            start = time.perf_counter()
            sr = pipe(
                PIL.Image.fromarray(lr), num_inference_steps=steps, generator=torch.Generator().manual_seed(args.seed)
            ).images[0]
            seconds = time.perf_counter() - start
            sr = np.asarray(sr)
            if (name, steps) == ("ddpm", 100):
                reference = sr
            row = {
                "image": path.name,
                "scheduler": name,
                "steps": steps,
                "seconds": round(seconds, 3),
                "psnr": psnr(sr, hr),
                "lr_psnr": lr_psnr(sr, lr, scale),
                "psnr_vs_ddpm100": math.inf if reference is sr else psnr(sr, reference),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    summary = []
    for name, steps in configs:
        mine = [r for r in rows if (r["scheduler"], r["steps"]) == (name, steps)]

        def mean(key, mine=mine):
            return statistics.fmean(min(r[key], 100.0) for r in mine)  # inf (identical images) counts as 100 dB

        summary.append(
            {
                "scheduler": name,
                "steps": steps,
                "psnr": round(mean("psnr"), 2),
                "lr_psnr": round(mean("lr_psnr"), 2),
                "psnr_vs_ddpm100": round(mean("psnr_vs_ddpm100"), 2),
                "seconds_per_image": round(mean("seconds"), 2),
            }
        )
    print(f"{len(files)} images, center crop {args.crop} HR px, x{scale}, seed {args.seed}, device {args.device}")
    print("| scheduler | steps | PSNR | LR-PSNR | PSNR vs DDPM-100 | s / image |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in summary:
        versus = "(reference)" if (s["scheduler"], s["steps"]) == ("ddpm", 100) else s["psnr_vs_ddpm100"]
        print(
            f"| {s['scheduler']} | {s['steps']} | {s['psnr']} | {s['lr_psnr']} | {versus} | {s['seconds_per_image']} |"
        )
    if args.json:
        temp = args.json + ".tmp"
        with open(temp, "w") as file:
            json.dump({"config": vars(args), "summary": summary, "images": rows}, file, indent=2, default=str)
        os.replace(temp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
