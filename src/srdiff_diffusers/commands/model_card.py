# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
`srdiff model-card MODEL_DIR ...`: the card of a model exported from a checkpoint (`srdiff export`), which the
training run never finished: the training command, the run's loss log up to the exported step, and an evaluation.

    srdiff model-card MODEL_DIR --run_dir runs/srdiff --global_step 4000 \\
        --training_command "srdiff train --stage diffusion ..." \\
        --evaluation reports/set14/results.md
"""

import argparse
import os
import shlex
from pathlib import Path

DESCRIPTION = "Write the model card of an exported SRDiff model."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="The exported pipeline folder; README.md is written there.")
    parser.add_argument("--training_command", required=True, help="The training command line (`srdiff train ...`).")
    parser.add_argument("--run_dir", required=True, help="The run's --output_dir (for its loss log).")
    parser.add_argument("--global_step", type=int, required=True, help="The step of the exported checkpoint.")
    parser.add_argument("--evaluation", help="A markdown file for the evaluation section (e.g. results.md).")


def training_arguments(command: str) -> argparse.Namespace:
    """The arguments of a quoted training command line, parsed as `srdiff train` parses them."""
    from .train import build_parser

    words = shlex.split(command)
    # `python examples/train_srdiff.py ...`, `srdiff train ...`, `python -m srdiff_diffusers train ...`, or any of
    # them after `accelerate launch`
    starts = [i + 1 for i, word in enumerate(words) if word.endswith("train_srdiff.py")]
    commands = ("srdiff", "srdiff_diffusers")
    starts += [i + 2 for i, word in enumerate(words[:-1]) if word.endswith(commands) and words[i + 1] == "train"]
    if not starts:
        raise ValueError(
            "`--training_command` must be the command that trained the model: `python examples/train_srdiff.py ...` "
            "or `srdiff train ...`."
        )
    training_parser = build_parser(prog="--training_command")

    def refuse(message):  # a mistake in the quoted command is this command's error, not the training script's
        raise ValueError(f"`--training_command` does not parse as training arguments: {message}.")

    training_parser.error = refuse
    return training_parser.parse_args(words[min(starts):])


def run(options: argparse.Namespace) -> int:
    from ..training import TrainingResult, read_loss_log, write_model_card

    args = training_arguments(options.training_command)
    if not os.path.isdir(options.model_dir):  # a mistyped folder would be created with only the card in it
        raise ValueError(f"{options.model_dir!r} is not an exported model folder (make it with `srdiff export`).")
    result = TrainingResult(losses=read_loss_log(options.run_dir, options.global_step), global_step=options.global_step)
    evaluation = Path(options.evaluation).read_text(encoding="utf-8") if options.evaluation else None
    path = write_model_card(args, result, output_dir=options.model_dir, evaluation=evaluation)
    print(f"Wrote {path}")
    return 0
