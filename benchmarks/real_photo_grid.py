# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Before/after grid on degraded photos: LR | bicubic | each model (one SRDiff sample) | HR, one row per image, each
a crop of the image so that the detail shows.

    python benchmarks/real_photo_grid.py --hr-dir ../shared/datasets/Set14/HR \
        --lr-dir data/Set14-real/LR_realistic/X4 --images img_005,img_008,img_013 \
        --model bicubic --model realistic -o docs/set14_real_grid.png

Without `--hr-dir` (real photos without ground truth, e.g. your own JPEGs), the HR column is left out.
`--temperatures 1,0.7,0.4` shows each model at several sampling temperatures (one column each).
"""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from srdiff_diffusers import SRDiffPipeline, imresize, resolve_model

LABEL_HEIGHT = 18


def labelled(image: PIL.Image.Image, text: str) -> PIL.Image.Image:
    canvas = PIL.Image.new("RGB", (image.width, image.height + LABEL_HEIGHT), "white")
    canvas.paste(image, (0, LABEL_HEIGHT))
    PIL.ImageDraw.Draw(canvas).text((4, 3), text, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr-dir", required=True, help="The LR images (e.g. made by `srdiff degrade`).")
    parser.add_argument("--hr-dir", default=None, help="Their HR images, if any (same file names).")
    parser.add_argument("--images", required=True, help="Comma-separated file stems, one row each.")
    parser.add_argument("--model", action="append", required=True, help="A model name, folder or Hub id; repeat.")
    parser.add_argument("--scheduler", default="ddim", help="Sampler of `pipe.fast_scheduler`, or ddpm.")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", default="1", help="Comma-separated sampling temperatures (default: 1).")
    parser.add_argument("--crop", type=int, default=160, help="HR crop side shown (centred).")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    temperatures = [float(value) for value in args.temperatures.split(",")]

    pipes = {}
    for name in args.model:
        pipe = SRDiffPipeline.from_pretrained(resolve_model(name))
        if args.scheduler != "ddpm":
            pipe.scheduler = pipe.fast_scheduler(args.scheduler)
        pipe.set_progress_bar_config(disable=True)
        pipes[name] = pipe
    rows = []
    for stem in args.images.split(","):
        lr_path = next(Path(args.lr_dir).glob(f"{stem}.*"))
        lr = PIL.Image.open(lr_path).convert("RGB")
        scale = next(iter(pipes.values())).upscale_factor
        size = (lr.width * scale, lr.height * scale)
        lr01 = torch.from_numpy(np.array(lr)).permute(2, 0, 1)[None].float() / 255
        bicubic = imresize(lr01, scale=scale)[0].clamp(0, 1).permute(1, 2, 0).numpy()
        columns = [("LR (nearest)", lr.resize(size, PIL.Image.Resampling.NEAREST)),
                   ("bicubic", PIL.Image.fromarray((bicubic * 255).round().astype(np.uint8)))]  # fmt: skip
        for name, pipe in pipes.items():
            for temperature in temperatures:
                generator = torch.Generator().manual_seed(args.seed)
                sample = pipe(lr, num_inference_steps=args.steps, generator=generator, temperature=temperature)
                label = f"SRDiff {Path(name).name}" + (f", T {temperature:g}" if len(temperatures) > 1 else "")
                columns.append((label, sample.images[0]))
        if args.hr_dir:
            hr = PIL.Image.open(next(Path(args.hr_dir).glob(f"{stem}.*"))).convert("RGB").crop((0, 0, *size))
            columns.append(("HR", hr))
        crop = min(args.crop, size[0], size[1])
        left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
        tiles = [labelled(image.crop((left, top, left + crop, top + crop)).resize((2 * crop, 2 * crop)), text)
                 for text, image in columns]  # fmt: skip
        row = PIL.Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height), "white")
        for index, tile in enumerate(tiles):
            row.paste(tile, (index * tile.width, 0))
        rows.append(row)
        print(f"{stem}: done", flush=True)
    grid = PIL.Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    for index, row in enumerate(rows):
        grid.paste(row, (0, index * row.height))
    grid.save(args.output)
    print(f"Saved {args.output}")


if __name__ == "__main__":
    main()
