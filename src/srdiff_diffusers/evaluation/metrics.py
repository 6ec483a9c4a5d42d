# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Full-reference SR metrics: PSNR, SSIM, LR-PSNR and the diversity sigma of the SRDiff paper.

Two conventions are named, because SR papers use both and their numbers differ by about 1-2 dB:

- `"paper"`: what the SRDiff authors computed, on the whole uint8 RGB image, with scikit-image's
  `peak_signal_noise_ratio(data_range=255)` and `structural_similarity(channel_axis=-1)` defaults (a 7x7 uniform
  window, sample covariance, K1 = 0.01, K2 = 0.03, a 3-pixel border of the SSIM map left out).
- `"y"`: the SR literature's (EDSR, RCAN, BasicSR, MATLAB scripts), on the luma Y of ITU-R BT.601 YCbCr as
  MATLAB's `rgb2ycbcr` computes it for RGB in [0, 255]: `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`, kept in
  float (not rounded), with `scale` pixels cropped from every border; SSIM is Wang et al.'s original: an 11x11
  Gaussian window with sigma 1.5, population statistics, K1 = 0.01, K2 = 0.03, L = 255, averaged over the valid
  part of the SSIM map.

Gray images (`HxW` or one channel) are treated as RGB with three equal channels, so both conventions give the same
number for a gray image and for its RGB copy (for `"y"`: `Y = 16 + 219 v / 255`).

The plain functions take uint8 numpy images (`HxW` or `HxWxC`) and return Python floats; the `*_torch` functions
take batches `(N, C, H, W)` (uint8, or float on the 0-255 scale), run on any device, and return `(N,)` float64
tensors. Everything is computed in float64. PSNR of identical images is `math.inf` (no cap here; see the reports'
documentation for how infinities are written).
"""

import math
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..matlab_resize import imresize
from ..image_processor import SRDiffImageProcessor


CONVENTIONS = ("paper", "y")
DATA_RANGE = 255.0
# MATLAB rgb2ycbcr (ITU-R BT.601) luma coefficients for RGB in [0, 1]; they sum to 219 (Y spans 16..235).
_Y_COEFFICIENTS = (65.481, 128.553, 24.966)


# ---------------------------------------------------------------------------------------------------------------
# Input checks and conversions
# ---------------------------------------------------------------------------------------------------------------


# Side of the Gaussian window of the 'y' convention's SSIM (Wang et al.), hence the smallest image it takes.
Y_SSIM_WINDOW = 11

def _check_convention(convention: str, scale: Optional[int]) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"`convention` must be one of {CONVENTIONS}, got {convention!r}.")
    if convention == "y" and (not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 0):
        raise ValueError(
            f"The 'y' convention crops `scale` pixels from every border: pass the SR scale as a non-negative "
            f"integer, got scale={scale!r}."
        )


def _numpy_to_batch(image: np.ndarray, what: str) -> torch.Tensor:
    """A uint8 `HxW` / `HxWxC` numpy image as a `(1, C, H, W)` float64 tensor on the 0-255 scale."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (HxW or HxWxC, uint8), got {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise TypeError(
            f"{what} must be uint8 (0-255), got {image.dtype}; convert floats in [0, 1] with "
            "`np.round(image * 255).astype(np.uint8)`."
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"{what} must be HxW or HxWxC, got shape {image.shape}.")
    return SRDiffImageProcessor.numpy_to_pt(image.astype(np.float64))


def _torch_to_nchw(image: torch.Tensor, what: str) -> torch.Tensor:
    """`(N, C, H, W)`, `(C, H, W)` or `(H, W)` uint8 / float (0-255) as `(N, C, H, W)`, dtype unchanged."""
    if not torch.is_tensor(image):
        raise TypeError(f"{what} must be a torch tensor, got {type(image).__name__}.")
    if not (image.dtype == torch.uint8 or image.is_floating_point()):
        raise TypeError(f"{what} must be uint8 or float on the 0-255 scale, got {image.dtype}.")
    if image.ndim == 2:
        image = image[None, None]
    elif image.ndim == 3:
        image = image[None]
    elif image.ndim != 4:
        raise ValueError(f"{what} must be (N, C, H, W), (C, H, W) or (H, W), got shape {tuple(image.shape)}.")
    if image.is_floating_point() and image.numel():
        # A NaN would compare as "no error" (PSNR inf), and [0, 1] data as a near-black image (PSNR ~5 dB against
        # uint8): both without a word otherwise.
        low, high = (float(v) for v in torch.aminmax(image.detach()))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{what} contains NaN or infinite values.")
        if 0 < high <= 1:
            raise ValueError(
                f"{what} has values in [{low:.4g}, {high:.4g}]: it looks like [0, 1] data, but the metrics take the "
                "0-255 scale; multiply it by 255 (or pass uint8)."
            )
    return image


