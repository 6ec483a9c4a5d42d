# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Real-world degradations: the second-order pipeline of Real-ESRGAN (Wang et al., 2021, section 3), written from the
paper. Training with `--degradation realistic` makes each LR patch from its HR patch with it, and `srdiff degrade`
makes reproducible degraded test sets.

    blur -> resize -> noise -> JPEG, twice; then resize to the LR size + sinc filter and JPEG, in random order

Filtering and JPEG are kornia's (batched, in torch, on any device); the kernels are written from their formulas.
"""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass
class DegradationOrder:
    r"""
    The ranges of one order (blur -> resize -> noise -> JPEG) of the pipeline; every range is `(low, high)`,
    sampled uniformly. The defaults are Real-ESRGAN's first order.

    Args:
        blur_prob (`float`): Probability of blurring at all (the first order always blurs).
        kernel_size (`Tuple[int, int]`): Odd kernel sizes to draw from.
        kernel_probs (`Dict[str, float]`): Probability of each kernel type ([`KERNEL_TYPES`]).
        sinc_prob (`float`): Probability of a sinc (ringing) kernel instead.
        blur_sigma (`Tuple[float, float]`): Gaussian standard deviations, in HR pixels.
        betag (`Tuple[float, float]`): Shape of the generalized Gaussian kernels.
        betap (`Tuple[float, float]`): Shape of the plateau kernels.
        resize_probs (`Dict[str, float]`): Probability of resizing `up`, `down` or `keep`.
        resize_range (`Tuple[float, float]`): Scale factors (down from the low end to 1, up from 1 to the high end).
        gaussian_noise_prob (`float`): Probability of Gaussian noise (else Poisson).
        noise_sigma (`Tuple[float, float]`): Gaussian noise sigma, in gray levels (of 255).
        poisson_scale (`Tuple[float, float]`): Poisson noise scale.
        gray_noise_prob (`float`): Probability that the noise is the same in every channel.
        jpeg_quality (`Tuple[float, float]`): JPEG quality.
    """

    blur_prob: float = 1.0
    kernel_size: Tuple[int, int] = (7, 21)
    kernel_probs: Dict[str, float] = field(
        default_factory=lambda: {
            "iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03, "plateau_iso": 0.12,
            "plateau_aniso": 0.03,
        }  # fmt: skip
    )
    sinc_prob: float = 0.1
    blur_sigma: Tuple[float, float] = (0.2, 3.0)
    betag: Tuple[float, float] = (0.5, 4.0)
    betap: Tuple[float, float] = (1.0, 2.0)
    resize_probs: Dict[str, float] = field(default_factory=lambda: {"up": 0.2, "down": 0.7, "keep": 0.1})
    resize_range: Tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_sigma: Tuple[float, float] = (1.0, 30.0)
    poisson_scale: Tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: Tuple[float, float] = (30.0, 95.0)


def _second_order() -> DegradationOrder:
    """Real-ESRGAN's second order: milder blur (and not always), resize and noise."""
    return DegradationOrder(
        blur_prob=0.8,
        blur_sigma=(0.2, 1.5),
        resize_probs={"up": 0.3, "down": 0.4, "keep": 0.3},
        resize_range=(0.3, 1.2),
        noise_sigma=(1.0, 25.0),
        poisson_scale=(0.05, 2.5),
    )


