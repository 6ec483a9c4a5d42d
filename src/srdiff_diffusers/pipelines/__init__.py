from .pipeline_srdiff import SRDiffPipeline, default_scheduler

__all__ = ["SRDiffPipeline", "default_scheduler"]
