# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The `srdiff` command line: `srdiff upscale`, `convert`, `evaluate`, `train`, `export`, `export-onnx`, `model-card`,
`push`.

Each sub-command lives in `srdiff_diffusers.commands.<name>` with `register(parser)` and `run(args) -> int`,
and is imported only when used, so `srdiff upscale` does not pay for the evaluation or training dependencies. A user
mistake is one `srdiff COMMAND: error: ...` line and exit status 2 (`commands.run_reporting_user_errors`).
"""

import argparse
import importlib
import sys
from typing import List, Optional

from . import __version__
from .commands import run_reporting_user_errors

COMMANDS = {
    "upscale": "Super-resolve images with an SRDiff model.",
    "convert": "Convert an original SRDiff checkpoint (LeiaLi/SRDiff) to a diffusers folder.",
    "evaluate": "Compute PSNR/SSIM/LPIPS/LR-PSNR/diversity on a data set and write a report.",
    "train": "Train SRDiff: `--stage rrdb` (the encoder), `--stage diffusion` (the noise predictor), and optionally "
    "`--stage distill` (a one-step student of a trained model).",
    "export": "Export a diffusion or distill checkpoint (or the mean of several) as a pipeline folder.",
    "export-onnx": "Export a pipeline as ONNX graphs (encoder, U-Net; a whole upscaler for one-step models).",
    "model-card": "Write the model card of an exported model.",
    "degrade": "Make LR test images from HR ones (real-world degradations or MATLAB bicubic), reproducibly.",
    "demo": "Serve the web demo (Gradio) to try SRDiff in a browser.",
    "push": "Upload a saved SRDiff pipeline folder to the Hugging Face Hub, with pipeline.py and the model card.",
}


def _module(command: str):
    return importlib.import_module(f"srdiff_diffusers.commands.{command.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srdiff", description="SRDiff diffusion super-resolution.")
    parser.add_argument("--version", action="version", version=f"srdiff-diffusers {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        _module(name).register(subparsers.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_reporting_user_errors(f"srdiff {args.command}", lambda: _module(args.command).run(args))


if __name__ == "__main__":
    sys.exit(main())
