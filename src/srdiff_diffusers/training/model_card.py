# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The model card of a trained model (the `model_card.md` template, rendered by `hub.render_model_card` with the
training run's fields), and the Hub upload of the run's output folder."""

import os
from pathlib import Path
from typing import Optional

from huggingface_hub import ModelCard

from .. import hub
from ..io import atomic_write


def _dataset_name(args) -> str:
    if args.dataset_name:
        return args.dataset_name
    return os.path.basename(os.path.normpath(os.path.dirname(os.path.normpath(args.train_data_dir)))) or "custom"


def model_card_of_run(
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
    return hub.render_model_card(
        args.upscale_factor,
        template=template,
        stage=args.stage,
        hub_model_id=args.hub_model_id,
        dataset=dataset,
        evaluation=evaluation,
        preset=getattr(args, "preset", "none"),
        degradation=getattr(args, "degradation", "bicubic"),
        arguments=arguments,
        command=command,
        global_step=result.global_step,
        final_loss=None if not losses else sum(v for _, v in losses[-50:]) / len(losses[-50:]),
        validation=validation,
    )


def write_model_card(args, result, output_dir: Optional[str] = None, evaluation: Optional[str] = None) -> Path:
    """Writes `README.md` (the model card) into `output_dir` (default `--output_dir`), atomically."""
    card = model_card_of_run(args, result, evaluation=evaluation)
    path = Path(output_dir or args.output_dir) / "README.md"
    atomic_write(path, str(card))
    return path


def push_to_hub(args) -> str:
    """
    Uploads `--output_dir` (without checkpoints and logs) to `--hub_model_id` in one commit; returns its URL. A
    pipeline folder gets `pipeline.py` and its `model_index.json` as `save_pretrained` writes them, the card is the
    one `write_model_card` wrote. Needs network access and a token (`--hub_token` or the cached login).
    """
    repo_id = hub.create_repo(args.hub_model_id, token=args.hub_token)
    is_pipeline = os.path.isfile(os.path.join(args.output_dir, "model_index.json"))  # stage rrdb: an encoder only
    return hub.upload_folder(
        args.output_dir,
        repo_id,
        extra_files=hub.hub_files(args.output_dir) if is_pipeline else None,
        token=args.hub_token,
        commit_message="Upload SRDiff model trained with examples/train_srdiff.py",
    )
