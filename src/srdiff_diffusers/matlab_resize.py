# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""MATLAB-compatible bicubic resizing in torch.

SR benchmarks (DIV2K, Set14, BSD100, ...) make their LR images with MATLAB's `imresize(HR, 1/s, 'bicubic')`,
which antialiases when downscaling; PIL and `torch.nn.functional.interpolate` do not match it. This is a batched
torch port written from the algorithm: for every output pixel, a Keys cubic kernel (a = -0.5), stretched by `1/s`
when downscaling, is evaluated at the input pixels it covers, its weights are normalised to sum to one, and
out-of-range inputs are mirrored (symmetric padding). Each axis becomes a dense `(out, in)` matrix, so resizing
is two matrix products that run on any device and float dtype.
"""

import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import torch


def cubic_kernel(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's `cubic`."""
    absx = x.abs()
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


def resize_weights(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """
    The `(out_length, in_length)` float64 matrix that resizes one axis like MATLAB's bicubic `imresize`.

    Args:
        in_length (`int`): Input size along the axis.
        out_length (`int`): Output size along the axis.
        scale (`float`): Scale factor (`out / in` when the size was given).
        antialiasing (`bool`, *optional*, defaults to `True`): Widen the kernel by `1 / scale` when downscaling.
    """
    kernel_width = 4.0
    stretch = antialiasing and scale < 1
    if stretch:
        kernel_width /= scale
    # Output pixel centres, in 1-based input coordinates.
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic_kernel(scale * distance) if stretch else cubic_kernel(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror out-of-range taps (MATLAB's symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...).
    period = 2 * in_length
    idx = (indices.long() - 1) % period
    idx = torch.where(idx >= in_length, period - 1 - idx, idx)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, idx, weights)
    return matrix


def _output_size(
    in_size: Tuple[int, int], scale: Optional[Union[float, Sequence[float]]], size: Optional[Sequence[int]]
) -> Tuple[Tuple[int, int], Tuple[float, float]]:
    if (scale is None) == (size is None):
        raise ValueError("Pass exactly one of `scale` or `size` to `imresize`.")
    if size is not None:
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in size)
        ):
            raise ValueError(f"`size` must be (height, width) of positive integers, got {size!r}.")
        out = (int(size[0]), int(size[1]))
        return out, (out[0] / in_size[0], out[1] / in_size[1])
    scales = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if (
        len(scales) != 2
        or any(isinstance(s, bool) or not isinstance(s, numbers.Real) for s in scales)
        or not all(0 < s < math.inf for s in scales)
    ):
        raise ValueError(f"`scale` must be a positive finite number or (h, w) of them, got {scale!r}.")
    scales = tuple(float(s) for s in scales)
    out = (math.ceil(in_size[0] * scales[0]), math.ceil(in_size[1] * scales[1]))
    return out, scales


def imresize(
    image: torch.Tensor,
    scale: Optional[Union[float, Sequence[float]]] = None,
    size: Optional[Sequence[int]] = None,
    antialiasing: bool = True,
) -> torch.Tensor:
    r"""
    Resizes images exactly like MATLAB's `imresize(image, scale, 'bicubic')`.

    Args:
        image (`torch.Tensor`): `(..., H, W)` images, e.g. `(N, C, H, W)`; any device. Float images are resized
            without clamping. uint8 images come back as uint8 and, as in MATLAB, are rounded and clipped after
            each axis (this is how benchmark LR sets were made).
        scale (`float` or `(float, float)`, *optional*): Scale factor; the output size is `ceil(H * scale)`.
        size (`(int, int)`, *optional*): Output `(height, width)` instead of a scale.
        antialiasing (`bool`, *optional*, defaults to `True`): Low-pass when downscaling, as MATLAB.

    Returns:
        `torch.Tensor`: `(..., H_out, W_out)`, same dtype and device.

    Example:

    ```py
    >>> import torch
    >>> from srdiff_diffusers.matlab_resize import imresize

    >>> hr = torch.rand(1, 3, 64, 64)
    >>> imresize(hr, scale=1 / 4).shape
    torch.Size([1, 3, 16, 16])
    ```
    """
    if not torch.is_tensor(image):
        raise TypeError(f"`imresize` takes a torch tensor, got {type(image).__name__}; use `torch.from_numpy`.")
    is_uint8 = image.dtype == torch.uint8
    if not (is_uint8 or image.is_floating_point()):
        raise TypeError(f"`imresize` takes a float or uint8 tensor, got {image.dtype}.")
    if image.ndim < 2:
        raise ValueError(f"`imresize` needs at least (H, W) dimensions, got shape {tuple(image.shape)}.")
    in_size = (image.shape[-2], image.shape[-1])
    out_size, scales = _output_size(in_size, scale, size)
    # MATLAB resizes the axis with the smaller scale first; for equal scales, height first.
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    out = image.double() if is_uint8 else image
    for axis in order:
        if out_size[axis] == in_size[axis] and scales[axis] == 1:
            continue
        weights = resize_weights(in_size[axis], out_size[axis], scales[axis], antialiasing)
        weights = weights.to(device=image.device, dtype=out.dtype)
        if axis == 0:
            out = torch.einsum("oh,...hw->...ow", weights, out)
        else:
            out = torch.einsum("ow,...hw->...ho", weights, out)
        if is_uint8:
            # MATLAB rounds half away from zero; values are non-negative after clipping.
            out = torch.floor(out.clamp(0, 255) + 0.5)
    return out.to(torch.uint8) if is_uint8 else out.contiguous()
