# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Training data: HR images through `datasets`, random aligned HR/LR patches with the LR made on the fly."""

import io
import json
import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
import torch
from torch.utils.data import Dataset, Sampler

from ..degradations import DegradationConfig, degrade_uint8
from ..matlab_resize import imresize
from ..io import load_image_dataset
from ..image_processor import SRDiffImageProcessor


logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

FACE_CENTER_CROP = 178
FACE_SIZE = 160


@dataclass
class ImageRecord:
    """
    Where to read one HR image from: a local path, or the encoded bytes `datasets` stores; optionally its LR. `name`
    identifies the image in messages and in the skipped images, and pairs it with its LR image: the path relative to
    the data folder, unique (two sub-folders may hold files of the same name).
    """

    name: str
    path: Optional[str] = None
    data: Optional[bytes] = None
    lr_path: Optional[str] = None

    def open(self) -> PIL.Image.Image:
        return PIL.Image.open(self.path if self.data is None else io.BytesIO(self.data))


def _image_files(folder: str) -> List[str]:
    found = []
    for root, _, files in os.walk(folder):
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def load_hr_images(
    train_data_dir: Optional[str] = None,
    dataset_name: Optional[str] = None,
    dataset_config_name: Optional[str] = None,
    image_column: str = "image",
    cache_dir: Optional[str] = None,
    max_samples: Optional[int] = None,
    option: str = "--train_data_dir",
) -> List[ImageRecord]:
    r"""
    Lists the HR images of a folder (as a `datasets` `imagefolder`) or of a `datasets` dataset, without decoding them.

    Args:
        train_data_dir (`str`, *optional*): A folder of HR images (sub-folders are searched too).
        dataset_name (`str`, *optional*): A dataset name or path, instead: anything `datasets.load_dataset` opens,
            or a folder written by `save_to_disk` (see [`~io.load_image_dataset`]).
        dataset_config_name (`str`, *optional*): Its configuration.
        image_column (`str`, *optional*, defaults to `"image"`): The column holding the images.
        cache_dir (`str`, *optional*): `datasets` cache folder.
        max_samples (`int`, *optional*): Keep only the first N images.
        option (`str`, *optional*, defaults to `"--train_data_dir"`): The option that named `train_data_dir`, for
            the error messages (validation images come from `--validation_data_dir`).

    Returns:
        `List[ImageRecord]`, in the dataset's order, named by their path relative to `train_data_dir`.
    """
    import datasets

    if (train_data_dir is None) == (dataset_name is None):
        raise ValueError("Pass exactly one of `--train_data_dir` (a folder of HR images) or `--dataset_name`.")
    if train_data_dir is not None:
        if not os.path.isdir(train_data_dir):
            raise ValueError(f"`{option}` {train_data_dir!r} is not a folder.")
        if not _image_files(train_data_dir):
            raise ValueError(
                f"`{option}` {train_data_dir!r} contains no images (looked for {', '.join(IMAGE_EXTENSIONS)})."
            )
        dataset = datasets.load_dataset("imagefolder", data_dir=train_data_dir, cache_dir=cache_dir, split="train")
        root = train_data_dir
    else:
        dataset = load_image_dataset(dataset_name, "train", dataset_config_name, cache_dir)
        root = dataset_name if os.path.isdir(dataset_name) else None
    if image_column not in dataset.column_names:
        raise ValueError(
            f"`--image_column` {image_column!r} is not a column of the dataset; its columns are {dataset.column_names}."
        )
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    # Decoding is ours (in `SRPatchDataset`), so that an unreadable file is reported instead of crashing a worker.
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    records, names = [], set()
    for index, item in enumerate(dataset[image_column]):
        path, data = item.get("path"), item.get("bytes")
        name = _record_name(path, root) if path else f"{image_column}[{index}]"
        if name in names:  # a data set's files may share a name; skipped images are tracked by name
            name = f"{name} ({image_column}[{index}])"
        names.add(name)
        records.append(ImageRecord(name=name, path=path, data=data))
    if not records:
        raise ValueError("The dataset has no images.")
    return records


def _record_name(path: str, root: Optional[str]) -> str:
    """The path relative to the data folder (with `/`), or the file name for a file outside it (a cached copy)."""
    if root is not None and os.path.isabs(path):
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if not relative.startswith(os.pardir):
            return relative.replace(os.sep, "/")
    return os.path.basename(path) if os.path.isabs(path) else path.replace(os.sep, "/")


