# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff export-onnx MODEL -o DIR`: an SRDiff pipeline as ONNX graphs (encoder, condition projection, U-Net and,
for a one-step model, a self-contained upscaler) plus the JSON that sampling needs. See docs/onnx.md."""

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL",
        help="A saved SRDiffPipeline folder, or a shipped model's name (bicubic-1step, bicubic).",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="The folder to write (must not exist, or be empty).")
    parser.add_argument("--opset", type=int, default=17, help="The ONNX opset (13 to 20; default 17).")
    parser.add_argument(
        "--dtype", choices=("float32", "float16"), default="float32",
        help="Precision of the graphs (and their inputs and outputs); float16: half the size, for GPU providers.",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="Replace OUTPUT_DIR if it exists and is not empty.")


def run(args: argparse.Namespace) -> int:
    from ..onnx_export import GRAPH_FILES, export_onnx

    folder = export_onnx(args.model, args.output_dir, opset=args.opset, dtype=args.dtype, overwrite=args.overwrite)
    graphs = sorted(name for name in GRAPH_FILES.values() if (folder / name).is_file())
    print(f"Exported {args.model} -> {folder}: {', '.join(graphs)} and srdiff_onnx.json")
    if "upscaler.onnx" not in graphs:
        print("(no upscaler.onnx: that graph is one denoising step, for one-step models only)")
    return 0
