# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Training of SRDiff with accelerate: RRDB pre-training (stage `rrdb`), the noise predictor (stage `diffusion`) and
few-step distillation (stage `distill`).

Functions only; their command lines are `srdiff train`, `srdiff export` and `srdiff model-card`
(`srdiff_diffusers.commands`)."""

from .data import SRPatchDataset, load_hr_images
from .export import export_pipeline
from .model_card import model_card_of_run, write_model_card
from .trainer import TrainingResult, read_loss_log, train

__all__ = [
    "SRPatchDataset",
    "TrainingResult",
    "export_pipeline",
    "load_hr_images",
    "model_card_of_run",
    "read_loss_log",
    "train",
    "write_model_card",
]

