from .cpu_memory import retain_freed_cpu_memory
from .lr_consistency import lr_consistency
from .schedulers import FAST_SCHEDULER_NAMES, fast_scheduler

__all__ = ["FAST_SCHEDULER_NAMES", "fast_scheduler", "lr_consistency", "retain_freed_cpu_memory"]
