# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
What the `srdiff` commands and the demo load, in one place: a model (a shipped name, a folder or a Hub id) as a
pipeline, its sampler and sampling settings (the model's stored defaults unless the user overrides them), and input
images (files, or scikit-image's sample photos).
"""

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import PIL.Image
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from .matlab_resize import imresize
from .image_processor import SIXTEEN_BIT_MODES, SRDiffImageProcessor
from .io import open_image
from .pipelines import SRDiffPipeline
from .pretrained import DEFAULT_MODEL_PATH, SHIPPED_MODELS, resolve_model

# Sampler names of the commands and the demo, the scheduler class each stands for, and its default step count.
SCHEDULERS = ("ddpm", "ddim", "dpm", "unipc")
SCHEDULER_CLASSES = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpm": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}
DEFAULT_STEPS = {"ddpm": 100, "ddim": 10, "dpm": 20, "unipc": 20}
# Sample images bundled with scikit-image (no download): colour, gray and RGBA.
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "logo")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

RANDOM_WEIGHTS_WARNING = """
################################################################################
WARNING: no --model was given and no trained SRDiff model is installed, so this
runs an SRDiff pipeline with RANDOM weights. The output is the bicubic upscale
plus noise-like texture, NOT a real super-resolution. Pass a trained model:
    srdiff upscale ... --model path/to/srdiff-folder   (or a Hugging Face Hub id)
A folder comes from training, or from `srdiff convert` of an original SRDiff
checkpoint.
################################################################################
"""


# ---------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------


def default_model_path() -> Optional[str]:
    """The trained model shipped with the package, if it is installed."""
    return str(DEFAULT_MODEL_PATH) if Path(DEFAULT_MODEL_PATH).is_dir() else None


def pipeline_from_pretrained(model: str, dtype: torch.dtype = torch.float32) -> SRDiffPipeline:
    """
    `SRDiffPipeline.from_pretrained(model)` in `dtype`. Every diffusers release that setup.py allows understands
    `torch_dtype`; 0.42 renamed it `dtype` and warns, which would only puzzle someone at the command line.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch_dtype` is deprecated", category=FutureWarning)
        return SRDiffPipeline.from_pretrained(model, torch_dtype=dtype)


def load_pipeline(model: Optional[str], dtype: torch.dtype = torch.float32, backend: str = "torch") -> SRDiffPipeline:
    """
    Loads `model` (a shipped model's name, a folder or a Hub id) in `dtype`; without one, the shipped default model
    or, failing that, random weights (with a warning). With `backend="onnx"`, `model` is a folder written by
    `srdiff export-onnx`, run by onnxruntime ([`OnnxSRDiffPipeline`]). A model that cannot be loaded is a
    `ValueError` (or `FileNotFoundError`) whose message says which and why, in one line.
    """
    from .models import RRDBEncoder, SRDiffUNet2DModel

    if backend == "onnx":
        from .pipelines.pipeline_srdiff_onnx import OnnxSRDiffPipeline

        if model is None:
            raise ValueError("--backend onnx needs --model FOLDER, made by `srdiff export-onnx MODEL -o FOLDER`")
        try:
            return OnnxSRDiffPipeline.from_pretrained(Path(model).expanduser())
        except ImportError as error:  # the optional extra is missing: a set-up step, not a bug
            raise ValueError(str(error)) from None

    model = default_model_path() if model is None else resolve_model(model)
    if model is None:
        print(RANDOM_WEIGHTS_WARNING, file=sys.stderr)
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same random model every run, so a seed still reproduces outputs
            pipe = SRDiffPipeline(unet=SRDiffUNet2DModel(), encoder=RRDBEncoder())
        return pipe.to(dtype=dtype) if dtype != torch.float32 else pipe

    path = Path(model).expanduser()
    if not path.is_dir() and (path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1):
        # Not a folder and not shaped like a Hub id ("owner/name").
        shipped = ", ".join(SHIPPED_MODELS)
        raise FileNotFoundError(f"--model {model}: no such model folder (the shipped models are {shipped})")
    try:
        return pipeline_from_pretrained(str(path) if path.is_dir() else model, dtype)
    except (OSError, ValueError) as error:
        # Hub ids that cannot be resolved, incomplete folders, weights that do not match their config, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        first_line = first_line.replace(" Please check out the root cause in the stacktrace above.", "")  # not shown
        where = "" if path.is_dir() else " (a Hub id: is the id right, and is the Hub reachable or the model cached?)"
        raise ValueError(f"could not load the model {model}{where}: {first_line}") from None


# ---------------------------------------------------------------------------------------------------------------
# samplers and sampling settings
# ---------------------------------------------------------------------------------------------------------------


def scheduler_name(pipe) -> Optional[str]:
    """The name (in [`SCHEDULERS`]) of the pipeline's scheduler, or `None` for another class."""
    return next((name for name, cls in SCHEDULER_CLASSES.items() if type(pipe.scheduler) is cls), None)


def set_scheduler(pipe, name: str) -> None:
    """Swaps the sampler, keeping the trained noise schedule and prediction type; the fast ones start at the last
    training step and clip the predicted x0 like the paper's sampler (see `SRDiffPipeline.fast_scheduler`)."""
    if name == scheduler_name(pipe):
        return
    if name == "ddpm":
        pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        return
    pipe.scheduler = pipe.fast_scheduler({"ddim": "ddim", "dpm": "dpmsolver++", "unipc": "unipc"}[name])


@dataclass(frozen=True)
class StoredDefaults:
    """The sampling a model stores with itself: its scheduler's name, `default_num_inference_steps` and
    `default_temperature` (all `None` for a model that stores none)."""

    sampler: Optional[str] = None
    steps: Optional[int] = None
    temperature: Optional[float] = None

    @classmethod
    def of_pipeline(cls, pipe) -> "StoredDefaults":
        steps = pipe.config.get("default_num_inference_steps")
        if steps is None:
            return cls()
        return cls(scheduler_name(pipe), steps, pipe.config.get("default_temperature"))

    @classmethod
    def of_folder(cls, model: Optional[str]) -> "StoredDefaults":
        """Read from a model folder's `model_index.json` without loading it (none for a Hub id not yet cached)."""
        folder = resolve_model(model) if model is not None else default_model_path()
        try:
            config = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
        except (OSError, TypeError, ValueError):
            return cls()
        steps = config.get("default_num_inference_steps")
        if steps is None:
            return cls()
        class_name = (config.get("scheduler") or [None, None])[1]
        sampler = next((name for name, c in SCHEDULER_CLASSES.items() if c.__name__ == class_name), None)
        return cls(sampler, steps, config.get("default_temperature"))

    def resolve(
        self,
        scheduler: Optional[str] = None,
        steps: Optional[int] = None,
        temperature: Optional[float] = None,
        strength: float = 1.0,
        fallback: str = "ddim",
    ) -> Tuple[str, int, float]:
        """
        `(sampler, steps, temperature)`: what the user gave, else these stored defaults, else `fallback` with its
        usual steps ([`DEFAULT_STEPS`]) at temperature 1. A sampler other than the model's own gets its usual
        steps; the stored temperature applies only to sampling from noise (`strength` 1), as in the pipeline.
        """
        scheduler = scheduler or self.sampler or fallback
        if steps is None:
            steps = self.steps if self.steps is not None and scheduler == self.sampler else DEFAULT_STEPS[scheduler]
        if temperature is None:
            temperature = self.temperature if self.temperature is not None and strength >= 1 else 1.0
        return scheduler, int(steps), float(temperature)


def apply_sampling_settings(pipe, scheduler=None, steps=None, temperature=None, strength=1.0, fallback="ddim"):
    """
    Sets the pipeline's sampler and returns `(sampler, steps, temperature)` ([`StoredDefaults.resolve`] of the
    model's stored defaults). The commands and the demo sample through this, so that they agree with `pipe(image)`.
    """
    settings = StoredDefaults.of_pipeline(pipe).resolve(scheduler, steps, temperature, strength, fallback)
    set_scheduler(pipe, settings[0])
    return settings


# ---------------------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------------------


def read_image(path: Path):
    """
    Reads an image file for the pipeline: a PIL image (the pipeline converts CMYK, 1-bit and similar modes), or, for
    16-bit gray files, a float array in [0, 1] (so no precision is lost).
    """
    image = open_image(path)
    if image.mode in SIXTEEN_BIT_MODES:
        return SRDiffImageProcessor.sixteen_bit_to_unit_float(image, path)
    return image


def load_sample(name: str, scale: int) -> Tuple[PIL.Image.Image, PIL.Image.Image]:
    """A scikit-image sample image and its MATLAB-bicubic `1 / scale` downscale (uint8, as LR benchmarks are made)."""
    try:
        import skimage.data
    except ImportError:
        raise ValueError("--sample needs scikit-image: pip install scikit-image") from None
    processor = SRDiffImageProcessor
    array = np.asarray(getattr(skimage.data, name)())
    hr = processor.numpy_to_pt(array if array.ndim == 3 else array[:, :, None])
    lr = processor.pt_to_numpy(imresize(hr, scale=1 / scale))[0]
    return processor.numpy_to_pil(array), processor.numpy_to_pil(lr)


def to_pil(result) -> PIL.Image.Image:
    """A pipeline result to a PIL image: PIL passes through, float gray arrays (16-bit inputs) become 16-bit."""
    if isinstance(result, PIL.Image.Image):
        return result
    array, processor = np.asarray(result), SRDiffImageProcessor
    if array.ndim == 3 and array.shape[2] == 1:
        return processor.numpy_to_pil(processor.numpy_to_uint16(array[:, :, 0]))
    return processor.numpy_to_pil(processor.numpy_to_uint8(array))
