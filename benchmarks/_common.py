# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Measurement helpers shared by the benchmark scripts: timing, peak memory, conv throughput, FLOP counts, tables,
test-set pairs."""

import json
import os
import platform
import resource
import statistics
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
import torch
import torch.nn as nn


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# "wall": elapsed time. "cpu": CPU time of the calling thread, which with one intra-op thread
# (`torch.set_num_threads(1)`) is all the work of a CPU run and does not count the time the process waits while
# other processes hold the cores; use it on a shared, busy machine. Set by the scripts' `--clock`.
CLOCK = {"name": "wall"}


def set_clock(name: str) -> None:
    if name not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {name!r}")
    CLOCK["name"] = name


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call (see `CLOCK`), waiting for the device to finish."""
    clock = time.thread_time if CLOCK["name"] == "cpu" else time.perf_counter
    synchronize(device)
    start = clock()
    fn()
    synchronize(device)
    return clock() - start


def alternate(
    variants: Dict[str, Callable[[], object]], repeats: int, device: torch.device, warmup: int = 1, progress=True
) -> Dict[str, List[float]]:
    """
    Times every variant `repeats` times in the order A B C A B C ...: slow drifts of the machine (other processes,
    thermal state) then hit every variant alike instead of biasing the one measured last.
    """
    for name, fn in variants.items():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    for round_index in range(repeats):
        for name, fn in variants.items():
            times[name].append(time_call(fn, device))
        if progress:
            summary = "  ".join(f"{n}={times[n][-1]:.3f}s" for n in variants)
            print(f"    round {round_index + 1}/{repeats}: {summary}", flush=True)
    return times


def summarize(samples: Sequence[float]) -> Dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "n": len(samples)}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """
    Peak memory of a block: on CUDA `torch.cuda.max_memory_allocated` above the allocation at entry; on the CPU the
    peak resident set size (sampled every millisecond by a thread; torch kernels release the GIL) above the RSS at
    entry. RSS includes allocator caching, so it is an upper bound of what the tensors needed.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _rss_bytes()
            self._peak = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self._peak, _rss_bytes()) - self._base
        return False

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20


def measure_peak(fn: Callable[[], object], device: torch.device) -> float:
    """MiB above the level at entry, for one call of `fn` (see [`PeakMemory`])."""
    with PeakMemory(device) as mem:
        fn()
    return mem.peak_mib


def measure_memory(fn: Callable[[], object], device: torch.device) -> Dict[str, float]:
    """
    One call of `fn`: its peak memory (`peak_mib`, see [`PeakMemory`]) and the process's minor page faults during it
    (`page_faults`: pages the kernel had to map and zero-fill because the allocator handed out memory new to the
    process, see srdiff_diffusers/runtime.py).
    """
    with PeakMemory(device) as mem:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn()
        synchronize(device)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {"peak_mib": mem.peak_mib, "page_faults": faults}


@torch.no_grad()
def conv_throughput(device: torch.device, dtype: torch.dtype, channels: int = 64, size: int = 160, repeats: int = 20):
    """
    GFLOP/s of one plain 3x3 convolution (`channels` -> `channels`, zero padding, batch 1, `size` x `size`), the
    best of NCHW and channels_last: the machine's practical ceiling for the convolutions that make up the U-Net.
    """
    flops = 2 * channels * channels * 9 * size * size
    best = {}
    for channels_last in (False, True):
        conv = nn.Conv2d(channels, channels, 3, padding=1).to(device=device, dtype=dtype)
        x = torch.randn(1, channels, size, size, device=device, dtype=dtype)
        if channels_last:
            conv = conv.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        for _ in range(3):
            conv(x)
        samples = [time_call(lambda: conv(x), device) for _ in range(repeats)]
        best["channels_last" if channels_last else "nchw"] = flops / statistics.median(samples) / 1e9
    return best


def count_flops(module: nn.Module, fn: Callable[[], object]) -> float:
    """FLOPs (2 x multiply-accumulates) of the convolutions, transposed convolutions and linear layers run by `fn`."""
    macs = [0]

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Linear):
            macs[0] += output.numel() * layer.in_features
        elif isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            macs[0] += output.numel() * (layer.in_channels // layer.groups) * kh * kw
        elif isinstance(layer, nn.ConvTranspose2d):
            kh, kw = layer.kernel_size
            macs[0] += inputs[0].numel() * (layer.out_channels // layer.groups) * kh * kw

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            fn()
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * macs[0]


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(data_range**2 / mse)).item()


def machine_info(device: torch.device) -> Dict[str, object]:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@contextmanager
def section(title: str):
    print(f"\n== {title}", flush=True)
    start = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)


def print_table(rows: List[Dict[str, object]], columns: Sequence[str], title: Optional[str] = None) -> None:
    if title:
        print(f"\n{title}")
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def _fmt(value) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.2e}"
    return str(value)


def write_json(path: str, payload: Dict[str, object]) -> None:
    """Atomic write: a crash never leaves a half-written result file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    os.replace(tmp, path)


