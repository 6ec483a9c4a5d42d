# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
`srdiff evaluate`: the paper's metrics (PSNR, SSIM, LPIPS, LR-PSNR, sigma) for bicubic, the RRDB encoder's SR head
and SRDiff on a folder of HR images (or a `datasets` data set), written as a report folder:

- `results.md`: one row per method with the paper's columns, then PSNR-Y / SSIM-Y;
- `summary.json`: the same means and the settings (infinite PSNRs as the string "inf");
- `per_image.csv`: one row per method and image;
- `grids/<image>.png`: LR (nearest) | Bicubic | RRDB | SRDiff samples | HR, with a zoomed crop;
- `diversity/<image>.png`: SRDiff samples and their per-pixel standard deviation (with --num-samples >= 2);
- `images/<method>/<image>[_s<k>].png`: the SR images;
- `cache/<method>.jsonl`: per-image results; a rerun with the same settings skips the images already done.
"""

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import PIL.Image
import torch

from ..io import load_image_dataset
from ..io import open_image
from .scale_out import process_state
from ..loading import apply_sampling_settings, load_pipeline
from .sampling_options import add_sampling_arguments, pipeline_errors_as_options
from .speed import add_speed_arguments, apply_speed_arguments, resolve_device, torch_dtype

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MARKER = ".srdiff-evaluate"


def register(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("data (one of --hr-dir or --dataset)")
    source.add_argument("--hr-dir", help="Folder of HR (ground-truth) images.")
    source.add_argument(
        "--lr-dir",
        help="Folder of matching LR images (same file names, or with an 'x<scale>' suffix as in DIV2K). Default: "
        "made from HR with MATLAB bicubic (uint8), as benchmark LR sets are.",
    )
    source.add_argument("--dataset", help="A `datasets` data set (Hub id or local folder) instead of --hr-dir.")
    source.add_argument("--split", default="test", help="Split of --dataset (default: test).")
    source.add_argument("--image-column", default="image", help="HR image column of --dataset (default: image).")
    parser.add_argument(
        "--model",
        help="A shipped model's name (bicubic-1step, bicubic) or a saved SRDiffPipeline folder; without it, only "
        "bicubic is evaluated.",
    )
    parser.add_argument("--scale", type=int, help="SR factor; defaults to the model's and must match it.")
    parser.add_argument(
        "--baselines",
        default="bicubic,rrdb",
        help="Comma-separated baselines among bicubic,rrdb, or 'none' (default: bicubic,rrdb; rrdb needs --model).",
    )
    parser.add_argument("--no-srdiff", action="store_true", help="Evaluate only the baselines, even with --model.")
    add_sampling_arguments(parser, fallback="ddpm")
    parser.add_argument(
        "--num-samples", type=int, default=1, help="SRDiff samples per image; sigma needs 2 or more (default: 1)."
    )
    parser.add_argument(
        "--srdiff-mean",
        action="store_true",
        help="Also report the per-pixel mean of the --num-samples samples (an estimate of the posterior mean: higher "
        "PSNR, less detail); needs --num-samples 2 or more.",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed: sample k of every image is drawn with seed + k (default 0)."
    )
    parser.add_argument("--max-images", type=int, help="Evaluate only the first N images (sorted by name).")
    parser.add_argument(
        "--crop",
        type=int,
        help="Center-crop every HR image to at most NxN first (a multiple of the scale; LR is cropped to match), "
        "for quick runs. Numbers on crops are not comparable to full-image numbers.",
    )
    parser.add_argument("--no-lpips", action="store_true", help="Skip LPIPS (it is also skipped when unavailable).")
    parser.add_argument("--num-grids", type=int, default=5, help="Comparison grids for the first N images (default 5).")
    parser.add_argument("--recompute", action="store_true", help="Ignore cached per-image results.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="Default: cuda when available.")
    add_speed_arguments(parser)
    parser.add_argument("-o", "--output-dir", required=True, help="Report folder (created; reused to resume).")


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------


def list_images(folder: Path, what: str) -> List[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"{what} {folder} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
    stems = [p.stem for p in files]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise ValueError(f"{what} {folder} has several files named {duplicates[0]!r} with different extensions")
    return files


def match_lr(hr_files: List[Path], lr_dir: Path, scale: Optional[int]) -> List[Path]:
    """The LR file of each HR file: the same stem, or the stem with an `x<scale>` suffix (DIV2K's naming)."""
    lr_by_stem = {p.stem: p for p in list_images(lr_dir, "--lr-dir")}
    matched, missing = [], []
    for hr in hr_files:
        candidates = [hr.stem] + ([f"{hr.stem}x{scale}"] if scale else [])
        found = next((lr_by_stem[c] for c in candidates if c in lr_by_stem), None)
        (matched if found else missing).append(found or hr.name)
    if missing:
        raise ValueError(
            f"--lr-dir {lr_dir} has no LR image for {len(missing)} HR image(s), e.g. {missing[0]}; LR files must "
            f"have the HR file's name" + (f" (or name + 'x{scale}')" if scale else "")
        )
    return matched


def check_sizes(
    hr_files: List[Path], hr_sizes: List[Tuple[int, int]], lr_files: List[Path], lr_sizes: List[Tuple[int, int]],
    scale: int,
) -> None:
    """Fails before any work when an LR image is not its HR image's size divided by the scale (sizes: (w, h))."""
    for hr, (hr_width, hr_height), lr, lr_size in zip(hr_files, hr_sizes, lr_files, lr_sizes):
        expected = (hr_width // scale, hr_height // scale)
        if lr_size != expected:
            raise ValueError(
                f"{lr} is {lr_size[0]}x{lr_size[1]} but {hr.name} is {hr_width}x{hr_height}, "
                f"so its x{scale} LR image should be {expected[0]}x{expected[1]}; check --scale and --lr-dir"
            )


def load_dataset_images(args) -> Tuple[list, List[str]]:
    if importlib.util.find_spec("datasets") is None:
        raise ValueError("--dataset needs the `datasets` package: pip install \"srdiff-diffusers[train]\"")
    try:
        data = load_image_dataset(args.dataset, args.split)
    except Exception as error:  # unreachable Hub, unknown split, ...: one clear line
        raise ValueError(f"could not load --dataset {args.dataset} (split {args.split!r}): {error}") from None
    if args.image_column not in data.column_names:
        raise ValueError(
            f"--image-column {args.image_column!r} is not a column of {args.dataset}; columns: {data.column_names}"
        )
    count = len(data) if args.max_images is None else min(args.max_images, len(data))
    images = [data[index][args.image_column] for index in range(count)]
    for index, image in enumerate(images):
        if not isinstance(image, PIL.Image.Image):
            raise ValueError(
                f"--image-column {args.image_column!r} of {args.dataset} holds {type(image).__name__}, not images"
            )
    # The file name when the data set has one (an image folder), else the split and index.
    names = [
        Path(getattr(image, "filename", "") or "").stem or f"{args.split}-{index:05d}"
        for index, image in enumerate(images)
    ]
    if len(set(names)) != len(names):
        names = [f"{args.split}-{index:05d}" for index in range(count)]
    return images, names


def load_model(model: str, device: str, dtype: torch.dtype = torch.float32):
    from ..pretrained import resolve_model

    path = Path(resolve_model(model)).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--model {model}: no such folder")
    pipe = load_pipeline(str(path), dtype)
    pipe.set_progress_bar_config(leave=False)
    # Cache key: the folder and the newest file in it, so retrained weights are not confused with old results, and
    # a reduced precision, whose samples differ a little.
    newest = max((p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()), default=0)
    precision = "" if dtype == torch.float32 else f":{str(dtype).replace('torch.', '')}"
    return pipe.to(device), f"{path.resolve()}@{newest}{precision}"


def parse_baselines(text: str) -> List[str]:
    if text.strip().lower() == "none":
        return []
    baselines = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in baselines if name not in ("bicubic", "rrdb")]
    if unknown or not baselines:
        raise ValueError(
            f"--baselines {text!r}: {'unknown ' + str(unknown) if unknown else 'empty'}; give a comma-separated "
            "list of bicubic and rrdb, or 'none' alone"
        )
    return baselines


# ---------------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------------


def prepare_output_dir(path: Path) -> None:
    """Creates the report folder; reuses it only when it is one of ours (so a rerun resumes), never another folder."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--output-dir {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise FileExistsError(
            f"--output-dir {path} is not empty and is not an `srdiff evaluate` report; choose a new or empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("srdiff evaluate report folder; reruns resume from cache/\n", encoding="utf-8")


class FigureWriter:
    """Saves each image's SR outputs, its comparison grid and its diversity figure as they are computed."""

    def __init__(self, output_dir: Path, grid_names: List[str]):
        self.output_dir = output_dir
        # By name, not by count: each process of a split run then draws the grids of the same first images.
        self.grid_names = set(grid_names)

    def image_path(self, method: str, name: str, index: int, count: int) -> Path:
        suffix = f"_s{index}" if count > 1 else ""
        return self.output_dir / "images" / method / f"{name}{suffix}.png"

    def load_saved(self, method: str, name: str) -> Optional[List[np.ndarray]]:
        folder = self.output_dir / "images" / method
        single = folder / f"{name}.png"
        files = [single] if single.is_file() else sorted(folder.glob(f"{name}_s*.png"))
        if not files:
            return None
        from ..image_processor import SRDiffImageProcessor

        return [SRDiffImageProcessor.to_rgb8_array(PIL.Image.open(f), f) for f in files]

    def __call__(self, name: str, hr: np.ndarray, lr: np.ndarray, outputs: dict) -> None:
        from ..evaluation.report import comparison_grid, diversity_figure
        from ..image_processor import SRDiffImageProcessor
        from ..io import save_png

        for method, images in outputs.items():
            for index, image in enumerate(images or []):
                save_png(SRDiffImageProcessor.numpy_to_pil(image), self.image_path(method, name, index, len(images)))
        # Methods that came from the cache were saved by an earlier run.
        outputs = {
            method: images if images is not None else self.load_saved(method, name)
            for method, images in outputs.items()
        }
        if name in self.grid_names:
            save_png(comparison_grid(hr, lr, outputs), self.output_dir / "grids" / f"{name}.png")
        samples = outputs.get("srdiff")
        if samples is not None and len(samples) >= 2:
            save_png(diversity_figure(samples), self.output_dir / "diversity" / f"{name}.png")


def write_reports(results: dict, output_dir: Path, title: str) -> None:
    from ..evaluation.report import write_csv, write_json, write_markdown

    write_csv(results, output_dir / "per_image.csv")
    write_json(results, output_dir / "summary.json")
    write_markdown(results, output_dir / "results.md", title)


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_pipeline
    from ..evaluation.loop import check_evaluable_size

    # 1. arguments
    if (args.hr_dir is None) == (args.dataset is None):
        raise ValueError("pass exactly one of --hr-dir DIR or --dataset NAME")
    if args.lr_dir is not None and args.hr_dir is None:
        raise ValueError("--lr-dir goes with --hr-dir")
    for flag, value in (("--max-images", args.max_images), ("--crop", args.crop)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be a positive integer, got {args.num_samples}")
    if args.scale is not None and args.scale < 1:
        raise ValueError(f"--scale must be a positive integer, got {args.scale}")
    if args.srdiff_mean and args.num_samples < 2:
        raise ValueError(
            f"--srdiff-mean averages SRDiff samples: give --num-samples 2 or more (got {args.num_samples})"
        )
    if args.srdiff_mean and args.no_srdiff:
        raise ValueError("--srdiff-mean is the mean of SRDiff's samples, which --no-srdiff turns off; drop one of them")
    methods = parse_baselines(args.baselines) + ([] if args.no_srdiff or args.model is None else ["srdiff"])
    if args.srdiff_mean and "srdiff" in methods:
        methods.append("srdiff_mean")
    if not methods:
        raise ValueError("nothing to evaluate: give --model for SRDiff, or --baselines bicubic")
    if args.model is None and "rrdb" in methods:
        if args.baselines != "bicubic,rrdb":
            raise ValueError("--baselines rrdb needs --model (the RRDB baseline is the model's encoder)")
        methods.remove("rrdb")  # the default list, without a model: bicubic only
    if args.model is None and args.scale is None:
        raise ValueError("--scale is required without --model")
    device = resolve_device(args)
    state = process_state(cpu=device == "cpu")
    if state.num_processes > 1 and device == "cuda":
        device = state.device  # each process its own GPU (`accelerate launch` sets it)

    # 2. data (checked before loading the model, so mistakes are reported at once)
    scale_hint = args.scale
    if args.hr_dir is not None:
        hr_files = list_images(Path(args.hr_dir), "--hr-dir")[: args.max_images]
        names = [p.stem for p in hr_files]
        lr_files = match_lr(hr_files, Path(args.lr_dir), scale_hint) if args.lr_dir else None
        # Every file decoded once now, so that a corrupt one fails before the model load and earlier images; the
        # sizes are all the checks below need.
        hr_sizes = [open_image(path).size for path in hr_files]
        lr_sizes = [open_image(path).size for path in lr_files] if lr_files else None
        hr_images, lr_images = hr_files, lr_files
    else:
        hr_images, names = load_dataset_images(args)
        hr_sizes = [image.size for image in hr_images]
        lr_images = None
    output_dir = Path(args.output_dir)

    # 3. model
    pipe, cache_tag = None, ""
    if args.model is not None:
        pipe, cache_tag = load_model(args.model, device, torch_dtype(args))
        apply_speed_arguments(pipe, args)
        if args.scale is not None and args.scale != pipe.upscale_factor:
            raise ValueError(
                f"--scale {args.scale} does not match the model, which upscales x{pipe.upscale_factor}; "
                f"use --scale {pipe.upscale_factor} (or omit it) or a x{args.scale} model"
            )
        sampler, steps, temperature = apply_sampling_settings(
            pipe, args.scheduler, args.steps, args.temperature, fallback="ddpm"
        )
    else:
        sampler, steps, temperature = args.scheduler, args.steps or 100, 1.0  # bicubic only: unused
    scale = pipe.upscale_factor if pipe is not None else args.scale
    for (width, height), name in zip(hr_sizes, names):  # before any work, not when the loop reaches a small image
        check_evaluable_size(width, height, scale, args.crop, name)
    if lr_images is not None:
        check_sizes(hr_images, hr_sizes, lr_images, lr_sizes, scale)

    # 4. evaluate, saving figures as images complete
    cache_dir = output_dir / "cache"
    if state.is_main_process:
        prepare_output_dir(output_dir)
        if args.recompute and cache_dir.is_dir():
            for path in cache_dir.glob("*.jsonl"):  # the parts of split runs too
                path.unlink()
    state.wait_for_everyone()
    writer = FigureWriter(output_dir, names[: args.num_grids])
    settings = dict(
        scale=scale, methods=methods, num_inference_steps=steps, num_samples=args.num_samples, seed=args.seed,
        temperature=temperature, crop=args.crop, lpips=not args.no_lpips, cache_dir=cache_dir,
        cache_tag=cache_tag, on_image=writer,
    )  # fmt: skip
    computed = None
    if state.num_processes > 1:
        # Each process evaluates its share into a cache part of its own; the main process then reads them all back.
        from accelerate.utils import gather_object

        with state.split_between_processes(list(range(len(names)))) as share, pipeline_errors_as_options():
            share = list(share)
            shared = evaluate_pipeline(
                pipe, [hr_images[i] for i in share], None if lr_images is None else [lr_images[i] for i in share],
                names=[names[i] for i in share], progress=state.is_main_process, cache_part=state.process_index,
                **settings,
            )  # fmt: skip
        computed = sum(gather_object([shared["settings"]["computed"]]))
        state.wait_for_everyone()
        if not state.is_main_process:
            return 0
    with pipeline_errors_as_options():
        results = evaluate_pipeline(pipe, hr_images, lr_images, names=names, **settings)
    if computed is not None:  # the main process's pass reused what the shares computed
        total = results["settings"]["computed"] + results["settings"]["reused_from_cache"]
        results["settings"].update(computed=computed, reused_from_cache=total - computed)
    results["settings"].update(
        model=args.model,
        data=args.hr_dir or f"{args.dataset} ({args.split})",
        lr=args.lr_dir or "MATLAB bicubic from HR",
        scheduler_option=sampler if "srdiff" in methods else None,
    )

    # 5. reports
    source = Path(args.hr_dir).resolve().parent.name if args.hr_dir else args.dataset
    write_reports(results, output_dir, title=f"SR evaluation on {source}")
    print((output_dir / "results.md").read_text(encoding="utf-8"))
    settings = results["settings"]
    print(
        f"Report written to {output_dir} ({settings['computed']} results computed, "
        f"{settings['reused_from_cache']} reused from {cache_dir}).",
        file=sys.stderr,
    )
    return 0
