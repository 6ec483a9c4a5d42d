from .lr_consistency import lr_consistency
from .schedulers import FAST_SCHEDULER_NAMES, fast_scheduler

__all__ = ["FAST_SCHEDULER_NAMES", "fast_scheduler", "lr_consistency"]
