# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Few-step distillation (`srdiff train --stage distill`): a student U-Net that predicts x0 (or v) learns to reach in
1, 2 or 4 DDIM steps what the teacher reaches in `--teacher_steps` DDIM steps from the same starting noise, at any
temperature (SinSR's trajectory distillation, with its optional ground-truth term). See docs/distillation.md.
"""

from typing import List

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from ..pipelines.schedulers import fast_scheduler


def ddim_scheduler(config, prediction_type: str = "epsilon") -> DDIMScheduler:
    """DDIM with trailing spacing over the model's noise schedule: the teacher's sampler, and the student's."""
    return fast_scheduler(config, "ddim", prediction_type=prediction_type)


def student_timesteps(config, student_steps: List[int]) -> List[torch.Tensor]:
    """The timesteps the student is trained at: those of each step count's DDIM schedule, one list per count."""
    scheduler = ddim_scheduler(config)
    rows = []
    for steps in student_steps:
        scheduler.set_timesteps(steps)
        rows.append(scheduler.timesteps.clone())
    return rows


def predicted_x0(scheduler, model_output: torch.Tensor, sample: torch.Tensor, timesteps: torch.Tensor):
    """x0 from a student's output (`prediction_type` "sample" or "v_prediction"), per sample, as DDIM's `step` has it."""
    if scheduler.config.prediction_type == "sample":
        return model_output
    alpha_bar = scheduler.alphas_cumprod.to(sample.device)[timesteps].view(-1, 1, 1, 1)
    return alpha_bar.sqrt() * sample - (1 - alpha_bar).sqrt() * model_output


@torch.no_grad()
def teacher_sample(teacher, scheduler: DDIMScheduler, x_T: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The teacher's deterministic DDIM map x_T -> x0 (clipped to [-1, 1], as the sampler returns it)."""
    latents = x_T
    projected = teacher.project_condition(condition)
    for t in scheduler.timesteps:
        noise_pred = teacher(latents, t, projected_condition=projected).sample
        latents = scheduler.step(noise_pred.float(), t, latents).prev_sample
    return latents


def distillation_loss(student, teacher, encoder, teacher_scheduler, student_scheduler, x0_true, lr, generator,
                      timestep_rows, args) -> torch.Tensor:  # fmt: skip
    r"""
    One batch of trajectory distillation, all randomness drawn from `generator` (resume is exact):

    1. a temperature per patch, uniform in [0, `--distill_max_temperature`], and x_T = temperature * noise;
    2. the teacher's x0 from x_T (`--teacher_steps` DDIM steps);
    3. a student timestep t: a step count drawn from `--student_steps`, then one of its DDIM timesteps; x_t is the
       point a DDIM step from x_T reaches when x0 is the teacher's (x_T itself at the first timestep), which is
       where the few-step sampler stands if the student's earlier steps were right;
    4. MSE between the student's x0 and the teacher's, plus `--distill_gt_weight` times the MSE to the true x0.
    """
    batch = x0_true.shape[0]
    device = x0_true.device
    with torch.no_grad():
        condition = encoder.encode(lr)
    temperature = torch.rand(batch, generator=generator) * args.distill_max_temperature
    noise = torch.randn(x0_true.shape, generator=generator)
    x_T = (noise * temperature.view(-1, 1, 1, 1)).to(device)
    x0_teacher = teacher_sample(teacher, teacher_scheduler, x_T, condition)

    rows = torch.randint(0, len(timestep_rows), (batch,), generator=generator).tolist()
    picks = torch.rand(batch, generator=generator)
    timesteps = torch.stack([timestep_rows[r][int(p * len(timestep_rows[r]))] for r, p in zip(rows, picks)])
    timesteps = timesteps.to(device)
    alpha_bar = student_scheduler.alphas_cumprod.to(device)
    first = alpha_bar[timestep_rows[0][0]]
    noise_hat = (x_T - first.sqrt() * x0_teacher) / (1 - first).sqrt()
    a_t = alpha_bar[timesteps].view(-1, 1, 1, 1)
    x_t = a_t.sqrt() * x0_teacher + (1 - a_t).sqrt() * noise_hat

    output = student(x_t, timesteps, condition).sample
    x0_student = predicted_x0(student_scheduler, output.float(), x_t, timesteps)
    loss = F.mse_loss(x0_student, x0_teacher)
    if args.distill_gt_weight:
        loss = loss + args.distill_gt_weight * F.mse_loss(x0_student, x0_true.float())
    return loss
