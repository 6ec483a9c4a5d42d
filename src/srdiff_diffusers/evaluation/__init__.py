# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of SR models with the SRDiff paper's metrics: functions, the evaluation loop, and reports."""

from pathlib import Path

from .loop import METHODS, METRICS, evaluate_pipeline, image_metrics, prepare_pair, super_resolve, to_uint8_rgb
from .metrics import (
    CONVENTIONS,
    diversity_sigma,
    diversity_sigma_torch,
    lr_psnr,
    lr_psnr_torch,
    psnr,
    psnr_torch,
    rgb_to_y,
    ssim,
    ssim_torch,
)
from .perceptual import UNAVAILABLE_PREFIX, LPIPSScorer

# The `evaluate` module script: `evaluate.load(METRIC_SCRIPT)` works offline.
METRIC_SCRIPT = str(Path(__file__).with_name("srdiff_metrics.py"))


def __getattr__(name):
    # `SRMetrics` needs `evaluate` and `datasets` (the "eval" extra); import it only when asked for.
    if name == "SRMetrics":
        from .srdiff_metrics import SRMetrics

        return SRMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONVENTIONS",
    "LPIPSScorer",
    "METHODS",
    "METRICS",
    "METRIC_SCRIPT",
    "SRMetrics",
    "UNAVAILABLE_PREFIX",
    "diversity_sigma",
    "diversity_sigma_torch",
    "evaluate_pipeline",
    "image_metrics",
    "lr_psnr",
    "lr_psnr_torch",
    "prepare_pair",
    "psnr",
    "psnr_torch",
    "rgb_to_y",
    "ssim",
    "ssim_torch",
    "super_resolve",
    "to_uint8_rgb",
]
