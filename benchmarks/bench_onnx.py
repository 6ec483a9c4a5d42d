"""torch against onnxruntime on the CPU, with the shipped model: one U-Net step and one whole image, side by side.

For each LR size (`--sizes`, square, random smooth content: content does not change the cost):

1. one noise prediction for the whole image as the pipeline makes it (`tile_size="auto"`: tiles of at most 256 LR
   pixels above 256), after a warm-up call;
2. one whole image with DDIM `--steps` steps (the same seed for both), its wall time, and the largest difference of
   the two results in gray levels (uint8, as saved);
3. for a one-step model (`--model bicubic-1step --steps 1`), one whole image through its `upscaler.onnx`, the single
   image-to-image graph (untiled), after a warm-up call on a small image.

Both run with `--threads` intra-op threads (torch: `torch.set_num_threads`; onnxruntime: `intra_op_num_threads`, its
idle threads waiting passively as torch's do with `OMP_WAIT_POLICY=PASSIVE`, which the command line below sets);
times are wall clock (onnxruntime's threads are not the caller's, so the CPU time of one thread would miss them),
so on a shared machine they include its other load: one run, A and B back to back.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_onnx.py --sizes 128 512 --steps 10 --json onnx_bench.json
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_onnx.py --model bicubic-1step --steps 1 --sizes 128 512
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def random_image(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
    return (np.repeat(np.repeat(low, 8, axis=0), 8, axis=1)[:size, :size] / 255.0).astype(np.float32)


def one_step_seconds(pipe, lr01: torch.Tensor) -> float:
    """One whole-image noise prediction, as `SRDiffPipeline.__call__` makes it (tiled with `tile_size="auto"`)."""
    from srdiff_diffusers.pipelines.tiling import noise_predictor

    lr_padded = pipe.image_processor.normalize(pipe.pad_to_multiple(lr01))
    predict = noise_predictor(pipe.unet, pipe.encoder, lr_padded, 1, "auto", 16)
    scale = pipe.upscale_factor
    sample = torch.randn(1, 3, lr_padded.shape[-2] * scale, lr_padded.shape[-1] * scale)
    timestep = torch.tensor(50)
    predict(sample, timestep)  # warm-up (onnxruntime plans its memory on the first run of a size)
    start = time.perf_counter()
    predict(sample, timestep)
    return time.perf_counter() - start


def upscaler_seconds(session, image: np.ndarray, torch_pipe) -> float:
    """One whole image through `upscaler.onnx` (untiled), after a warm-up call on a small image."""
    from srdiff_diffusers.pipelines.sizes import padded_size

    def run(lr: np.ndarray) -> None:
        height, width = padded_size(*lr.shape[:2], torch_pipe.unet)
        scale = torch_pipe.upscale_factor
        noise = np.random.default_rng(0).standard_normal((1, 3, scale * height, scale * width), dtype=np.float32)
        session.run(None, {"input": np.ascontiguousarray(lr.transpose(2, 0, 1)[None]), "noise": noise})

    run(image[:32, :32])
    start = time.perf_counter()
    run(image)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bicubic", help="A saved SRDiffPipeline folder or a shipped model's name.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512], help="Square LR sizes.")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps per image.")
    parser.add_argument("--threads", type=int, default=2, help="Intra-op threads for both.")
    parser.add_argument("--json", default=None, help="Also write the rows to this file.")
    args = parser.parse_args()

    from srdiff_diffusers import SRDiffPipeline, resolve_model, retain_freed_cpu_memory
    from srdiff_diffusers.onnx_export import export_onnx
    from srdiff_diffusers.pipelines.pipeline_srdiff_onnx import OnnxSRDiffPipeline, passive_session_options

    retain_freed_cpu_memory()
    torch.set_num_threads(args.threads)
    torch_pipe = SRDiffPipeline.from_pretrained(resolve_model(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = export_onnx(torch_pipe, os.path.join(tmp, "onnx"))
        export_seconds = time.perf_counter() - start
        onnx_pipe = OnnxSRDiffPipeline.from_pretrained(folder, sess_options=passive_session_options(args.threads))
        upscaler = None  # a one-step model's single image -> image graph, as ONNX GAN upscalers are run
        if os.path.exists(os.path.join(folder, "upscaler.onnx")):
            import onnxruntime

            options = passive_session_options(args.threads)
            upscaler = onnxruntime.InferenceSession(os.path.join(folder, "upscaler.onnx"), options)
    pipes = {"torch": torch_pipe, "onnxruntime": onnx_pipe}
    for pipe in pipes.values():
        pipe.scheduler = pipe.fast_scheduler("ddim")
        pipe.set_progress_bar_config(disable=True)

    rows = []
    for size in args.sizes:
        image = random_image(size)
        lr01 = torch.from_numpy(image).permute(2, 0, 1)[None]
        results, row = {}, {"lr": f"{size}x{size}", "steps": args.steps}
        for name, pipe in pipes.items():
            with torch.no_grad():
                row[f"{name} step s"] = one_step_seconds(pipe, lr01)
            start = time.perf_counter()
            generator = torch.Generator().manual_seed(0)
            output = pipe(image, num_inference_steps=args.steps, generator=generator, output_type="np")
            row[f"{name} image s"] = time.perf_counter() - start
            results[name] = np.round(output.images[0] * 255).astype(np.int16)
            print(f"{size}: {name} done ({row[f'{name} step s']:.2f} s/step, {row[f'{name} image s']:.1f} s/image)")
        if upscaler is not None:
            row["upscaler.onnx image s"] = upscaler_seconds(upscaler, image, torch_pipe)
            print(f"{size}: upscaler.onnx done ({row['upscaler.onnx image s']:.1f} s/image)")
        row["step speed-up"] = row["torch step s"] / row["onnxruntime step s"]
        row["image speed-up"] = row["torch image s"] / row["onnxruntime image s"]
        row["max gray diff"] = int(np.abs(results["torch"] - results["onnxruntime"]).max())
        rows.append(row)

    info = _common.machine_info(torch.device("cpu"))
    print(f"\nmachine: {info}\nexport of {args.model}: {export_seconds:.1f} s; threads: {args.threads}")
    columns = list(rows[0])
    _common.print_table(rows, columns, title="torch vs onnxruntime (one run each, wall clock)")
    if args.json:
        _common.write_json(args.json, {"machine": info, "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
