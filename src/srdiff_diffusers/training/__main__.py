# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`python -m srdiff_diffusers.training ...` (or `accelerate launch -m srdiff_diffusers.training ...`): `srdiff train`,
for `accelerate launch`, which runs a module or a script rather than a console command."""

import sys

from ..commands.train import cli_main


if __name__ == "__main__":
    sys.exit(cli_main(prog="python -m srdiff_diffusers.training"))
