"""srdiff-diffusers: SRDiff diffusion super-resolution (Li et al., 2021) for the diffusers ecosystem."""

__version__ = "0.1.0"

from pathlib import Path

# The default 4x model, trained on BSD100 and shipped inside the package (see the README's "The default model").
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "pretrained" / "srdiff-bsd100-x4"

from .conversion import convert_original_checkpoint
from .image_processing import imresize
from .models import RRDBEncoder, RRDBEncoderOutput, SRDiffUNet2DModel
from .pipelines import SRDiffFusionPipeline, SRDiffInterpolationPipeline, SRDiffPipeline, default_scheduler
from .utils import fast_scheduler, lr_consistency

__all__ = [
    "DEFAULT_MODEL_PATH",
    "RRDBEncoder",
    "RRDBEncoderOutput",
    "SRDiffFusionPipeline",
    "SRDiffInterpolationPipeline",
    "SRDiffPipeline",
    "SRDiffUNet2DModel",
    "convert_original_checkpoint",
    "default_scheduler",
    "fast_scheduler",
    "imresize",
    "lr_consistency",
]