def attach_lr_images(records: List[ImageRecord], lr_data_dir: str) -> List[ImageRecord]:
    r"""
    Pairs each HR image with the LR image at the same relative path in `lr_data_dir` (e.g. a benchmark's
    `LR_bicubic/X4`; for a flat folder, the same file name), to train on given LR images instead of LR made on the
    fly. Pairing by relative path, not by file name, keeps `a/x.png` and `b/x.png` apart. An HR image without its
    LR is skipped later, with the reason.
    """
    if not os.path.isdir(lr_data_dir):
        raise ValueError(f"`--train_lr_data_dir` {lr_data_dir!r} is not a folder.")
    by_name = {
        os.path.relpath(path, lr_data_dir).replace(os.sep, "/"): path for path in _image_files(lr_data_dir)
    }
    if not by_name:
        raise ValueError(f"`--train_lr_data_dir` {lr_data_dir!r} contains no images.")
    for record in records:
        record.lr_path = by_name.get(record.name, "")
    return records


def _to_rgb_uint8(image: PIL.Image.Image, what: str = "image") -> torch.Tensor:
    """(3, H, W) uint8; 16-bit images are rounded to 8 bits (`convert("RGB")` would turn them white)."""
    return SRDiffImageProcessor.numpy_to_pt(SRDiffImageProcessor.to_rgb8_array(image, what))[0].contiguous()


def _model_range(image: torch.Tensor) -> torch.Tensor:
    """uint8 to float32 in [-1, 1], the models' range."""
    return SRDiffImageProcessor.normalize(SRDiffImageProcessor.uint8_to_float(image))


def face_preset(hr: torch.Tensor) -> torch.Tensor:
    """The paper's CelebA preparation: center crop 178 x 178, then MATLAB-bicubic resize to 160 x 160 (uint8)."""
    height, width = hr.shape[-2:]
    if height < FACE_CENTER_CROP or width < FACE_CENTER_CROP:
        raise ValueError(f"The face preset needs images of at least {FACE_CENTER_CROP} px, got {height}x{width}.")
    top, left = (height - FACE_CENTER_CROP) // 2, (width - FACE_CENTER_CROP) // 2
    hr = hr[:, top : top + FACE_CENTER_CROP, left : left + FACE_CENTER_CROP]
    return imresize(hr, size=(FACE_SIZE, FACE_SIZE))


