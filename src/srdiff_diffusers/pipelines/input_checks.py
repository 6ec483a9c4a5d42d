# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The rules for [`SRDiffPipeline`]'s components, stored defaults and call arguments. The pipeline checks each once, at
its boundary (`__init__` and `check_inputs`), so the models and the denoising loop can take their inputs as given.
"""

import math

import numpy as np
import torch

from ..argument_checks import check_count, check_generator, is_int, is_real
from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from ..runtime import check_cpu_memory
from .schedulers import check_prediction_type
from .sizes import padded_size

OUTPUT_TYPES = ("pil", "np", "pt", "raw")


def check_components(unet, encoder, scheduler) -> None:
    """An encoder and a U-Net trained together, and a scheduler for what the U-Net predicts."""
    if not isinstance(unet, SRDiffUNet2DModel):
        raise TypeError(f"`unet` must be an SRDiffUNet2DModel, got {type(unet).__name__}.")
    if not isinstance(encoder, RRDBEncoder):
        raise TypeError(f"`encoder` must be an RRDBEncoder, got {type(encoder).__name__}.")
    if unet.config.upscale_factor != encoder.config.upscale_factor:
        raise ValueError(
            f"Scale mismatch: the unet upscales x{unet.config.upscale_factor} but the encoder "
            f"x{encoder.config.upscale_factor}; use an encoder and a unet trained together."
        )
    if unet.config.condition_channels != encoder.condition_channels:
        raise ValueError(
            f"The unet expects {unet.config.condition_channels} condition channels but the encoder gives "
            f"{encoder.condition_channels}; use an encoder and a unet trained together."
        )
    check_prediction_type(scheduler)


def check_defaults(num_inference_steps, temperature) -> None:
    """The sampling defaults a model stores (`default_num_inference_steps`, `default_temperature`), if any."""
    if num_inference_steps is not None and (not is_int(num_inference_steps) or num_inference_steps < 1):
        raise ValueError(f"`default_num_inference_steps` must be an int >= 1 or None, got {num_inference_steps!r}.")
    if temperature is not None and (not is_real(temperature) or not 0 <= temperature < math.inf):
        raise ValueError(f"`default_temperature` must be a number >= 0 or None, got {temperature!r}.")


def check_call_inputs(
    image,
    num_inference_steps,
    strength,
    init_image,
    latents,
    output_type,
    num_images_per_prompt,
    callback_on_step_end_tensor_inputs,
    generator,
    eta,
    lr_consistency,
    tile_overlap,
    batch_size,
    temperature,
    train_steps: int,
    unet: SRDiffUNet2DModel,
    callback_tensor_inputs,
    device: torch.device,
) -> None:
    """
    The rules for the arguments of [`SRDiffPipeline.__call__`], with `image` and `init_image` preprocessed (lists of
    `PreparedImage`), `train_steps` the scheduler's training timesteps, `callback_tensor_inputs` the tensors a
    callback may ask for and `device` where the pipeline runs (on the CPU, the images must fit in its memory).
    """
    check_count(num_inference_steps, "num_inference_steps")
    if num_inference_steps > train_steps:
        raise ValueError(
            f"`num_inference_steps` ({num_inference_steps}) cannot exceed the {train_steps} training timesteps."
        )
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
    check_count(num_images_per_prompt, "num_images_per_prompt")
    check_count(batch_size, "batch_size")
    callback_inputs = callback_on_step_end_tensor_inputs
    if callback_inputs is not None and any(k not in callback_tensor_inputs for k in callback_inputs):
        raise ValueError(
            f"`callback_on_step_end_tensor_inputs` may contain only {callback_tensor_inputs}, got {callback_inputs}."
        )
    if not is_real(eta) or not 0 <= eta < math.inf:
        raise ValueError(f"`eta` must be a number >= 0 (0: deterministic DDIM, 1: DDPM-like), got {eta!r}.")
    if not is_real(temperature) or not 0 <= temperature < math.inf:
        raise ValueError(
            f"`temperature` must be a number >= 0 (1: the model's own samples, below 1: more faithful, less "
            f"diverse), got {temperature!r}."
        )
    if temperature != 1 and (latents is not None or strength < 1):
        raise ValueError(
            "`temperature` scales the noise x_T that the pipeline draws; with `latents` or `init_image` the "
            "starting point is given, so scale your `latents` yourself or leave `temperature` at 1."
        )
    if not isinstance(lr_consistency, (bool, np.bool_)):
        raise TypeError(f"`lr_consistency` must be True or False, got {lr_consistency!r}.")
    check_generator(generator)
    total = len(image) * num_images_per_prompt
    if isinstance(generator, list) and len(generator) != total:
        raise ValueError(
            f"Got {len(generator)} generators for {total} output images ({len(image)} inputs x "
            f"{num_images_per_prompt} per input); pass one generator or exactly {total}."
        )
    if isinstance(tile_overlap, bool) or not is_int(tile_overlap) or tile_overlap < 0:
        raise ValueError(f"`tile_overlap` must be a non-negative int (LR pixels), got {tile_overlap!r}.")
    check_start(image, strength, init_image, latents, total, unet)
    sizes = [item.rgb.shape[-2:] for item in image]
    check_cpu_memory(device, sizes, unet.config.upscale_factor, num_images_per_prompt, min(int(batch_size), len(image)))


def check_start(image, strength, init_image, latents, total: int, unet: SRDiffUNet2DModel) -> None:
    """Where sampling starts: x_T (`strength` 1), an HR guess to refine (Algorithm 3) or latents (Algorithm 4)."""
    scale = unet.config.upscale_factor
    if not is_real(strength) or not 0 <= strength <= 1:
        raise ValueError(f"`strength` must be a number in [0, 1] (t-bar / T), got {strength!r}.")
    if init_image is not None and strength == 1:
        raise ValueError(
            "`strength`=1 starts from pure noise, which would ignore `init_image`; refine with a strength below 1 "
            "(the paper shows 0.3, 0.5, 0.7; leave it unset for 0.5), or drop `init_image` to sample."
        )
    if init_image is None and latents is None and 0 < strength < 1:
        raise ValueError(
            f"`strength`={strength} starts at t-bar = {strength} T, from a point that must be given: pass "
            "`init_image` (an HR guess to refine) or `latents` (x_t-bar, e.g. from "
            "`SRDiffInterpolationPipeline.prepare_latents`); leave `strength` unset to sample from noise."
        )
    if latents is not None:
        if init_image is not None:
            raise ValueError("Pass `latents` or `init_image`, not both: `init_image` makes its own latents.")
        if not torch.is_tensor(latents) or latents.ndim != 4 or latents.shape[0] != total:
            raise ValueError(
                f"`latents` must be a 4-d tensor with one row per output image ({total}), got "
                f"{tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__}."
            )
        if strength == 0:
            raise ValueError("`strength`=0 runs no step, so there is nothing to do with `latents`.")
        for lr in image:  # given latents need inputs of one size
            height, width = (size * scale for size in padded_size(*lr.rgb.shape[-2:], unet))
            if tuple(latents.shape[1:]) != (unet.config.out_channels, height, width):
                raise ValueError(
                    f"`latents` must have shape {(total, unet.config.out_channels, height, width)} for this image (the "
                    f"HR size of the LR image padded to a multiple of {unet.sample_size_multiple} HR pixels), got "
                    f"{tuple(latents.shape)}."
                )
    if init_image is None:
        if strength == 0:
            raise ValueError("`strength`=0 returns `init_image` unchanged; pass `init_image` (or raise strength).")
        return
    if len(init_image) != len(image):
        raise ValueError(f"Got {len(init_image)} init images for {len(image)} LR images; pass one per LR image.")
    for lr, init in zip(image, init_image):
        expected = (lr.rgb.shape[-2] * scale, lr.rgb.shape[-1] * scale)
        if tuple(init.rgb.shape[-2:]) != expected:
            raise ValueError(
                f"An init image is {tuple(init.rgb.shape[-2:])} (HxW) but its LR image x{scale} is {expected}; "
                "pass HR guesses of exactly the LR size times the scale."
            )
