# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Opening a `datasets` data set by name or path, including folders written by `save_to_disk`."""

import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import datasets


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
