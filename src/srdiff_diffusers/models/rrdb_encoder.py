# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The RRDB low-resolution encoder of SRDiff, with its PSNR-oriented SR head, as a diffusers model."""

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

from ..argument_checks import is_int
from .readable_weights import ReadableWeightsMixin
from .strict_loading import StrictLoadingMixin


@dataclass
class RRDBEncoderOutput(BaseOutput):
    """
    The output of [`RRDBEncoder`].

    Args:
        sample (`torch.Tensor` of shape `(batch, out_channels, H * s, W * s)`):
            The SR head's image in [-1, 1] (the paper's "RRDB" baseline; used for L1 pre-training).
        condition (`torch.Tensor` of shape `(batch, condition_channels, H, W)`):
            The features that condition the noise predictor.
        hidden_states (`tuple(torch.Tensor)`, *optional*):
            Every RRDB block's output followed by the trunk output, with `output_hidden_states=True`.
    """

    sample: torch.Tensor
    # A default, so that accelerate's mixed-precision output wrapper can rebuild the dataclass field by field.
    condition: Optional[torch.Tensor] = None
    hidden_states: Optional[Tuple[torch.Tensor, ...]] = None


class ResidualDenseBlock(nn.Module):
    r"""
    Five densely connected 3x3 convolutions (ESRGAN).

    Args:
        num_features (`int`): Channels in and out.
        growth_channels (`int`): Channels each inner convolution adds.
    """

    def __init__(self, num_features: int, growth_channels: int):
        super().__init__()
        nf, gc = num_features, growth_channels
        self.conv1 = nn.Conv2d(nf, gc, 3, padding=1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, padding=1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, padding=1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, padding=1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Residual scaling by 0.2 keeps the very deep trunk stable without normalisation.
        return x5 * 0.2 + x


class RRDB(nn.Module):
    r"""Residual-in-residual dense block: three dense blocks and a scaled (0.2) outer residual."""

    def __init__(self, num_features: int, growth_channels: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_features, growth_channels)
        self.rdb2 = ResidualDenseBlock(num_features, growth_channels)
        self.rdb3 = ResidualDenseBlock(num_features, growth_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBEncoder(StrictLoadingMixin, ReadableWeightsMixin, ModelMixin, ConfigMixin):
    r"""
    The LR encoder of SRDiff: an RRDB network (ESRGAN) whose block outputs condition the noise predictor. Its own SR
    head is trained first with an L1 loss; it then gives the PSNR-oriented "RRDB" result of the paper's tables.

    Images are in [-1, 1], as everywhere in SRDiff.

    Parameters:
        in_channels (`int`, *optional*, defaults to 3): Channels of the LR image.
        out_channels (`int`, *optional*, defaults to 3): Channels of the SR head's image.
        num_features (`int`, *optional*, defaults to 32): Trunk width `nf`.
        num_blocks (`int`, *optional*, defaults to 8): Number of RRDB blocks `nb`.
        growth_channels (`int`, *optional*): Growth of the dense blocks; defaults to `num_features // 2`.
        upscale_factor (`int`, *optional*, defaults to 4): SR scale of the head, a power of two.
        condition_feature_indices (`Tuple[int]`, *optional*): Which of the `num_blocks + 1` features (every block's
            output, then the trunk output) are concatenated into the condition; defaults to 2, 5, 8, ... as in the
            paper's code.

    Example:

    ```py
    >>> import torch
    >>> from srdiff_diffusers import RRDBEncoder

    >>> encoder = RRDBEncoder(num_features=8, num_blocks=2, upscale_factor=4)
    >>> out = encoder(torch.rand(1, 3, 16, 16) * 2 - 1)
    >>> out.sample.shape, out.condition.shape
    (torch.Size([1, 3, 64, 64]), torch.Size([1, 8, 16, 16]))
    ```
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 32,
        num_blocks: int = 8,
        growth_channels: Optional[int] = None,
        upscale_factor: int = 4,
        condition_feature_indices: Optional[Tuple[int, ...]] = None,
    ):
        super().__init__()
        sizes = dict(
            in_channels=in_channels, out_channels=out_channels, num_features=num_features, num_blocks=num_blocks,
            upscale_factor=upscale_factor,
        )
        for name, value in sizes.items():
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if upscale_factor < 2 or upscale_factor & (upscale_factor - 1):
            raise ValueError(f"`upscale_factor` must be a power of two >= 2, got {upscale_factor}.")
        if growth_channels is None and num_features < 2:
            raise ValueError(f"`num_features` must be >= 2 (the dense blocks grow by half of it), got {num_features}.")
        if growth_channels is not None and (not isinstance(growth_channels, numbers.Integral) or growth_channels < 1):
            raise ValueError(f"`growth_channels` must be a positive integer, got {growth_channels!r}.")
        if condition_feature_indices is None and num_blocks < 2:
            raise ValueError(
                f"`num_blocks` must be >= 2 for the default condition (features 2, 5, 8, ...: the paper's), got "
                f"{num_blocks}; or pass `condition_feature_indices`."
            )
        if growth_channels is None:
            growth_channels = num_features // 2
            self.register_to_config(growth_channels=growth_channels)
        if condition_feature_indices is None:
            condition_feature_indices = tuple(range(2, num_blocks + 1, 3))
            self.register_to_config(condition_feature_indices=condition_feature_indices)
        if not isinstance(condition_feature_indices, (tuple, list)):
            raise ValueError(
                f"`condition_feature_indices` must be a tuple of indices, got {condition_feature_indices!r}."
            )
        condition_feature_indices = tuple(condition_feature_indices)
        if not condition_feature_indices or any(
            not isinstance(i, numbers.Integral) or not 0 <= i <= num_blocks for i in condition_feature_indices
        ):
            raise ValueError(
                f"`condition_feature_indices` must be a non-empty subset of 0..{num_blocks} (the block outputs and "
                f"the trunk output), got {condition_feature_indices}."
            )

        self.conv_in = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.blocks = nn.ModuleList([RRDB(num_features, growth_channels) for _ in range(num_blocks)])
        self.conv_trunk = nn.Conv2d(num_features, num_features, 3, padding=1)
        # SR head: (nearest x2, conv, LeakyReLU) per factor of two, then two more convolutions.
        self.upsamplers = nn.ModuleList(
            [nn.Conv2d(num_features, num_features, 3, padding=1) for _ in range(int(math.log2(upscale_factor)))]
        )
        self.conv_hr = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_out = nn.Conv2d(num_features, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2)

    @property
    def condition_channels(self) -> int:
        """Channels of [`~RRDBEncoder.encode`]'s output; the noise predictor's `condition_channels`."""
        return self.config.num_features * len(self.config.condition_feature_indices)

    def _features(self, lr: torch.Tensor, stop_early: bool) -> Tuple[torch.Tensor, ...]:
        if not torch.is_tensor(lr) or not lr.is_floating_point():
            what = lr.dtype if torch.is_tensor(lr) else type(lr).__name__
            raise TypeError(
                f"`lr` must be a float tensor in [-1, 1], got {what}; convert uint8 images with `x / 127.5 - 1`."
            )
        if lr.ndim != 4 or lr.shape[1] != self.config.in_channels:
            raise ValueError(
                f"Expected an LR batch of shape (batch, {self.config.in_channels}, H, W), got {tuple(lr.shape)}."
            )
        if lr.numel() and lr.device.type == "cpu":
            # 0-255 data gives saturated garbage (5 dB) silently; read its range only where that syncs no device.
            low, high = (float(v) for v in torch.aminmax(lr.detach()))
            if not -1.5 <= low <= high <= 1.5:
                raise ValueError(
                    f"`lr` has values in [{low:.4g}, {high:.4g}]; the encoder takes LR images in [-1, 1] "
                    "(`x / 127.5 - 1` for uint8 data, `2 * x - 1` for [0, 1] data)."
                )
        # Trained on [0, 1] inputs; SRDiff passes [-1, 1] everywhere else.
        first = hidden = self.conv_in((lr + 1) / 2)
        features = []
        last_needed = max(self.config.condition_feature_indices)
        for i, block in enumerate(self.blocks):
            hidden = block(hidden)
            features.append(hidden)
            if stop_early and i >= last_needed:
                return tuple(features)
        features.append(first + self.conv_trunk(hidden))
        return tuple(features)

    def _condition(self, features: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.cat([features[i] for i in self.config.condition_feature_indices], dim=1)

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        r"""
        Returns only the condition for the noise predictor, without running the SR head (nor the blocks after the
        last one it needs).

        Args:
            lr (`torch.Tensor` of shape `(batch, in_channels, H, W)`): LR images in [-1, 1].
        """
        return self._condition(self._features(lr, stop_early=True))

    def forward(self, lr: torch.Tensor, output_hidden_states: bool = False, return_dict: bool = True):
        r"""
        Args:
            lr (`torch.Tensor` of shape `(batch, in_channels, H, W)`): LR images in [-1, 1].
            output_hidden_states (`bool`, *optional*, defaults to `False`): Also return every feature map.
            return_dict (`bool`, *optional*, defaults to `True`): Return an [`RRDBEncoderOutput`], else a tuple.

        Returns:
            [`RRDBEncoderOutput`] or `tuple` `(sample, condition[, hidden_states])`.
        """
        features = self._features(lr, stop_early=False)
        hidden = features[-1]
        for conv in self.upsamplers:
            hidden = self.lrelu(conv(F.interpolate(hidden, scale_factor=2, mode="nearest")))
        sample = self.conv_out(self.lrelu(self.conv_hr(hidden)))
        sample = sample.clamp(0, 1) * 2 - 1
        condition = self._condition(features)
        hidden_states = features if output_hidden_states else None
        if not return_dict:
            return (sample, condition) + ((hidden_states,) if output_hidden_states else ())
        return RRDBEncoderOutput(sample=sample, condition=condition, hidden_states=hidden_states)
