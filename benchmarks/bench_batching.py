"""Throughput of batched sampling and of `srdiff upscale` split over processes, with the shipped model.

1. Images per second of `SRDiffPipeline` at `batch_size` 1, 4 and 8 (DDIM), for `--count` LR inputs of
   `--size`^2 pixels, and for one `--tiled-size`^2 LR input tiled (`tile_size="auto"`: tiles of at most 256 LR
   pixels, their batch going through the U-Net together). Times are `--clock` (default: CPU time of the one
   intra-op thread, which on a shared machine leaves out the time other processes hold the cores).
2. Wall time of `srdiff upscale` on `--cli-count` images of `--cli-size`^2 LR pixels, under
   `accelerate launch --num_processes 1` and `2` (CPU processes, one thread each). Wall time: several processes
   are what is measured, so it counts the machine's other load too.

    python benchmarks/bench_batching.py --steps 5 --tiled-steps 2 --json batching.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def random_images(count: int, size: int, seed: int = 0):
    """Smooth random LR images (uint8 RGB): content does not change the cost of a U-Net."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (count, size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
    images = np.repeat(np.repeat(low, 8, axis=1), 8, axis=2)[:, :size, :size] / 255.0
    return [image.astype(np.float32) for image in images]


def pipeline_rows(args, device):
    import srdiff_diffusers
    from srdiff_diffusers import SRDiffPipeline

    pipe = SRDiffPipeline.from_pretrained(srdiff_diffusers.BICUBIC_MODEL_PATH).to(device)
    pipe.scheduler = pipe.fast_scheduler("ddim")
    pipe.set_progress_bar_config(disable=True)
    rows = []
    cases = [
        (f"{args.count} x {args.size}x{args.size} LR", random_images(args.count, args.size), args.steps),
        (f"1 x {args.tiled_size}x{args.tiled_size} LR, tiled", random_images(1, args.tiled_size, 1), args.tiled_steps),
    ]
    for name, images, steps in cases:
        for batch_size in args.batch_sizes:
            def call():
                generators = [torch.Generator().manual_seed(k) for k in range(len(images))]
                pipe(images, num_inference_steps=steps, generator=generators, output_type="np", batch_size=batch_size)

            seconds = _common.time_call(call, device)
            rows.append({
                "input": name, "steps": steps, "batch_size": batch_size, "seconds": seconds,
                "images_per_s": len(images) / seconds, "s_per_image_step": seconds / len(images) / steps,
            })  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def process_rows(args):
    from srdiff_diffusers.io import save_png
    from srdiff_diffusers.image_processor import SRDiffImageProcessor
    import srdiff_diffusers

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        for index, image in enumerate(random_images(args.cli_count, args.cli_size, 2)):
            pil = SRDiffImageProcessor.numpy_to_pil(SRDiffImageProcessor.numpy_to_uint8(image))
            save_png(pil, inputs / f"sub{index % 2}" / f"{index:02d}.png")
        env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
        for processes in args.processes:
            out = Path(tmp) / f"out{processes}"
            command = [
                # `--multi_gpu` is accelerate's torchrun launcher; with ACCELERATE_USE_CPU it starts CPU processes.
                sys.executable, "-m", "accelerate.commands.launch", *(["--multi_gpu"] if processes > 1 else []),
                "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "-m", "srdiff_diffusers", "upscale", str(inputs), "-o", str(out),
                "--model", str(srdiff_diffusers.BICUBIC_MODEL_PATH), "--scheduler", "ddim",
                "--steps", str(args.cli_steps), "--seed", "0", "--device", "cpu",
                "--manifest", str(Path(tmp) / f"manifest{processes}.jsonl"),
            ]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            manifest = Path(tmp) / f"manifest{processes}.jsonl"
            rows.append({
                "input": f"{args.cli_count} x {args.cli_size}x{args.cli_size} LR, srdiff upscale",
                "steps": args.cli_steps,
                "processes": processes, "wall_s": seconds, "images_per_s": args.cli_count / seconds,
                # which processes wrote outputs, from the manifest: a launch that started one process shows here
                "working_processes": len({json.loads(line)["process"] for line in manifest.read_text().splitlines()}),
            })  # fmt: skip
            print(rows[-1], flush=True)
        files = [
            {p.relative_to(Path(tmp) / f"out{n}"): p.read_bytes() for p in (Path(tmp) / f"out{n}").rglob("*.png")}
            for n in args.processes
        ]
        print(f"outputs identical across process counts: {all(f == files[0] for f in files)}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tiled-size", type=int, default=512)
    parser.add_argument("--tiled-steps", type=int, default=10)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--cli-count", type=int, default=16)
    parser.add_argument("--cli-size", type=int, default=64)
    parser.add_argument("--cli-steps", type=int, default=10)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-processes", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from srdiff_diffusers.runtime import retain_freed_cpu_memory

    torch.set_num_threads(args.threads)
    retain_freed_cpu_memory()
    _common.set_clock(args.clock)
    device = torch.device("cpu")
    result = {"machine": _common.machine_info(device), "args": vars(args)}
    if not args.skip_pipeline:
        with _common.section("batched sampling"):
            result["pipeline"] = pipeline_rows(args, device)
        _common.print_table(result["pipeline"], ["input", "steps", "batch_size", "seconds", "images_per_s"])
    if not args.skip_processes:
        with _common.section("srdiff upscale, 1 vs 2 processes"):
            result["processes"] = process_rows(args)
        columns = ["input", "steps", "processes", "working_processes", "wall_s", "images_per_s"]
        _common.print_table(result["processes"], columns)
    result["machine"]["load_average_end"] = os.getloadavg()
    if args.json:
        _common.write_json(args.json, result)


if __name__ == "__main__":
    main()
