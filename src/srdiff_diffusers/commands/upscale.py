# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff upscale`: super-resolve image files (or a bundled sample image) with an SRDiff pipeline."""

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import PIL.Image
import torch

from ..image_processor import SIXTEEN_BIT_MODES, SRDiffImageProcessor
from ..io import open_image, save_png
from .speed import (
    add_speed_arguments,
    apply_speed_arguments,
    pipeline_from_pretrained,
    resolve_device,
    torch_dtype,
)

SCHEDULERS = ("ddpm", "ddim", "dpm", "unipc")
# Sample images bundled with scikit-image (no download): colour, gray and RGBA.
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "logo")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

RANDOM_WEIGHTS_WARNING = """
################################################################################
WARNING: no --model was given and no trained SRDiff model is installed, so this
runs an SRDiff pipeline with RANDOM weights. The output is the bicubic upscale
plus noise-like texture, NOT a real super-resolution. Pass a trained model:
    srdiff upscale ... --model path/to/srdiff-folder   (or a Hugging Face Hub id)
A folder comes from training, or from `srdiff convert` of an original SRDiff
checkpoint.
################################################################################
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="Image files, or folders of images.")
    parser.add_argument("-o", "--output-dir", required=True, help="Folder for the results (created if needed).")
    parser.add_argument(
        "--model",
        default=None,
        help="A shipped model's name (bicubic), a saved SRDiffPipeline folder or a Hub id; defaults to the shipped "
        "default model.",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="Denoising steps (default: 100 for ddpm, 20 for the others)."
    )
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="ddpm", help="Sampler (default: ddpm, the paper's).")
    parser.add_argument("--seed", type=int, default=None, help="Random seed for reproducible results.")
    parser.add_argument("--num-samples", type=int, default=1, help="Samples per image (SRDiff is diverse).")
    parser.add_argument("--overwrite", action="store_true", help="Replace existing output files.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="Default: cuda when available.")
    parser.add_argument(
        "--sample",
        choices=SAMPLES,
        default=None,
        help="Use a scikit-image sample image, downscaled by the model's scale (saved as <name>_lr.png) as input.",
    )
    parser.add_argument(
        "--tile-size",
        type=_tile_size,
        default="auto",
        help="Tile side in LR pixels for large images: an int, 'auto' (default: tiles when a side exceeds 256) or "
        "'none' (never tile).",
    )
    parser.add_argument("--tile-overlap", type=int, default=16, help="Tile overlap in LR pixels (default: 16).")
    parser.add_argument(
        "--init-image",
        default=None,
        help="An HR guess to refine instead of sampling from noise (one INPUT only); use with --strength.",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=None,
        help="With --init-image: t-bar as a fraction of T, in [0, 1] (0 returns the guess, 1 ignores it; "
        "default 0.5).",
    )
    parser.add_argument(
        "--lr-consistency",
        action="store_true",
        help="Pull the result's low frequencies (colours) to the LR image.",
    )
    add_speed_arguments(parser)


def _tile_size(value: str):
    if value.lower() in ("auto", "none"):
        return value.lower() if value.lower() == "auto" else None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile-size must be an int, 'auto' or 'none', got {value!r}") from None


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------


def collect_inputs(inputs: List[str]) -> List[Path]:
    """Expands folders (their image files, sorted, not recursive) and checks that every file exists."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    return files


def read_image(path: Path):
    """
    Reads an image file for the pipeline: a PIL image (the pipeline converts CMYK, 1-bit and similar modes), or, for
    16-bit gray files, a float array in [0, 1] (so no precision is lost).
    """
    image = open_image(path)
    if image.mode in SIXTEEN_BIT_MODES:
        return SRDiffImageProcessor.sixteen_bit_to_unit_float(image, path)
    return image


def load_sample(name: str, scale: int) -> Tuple[PIL.Image.Image, PIL.Image.Image]:
    """A scikit-image sample image and its MATLAB-bicubic `1 / scale` downscale (uint8, as LR benchmarks are made)."""
    try:
        import skimage.data
    except ImportError:
        raise ValueError("--sample needs scikit-image: pip install scikit-image") from None
    from ..image_processing import imresize

    processor = SRDiffImageProcessor
    array = np.asarray(getattr(skimage.data, name)())
    hr = processor.numpy_to_pt(array if array.ndim == 3 else array[:, :, None])
    lr = processor.pt_to_numpy(imresize(hr, scale=1 / scale))[0]
    return processor.numpy_to_pil(array), processor.numpy_to_pil(lr)


# ---------------------------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------------------------


def default_model_path() -> Optional[str]:
    """The trained model shipped with the package, if any."""
    import srdiff_diffusers

    path = getattr(srdiff_diffusers, "DEFAULT_MODEL_PATH", None)
    return str(path) if path is not None and Path(path).is_dir() else None


def load_pipeline(model: Optional[str], dtype: torch.dtype = torch.float32):
    """
    Loads `model` (a folder or a Hub id) in `dtype`; without one, the shipped model or, failing that, random weights.
    """
    from ..models import RRDBEncoder, SRDiffUNet2DModel
    from ..pipelines import SRDiffPipeline
    from ..pretrained import resolve_model

    model = default_model_path() if model is None else resolve_model(model)
    if model is None:
        print(RANDOM_WEIGHTS_WARNING, file=sys.stderr)
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same random model every run, so --seed still reproduces outputs
            pipe = SRDiffPipeline(unet=SRDiffUNet2DModel(), encoder=RRDBEncoder())
        return pipe.to(dtype=dtype) if dtype != torch.float32 else pipe

    path = Path(model).expanduser()
    if not path.is_dir() and (path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1):
        # Not a folder and not shaped like a Hub id ("owner/name").
        raise FileNotFoundError(f"--model {model}: no such model folder")
    try:
        return pipeline_from_pretrained(str(path) if path.is_dir() else model, dtype)
    except (OSError, ValueError) as error:
        # Hub ids that cannot be resolved, incomplete folders, weights that do not match their config, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        first_line = first_line.replace(" Please check out the root cause in the stacktrace above.", "")  # not shown
        where = "" if path.is_dir() else " (a Hub id: is the id right, and is the Hub reachable or the model cached?)"
        raise ValueError(f"could not load the model {model}{where}: {first_line}") from None


