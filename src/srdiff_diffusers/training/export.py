# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Turns a stage-`diffusion` (or `distill`) checkpoint into a complete `SRDiffPipeline` folder, so that a run can be
stopped at any time and its newest checkpoint used (`srdiff export`):

    srdiff export runs/srdiff/checkpoint-4000 --pretrained_encoder runs/rrdb --output_dir models/srdiff-x4
    srdiff export runs/distill/checkpoint-2000 --teacher bicubic --output_dir models/srdiff-x4-1step

Given several checkpoints of one run, it saves the mean of their weights (checkpoint averaging): for a run trained
without `--use_ema`, the average of the last few checkpoints smooths the step-to-step fluctuation of the weights
in the same way as an EMA.
"""

import os
import re
from typing import Optional, Sequence, Union

import torch
from diffusers.configuration_utils import FrozenDict
from safetensors.torch import load_file

from diffusers import DDIMScheduler

from ..models.unet_srdiff import SRDiffUNet2DModel
from ..pipelines.pipeline_srdiff import SRDiffPipeline, default_scheduler
from ..pretrained import resolve_model
from .distillation import ddim_scheduler
from .trainer import EMA_SUBFOLDER, SCHEDULER_SUBFOLDER, STAGE_SUBFOLDERS, load_encoder


def _load_unet(checkpoint: str, use_ema: bool) -> SRDiffUNet2DModel:
    if not os.path.exists(checkpoint):
        raise ValueError(
            f"Checkpoint {checkpoint!r} not found; pass a checkpoint-N folder of a `--stage diffusion` or `distill` run."
        )
    unet_folder = os.path.join(checkpoint, STAGE_SUBFOLDERS["diffusion"])
    if not os.path.isfile(os.path.join(unet_folder, "config.json")):
        if os.path.isfile(os.path.join(checkpoint, STAGE_SUBFOLDERS["rrdb"], "config.json")):
            raise ValueError(
                f"{checkpoint!r} is a checkpoint of a `--stage rrdb` run: only `--stage diffusion` checkpoints export "
                "as a pipeline (a `--stage rrdb` run's output folder is the encoder to pass as `--pretrained_encoder`)."
            )
        raise ValueError(f"{checkpoint!r} is not a checkpoint of a `--stage diffusion` run (no unet/config.json).")
    unet = SRDiffUNet2DModel.from_pretrained(unet_folder)
    ema_folder = os.path.join(checkpoint, EMA_SUBFOLDER)
    if use_ema and os.path.isdir(ema_folder):
        # The EMA folder's config also holds the EMA's own state (decay, step, ...), which a U-Net built from it
        # would warn about; take only its weights (strictly: every tensor, the unet's shapes), keep the unet's config.
        unet.load_state_dict(load_file(os.path.join(ema_folder, "diffusion_pytorch_model.safetensors")))
    return unet


def _forget_source(model) -> None:
    # `from_pretrained` records the folder it read in the config, and `save_pretrained` would write that local path
    # into the exported model's config.json; an exported model should not carry the exporting machine's paths.
    model._internal_dict = FrozenDict({k: v for k, v in model.config.items() if k != "_name_or_path"})


def _architecture(unet: SRDiffUNet2DModel) -> dict:
    return {key: value for key, value in unet.config.items() if not key.startswith("_")}


def export_pipeline(
    checkpoint: Union[str, Sequence[str]],
    pretrained_encoder: Optional[str],
    output_dir: str,
    use_ema: bool = True,
    overwrite: bool = False,
    residual_rescale: float = 2.0,
    lr_upscale_divisor: float = 255.0,
    dtype: Optional[torch.dtype] = None,
    max_shard_size: Optional[Union[int, str]] = None,
    teacher: Optional[str] = None,
    prediction_type: Optional[str] = None,
    default_num_inference_steps: Optional[int] = None,
    default_temperature: Optional[float] = None,
) -> SRDiffPipeline:
    r"""
    Builds and saves the pipeline of a stage-`diffusion` or `distill` checkpoint, or of the mean of several
    checkpoints' weights.

    Args:
        checkpoint (`str` or `Sequence[str]`): A `checkpoint-N` folder of a `--stage diffusion` or `distill` run, or
            several of the same run, whose U-Net weights are then averaged (in float64, saved in the run's dtype).
        pretrained_encoder (`str`): The encoder the run was trained with (its `--pretrained_encoder`); `None` with
            `teacher`.
        output_dir (`str`): Where the pipeline goes (`save_pretrained`).
        use_ema (`bool`, *optional*, defaults to `True`): Use the EMA weights when the checkpoint has them.
        overwrite (`bool`, *optional*, defaults to `False`): Allow replacing a pipeline already in `output_dir`.
        residual_rescale (`float`, *optional*, defaults to 2.0): The run's `--residual_rescale`.
        lr_upscale_divisor (`float`, *optional*, defaults to 255.0): The run's `--lr_upscale_divisor`.
        dtype (`torch.dtype`, *optional*): Save the weights in this dtype (e.g. `torch.float16`, half the size);
            default: the run's.
        max_shard_size (`int` or `str`, *optional*): Split each model's weights into files of at most this size
            (e.g. `"15MB"`), for hosts that limit file sizes; default: one file per model.
        teacher (`str`, *optional*): For a `--stage distill` checkpoint: the run's `--teacher`, whose encoder,
            residual rescale and divisor the student uses.
        prediction_type (`str`, *optional*): What the U-Net predicts; default: what the checkpoint's saved scheduler
            says (distill runs save it), else `"epsilon"`. Not epsilon: the pipeline samples with DDIM.
        default_num_inference_steps (`int`, *optional*): The steps saved as the model's default (1 for a one-step
            student); default: none stored (the paper's 100).
        default_temperature (`float`, *optional*): The temperature saved as the model's default.

    Returns:
        [`SRDiffPipeline`]: the saved pipeline.
    """
    for name, flag in (("use_ema", use_ema), ("overwrite", overwrite)):
        if not isinstance(flag, bool):  # "False" is truthy and would overwrite
            raise TypeError(f"`{name}` must be True or False, got {flag!r}.")
    for name, path in (("pretrained_encoder", pretrained_encoder), ("output_dir", output_dir)):
        if not isinstance(path, (str, os.PathLike)) and not (name == "pretrained_encoder" and path is None):
            raise TypeError(f"`{name}` must be a folder path, got {type(path).__name__}.")
    if checkpoint is None or isinstance(checkpoint, bytes):
        raise TypeError(f"`checkpoint` must be a checkpoint-N folder path or a list of them, got {checkpoint!r}.")
    if isinstance(max_shard_size, str) and max_shard_size.strip().isdigit():
        max_shard_size = int(max_shard_size)
    if max_shard_size is not None and not (
        (isinstance(max_shard_size, int) and max_shard_size > 0)
        or (isinstance(max_shard_size, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]B\s*", max_shard_size, re.I))
    ):
        raise ValueError(
            f"`max_shard_size` must be a size such as 15MB (KB, MB, GB or TB) or a number of bytes, "
            f"got {max_shard_size!r}."
        )
    checkpoints = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    if not checkpoints:
        raise ValueError("Give at least one checkpoint to export.")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"The output folder {output_dir!r} is a file: choose a folder (it is created if missing).")
    if os.path.exists(os.path.join(output_dir, "model_index.json")) and not overwrite:
        raise ValueError(
            f"{output_dir!r} already holds a pipeline; pass `overwrite=True` (`--overwrite`) to replace it."
        )
    unet = _load_unet(checkpoints[0], use_ema)
    if len(checkpoints) > 1:
        total = {name: value.double() for name, value in unet.state_dict().items()}
        for other in checkpoints[1:]:
            other_unet = _load_unet(other, use_ema)
            if _architecture(other_unet) != _architecture(unet):
                raise ValueError(f"{other!r} has another U-Net configuration than {checkpoints[0]!r}: not one run.")
            for name, value in other_unet.state_dict().items():
                total[name] += value.double()
        with torch.no_grad():
            for name, value in unet.state_dict().items():
                value.copy_(total[name] / len(checkpoints))
    if (teacher is None) == (pretrained_encoder is None):
        raise ValueError("Give the run's `--pretrained_encoder` (stage diffusion) or its `--teacher` (stage distill).")
    if teacher is not None:
        teacher_pipeline = SRDiffPipeline.from_pretrained(resolve_model(teacher))
        encoder = teacher_pipeline.encoder
        residual_rescale = teacher_pipeline.config.residual_rescale
        lr_upscale_divisor = teacher_pipeline.config.lr_upscale_divisor
    else:
        encoder = load_encoder(pretrained_encoder)
    for model in (unet, encoder):
        _forget_source(model)
    saved = os.path.join(checkpoints[0], SCHEDULER_SUBFOLDER)
    if prediction_type is None and os.path.isdir(saved):
        prediction_type = DDIMScheduler.load_config(saved).get("prediction_type")
    few_step = prediction_type not in (None, "epsilon")
    pipeline = SRDiffPipeline(
        unet=unet,
        encoder=encoder,
        scheduler=ddim_scheduler(default_scheduler().config, prediction_type) if few_step else default_scheduler(),
        residual_rescale=residual_rescale,
        lr_upscale_divisor=lr_upscale_divisor,
        default_num_inference_steps=default_num_inference_steps,
        default_temperature=default_temperature,
    )
    if dtype is not None:
        pipeline.to(dtype=dtype)
    pipeline.save_pretrained(output_dir, max_shard_size=max_shard_size)
    return pipeline
