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
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
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
    >>> from srdiff_diffusers.image_processing import imresize

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


# ---------------------------------------------------------------------------------------------------------------
# Conversion between what users pass (PIL, numpy, torch) and what the models take ((1, 3, H, W) floats in [0, 1]).
# ---------------------------------------------------------------------------------------------------------------

_SUPPORTED_PIL_MODES = ("RGB", "L", "P", "RGBA", "LA", "F")


@dataclass
class PreparedImage:
    """One LR image as the models take it, plus what is needed to give the result back in the input's form."""

    rgb: torch.Tensor  # (1, 3, H, W) float32 in [0, 1]
    alpha: Optional[torch.Tensor] = None  # (1, 1, H, W) float32 in [0, 1]
    kind: str = "pt"  # "pil", "np" or "pt": how the image was given
    mode: str = "RGB"  # "RGB", "L", "P", "RGBA" or "LA"
    palette_image: Optional["PIL.Image.Image"] = None


def _rgb_from_channels(image: torch.Tensor, what: str) -> Tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """Splits a (1, C, H, W) [0, 1] tensor into RGB and alpha by its channel count."""
    channels = image.shape[1]
    if channels == 1:
        return image.expand(-1, 3, -1, -1), None, "L"
    if channels == 2:
        return image[:, :1].expand(-1, 3, -1, -1), image[:, 1:], "LA"
    if channels == 3:
        return image, None, "RGB"
    if channels == 4:
        return image[:, :3], image[:, 3:], "RGBA"
    raise ValueError(
        f"{what} has {channels} channels; SRDiff takes 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels."
    )


# Float images may leave [0, 1] by this much (float32 rounding after resizing or arithmetic); they are clipped.
_RANGE_TOLERANCE = 1e-5


def _check_values(image: torch.Tensor, what: str) -> torch.Tensor:
    """Checks a float image and returns it clipped to [0, 1] (a copy only when a value is outside)."""
    if image.numel() == 0 or min(image.shape[-2:]) < 1:
        raise ValueError(f"{what} is empty (shape {tuple(image.shape)}).")
    if not torch.isfinite(image).all():
        raise ValueError(f"{what} contains NaN or infinite values; clean the image before upscaling it.")
    low, high = image.min().item(), image.max().item()
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ValueError(
            f"{what} has values in [{low:.8g}, {high:.8g}] but float images must be in [0, 1]; divide uint8 data "
            "by 255 (or pass it as uint8), or clip it (`.clip(0, 1)`)."
        )
    return image.clamp(0, 1) if low < 0 or high > 1 else image


def _check_channel_axis(shape: Tuple[int, ...], kind: str, layout: str, transposed: str, fix: str) -> None:
    """Refuses an image whose channel axis holds more than 4 values, saying so when it looks transposed."""
    channels_last = layout.endswith("C)")
    channels, other = (shape[-1], shape[-3]) if channels_last else (shape[-3], shape[-1])
    if channels <= 4:
        return
    message = f"The {kind} image has {channels} channels; SRDiff takes 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)."
    if other <= 4:
        message += f" It looks {transposed}: {kind} images are {layout}; pass `{fix}`."
    raise ValueError(message)


def _prepare_pil(image: "PIL.Image.Image") -> PreparedImage:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        raise ValueError(
            f"16/32-bit integer PIL images (mode {mode!r}) are not supported: pass "
            "`np.asarray(image, dtype=np.float32) / 65535` (a float array in [0, 1]) or convert to 8-bit."
        )
    if mode not in _SUPPORTED_PIL_MODES:
        raise ValueError(
            f"Unsupported PIL image mode {mode!r}; convert it first, e.g. `image.convert('RGB')`. "
            f"Supported: {', '.join(_SUPPORTED_PIL_MODES)}."
        )
    if image.width < 1 or image.height < 1:
        raise ValueError(f"The PIL image is empty ({image.width}x{image.height}).")
    palette_image = image if mode == "P" else None
    if mode == "P":
        # Palette images with transparency carry it as alpha.
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        tensor = _check_values(torch.from_numpy(array.copy())[None, None], "The mode 'F' PIL image")
    else:
        try:  # a lazily opened PIL image is decoded here
            array = np.asarray(image)
        except OSError as error:
            raise ValueError(
                f"The PIL image could not be decoded ({error}): the file is truncated or corrupt."
            ) from None
        if array.ndim == 2:
            array = array[:, :, None]
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255
    rgb, alpha, channel_mode = _rgb_from_channels(tensor, "The PIL image")
    out_mode = "P" if palette_image is not None else ("L" if mode == "F" else channel_mode)
    return PreparedImage(rgb.contiguous(), alpha, "pil", out_mode, palette_image)