def crop_to_multiple(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The top-left part of an HR image whose sides are multiples of `scale`, so that it has an exact LR."""
    height, width = hr.shape[-2:]
    return hr[..., : height - height % scale, : width - width % scale]


def make_lr(hr: torch.Tensor, scale: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Crops a uint8 HR image to a multiple of `scale` and makes its LR with MATLAB bicubic, as benchmark sets are."""
    hr = crop_to_multiple(hr, scale)
    return hr, imresize(hr, scale=1 / scale)


def augment(images: Sequence[torch.Tensor], rng: np.random.Generator) -> List[torch.Tensor]:
    """The same random horizontal flip, vertical flip and 90-degree rotation for every image."""
    hflip, vflip, rotate = rng.random(3) < 0.5
    out = []
    for image in images:
        if hflip:
            image = image.flip(-1)
        if vflip:
            image = image.flip(-2)
        if rotate:
            image = image.transpose(-1, -2)
        out.append(image.contiguous())
    return out


def degradation_config(args) -> Optional[DegradationConfig]:
    """The real-world degradation of `--degradation realistic` (`None` for bicubic), with `--degradation_config`."""
    if args.degradation != "realistic":
        return None
    if not args.degradation_config:
        return DegradationConfig()
    try:
        return DegradationConfig.from_json(args.degradation_config)
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise ValueError(f"`--degradation_config` {args.degradation_config!r}: {error}") from None


class SRPatchDataset(Dataset):
    r"""
    Random aligned (HR patch, LR patch) pairs. The LR image is made from the whole HR image with the MATLAB-bicubic
    port on uint8 (as the benchmark LR sets), or read from a paired file ([`attach_lr_images`]), and the patches are
    cropped at LR-pixel-aligned positions.

    Sample `k` is fully determined by `(seed, k)`: the image (a fresh permutation of all images every epoch), the
    crop and the augmentation. A resumed run therefore continues with exactly the samples it would have seen,
    without replaying a data loader.

    Images smaller than a patch and files that cannot be read are skipped when the dataset is built, counted and
    logged; if none is left, a `ValueError` says why.

    Args:
        records (`List[ImageRecord]`): The HR images, from [`load_hr_images`].
        resolution (`int`): HR patch size, a multiple of `scale`.
        scale (`int`): SR scale.
        seed (`int`, *optional*, defaults to 0): Seed of the sampling.
        augment (`bool`, *optional*, defaults to `True`): Random flips and 90-degree rotations.
        preset (`str`, *optional*, defaults to `"none"`): `"faces"` for the CelebA preparation.
        cache_images (`bool`, *optional*, defaults to `True`): Keep decoded images (and their LR) in memory.
        degradation (`DegradationConfig`, *optional*): Make each LR patch from its HR patch with this real-world
            degradation ([`~degradations.degrade`], drawn from `(seed, k)`) instead of MATLAB bicubic.
    """

    def __init__(
        self,
        records: List[ImageRecord],
        resolution: int,
        scale: int,
        seed: int = 0,
        augment: bool = True,
        preset: str = "none",
        cache_images: bool = True,
        degradation: Optional[DegradationConfig] = None,
    ):
        if resolution % scale:
            raise ValueError(f"`resolution` ({resolution}) must be a multiple of the scale ({scale}).")
        if preset not in ("none", "faces"):
            raise ValueError(f"`preset` must be 'none' or 'faces', got {preset!r}.")
        self.resolution, self.scale, self.seed = resolution, scale, seed
        self.augment, self.preset, self.cache_images = augment, preset, cache_images
        if degradation is not None and any(r.lr_path is not None for r in records):
            raise ValueError("Paired LR images (`--train_lr_data_dir`) and `--degradation realistic` exclude each other.")
        self.degradation = degradation
        self._cache: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        self.records, self.skipped = self._check(records)

    def _check(self, records: List[ImageRecord]) -> Tuple[List[ImageRecord], Dict[str, str]]:
        minimum = FACE_CENTER_CROP if self.preset == "faces" else self.resolution
        if self.preset == "faces":
            too_small = f"The face preset needs HR images of at least {minimum} px on each side."
        else:
            too_small = f"HR images must be at least {minimum} px on each side (lower `--resolution` for smaller ones)."
        kept, skipped = [], {}
        # What to do about each kind of skip (an ordered set), for the error if none is left: it must match the reasons.
        hints: Dict[str, None] = {}
        for record in records:
            try:
                with record.open() as image:
                    width, height, mode = image.size + (image.mode,)
                    image.verify()  # reads the whole file's structure, not the pixels
            except Exception as error:  # PIL raises many types for broken files
                skipped[record.name] = f"unreadable ({type(error).__name__}: {error})"
                hints["HR images must be readable image files."] = None
                continue
            if mode == "F":  # `to_rgb8` refuses it when decoded: known now from the header
                skipped[record.name] = "a float (mode 'F') image, which has no fixed range"
                hints["HR images must be 8- or 16-bit images."] = None
                continue
            if min(width, height) < minimum:
                skipped[record.name] = f"{width}x{height} is smaller than {minimum}x{minimum}"
                hints[too_small] = None
                continue
            if record.lr_path is not None:
                problem, hint = self._check_lr(record, width, height)
                if problem:
                    skipped[record.name] = problem
                    hints[hint] = None
                    continue
            kept.append(record)
        if skipped:
            details = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:10])
            more = "; ..." if len(skipped) > 10 else ""
            logger.warning(f"Skipped {len(skipped)} of {len(records)} images ({details}{more}).")
        if not kept:
            details = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:5])
            raise ValueError(
                f"None of the {len(records)} training images is usable: {details}. {' '.join(hints)}"
            )
        return kept, skipped

    def _check_lr(self, record: ImageRecord, width: int, height: int) -> Tuple[Optional[str], Optional[str]]:
        """The problem with a record's paired LR image (`None` if none) and what to do about it."""
        if not record.lr_path:
            return "no LR image of the same relative path", (
                "Every HR image needs an LR image at the same relative path (sub-folder and file name) in "
                "`--train_lr_data_dir`."
            )
        if self.preset == "faces":
            return "paired LR images cannot be used with the face preset (it resizes the HR image)", (
                "Drop `--train_lr_data_dir` with `--preset faces` (the LR images are then made from the HR ones)."
            )
        try:
            with PIL.Image.open(record.lr_path) as lr:
                lr_size = lr.size
        except Exception as error:
            return f"unreadable LR image ({type(error).__name__}: {error})", "LR images must be readable image files."
        expected = (width // self.scale, height // self.scale)
        if lr_size != expected:
            problem = f"LR image is {lr_size[0]}x{lr_size[1]}, expected {expected[0]}x{expected[1]} (HR / {self.scale})"
            return problem, (
                f"LR images must be exactly the HR size divided by `--upscale_factor` ({self.scale}): check that "
                f"`--train_lr_data_dir` holds the x{self.scale} LR images of these HR images."
            )
        return None, None

    def __len__(self) -> int:
        # The sampler decides how many samples are drawn; this is one epoch.
        return len(self.records)

    def _load(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        # `verify` accepts some broken files (a truncated JPEG); such an image is skipped here, with a warning, in
        # favour of the next one, so that one bad file cannot stop a long run. The choice is deterministic.
        for offset in range(len(self.records)):
            candidate = (index + offset) % len(self.records)
            if self.records[candidate].name in self.skipped:
                continue
            try:
                return self._load_one(candidate)
            except Exception as error:  # PIL raises many types for broken files
                self.skipped[self.records[candidate].name] = f"undecodable ({type(error).__name__}: {error})"
                logger.warning(
                    f"Skipping training image {self.records[candidate].name!r}, which cannot be decoded: {error} "
                    f"({len(self.skipped)} skipped so far)."
                )
        raise ValueError(f"None of the {len(self.records)} training images can be decoded: {self.skipped}.")

    def _load_one(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if index in self._cache:
            return self._cache[index]
        record = self.records[index]
        with record.open() as image:
            hr = _to_rgb_uint8(image, record.name)
        if self.preset == "faces":
            hr = face_preset(hr)
        if record.lr_path:
            with PIL.Image.open(record.lr_path) as image:
                lr = _to_rgb_uint8(image, record.lr_path)
            s = self.scale
            pair = (hr[:, : lr.shape[1] * s, : lr.shape[2] * s], lr)
        elif self.degradation is not None:  # the LR is made per patch
            pair = (crop_to_multiple(hr, self.scale), None)
        else:
            pair = make_lr(hr, self.scale)
        if self.cache_images:
            self._cache[index] = pair
        return pair

    def image_index(self, k: int) -> int:
        epoch, position = divmod(k, len(self.records))
        return int(np.random.default_rng([self.seed, epoch]).permutation(len(self.records))[position])

    def __getitem__(self, k: int) -> Dict[str, torch.Tensor]:
        """Sample `k`: `hr` (3, P, P) and `lr` (3, P/s, P/s), float32 in [-1, 1] (LR exactly uint8 / 255)."""
        hr, lr = self._load(self.image_index(k))
        rng = np.random.default_rng([self.seed, k, 1])
        s = self.scale
        lr_size = self.resolution // s
        top = int(rng.integers(0, hr.shape[-2] // s - lr_size + 1))
        left = int(rng.integers(0, hr.shape[-1] // s - lr_size + 1))
        hr = hr[:, top * s : (top + lr_size) * s, left * s : (left + lr_size) * s]
        if self.degradation is not None:
            if self.augment:
                (hr,) = augment((hr,), rng)
            lr = degrade_uint8(hr, s, np.random.default_rng([self.seed, k, 3]), self.degradation)
            return {"hr": _model_range(hr), "lr": _model_range(lr)}
        lr = lr[:, top : top + lr_size, left : left + lr_size]
        if self.augment:
            hr, lr = augment((hr, lr), rng)
        return {"hr": _model_range(hr), "lr": _model_range(lr)}


class StepSampler(Sampler):
    r"""
    Yields sample indices for one process, from optimizer step `start_step` on, forever: micro-batch `m` of process
    `p` gets indices `(m * num_processes + p) * batch_size + j`, so processes never share a sample and a resumed run
    continues the exact sequence.
    """

    def __init__(self, batch_size: int, start_micro_batch: int = 0, process_index: int = 0, num_processes: int = 1):
        self.batch_size, self.start = batch_size, start_micro_batch
        self.process_index, self.num_processes = process_index, num_processes

    def __iter__(self) -> Iterator[int]:
        micro = self.start
        while True:
            first = (micro * self.num_processes + self.process_index) * self.batch_size
            yield from range(first, first + self.batch_size)
            micro += 1
