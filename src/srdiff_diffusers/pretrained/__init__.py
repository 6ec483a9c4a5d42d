# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The models shipped inside the package, chosen by name (`srdiff upscale --model bicubic`)."""

from pathlib import Path
from typing import Dict, Union

_HERE = Path(__file__).resolve().parent

# The paper's setting: trained on MATLAB-bicubic downscaled BSD100 (the benchmarks' LR); 10 DDIM steps by default.
BICUBIC_MODEL_PATH = _HERE / "srdiff-bsd100-x4"
# Its one-step student (`srdiff train --stage distill`, docs/distillation.md).
BICUBIC_ONE_STEP_MODEL_PATH = _HERE / "srdiff-bsd100-x4-1step"

SHIPPED_MODELS: Dict[str, Path] = {"bicubic-1step": BICUBIC_ONE_STEP_MODEL_PATH, "bicubic": BICUBIC_MODEL_PATH}

# What `srdiff upscale` and the demo use when no model is named: the one-step model, within 0.3 dB of its teacher
# at the default temperature and about 6x faster (docs/sampling_defaults.md).
DEFAULT_MODEL_NAME = "bicubic-1step"
DEFAULT_MODEL_PATH = SHIPPED_MODELS[DEFAULT_MODEL_NAME]


def resolve_model(name_or_path: Union[str, Path]) -> str:
    """A shipped model's folder for its name (`"bicubic-1step"`, `"bicubic"`); anything else is returned as is."""
    shipped = SHIPPED_MODELS.get(str(name_or_path))
    return str(shipped if shipped is not None else name_or_path)
