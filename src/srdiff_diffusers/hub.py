# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
What makes a saved SRDiff folder Hub-native, shared by `save_pretrained`, `push_to_hub`, training and `srdiff push`:

- `pipeline.py` beside `model_index.json`, and `_class_name` as `["pipeline", "SRDiffPipeline"]`, so that plain
  diffusers loads the folder (`DiffusionPipeline.from_pretrained(id, trust_remote_code=True)`);
- the model card (README.md), rendered from the `model_card.md` template with the Hub metadata;
- the upload, one commit through `huggingface_hub.HfApi`.

Folders of earlier releases (`_class_name: "SRDiffPipeline"`, no pipeline.py) stay valid: `pipeline_class_name`
reads both forms.
"""

import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import filter_repo_objects

from .io import atomic_write

logger = logging.getLogger(__name__)

PIPELINE_MODULE = "pipeline"  # diffusers looks for `<module>.py` in the folder, `<module>` from `_class_name`
PIPELINE_FILE = f"{PIPELINE_MODULE}.py"
CARD_FILE = "README.md"
LICENSE = "apache-2.0"
TAGS = ["super-resolution", "srdiff", "diffusion", "image-to-image", "diffusers"]
METRICS = ["psnr", "ssim", "lr-psnr"]
# A training run's output folder also holds its checkpoints and logs, which are not the model.
UPLOAD_IGNORE_PATTERNS = ["checkpoint-*", ".tmp-checkpoint-*", "logs/*", "*.log", "*.jsonl"]

# The template lives at the repository root; an installed package without it falls back to the copy next to this file.
_TEMPLATE_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "model_card.md",
    Path(__file__).resolve().parent / "model_card.md",
)


def template_path() -> Path:
    for path in _TEMPLATE_CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(f"The model card template is missing; looked at {[str(p) for p in _TEMPLATE_CANDIDATES]}.")


# ----------------------------------------------------------------------------------------------------------------
# pipeline.py and model_index.json
# ----------------------------------------------------------------------------------------------------------------


def pipeline_module_source(class_name: str) -> str:
    """The `pipeline.py` of a folder saved from `class_name`: it only imports the installed package."""
    return (
        '"""The SRDiff pipeline for `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`."""\n\n'
        "# The code is the installed package's, not a copy: a folder keeps working, and gets fixes, across releases.\n"
        "try:\n"
        f"    from srdiff_diffusers import {class_name}\n"
        "except ImportError as error:\n"
        "    raise ImportError(\n"
        f'        "This model needs the srdiff-diffusers package for its {class_name}: pip install srdiff-diffusers"\n'
        "    ) from error\n\n"
        f'__all__ = ["{class_name}"]\n'
    )


def pipeline_class_name(class_name: object) -> Optional[str]:
    """
    The pipeline class named by a `model_index.json`'s `_class_name`: `"SRDiffPipeline"` (earlier releases) or
    `["pipeline", "SRDiffPipeline"]` (a Hub-native folder). `None` for anything else.
    """
    if isinstance(class_name, str):
        return class_name or None
    if isinstance(class_name, (list, tuple)) and len(class_name) == 2 and all(isinstance(p, str) for p in class_name):
        return class_name[1] or None
    return None


def hub_native_index(index: dict, class_name: str) -> dict:
    return {**index, "_class_name": [PIPELINE_MODULE, class_name]}


def _index_text(index: dict) -> str:
    return json.dumps(index, indent=2, sort_keys=True) + "\n"  # as diffusers' `to_json_string` writes it


def hub_files(folder: Union[str, os.PathLike], card: Optional[ModelCard] = None) -> Dict[str, str]:
    """
    The files that make a saved pipeline folder Hub-native, by path in the folder: `model_index.json` with
    `_class_name` as `["pipeline", class]`, `pipeline.py`, and `README.md` when the folder has no card and `card` is
    given. Reads the folder, writes nothing.
    """
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    class_name = pipeline_class_name(index.get("_class_name"))
    if class_name is None:
        raise ValueError(f"{folder}/model_index.json names no pipeline class (`_class_name`).")
    files = {
        "model_index.json": _index_text(hub_native_index(index, class_name)),
        PIPELINE_FILE: pipeline_module_source(class_name),
    }
    if card is not None and not (folder / CARD_FILE).exists():
        files[CARD_FILE] = str(card)
    return files


def make_hub_native(folder: Union[str, os.PathLike], card: Optional[ModelCard] = None) -> List[str]:
    """Writes `hub_files(folder, card)` into `folder` (atomically, each file); returns the paths written."""
    files = hub_files(folder, card)
    for name, text in files.items():
        atomic_write(Path(folder) / name, text)
    return sorted(files)


# ----------------------------------------------------------------------------------------------------------------
# the model card
# ----------------------------------------------------------------------------------------------------------------


def render_model_card(
    upscale_factor: int,
    *,
    stage: str = "diffusion",
    pipeline_class: str = "SRDiffPipeline",
    hub_model_id: Optional[str] = None,
    dataset: Optional[str] = None,
    evaluation: Optional[str] = None,
    template: Optional[Union[str, os.PathLike]] = None,
    **training,
) -> ModelCard:
    r"""
    The SRDiff model card: Hub metadata (`library_name: diffusers`, `pipeline_tag: image-to-image`, the tags,
    license, data set, metrics), the usage with both loading ways and the `pip install` line, and an evaluation.

    Args:
        upscale_factor (`int`): The model's scale.
        stage (`str`, *optional*, defaults to `"diffusion"`): `"rrdb"` for a folder holding only the encoder.
        pipeline_class (`str`, *optional*, defaults to `"SRDiffPipeline"`): The class the folder was saved from.
        hub_model_id (`str`, *optional*): The repository id the usage shows; a placeholder path without it.
        dataset (`str`, *optional*): The training data set, when known.
        evaluation (`str`, *optional*): Markdown for the evaluation section (e.g. `srdiff evaluate`'s results.md).
        template (`str` or `os.PathLike`, *optional*): Another template; defaults to the repository's `model_card.md`.
        training: The training run's fields of the template (`command`, `arguments`, `global_step`, `final_loss`,
            `validation`, `preset`, `degradation`), from `training.model_card_of_run`.
    """
    card_data = ModelCardData(
        license=LICENSE,
        library_name="diffusers",
        tags=list(TAGS),
        datasets=[dataset] if dataset else None,
        metrics=list(METRICS),
        pipeline_tag="image-to-image",
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template or template_path()),
        upscale_factor=upscale_factor,
        stage=stage,
        pipeline_class=pipeline_class,
        hub_model_id=hub_model_id,
        dataset=dataset,
        evaluation=evaluation,
        **{"command": None, "validation": None, "preset": "none", "degradation": "bicubic", **training},
    )


def pipeline_card(folder: Union[str, os.PathLike], hub_model_id: Optional[str] = None) -> Optional[ModelCard]:
    """
    The card of a saved pipeline folder (from its `model_index.json` and `unet/config.json`), or `None` with a
    warning when the template is missing: a save must not fail for want of its card.
    """
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    try:
        return render_model_card(
            unet.get("upscale_factor", 4),
            pipeline_class=pipeline_class_name(index.get("_class_name")) or "SRDiffPipeline",
            hub_model_id=hub_model_id,
        )
    except FileNotFoundError as error:
        logger.warning(f"No model card written: {error}")
        return None


# ----------------------------------------------------------------------------------------------------------------
# the upload
# ----------------------------------------------------------------------------------------------------------------


def create_repo(repo_id: str, private: Optional[bool] = None, token: Optional[str] = None) -> str:
    """Creates the model repository if needed; returns its full id (`user/name` for `name`)."""
    return HfApi(token=token).create_repo(repo_id, private=private, exist_ok=True).repo_id


def upload_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    *,
    extra_files: Optional[Dict[str, str]] = None,
    ignore_patterns: Sequence[str] = tuple(UPLOAD_IGNORE_PATTERNS),
    token: Optional[str] = None,
    commit_message: Optional[str] = None,
    create_pr: bool = False,
    path_in_repo: Optional[str] = None,
) -> str:
    r"""
    Uploads `folder` to the model repository `repo_id` in one commit, with `extra_files` (path -> text) added or in
    place of the folder's files of the same path, so nothing in the folder is modified. Hidden files (`.git`, atomic
    writes' temporaries) and `ignore_patterns` stay out. Returns the commit's URL.
    """
    folder = Path(folder)
    extra_files = dict(extra_files or {})
    paths = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    paths = [p for p in filter_repo_objects(paths, ignore_patterns=list(ignore_patterns)) if p not in extra_files]
    prefix = f"{path_in_repo.strip('/')}/" if path_in_repo else ""
    operations = [CommitOperationAdd(path_in_repo=prefix + p, path_or_fileobj=str(folder / p)) for p in paths]
    operations += [
        CommitOperationAdd(path_in_repo=prefix + p, path_or_fileobj=text.encode("utf-8"))
        for p, text in sorted(extra_files.items())
    ]
    if not operations:
        raise ValueError(f"{folder} has no files to upload.")
    commit = HfApi(token=token).create_commit(
        repo_id=repo_id,
        operations=operations,
        commit_message=commit_message or "Upload SRDiff pipeline",
        create_pr=create_pr,
    )
    return getattr(commit, "commit_url", str(commit))
