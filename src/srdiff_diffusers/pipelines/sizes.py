# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The sizes SRDiff's U-Net takes, and the batches of inputs by size. An LR image is padded at the bottom and right
(never resampled) to an LR size whose HR size the U-Net takes; the result is cropped back afterwards.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..models.unet_srdiff import SRDiffUNet2DModel
from .tiling import resolve_tile_size


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


def tile_size_for(
    unet: SRDiffUNet2DModel, height: int, width: int, tile_size: Optional[Union[int, str]], tile_overlap: int
) -> Optional[Tuple[int, int]]:
    """The `(tile_height, tile_width)` in LR pixels for a padded LR image of this size, or `None` (no tiling)."""
    align, min_tile = lr_size_rule(unet)
    return resolve_tile_size(tile_size, height, width, tile_overlap, align, min_tile)


def batches(
    sizes: Sequence[Tuple[int, int]],
    batch_size: int,
    unet: SRDiffUNet2DModel,
    tile_size: Optional[Union[int, str]],
    tile_overlap: int,
) -> List[List[int]]:
    """
    The inputs' indices in batches of at most `batch_size` inputs of one LR size (`sizes`, unpadded), in input order.
    A tiled input is a batch of its own: its tiles are what is batched, so memory stays bounded by the tiles.
    """
    by_size: Dict[Tuple[int, int], List[int]] = {}
    result = []
    for index, size in enumerate(sizes):
        tiled = tile_size_for(unet, *padded_size(*size, unet), tile_size, tile_overlap) is not None
        if batch_size == 1 or tiled:
            result.append([index])
            continue
        pending = by_size.setdefault(tuple(size), [])
        pending.append(index)
        if len(pending) == batch_size:
            result.append(by_size.pop(tuple(size)))
    result.extend(by_size.values())
    return sorted(result, key=lambda batch: batch[0])


def output_rows(batch: Sequence[int], num_images_per_prompt: int) -> List[int]:
    """The rows of the output images (`num_images_per_prompt` consecutive ones per input) of a batch of inputs."""
    count = num_images_per_prompt
    return [row for index in batch for row in range(index * count, (index + 1) * count)]