def add_pair_arguments(parser) -> None:
    """`--hr-dir`, `--lr-dir` and `--scale` of a test set (e.g. Set14-real, made by `srdiff degrade`)."""
    parser.add_argument("--hr-dir", type=Path, required=True)
    parser.add_argument("--lr-dir", type=Path, required=True, help="LR images (PNG) with the HR images' file names.")
    parser.add_argument("--scale", type=int, default=4)


def pair_pipeline(parser, args, scheduler: str = "ddim"):
    """
    `--model`'s pipeline for the pairs of `add_pair_arguments`: `scheduler` is "ddpm" or a `pipe.fast_scheduler` name
    (which keeps the model's prediction type), whatever the model stores; no progress bars; its scale is `--scale`.
    """
    from diffusers import DDPMScheduler

    from srdiff_diffusers import SRDiffPipeline, resolve_model

    pipe = SRDiffPipeline.from_pretrained(resolve_model(args.model))
    if scheduler == "ddpm":
        pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    else:
        pipe.scheduler = pipe.fast_scheduler(scheduler)
    pipe.set_progress_bar_config(disable=True)
    if args.scale != pipe.upscale_factor:
        parser.error(f"--scale {args.scale}: the model upscales x{pipe.upscale_factor}.")
    return pipe


def pair_paths(parser, args) -> List[Tuple[Path, Path]]:
    """The (LR, HR) paths of `add_pair_arguments`' folders, checked before any work starts."""
    lr_paths = sorted(args.lr_dir.glob("*.png"))
    if not lr_paths:
        parser.error(f"--lr-dir {args.lr_dir}: no PNG images.")
    missing = [path.name for path in lr_paths if not (args.hr_dir / path.name).is_file()]
    if missing:
        parser.error(f"--hr-dir {args.hr_dir} lacks the HR images of {len(missing)} LR images, e.g. {missing[0]}.")
    print(f"{len(lr_paths)} images of {args.lr_dir}")
    return [(path, args.hr_dir / path.name) for path in lr_paths]


def to_batch01(image: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An HxWx3 uint8 array as a (1, 3, H, W) float batch in [0, 1]."""
    # imported here, so that the timing scripts do not import diffusers
    from srdiff_diffusers.image_processor import SRDiffImageProcessor

    return SRDiffImageProcessor.uint8_to_float(SRDiffImageProcessor.numpy_to_pt(image), dtype)


def load_pair(lr_path: Path, hr_path: Path, scale: int) -> Tuple[np.ndarray, np.ndarray]:
    """LR and HR as uint8 HxWx3 arrays, the HR cropped to `scale` x the LR's size."""
    lr = np.array(PIL.Image.open(lr_path).convert("RGB"))
    hr = np.array(PIL.Image.open(hr_path).convert("RGB"))
    return lr, hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
