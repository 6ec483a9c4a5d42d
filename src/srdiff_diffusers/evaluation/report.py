# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Reports of an evaluation: a per-image CSV, a summary JSON, a markdown table with the paper's columns, comparison
grids and diversity figures (PNG, drawn with PIL only). Every file is written atomically (a temporary file, then
`os.replace`).

Infinite PSNRs (an SR image identical to its target, e.g. an LR-PSNR of a perfectly downscale-consistent output)
are kept, not capped: they are written as the string `"inf"` in JSON (strict JSON has no infinity) and as `inf`
in CSV and markdown, and a mean over images containing one is `inf` as well.
"""

import csv
import io
import json
import math
import os
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from ..image_processor import SRDiffImageProcessor
from ..io import atomic_write

to_pil = SRDiffImageProcessor.numpy_to_pil
from .loop import METRICS


METHOD_LABELS = {
    "bicubic": "Bicubic",
    "rrdb": "RRDB",
    "srdiff": "SRDiff",
    "srdiff_mean": "SRDiff, mean of samples",
}
# The paper's columns (Tables 1 and 2), then the SR literature's Y-channel convention.
PAPER_COLUMNS = (
    ("psnr", "PSNR ↑", 2),
    ("ssim", "SSIM ↑", 4),
    ("lpips", "LPIPS ↓", 3),
    ("lr_psnr", "LR-PSNR ↑", 2),
)
SIGMA_COLUMN = ("sigma", "σ ↑", 2)
Y_COLUMNS = (("psnr_y", "PSNR-Y ↑", 2), ("ssim_y", "SSIM-Y ↑", 4))
CSV_COLUMNS = ("method", "image", "width", "height") + METRICS + ("num_samples",)


def _json_safe(value):
    """Strict JSON: non-finite floats become the strings "inf", "-inf" and "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _format(value, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        return "inf" if value > 0 else str(value)
    return f"{value:.{digits}f}"


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _format(value, 6)
    return str(value)