@dataclass
class DegradationConfig:
    r"""
    The whole pipeline: two [`DegradationOrder`]s, then the final resize to the LR size, a sinc filter (with
    probability `final_sinc_prob`) and JPEG (`final_jpeg_quality`), the sinc-and-resize and the JPEG in random order.
    The defaults are Real-ESRGAN's (its paper and released training options); load others with [`from_json`].
    With `second=None` the pipeline is single-order: blur, resize to the LR size, noise, JPEG, and nothing after
    ([`mild_degradation`]).
    """

    first: DegradationOrder = field(default_factory=DegradationOrder)
    second: Optional[DegradationOrder] = field(default_factory=_second_order)
    final_sinc_prob: float = 0.8
    final_jpeg_quality: Tuple[float, float] = (30.0, 95.0)

    @classmethod
    def from_dict(cls, values: dict) -> "DegradationConfig":
        """Overrides the defaults with `values` (`{"first": {...}, "second": {...}, "final_sinc_prob": ...}`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown degradation settings {sorted(unknown)}; the known ones are {sorted(known)}.")
        config = cls()
        for name, value in values.items():
            if name == "second" and value is None:
                config.second = None
            elif name in ("first", "second"):
                order = getattr(config, name) or DegradationOrder()
                order_fields = {f.name for f in dataclasses.fields(DegradationOrder)}
                bad = set(value) - order_fields
                if bad:
                    raise ValueError(f"Unknown settings {sorted(bad)} in {name!r}; the known ones are {sorted(order_fields)}.")
                setattr(config, name, dataclasses.replace(order, **value))
            else:
                setattr(config, name, value)
        config.check()
        return config

    @classmethod
    def from_json(cls, path: str) -> "DegradationConfig":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def check(self) -> None:
        """Raises `ValueError` for a setting that cannot be sampled, naming it."""
        for name in ("first", "second"):
            order = getattr(self, name)
            if order is None:
                continue
            for key in ("kernel_probs", "resize_probs"):
                probs = getattr(order, key)
                if not probs or any(p < 0 for p in probs.values()) or sum(probs.values()) <= 0:
                    raise ValueError(f"`{name}.{key}` must hold non-negative probabilities with a positive sum.")
            if set(order.kernel_probs) - set(KERNEL_TYPES):
                raise ValueError(f"`{name}.kernel_probs` names unknown kernels; the known ones are {KERNEL_TYPES}.")
            if set(order.resize_probs) - {"up", "down", "keep"}:
                raise ValueError(f"`{name}.resize_probs` takes only 'up', 'down' and 'keep'.")
            low, high = order.kernel_size
            if low < 3 or high < low or low % 2 == 0 or high % 2 == 0:
                raise ValueError(f"`{name}.kernel_size` must be two odd sizes >= 3, low <= high, got {order.kernel_size}.")
            low, high = order.jpeg_quality
            if not 1 <= low <= high <= 100:
                raise ValueError(f"`{name}.jpeg_quality` must be within [1, 100], got {order.jpeg_quality}.")
            if not 0 < order.resize_range[0] <= 1 <= order.resize_range[1]:
                raise ValueError(f"`{name}.resize_range` must hold 1 (low <= 1 <= high, low > 0), got {order.resize_range}.")
        if not 1 <= self.final_jpeg_quality[0] <= self.final_jpeg_quality[1] <= 100:
            raise ValueError(f"`final_jpeg_quality` must be within [1, 100], got {self.final_jpeg_quality}.")


def mild_degradation() -> DegradationConfig:
    """
    Moderate single-order degradations, the kind phone and web photos have: a slight Gaussian blur, a downscale,
    Gaussian noise of sigma 2-8 gray levels and JPEG at quality 50-80 (`srdiff degrade --degradation mild`).
    """
    return DegradationConfig(
        first=DegradationOrder(
            kernel_size=(7, 15),
            kernel_probs={"iso": 0.7, "aniso": 0.3},
            sinc_prob=0.0,
            blur_sigma=(0.6, 1.6),
            resize_probs={"keep": 1.0},
            gaussian_noise_prob=1.0,
            noise_sigma=(2.0, 8.0),
            jpeg_quality=(50.0, 80.0),
        ),
        second=None,
    )


# Named degradations of `srdiff degrade` and `srdiff train --degradation`.
DEGRADATION_PRESETS = {"realistic": DegradationConfig, "mild": mild_degradation}


# ---------------------------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------------------------


def _grid(size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    radius = size // 2
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64)
    return torch.meshgrid(coords, coords, indexing="xy")  # x to the right, y down


def anisotropic_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0, kind: str = "gaussian"
) -> torch.Tensor:
    r"""
    A `size x size` blur kernel summing to 1, from the Mahalanobis distance `d = x^T S^-1 x` of a covariance `S`
    with standard deviations `sigma_x`, `sigma_y` rotated by `theta`:
    `gaussian` exp(-d / 2), `generalized` exp(-d^beta / 2) (Gaussian for beta = 1), `plateau` 1 / (1 + d^beta).
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"The kernel size must be odd, got {size}.")
    x, y = _grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    # coordinates in the kernel's own axes: S^-1 is diagonal there
    u, v = cos * x + sin * y, -sin * x + cos * y
    d = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if kind == "gaussian":
        kernel = torch.exp(-0.5 * d)
    elif kind == "generalized":
        kernel = torch.exp(-0.5 * d**beta)
    elif kind == "plateau":
        kernel = 1 / (1 + d**beta)
    else:
        raise ValueError(f"`kind` must be 'gaussian', 'generalized' or 'plateau', got {kind!r}.")
    return (kernel / kernel.sum()).float()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    r"""
    The circular low-pass (2-D sinc) kernel of cut-off frequency `cutoff` (radians per pixel, at most pi):
    `cutoff * J1(cutoff * r) / (2 pi r)`, sampled on a `size x size` grid and normalised to sum 1. It rings like
    over-sharpened and resampled images do.
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"The kernel size must be odd, got {size}.")
    x, y = _grid(size)
    r = torch.sqrt(x**2 + y**2)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe_r) / (2 * math.pi * safe_r)
    kernel = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), kernel)  # the limit at r = 0
    return (kernel / kernel.sum()).float()


def _uniform(rng: np.random.Generator, bounds: Tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _choice(rng: np.random.Generator, probs: Dict[str, float]) -> str:
    names = list(probs)
    weights = np.asarray([probs[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _sinc_cutoff(rng: np.random.Generator, size: int) -> float:
    # small kernels cannot hold the ripples of a low cut-off
    return float(rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi))


def random_kernel(rng: np.random.Generator, order: DegradationOrder) -> torch.Tensor:
    """One blur kernel of `order`, drawn with `rng`."""
    size = int(rng.choice(np.arange(order.kernel_size[0], order.kernel_size[1] + 1, 2)))
    if rng.random() < order.sinc_prob:
        return sinc_kernel(size, _sinc_cutoff(rng, size))
    kind = _choice(rng, order.kernel_probs)
    sigma_x = _uniform(rng, order.blur_sigma)
    if kind.endswith("_iso"):
        sigma_y, theta = sigma_x, 0.0
    else:
        sigma_y, theta = _uniform(rng, order.blur_sigma), float(rng.uniform(-math.pi, math.pi))
    if kind.startswith("generalized"):
        return anisotropic_gaussian_kernel(size, sigma_x, sigma_y, theta, _uniform(rng, order.betag), "generalized")
    if kind.startswith("plateau"):
        return anisotropic_gaussian_kernel(size, sigma_x, sigma_y, theta, _uniform(rng, order.betap), "plateau")
    return anisotropic_gaussian_kernel(size, sigma_x, sigma_y, theta)


# ---------------------------------------------------------------------------------------------------------------
# the operations, on (N, 3, H, W) float images in [0, 1]
# ---------------------------------------------------------------------------------------------------------------


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filters with `kernel` (`k x k`, or `N x k x k`), reflecting at the borders (kornia's `filter2d`)."""
    import kornia.filters

    kernel = kernel.to(image)
    # Reflection needs the image wider than half the kernel: tiny patches (a 32 px HR patch's 8 px LR) replicate.
    border = "reflect" if min(image.shape[-2:]) > kernel.shape[-1] // 2 else "replicate"
    return kornia.filters.filter2d(image, kernel[None] if kernel.ndim == 2 else kernel, border_type=border)


