# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The check of a local folder before `SRDiffPipeline.from_pretrained` loads it (or `srdiff push` uploads it), with
errors that name what is wrong."""

import json
import os
from pathlib import Path
from typing import Optional, Union

from ..hub import pipeline_class_name


def check_pipeline_folder(folder: Union[str, os.PathLike], variant: Optional[str] = None) -> None:
    """
    Raises a `FileNotFoundError` or `ValueError` naming what is missing or wrong when a local folder is not a
    complete saved SRDiff pipeline (`model_index.json`, and `unet/`, `encoder/`, `scheduler/` with their configs and
    the two models' weights).
    """
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise FileNotFoundError(
            f"{folder} has no model_index.json, so it is not a saved pipeline (make one with `save_pretrained`, "
            "`srdiff convert` or a training run)."
        )
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{index_file} is not valid JSON ({error}); re-save or re-download the model.") from None
    # `"SRDiffPipeline"` (earlier releases) or `["pipeline", "SRDiffPipeline"]` (a Hub-native folder)
    class_name = pipeline_class_name(index.get("_class_name")) if isinstance(index, dict) else None
    if class_name is None or not class_name.startswith("SRDiff"):
        raise ValueError(f"{folder} holds a {class_name or 'model of unknown type'}, not an SRDiff pipeline.")
    for name in ("unet", "encoder", "scheduler"):
        part = folder / name
        if not (part / ("scheduler_config.json" if name == "scheduler" else "config.json")).is_file():
            what = "is missing" if not part.is_dir() else "has no config"
            raise FileNotFoundError(f"{part} {what}: the model folder is incomplete; copy or download it again.")
        if name == "scheduler":
            continue
        weights = sorted(p.name for p in part.glob("diffusion_pytorch_model*") if p.suffix in (".safetensors", ".bin"))
        infix = f".{variant}" if variant else ""
        if not any(w in (f"diffusion_pytorch_model{infix}.safetensors", f"diffusion_pytorch_model{infix}.bin")
                   or w.startswith(f"diffusion_pytorch_model{infix}-") for w in weights):  # fmt: skip
            found = f" (only {', '.join(weights)}: pass the matching `variant=`)" if weights else ""
            raise FileNotFoundError(
                f"{part} has no weights diffusion_pytorch_model{infix}.safetensors{found}; the model folder is "
                "incomplete, copy or download it again."
            )
