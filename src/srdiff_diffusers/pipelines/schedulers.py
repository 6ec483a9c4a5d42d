# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The paper's scheduler and sampling, few-step schedulers configured for SRDiff's short (T = 100) schedule, and the
checks of a scheduler swapped in.
"""

from collections.abc import Mapping
from typing import Optional

import torch

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin


def default_scheduler() -> DDPMScheduler:
    """The schedule of the paper: T = 100, cosine betas, DDPM posterior with the predicted x0 clipped to [-1, 1]."""
    return DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)


# The paper's sampling, used where a model stores no defaults of its own.
PAPER_NUM_INFERENCE_STEPS, PAPER_TEMPERATURE = 100, 1.0

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
    settings = {"timestep_spacing": "trailing", **settings, **kwargs}
    return scheduler_class.from_config(config, **settings)


PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def prediction_type(scheduler) -> str:
    """What the model paired with `scheduler` predicts: noise (SRDiff), x0 or v (distilled few-step students)."""
    return getattr(scheduler.config, "prediction_type", "epsilon")


def check_prediction_type(scheduler, trained: str = None) -> None:
    """Refuses a scheduler whose `prediction_type` is not one of ours, or not the model's own (`trained`)."""
    kind = prediction_type(scheduler)
    if kind not in PREDICTION_TYPES or (trained is not None and kind != trained):
        expected = trained or " / ".join(PREDICTION_TYPES)
        raise ValueError(
            f"This model predicts {expected!r}, but the scheduler is set to prediction_type={kind!r}; create it "
            f"with `Scheduler.from_config(pipe.scheduler.config)` or `pipe.fast_scheduler(...)`, which keep it."
        )


def noise_schedule(scheduler) -> Optional[torch.Tensor]:
    """The scheduler's cumulative alphas in float64 (what its noise levels derive from), or None if it has none."""
    alphas_cumprod = getattr(scheduler, "alphas_cumprod", None)
    return None if alphas_cumprod is None else torch.as_tensor(alphas_cumprod).detach().cpu().double()


def check_scheduler(scheduler, trained: Optional[torch.Tensor], trained_prediction_type: str = None) -> None:
    """
    Checks a pipeline's scheduler before it is used: it can be swapped at any time (`pipe.scheduler = ...`), and one
    of another noise schedule (`trained`: the model's, from [`noise_schedule`]) or prediction type runs without
    complaint and gives poor images.
    """
    if not isinstance(scheduler, SchedulerMixin):
        raise TypeError(
            f"`pipe.scheduler` must be a diffusers scheduler instance, got {type(scheduler).__name__}; make one "
            "from this pipeline's config: `pipe.fast_scheduler('ddim')` or `DDIMScheduler.from_config(...)`."
        )
    check_prediction_type(scheduler, trained_prediction_type)
    schedule = noise_schedule(scheduler)
    if schedule is None:
        raise ValueError(
            f"{type(scheduler).__name__} has no DDPM noise schedule (`alphas_cumprod`), which SRDiff's noise "
            "predictor was trained on; use DDPM, DDIM, DPM-Solver++, UniPC, Euler or a similar scheduler."
        )
    if trained is not None and (schedule.shape != trained.shape or (schedule - trained).abs().max() > 1e-6):
        raise ValueError(
            f"The scheduler ({type(scheduler).__name__}) has another noise schedule ({len(schedule)} training "
            f"steps, beta_schedule {scheduler.config.get('beta_schedule')!r}) than the one this model came with "
            f"({len(trained)} steps); make schedulers from the pipeline's own config, e.g. "
            "`pipe.fast_scheduler('dpmsolver++')` or `EulerDiscreteScheduler.from_config(pipe.scheduler.config)`."
        )
