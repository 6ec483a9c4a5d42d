# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: an interrupted run never leaves half a file where a result (or a user's file) was."""

import io
import os
import secrets
import stat
from pathlib import Path
from typing import Callable, Union

import PIL.Image


def _create_beside(target: Path, kind: str, create: Callable[[Path], object]):
    """
    Creates a new hidden file or folder next to `target` with `create(path)`, which must fail with
    `FileExistsError` when the name is taken. Unlike `tempfile.mkstemp` / `mkdtemp` (0600 / 0700, meant for private
    scratch), the caller creates it with the permissions `open` / `mkdir` give, the umask applied, because it
    becomes the user's result.
    """
    for _ in range(100):
        candidate = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        try:
            return candidate, create(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(
        f"Could not find a free temporary name next to {target}; remove stale .{target.name}.* files."
    )


def make_staging_dir(target: Union[str, os.PathLike], kind: str = "staging") -> Path:
    """A new empty folder next to `target` (same file system, so it can be `os.replace`d onto it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _create_beside(target, kind, lambda path: os.mkdir(path, 0o777))[0]


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """
    Writes `data` to `path` through a temporary file in the same folder and `os.replace`. A new file gets the
    permissions of a plain `open(path, "w")`; a replaced file keeps its own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    temporary, handle = _create_beside(path, "tmp", lambda candidate: os.open(candidate, flags, 0o666))
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        if path.is_file():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def save_png(image: PIL.Image.Image, path: Union[str, os.PathLike]) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
