# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`python -m srdiff_diffusers.training ...` (or `accelerate launch -m srdiff_diffusers.training ...`): the same as
`examples/train_srdiff.py`, for an installed package without the examples folder."""

import sys

from .args import cli_main


if __name__ == "__main__":
    sys.exit(cli_main(prog="python -m srdiff_diffusers.training"))
