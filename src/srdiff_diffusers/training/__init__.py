# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Training of SRDiff with accelerate: RRDB pre-training (stage `rrdb`) and the noise predictor (stage `diffusion`)."""

from .args import parse_args
from .data import SRPatchDataset, load_hr_images
from .export import export_pipeline
from .trainer import TrainingResult, main

__all__ = ["SRPatchDataset", "TrainingResult", "export_pipeline", "load_hr_images", "main", "parse_args"]
