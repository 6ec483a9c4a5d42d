# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The sizes SRDiff's U-Net takes: an LR image is padded at the bottom and right (never resampled) to an LR size whose
HR size the U-Net takes, and the result is cropped back afterwards.
"""

import math
from typing import Tuple

import torch
import torch.nn.functional as F

from ..models.unet_srdiff import SRDiffUNet2DModel


def lr_size_rule(unet: SRDiffUNet2DModel) -> Tuple[int, int]:
    """The LR size multiple `unet` needs, and the smallest LR size it takes (itself a multiple)."""
    scale, multiple = unet.config.upscale_factor, unet.sample_size_multiple
    lr_multiple = multiple // math.gcd(multiple, scale)
    min_lr = -(-unet.min_sample_size // scale)
    return lr_multiple, min_lr + (-min_lr) % lr_multiple


def padded_size(height: int, width: int, unet: SRDiffUNet2DModel) -> Tuple[int, int]:
    """The LR size a `height x width` LR image is padded to for `unet`."""
    lr_multiple, min_lr = lr_size_rule(unet)
    return max(height + (-height) % lr_multiple, min_lr), max(width + (-width) % lr_multiple, min_lr)


def pad_bottom_right(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pads a `(N, C, h, w)` batch to `height x width` at the bottom and right (reflect); never resamples."""
    pad_h, pad_w = height - images.shape[-2], width - images.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return images
    # Reflection needs the pad to be smaller than the image; tiny images fall back to edge replication.
    mode = "reflect" if pad_h < images.shape[-2] and pad_w < images.shape[-1] else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
