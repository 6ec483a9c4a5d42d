# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The model card of a trained model, rendered from the `model_card.md` template, and the Hub upload."""

import argparse
import os
from pathlib import Path
from typing import List, Optional

from huggingface_hub import ModelCard, ModelCardData

from ..utils.io import atomic_write
from .args import run_reporting_user_errors

# The template lives at the repository root; an installed package without it falls back to the copy next to this file.
_TEMPLATE_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "model_card.md",
    Path(__file__).resolve().parent / "model_card.md",
)


def template_path() -> Path:
    for path in _TEMPLATE_CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(f"The model card template is missing; looked at {[str(p) for p in _TEMPLATE_CANDIDATES]}.")


def _dataset_name(args) -> str:
    if args.dataset_name:
        return args.dataset_name
    return os.path.basename(os.path.normpath(os.path.dirname(os.path.normpath(args.train_data_dir)))) or "custom"


def render_model_card(
    args, result, template: Optional[Path] = None, evaluation: Optional[str] = None
) -> ModelCard:
    r"""
    Renders the template with the training arguments and the last validation numbers.

    Args:
        args (`argparse.Namespace`): The training arguments.
        result ([`TrainingResult`]): Losses and validation metrics of the run.
        template (`Path`, *optional*): Another template; defaults to the repository's `model_card.md`.
        evaluation (`str` or `os.PathLike`, *optional*): Markdown for the card's evaluation section, e.g. the
            `results.md` table of `srdiff evaluate` with the command that produced it, or that file's path.
    """
    if isinstance(evaluation, os.PathLike):
        evaluation = Path(evaluation).read_text(encoding="utf-8")
    elif evaluation is not None and not isinstance(evaluation, str):
        raise TypeError(f"`evaluation` must be markdown text or a file path, got {type(evaluation).__name__}.")
    dataset = _dataset_name(args)
    card_data = ModelCardData(
        license="apache-2.0",
        library_name="diffusers",
        tags=["super-resolution", "diffusion", "srdiff", "image-to-image", "diffusers"],
        datasets=[dataset],
        metrics=["psnr", "ssim", "lr-psnr"],
        pipeline_tag="image-to-image",
    )
    arguments = {
        k: (",".join(map(str, v)) if isinstance(v, tuple) else v)
        for k, v in sorted(vars(args).items())
        if k not in ("hub_token",)
    }
    command = "python examples/train_srdiff.py " + " ".join(
        f"--{k}" if v is True else f"--{k} {v}"
        for k, v in arguments.items()
        if v not in (None, False) and k not in ("push_to_hub",)
    )
    validation = None
    if result.validation:
        step = max(result.validation)
        validation = {"step": step, **result.validation[step]}
    losses = sorted(result.losses.items())
    return ModelCard.from_template(
        card_data,
        template_path=str(template or template_path()),
        stage=args.stage,
        preset=getattr(args, "preset", "none"),
        degradation=getattr(args, "degradation", "bicubic"),
        dataset=dataset,
        upscale_factor=args.upscale_factor,
        arguments=arguments,
        command=command,
        global_step=result.global_step,
        final_loss=None if not losses else sum(v for _, v in losses[-50:]) / len(losses[-50:]),
        validation=validation,
        evaluation=evaluation,
        hub_model_id=args.hub_model_id,
    )


def write_model_card(args, result, output_dir: Optional[str] = None, evaluation: Optional[str] = None) -> Path:
    """Writes `README.md` (the model card) into `output_dir` (default `--output_dir`), atomically."""
    card = render_model_card(args, result, evaluation=evaluation)
    path = Path(output_dir or args.output_dir) / "README.md"
    atomic_write(path, str(card))
    return path


def push_to_hub(args) -> None:
    """Uploads `--output_dir` (without checkpoints and logs) to `--hub_model_id`. Needs network access and a token."""
    from huggingface_hub import create_repo, upload_folder

    repo_id = create_repo(args.hub_model_id, exist_ok=True, token=args.hub_token).repo_id
    upload_folder(
        repo_id=repo_id,
        folder_path=args.output_dir,
        commit_message="Upload SRDiff model trained with examples/train_srdiff.py",
        ignore_patterns=["checkpoint-*", ".tmp-checkpoint-*", "logs/*", "*.log", "*.jsonl"],
        token=args.hub_token,
    )


def main(argv: Optional[List[str]] = None) -> int:
    """
    Writes the card of a model exported from a checkpoint (`srdiff_diffusers.training.export`), which the training
    script never finished: the training command, the run's loss log up to the exported step, and an evaluation.

        python -m srdiff_diffusers.training.model_card MODEL_DIR --run_dir runs/srdiff --global_step 4000 \
            --training_command "python examples/train_srdiff.py --stage diffusion ..." \
            --evaluation reports/set14/results.md
    """
    parser = argparse.ArgumentParser(
        prog="python -m srdiff_diffusers.training.model_card",
        description="Write the model card of an exported SRDiff model.",
    )
    parser.add_argument("model_dir", help="The exported pipeline folder; README.md is written there.")
    parser.add_argument("--training_command", required=True, help="The `python examples/train_srdiff.py ...` line.")
    parser.add_argument("--run_dir", required=True, help="The run's --output_dir (for its loss log).")
    parser.add_argument("--global_step", type=int, required=True, help="The step of the exported checkpoint.")
    parser.add_argument("--evaluation", help="A markdown file for the evaluation section (e.g. results.md).")
    options = parser.parse_args(argv)
    return run_reporting_user_errors(parser.prog, lambda: print(f"Wrote {_card_of_export(options)}"))


def _card_of_export(options) -> Path:
    import json
    import shlex

    from .args import build_parser
    from .trainer import LOSS_LOG, TrainingResult

    words = shlex.split(options.training_command)
    # `python examples/train_srdiff.py ...`, `python -m srdiff_diffusers.training ...` or `accelerate launch ...`
    starts = [i + 1 for i, word in enumerate(words) if word.endswith("train_srdiff.py")]
    starts += [i + 1 for i, word in enumerate(words) if word == "srdiff_diffusers.training"]
    if not starts:
        raise ValueError(
            "`--training_command` must be the command that trained the model: `python examples/train_srdiff.py ...` "
            "or `python -m srdiff_diffusers.training ...`."
        )
    training_parser = build_parser(prog="--training_command")

    def refuse(message):  # a mistake in the quoted command is this command's error, not the training script's
        raise ValueError(f"`--training_command` does not parse as training arguments: {message}.")

    training_parser.error = refuse
    args = training_parser.parse_args(words[starts[0]:])
    if not os.path.isdir(options.model_dir):  # a mistyped folder would be created with only the card in it
        raise ValueError(f"{options.model_dir!r} is not an exported model folder (make it with training.export).")
    losses = {}
    log = os.path.join(options.run_dir, LOSS_LOG)
    with open(log, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                step, loss = record["step"], record["loss"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{log}, line {number}, is not a loss record: {line.strip()[:80]!r}.") from None
            if step <= options.global_step:
                losses[step] = loss
    result = TrainingResult(losses=losses, global_step=options.global_step)
    evaluation = Path(options.evaluation).read_text(encoding="utf-8") if options.evaluation else None
    return write_model_card(args, result, output_dir=options.model_dir, evaluation=evaluation)


if __name__ == "__main__":
    raise SystemExit(main())