def _torch_to_batch(image: torch.Tensor, what: str) -> torch.Tensor:
    """As `_torch_to_nchw`, in float64."""
    return _torch_to_nchw(image, what).double()


def _check_pair(prediction: torch.Tensor, reference: torch.Tensor) -> None:
    if prediction.shape != reference.shape:
        raise ValueError(
            f"The prediction has shape {tuple(prediction.shape)} but the reference {tuple(reference.shape)}; "
            "metrics compare images of the same size (crop the reference to a multiple of the scale first)."
        )
    if prediction.shape[1] not in (1, 3):
        raise ValueError(f"Images must have 1 (gray) or 3 (RGB) channels, got {prediction.shape[1]}.")


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """
    Luma of ITU-R BT.601 YCbCr as MATLAB's `rgb2ycbcr`, for `(N, C, H, W)` images on the 0-255 scale.

    Args:
        image (`torch.Tensor`): `(N, 3, H, W)` RGB or `(N, 1, H, W)` gray (read as three equal channels), 0-255.

    Returns:
        `torch.Tensor`: `(N, 1, H, W)` float64 Y in [16, 235], not rounded.
    """
    image = image.double()
    if image.shape[1] == 1:
        image = image.expand(-1, 3, -1, -1)
    elif image.shape[1] != 3:
        raise ValueError(f"`rgb_to_y` takes 1 or 3 channels, got {image.shape[1]}.")
    weights = torch.tensor(_Y_COEFFICIENTS, dtype=torch.float64, device=image.device)
    return 16.0 + (image * weights[None, :, None, None]).sum(dim=1, keepdim=True) / 255.0


def _prepare(prediction: torch.Tensor, reference: torch.Tensor, convention: str, scale: Optional[int]):
    """Applies the convention: RGB as is, or Y with a border of `scale` pixels cropped."""
    _check_pair(prediction, reference)
    if convention == "paper":
        return prediction, reference
    prediction, reference = rgb_to_y(prediction), rgb_to_y(reference)
    if scale:
        height, width = prediction.shape[-2:]
        if height <= 2 * scale or width <= 2 * scale:
            raise ValueError(f"A {height}x{width} image has nothing left after cropping a {scale}-pixel border.")
        prediction = prediction[..., scale:-scale, scale:-scale]
        reference = reference[..., scale:-scale, scale:-scale]
    return prediction, reference


# ---------------------------------------------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------------------------------------------


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    # Identical images have an infinite PSNR (torch gives inf for x / 0 without a warning; made explicit here).
    return torch.where(mse > 0, 10.0 * torch.log10(DATA_RANGE**2 / mse), torch.full_like(mse, math.inf))


def psnr_torch(
    prediction: torch.Tensor, reference: torch.Tensor, convention: str = "paper", scale: Optional[int] = None
) -> torch.Tensor:
    """
    PSNR (dB, peak 255) of a batch.

    Args:
        prediction (`torch.Tensor`): `(N, C, H, W)` (or `(C, H, W)`, `(H, W)`) uint8, or float on the 0-255 scale.
        reference (`torch.Tensor`): The ground truth, same shape.
        convention (`str`, *optional*, defaults to `"paper"`): `"paper"` (RGB, whole image) or `"y"` (luma, border
            of `scale` pixels cropped).
        scale (`int`, *optional*): The SR scale; required by the `"y"` convention.

    Returns:
        `torch.Tensor`: `(N,)` float64; `inf` where the images are identical.
    """
    _check_convention(convention, scale)
    prediction = _torch_to_batch(prediction, "`prediction`")
    reference = _torch_to_batch(reference, "`reference`")
    prediction, reference = _prepare(prediction, reference, convention, scale)
    mse = (prediction - reference).pow(2).flatten(1).mean(dim=1)
    return _psnr_from_mse(mse)


