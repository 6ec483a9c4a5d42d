# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`--scheduler`, `--steps` and `--temperature`, shared by `srdiff upscale` and `srdiff evaluate`: each defaults to the
model's stored sampling (`loading.StoredDefaults`), so the commands sample as `pipe(image)` does; and the pipeline's
argument errors, reworded in terms of the options."""

import argparse
import contextlib

from ..loading import SCHEDULERS


def add_sampling_arguments(parser: argparse.ArgumentParser, fallback: str) -> None:
    """The sampling options; `fallback` is the sampler of a model that stores no defaults."""
    parser.add_argument(
        "--scheduler", choices=SCHEDULERS, default=None,
        help=f"Sampler (default: the model's own, stored with it; {fallback} for a model that stores none). The "
        "paper's sampling: --scheduler ddpm --steps 100 --temperature 1 (docs/sampling_defaults.md).",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=None,
        help="Denoising steps (default: the model's stored default with its own sampler; else 100 for ddpm, 10 for "
        "ddim, 20 for the others).",
    )  # fmt: skip
    parser.add_argument(
        "--temperature", type=float, default=None,
        help="Scale of the starting noise (default: the model's stored default, else 1: the model's own samples). "
        "Below 1 is more faithful (higher PSNR) but less diverse and less detailed.",
    )  # fmt: skip


# The pipeline checks these values (its `check_inputs`, once); its messages name its keywords, the user typed options
# (`temperature` and `strength` are the options' own names).
OPTION_OF_KEYWORD = {
    "num_inference_steps": "--steps",
    "init_image": "--init-image",
    "tile_size": "--tile-size",
    "tile_overlap": "--tile-overlap",
    "num_images_per_prompt": "--num-samples",
    "batch_size": "--batch-size",
}


@contextlib.contextmanager
def pipeline_errors_as_options():
    """Re-raises the pipeline's `ValueError`s naming the command's options instead of the pipeline's keywords."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        for keyword, option in OPTION_OF_KEYWORD.items():
            message = message.replace(f"`{keyword}`", option)
        raise ValueError(message) from error
