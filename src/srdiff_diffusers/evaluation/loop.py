# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The evaluation loop behind `srdiff evaluate`, importable for validation during training.

For every HR image: make (or check) its LR image, super-resolve it with each method (`"bicubic"`: MATLAB bicubic
upscaling; `"rrdb"`: the RRDB encoder's own SR head, `pipe.encoder(lr).sample`; `"srdiff"`: the pipeline, K samples;
`"srdiff_mean"`, optional: the per-pixel mean of those K samples), quantise to uint8 as a saved PNG would be, and
compute PSNR/SSIM in both conventions, LPIPS, LR-PSNR and the diversity sigma. Results can be cached per image (JSON
lines) so that an interrupted run resumes.
"""

import json
import os
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from ..matlab_resize import imresize
from ..argument_checks import is_int
from ..image_processor import SRDiffImageProcessor
from ..io import open_image
from ..seeds import check_seed, sample_generators
from .metrics import Y_SSIM_WINDOW, diversity_sigma_torch, lr_psnr_torch, psnr_torch, ssim_torch
from .perceptual import LPIPSScorer


METHODS = ("bicubic", "rrdb", "srdiff", "srdiff_mean")
DEFAULT_METHODS = ("bicubic", "rrdb", "srdiff")
# The methods that sample the pipeline (seeded generator, no sigma of 0).
SRDIFF_METHODS = ("srdiff", "srdiff_mean")
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "lpips", "lr_psnr", "sigma")
# Bump when a metric's definition changes, so that old cached results are not mixed with new ones.
CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def to_uint8_rgb(image, what: str = "image") -> np.ndarray:
    """
    Any image as an `HxWx3` uint8 array: gray is repeated on three channels, alpha is dropped.

    Args:
        image (`str`, `os.PathLike`, `PIL.Image.Image` or `np.ndarray`): A file, a PIL image, or a uint8 / float
            ([0, 1]) array, `HxW` or `HxWxC` (C in 1, 3, 4).
        what (`str`, *optional*): Named in error messages.
    """
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if isinstance(image, PIL.Image.Image):
        return SRDiffImageProcessor.to_rgb8_array(image, what)  # the metrics are defined on 8-bit images, as benchmarks
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a file path, a PIL image or a numpy array, got {type(image).__name__}.")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating) or image.min() < 0 or image.max() > 1:
            raise ValueError(f"{what}: numpy images must be uint8, or float in [0, 1]; got {image.dtype}.")
        image = SRDiffImageProcessor.numpy_to_uint8(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what} must be HxW or HxWxC with C in (1, 3, 4), got shape {image.shape}.")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """`HxWxC` uint8 to `(1, C, H, W)` uint8."""
    return SRDiffImageProcessor.numpy_to_pt(image)


def _to_numpy(batch: torch.Tensor) -> List[np.ndarray]:
    """`(N, C, H, W)` uint8 to a list of `HxWxC` uint8 arrays."""
    return [np.ascontiguousarray(item) for item in SRDiffImageProcessor.pt_to_numpy(batch)]


def _check_scale(scale) -> None:
    if not is_int(scale) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer (the SR factor), got {scale!r}.")


def min_evaluable_size(scale: int) -> int:
    """The smallest HR side every metric takes at this scale: a multiple of it, with SSIM-Y's window left after the
    `scale`-pixel border that the Y convention crops."""
    needed = 2 * scale + Y_SSIM_WINDOW
    return -(-needed // scale) * scale


def check_evaluable_size(width: int, height: int, scale: int, crop: Optional[int] = None, name: str = "image"):
    """
    Raises `ValueError` when an HR image of this size, center-cropped to `crop` and cropped to a multiple of the
    scale as [`prepare_pair`] does, is smaller than what every metric takes ([`min_evaluable_size`]). Callers with
    many images check them all first, so that a small one fails before any work.
    """
    minimum = min_evaluable_size(scale)
    why = (
        f"at x{scale} the metrics need HR images of at least {minimum}x{minimum} (PSNR-Y and SSIM-Y crop a "
        f"{scale}-pixel border, and SSIM-Y's window is {Y_SSIM_WINDOW}x{Y_SSIM_WINDOW})"
    )
    if crop is not None and crop < minimum:
        raise ValueError(f"`crop` ({crop}) is too small: {why}; crop to {minimum} or more.")
    if crop is not None:
        width, height = min(crop, width), min(crop, height)
    if min(width, height) // scale * scale < minimum:
        raise ValueError(f"HR image {name!r} ({width}x{height}{' after `crop`' if crop else ''}) is too small: {why}.")


def prepare_pair(hr, lr=None, *, scale: int, crop: Optional[int] = None, name: str = "image"):
    """
    Makes the (HR, LR) pair that is evaluated, without ever resampling the ground truth.

    1. `crop` (optional): center-crop HR to at most `crop x crop` (rounded down to a multiple of `scale`, at an
       offset that is a multiple of `scale`, so that a given LR image is cropped to the matching region).
    2. HR is cropped at the bottom/right to a multiple of `scale` ("modcrop", as benchmark LR sets were made).
    3. LR: when not given, `imresize(HR, 1 / scale)` on uint8 (MATLAB bicubic, as benchmark LR sets were made);
       when given, its size must be exactly HR's divided by `scale`.

    Args:
        hr, lr: Images as [`to_uint8_rgb`] takes them.
        scale (`int`): The SR scale.
        crop (`int`, *optional*): Center-crop size in HR pixels.
        name (`str`, *optional*): Named in error messages.

    Returns:
        `(np.ndarray, np.ndarray)`: `HxWx3` and `(H/s)x(W/s)x3` uint8.
    """
    _check_scale(scale)
    if crop is not None and (not is_int(crop)):
        raise ValueError(f"`crop` must be an integer number of HR pixels, got {crop!r}.")
    hr = to_uint8_rgb(hr, f"HR image {name!r}")
    lr = None if lr is None else to_uint8_rgb(lr, f"LR image {name!r}")
    check_evaluable_size(hr.shape[1], hr.shape[0], scale, crop, name)
    if crop is not None:
        height, width = hr.shape[:2]
        crop_h, crop_w = min(crop, height) // scale * scale, min(crop, width) // scale * scale
        top, left = (height - crop_h) // 2 // scale * scale, (width - crop_w) // 2 // scale * scale
        hr = hr[top : top + crop_h, left : left + crop_w]
        if lr is not None:
            lr = lr[top // scale : (top + crop_h) // scale, left // scale : (left + crop_w) // scale]
    height, width = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    hr = np.ascontiguousarray(hr[:height, :width])
    if lr is None:
        lr = _to_numpy(imresize(_to_tensor(hr), scale=1 / scale))[0]
    elif lr.shape[:2] != (height // scale, width // scale):
        raise ValueError(
            f"LR image {name!r} is {lr.shape[1]}x{lr.shape[0]} but HR (cropped to a multiple of {scale}) is "
            f"{width}x{height}, so x{scale} LR should be {width // scale}x{height // scale}; check --scale and that "
            "the LR folder matches the HR folder."
        )
    return hr, lr


# ---------------------------------------------------------------------------------------------------------------
# Methods and metrics
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def super_resolve(
    method: str,
    lr: np.ndarray,
    *,
    scale: int,
    pipe=None,
    num_inference_steps: int = 100,
    num_samples: int = 1,
    generator: Optional[torch.Generator] = None,
    temperature: float = 1.0,
) -> List[np.ndarray]:
    """
    Super-resolves one uint8 LR image with one method.

    Args:
        method (`str`): `"bicubic"`, `"rrdb"`, `"srdiff"` or `"srdiff_mean"` (one image: the mean of the samples).
        lr (`np.ndarray`): `HxWx3` uint8.
        scale (`int`): The SR scale.
        pipe ([`SRDiffPipeline`], *optional*): Needed by `"rrdb"` and `"srdiff"`.
        num_inference_steps (`int`, *optional*, defaults to 100): SRDiff's denoising steps.
        num_samples (`int`, *optional*, defaults to 1): SRDiff samples (the others are deterministic: one image).
        generator (`torch.Generator` or a list, one per sample, *optional*): SRDiff's randomness.
        temperature (`float`, *optional*, defaults to 1.0): Scale of SRDiff's starting noise (see
            [`SRDiffPipeline.__call__`]).

    Returns:
        `List[np.ndarray]`: `(H*s)x(W*s)x3` uint8 images.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")
    if not isinstance(lr, np.ndarray) or lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3:
        what = f"{lr.dtype} array of shape {lr.shape}" if isinstance(lr, np.ndarray) else type(lr).__name__
        raise ValueError(f"`lr` must be an HxWx3 uint8 array (see `to_uint8_rgb`), got a {what}.")
    _check_scale(scale)
    if pipe is not None and method != "bicubic" and scale != pipe.upscale_factor:
        raise ValueError(f"`scale` {scale} does not match the model, which upscales x{pipe.upscale_factor}.")
    if method == "bicubic":
        # MATLAB's imresize on a uint8 image, as benchmark "Bicubic" rows are computed.
        return _to_numpy(imresize(_to_tensor(lr), scale=scale))
    if pipe is None:
        raise ValueError(f"The {method!r} method needs a model (`pipe`).")
    if method == "rrdb":
        encoder = pipe.encoder
        processor = SRDiffImageProcessor
        lr01 = processor.uint8_to_float(_to_tensor(lr).to(pipe._execution_device), encoder.dtype)
        sample = encoder(processor.normalize(lr01)).sample.float()
        return _to_numpy(processor.to_uint8(processor.denormalize(sample)))
    if method in SRDIFF_METHODS:
        images = pipe(
            lr,
            num_inference_steps=num_inference_steps,
            num_images_per_prompt=num_samples,
            generator=generator,
            temperature=temperature,
            output_type="np",
        ).images
        images = [SRDiffImageProcessor.numpy_to_uint8(image) for image in images]
        return [mean_image(images)] if method == "srdiff_mean" else images
    raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")