def psnr(
    prediction: np.ndarray, reference: np.ndarray, convention: str = "paper", scale: Optional[int] = None
) -> float:
    """
    PSNR (dB, peak 255) of two uint8 images.

    Args:
        prediction (`np.ndarray`): `HxW` or `HxWxC` uint8 (the SR image).
        reference (`np.ndarray`): The ground truth, same shape.
        convention (`str`, *optional*, defaults to `"paper"`): `"paper"` or `"y"` (see the module docstring).
        scale (`int`, *optional*): The SR scale; required by the `"y"` convention.

    Returns:
        `float`: the PSNR; `math.inf` for identical images.

    Example:

    ```py
    >>> import numpy as np
    >>> from srdiff_diffusers.evaluation import psnr

    >>> hr = np.zeros((16, 16, 3), dtype=np.uint8)
    >>> round(psnr(hr + 1, hr), 2)  # MSE 1
    48.13
    ```
    """
    _check_convention(convention, scale)
    prediction = _numpy_to_batch(prediction, "`prediction`")
    batch = psnr_torch(prediction, _numpy_to_batch(reference, "`reference`"), convention, scale)
    return float(batch[0])


# ---------------------------------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------------------------------


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    window = torch.exp(-(x**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(image: torch.Tensor, window: Optional[torch.Tensor], size: int) -> torch.Tensor:
    """Local (weighted) means over the windows that lie fully inside the image ("valid" filtering)."""
    if window is None:
        return F.avg_pool2d(image, size, stride=1)
    channels = image.shape[1]
    rows = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(image, rows, groups=channels), cols, groups=channels)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, window: Optional[torch.Tensor], size: int, cov_norm: float):
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    mu_x, mu_y = _filter_valid(x, window, size), _filter_valid(y, window, size)
    var_x = cov_norm * (_filter_valid(x * x, window, size) - mu_x * mu_x)
    var_y = cov_norm * (_filter_valid(y * y, window, size) - mu_y * mu_y)
    cov_xy = cov_norm * (_filter_valid(x * y, window, size) - mu_x * mu_y)
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim_torch(
    prediction: torch.Tensor, reference: torch.Tensor, convention: str = "paper", scale: Optional[int] = None
) -> torch.Tensor:
    """
    SSIM of a batch.

    Args:
        prediction (`torch.Tensor`): `(N, C, H, W)` (or `(C, H, W)`, `(H, W)`) uint8, or float on the 0-255 scale.
        reference (`torch.Tensor`): The ground truth, same shape.
        convention (`str`, *optional*, defaults to `"paper"`): `"paper"` (scikit-image's defaults per RGB channel:
            7x7 uniform window, sample covariance, averaged over channels) or `"y"` (Wang et al. on the luma: 11x11
            Gaussian window, sigma 1.5, population statistics, border of `scale` pixels cropped first).
        scale (`int`, *optional*): The SR scale; required by the `"y"` convention.

    Returns:
        `torch.Tensor`: `(N,)` float64.
    """
    _check_convention(convention, scale)
    prediction = _torch_to_batch(prediction, "`prediction`")
    reference = _torch_to_batch(reference, "`reference`")
    prediction, reference = _prepare(prediction, reference, convention, scale)
    if convention == "paper":
        # scikit-image: uniform 7x7 window, sample covariance (NP / (NP - 1)), a 3-pixel border of the map ignored.
        size, window, cov_norm = 7, None, 49 / 48
    else:
        size, window, cov_norm = Y_SSIM_WINDOW, _gaussian_window(device=prediction.device), 1.0
    height, width = prediction.shape[-2:]
    if height < size or width < size:
        raise ValueError(
            f"SSIM ({convention!r} convention) needs images of at least {size}x{size} pixels (after border "
            f"cropping), got {height}x{width}."
        )
    ssim_map = _ssim_map(prediction, reference, window, size, cov_norm)
    # Mean over the valid map of each channel, then over channels (equal sizes: one mean).
    return ssim_map.flatten(1).mean(dim=1)


def ssim(
    prediction: np.ndarray, reference: np.ndarray, convention: str = "paper", scale: Optional[int] = None
) -> float:
    """
    SSIM of two uint8 images.

    Args:
        prediction (`np.ndarray`): `HxW` or `HxWxC` uint8 (the SR image).
        reference (`np.ndarray`): The ground truth, same shape.
        convention (`str`, *optional*, defaults to `"paper"`): `"paper"` or `"y"` (see [`ssim_torch`]).
        scale (`int`, *optional*): The SR scale; required by the `"y"` convention.

    Returns:
        `float`: the mean SSIM.
    """
    _check_convention(convention, scale)
    prediction = _numpy_to_batch(prediction, "`prediction`")
    batch = ssim_torch(prediction, _numpy_to_batch(reference, "`reference`"), convention, scale)
    return float(batch[0])


# ---------------------------------------------------------------------------------------------------------------
# LR-PSNR and diversity
# ---------------------------------------------------------------------------------------------------------------


