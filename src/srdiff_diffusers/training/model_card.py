# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The model card of a trained model, rendered from the `model_card.md` template, and the Hub upload."""

import os
from pathlib import Path
from typing import Optional

from huggingface_hub import ModelCard, ModelCardData

from ..io import atomic_write

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


if __name__ == "__main__":  # the former entry point, now `srdiff model-card`
    from ..commands.model_card import main

    raise SystemExit(main())
