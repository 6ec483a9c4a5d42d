# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The one place where images change type (PIL, numpy, torch) or value range ([0, 1], [-1, 1], 0-255):
[`SRDiffImageProcessor`], after diffusers' `VaeImageProcessor`. The pipelines hold one as `pipe.image_processor`;
evaluation, training and the commands use its static methods.
"""

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch

from .matlab_resize import imresize

_SUPPORTED_PIL_MODES = ("RGB", "L", "P", "RGBA", "LA", "F")
# Modes PIL gives 16-bit (and 32-bit integer) gray files.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Modes converted on the way in (and given back in the converted mode): print-workflow CMYK JPEGs, 1-bit scans, ...
CONVERTED_PIL_MODES = {
    "1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBX": "RGB", "La": "LA", "RGBa": "RGBA",
    "PA": "RGBA",
}  # fmt: skip


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
    if image.mode in CONVERTED_PIL_MODES:
        image = image.convert(CONVERTED_PIL_MODES[image.mode])
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
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
        array = np.asarray(image, dtype=np.float32)  # already in [0, 1], checked below
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


def _prepare_images(image) -> List[PreparedImage]:
    """
    Turns the pipeline's `image` argument into a list of [`PreparedImage`], raising `TypeError`/`ValueError` with
    what to do for anything it cannot take.
    """
    if image is None:
        raise ValueError("`image` is required: pass a PIL image, a numpy array, a torch tensor or a list of them.")
    if isinstance(image, (list, tuple)):
        if len(image) == 0:
            raise ValueError("`image` is an empty list; pass at least one image.")
        return [prepared for item in image for prepared in _prepare_images(item)]
    if isinstance(image, PIL.Image.Image):
        return [_prepare_pil(image)]
    if isinstance(image, np.ndarray):
        return _prepare_numpy(image)
    if torch.is_tensor(image):
        return _prepare_torch(image)
    raise TypeError(
        f"`image` must be a PIL.Image.Image, numpy.ndarray, torch.Tensor or a list of them, got {type(image).__name__}."
    )


def _to_output_channels(rgb: torch.Tensor, prepared: PreparedImage, scale: int) -> torch.Tensor:
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


def _tensor_to_pil(image: torch.Tensor, prepared: PreparedImage) -> "PIL.Image.Image":
    """Converts one (C, H, W) [0, 1] result to a PIL image in the input's mode."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        pil = PIL.Image.fromarray(array[:, :, 0], mode="L")
    else:
        pil = PIL.Image.fromarray(array, mode={2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])
    if prepared.mode == "P" and prepared.palette_image is not None and pil.mode == "RGB":
        pil = pil.quantize(palette=prepared.palette_image, dither=PIL.Image.Dither.NONE)
    return pil


