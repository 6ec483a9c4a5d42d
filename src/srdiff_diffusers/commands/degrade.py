# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff degrade`: reproducible LR test sets from HR images (`srdiff evaluate --lr-dir` scores them)."""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image

from ..image_processor import SRDiffImageProcessor
from ..io import open_image, save_png
from ..seeds import image_seed
from ..loading import IMAGE_SUFFIXES


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hr-dir", required=True, help="A folder of HR images (sub-folders are searched too).")
    parser.add_argument("-o", "--output-dir", required=True, help="Where the LR images go (same relative names, PNG).")
    parser.add_argument(
        "--degradation", choices=("realistic", "mild", "bicubic"), default="realistic",
        help="realistic (the default): Real-ESRGAN's second-order blur, resize, noise and JPEG; mild: one order of "
        "slight blur, noise (sigma 2-8) and JPEG (50-80), as phone and web photos; bicubic: MATLAB bicubic.",
    )  # fmt: skip
    parser.add_argument("--degradation-config", default=None, help="A JSON file overriding the realistic ranges.")
    parser.add_argument("--scale", type=int, default=4, help="Downscaling factor (default: 4).")
    parser.add_argument("--seed", type=int, default=0, help="Seed; each file's degradation is drawn from it and its name.")
    parser.add_argument("--overwrite", action="store_true", help="Replace existing LR files.")


def degrade_image(hr: PIL.Image.Image, scale: int, degradation: str, rng: np.random.Generator, config=None):
    """The LR image (8-bit RGB, HR size // scale) of one HR image; the HR is cropped to a multiple of the scale."""
    from ..degradations import degrade_uint8
    from ..matlab_resize import imresize

    processor = SRDiffImageProcessor
    array = processor.to_rgb8_array(hr)
    height, width = array.shape[0] - array.shape[0] % scale, array.shape[1] - array.shape[1] % scale
    if height < scale or width < scale:
        raise ValueError(f"an image of {hr.width}x{hr.height} has no LR pixel at scale {scale}")
    hr8 = processor.numpy_to_pt(array[None, :height, :width])[0]
    if degradation == "bicubic":
        lr8 = imresize(hr8, scale=1 / scale)  # uint8 in, uint8 out, as the benchmark sets were made
    else:
        lr8 = degrade_uint8(hr8, scale, rng, config)
    return processor.numpy_to_pil(processor.pt_to_numpy(lr8[None])[0])


def run(args: argparse.Namespace) -> int:
    from ..degradations import DEGRADATION_PRESETS, DegradationConfig

    hr_dir, out_dir = Path(args.hr_dir), Path(args.output_dir)
    if not hr_dir.is_dir():
        raise FileNotFoundError(f"--hr-dir {hr_dir}: no such folder")
    if args.scale < 2:
        raise ValueError(f"--scale must be an integer >= 2, got {args.scale}")
    if args.degradation_config and args.degradation != "realistic":
        raise ValueError("--degradation-config sets the ranges of --degradation realistic")
    if args.degradation_config:
        config = DegradationConfig.from_json(args.degradation_config)
    else:
        config = DEGRADATION_PRESETS.get(args.degradation, DegradationConfig)()
    files = sorted(p for p in hr_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--hr-dir {hr_dir} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    if out_dir.resolve() == hr_dir.resolve():
        raise ValueError("--output-dir is --hr-dir: the LR images would replace the HR ones; choose another folder")
    targets = [out_dir / p.relative_to(hr_dir).with_suffix(".png") for p in files]
    existing = [t for t in targets if t.exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{existing[0]} exists ({len(existing)} of {len(targets)} outputs do); pass --overwrite")
    images = [open_image(p) for p in files]  # every file is read before anything is written
    for path, image, target in zip(files, images, targets):
        relative = path.relative_to(hr_dir).as_posix()
        rng = np.random.default_rng(image_seed(args.seed, relative))
        save_png(degrade_image(image, args.scale, args.degradation, rng, config), target)
    print(f"Wrote {len(targets)} x{args.scale} {args.degradation} LR images to {out_dir}")
    return 0
