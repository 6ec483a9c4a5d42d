# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Runtime concerns of running the networks, apart from the algorithm: keeping freed CPU memory in the process
([`retain_freed_cpu_memory`]), the memory left on the CPU ([`available_cpu_memory`]) and the guard against NaN or
infinity in reduced precision ([`NonFiniteGuard`]).

Keeping freed CPU memory in the process, so that the next network call does not pay for fresh pages.

On the CPU, PyTorch allocates every activation with the C library's `malloc` and frees it when it is no longer
used. glibc's `malloc` serves blocks above a threshold (at most 32 MiB by default) with `mmap` and gives them back to
the system on `free`; the next call then touches new pages, and the kernel zero-fills each 4 KiB page on its first
write, a large share of a step's time (measured in docs/performance.md, "Page faults"). Raising glibc's mmap
and trim thresholds makes `malloc` keep freed blocks and reuse them, as the CUDA caching allocator does on GPUs.

The cost: the process keeps its peak memory until it exits instead of returning it between calls. The `srdiff`
commands and the training script do this on the CPU (set `SRDIFF_KEEP_MALLOC_DEFAULTS=1` to opt out); a script
calls [`retain_freed_cpu_memory`] itself if it wants the same. Other C libraries (macOS, Windows, musl) and
preloaded allocators (jemalloc, tcmalloc, which already cache) are left alone.
"""

import ctypes
import ctypes.util
import os
import platform
from typing import Optional, Sequence, Tuple

import torch
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
    >>> from srdiff_diffusers.runtime import retain_freed_cpu_memory

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

# Bytes of the full-size tensors of one image being upscaled (latents, noise, up(LR), the tiled prediction and its
# blending weights, the scheduler's temporaries) per HR pixel and sample, and of each finished image until all are
# post-processed; measured on the default model (docs/reliability.md).
_BYTES_PER_HR_PIXEL = 96
_BYTES_PER_FINISHED_PIXEL = 16
SKIP_MEMORY_CHECK_VARIABLE = "SRDIFF_SKIP_MEMORY_CHECK"


def check_cpu_memory(
    device: torch.device, lr_sizes: Sequence[Tuple[int, int]], scale: int, num_samples: int, batch_size: int = 1
) -> None:
    """
    Refuses, before any work, LR images (`(height, width)` each) whose full-size tensors cannot fit in the memory
    left on the CPU: tiling bounds the networks' memory, not that of the HR-size latents, and a run that outgrows
    the memory is killed by the system without a word, possibly hours in. `batch_size` images are in work at once.
    """
    if device.type != "cpu" or os.environ.get(SKIP_MEMORY_CHECK_VARIABLE, "0") not in ("", "0"):
        return
    available = available_cpu_memory()
    if available is None:
        return
    pixels = [height * width * scale * scale * num_samples for height, width in lr_sizes]
    needed = _BYTES_PER_HR_PIXEL * max(pixels) * batch_size + _BYTES_PER_FINISHED_PIXEL * sum(pixels)
    if needed > available:
        height, width = lr_sizes[pixels.index(max(pixels))]
        raise MemoryError(
            f"Upscaling {len(lr_sizes)} image(s) x{scale} ({num_samples} sample(s) each, the largest "
            f"{width}x{height} LR pixels) needs about {needed / 2**30:.1f} GiB of memory "
            f"for its full-size tensors, and {available / 2**30:.1f} GiB is available. Upscale fewer samples or "
            "images per call, or the image in parts (crops); or set "
            f"{SKIP_MEMORY_CHECK_VARIABLE}=1 to try anyway."
        )


class NonFiniteGuard:
    r"""
    Watches the noise predictions of a sampling loop for NaN or infinity and raises a `FloatingPointError` that says
    what to do, instead of returning a silently broken image.

    A float16 U-Net can overflow (its largest value is 65504), and a NaN anywhere makes the whole image NaN. An
    infinite prediction can even go unnoticed: the scheduler clips the predicted `x0` to [-1, 1], so the image would
    look plausible but be wrong. Checking the prediction itself catches both.

    On the CPU every step is checked as it comes (a check costs one reduction and no device synchronisation). On an
    accelerator, reading the result back every step would stall the loop, so the flags are combined on the device
    and read once, by [`~NonFiniteGuard.check`], after the loop.

    Args:
        dtype (`torch.dtype`): The U-Net's dtype, named in the error message.
        device (`torch.device` or `str`): Where the predictions live.
    """

    def __init__(self, dtype: torch.dtype, device):
        self.dtype = dtype
        self.check_every_step = torch.device(device).type == "cpu"
        self._all_finite: Optional[torch.Tensor] = None

    def update(self, noise_pred: torch.Tensor, step: int, timestep) -> None:
        """Records (or, on the CPU, checks at once) the prediction of step `step` (0-based), timestep `timestep`."""
        finite = torch.isfinite(noise_pred).all()
        if self.check_every_step:
            if not finite:
                raise self._error(f" at step {step} (timestep {int(timestep)})")
        else:
            self._all_finite = finite if self._all_finite is None else self._all_finite & finite

    def check(self) -> None:
        """Raises if any prediction recorded by [`~NonFiniteGuard.update`] was not finite (one device sync)."""
        if self._all_finite is not None and not bool(self._all_finite):
            raise self._error("")

    def _error(self, where: str) -> FloatingPointError:
        if self.dtype in (torch.float16, torch.bfloat16):
            advice = (
                f"The U-Net runs in {self.dtype}, whose range or precision may be too small for these weights or this "
                "input; run it in float32 (`pipe.to(dtype=torch.float32)`), or use bfloat16 instead of float16, "
                "which has the range of float32."
            )
        else:
            advice = "Check the weights (e.g. a diverged training run) and that the input image is finite."
        return FloatingPointError(f"The noise predictor returned NaN or infinite values{where}. {advice}")
