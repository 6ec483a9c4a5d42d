# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Files in and out: image files read with errors that say which file is wrong and why, `datasets` data sets opened
by name or path, and atomic writes (an interrupted run never leaves half a file where a result, or a user's file,
was).
"""

import io
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

import PIL.Image

if TYPE_CHECKING:
    import datasets


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


def load_image_dataset(
    name: str, split: str, config_name: Optional[str] = None, cache_dir: Optional[str] = None
) -> "datasets.Dataset":
    """
    One split of a data set: a Hub id, a local data folder or file (`datasets.load_dataset`), or a folder written by
    `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (`datasets.load_from_disk`, which `load_dataset` refuses
    with advice a command-line user cannot follow).
    """
    import datasets

    if os.path.isfile(os.path.join(name, "dataset_dict.json")):
        saved = datasets.load_from_disk(name)
        if split not in saved:
            raise ValueError(f"{name} has no split {split!r}; it has {sorted(saved)}.")
        return saved[split]
    if os.path.isfile(os.path.join(name, "state.json")) and os.path.isfile(os.path.join(name, "dataset_info.json")):
        return datasets.load_from_disk(name)  # a single saved split
    return datasets.load_dataset(name, config_name, split=split, cache_dir=cache_dir)
