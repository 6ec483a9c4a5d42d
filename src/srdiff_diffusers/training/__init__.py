# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Training of SRDiff with accelerate: RRDB pre-training (stage `rrdb`) and the noise predictor (stage `diffusion`).

Functions only; their command lines are `srdiff train`, `srdiff export` and `srdiff model-card`
(`srdiff_diffusers.commands`)."""

from .data import SRPatchDataset, load_hr_images
from .model_card import render_model_card, write_model_card
from .trainer import TrainingResult, read_loss_log, train

__all__ = [
    "SRPatchDataset",
    "TrainingResult",
    "export_pipeline",
    "load_hr_images",
    "read_loss_log",
    "render_model_card",
    "train",
    "write_model_card",
]


def __getattr__(name):
    # `export` is imported when first used, not above: `python -m srdiff_diffusers.training.export` imports this
    # package first, and runpy warns when the module it is about to run is already imported.
    if name == "export_pipeline":
        from .export import export_pipeline

        return export_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
