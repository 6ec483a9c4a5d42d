# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The `srdiff` command line: `srdiff upscale`, `srdiff convert`, `srdiff evaluate`.

Each sub-command lives in `srdiff_diffusers.commands.<name>` with `register(subparsers)` and `run(args) -> int`,
and is imported only when used, so `srdiff upscale` does not pay for the evaluation dependencies.
"""

import argparse
import importlib
import sys
from typing import List, Optional

from . import __version__

COMMANDS = {
    "upscale": "Super-resolve images with an SRDiff model.",
    "convert": "Convert an original SRDiff checkpoint (LeiaLi/SRDiff) to a diffusers folder.",
    "evaluate": "Compute PSNR/SSIM/LPIPS/LR-PSNR/diversity on a data set and write a report.",
    "degrade": "Make LR test images from HR ones (real-world degradations or MATLAB bicubic), reproducibly.",
    "demo": "Serve the web demo (Gradio) to try SRDiff in a browser.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srdiff", description="SRDiff diffusion super-resolution.")
    parser.add_argument("--version", action="version", version=f"srdiff-diffusers {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"srdiff_diffusers.commands.{name}")
        module.register(subparsers.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"srdiff_diffusers.commands.{args.command}")
    try:
        return module.run(args)
    except (ValueError, TypeError, OSError, FloatingPointError, MemoryError) as error:
        # User mistakes, the non-finite guard's advice on diverged weights and the pipeline's memory check get one
        # clear line, not a traceback.
        print(f"srdiff {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
