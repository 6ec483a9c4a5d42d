# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Keeping freed CPU memory in the process, so that the next network call does not pay for fresh pages.

On the CPU, PyTorch allocates every activation with the C library's `malloc` and frees it when it is no longer
used. glibc's `malloc` serves blocks above a threshold (at most 32 MiB by default) with `mmap` and gives them back to
the system on `free`; the next call then touches new pages, and the kernel zero-fills each 4 KiB page on its first
write. A U-Net step (the paper's CelebA configuration) at 512x512 allocates about 1.3 GB of such activations:
320,000 page faults and 0.5 s of system time out of 2 s (one thread; `benchmarks/compare_original.py` prints the
faults per call). Raising glibc's mmap and trim thresholds makes `malloc` keep freed blocks and reuse them, as the
CUDA caching allocator does on GPUs.

The cost: the process keeps its peak memory until it exits instead of returning it between calls. The `srdiff`
commands and the training script do this on the CPU (set `SRDIFF_KEEP_MALLOC_DEFAULTS=1` to opt out); a script
calls [`retain_freed_cpu_memory`] itself if it wants the same. Other C libraries (macOS, Windows, musl) and
preloaded allocators (jemalloc, tcmalloc, which already cache) are left alone.
"""

import ctypes
import ctypes.util
import os
import platform
from typing import Optional

from diffusers.utils import logging

from .argument_checks import is_int

logger = logging.get_logger(__name__)

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

OPT_OUT_VARIABLE = "SRDIFF_KEEP_MALLOC_DEFAULTS"


def retain_freed_cpu_memory(threshold: int = 2**31 - 1) -> bool:
    r"""
    Asks glibc's `malloc` to serve blocks up to `threshold` bytes from its heap and to keep up to `threshold` bytes
    of freed memory instead of returning it to the system (see the module docstring for why).

    Args:
        threshold (`int`, *optional*, defaults to 2 GiB - 1, the largest that `mallopt` takes): The mmap and trim
            thresholds, in bytes. Lower values give memory back sooner: a 512x512 step with a batch of 4 peaks at
            1.5 GiB in the original SRDiff code, and with 1 GiB it kept page-faulting.

    Returns:
        `bool`: whether the setting was applied (False with another C library, or when
        `SRDIFF_KEEP_MALLOC_DEFAULTS=1` is set).

    Example:

    ```py
    >>> from srdiff_diffusers.utils.cpu_memory import retain_freed_cpu_memory

    >>> applied = retain_freed_cpu_memory()  # once, before running the pipeline on the CPU
    ```
    """
    if not is_int(threshold) or not 0 < threshold < 2**31:
        raise ValueError(f"`threshold` must be a positive number of bytes below 2**31 (a C int), got {threshold!r}.")
    if os.environ.get(OPT_OUT_VARIABLE, "0") not in ("", "0"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; glibc versions that cap the mmap threshold lower refuse larger values.
    threshold = int(threshold)  # numpy integers
    applied = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    if not applied:
        logger.info("glibc refused the malloc thresholds; freed CPU memory keeps going back to the system.")
    return applied


def available_cpu_memory() -> Optional[int]:
    r"""
    The bytes of memory the system can still give this process: `MemAvailable` plus `SwapFree` from `/proc/meminfo`,
    and no more than a cgroup (v2) limit leaves, as in a container. `None` where this is unknown (not Linux).
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:2]}
        available = fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, KeyError, ValueError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available
