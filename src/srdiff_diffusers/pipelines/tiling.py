# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Tiled inference for SRDiff: the LR encoder and the noise predictor run on overlapping tiles so that peak memory is
set by the tile size, not by the image size.

Only the noise *prediction* is tiled. At every denoising step the U-Net runs once per tile on a crop of the
full-size latents, the overlapping predictions are blended with smooth weights into one full-size prediction, and
the scheduler takes ONE step on the full-size latents. The scheduler's noise is therefore drawn as one global field
(exactly as without tiles, so `generator` semantics are unchanged) and neighbouring tiles always see the same
latents, which is what keeps seams away. The full-size tensors are the latents, the blended prediction (3 channels
at HR size each) and the encoder's condition (at LR size); the U-Net's and the encoder's activations, which are
most of the memory, exist for one tile at a time.

Whole images are what [`batches`] groups: inputs of one size go through the U-Net together, a tiled one alone.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from .sizes import lr_size_rule, padded_size

# LR images with a side longer than this are tiled when `tile_size="auto"`; the automatic tiles are at most this
# large, so automatic tiling never needs more memory than an untiled image of AUTO_TILE_THRESHOLD^2 LR pixels.
AUTO_TILE_THRESHOLD = 256
DEFAULT_TILE_OVERLAP = 16


@dataclass(frozen=True)
class Tile:
    """One tile in LR pixels: rows `top:top + height`, columns `left:left + width` of the (padded) LR image."""

    top: int
    left: int
    height: int
    width: int

    def lr_slices(self) -> Tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def hr_slices(self, scale: int) -> Tuple[slice, slice]:
        return (
            slice(self.top * scale, (self.top + self.height) * scale),
            slice(self.left * scale, (self.left + self.width) * scale),
        )


def _axis_starts(length: int, tile: int, overlap: int, align: int) -> List[int]:
    """
    Starts of the tiles along one axis: as few tiles as overlap allows, spread evenly, on multiples of `align`, the
    first at 0 and the last flush with the border. `length` and `tile` are multiples of `align`.
    """
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    last = (length - tile) // align  # in units of `align`
    # Rounding a gap of at most (tile - overlap) up to a multiple of `align` never exceeds `tile`: no holes.
    return sorted({round(i * last / (count - 1)) * align for i in range(count)})


