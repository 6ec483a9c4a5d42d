# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff upscale`: super-resolve image files (or a bundled sample image) with an SRDiff pipeline."""

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import PIL.Image

from ..io import save_png
from ..loading import (
    IMAGE_SUFFIXES,
    SAMPLES,
    apply_sampling_settings,
    default_model_path,
    load_pipeline,
    load_sample,
    read_image,
    to_pil,
)
from ..seeds import check_seed, sample_generators, sample_seeds
from .sampling_options import add_sampling_arguments, pipeline_errors_as_options
from .speed import add_speed_arguments, apply_speed_arguments, resolve_device, torch_dtype


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="Image files, or folders of images (searched recursively; outputs keep the relative path).",
    )  # fmt: skip
    parser.add_argument("-o", "--output-dir", required=True, help="Folder for the results (created if needed).")
    parser.add_argument(
        "--model",
        default=None,
        help="A shipped model's name (bicubic-1step, bicubic), a saved SRDiffPipeline folder or a Hub id; defaults to "
        "the shipped default model.",
    )
    add_sampling_arguments(parser, fallback="ddim")
    parser.add_argument(
        "--seed", type=int, default=None,
        help="Seed: sample k of every image is drawn with seed + k, as in Python and the demo (default: unseeded).",
    )  # fmt: skip
    parser.add_argument("--num-samples", type=int, default=1, help="Samples per image (SRDiff is diverse).")
    parser.add_argument("--overwrite", action="store_true", help="Replace existing output files.")
    parser.add_argument(
        "--skip-existing", action="store_true",
        help="Skip images whose outputs exist (to finish an interrupted run); without it, existing outputs are an "
        "error unless --overwrite.",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, default=1,
        help="Images of one size denoised together (or tiles of a large image); same results to float rounding, "
        "more memory. Default: 1.",
    )  # fmt: skip
    parser.add_argument(
        "--manifest", default=None,
        help="A JSONL file to record each finished output in (input, output, seed, model, sampler, steps, seconds); "
        "appended to, safe under `accelerate launch`.",
    )  # fmt: skip
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
    parser.add_argument(
        "--backend", choices=("torch", "onnx"), default="torch",
        help="torch (default; the faster one on CPUs, docs/onnx.md) or onnx: --model is then a folder made by "
        "`srdiff export-onnx`, run by onnxruntime (pip install srdiff-diffusers[onnx]).",
    )  # fmt: skip
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