def write_json(results: dict, path: Union[str, os.PathLike]) -> None:
    """The summary (everything but the per-image rows) as strict JSON."""
    summary = {key: value for key, value in results.items() if key != "per_image"}
    atomic_write(path, json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n")


def write_csv(results: dict, path: Union[str, os.PathLike]) -> None:
    """One row per method and image; missing values are empty, infinite PSNRs `inf`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in results["per_image"]:
        writer.writerow({key: _csv_cell(row.get(key)) for key in CSV_COLUMNS})
    atomic_write(path, buffer.getvalue())


def markdown_table(results: dict, title: Optional[str] = None) -> str:
    """
    The markdown report: the paper's columns (PSNR, SSIM, LPIPS, LR-PSNR, sigma), then the Y-channel PSNR/SSIM,
    one row per method; unavailable LPIPS is explained below the table.
    """
    scale = results["scale"]
    methods = results["methods"]
    num_images = max((summary["num_images"] for summary in methods.values()), default=0)
    lines = [f"## {title or 'SR evaluation'} (x{scale}, {num_images} images)", ""]
    columns = PAPER_COLUMNS + (SIGMA_COLUMN,)
    lines.append("| Method | " + " | ".join(label for _, label, _ in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    footnotes = []
    for method, summary in methods.items():
        cells = []
        for key, _, digits in columns:
            value = summary.get(key)
            if key == "lpips" and isinstance(value, str):
                if value not in footnotes:
                    footnotes.append(value)
                value = "n/a" + "*" * (footnotes.index(value) + 1)
            elif key == "sigma" and value is None:
                value = "n/a" if method == "srdiff_mean" else "n/a (1 sample)"
            cells.append(_format(value, digits))
        lines.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    lines += ["", "| Method | " + " | ".join(label for _, label, _ in Y_COLUMNS) + " |", "|---|---:|---:|"]
    for method, summary in methods.items():
        cells = [_format(summary.get(key), digits) for key, _, digits in Y_COLUMNS]
        lines.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "PSNR/SSIM: the paper's convention (RGB, uint8, whole image, scikit-image defaults). PSNR-Y/SSIM-Y: the SR "
        f"literature's (BT.601 luma, {scale}-pixel border cropped, Gaussian-window SSIM). LR-PSNR: the SR image "
        f"downscaled x{scale} with MATLAB bicubic against the LR input. σ: mean per-pixel standard deviation "
        "(0-255, ddof 0) over the samples of each LR image. Means over images; `inf` = identical images.",
    ]
    lines += [""] + ["*" * (index + 1) + " " + text for index, text in enumerate(footnotes)]
    settings = results.get("settings", {})
    if settings.get("num_inference_steps"):
        lines += [
            "",
            f"SRDiff: {settings['num_inference_steps']} step(s), {settings.get('scheduler')}, "
            f"{settings.get('num_samples')} sample(s) per image, seed {settings.get('seed')}"
            + (f", temperature {settings['temperature']:g}." if settings.get("temperature", 1) != 1 else "."),
        ]
    return "\n".join(lines) + "\n"


def write_markdown(results: dict, path: Union[str, os.PathLike], title: Optional[str] = None) -> None:
    atomic_write(path, markdown_table(results, title))


# ---------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------

_FONT = None


def _font():
    global _FONT
    if _FONT is None:
        _FONT = PIL.ImageFont.load_default()
    return _FONT


def _detail_crop(hr: np.ndarray, size: int) -> Tuple[int, int]:
    """Top-left corner of the `size x size` HR region with the most detail (largest variance), for the zoom row."""
    gray = hr.astype(np.float64).mean(axis=2)
    height, width = gray.shape
    stride = max(1, size // 2)
    best, corner = -1.0, (0, 0)
    for top in range(0, height - size + 1, stride):
        for left in range(0, width - size + 1, stride):
            variance = gray[top : top + size, left : left + size].var()
            if variance > best:
                best, corner = variance, (top, left)
    return corner


def _fit(image: PIL.Image.Image, tile: int) -> PIL.Image.Image:
    """Scales an image to fit a `tile x tile` box: smooth when shrinking, nearest (pixels visible) when enlarging."""
    ratio = tile / max(image.size)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    resample = PIL.Image.Resampling.NEAREST if ratio >= 1 else PIL.Image.Resampling.LANCZOS
    return image.resize(size, resample)


def _labelled_grid(columns: Sequence[Tuple[str, Sequence[PIL.Image.Image]]], tile: int) -> PIL.Image.Image:
    """Columns of equally sized tiles with a text label on top of each column."""
    label_height, gap = 16, 4
    rows = max(len(tiles) for _, tiles in columns)
    size = (len(columns) * (tile + gap) + gap, label_height + rows * (tile + gap) + gap)
    canvas = PIL.Image.new("RGB", size, "white")
    draw = PIL.ImageDraw.Draw(canvas)
    for column, (label, tiles) in enumerate(columns):
        x = gap + column * (tile + gap)
        draw.text((x + 2, 2), label, fill="black", font=_font())
        for row, image in enumerate(tiles):
            canvas.paste(image, (x, label_height + gap + row * (tile + gap)))
    return canvas


def comparison_grid(
    hr: np.ndarray,
    lr: np.ndarray,
    outputs: Dict[str, Sequence[np.ndarray]],
    *,
    max_samples: int = 3,
    tile: int = 256,
) -> PIL.Image.Image:
    """
    LR (nearest-upscaled) | Bicubic | RRDB | SRDiff samples | HR, with a zoomed crop of the most detailed region
    below (its place marked in red on the full images).

    Args:
        hr (`np.ndarray`): `HxWx3` uint8 ground truth.
        lr (`np.ndarray`): The LR input.
        outputs (`Dict[str, List[np.ndarray]]`): Each method's uint8 SR images (missing methods are left out).
        max_samples (`int`, *optional*, defaults to 3): SRDiff samples shown.
        tile (`int`, *optional*, defaults to 256): Tile size in pixels.
    """
    height, width = hr.shape[:2]
    columns = [("LR (nearest)", to_pil(lr).resize((width, height), PIL.Image.Resampling.NEAREST))]
    for method in ("bicubic", "rrdb", "srdiff", "srdiff_mean"):
        images = outputs.get(method) or []
        shown = images[:max_samples] if method == "srdiff" else images[:1]
        for index, image in enumerate(shown):
            label = METHOD_LABELS[method] + (f" #{index + 1}" if method == "srdiff" and len(shown) > 1 else "")
            columns.append((label, to_pil(image)))
    columns.append(("HR", to_pil(hr)))

    crop = max(4, min(height, width) // 4)
    top, left = _detail_crop(hr, crop)
    box = (left, top, left + crop, top + crop)
    ratio = tile / max(height, width)
    marked = [int(round(value * ratio)) for value in box]
    tiled = []
    for label, image in columns:
        full = _fit(image, tile)
        PIL.ImageDraw.Draw(full).rectangle(marked, outline=(255, 0, 0))
        zoom = image.crop(box).resize((tile, tile), PIL.Image.Resampling.NEAREST)
        tiled.append((label, [full, zoom]))
    return _labelled_grid(tiled, tile)


def diversity_figure(samples: Sequence[np.ndarray], *, max_samples: int = 4, tile: int = 256) -> PIL.Image.Image:
    """
    SRDiff samples of one LR image and their per-pixel standard deviation map (mean over channels, 0-255 scale,
    shown in gray with white = the largest value, which the label gives).

    Args:
        samples (`List[np.ndarray]`): K >= 2 `HxWx3` uint8 samples.
        max_samples (`int`, *optional*, defaults to 4): Samples shown.
        tile (`int`, *optional*, defaults to 256): Tile size in pixels.
    """
    if len(samples) < 2:
        raise ValueError("A diversity figure needs at least 2 samples (--num-samples 2 or more).")
    stack = np.stack(samples).astype(np.float64)
    std_map = stack.std(axis=0).mean(axis=2)
    peak = float(std_map.max())
    gray = np.zeros_like(std_map) if peak == 0 else std_map / peak * 255
    columns = [
        (f"Sample #{index + 1}", [_fit(to_pil(image), tile)])
        for index, image in enumerate(samples[:max_samples])
    ]
    std_image = to_pil(np.round(gray).astype(np.uint8)).convert("RGB")
    columns.append((f"std (max {peak:.1f}, mean {float(stack.std(axis=0).mean()):.2f})", [_fit(std_image, tile)]))
    return _labelled_grid(columns, tile)
