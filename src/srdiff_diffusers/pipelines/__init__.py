from .lr_consistency import lr_consistency
from .pipeline_srdiff import SRDiffPipeline, default_scheduler
from .pipeline_srdiff_manipulation import SRDiffFusionPipeline, SRDiffInterpolationPipeline
from .pipeline_srdiff_onnx import OnnxSRDiffPipeline
from .schedulers import FAST_SCHEDULER_NAMES, fast_scheduler

__all__ = [
    "FAST_SCHEDULER_NAMES",
    "OnnxSRDiffPipeline",
    "SRDiffFusionPipeline",
    "SRDiffInterpolationPipeline",
    "SRDiffPipeline",
    "default_scheduler",
    "fast_scheduler",
    "lr_consistency",
]
