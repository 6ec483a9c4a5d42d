# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The models shipped inside the package, chosen by name (`srdiff upscale --model bicubic`)."""

from pathlib import Path
from typing import Dict, Union

_HERE = Path(__file__).resolve().parent

# The paper's setting: trained on MATLAB-bicubic downscaled BSD100 (the benchmarks' LR).
BICUBIC_MODEL_PATH = _HERE / "srdiff-bsd100-x4"

SHIPPED_MODELS: Dict[str, Path] = {"bicubic": BICUBIC_MODEL_PATH}

# What `srdiff upscale` and the demo use when no model is named.
DEFAULT_MODEL_NAME = "bicubic"
DEFAULT_MODEL_PATH = SHIPPED_MODELS[DEFAULT_MODEL_NAME]


def resolve_model(name_or_path: Union[str, Path]) -> str:
    """A shipped model's folder for its name (`"bicubic"`); anything else (a folder, a Hub id) is returned as is."""
    shipped = SHIPPED_MODELS.get(str(name_or_path))
    return str(shipped if shipped is not None else name_or_path)