def set_scheduler(pipe, name: str) -> None:
    """Swaps the sampler, keeping the trained noise schedule; the fast ones start at the last training step and clip
    the predicted x0 like the paper's sampler (see `SRDiffPipeline.fast_scheduler`)."""
    from diffusers import DDPMScheduler

    if name == "ddpm":
        if not isinstance(pipe.scheduler, DDPMScheduler):
            pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        return
    pipe.scheduler = pipe.fast_scheduler({"ddim": "ddim", "dpm": "dpmsolver++", "unipc": "unipc"}[name])


# ---------------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------------


def output_names(stem: str, scale: int, num_samples: int) -> List[str]:
    if num_samples == 1:
        return [f"{stem}_x{scale}.png"]
    return [f"{stem}_x{scale}_sample{k}.png" for k in range(num_samples)]


def to_pil(result) -> PIL.Image.Image:
    """A pipeline result to a PIL image: PIL passes through, float gray arrays (16-bit inputs) become 16-bit."""
    if isinstance(result, PIL.Image.Image):
        return result
    array, processor = np.asarray(result), SRDiffImageProcessor
    if array.ndim == 3 and array.shape[2] == 1:
        return processor.numpy_to_pil(processor.numpy_to_uint16(array[:, :, 0]))
    return processor.numpy_to_pil(processor.numpy_to_uint8(array))


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    if not args.inputs and args.sample is None:
        raise ValueError("give at least one INPUT image or folder, or --sample NAME (e.g. --sample astronaut)")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if args.strength is not None and args.init_image is None:
        raise ValueError("--strength needs --init-image (the HR guess to refine)")
    if args.strength is not None and not 0 <= args.strength <= 1:
        raise ValueError(f"--strength must be in [0, 1], got {args.strength}")
    if args.init_image is not None and (len(args.inputs) != 1 or args.sample or Path(args.inputs[0]).is_dir()):
        raise ValueError("--init-image refines one image: give exactly one INPUT file (its LR image)")
    if args.tile_overlap < 0:
        raise ValueError(f"--tile-overlap must be at least 0, got {args.tile_overlap}")
    device = resolve_device(args)

    # 1. inputs, checked before the (slow) model load
    files = collect_inputs(args.inputs)
    for path in files:
        read_image(path)  # fail on an unreadable file now, not after the model load and earlier images
    stems = [path.stem for path in files] + ([args.sample] if args.sample else [])
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise ValueError(f"several inputs are named {duplicates[0]!r}; their outputs would overwrite each other")
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"-o {output_dir} is a file, not a folder")

    # 2. the pipeline
    pipe = load_pipeline(args.model, torch_dtype(args))
    set_scheduler(pipe, args.scheduler)
    scale = pipe.upscale_factor
    steps = args.steps or (100 if args.scheduler == "ddpm" else 20)
    pipe.to(device)
    apply_speed_arguments(pipe, args)
    pipe.set_progress_bar_config(leave=False, desc="denoising")

    # 3. every output path is known now: refuse to overwrite before doing any work
    jobs = [(path.stem, path) for path in files]
    planned = {stem: output_names(stem, scale, args.num_samples) for stem, _ in jobs}
    if args.sample:
        planned[args.sample] = output_names(args.sample, scale, args.num_samples) + [f"{args.sample}_lr.png"]
        jobs.append((args.sample, None))
    if not args.overwrite:
        for names in planned.values():
            for name in names:
                if (output_dir / name).exists():
                    raise FileExistsError(f"{output_dir / name} exists; pass --overwrite to replace it")
    output_dir.mkdir(parents=True, exist_ok=True)

    # 4. super-resolve, one image at a time
    for stem, path in tqdm(jobs, desc="images", unit="image", disable=len(jobs) < 2):
        if path is None:
            _, image = load_sample(args.sample, scale)
            save_png(image, output_dir / f"{args.sample}_lr.png")
        else:
            image = read_image(path)
        generator = None
        if args.seed is not None:
            # One CPU generator per sample: sample k does not depend on --num-samples, and CPU and GPU agree.
            generator = [torch.Generator("cpu").manual_seed(args.seed + k) for k in range(args.num_samples)]
        output_type = "pil" if isinstance(image, PIL.Image.Image) else "np"
        images = pipe(
            image,
            num_inference_steps=steps,
            generator=generator,
            num_images_per_prompt=args.num_samples,
            output_type=output_type,
            tile_size=args.tile_size,
            tile_overlap=args.tile_overlap,
            init_image=read_image(Path(args.init_image)) if args.init_image else None,
            strength=(0.5 if args.strength is None else args.strength) if args.init_image else 1.0,
            lr_consistency=args.lr_consistency,
        ).images
        for result, name in zip(images, planned[stem]):
            save_png(to_pil(result), output_dir / name)
        written = ", ".join(str(output_dir / name) for name in planned[stem][: args.num_samples])
        tqdm.write(f"{path if path is not None else 'sample ' + stem} -> {written}")
    return 0
