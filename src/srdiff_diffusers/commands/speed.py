# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The fast paths as command-line options (`--dtype`, `--compile`) and the device set-up, shared by `srdiff upscale`
and `srdiff evaluate`."""

import argparse
import shutil

import torch

from ..runtime import retain_freed_cpu_memory

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="float32",
        help="Precision of the networks (the schedule stays in float32). bfloat16: about 2x faster on CPUs with "
        "AVX512-BF16 and on GPUs, its samples ~84 dB PSNR from the float32 ones; float16: GPUs only. Default: float32.",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the noise predictor (0.6-0.9x the time per step on the CPU, where it needs a C++ "
        "compiler). The first step of each image or tile size compiles, 10-40 s: worth it for several images or "
        "large tiled ones, not for one.",
    )


def has_cpp_compiler() -> bool:
    """Whether torch.compile can build its CPU kernels here (inductor writes and compiles C++)."""
    return any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++"))


def check_speed_arguments(args: argparse.Namespace, device: str) -> None:
    """Fails on impossible combinations before any slow work."""
    if args.dtype == "float16" and device == "cpu":
        raise ValueError("--dtype float16 needs a GPU (--device cuda); on the CPU use --dtype bfloat16")
    if args.compile and device == "cpu" and not has_cpp_compiler():
        raise ValueError(
            "--compile on the CPU needs a C++ compiler (torch.compile builds C++ kernels), and none was found: "
            "install one (e.g. `apt install g++`) or drop --compile"
        )


def resolve_device(args: argparse.Namespace) -> str:
    """
    `--device` (default: cuda when available), checked with the speed options before any slow work; on the CPU, freed
    memory is kept in the process so that the steps reuse their activations' pages (runtime.py).
    """
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu")
    check_speed_arguments(args, device)
    if device == "cpu":
        retain_freed_cpu_memory()
    return device


def apply_speed_arguments(pipe, args: argparse.Namespace) -> None:
    """Compiles the U-Net when asked (the dtype is set when loading, by `loading.load_pipeline`)."""
    if args.compile:
        import torch._inductor.config as inductor_config

        # Inference only, so the weights are constants: frozen, they are prepacked for oneDNN once.
        inductor_config.freezing = True
        pipe.unet.compile()


def torch_dtype(args: argparse.Namespace) -> torch.dtype:
    return DTYPES[args.dtype]