def collect_inputs(inputs: List[str], exclude: Optional[Path] = None) -> List[Tuple[Path, str]]:
    """
    Expands folders (their image files, searched recursively, sorted) and checks that every file exists. Returns
    `(path, relative name)` pairs: the path below the folder given, or the file name of a file given, in POSIX form
    (outputs keep it, and it seeds the image's noise). Files under `exclude` (the output folder) are left out.
    """
    excluded = exclude.resolve() if exclude is not None else None
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                and not (excluded is not None and excluded in p.resolve().parents)
            )  # fmt: skip
            if not found:
                raise ValueError(f"the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend((p, p.relative_to(path).as_posix()) for p in found)
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise FileNotFoundError(f"input not found: {path}")
    return files


# ---------------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------------


def output_names(stem: str, scale: int, num_samples: int) -> List[str]:
    if num_samples == 1:
        return [f"{stem}_x{scale}.png"]
    return [f"{stem}_x{scale}_sample{k}.png" for k in range(num_samples)]


@dataclass(frozen=True)
class Settings:
    """What every image of a run is sampled with: the user's options, else the model's stored defaults."""

    sampler: str
    steps: int
    temperature: float
    strength: float


@dataclass
class Job:
    """One input: its file (`None` for --sample), relative name, size key for batching, and output paths."""

    path: Optional[Path]
    relative: str
    key: tuple
    outputs: List[Path]
    todo: List[int] = field(default_factory=list)  # indices of the outputs to write


def check_arguments(args: argparse.Namespace) -> None:
    if not args.inputs and args.sample is None:
        raise ValueError("give at least one INPUT image or folder, or --sample NAME (e.g. --sample astronaut)")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.seed is not None:
        check_seed(args.seed, args.num_samples)
    if args.overwrite and args.skip_existing:
        raise ValueError("--overwrite replaces existing outputs and --skip-existing keeps them; pass one of them")
    if args.strength is not None and args.init_image is None:
        raise ValueError("--strength needs --init-image (the HR guess to refine)")
    if args.init_image is not None and (len(args.inputs) != 1 or args.sample or Path(args.inputs[0]).is_dir()):
        raise ValueError("--init-image refines one image: give exactly one INPUT file (its LR image)")
    if args.backend == "onnx" and (args.compile or args.dtype != "float32" or args.device == "cuda"):
        raise ValueError(
            "--backend onnx runs the exported graphs as they are, on the CPU: drop --compile, --dtype and "
            "--device cuda (export in float16 with `srdiff export-onnx --dtype float16` instead)"
        )


def read_inputs(args: argparse.Namespace, output_dir: Path) -> List[Tuple[Path, str, tuple]]:
    """The input files, each decoded once now (a bad one fails before the model load), with their batching keys."""
    inputs = []
    for path, relative in collect_inputs(args.inputs, exclude=output_dir):
        image = read_image(path)
        key = ("pil", image.size) if isinstance(image, PIL.Image.Image) else ("np", image.shape)
        inputs.append((path, relative, key))
    return inputs


def plan_jobs(args: argparse.Namespace, inputs, output_dir: Path, scale: int) -> List[Job]:
    """Every input's outputs (keeping its relative folder), checked for clashes."""
    jobs = []
    for path, relative, key in inputs:
        folder = output_dir / Path(relative).parent
        names = output_names(Path(relative).stem, scale, args.num_samples)
        jobs.append(Job(path, relative, key, [folder / name for name in names]))
    if args.sample:
        names = output_names(args.sample, scale, args.num_samples) + [f"{args.sample}_lr.png"]
        jobs.append(Job(None, args.sample, ("sample",), [output_dir / name for name in names]))
    seen = {}
    for job in jobs:
        for output in job.outputs:
            if output in seen:
                name = Path(job.relative).stem
                raise ValueError(
                    f"several inputs are named {name!r} ({seen[output]} and {job.relative}); their outputs would "
                    "overwrite each other"
                )
            seen[output] = job.relative
    return jobs


def _batches(jobs: List[Job], batch_size: int) -> List[List[Job]]:
    """Jobs of one kind and size in groups of at most `batch_size`, in order of their first job."""
    groups: dict = {}
    for job in jobs:
        groups.setdefault(job.key if job.path is not None else ("sample", id(job)), []).append(job)
    batches = [group[i : i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]
    order = {id(job): index for index, job in enumerate(jobs)}
    return sorted(batches, key=lambda batch: order[id(batch[0])])


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .scale_out import Manifest, process_state, remove_stale_temporaries

    check_arguments(args)
    device = resolve_device(args)
    state = process_state(cpu=device == "cpu")
    if state.num_processes > 1 and device == "cuda":
        device = state.device  # each process its own GPU (`accelerate launch` sets it)
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"-o {output_dir} is a file, not a folder")

    # 1. inputs, checked before the (slow) model load; then the pipeline, whose scale names the outputs
    inputs = read_inputs(args, output_dir)
    pipe = load_pipeline(args.model, torch_dtype(args), backend=args.backend)
    strength = (0.5 if args.strength is None else args.strength) if args.init_image else 1.0
    sampling = apply_sampling_settings(pipe, args.scheduler, args.steps, args.temperature, strength)
    settings = Settings(*sampling, strength)
    scale = pipe.upscale_factor

    # 2. every output path is known now: refuse to overwrite (or skip what is done) before any process writes
    jobs = plan_jobs(args, inputs, output_dir, scale)
    for job in jobs:
        existing = [k for k, output in enumerate(job.outputs) if output.exists()]
        if existing and not (args.overwrite or args.skip_existing):
            raise FileExistsError(f"{job.outputs[existing[0]]} exists; pass --overwrite to replace it")
        job.todo = [k for k in range(len(job.outputs)) if args.overwrite or k not in existing]
    pending = [job for job in jobs if job.todo]
    manifest = Manifest(args.manifest, state.process_index) if args.manifest else None
    if state.is_main_process:  # the folders are made as outputs are written: a refused run leaves none behind
        remove_stale_temporaries([output for job in jobs for output in job.outputs])
        if manifest is not None:
            manifest.merge()  # the parts a killed run left
            recorded = {record.get("output") for record in manifest.records()}
            for job in jobs:  # a kill between writing an output and its record: recorded now, its time unknown
                for k, output in enumerate(job.outputs[: args.num_samples]):
                    if k not in job.todo and str(output) not in recorded:
                        manifest.append(manifest_record(job, k, args, settings, None, None, state.process_index))
            manifest.merge()
    state.wait_for_everyone()  # every process has planned from the same files before any writes

    pipe.to(device)
    apply_speed_arguments(pipe, args)
    pipe.set_progress_bar_config(leave=False, desc="denoising", disable=not state.is_main_process)
    started = time.perf_counter()

    # 3. super-resolve this process's share of the images, `--batch-size` of one size at a time
    with state.split_between_processes(pending) as share:
        batches = _batches(list(share), args.batch_size)
        quiet = not state.is_main_process or len(pending) < 2
        progress = tqdm(total=len(share), desc="images", unit="image", disable=quiet)
        for batch in batches:
            upscale_batch(pipe, batch, args, settings, scale, manifest, state.process_index)
            progress.update(len(batch))
        progress.close()

    state.wait_for_everyone()
    if state.is_main_process:
        if manifest is not None:
            manifest.merge()
        if len(jobs) > 1 or state.num_processes > 1:
            skipped = len(jobs) - len(pending)
            print(
                f"Upscaled {len(pending)} image(s) in {time.perf_counter() - started:.1f} s with "
                f"{state.num_processes} process(es)" + (f"; {skipped} already done, skipped" if skipped else "")
                + (f"; manifest: {args.manifest}" if manifest is not None else "")
            )  # fmt: skip
    return 0


def manifest_record(job: Job, sample: int, args, settings: Settings, seconds, batch, process_index: int) -> dict:
    """One manifest line; `seconds` is the batch's time divided by its images (`None`: found done, time unknown)."""
    return {
        "input": str(job.path) if job.path is not None else f"sample:{args.sample}",
        "output": str(job.outputs[sample]), "sample": sample,
        "seed": sample_seeds(args.seed, args.num_samples)[sample] if args.seed is not None else None,
        "base_seed": args.seed, "model": args.model or default_model_path() or "random weights",
        "sampler": settings.sampler, "steps": settings.steps, "temperature": settings.temperature,
        "seconds": None if seconds is None else round(seconds, 4),
        "batch": batch, "process": process_index,
    }  # fmt: skip


def upscale_batch(pipe, batch: List[Job], args, settings: Settings, scale: int, manifest, process_index: int) -> None:
    """One pipeline call for a batch of same-size jobs; writes each output atomically, then records it."""
    from tqdm.auto import tqdm

    images = [read_image(job.path) if job.path is not None else load_sample(args.sample, scale)[1] for job in batch]
    generator = None
    if args.seed is not None:
        # The seed rule (seeds.py): sample k of every image from seed + k, whatever the other images, the batch or the
        # number of processes.
        generator = [g for _ in batch for g in sample_generators(args.seed, args.num_samples)]
    output_type = "pil" if isinstance(images[0], PIL.Image.Image) else "np"
    start = time.perf_counter()
    with pipeline_errors_as_options():
        results = pipe(
            images,
            num_inference_steps=settings.steps,
            generator=generator,
            num_images_per_prompt=args.num_samples,
            output_type=output_type,
            tile_size=args.tile_size,
            tile_overlap=args.tile_overlap,
            init_image=read_image(Path(args.init_image)) if args.init_image else None,
            strength=settings.strength,
            lr_consistency=args.lr_consistency,
            batch_size=args.batch_size,
            temperature=settings.temperature,
        ).images
    seconds = (time.perf_counter() - start) / len(batch)
    for position, job in enumerate(batch):
        written = []
        for k in range(args.num_samples):
            if k not in job.todo:
                continue
            row = position * args.num_samples + k
            save_png(to_pil(results[row]), job.outputs[k])
            written.append(job.outputs[k])
            if manifest is not None:
                manifest.append(manifest_record(job, k, args, settings, seconds, len(batch), process_index))
        if job.path is None and len(job.outputs) - 1 in job.todo:  # the sample's LR image, once the run succeeded
            save_png(images[position], job.outputs[-1])
        source = job.path if job.path is not None else "sample " + job.relative
        tqdm.write(f"{source} -> {', '.join(str(p) for p in written)}")
