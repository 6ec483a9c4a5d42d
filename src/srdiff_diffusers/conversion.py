# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Conversion of the authors' original SRDiff checkpoints (LeiaLi/SRDiff) to an [`SRDiffPipeline`].

The original checkpoint is a `torch.save` of `{"global_step", "optimizer_states", "state_dict": {"model": {...}}}`.
The model dict holds the noise predictor under `denoise_fn.`, the RRDB encoder under `rrdb.`, and the diffusion
buffers (`betas`, `alphas_cumprod`, ...). Every architecture setting is read from the tensors themselves; the
original YAML config is only an optional cross-check.
"""

import math
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from diffusers import DDPMScheduler
from diffusers.utils import logging

from .models.rrdb_encoder import RRDBEncoder
from .models.unet_srdiff import SRDiffUNet2DModel
from .pipelines.pipeline_srdiff import SRDiffPipeline
from .io import make_staging_dir


logger = logging.get_logger(__name__)

UNET_PREFIX = "denoise_fn."
RRDB_PREFIX = "rrdb."
# Buffers of the original GaussianDiffusion. All are derived from `betas`; `betas` and `alphas_cumprod` are checked
# against the scheduler, the others are consumed without being used.
DIFFUSION_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
# The stored betas must equal diffusers' `squaredcos_cap_v2` to this tolerance for the named schedule to be used.
BETAS_TOLERANCE = 1e-6
# `alphas_cumprod` is a float32 cumulative product on both sides; rounding differs by a few ulps.
ALPHAS_CUMPROD_TOLERANCE = 1e-5
# The authors' data code computed up(LR) from uint8 / 256, so their released weights expect it.
ORIGINAL_LR_UPSCALE_DIVISOR = 256.0


# ----------------------------------------------------------------------------------------------------------------
# Reading the file
# ----------------------------------------------------------------------------------------------------------------


def _unpickling_reason(error: Exception) -> str:
    # torch wraps the actual reason (e.g. "Trying to load unsupported GLOBAL posix.mkdir ...") in boilerplate about
    # its `weights_only` default; keep only the reason.
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    paragraphs = [p.strip() for p in str(error).split("\n\n") if p.strip()]
    reasons = [p for p in paragraphs if not p.startswith(boilerplate)]
    return " ".join((reasons or paragraphs or [type(error).__name__])[0].split())


def load_original_state_dict(checkpoint_path: Union[str, os.PathLike]) -> Dict[str, torch.Tensor]:
    r"""
    Reads the model weights of an original SRDiff checkpoint with `torch.load(..., weights_only=True)`.

    Args:
        checkpoint_path (`str` or `os.PathLike`): The `.ckpt` file (e.g. `model_ckpt_steps_300000.ckpt`).

    Returns:
        `Dict[str, torch.Tensor]`: `checkpoint["state_dict"]["model"]`.
    """
    path = Path(checkpoint_path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    if not path.is_file():
        raise ValueError(f"{path} is not a file; pass the original `.ckpt` file itself (e.g. model_ckpt_steps_*.ckpt).")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty; the download or copy of this checkpoint is incomplete.")
    try:
        # `weights_only=True` allows tensors and plain containers only: unpickling anything else could run code.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickling_reason(error)
        raise ValueError(
            f"Refusing to read {path}: torch.load(..., weights_only=True) rejected it ({reason}). This converter only "
            "reads files made of tensors and plain Python containers, because unpickling other objects can execute "
            "code. An original SRDiff checkpoint passes this check; a file that does not is corrupt or is not an "
            "SRDiff checkpoint (and may be unsafe to open)."
        ) from error
    except (EOFError, RuntimeError, OSError, AttributeError, ImportError, IndexError, KeyError) as error:
        raise ValueError(
            f"Could not read {path} as a PyTorch checkpoint ({type(error).__name__}: {error}); the file is corrupt, "
            "truncated, or not a checkpoint."
        ) from error

    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{path} holds a {type(checkpoint).__name__}, not the dict of an original SRDiff checkpoint "
            "(`{'global_step', 'optimizer_states', 'state_dict': {'model': ...}}`)."
        )
    if "state_dict" not in checkpoint:
        raise ValueError(
            f"{path} has no 'state_dict' entry (its keys: {sorted(map(str, checkpoint))[:10]}); an original SRDiff "
            "checkpoint stores the weights under checkpoint['state_dict']['model']."
        )
    state_dict = checkpoint["state_dict"]
    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("model"), dict):
        raise ValueError(
            f"{path} has no checkpoint['state_dict']['model'] dict, where original SRDiff checkpoints keep the weights."
        )
    model = state_dict["model"]
    for key, value in model.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            raise ValueError(
                f"checkpoint['state_dict']['model'][{key!r}] is a {type(value).__name__}, not a tensor; this is not "
                "an original SRDiff checkpoint."
            )
        if key.startswith((UNET_PREFIX, RRDB_PREFIX)) and value.is_floating_point() and not value.isfinite().all():
            raise ValueError(
                f"{path}: `{key}` holds NaN or infinite weights, so the model would only produce noise; the run that "
                "wrote it diverged, or the file is corrupt. Convert an earlier checkpoint of the run."
            )
    return model


# ----------------------------------------------------------------------------------------------------------------
# Inferring the architecture from the tensors
# ----------------------------------------------------------------------------------------------------------------


def _require(state_dict: Dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    if key not in state_dict:
        raise ValueError(f"The checkpoint is incomplete: `{key}` is missing.")
    tensor = state_dict[key]
    if tensor.ndim != ndim:
        raise ValueError(f"`{key}` has shape {tuple(tensor.shape)}; expected a {ndim}-d tensor.")
    return tensor


def _count_indexed(state_dict: Dict[str, torch.Tensor], pattern: str, start: int = 0) -> int:
    """How many consecutive indices `i` (from `start`) have `pattern.format(i)` in the state dict."""
    count = 0
    while pattern.format(start + count) in state_dict:
        count += 1
    return count


def infer_configs(state_dict: Dict[str, torch.Tensor]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    r"""
    Reads the U-Net and RRDB encoder configurations from the shapes of an original state dict.

    Returns:
        `Tuple[dict, dict]`: keyword arguments for [`SRDiffUNet2DModel`] and for [`RRDBEncoder`].
    """
    # 1. noise predictor: one width per contracting step, from the first residual block's first convolution
    num_levels = _count_indexed(state_dict, UNET_PREFIX + "downs.{}.0.block1.block.1.weight")
    if num_levels < 2:
        raise ValueError(
            f"The checkpoint is incomplete: expected `{UNET_PREFIX}downs.0.0.block1.block.1.weight` and "
            f"`{UNET_PREFIX}downs.1.0.block1.block.1.weight` (found {num_levels} contracting steps)."
        )
    first_conv = _require(state_dict, UNET_PREFIX + "downs.0.0.block1.block.1.weight", 4)
    widths = tuple(
        _require(state_dict, UNET_PREFIX + f"downs.{i}.0.block1.block.1.weight", 4).shape[0] for i in range(num_levels)
    )
    final_conv = _require(state_dict, UNET_PREFIX + "final_conv.1.weight", 4)

    # ConvTranspose2d weights are (in, out, k, k): in = condition channels, k = 2 * scale.
    cond_key = UNET_PREFIX + "cond_proj.weight"
    cond_proj = _require(state_dict, cond_key, 4)
    kernel = cond_proj.shape[-1]
    if cond_proj.shape[-2] != kernel or kernel % 2:
        raise ValueError(
            f"`{cond_key}` has shape {tuple(cond_proj.shape)}; expected a square kernel of size 2 * scale."
        )
    unet_scale = kernel // 2
    condition_channels = cond_proj.shape[0]

    # 2. RRDB encoder
    conv_first = _require(state_dict, RRDB_PREFIX + "conv_first.weight", 4)
    num_features = conv_first.shape[0]
    num_blocks = _count_indexed(state_dict, RRDB_PREFIX + "RRDB_trunk.{}.RDB1.conv1.weight")
    if num_blocks == 0:
        raise ValueError(f"The checkpoint is incomplete: `{RRDB_PREFIX}RRDB_trunk.0.RDB1.conv1.weight` is missing.")
    growth_channels = _require(state_dict, RRDB_PREFIX + "RRDB_trunk.0.RDB1.conv1.weight", 4).shape[0]
    conv_last = _require(state_dict, RRDB_PREFIX + "conv_last.weight", 4)
    # The SR head has one `upconvN` (nearest x2 + conv) per factor of two, numbered from 1.
    num_upconvs = _count_indexed(state_dict, RRDB_PREFIX + "upconv{}.weight", start=1)
    rrdb_scale = 2**num_upconvs

    # 3. both halves must agree on the scale and on the condition
    if unet_scale != rrdb_scale:
        raise ValueError(
            f"Inconsistent scale: `{cond_key}` has kernel {kernel} (scale {unet_scale}) but the RRDB SR head has "
            f"{num_upconvs} upsampling convolutions `{RRDB_PREFIX}upconv1..{num_upconvs}` (scale {rrdb_scale})."
        )
    # The original U-Net silently assumes every third RRDB feature (2, 5, 8, ...); the widths must say the same.
    condition_feature_indices = tuple(range(2, num_blocks + 1, 3))
    expected_channels = num_features * len(condition_feature_indices)
    if condition_channels != expected_channels:
        raise ValueError(
            f"`{cond_key}` takes {condition_channels} input channels, but {num_blocks} RRDB blocks of "
            f"{num_features} features (`{RRDB_PREFIX}conv_first.weight`) give {expected_channels} with the original "
            f"condition features {condition_feature_indices}; the U-Net and the RRDB do not belong together."
        )

    unet_config = {
        "in_channels": first_conv.shape[1],
        "out_channels": final_conv.shape[0],
        "block_out_channels": widths,
        "condition_channels": condition_channels,
        "upscale_factor": unet_scale,
    }
    encoder_config = {
        "in_channels": conv_first.shape[1],
        "out_channels": conv_last.shape[0],
        "num_features": num_features,
        "num_blocks": num_blocks,
        "growth_channels": growth_channels,
        "upscale_factor": rrdb_scale,
        "condition_feature_indices": condition_feature_indices,
    }
    return unet_config, encoder_config


# ----------------------------------------------------------------------------------------------------------------
# Renaming: an explicit table of original module -> our module, generated from the architecture
# ----------------------------------------------------------------------------------------------------------------


def _resnet_modules(original: str, ours: str) -> Dict[str, str]:
    # Original ResnetBlock: mlp = (Mish, Linear); block1/block2 = (ReflectionPad2d, Conv2d, Mish); res_conv 1x1.
    return {
        f"{original}.mlp.1": f"{ours}.time_emb_proj",
        f"{original}.block1.block.1": f"{ours}.conv1",
        f"{original}.block2.block.1": f"{ours}.conv2",
        f"{original}.res_conv": f"{ours}.conv_shortcut",
    }


def unet_module_map(num_levels: int) -> Dict[str, str]:
    r"""Original `denoise_fn` module names (without the prefix) -> [`SRDiffUNet2DModel`] module names."""
    modules = {
        "cond_proj": "condition_projection",
        "mlp.0": "time_embedding.linear_1",  # mlp = (Linear, Mish, Linear)
        "mlp.2": "time_embedding.linear_2",
        "final_conv.0.block.1": "conv_norm_out",  # final_conv = (Block(pad, conv, Mish), Conv2d 1x1)
        "final_conv.1": "conv_out",
    }
    for level in range(num_levels):
        for j in range(2):
            modules.update(_resnet_modules(f"downs.{level}.{j}", f"down_blocks.{level}.resnets.{j}"))
        if level < num_levels - 1:
            # Downsample = (ReflectionPad2d, Conv2d stride 2)
            modules[f"downs.{level}.2.conv.1"] = f"down_blocks.{level}.downsampler"
    modules.update(_resnet_modules("mid_block1", "mid_block.0"))
    modules.update(_resnet_modules("mid_block2", "mid_block.1"))
    # `ups.i` runs from the lowest resolution up, as our `up_blocks` do.
    for level in range(num_levels - 1):
        for j in range(2):
            modules.update(_resnet_modules(f"ups.{level}.{j}", f"up_blocks.{level}.resnets.{j}"))
        modules[f"ups.{level}.2.conv.0"] = f"up_blocks.{level}.upsampler"  # Upsample = (ConvTranspose2d,)
    return modules


def rrdb_module_map(num_blocks: int, num_upconvs: int) -> Dict[str, str]:
    r"""Original `rrdb` module names (without the prefix) -> [`RRDBEncoder`] module names."""
    modules = {"conv_first": "conv_in", "trunk_conv": "conv_trunk", "HRconv": "conv_hr", "conv_last": "conv_out"}
    for block in range(num_blocks):
        for rdb in (1, 2, 3):
            for conv in range(1, 6):
                modules[f"RRDB_trunk.{block}.RDB{rdb}.conv{conv}"] = f"blocks.{block}.rdb{rdb}.conv{conv}"
    for i in range(num_upconvs):
        modules[f"upconv{i + 1}"] = f"upsamplers.{i}"
    return modules


def _convert_part(
    original: Dict[str, torch.Tensor], prefix: str, module_map: Dict[str, str], model: torch.nn.Module
) -> Dict[str, torch.Tensor]:
    """Renames `original[prefix + ...]` for `model`; every source key must be used and every target key filled."""
    target_shapes = {key: value.shape for key, value in model.state_dict().items()}
    converted, source_of = {}, {}
    for key, tensor in original.items():
        if not key.startswith(prefix):
            continue
        module, _, param = key[len(prefix) :].rpartition(".")
        if module not in module_map:
            raise ValueError(f"Unexpected key `{key}`: no {type(model).__name__} module corresponds to it.")
        target = f"{module_map[module]}.{param}"
        if target not in target_shapes:
            raise ValueError(
                f"Unexpected key `{key}`: the inferred {type(model).__name__} has no `{target}` "
                "(e.g. a shortcut convolution where the width does not change)."
            )
        if tensor.shape != target_shapes[target]:
            raise ValueError(
                f"`{key}` has shape {tuple(tensor.shape)} but `{target}` of the inferred {type(model).__name__} "
                f"needs {tuple(target_shapes[target])}; the checkpoint's shapes are inconsistent."
            )
        converted[target] = tensor
        source_of[target] = key
    inverse = {ours: theirs for theirs, ours in module_map.items()}
    for target in target_shapes:
        if target not in converted:
            module, _, param = target.rpartition(".")
            expected = f"{prefix}{inverse[module]}.{param}" if module in inverse else f"a key for `{target}`"
            raise ValueError(f"The checkpoint is incomplete: `{expected}` is missing (needed for `{target}`).")
    return converted


def convert_state_dicts(
    original: Dict[str, torch.Tensor], unet: SRDiffUNet2DModel, encoder: RRDBEncoder
) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    r"""Renames an original state dict into state dicts for `unet` and `encoder`, checking completeness and shapes."""
    unknown = [
        key
        for key in original
        if not key.startswith((UNET_PREFIX, RRDB_PREFIX)) and key not in DIFFUSION_BUFFERS
    ]
    if unknown:
        raise ValueError(
            f"Unexpected key `{unknown[0]}` ({len(unknown)} unexpected in all): an original SRDiff checkpoint holds "
            f"only `{UNET_PREFIX}*`, `{RRDB_PREFIX}*` and the diffusion buffers {DIFFUSION_BUFFERS}."
        )
    num_levels = len(unet.config.block_out_channels)
    num_upconvs = int(math.log2(encoder.config.upscale_factor))
    unet_state = _convert_part(original, UNET_PREFIX, unet_module_map(num_levels), unet)
    encoder_state = _convert_part(
        original, RRDB_PREFIX, rrdb_module_map(encoder.config.num_blocks, num_upconvs), encoder
    )
    return unet_state, encoder_state


# ----------------------------------------------------------------------------------------------------------------
# Schedule and the optional YAML cross-check
# ----------------------------------------------------------------------------------------------------------------


def scheduler_from_betas(original: Dict[str, torch.Tensor]) -> Tuple[DDPMScheduler, bool]:
    r"""
    Builds the DDPM scheduler for the stored `betas` and verifies it reproduces them (and `alphas_cumprod`).

    The named `squaredcos_cap_v2` schedule is used when it equals the stored betas (it does for the authors'
    checkpoints, bit for bit): the saved config then is the same as for a natively trained pipeline and stays short.
    Otherwise the stored betas are carried over as `trained_betas`, with a warning.

    Returns:
        `Tuple[DDPMScheduler, bool]`: the scheduler, and whether the stored betas are the cosine schedule.
    """
    betas = _require(original, "betas", 1).double()
    if len(betas) < 2 or not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(f"`betas` must hold at least two values in (0, 1), got {betas.tolist()[:5]}...")
    num_steps = len(betas)
    scheduler = DDPMScheduler(num_train_timesteps=num_steps, beta_schedule="squaredcos_cap_v2", clip_sample=True)
    difference = (scheduler.betas.double() - betas).abs().max().item()
    is_cosine = difference <= BETAS_TOLERANCE
    if not is_cosine:
        logger.warning(
            f"The checkpoint's betas differ from the cosine schedule (max abs difference {difference:.3g}); "
            "storing them in the scheduler config as `trained_betas`."
        )
        scheduler = DDPMScheduler(num_train_timesteps=num_steps, trained_betas=betas.tolist(), clip_sample=True)
        difference = (scheduler.betas.double() - betas).abs().max().item()
        if difference > BETAS_TOLERANCE:
            raise ValueError(
                f"The scheduler does not reproduce the stored `betas` (max abs difference {difference:.3g})."
            )
    if "alphas_cumprod" in original:
        stored = original["alphas_cumprod"].double()
        if stored.shape != betas.shape:
            raise ValueError(f"`alphas_cumprod` has shape {tuple(stored.shape)} but `betas` has {tuple(betas.shape)}.")
        difference = (scheduler.alphas_cumprod.double() - stored).abs().max().item()
        if difference > ALPHAS_CUMPROD_TOLERANCE:
            raise ValueError(
                f"The stored `alphas_cumprod` are not the cumulative product of the stored `betas` (max abs "
                f"difference {difference:.3g}); the checkpoint is inconsistent."
            )
    return scheduler, is_cosine


def load_original_config(config_path: Union[str, os.PathLike]) -> Dict[str, Any]:
    r"""Reads an original SRDiff YAML config (only the file itself: its `base_config` files are not merged)."""
    try:
        import yaml
    except ImportError as error:
        raise ImportError(
            "Reading --original-config needs PyYAML: `pip install pyyaml` (or convert without the config; every "
            "setting is read from the checkpoint's tensors anyway)."
        ) from error
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"No original config file at {path}.")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path} does not hold a YAML mapping of hyper-parameters.")
    if "base_config" in config:
        logger.warning(
            f"{path} inherits from `base_config` {config['base_config']!r}, which is not read; only the keys in "
            "this file are cross-checked. Pass the merged config saved with the checkpoint to check them all."
        )
    return config


def _parse_dim_mults(value: Any) -> Tuple[int, ...]:
    if isinstance(value, str):
        parts = value.split("|")
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        parts = [value]
    try:
        return tuple(int(part) for part in parts)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Original config `unet_dim_mults` must look like '1|2|2|4', got {value!r}.") from error


def check_original_config(
    config: Dict[str, Any],
    unet_config: Dict[str, Any],
    encoder_config: Dict[str, Any],
    num_train_timesteps: int,
    is_cosine: bool,
) -> None:
    r"""Raises a `ValueError` naming the key and both values when the original YAML contradicts the checkpoint."""
    base = unet_config["block_out_channels"][0]
    from_tensors = {
        "hidden_size": base,
        "unet_dim_mults": tuple(width // base for width in unet_config["block_out_channels"]),
        "rrdb_num_feat": encoder_config["num_features"],
        "rrdb_num_block": encoder_config["num_blocks"],
        "sr_scale": unet_config["upscale_factor"],
        "timesteps": num_train_timesteps,
    }
    if any(width % base for width in unet_config["block_out_channels"]):
        from_tensors["unet_dim_mults"] = "not integer multiples of the base width"
    for key, ours in from_tensors.items():
        if key not in config:
            continue
        if key != "unet_dim_mults" and (isinstance(config[key], bool) or not isinstance(config[key], int)):
            raise ValueError(
                f"Original config `{key}` must be an integer, got {config[key]!r} ({type(config[key]).__name__})."
            )
        theirs = _parse_dim_mults(config[key]) if key == "unet_dim_mults" else config[key]
        if theirs != ours:
            raise ValueError(f"Original config `{key}` is {config[key]!r} but the checkpoint's tensors give {ours!r}.")
    if "beta_schedule" in config:
        stored = "cosine" if is_cosine else "not cosine (kept as trained_betas)"
        if (config["beta_schedule"] == "cosine") != is_cosine:
            raise ValueError(
                f"Original config `beta_schedule` is {config['beta_schedule']!r} but the checkpoint's `betas` are "
                f"{stored}."
            )
    # Variants of the original code that this pipeline does not implement.
    unsupported = {"res": True, "use_attn": False, "use_wn": False, "up_input": False, "use_rrdb": True}
    for key, supported in unsupported.items():
        if key in config and not isinstance(config[key], bool):  # the string "False" is truthy
            raise ValueError(f"Original config `{key}` must be true or false, got {config[key]!r}.")
        if key in config and bool(config[key]) != supported:
            raise ValueError(
                f"Original config `{key}` is {config[key]!r}; SRDiffPipeline supports only `{key}: {supported}` "
                "(the configuration of the paper and of the released checkpoints)."
            )


# ----------------------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------------------


def _check_output_dir(output_dir: Path, overwrite: bool, inputs: Tuple[Path, ...] = ()) -> None:
    if output_dir.exists():
        if not output_dir.is_dir():
            raise ValueError(f"{output_dir} exists and is not a folder; choose another output folder.")
        for path in inputs:  # replacing the folder would delete them, before or after a successful conversion
            if path.resolve().is_relative_to(output_dir.resolve()):
                raise ValueError(f"{output_dir} holds the input {path}; choose an output folder outside it.")
        if any(output_dir.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{output_dir} exists and is not empty; choose another folder or pass overwrite=True (--overwrite)."
            )


def _save_atomically(pipeline: SRDiffPipeline, output_dir: Path, overwrite: bool) -> None:
    _check_output_dir(output_dir, overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target, then swap it in: an interrupted conversion never leaves a half-written model.
    staging = make_staging_dir(output_dir, "converting")
    try:
        pipeline.save_pretrained(staging, safe_serialization=True)
        old = None
        if output_dir.exists():
            old = make_staging_dir(output_dir, "old")
            os.replace(output_dir, old / "replaced")
        os.replace(staging, output_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def convert_original_checkpoint(
    checkpoint_path: Union[str, os.PathLike],
    output_dir: Optional[Union[str, os.PathLike]] = None,
    original_config: Optional[Union[str, os.PathLike, Dict[str, Any]]] = None,
    lr_upscale_divisor: float = ORIGINAL_LR_UPSCALE_DIVISOR,
    overwrite: bool = False,
) -> SRDiffPipeline:
    r"""
    Converts a checkpoint of the authors' SRDiff code to an [`SRDiffPipeline`], optionally saving it.

    Every architecture setting (U-Net widths, RRDB features/blocks/growth, scale, condition) is inferred from the
    tensors; inconsistent or incomplete files raise a `ValueError` that names the offending key. The file is read
    with `torch.load(..., weights_only=True)`, so no code in it can run.

    Args:
        checkpoint_path (`str` or `os.PathLike`): The original `.ckpt` file.
        output_dir (`str` or `os.PathLike`, *optional*): Where to save the diffusers folder (safetensors and
            `model_index.json`); nothing is saved when `None`.
        original_config (`str`, `os.PathLike` or `dict`, *optional*): The original YAML config (or its parsed dict),
            cross-checked against the tensors (`hidden_size`, `unet_dim_mults`, `rrdb_num_feat`, `rrdb_num_block`,
            `sr_scale`, `timesteps`, `beta_schedule`); its `res_rescale` sets the pipeline's `residual_rescale`.
        lr_upscale_divisor (`float`, *optional*, defaults to 256.0): The pipeline's `lr_upscale_divisor`. 256
            reproduces what the released weights saw in training (the original data code computed up(LR) from
            `uint8 / 256`); 255 is the exact upscaling.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a non-empty `output_dir`.

    Returns:
        [`SRDiffPipeline`]: the converted pipeline, in eval mode, on the CPU.

    Example:

    ```py
    >>> from srdiff_diffusers import convert_original_checkpoint

    >>> pipe = convert_original_checkpoint("model_ckpt_steps_300000.ckpt", "srdiff-celeba-x8")
    ```
    """
    if isinstance(lr_upscale_divisor, bool) or not isinstance(lr_upscale_divisor, (int, float)):
        raise TypeError(f"`lr_upscale_divisor` must be a number (255 or 256), got {type(lr_upscale_divisor).__name__}.")
    if not math.isfinite(lr_upscale_divisor) or lr_upscale_divisor <= 0:
        raise ValueError(f"`lr_upscale_divisor` must be a positive number (255 or 256), got {lr_upscale_divisor!r}.")
    if output_dir is not None:
        output_dir = Path(output_dir)
        inputs = (Path(checkpoint_path),)
        if isinstance(original_config, (str, os.PathLike)):
            inputs += (Path(original_config),)
        _check_output_dir(output_dir, overwrite, inputs)  # fail before the conversion, not after it

    # 1. read and infer
    original = load_original_state_dict(checkpoint_path)
    unet_config, encoder_config = infer_configs(original)
    scheduler, is_cosine = scheduler_from_betas(original)

    # 2. optional cross-check with the original YAML
    residual_rescale = 2.0
    if original_config is not None:
        config = original_config if isinstance(original_config, dict) else load_original_config(original_config)
        check_original_config(config, unet_config, encoder_config, scheduler.config.num_train_timesteps, is_cosine)
        residual_rescale = float(config.get("res_rescale", residual_rescale))

    # 3. build the models and load the renamed weights (strict: every parameter must come from the checkpoint)
    unet = SRDiffUNet2DModel(**unet_config)
    encoder = RRDBEncoder(**encoder_config)
    unet_state, encoder_state = convert_state_dicts(original, unet, encoder)
    unet.load_state_dict(unet_state, strict=True)
    encoder.load_state_dict(encoder_state, strict=True)

    pipeline = SRDiffPipeline(
        unet=unet.eval(),
        encoder=encoder.eval(),
        scheduler=scheduler,
        residual_rescale=residual_rescale,
        lr_upscale_divisor=float(lr_upscale_divisor),
    )
    logger.info(
        f"Converted {checkpoint_path}: x{unet_config['upscale_factor']}, U-Net widths "
        f"{unet_config['block_out_channels']}, RRDB {encoder_config['num_features']} x {encoder_config['num_blocks']}."
    )

    # 4. save
    if output_dir is not None:
        _save_atomically(pipeline, output_dir, overwrite)
    return pipeline
