# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Per-image seeds: each file's randomness comes from the run's seed and its relative path alone, so that results do
not depend on the other files, their order, or how many processes share the work (`srdiff degrade`, `upscale`,
`evaluate`).
"""

import hashlib
from typing import List

import numpy as np
import torch


def image_seed(seed: int, relative_name: str) -> List[int]:
    """
    The seed of one file, as entropy for `np.random.default_rng` / `np.random.SeedSequence`: the run's seed and 64
    bits of the SHA-256 of its relative path (POSIX separators). Not Python's `hash`, which is salted per process.
    """
    if int(seed) < 0:
        raise ValueError(f"a seed must be a non-negative integer, got {seed}")
    digest = hashlib.sha256(relative_name.encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def sample_seed(seed: int, relative_name: str, sample: int = 0) -> int:
    """A 63-bit torch seed for sample `sample` of one file, mixed from [`image_seed`] by numpy's `SeedSequence`."""
    state = np.random.SeedSequence(image_seed(seed, relative_name) + [int(sample)]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def sample_generators(seed: int, relative_name: str, count: int) -> List[torch.Generator]:
    """One CPU generator per sample (CPU, so that CPU and GPU runs draw the same noise)."""
    return [torch.Generator("cpu").manual_seed(sample_seed(seed, relative_name, k)) for k in range(count)]