class SRDiffImageProcessor:
    r"""
    Image pre- and post-processing for SRDiff, after diffusers' `VaeImageProcessor`:
    [`~SRDiffImageProcessor.preprocess`] turns what users pass into `(1, 3, H, W)` float tensors in [0, 1] plus what
    is needed to give the result back in the input's form, and [`~SRDiffImageProcessor.postprocess`] does the
    reverse. The static methods are the other
    conversions of the package (uint8 arrays for the metrics, PIL figures, [-1, 1] for the models).
    """

    def preprocess(self, image) -> List[PreparedImage]:
        """
        The pipeline's `image` argument as a list of [`PreparedImage`], one per image: PIL images in any mode (CMYK,
        1-bit and other convertible modes are converted to RGB / L), numpy uint8 or float in [0, 1] (`HxW`, `HxWxC`,
        `NxHxWxC`), torch float in [0, 1] or uint8 (`CxHxW`, `NxCxHxW`), or a list of them. Raises `TypeError` /
        `ValueError` with what to do for anything else.
        """
        return _prepare_images(image)

    def preprocess_mask(self, mask, height: int, width: int) -> torch.Tensor:
        """A mask as `(1, 1, H, W)` float in [0, 1]: PIL (any mode, converted to L), bool/uint8/float numpy or torch."""
        if isinstance(mask, PIL.Image.Image):
            mask = np.asarray(mask.convert("L"))
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(mask.copy())
        if not torch.is_tensor(mask):
            raise TypeError(f"`mask` must be a PIL image, a numpy array or a torch tensor, got {type(mask).__name__}.")
        if mask.dtype == torch.bool:
            mask = mask.float()
        elif mask.dtype == torch.uint8:
            mask = mask.float() / 255
        mask = mask.float()
        while mask.ndim > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.ndim != 2:
            raise ValueError(f"`mask` must be one channel, HxW (or 1xHxW, 1x1xHxW), got shape {tuple(mask.shape)}.")
        if tuple(mask.shape) != (height, width):
            raise ValueError(f"`mask` is {tuple(mask.shape)} (HxW) but the HR images are {(height, width)}.")
        if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
            raise ValueError("`mask` values must be in [0, 1] (or bool, or uint8 0..255); 1 takes the source image.")
        return mask[None, None]

    def postprocess(
        self,
        images: torch.Tensor,
        output_type: str = "pil",
        like: Optional[PreparedImage] = None,
        scale: int = 1,
        do_denormalize: bool = True,
    ):
        r"""
        `(N, 3, H, W)` results of one input to `output_type`.

        Args:
            images (`torch.Tensor`): RGB in [-1, 1] (`do_denormalize`) or in [0, 1].
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"` (a list), `"np"` (`NxHxWxC` float in
                [0, 1]), `"pt"` (`NxCxHxW` float in [0, 1], on the CPU) or `"raw"` (`images` as they are).
            like ([`PreparedImage`], *optional*): The input: gray inputs come back gray, alpha is appended
                (upscaled by `scale` with MATLAB bicubic), palette images come back quantised to their palette.
            scale (`int`, *optional*, defaults to 1): How much larger `images` are than `like`.
            do_denormalize (`bool`, *optional*, defaults to `True`): `images` are in [-1, 1].
        """
        if output_type == "raw":
            return images
        images01 = self.denormalize(images).clamp(0, 1) if do_denormalize else images
        if like is not None:
            images01 = _to_output_channels(images01, like, scale)
        if output_type == "pil":
            like = like or PreparedImage(images01[:1], kind="pil")
            return [_tensor_to_pil(image, like) for image in images01]
        images01 = images01.cpu()
        return self.pt_to_numpy(images01) if output_type == "np" else images01

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """[0, 1] to [-1, 1], the range the models take."""
        return images * 2 - 1

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] to [0, 1], unclamped."""
        return (images + 1) / 2

    @staticmethod
    def numpy_to_pt(images: np.ndarray) -> torch.Tensor:
        """`HxWxC` or `NxHxWxC` arrays (any dtype) to an `NxCxHxW` tensor of the same dtype."""
        images = np.array(images)  # a copy: torch shares the memory of writable arrays
        return torch.from_numpy(images if images.ndim == 4 else images[None]).permute(0, 3, 1, 2)

    @staticmethod
    def pt_to_numpy(images: torch.Tensor) -> np.ndarray:
        """An `NxCxHxW` tensor to an `NxHxWxC` array (on the CPU)."""
        return images.permute(0, 2, 3, 1).cpu().numpy()

    @staticmethod
    def to_uint8(images01: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] rounded to uint8, as a saved PNG holds them."""
        return (images01.clamp(0, 1) * 255).round().to(torch.uint8)

    @staticmethod
    def numpy_to_uint8(images01: np.ndarray) -> np.ndarray:
        """Float arrays in [0, 1] rounded to uint8."""
        return np.round(np.clip(images01, 0, 1) * 255).astype(np.uint8)

    @staticmethod
    def numpy_to_uint16(images01: np.ndarray) -> np.ndarray:
        """Float arrays in [0, 1] rounded to uint16 (16-bit gray outputs keep what 8 bits would lose)."""
        return np.round(np.clip(images01, 0, 1) * 65535).astype(np.uint16)

    @staticmethod
    def uint8_to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 images (or any 0-255 values) to `dtype` in [0, 1]."""
        return images.to(dtype) / 255

    @staticmethod
    def numpy_to_pil(image: np.ndarray) -> PIL.Image.Image:
        """A uint8 `HxW` / `HxWxC` array (a single channel is gray), or a uint16 `HxW` one, to a PIL image."""
        return PIL.Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)

    @staticmethod
    def sixteen_bit_to_unit_float(image: PIL.Image.Image, path: Union[str, os.PathLike]) -> np.ndarray:
        """A 16-bit gray image (a `SIXTEEN_BIT_MODES` mode) as a float32 `HxW` array in [0, 1], without loss."""
        array = np.asarray(image).astype(np.float64)
        if array.min() < 0 or array.max() > 65535:
            raise ValueError(f"cannot read {path}: {image.mode} values outside 0..65535")
        return (array / 65535).astype(np.float32)

    @classmethod
    def to_rgb8(cls, image: PIL.Image.Image, what: Union[str, os.PathLike] = "image") -> PIL.Image.Image:
        """
        An image as 8-bit RGB (gray repeated, alpha dropped) for code that works on 8-bit data (metrics, training
        patches): 16-bit gray is rounded to 8 bits (`convert("RGB")` would clip everything above 255 to white) and
        float (mode "F") images, which have no fixed range, are refused.
        """
        if image.mode in SIXTEEN_BIT_MODES:
            gray = np.round(cls.sixteen_bit_to_unit_float(image, what) * 255).astype(np.uint8)
            return PIL.Image.fromarray(gray).convert("RGB")
        if image.mode == "F":
            raise ValueError(f"{what}: float (mode 'F') images have no fixed range; save it as an 8- or 16-bit image.")
        return image.convert("RGB")

    @classmethod
    def to_rgb8_array(cls, image: PIL.Image.Image, what: Union[str, os.PathLike] = "image") -> np.ndarray:
        """[`~SRDiffImageProcessor.to_rgb8`] as a writable `HxWx3` uint8 array."""
        return np.array(cls.to_rgb8(image, what), dtype=np.uint8)
