# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: an interrupted run never leaves half a file where a result (or a user's file) was."""

import io
import os
import tempfile
from pathlib import Path
from typing import Union

import PIL.Image


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def save_png(image: PIL.Image.Image, path: Union[str, os.PathLike]) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
