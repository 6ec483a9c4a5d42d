# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Reading a visitor's upload for the web demo. The header is checked first (size limits, at least a few pixels), so a
decompression bomb or an oversized photo is refused before it is decoded; then the file is read as `srdiff upscale`
reads it. Every refusal is a `ValueError` whose message is written for the visitor, not for a developer.
"""

import os
from dataclasses import dataclass, field
from typing import List, Union

import numpy as np
import PIL.Image
import PIL.ImageOps

from ..loading import read_image
from ..image_processor import SIXTEEN_BIT_MODES

# Smaller images carry too little to super-resolve (and 1x1 uploads are nearly always mistakes).
MIN_SIDE = 8


@dataclass
class Upload:
    """An uploaded LR image as the pipeline takes it, and what was done to it on the way."""

    image: Union[PIL.Image.Image, np.ndarray]  # PIL (L, LA, RGB, RGBA, F), or an HxW float array for 16-bit gray
    width: int
    height: int
    notes: List[str] = field(default_factory=list)

    @property
    def sixteen_bit(self) -> bool:
        return isinstance(self.image, np.ndarray)


def _limit(max_pixels: int) -> str:
    side = int(max_pixels**0.5)
    return (
        f"this demo takes at most {max_pixels:,} pixels (e.g. {side}x{side}). Crop or downscale the image first; "
        "whoever runs the demo can raise the limit with `srdiff demo --max-pixels N` (or "
        "`build_demo(..., max_pixels=N)`)."
    )


def read_upload(path: Union[str, os.PathLike], name: str, max_pixels: int) -> Upload:
    """
    Checks and reads the uploaded file at `path` (`name` is what the visitor called it, for messages).

    Raises:
        `ValueError`: not an image, truncated or corrupt, a decompression bomb, over `max_pixels`, or too small.
    """
    # 1. the header only: nothing is decoded yet
    try:
        with PIL.Image.open(path) as header:
            width, height, mode = header.width, header.height, header.mode
    except PIL.Image.DecompressionBombError:
        raise ValueError(
            f"{name} declares an image of more than {2 * PIL.Image.MAX_IMAGE_PIXELS:,} pixels, so it was not opened "
            f"(a possible decompression bomb); {_limit(max_pixels)}"
        ) from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValueError(
            f"{name} is not an image file this demo can read: upload a PNG, JPEG, WebP, BMP or TIFF image."
        ) from None
    if width * height > max_pixels:
        raise ValueError(f"The image is {width}x{height} = {width * height:,} pixels; {_limit(max_pixels)}")
    if min(width, height) < MIN_SIDE:
        raise ValueError(
            f"The image is {width}x{height} pixels; SRDiff needs at least {MIN_SIDE} pixels on each side to have "
            "something to super-resolve."
        )

    # 2. decode, as `srdiff upscale` does (CMYK to RGB, 16-bit gray to floats without loss)
    try:
        image = read_image(path)
    except ValueError:
        raise ValueError(
            f"{name} could not be decoded: the file is truncated or corrupt. Save it again, or upload another one."
        ) from None
    notes = []
    if mode == "CMYK":
        notes.append("Converted from CMYK to RGB (without its colour profile, so colours may shift a little).")
    if mode in SIXTEEN_BIT_MODES:
        notes.append("16-bit gray image: upscaled at full precision; the PNG download is 16-bit.")
    if isinstance(image, PIL.Image.Image):
        # Browsers show photos turned by their EXIF orientation; the result must match what the visitor saw.
        image = PIL.ImageOps.exif_transpose(image)
        if image.mode == "P":
            # A palette result would be quantised back to the input's few colours.
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        width, height = image.size
    return Upload(image, width, height, notes)
