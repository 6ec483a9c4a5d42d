# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Few-step schedulers configured for SRDiff's short (T = 100) schedule."""

from collections.abc import Mapping

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

# name -> (class, the settings that make it behave like SRDiff's sampler)
_FAST_SCHEDULERS = {
    # DDIM clips the predicted x0 to [-1, 1] itself, like the paper's DDPM sampler (`clip_sample` from the config).
    "ddim": (DDIMScheduler, {}),
    # The multistep solvers clip through "dynamic thresholding": with sample_max_value=1 the threshold is always 1,
    # which is a plain clip of the predicted x0 to [-1, 1].
    "dpmsolver++": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "thresholding": True, "sample_max_value": 1.0},
    ),
    "unipc": (UniPCMultistepScheduler, {"solver_order": 2, "thresholding": True, "sample_max_value": 1.0}),
}
FAST_SCHEDULER_NAMES = tuple(_FAST_SCHEDULERS)


def fast_scheduler(config, name: str = "dpmsolver++", **kwargs) -> SchedulerMixin:
    r"""
    A few-step scheduler (10-25 steps) made from an SRDiff scheduler's config (same betas and T).

    With only T = 100 training steps, the default "leading" spacing of DDIM never visits the noisiest timesteps
    (20 steps give 95, 90, ..., 0) although sampling starts from pure noise; "trailing" (99, 94, ..., 4) starts at
    the last training timestep and is the default here for every scheduler.

    Args:
        config (`FrozenDict` or a scheduler): A scheduler config, e.g. `pipe.scheduler.config` (or the scheduler).
        name (`str`, *optional*, defaults to `"dpmsolver++"`): `"ddim"`, `"dpmsolver++"` or `"unipc"`.
        kwargs: Overrides of the scheduler's config, e.g. `timestep_spacing="linspace"`.
    """
    if isinstance(config, SchedulerMixin):  # the scheduler itself rather than its config
        config = config.config
    if not isinstance(config, Mapping):
        raise TypeError(
            f"`config` must be a scheduler config such as `pipe.scheduler.config`, got {type(config).__name__}."
        )
    if name not in _FAST_SCHEDULERS:
        raise ValueError(f"Unknown fast scheduler {name!r}; choose one of {FAST_SCHEDULER_NAMES}.")
    scheduler_class, settings = _FAST_SCHEDULERS[name]
    settings = {"timestep_spacing": "trailing", "prediction_type": "epsilon", **settings, **kwargs}
    return scheduler_class.from_config(config, **settings)
