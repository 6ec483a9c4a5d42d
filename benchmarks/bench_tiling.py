"""Time and peak memory of 4x super-resolution with and without tiles, per LR size (random weights suffice).

Each (size, mode) runs in its own subprocess so that its peak RSS (`ru_maxrss`) is its own. Example:

    python benchmarks/bench_tiling.py --sizes 128 256 512 --steps 2 --json tiling.json

Per-step times are measured between step callbacks; `est_20_steps_s` extrapolates to 20 steps (DPM-Solver++,
DDIM or UniPC) and `est_100_steps_s` to the paper's 100 DDPM steps.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args) -> dict:
    import torch

    from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, SRDiffUNet2DModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = RRDBEncoder(num_features=args.rrdb_features, num_blocks=args.rrdb_blocks, upscale_factor=4)
    unet = SRDiffUNet2DModel(
        block_out_channels=tuple(args.unet_widths), condition_channels=encoder.condition_channels, upscale_factor=4
    )
    pipe = SRDiffPipeline(unet=unet.eval(), encoder=encoder.eval())
    pipe.set_progress_bar_config(disable=True)
    if args.scheduler != "ddpm":
        pipe.scheduler = pipe.fast_scheduler(args.scheduler)
    # a smooth random LR image (the content does not change the cost)
    low = torch.rand(1, 3, args.size // 16 + 1, args.size // 16 + 1, generator=torch.Generator().manual_seed(0))
    lr = torch.nn.functional.interpolate(low, size=(args.size, args.size), mode="bilinear").clamp(0, 1)

    stamps = []
    tile_size = None if args.mode == "untiled" else (args.tile_size if args.tile_size != "auto" else "auto")
    baseline = _rss_mib()
    start = time.perf_counter()
    out = pipe(
        lr,
        num_inference_steps=args.steps,
        output_type="pt",
        tile_size=tile_size,
        tile_overlap=args.tile_overlap,
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=lambda p, i, t, kw: stamps.append(time.perf_counter()) or {},
    ).images
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    steps = [b - a for a, b in zip([start] + stamps, stamps)]
    per_step = statistics.median(steps[1:]) if len(steps) > 1 else steps[0]
    first = steps[0]  # includes encoding
    tail = start + total - stamps[-1]  # post-processing
    return {
        "size_lr": args.size,
        "size_hr": out.shape[-1],
        "mode": args.mode,
        "tile_size": tile_size,
        "tile_overlap": args.tile_overlap if tile_size else None,
        "steps": args.steps,
        "total_s": round(total, 2),
        "per_step_s": round(per_step, 2),
        "est_20_steps_s": round(first + 19 * per_step + tail, 1),
        "est_100_steps_s": round(first + 99 * per_step + tail, 1),
        "peak_rss_mib": round(peak),
        "peak_over_baseline_mib": round(peak - baseline),
        "threads": args.threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512], help="LR sizes (square).")
    parser.add_argument("--modes", nargs="+", default=["tiled", "untiled"], choices=["tiled", "untiled"])
    parser.add_argument("--steps", type=int, default=2, help="Steps actually run (per-step time is extrapolated).")
    parser.add_argument("--scheduler", default="dpmsolver++", choices=["ddpm", "ddim", "dpmsolver++", "unipc"])
    parser.add_argument("--tile-size", default="128", help="LR tile side for 'tiled', or 'auto'.")
    parser.add_argument("--tile-overlap", type=int, default=16)
    parser.add_argument("--unet-widths", type=int, nargs="+", default=[32, 64, 64, 128])
    parser.add_argument("--rrdb-features", type=int, default=32)
    parser.add_argument("--rrdb-blocks", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--max-untiled", type=int, default=512, help="Skip untiled runs above this LR size.")
    parser.add_argument("--json", default=None, help="Write the results here (atomically).")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tile_size != "auto":
        args.tile_size = int(args.tile_size)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    results = []
    for size in args.sizes:
        for mode in args.modes:
            if mode == "untiled" and size > args.max_untiled:
                continue
            command = [sys.executable, __file__, "--worker", "--size", str(size), "--mode", mode]
            for name in ("steps", "scheduler", "tile_size", "tile_overlap", "threads"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            command += ["--unet-widths", *map(str, args.unet_widths)]
            command += ["--rrdb-features", str(args.rrdb_features), "--rrdb-blocks", str(args.rrdb_blocks)]
            print(f"running LR {size} {mode} ...", file=sys.stderr, flush=True)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
                results.append({"size_lr": size, "mode": mode, "error": f"exit {done.returncode}: {tail[0]}"})
            else:
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)

    print(
        "| LR size | HR size | mode | per step (s) | est. 20 steps (s) | est. 100 steps (s) | peak RSS (MiB) "
        "| peak over baseline (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if "error" in r:
            print(f"| {r['size_lr']} | | {r['mode']} | {r['error']} | | | | |")
            continue
        mode = r["mode"] if r["mode"] == "untiled" else f"tiled {r['tile_size']}/{r['tile_overlap']}"
        print(
            f"| {r['size_lr']} | {r['size_hr']} | {mode} | {r['per_step_s']} | {r['est_20_steps_s']} | "
            f"{r['est_100_steps_s']} | {r['peak_rss_mib']} | {r['peak_over_baseline_mib']} |"
        )
    if args.json:
        temp = args.json + ".tmp"
        with open(temp, "w") as file:
            json.dump(
                {
                    "config": {k: v for k, v in vars(args).items() if k not in ("worker", "size", "mode")},
                    "results": results,
                },
                file,
                indent=2,
            )
        os.replace(temp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
