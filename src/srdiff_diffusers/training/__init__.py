# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Training of SRDiff with accelerate: RRDB pre-training (stage `rrdb`) and the noise predictor (stage `diffusion`)."""

from .args import cli_main, parse_args
from .data import SRPatchDataset, load_hr_images
from .trainer import TrainingResult, main

__all__ = ["SRPatchDataset", "TrainingResult", "cli_main", "export_pipeline", "load_hr_images", "main", "parse_args"]


def __getattr__(name):
    # `export` is imported when first used, not above: `python -m srdiff_diffusers.training.export` imports this
    # package first, and runpy warns when the module it is about to run is already imported.
    if name == "export_pipeline":
        from .export import export_pipeline

        return export_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