def mean_image(images: Sequence[np.ndarray]) -> np.ndarray:
    """
    The per-pixel mean of K uint8 SRDiff samples, rounded to uint8. It estimates the posterior mean (the MMSE
    estimate): higher PSNR than any one sample, at the cost of the detail the samples disagree on.
    """
    return np.round(np.mean(np.stack(images).astype(np.float64), axis=0)).astype(np.uint8)


def _mean_psnr(values: torch.Tensor) -> float:
    # The mean of K PSNRs; infinite if any sample reproduces its target exactly.
    return float(values.mean())


def image_metrics(
    outputs: Sequence[np.ndarray],
    hr: np.ndarray,
    lr: np.ndarray,
    *,
    scale: int,
    lpips_scorer: Optional[LPIPSScorer] = None,
    deterministic: bool = True,
) -> Dict[str, Optional[float]]:
    """
    All metrics of one image's SR outputs (K samples are averaged; sigma is computed over them).

    Args:
        outputs (`List[np.ndarray]`): K `HxWx3` uint8 SR images of the same LR image.
        hr (`np.ndarray`): The ground truth.
        lr (`np.ndarray`): The LR input.
        scale (`int`): The SR scale.
        lpips_scorer ([`LPIPSScorer`], *optional*): `lpips` is `None` when absent or unavailable.
        deterministic (`bool`, *optional*, defaults to `True`): The method always gives the same image, so sigma is
            0; otherwise sigma needs K >= 2 (else `None`).

    Returns:
        `Dict[str, Optional[float]]`: `psnr`, `ssim` (paper convention), `psnr_y`, `ssim_y`, `lpips`, `lr_psnr`,
        `sigma`, `num_samples`.
    """
    device = lpips_scorer.device if lpips_scorer is not None and lpips_scorer.available else torch.device("cpu")
    batch = torch.cat([_to_tensor(output) for output in outputs])
    target = _to_tensor(hr).expand(len(outputs), -1, -1, -1)
    low_res = _to_tensor(lr).expand(len(outputs), -1, -1, -1)
    metrics = {
        "psnr": _mean_psnr(psnr_torch(batch, target, "paper")),
        "ssim": float(ssim_torch(batch, target, "paper").mean()),
        "psnr_y": _mean_psnr(psnr_torch(batch, target, "y", scale)),
        "ssim_y": float(ssim_torch(batch, target, "y", scale).mean()),
        "lpips": None,
        "lr_psnr": _mean_psnr(lr_psnr_torch(batch, low_res, scale)),
        "sigma": 0.0 if deterministic else None,
        "num_samples": len(outputs),
    }
    if lpips_scorer is not None and lpips_scorer.available:
        metrics["lpips"] = float(lpips_scorer(batch.to(device), target.to(device)).mean())
    if not deterministic and len(outputs) >= 2:
        metrics["sigma"] = float(diversity_sigma_torch(batch))
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------------------------