def lr_psnr_torch(prediction: torch.Tensor, low_res: torch.Tensor, scale: int) -> torch.Tensor:
    """
    LR-PSNR: the SR image downscaled by `scale` with MATLAB bicubic ([`~matlab_resize.imresize`]) against the
    LR input, in the paper convention (RGB, 0-255, whole image). uint8 predictions are downscaled the way MATLAB
    resizes uint8 images (rounded); float ones (0-255 scale) are not rounded.

    Args:
        prediction (`torch.Tensor`): `(N, C, H * scale, W * scale)` SR images, uint8 or float 0-255.
        low_res (`torch.Tensor`): `(N, C, H, W)` LR inputs, uint8 or float 0-255.
        scale (`int`): The SR scale.

    Returns:
        `torch.Tensor`: `(N,)` float64 dB; `inf` when the downscaled SR image equals the LR input exactly.
    """
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    prediction = _torch_to_nchw(prediction, "`prediction`")
    low_res = _torch_to_batch(low_res, "`low_res`")
    expected = (low_res.shape[-2] * scale, low_res.shape[-1] * scale)
    if tuple(prediction.shape[-2:]) != expected:
        raise ValueError(
            f"The SR image is {prediction.shape[-2]}x{prediction.shape[-1]} but the {low_res.shape[-2]}x"
            f"{low_res.shape[-1]} LR image times {scale} is {expected[0]}x{expected[1]}."
        )
    downscaled = imresize(prediction if prediction.dtype == torch.uint8 else prediction.double(), scale=1 / scale)
    return psnr_torch(downscaled, low_res, "paper")


def lr_psnr(prediction: np.ndarray, low_res: np.ndarray, scale: int) -> float:
    """
    LR-PSNR of one uint8 SR image against its uint8 LR input (see [`lr_psnr_torch`]).

    Args:
        prediction (`np.ndarray`): `(H * scale)x(W * scale)[xC]` uint8.
        low_res (`np.ndarray`): `HxW[xC]` uint8.
        scale (`int`): The SR scale.

    Returns:
        `float`: dB; `math.inf` when `imresize(prediction, 1 / scale)` equals `low_res` exactly.
    """
    batch = _numpy_to_batch(prediction, "`prediction`").to(torch.uint8)
    return float(lr_psnr_torch(batch, _numpy_to_batch(low_res, "`low_res`"), scale)[0])


def diversity_sigma_torch(samples: torch.Tensor) -> torch.Tensor:
    """
    The paper's diversity sigma: the per-pixel standard deviation over K samples of the same LR image, on the
    0-255 scale, averaged over pixels and channels. Population standard deviation (ddof = 0).

    Args:
        samples (`torch.Tensor`): `(K, C, H, W)` (or `(K, H, W)`), uint8 or float 0-255, K >= 2.

    Returns:
        `torch.Tensor`: a float64 scalar.
    """
    if not torch.is_tensor(samples) or samples.ndim < 3:
        raise ValueError("`samples` must be a (K, C, H, W) or (K, H, W) tensor of K samples of one image.")
    if samples.shape[0] < 2:
        raise ValueError(f"The diversity sigma needs at least 2 samples of the same image, got {samples.shape[0]}.")
    return samples.double().std(dim=0, correction=0).mean()


def diversity_sigma(samples: Union[np.ndarray, Sequence[np.ndarray]]) -> float:
    """
    The diversity sigma of K uint8 samples of the same LR image (see [`diversity_sigma_torch`]).

    Args:
        samples (`np.ndarray` or list of `np.ndarray`): `KxHxW[xC]` uint8, or a list of K `HxW[xC]` uint8 images.

    Returns:
        `float`: the mean per-pixel standard deviation (ddof = 0), 0-255 scale.
    """
    if isinstance(samples, (list, tuple)):
        if len(samples) < 2:
            raise ValueError(f"The diversity sigma needs at least 2 samples of the same image, got {len(samples)}.")
        shapes = {np.shape(sample) for sample in samples}
        if len(shapes) > 1:
            raise ValueError(f"All samples must have the same shape, got {sorted(shapes)}.")
        samples = np.stack(samples)
    if not isinstance(samples, np.ndarray) or samples.dtype != np.uint8:
        raise TypeError("`samples` must be uint8 numpy images (KxHxW[xC] or a list of HxW[xC]).")
    if samples.ndim == 3 and samples.shape[-1] in (3, 4) and samples.shape[0] > 4:
        # K gray samples of width 3 or 4 are implausible; one colour image is a common slip.
        raise ValueError(
            f"`samples` {samples.shape} looks like one HxWxC image; pass K >= 2 samples of it (a list or KxHxWxC)."
        )
    return float(diversity_sigma_torch(torch.from_numpy(np.ascontiguousarray(samples))))
