# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The seed rule, one for Python, `srdiff upscale`, `srdiff evaluate`, the demo and training validation: sample k of an
image made with seed s is drawn from `torch.Generator("cpu").manual_seed(s + k)`, whatever the image's name, the
other images, the batch or the process. So `pipe(image, generator=torch.Generator().manual_seed(s))` gives the same
image as `srdiff upscale image --seed s` and the demo with seed s. Data made from files (`srdiff degrade`) draws
each file's degradation from the seed and the file's relative path instead ([`image_seed`]).
"""

import hashlib
from typing import List

import torch


MAX_SEED = 2**64 - 1  # the largest seed torch's generators take


def check_seed(seed: int, count: int = 1) -> None:
    """`seed` must be a whole number such that it and the `count - 1` seeds after it are seeds torch takes."""
    if not 0 <= int(seed) <= MAX_SEED - (count - 1):
        samples = f" (samples k = 0 .. {count - 1} use seed + k)" if count > 1 else ""
        raise ValueError(f"a seed must be a non-negative integer up to {MAX_SEED - (count - 1)}{samples}, got {seed}")


def sample_seeds(seed: int, count: int) -> List[int]:
    """The torch seeds of samples 0 .. count - 1 of one image: `seed + k`."""
    check_seed(seed, count)
    return [int(seed) + k for k in range(count)]


def sample_generators(seed: int, count: int) -> List[torch.Generator]:
    """One CPU generator per sample (CPU, so that CPU and GPU runs draw the same noise), seeded by [`sample_seeds`]."""
    return [torch.Generator("cpu").manual_seed(value) for value in sample_seeds(seed, count)]


def image_seed(seed: int, relative_name: str) -> List[int]:
    """
    The seed of one data file, as entropy for `np.random.default_rng`: the run's seed and 64 bits of the SHA-256 of
    its relative path (POSIX separators), so that each file of a degraded test set is degraded differently. Not
    Python's `hash`, which is salted per process.
    """
    check_seed(seed)
    digest = hashlib.sha256(relative_name.encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]
