# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The one place where images change type (PIL, numpy, torch) or value range ([0, 1], [-1, 1], 0-255)."""

import torch


class SRDiffImageProcessor:
    """Image conversions for SRDiff, after diffusers' `VaeImageProcessor`."""

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """[0, 1] to [-1, 1], the range the models take."""
        return 2.0 * images - 1.0

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] to [0, 1], unclamped."""
        return (images + 1) / 2
