# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The conditional noise predictor of SRDiff (Li et al., 2021), as a diffusers model."""

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d import UNet2DOutput

from ..argument_checks import is_int, is_real
from .activations import mish, mish_
from .padding import reflection_pad1
from .readable_weights import ReadableWeightsMixin
from .strict_loading import StrictLoadingMixin


class _ReflectionPaddedConv2d(nn.Conv2d):
    """
    A 3x3 convolution after one pixel of reflection padding, as SRDiff pads (not zeros). The same module, weights and
    values as `nn.Conv2d(..., padding=1, padding_mode="reflect")`; only the padding's backward is written so that
    torch.compile fuses it (see `models/padding.py`).
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv2d(reflection_pad1(input), weight, bias, self.stride, 0, self.dilation, self.groups)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return _ReflectionPaddedConv2d(in_channels, out_channels, 3, stride=stride, padding=1, padding_mode="reflect")


class SRDiffResnetBlock2D(nn.Module):
    r"""
    The residual block of SRDiff: reflection-padded 3x3 convolutions with Mish, no normalisation.

    Args:
        in_channels (`int`): Channels of the input.
        out_channels (`int`): Channels of the output.
        temb_channels (`int`): Size of the time embedding, added per channel after the first convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        residual = hidden_states if self.conv_shortcut is None else self.conv_shortcut(hidden_states)
        time_bias = self.time_emb_proj(mish(temb))[:, :, None, None]
        if torch.is_grad_enabled():
            hidden_states = mish(self.conv1(hidden_states))
            hidden_states = mish(self.conv2(hidden_states + time_bias))
            return hidden_states + residual
        # Without autograd, every intermediate below is a fresh convolution output that nothing else holds, so the
        # activations and additions can overwrite it (no new full-resolution tensor each time), and Mish can take
        # its one-exponential form (`mish_`, faster on the CPU and as accurate as `F.mish`; docs/performance.md).
        hidden_states = mish_(self.conv1(hidden_states)).add_(time_bias)
        return mish_(self.conv2(hidden_states)).add_(residual)


class SRDiffDownBlock2D(nn.Module):
    r"""Two residual blocks, then (except at the lowest resolution) a reflection-padded stride-2 convolution."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, add_downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                SRDiffResnetBlock2D(in_channels, out_channels, temb_channels),
                SRDiffResnetBlock2D(out_channels, out_channels, temb_channels),
            ]
        )
        self.downsampler = _conv3x3(out_channels, out_channels, stride=2) if add_downsample else None


class SRDiffUpBlock2D(nn.Module):
    r"""Concatenate the skip, two residual blocks, then a 4x4 stride-2 transposed convolution."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                SRDiffResnetBlock2D(in_channels, out_channels, temb_channels),
                SRDiffResnetBlock2D(out_channels, out_channels, temb_channels),
            ]
        )
        self.upsampler = nn.ConvTranspose2d(out_channels, out_channels, 4, stride=2, padding=1)


