# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Reading image files with errors that say which file is wrong and why, for every command that reads images."""

import os
from typing import Union

import numpy as np
import PIL.Image

# Modes PIL gives 16-bit (and 32-bit integer) gray files.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def open_image(path: Union[str, os.PathLike]) -> PIL.Image.Image:
    """
    Opens and fully decodes an image file, so that a truncated file fails here and not halfway through a run.

    Raises:
        `FileNotFoundError`: the file does not exist.
        `ValueError`: it is not an image, is corrupt or truncated, or is larger than PIL's decompression-bomb limit.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist or is not a file.")
    try:
        with PIL.Image.open(path) as image:
            image.load()
    except PIL.Image.DecompressionBombError as error:
        raise ValueError(
            f"cannot read {path}: {error} Its upscaled result would not fit in memory either; crop or downscale it "
            "first, or, for a trusted file in your own script, raise `PIL.Image.MAX_IMAGE_PIXELS`."
        ) from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot read {path}: not an image file, or a corrupt one ({error})") from None
    return image


def sixteen_bit_to_unit_float(image: PIL.Image.Image, path: Union[str, os.PathLike]) -> np.ndarray:
    """A 16-bit gray image (one of `SIXTEEN_BIT_MODES`) as a float32 `HxW` array in [0, 1], without precision loss."""
    array = np.asarray(image).astype(np.float64)
    if array.min() < 0 or array.max() > 65535:
        raise ValueError(f"cannot read {path}: {image.mode} values outside 0..65535")
    return (array / 65535).astype(np.float32)


def to_rgb8(image: PIL.Image.Image, what: Union[str, os.PathLike] = "image") -> PIL.Image.Image:
    """
    An image as 8-bit RGB (gray repeated, alpha dropped) for code that works on 8-bit data (metrics, training
    patches): 16-bit gray is rounded to 8 bits (`convert("RGB")` would clip everything above 255 to white) and
    float (mode "F") images, which have no fixed range, are refused.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        gray = np.round(sixteen_bit_to_unit_float(image, what) * 255).astype(np.uint8)
        return PIL.Image.fromarray(gray).convert("RGB")
    if image.mode == "F":
        raise ValueError(f"{what}: float (mode 'F') images have no fixed range; save it as an 8- or 16-bit image.")
    return image.convert("RGB")