def resize(image: torch.Tensor, size: Tuple[int, int], mode: str) -> torch.Tensor:
    """Resizes to `size` (H, W) with `area`, `bilinear` or `bicubic` interpolation (what image software does)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"The resize mode must be one of {RESIZE_MODES}, got {mode!r}.")
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if mode == "area":
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


def gaussian_noise(
    image: torch.Tensor, sigma: float, gray: bool, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Adds Gaussian noise of standard deviation `sigma` (in [0, 1] units); `gray`: the same in every channel."""
    shape = (image.shape[0], 1 if gray else image.shape[1], *image.shape[2:])
    noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(image)
    return image + sigma * noise


# Photons per unit of intensity: one per gray level of an 8-bit image.
POISSON_LEVELS = 256


def poisson_noise(
    image: torch.Tensor, scale: float, gray: bool, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Adds shot noise: `scale` times the deviation of Poisson(image * 256) / 256 from the image."""
    source = image.clamp(0, 1)
    if gray:  # shot noise of the luminance, the same in every channel
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        source = (source * weights).sum(1, keepdim=True)
    counts = source.cpu().float() * POISSON_LEVELS
    noise = (torch.poisson(counts, generator=generator) - counts) / POISSON_LEVELS
    return image + scale * noise.to(image)


def jpeg(image: torch.Tensor, quality: Union[float, torch.Tensor]) -> torch.Tensor:
    """JPEG compression and decompression at `quality` (one value, or one per image): kornia's codec in torch."""
    import kornia.enhance

    quality = torch.as_tensor(quality, dtype=image.dtype, device=image.device).reshape(-1)
    return kornia.enhance.jpeg_codec_differentiable(image.clamp(0, 1), quality).clamp(0, 1)


# ---------------------------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------------------------


def _apply_order(image: torch.Tensor, order: DegradationOrder, rng, generator, size: Tuple[int, int]) -> torch.Tensor:
    """One order: blur, resize (relative to `size`), noise, JPEG."""
    if rng.random() < order.blur_prob:
        image = blur(image, random_kernel(rng, order))
    direction = _choice(rng, order.resize_probs)
    if direction == "up":
        factor = rng.uniform(1, order.resize_range[1])
    elif direction == "down":
        factor = rng.uniform(order.resize_range[0], 1)
    else:
        factor = 1.0
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    image = resize(image, (size[0] * factor, size[1] * factor), mode)
    gray = bool(rng.random() < order.gray_noise_prob)
    if rng.random() < order.gaussian_noise_prob:
        image = gaussian_noise(image, _uniform(rng, order.noise_sigma) / 255, gray, generator)
    else:
        image = poisson_noise(image, _uniform(rng, order.poisson_scale), gray, generator)
    return jpeg(image.clamp(0, 1), _uniform(rng, order.jpeg_quality))


def degrade(
    hr: torch.Tensor, scale: int, rng: np.random.Generator, config: Optional[DegradationConfig] = None
) -> torch.Tensor:
    r"""
    The LR image of `hr` through Real-ESRGAN's second-order degradation, every random choice drawn from `rng` (a
    `numpy.random.Generator`), so that the same seed gives the same LR.

    Args:
        hr (`torch.Tensor`): `(3, H, W)` or `(1, 3, H, W)` float in [0, 1], H and W multiples of `scale`.
        scale (`int`): SR scale: the LR is `(H / scale, W / scale)`.
        rng (`np.random.Generator`): Source of every random choice (the noise too).
        config (`DegradationConfig`, *optional*): The ranges; default: Real-ESRGAN's.

    Returns:
        `torch.Tensor`: the LR image, same layout as `hr`, quantised to 8 bits (`k / 255`) like a saved image.
    """
    config = config or DegradationConfig()
    single = hr.ndim == 3
    image = hr[None] if single else hr
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"`hr` must be an RGB (3, H, W) or (1, 3, H, W) tensor, got shape {tuple(hr.shape)}.")
    height, width = image.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"The HR size {width}x{height} must be a multiple of the scale {scale}; crop it first.")
    generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
    lr_size = (height // scale, width // scale)
    if config.second is None:  # single order: its resize is to the LR size, and nothing follows
        image = _apply_order(image.float(), config.first, rng, generator, lr_size)
        image = (image.clamp(0, 1) * 255).round() / 255
        return image[0] if single else image
    image = _apply_order(image.float(), config.first, rng, generator, (height, width))
    image = _apply_order(image, config.second, rng, generator, lr_size)
    # final: resize to the LR size with a sinc filter (or none), and JPEG, in either order
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    size = int(rng.choice(np.arange(7, 22, 2)))
    kernel = sinc_kernel(size, _sinc_cutoff(rng, size)) if rng.random() < config.final_sinc_prob else None
    quality = _uniform(rng, config.final_jpeg_quality)
    if rng.random() < 0.5:
        image = resize(image, lr_size, mode)
        image = blur(image, kernel) if kernel is not None else image
        image = jpeg(image, quality)
    else:
        image = jpeg(image, quality)
        image = resize(image, lr_size, mode)
        image = blur(image, kernel) if kernel is not None else image
    image = (image.clamp(0, 1) * 255).round() / 255
    return image[0] if single else image


def degrade_uint8(
    hr: torch.Tensor, scale: int, rng: np.random.Generator, config: Optional[DegradationConfig] = None
) -> torch.Tensor:
    """[`degrade`] of a uint8 `(3, H, W)` image, returning the uint8 LR: what training patches and test sets use."""
    from .image_processor import SRDiffImageProcessor

    lr01 = degrade(SRDiffImageProcessor.uint8_to_float(hr), scale, rng, config)
    return SRDiffImageProcessor.to_uint8(lr01)