class SRDiffUNet2DModel(StrictLoadingMixin, ReadableWeightsMixin, ModelMixin, ConfigMixin):
    r"""
    The conditional noise predictor of SRDiff. It predicts the noise in a diffused HR residual, conditioned on
    low-resolution features of an [`RRDBEncoder`], which a transposed convolution projects to HR size and adds to
    the hidden state after the first contracting step.

    The architecture follows the authors' implementation exactly (Mish, reflection padding, no normalisation,
    sinusoidal time embedding, three expansive steps for four contracting ones; the first level's skip is unused),
    so that their checkpoints convert without loss.

    Parameters:
        in_channels (`int`, *optional*, defaults to 3): Channels of the noisy residual.
        out_channels (`int`, *optional*, defaults to 3): Channels of the predicted noise.
        block_out_channels (`Tuple[int]`, *optional*, defaults to `(64, 128, 192, 256)`):
            Width of each contracting step (the paper's `c * m_i`). The first is the base width `c`, which is also
            the size of the time embedding.
        condition_channels (`int`, *optional*, defaults to 96):
            Channels of the encoder condition (`RRDBEncoder.config.condition_channels`).
        upscale_factor (`int`, *optional*, defaults to 4): SR scale; sets the condition projection's kernel (`2s`),
            stride (`s`) and padding (`s // 2`).

    Example:

    ```py
    >>> import torch
    >>> from srdiff_diffusers import SRDiffUNet2DModel

    >>> unet = SRDiffUNet2DModel(block_out_channels=(8, 16, 16, 32), condition_channels=8, upscale_factor=4)
    >>> noise = unet(torch.randn(1, 3, 32, 32), 10, torch.randn(1, 8, 8, 8)).sample
    >>> noise.shape
    torch.Size([1, 3, 32, 32])
    ```
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        block_out_channels: Tuple[int, ...] = (64, 128, 192, 256),
        condition_channels: int = 96,
        upscale_factor: int = 4,
    ):
        super().__init__()
        if not isinstance(block_out_channels, (tuple, list)) or len(block_out_channels) < 2:
            raise ValueError(
                f"`block_out_channels` needs at least two levels (a tuple of widths), got {block_out_channels!r}."
            )
        sizes = dict(
            in_channels=in_channels, out_channels=out_channels, condition_channels=condition_channels,
            upscale_factor=upscale_factor,
            **{f"block_out_channels[{i}]": width for i, width in enumerate(block_out_channels)},
        )
        for name, value in sizes.items():
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if upscale_factor < 2 or upscale_factor % 2:
            # The projection (kernel 2s, stride s, padding s // 2) gives exactly s * H only for even s.
            raise ValueError(f"`upscale_factor` must be an even integer >= 2, got {upscale_factor}.")
        base = block_out_channels[0]
        if base % 2 or base < 4:
            raise ValueError(
                f"`block_out_channels[0]` sets the time embedding size and must be even and >= 4, got {base}."
            )

        # 1. time: sin half then cos half, frequencies exp(-log(10000) * i / (c/2 - 1)), then an MLP with Mish.
        self.time_proj = Timesteps(base, flip_sin_to_cos=False, downscale_freq_shift=1)
        self.time_embedding = TimestepEmbedding(base, base * 4, act_fn="mish", out_dim=base)

        # 2. condition: LR features to HR size and base width.
        self.condition_projection = nn.ConvTranspose2d(
            condition_channels, base, 2 * upscale_factor, stride=upscale_factor, padding=upscale_factor // 2
        )

        # 3. contracting path
        widths = [in_channels, *block_out_channels]
        self.down_blocks = nn.ModuleList(
            [
                SRDiffDownBlock2D(widths[i], widths[i + 1], base, add_downsample=i < len(block_out_channels) - 1)
                for i in range(len(block_out_channels))
            ]
        )

        # 4. middle
        mid = block_out_channels[-1]
        self.mid_block = nn.ModuleList([SRDiffResnetBlock2D(mid, mid, base), SRDiffResnetBlock2D(mid, mid, base)])

        # 5. expansive path: one step fewer than the contracting one, so the first level's skip is never used.
        self.up_blocks = nn.ModuleList(
            [
                SRDiffUpBlock2D(block_out_channels[i + 1] * 2, block_out_channels[i], base)
                for i in reversed(range(len(block_out_channels) - 1))
            ]
        )

        # 6. output
        self.conv_norm_out = _conv3x3(base, base)  # no normalisation in SRDiff; kept as a pad/conv/Mish block
        self.conv_out = nn.Conv2d(base, out_channels, 1)

    @property
    def sample_size_multiple(self) -> int:
        """HR height and width must be multiples of this (one halving per contracting step but the last)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def min_sample_size(self) -> int:
        """The smallest HR height and width: the lowest level reflection-pads by one pixel, so it needs 2."""
        return 2 * self.sample_size_multiple

    def project_condition(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        r"""
        Projects encoder features to HR size. The projection does not depend on the timestep, so a sampler can
        compute it once per image and pass it as `projected_condition` to every [`~SRDiffUNet2DModel.forward`].
        """
        if encoder_hidden_states.device.type == "cpu":
            # In the layout the network runs in on the CPU (see `forward`), so that adding it is one plain pass.
            encoder_hidden_states = encoder_hidden_states.contiguous(memory_format=torch.channels_last)
        return self.condition_projection(encoder_hidden_states)

    def check_inputs(self, sample, timestep, encoder_hidden_states, projected_condition) -> None:
        """Names the argument of `forward` at fault; `forward` runs it only after a failure."""
        if not torch.is_tensor(sample) or sample.ndim != 4 or sample.shape[1] != self.config.in_channels:
            shape = tuple(sample.shape) if torch.is_tensor(sample) else type(sample).__name__
            raise ValueError(f"`sample` must be a (batch, {self.config.in_channels}, H, W) tensor, got {shape}.")
        batch = sample.shape[0]
        if projected_condition is None:
            if encoder_hidden_states is None:
                raise ValueError("Pass `encoder_hidden_states` (from `RRDBEncoder.encode`) or `projected_condition`.")
            channels = self.config.condition_channels
            if encoder_hidden_states.ndim != 4 or encoder_hidden_states.shape[1] != channels:
                raise ValueError(
                    f"`encoder_hidden_states` must be (batch, {channels}, H / {self.config.upscale_factor}, "
                    f"W / {self.config.upscale_factor}) from `RRDBEncoder.encode`, got "
                    f"{tuple(encoder_hidden_states.shape)}."
                )
            scale = self.config.upscale_factor
            batch_size, _, height, width = encoder_hidden_states.shape
            # the projection's shape, without running it: (batch, base, s * H, s * W) for an even scale s
            projected_shape = (batch_size, self.config.block_out_channels[0], height * scale, width * scale)
        else:
            projected_shape = tuple(projected_condition.shape)
        multiple, minimum = self.sample_size_multiple, self.min_sample_size
        if sample.shape[-2] % multiple or sample.shape[-1] % multiple or min(sample.shape[-2:]) < minimum:
            raise ValueError(
                f"`sample` height and width must be multiples of {multiple} and at least {minimum} (the lowest "
                f"level reflection-pads 2 pixels), got {tuple(sample.shape[-2:])}; pad the image first "
                "(SRDiffPipeline does this for you)."
            )
        expected = (self.config.block_out_channels[0],) + tuple(sample.shape[-2:])
        if len(projected_shape) != 4 or tuple(projected_shape[1:]) != expected:
            raise ValueError(
                f"The projected condition is {projected_shape} but `sample` needs (batch, "
                f"*{expected}): the encoder features must be {self.config.upscale_factor}x smaller than the sample."
            )
        if projected_shape[0] not in (1, batch):
            raise ValueError(
                f"The condition has batch {projected_shape[0]} and `sample` {batch}: give 1 or {batch}."
            )
        if not (torch.is_tensor(timestep) or is_real(timestep)):
            raise TypeError(f"`timestep` must be a number or a tensor, got {type(timestep).__name__}.")
        if torch.is_tensor(timestep) and (timestep.ndim > 1 or timestep.numel() not in (1, batch)):
            raise ValueError(
                f"`timestep` must be one number or one per sample ({batch}), got shape {tuple(timestep.shape)}."
            )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: Union[torch.Tensor, float, int],
        encoder_hidden_states: Optional[torch.Tensor] = None,
        return_dict: bool = True,
        projected_condition: Optional[torch.Tensor] = None,
    ) -> Union[UNet2DOutput, Tuple[torch.Tensor]]:
        r"""
        Args:
            sample (`torch.Tensor` of shape `(batch, in_channels, H, W)`): The noisy residual; `H` and `W` must be
                multiples of [`~SRDiffUNet2DModel.sample_size_multiple`].
            timestep (`torch.Tensor`, `float` or `int`): The diffusion step: a number, a 0-d tensor or one per sample.
            encoder_hidden_states (`torch.Tensor` of shape `(batch, condition_channels, H / s, W / s)`):
                The condition from [`RRDBEncoder.encode`].
            return_dict (`bool`, *optional*, defaults to `True`): Return a [`UNet2DOutput`] instead of a tuple.
            projected_condition (`torch.Tensor`, *optional*): The output of
                [`~SRDiffUNet2DModel.project_condition`], used instead of `encoder_hidden_states` when given.

        Returns:
            [`UNet2DOutput`] or `tuple`: the predicted noise.
        """
        try:
            sample = self._predict_noise(sample, timestep, encoder_hidden_states, projected_condition)
        except (RuntimeError, TypeError, ValueError, IndexError, AttributeError):
            # Checked only after a failure, so that denoising steps do not pay for it; this names the argument at fault.
            self.check_inputs(sample, timestep, encoder_hidden_states, projected_condition)
            raise
        if not return_dict:
            return (sample,)
        return UNet2DOutput(sample=sample)

    def _predict_noise(self, sample, timestep, encoder_hidden_states, projected_condition) -> torch.Tensor:
        if projected_condition is None:
            projected_condition = self.project_condition(encoder_hidden_states)

        # 1. time
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float32, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.float().expand(sample.shape[0])
        temb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))

        # 2. contracting path, adding the condition after the first step's residual blocks. On the CPU the network
        # runs channels_last whatever its input's layout, where oneDNN's convolutions are faster (docs/performance.md)
        # with the same values to ~1e-7; the output keeps the input's layout.
        input_is_channels_last = sample.is_contiguous(memory_format=torch.channels_last)
        hidden_states = sample
        if sample.device.type == "cpu":
            hidden_states = sample.contiguous(memory_format=torch.channels_last)
        skips = []
        for i, block in enumerate(self.down_blocks):
            for resnet in block.resnets:
                hidden_states = resnet(hidden_states, temb)
            if i == 0:
                # the one mistake torch would not report: a condition it can broadcast (size 1, fewer dimensions)
                if projected_condition.shape[1:] != hidden_states.shape[1:]:
                    raise ValueError(f"The projected condition is {tuple(projected_condition.shape)}.")
                condition = projected_condition.expand_as(hidden_states)  # batch 1 serves all; another batch fails
                if torch.is_grad_enabled():
                    hidden_states = hidden_states + condition
                else:
                    hidden_states = hidden_states.add_(condition)  # a fresh block output, as above
            skips.append(hidden_states)
            if block.downsampler is not None:
                hidden_states = block.downsampler(hidden_states)

        # 3. middle
        for resnet in self.mid_block:
            hidden_states = resnet(hidden_states, temb)

        # 4. expansive path
        for block in self.up_blocks:
            hidden_states = torch.cat([hidden_states, skips.pop()], dim=1)
            for resnet in block.resnets:
                hidden_states = resnet(hidden_states, temb)
            hidden_states = block.upsampler(hidden_states)

        # 5. output
        hidden_states = self.conv_norm_out(hidden_states)
        if torch.is_grad_enabled():
            hidden_states = mish(hidden_states)
        else:
            hidden_states = mish_(hidden_states)  # a fresh convolution output, as in the blocks
        sample = self.conv_out(hidden_states)
        return sample if input_is_channels_last else sample.contiguous()