class ResultCache:
    """
    Per-image results as JSON lines, one file per method, so that a rerun skips what is done. Each line holds the
    image name, a fingerprint of its HR pixels and a key of the settings that produced it; only exact matches are
    reused. Lines are appended and flushed one by one: an interrupted run loses at most the image in progress.

    Args:
        directory (`str` or `os.PathLike`): Where the `<method>.jsonl` files live.
        part (`int`, *optional*): Write `<method>.part-<part>.jsonl` instead, one file per process of a run split
            across processes (no two writers share a file); every part is read.
    """

    def __init__(self, directory: Union[str, os.PathLike], part: Optional[int] = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.part = part
        self._entries: Dict[str, Dict[tuple, dict]] = {}

    def _load(self, method: str) -> Dict[tuple, dict]:
        if method not in self._entries:
            entries = {}
            paths = [self.directory / f"{method}.jsonl", *sorted(self.directory.glob(f"{method}.part-*.jsonl"))]
            for path in (p for p in paths if p.is_file()):
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        entry = json.loads(line)
                        entries[(entry["key"], entry["image"], entry["fingerprint"])] = entry["metrics"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by an interruption
            self._entries[method] = entries
        return self._entries[method]

    def get(self, method: str, key: str, image: str, fingerprint: str) -> Optional[dict]:
        return self._load(method).get((key, image, fingerprint))

    def put(self, method: str, key: str, image: str, fingerprint: str, metrics: dict) -> None:
        self._load(method)[(key, image, fingerprint)] = metrics
        line = json.dumps({"key": key, "image": image, "fingerprint": fingerprint, "metrics": metrics})
        name = f"{method}.jsonl" if self.part is None else f"{method}.part-{self.part}.jsonl"
        with open(self.directory / name, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _fingerprint(hr: np.ndarray, lr: np.ndarray) -> str:
    return f"{zlib.crc32(hr.tobytes()):08x}{zlib.crc32(lr.tobytes()):08x}-{hr.shape[1]}x{hr.shape[0]}"


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


def summarize(rows: List[dict], methods: Sequence[str], lpips_text: Optional[str]) -> Dict[str, dict]:
    """
    Means over images, per method. A metric missing for some image is `None`, except LPIPS, which then reads
    "LPIPS unavailable: <reason>".
    """
    summary = {}
    for method in methods:
        method_rows = [row for row in rows if row["method"] == method]
        result = {"num_images": len(method_rows)}
        for metric in METRICS:
            values = [row[metric] for row in method_rows]
            if values and all(value is not None for value in values):
                result[metric] = float(np.mean(values))
            elif metric == "lpips":
                result[metric] = lpips_text or "LPIPS unavailable: not computed for every image"
            else:
                result[metric] = None
        summary[method] = result
    return summary


def evaluate_pipeline(
    pipe=None,
    hr_images: Sequence = (),
    lr_images: Optional[Sequence] = None,
    *,
    scale: Optional[int] = None,
    names: Optional[Sequence[str]] = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    num_inference_steps: int = 100,
    num_samples: int = 1,
    seed: int = 0,
    temperature: float = 1.0,
    crop: Optional[int] = None,
    lpips: Union[bool, LPIPSScorer] = True,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    cache_tag: str = "",
    on_image: Optional[Callable] = None,
    progress: bool = True,
    cache_part: Optional[int] = None,
) -> dict:
    r"""
    Evaluates SR methods on HR images (and optional LR images) with the paper's metrics.

    Args:
        pipe ([`SRDiffPipeline`], *optional*): The model; needed by the `"rrdb"` and `"srdiff"` methods. Its scheduler
            is used as set.
        hr_images (`Sequence`): HR images: file paths, PIL images or uint8 arrays (see [`to_uint8_rgb`]).
        lr_images (`Sequence`, *optional*): Matching LR images; made with MATLAB bicubic from HR when absent.
        scale (`int`, *optional*): The SR scale; defaults to the model's, and must equal it.
        names (`Sequence[str]`, *optional*): Image names for the results; defaults to `"00000"`, `"00001"`, ...
        methods (`Sequence[str]`, *optional*, defaults to `("bicubic", "rrdb", "srdiff")`): What to evaluate, among
            those and `"srdiff_mean"` (the mean of the `num_samples` samples, derived from the `"srdiff"` samples
            when both are evaluated; it needs `num_samples >= 2`).
        num_inference_steps (`int`, *optional*, defaults to 100): SRDiff's denoising steps.
        num_samples (`int`, *optional*, defaults to 1): SRDiff samples per image; metrics are averaged over them,
            and the diversity sigma needs at least 2.
        seed (`int`, *optional*, defaults to 0): Sample k of every image is drawn with seed `seed + k`
            ([`~srdiff_diffusers.seeds.sample_generators`]), as `srdiff upscale` and the demo draw it.
        temperature (`float`, *optional*, defaults to 1.0): Scale of SRDiff's starting noise (see
            [`SRDiffPipeline.__call__`]).
        crop (`int`, *optional*): Center-crop HR to `crop x crop` first (see [`prepare_pair`]), for quick runs.
        lpips (`bool` or [`LPIPSScorer`], *optional*, defaults to `True`): Compute LPIPS when the optional `lpips`
            package and its weights are available; `False` skips it.
        cache_dir (`str` or `os.PathLike`, *optional*): Cache per-image results here and reuse them on a rerun.
        cache_tag (`str`, *optional*): Identifies the model in cache keys (e.g. its folder and modification time).
        on_image (`Callable`, *optional*): Called as `on_image(name, hr, lr, outputs)` after an image is computed;
            `outputs` maps each method to its list of uint8 images, or to `None` when it came from the cache.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar over images.
        cache_part (`int`, *optional*): This process's index when a run is split across processes: its results go
            to a cache file of its own (see [`ResultCache`]).

    Returns:
        `dict`: `{"scale", "methods": {method: {metric: mean}}, "per_image": [rows], "lpips": None or
        "LPIPS unavailable: <reason>", "settings": {...}}`. PSNR values may be `inf` (identical images).
    """
    for name, value in (("hr_images", hr_images), ("lr_images", lr_images), ("names", names), ("methods", methods)):
        # A string (a folder, one method) or one array is iterable too, and would be read item by item.
        if isinstance(value, (str, os.PathLike, np.ndarray, PIL.Image.Image)):
            raise TypeError(
                f"`{name}` must be a list (one entry per image, or of method names), got one {type(value).__name__}; "
                "wrap it in a list" + ("; for a folder, list its files" if name.endswith("images") else "") + "."
            )
    methods = list(dict.fromkeys(methods))
    unknown = [method for method in methods if method not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown or no methods {unknown or methods}; choose from {METHODS}.")
    methods.sort(key=METHODS.index)  # "srdiff" before "srdiff_mean", which reuses its samples
    needs_model = [method for method in methods if method != "bicubic"]
    if pipe is None and needs_model:
        raise ValueError(f"The methods {needs_model} need a model; pass `pipe` (CLI: --model DIR).")
    if pipe is not None:
        if scale is not None and int(scale) != pipe.upscale_factor:
            raise ValueError(
                f"--scale/`scale` is {scale} but the model upscales x{pipe.upscale_factor}; evaluate it at x"
                f"{pipe.upscale_factor} (with a matching LR folder) or use a x{scale} model."
            )
        scale = pipe.upscale_factor
    _check_scale(scale)
    if not is_int(num_samples) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}.")
    num_samples = int(num_samples)
    if not is_int(seed):
        raise ValueError(f"`seed` must be an integer >= 0 (sample k of each image uses seed + k), got {seed!r}.")
    check_seed(seed, num_samples)
    if "srdiff_mean" in methods and num_samples < 2:
        raise ValueError(
            f"The mean of SRDiff samples needs `num_samples` >= 2 (CLI: --num-samples), got {num_samples}."
        )
    hr_images = list(hr_images)
    if not hr_images:
        raise ValueError("There are no HR images to evaluate.")
    if lr_images is not None and len(lr_images) != len(hr_images):
        raise ValueError(f"Got {len(lr_images)} LR images for {len(hr_images)} HR images.")
    names = [f"{index:05d}" for index in range(len(hr_images))] if names is None else [str(n) for n in names]
    if len(names) != len(hr_images) or len(set(names)) != len(names):
        raise ValueError("`names` must give one distinct name per HR image.")

    scorer = lpips if isinstance(lpips, LPIPSScorer) else None
    if scorer is None:
        device = pipe._execution_device if pipe is not None else "cpu"
        scorer = LPIPSScorer(device=device, enabled=bool(lpips))
    lpips_text = scorer.unavailable_text
    cache = ResultCache(cache_dir, cache_part) if cache_dir is not None else None
    scheduler_name = type(pipe.scheduler).__name__ if pipe is not None else None
    keys = {
        "bicubic": {"scale": scale, "crop": crop},
        "rrdb": {"scale": scale, "crop": crop, "model": cache_tag},
        "srdiff": {
            "scale": scale,
            "crop": crop,
            "model": cache_tag,
            "steps": num_inference_steps,
            "scheduler": scheduler_name,
            "num_samples": num_samples,
            "seed": seed,
            "seeding": "seed+k",  # the seed rule of `srdiff_diffusers.seeds`, not the per-name seeds of before
            # absent at 1, so that results cached before the option existed stay valid
            **({"temperature": float(temperature)} if temperature != 1 else {}),
        },
    }
    keys["srdiff_mean"] = keys["srdiff"]  # one file per method: the same settings make the same mean
    keys = {method: json.dumps(dict(key, version=CACHE_VERSION), sort_keys=True) for method, key in keys.items()}

    rows, computed, reused = [], 0, 0
    for index in tqdm(range(len(hr_images)), desc="Evaluating", unit="image", disable=not progress):
        name = names[index]
        lr_input = None if lr_images is None else lr_images[index]
        hr, lr = prepare_pair(hr_images[index], lr_input, scale=scale, crop=crop, name=name)
        fingerprint = _fingerprint(hr, lr)
        outputs, pending = {}, []
        for method in methods:
            metrics = cache.get(method, keys[method], name, fingerprint) if cache is not None else None
            # Results cached while LPIPS was unavailable are redone once it is available.
            if metrics is not None and not (metrics.get("lpips") is None and scorer.available):
                outputs[method] = None
                reused += 1
            else:
                stochastic = method in SRDIFF_METHODS
                if method == "srdiff_mean" and outputs.get("srdiff") is not None:
                    images = [mean_image(outputs["srdiff"])]  # the samples just made, from the same seed
                else:
                    generator = sample_generators(seed, num_samples) if stochastic else None
                    images = super_resolve(
                        method,
                        lr,
                        scale=scale,
                        pipe=pipe,
                        num_inference_steps=num_inference_steps,
                        num_samples=num_samples,
                        generator=generator,
                        temperature=temperature,
                    )
                # The mean is one image: no sigma for it (None, not 0).
                metrics = image_metrics(images, hr, lr, scale=scale, lpips_scorer=scorer, deterministic=not stochastic)
                outputs[method] = images
                pending.append((method, metrics))
                computed += 1
            rows.append({"method": method, "image": name, "height": hr.shape[0], "width": hr.shape[1], **metrics})
        if on_image is not None and pending:
            on_image(name, hr, lr, outputs)
        # Cached only after `on_image` (which saves the figures), so that an interrupted run redoes both.
        for method, metrics in pending if cache is not None else ():
            cache.put(method, keys[method], name, fingerprint, metrics)

    uses_srdiff = any(method in SRDIFF_METHODS for method in methods)
    return {
        "scale": scale,
        "methods": summarize(rows, methods, lpips_text),
        "per_image": rows,
        "lpips": lpips_text,
        "settings": {
            "methods": methods,
            "num_images": len(hr_images),
            "num_inference_steps": num_inference_steps if uses_srdiff else None,
            "scheduler": scheduler_name if uses_srdiff else None,
            "num_samples": num_samples if uses_srdiff else None,
            "temperature": temperature if uses_srdiff else None,
            "seed": seed,
            "crop": crop,
            "lr_given": lr_images is not None,
            "computed": computed,
            "reused_from_cache": reused,
        },
    }
