"""srdiff-diffusers: SRDiff diffusion super-resolution (Li et al., 2021) for the diffusers ecosystem."""

__version__ = "0.1.0"

from .image_processing import imresize
from .models import RRDBEncoder, RRDBEncoderOutput, SRDiffUNet2DModel
from .pipelines import SRDiffPipeline, default_scheduler

__all__ = [
    "RRDBEncoder",
    "RRDBEncoderOutput",
    "SRDiffPipeline",
    "SRDiffUNet2DModel",
    "default_scheduler",
    "imresize",
]
