"""srdiff-diffusers: SRDiff diffusion super-resolution (Li et al., 2021) for the diffusers ecosystem."""

__version__ = "0.1.0"

from .conversion import convert_original_checkpoint
from .matlab_resize import imresize
from .models import RRDBEncoder, RRDBEncoderOutput, SRDiffUNet2DModel
from .pretrained import BICUBIC_MODEL_PATH, DEFAULT_MODEL_PATH, SHIPPED_MODELS, resolve_model
from .pipelines import (
    OnnxSRDiffPipeline,
    SRDiffFusionPipeline,
    SRDiffInterpolationPipeline,
    SRDiffPipeline,
    default_scheduler,
    fast_scheduler,
    lr_consistency,
)
from .runtime import retain_freed_cpu_memory

__all__ = [
    "BICUBIC_MODEL_PATH",
    "DEFAULT_MODEL_PATH",
    "OnnxSRDiffPipeline",
    "RRDBEncoder",
    "RRDBEncoderOutput",
    "SRDiffFusionPipeline",
    "SRDiffInterpolationPipeline",
    "SRDiffPipeline",
    "SHIPPED_MODELS",
    "SRDiffUNet2DModel",
    "convert_original_checkpoint",
    "default_scheduler",
    "fast_scheduler",
    "imresize",
    "lr_consistency",
    "resolve_model",
    "retain_freed_cpu_memory",
]
