from .pipeline_srdiff import SRDiffPipeline, default_scheduler
from .pipeline_srdiff_manipulation import SRDiffFusionPipeline, SRDiffInterpolationPipeline

__all__ = ["SRDiffFusionPipeline", "SRDiffInterpolationPipeline", "SRDiffPipeline", "default_scheduler"]
