# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Seconds per 4x upscale, side by side in one run: the one-step SRDiff (its stored defaults: 1 step), its teacher at
10 DDIM steps, and an ESRGAN-shape network (an RRDB trunk of 64 features x 23 blocks with its x4 head, one forward,
random weights: the cost of a Real-ESRGAN-size GAN upscaler), in float32 and bfloat16, on LR images of 128x128 and
512x512 (the pipelines tile the large one as `srdiff upscale` does). Results: docs/performance.md.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_peers.py --student bicubic-1step --teacher bicubic \
        --sizes 128,512 --repeats 3 --json results/peers.json
"""

import argparse
import os
import sys

import torch

from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, resolve_model, retain_freed_cpu_memory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="bicubic-1step", help="The one-step model (name, folder or Hub id).")
    parser.add_argument("--teacher", default="bicubic", help="Its teacher, sampled with 10 DDIM steps.")
    parser.add_argument("--sizes", default="128,512", help="Comma-separated LR sides.")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="Comma-separated: float32, bfloat16.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed rounds below 512 px (one at 512 and more).")
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = parser.parse_args()
    retain_freed_cpu_memory()
    device = torch.device("cpu")
    sizes = [int(value) for value in args.sizes.split(",")]
    torch.manual_seed(0)
    esrgan = RRDBEncoder(num_features=64, num_blocks=23, upscale_factor=4).eval()

    rows = []
    for dtype_name in args.dtypes.split(","):
        dtype = DTYPES[dtype_name]
        student = SRDiffPipeline.from_pretrained(resolve_model(args.student), torch_dtype=dtype)
        teacher = SRDiffPipeline.from_pretrained(resolve_model(args.teacher), torch_dtype=dtype)
        teacher.scheduler = teacher.fast_scheduler("ddim")
        gan = esrgan.to(dtype)
        for pipe in (student, teacher):
            pipe.set_progress_bar_config(disable=True)
        for side in sizes:
            lr01 = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side))
            lr_in = (lr01 * 2 - 1).to(dtype)  # the GAN's input range, as the encoder takes it
            variants = {
                "one-step SRDiff (its defaults)": lambda: student(lr01, output_type="pt"),
                "teacher, DDIM 10": lambda: teacher(lr01, num_inference_steps=10, output_type="pt"),
                "ESRGAN shape (RRDB 64x23), one forward": lambda: torch.no_grad()(gan)(lr_in),
            }
            with _common.section(f"{dtype_name}, {side}x{side} LR"):
                # the first, smaller size has warmed the kernels up; a warm-up of a large image would double the run
                large = side >= 512
                times = _common.alternate(variants, 1 if large else args.repeats, device, warmup=0 if large else 1)
            medians = {name: _common.summarize(samples)["median_s"] for name, samples in times.items()}
            for name, seconds in medians.items():
                rows.append({
                    "dtype": dtype_name, "LR": f"{side}x{side}", "method": name, "seconds": round(seconds, 3),
                    "vs one-step": round(seconds / medians["one-step SRDiff (its defaults)"], 2),
                })  # fmt: skip
    _common.print_table(rows, ["dtype", "LR", "method", "seconds", "vs one-step"], title="Seconds per 4x upscale")
    if args.json:
        _common.write_json(args.json, {"machine": _common.machine_info(device), "rows": rows})


if __name__ == "__main__":
    main()