def _prepare_numpy(array: np.ndarray) -> List[PreparedImage]:
    if array.dtype == np.uint16 or array.dtype == np.int32:
        raise ValueError(
            f"{array.dtype} images are not supported: pass `array.astype(np.float32) / 65535` "
            "(float in [0, 1]) for 16-bit data."
        )
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(array.copy()).float() / 255
    elif np.issubdtype(array.dtype, np.floating):
        tensor = torch.from_numpy(array.astype(np.float32, copy=True))
    else:
        raise TypeError(f"numpy images must be uint8 or float in [0, 1], got dtype {array.dtype}.")
    if tensor.ndim == 2:  # H x W gray
        tensor = tensor[None, :, :, None]
    elif tensor.ndim == 3:  # H x W x C
        tensor = tensor[None]
    elif tensor.ndim != 4:
        raise ValueError(f"numpy images must be HxW, HxWxC or NxHxWxC, got shape {array.shape}.")
    if array.ndim >= 3:
        fix = "array.transpose(1, 2, 0)" if array.ndim == 3 else "array.transpose(0, 2, 3, 1)"
        _check_channel_axis(array.shape, "numpy", "(H, W, C)", "channels-first", fix)
    tensor = _check_values(tensor.permute(0, 3, 1, 2), "The numpy image")
    prepared = []
    for item in tensor.split(1):
        rgb, alpha, mode = _rgb_from_channels(item, "The numpy image")
        prepared.append(PreparedImage(rgb.contiguous(), alpha, "np", mode))
    return prepared


def _prepare_torch(tensor: torch.Tensor) -> List[PreparedImage]:
    shape = tuple(tensor.shape)
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255
    elif not tensor.is_floating_point():
        raise TypeError(f"torch images must be float in [0, 1] (or uint8), got dtype {tensor.dtype}.")
    if tensor.ndim == 3:  # C x H x W
        tensor = tensor[None]
    elif tensor.ndim != 4:
        raise ValueError(f"torch images must be CxHxW or NxCxHxW, got shape {tuple(tensor.shape)}.")
    fix = "tensor.permute(2, 0, 1)" if len(shape) == 3 else "tensor.permute(0, 3, 1, 2)"
    _check_channel_axis(shape, "torch", "(C, H, W)", "channels-last", fix)
    tensor = _check_values(tensor.detach().float().cpu(), "The torch image")
    prepared = []
    for item in tensor.split(1):
        rgb, alpha, mode = _rgb_from_channels(item, "The torch image")
        prepared.append(PreparedImage(rgb.contiguous(), alpha, "pt", mode))
    return prepared


def prepare_images(image) -> List[PreparedImage]:
    """
    Turns the pipeline's `image` argument into a list of [`PreparedImage`], raising `TypeError`/`ValueError` with
    what to do for anything it cannot take.
    """
    if image is None:
        raise ValueError("`image` is required: pass a PIL image, a numpy array, a torch tensor or a list of them.")
    if isinstance(image, (list, tuple)):
        if len(image) == 0:
            raise ValueError("`image` is an empty list; pass at least one image.")
        return [prepared for item in image for prepared in prepare_images(item)]
    if isinstance(image, PIL.Image.Image):
        return [_prepare_pil(image)]
    if isinstance(image, np.ndarray):
        return _prepare_numpy(image)
    if torch.is_tensor(image):
        return _prepare_torch(image)
    raise TypeError(
        f"`image` must be a PIL.Image.Image, numpy.ndarray, torch.Tensor or a list of them, got {type(image).__name__}."
    )


def to_output_channels(rgb: torch.Tensor, prepared: PreparedImage, scale: int) -> torch.Tensor:
    """
    Gives an upscaled (N, 3, H, W) [0, 1] result the input's channels: gray inputs back to one channel (ITU-R 601
    luma, as PIL), and alpha, upscaled with MATLAB bicubic, appended.
    """
    if prepared.mode in ("L", "LA"):
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
        out = (rgb * luma[None, :, None, None]).sum(dim=1, keepdim=True)
    else:
        out = rgb
    if prepared.alpha is not None:
        alpha = imresize(prepared.alpha.to(rgb.device, rgb.dtype), scale=scale).clamp(0, 1)
        out = torch.cat([out, alpha.expand(out.shape[0], -1, -1, -1)], dim=1)
    return out


def tensor_to_pil(image: torch.Tensor, prepared: PreparedImage) -> "PIL.Image.Image":
    """Converts one (C, H, W) [0, 1] result to a PIL image in the input's mode."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        pil = PIL.Image.fromarray(array[:, :, 0], mode="L")
    else:
        pil = PIL.Image.fromarray(array, mode={2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])
    if prepared.mode == "P" and prepared.palette_image is not None and pil.mode == "RGB":
        pil = pil.quantize(palette=prepared.palette_image, dither=PIL.Image.Dither.NONE)
    return pil