def _balanced_tile(length: int, max_tile: int, overlap: int, align: int) -> int:
    """The smallest tile (a multiple of `align`, at most `max_tile`) that covers `length` with the fewest tiles."""
    if length <= max_tile:
        return length
    count = math.ceil((length - overlap) / (max_tile - overlap))
    tile = math.ceil((length + (count - 1) * overlap) / count)
    return min(max_tile, -(-tile // align) * align)


def resolve_tile_size(
    tile_size: Optional[Union[int, str]], height: int, width: int, overlap: int, align: int, min_tile: int = 1
) -> Optional[Tuple[int, int]]:
    """
    Turns the pipeline's `tile_size` argument into a `(tile_height, tile_width)` in LR pixels, or `None` for no tiling.

    Args:
        tile_size (`int`, `"auto"` or `None`): `None` never tiles; `"auto"` tiles when a side of the image is longer
            than `AUTO_TILE_THRESHOLD` LR pixels, with balanced tiles of at most that size; an `int` tiles with
            square tiles of that many LR pixels (clipped to the image).
        height, width (`int`): The size of the padded LR image.
        overlap (`int`): The tile overlap in LR pixels.
        align (`int`): The LR size multiple the U-Net needs.
        min_tile (`int`): The smallest LR size the U-Net takes (a multiple of `align`).
    """
    if tile_size is None:
        return None
    if isinstance(tile_size, str):
        if tile_size != "auto":
            raise ValueError(f"`tile_size` must be an int, 'auto' or None, got {tile_size!r}.")
        if max(height, width) <= AUTO_TILE_THRESHOLD:
            return None
        max_tile = (AUTO_TILE_THRESHOLD // align) * align
        if overlap >= max_tile:
            raise ValueError(f"`tile_overlap` ({overlap}) must be smaller than the automatic tile size ({max_tile}).")
        return (_balanced_tile(height, max_tile, overlap, align), _balanced_tile(width, max_tile, overlap, align))
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise ValueError(f"`tile_size` must be a positive int (LR pixels), 'auto' or None, got {tile_size!r}.")
    if tile_size < min_tile:
        raise ValueError(
            f"`tile_size` must be at least {min_tile} LR pixels for this model (the lowest level of its U-Net needs "
            f"2 pixels), got {tile_size}."
        )
    if tile_size % align:
        raise ValueError(
            f"`tile_size` must be a multiple of {align} LR pixels for this model (HR tiles must be multiples of "
            f"`unet.sample_size_multiple`); try {max(min_tile, tile_size // align * align)}."
        )
    if overlap >= tile_size:
        raise ValueError(f"`tile_overlap` ({overlap}) must be smaller than `tile_size` ({tile_size}).")
    return (min(tile_size, height), min(tile_size, width))


def tile_size_for(
    unet: SRDiffUNet2DModel, height: int, width: int, tile_size: Optional[Union[int, str]], tile_overlap: int
) -> Optional[Tuple[int, int]]:
    """The `(tile_height, tile_width)` in LR pixels for a padded LR image of this size, or `None` (no tiling)."""
    align, min_tile = lr_size_rule(unet)
    return resolve_tile_size(tile_size, height, width, tile_overlap, align, min_tile)


def plan_tiles(height: int, width: int, tile_height: int, tile_width: int, overlap: int, align: int = 1) -> List[Tile]:
    """The tiles (row-major) covering a `height x width` LR image, each `tile_height x tile_width` (clipped)."""
    tile_height, tile_width = min(tile_height, height), min(tile_width, width)
    rows = _axis_starts(height, tile_height, overlap, align)
    cols = _axis_starts(width, tile_width, overlap, align)
    return [Tile(top, left, tile_height, tile_width) for top in rows for left in cols]


def _ramp(length: int, ramp: int, left: bool, right: bool) -> torch.Tensor:
    """A window that is 1 inside and rises as a raised cosine over `ramp` pixels on the sides that overlap a neighbour.
    It is positive everywhere (pixel centres sit half a pixel inside), so normalised blending never divides by 0."""
    weights = torch.ones(length, dtype=torch.float32)
    if ramp <= 0:
        return weights
    distance = torch.arange(length, dtype=torch.float32) + 0.5
    rise = 0.5 - 0.5 * torch.cos(math.pi * torch.clamp(distance / ramp, max=1.0))
    if left:
        weights = weights * rise
    if right:
        weights = weights * rise.flip(0)
    return weights


def blend_weights(tile: Tile, height: int, width: int, scale: int, overlap: int) -> torch.Tensor:
    """The `(tile_h * s, tile_w * s)` blending window of a tile: ramps only towards neighbouring tiles."""
    ramp = overlap * scale
    rows = _ramp(tile.height * scale, ramp, tile.top > 0, tile.top + tile.height < height)
    cols = _ramp(tile.width * scale, ramp, tile.left > 0, tile.left + tile.width < width)
    return rows[:, None] * cols[None, :]


def encode_tiled(encoder: RRDBEncoder, lr: torch.Tensor, tiles: Sequence[Tile], context: int) -> torch.Tensor:
    """
    The encoder's condition for a whole LR image, computed tile by tile: each tile is encoded with `context` extra
    LR pixels on each side (clipped at the image border) and only its own region is kept. With a tile covering the
    image this is exactly `encoder.encode(lr)`; otherwise features near tile borders see `context` pixels of the
    neighbourhood instead of all of it.

    Args:
        lr (`torch.Tensor` of shape `(1, 3, H, W)`): The LR image in [-1, 1].
    """
    height, width = lr.shape[-2:]
    condition = None
    for tile in tiles:
        top, left = max(tile.top - context, 0), max(tile.left - context, 0)
        bottom = min(tile.top + tile.height + context, height)
        right = min(tile.left + tile.width + context, width)
        features = encoder.encode(lr[:, :, top:bottom, left:right])
        if condition is None:
            condition = features.new_empty(features.shape[0], features.shape[1], height, width)
        rows, cols = tile.lr_slices()
        condition[:, :, rows, cols] = features[
            :, :, tile.top - top : tile.top - top + tile.height, tile.left - left : tile.left - left + tile.width
        ]
    return condition


def repeat_rows(batch: torch.Tensor, count: int) -> torch.Tensor:
    """Each row `count` times in a row (the samples of one image are consecutive); a view for a batch of one."""
    if count == 1:
        return batch
    return batch.expand(count, -1, -1, -1) if batch.shape[0] == 1 else batch.repeat_interleave(count, dim=0)


class NoisePredictor:
    """Untiled: the condition is projected to HR once and every step is one U-Net call on the whole latents."""

    def __init__(self, unet: SRDiffUNet2DModel, condition: torch.Tensor, num_samples: int):
        self.unet = unet
        self.projected = repeat_rows(unet.project_condition(condition), num_samples)

    def __call__(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        return self.unet(sample, timestep, projected_condition=self.projected).sample


class TiledNoisePredictor:
    """
    Tiled: U-Net calls on crops of the latents, `batch_size` tiles per call (all tiles have one size), with the
    condition projected for those tiles only, and the predictions blended with [`blend_weights`] into one
    full-size prediction.

    Args:
        unet ([`SRDiffUNet2DModel`]): The noise predictor.
        condition (`torch.Tensor` of shape `(N, C, h, w)`): The encoder's condition for the whole (padded) LR images.
        tiles (`Sequence[Tile]`): From [`plan_tiles`].
        overlap (`int`): The tile overlap in LR pixels, which sets the blending ramps.
        num_samples (`int`): Samples per image: the latents' batch is `N * num_samples`.
        batch_size (`int`, *optional*, defaults to 1): Tiles per U-Net call.
    """

    def __init__(
        self,
        unet: SRDiffUNet2DModel,
        condition: torch.Tensor,
        tiles: Sequence[Tile],
        overlap: int,
        num_samples: int,
        batch_size: int = 1,
    ):
        self.unet, self.condition, self.tiles, self.num_samples = unet, condition, list(tiles), num_samples
        self.batch_size = batch_size
        self.scale = unet.config.upscale_factor
        height, width = condition.shape[-2:]
        self.weights = [blend_weights(tile, height, width, self.scale, overlap).to(condition.device) for tile in tiles]
        total = torch.zeros(height * self.scale, width * self.scale, device=condition.device)
        for tile, weight in zip(self.tiles, self.weights):
            total[tile.hr_slices(self.scale)] += weight
        self.normaliser = total.reciprocal()

    def _project(self, tile: Tile) -> torch.Tensor:
        # The projection (kernel 2s, stride s, padding s/2) reads one LR pixel beyond each HR pixel's own, so a
        # margin of one LR pixel makes the tile's projected condition equal to that crop of the full projection.
        height, width = self.condition.shape[-2:]
        top, left = max(tile.top - 1, 0), max(tile.left - 1, 0)
        bottom, right = min(tile.top + tile.height + 1, height), min(tile.left + tile.width + 1, width)
        projected = self.unet.project_condition(self.condition[:, :, top:bottom, left:right])
        y, x = (tile.top - top) * self.scale, (tile.left - left) * self.scale
        projected = projected[:, :, y : y + tile.height * self.scale, x : x + tile.width * self.scale]
        return repeat_rows(projected, self.num_samples)

    def __call__(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        blended = torch.zeros(sample.shape, dtype=torch.float32, device=sample.device)
        for first in range(0, len(self.tiles), self.batch_size):
            tiles = self.tiles[first : first + self.batch_size]
            crops = [sample[(slice(None), slice(None)) + tile.hr_slices(self.scale)] for tile in tiles]
            conditions = [self._project(tile) for tile in tiles]
            if len(tiles) == 1:
                predictions = [self.unet(crops[0], timestep, projected_condition=conditions[0]).sample]
            else:  # tile-major rows: tile k's rows are k * batch ... (k + 1) * batch - 1
                joint = self.unet(torch.cat(crops), timestep, projected_condition=torch.cat(conditions)).sample
                predictions = joint.chunk(len(tiles))
            for tile, weight, prediction in zip(tiles, self.weights[first : first + len(tiles)], predictions):
                rows, cols = tile.hr_slices(self.scale)
                blended[:, :, rows, cols] += prediction.float() * weight
        return blended * self.normaliser


def noise_predictor(
    unet: SRDiffUNet2DModel,
    encoder: RRDBEncoder,
    lr: torch.Tensor,
    num_samples: int,
    tile_size: Optional[Union[int, str]],
    overlap: int,
    batch_size: int = 1,
) -> Union[NoisePredictor, TiledNoisePredictor]:
    """
    Encodes padded LR images in [-1, 1] (a batch of one size) and returns `predict(sample, t) -> noise`, tiled or not
    as `tile_size` says (see [`resolve_tile_size`]); tiled, `batch_size` tiles go through the U-Net together.
    """
    height, width = lr.shape[-2:]
    tile_hw = tile_size_for(unet, height, width, tile_size, overlap)
    if tile_hw is None:
        return NoisePredictor(unet, encoder.encode(lr).to(unet.dtype), num_samples)
    tiles = plan_tiles(height, width, *tile_hw, overlap, lr_size_rule(unet)[0])
    # The encoder needs no blending, so its tiles abut (no overlap) and each sees `overlap` of context.
    condition = encode_tiled(encoder, lr, plan_tiles(height, width, *tile_hw, 0, 1), context=overlap)
    return TiledNoisePredictor(unet, condition.to(unet.dtype), tiles, overlap, num_samples, batch_size)


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
