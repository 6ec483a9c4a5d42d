#!/usr/bin/env python
# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Trains SRDiff (Li et al., 2021) in two stages, on one CPU or many GPUs with accelerate:

    # 1. L1 pre-training of the RRDB encoder's SR head
    accelerate launch examples/train_srdiff.py --stage rrdb --train_data_dir HR_FOLDER --output_dir out/rrdb
    # 2. the conditional noise predictor, with the encoder frozen
    accelerate launch examples/train_srdiff.py --stage diffusion --pretrained_encoder out/rrdb \
        --train_data_dir HR_FOLDER --output_dir out/srdiff

`python examples/train_srdiff.py --help` lists every argument. It is `srdiff train` (`srdiff_diffusers.commands.train`,
where it is tested): a mistake in the arguments or the data is one `train_srdiff.py: error: ...` line (exit status 2)
instead of a traceback.
"""

import sys

from srdiff_diffusers.commands.train import cli_main


if __name__ == "__main__":
    sys.exit(cli_main())
