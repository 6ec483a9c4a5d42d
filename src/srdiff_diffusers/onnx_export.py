# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
ONNX export of an [`SRDiffPipeline`]: the encoder and the noise predictor as graphs that any ONNX runtime can run,
the sampling settings as a small JSON file, and for a one-step model a self-contained `upscaler.onnx`.

The folder `export_onnx` writes (see docs/onnx.md):

- `encoder.onnx`: `lr` (N, 3, h, w) in [0, 1] -> `condition` (N, C, h, w), the noise predictor's condition, and
  `rrdb_image` (N, 3, s h, s w) in [0, 1], the image of the RRDB encoder's own SR head;
- `condition_projection.onnx`: `condition` (N, C, h, w) -> `projected_condition` (N, c, s h, s w), the U-Net's
  projection of the condition to HR size, which does not depend on the timestep (run once per image, or per tile);
- `unet.onnx`: `sample` (N, 3, H, W), `timestep` (N,) float, `projected_condition` (N, c, H, W) -> `prediction`
  (N, 3, H, W), what the model predicts (noise, x0 or v: `prediction_type` in the JSON);
- `upscaler.onnx` (one-step models only): `input` (N, 3, h, w) in [0, 1] and `noise` (N, 3, H', W') -> `output`
  (N, 3, s h, s w) in [0, 1], where `H' x W'` is the HR size of the LR image padded to the U-Net's size multiple:
  padding, MATLAB-bicubic up(LR), encoder, one denoising step and cropping, all in the graph;
- `srdiff_onnx.json`: the scale, size multiples, residual rescale, divisor, the scheduler's config (the noise
  schedule), the prediction type and the model's stored sampling defaults.

All graphs have dynamic batch, height and width. The up(LR) of the three component graphs is left to the caller
(`SRDiffFormulas.upscale_lr`, i.e. `matlab_resize.imresize`), as [`OnnxSRDiffPipeline`] does.
"""

import copy
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.utils import logging as diffusers_logging

from .matlab_resize import resize_weights
from .pipelines.sizes import lr_size_rule, padded_size
from .io import atomic_write, make_staging_dir
from .pipelines.pipeline_srdiff_onnx import GRAPH_FILES, ONNX_CONFIG_NAME, ONNX_FORMAT_VERSION
from .pipelines.pipeline_srdiff_onnx import TORCH_DTYPES as DTYPES

DEFAULT_OPSET = 17


def is_one_step(pipe) -> bool:
    """A distilled one-step model: it predicts x0 or v and stores `default_num_inference_steps` 1."""
    prediction_type = getattr(pipe.scheduler.config, "prediction_type", "epsilon")
    return prediction_type in ("sample", "v_prediction") and pipe.config.get("default_num_inference_steps") == 1


# ---------------------------------------------------------------------------------------------------------------
# the graphs, as torch modules that trace into ONNX
# ---------------------------------------------------------------------------------------------------------------


class EncoderGraph(nn.Module):
    """`encoder.onnx`: LR in [0, 1] -> (the condition, the RRDB head's image in [0, 1])."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, lr: torch.Tensor):
        sample, condition = self.encoder(lr * 2 - 1, return_dict=False)
        return condition, (sample + 1) / 2


class ConditionProjectionGraph(nn.Module):
    """`condition_projection.onnx`: the condition -> the U-Net's projection of it to HR size."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.unet.project_condition(condition)


class UNetGraph(nn.Module):
    """`unet.onnx`: (noisy residual, timestep per sample, projected condition) -> the model's prediction."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, projected_condition: torch.Tensor):
        return self.unet(sample, timestep, projected_condition=projected_condition).sample


def _size(tensor: torch.Tensor, dim: int) -> torch.Tensor:
    """A size as a 0-d int64 tensor, so that the arithmetic on it is traced (dynamic in the graph)."""
    return torch._shape_as_tensor(tensor)[dim]


def _mirror_indices(start: torch.Tensor, stop: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Indices `start .. stop - 1` mirrored into `0 .. length - 1` as MATLAB's symmetric padding (`2 1 | 1 2`)."""
    period = 2 * length
    index = torch.remainder(torch.arange(start, stop, dtype=torch.int64), period)
    return torch.where(index >= length, period - 1 - index, index)


class MatlabBicubicUpscale(nn.Module):
    r"""
    MATLAB's bicubic `imresize(x, s)` for an integer scale `s >= 2`, in ops that ONNX expresses for any input size:
    upscaling by an integer has one 4-tap filter per output phase, so each axis is a symmetric padding of 2 pixels
    (an index gather) and a depthwise transposed convolution of stride `s`. Equals
    [`~matlab_resize.imresize`] to float rounding (tested).

    Args:
        scale (`int`): The integer scale.
        channels (`int`, *optional*, defaults to 3): Channels of the images.
    """

    MARGIN = 2  # the cubic kernel reaches two input pixels to each side

    def __init__(self, scale: int, channels: int = 3):
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise ValueError(f"`scale` must be an integer >= 2, got {scale!r}.")
        self.scale, self.channels = scale, channels
        # The taps of each phase, read off the interior of imresize's own matrix (away from the mirrored borders).
        length, centre, margin = 4 * self.MARGIN + 1, 2 * self.MARGIN, self.MARGIN
        matrix = resize_weights(length, length * scale, float(scale), antialiasing=True)
        # Padded input j = i + d + margin feeds output s i + p through kernel tap p + pad - s (d + margin), where
        # pad = 2 s margin is the transposed convolution's padding.
        kernel = torch.zeros(scale * (2 * margin + 1), dtype=torch.float64)
        for phase in range(scale):
            row = matrix[centre * scale + phase]
            for offset in range(-margin, margin + 1):
                kernel[phase + 2 * scale * margin - scale * (offset + margin)] = row[centre + offset]
            if abs(float(row[centre - margin : centre + margin + 1].sum()) - 1) > 1e-12:
                raise AssertionError("the bicubic taps exceed the margin")  # cannot happen for the cubic kernel
        self.padding = 2 * scale * margin
        self.register_buffer("kernel", kernel.float(), persistent=False)

    def _axis(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        length = _size(x, dim)
        index = _mirror_indices(-self.MARGIN, length + self.MARGIN, length)
        x = torch.index_select(x, dim, index)
        shape = (self.channels, 1, -1, 1) if dim == 2 else (self.channels, 1, 1, -1)
        stride, padding = ((self.scale, 1), (self.padding, 0)) if dim == 2 else ((1, self.scale), (0, self.padding))
        weight = self.kernel.to(x.dtype).reshape(1, 1, -1).expand(self.channels, 1, -1).reshape(shape)
        return F.conv_transpose2d(x, weight, stride=stride, padding=padding, groups=self.channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # MATLAB resizes height first when both scales are equal.
        return self._axis(self._axis(images, 2), 3)


def _pad_indices(length: torch.Tensor, padded: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
    """Rows `0 .. padded - 1` of a bottom/right padding: reflected (`F.pad(mode="reflect")`) or replicated."""
    index = torch.arange(padded, dtype=torch.int64)
    reflected = torch.where(index < length, index, 2 * (length - 1) - index)
    return torch.where(reflect, reflected, torch.minimum(index, length - 1))


class OneStepUpscalerGraph(nn.Module):
    r"""
    `upscaler.onnx`: a one-step SRDiff model as one image -> image graph. LR `input` in [0, 1] and `noise` of the
    padded HR shape (standard normal) -> `output` in [0, 1], the same as `pipe(input, latents=noise * temperature,
    ...)` with the model's stored temperature, computed by [`SRDiffPipeline`]'s own modules and its scheduler's
    `step`.
    """

    def __init__(self, pipe):
        super().__init__()
        self.encoder, self.unet = pipe.encoder, pipe.unet
        self.scheduler = pipe.scheduler
        self.scale = pipe.upscale_factor
        self.lr_multiple, self.min_lr = lr_size_rule(pipe.unet)
        self.bicubic = MatlabBicubicUpscale(self.scale)
        formulas = pipe.formulas
        self.residual_rescale, self.lr_gain = formulas.residual_rescale, 255.0 / formulas.lr_upscale_divisor
        _, self.temperature = pipe.sampling_defaults()
        self.scheduler.set_timesteps(1)
        self.timestep = self.scheduler.timesteps[0]

    def pad_to_multiple(self, lr: torch.Tensor) -> torch.Tensor:
        """`SRDiffPipeline.pad_to_multiple` with the sizes as tensors (dynamic in the graph)."""
        height, width = _size(lr, 2), _size(lr, 3)
        padded_height = torch.clamp(height + torch.remainder(-height, self.lr_multiple), min=self.min_lr)
        padded_width = torch.clamp(width + torch.remainder(-width, self.lr_multiple), min=self.min_lr)
        # Reflection needs the pad to be smaller than the image; tiny images fall back to edge replication.
        reflect = (padded_height - height < height) & (padded_width - width < width)
        lr = torch.index_select(lr, 2, _pad_indices(height, padded_height, reflect))
        return torch.index_select(lr, 3, _pad_indices(width, padded_width, reflect))

    def forward(self, input: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # 1. encode the padded LR image and project the condition to HR size
        condition = self.encoder.encode(self.pad_to_multiple(input) * 2 - 1)
        projected = self.unet.project_condition(condition)

        # 2. one denoising step from x_T = noise * temperature (the scheduler's own arithmetic)
        latents = noise * (self.scheduler.init_noise_sigma * self.temperature)
        model_input = self.scheduler.scale_model_input(latents, self.timestep)
        prediction = self.unet(model_input, self.timestep, projected_condition=projected).sample
        x0 = self.scheduler.step(prediction, self.timestep, latents).prev_sample

        # 3. back to an image: crop to the unpadded HR size, x0 / rescale + up(LR), in [0, 1]
        height, width = _size(input, 2) * self.scale, _size(input, 3) * self.scale
        x0 = torch.index_select(x0, 2, torch.arange(height, dtype=torch.int64))
        x0 = torch.index_select(x0, 3, torch.arange(width, dtype=torch.int64))
        upscaled = self.bicubic(input * self.lr_gain) * 2 - 1
        image = x0.clamp(-1, 1) / self.residual_rescale + upscaled
        return ((image + 1) / 2).clamp(0, 1)


# ---------------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------------


def _load_pipeline(pipe_or_path):
    from .pipelines import SRDiffPipeline
    from .pipelines.pipeline_folder import check_pipeline_folder
    from .pretrained import SHIPPED_MODELS, resolve_model

    if isinstance(pipe_or_path, SRDiffPipeline):
        return pipe_or_path
    if not isinstance(pipe_or_path, (str, os.PathLike)):
        raise TypeError(
            f"`pipe_or_path` must be an SRDiffPipeline or the folder of a saved one, got {type(pipe_or_path).__name__}."
        )
    folder = Path(resolve_model(pipe_or_path)).expanduser()
    if not folder.is_dir():
        shipped = ", ".join(SHIPPED_MODELS)
        raise FileNotFoundError(
            f"{pipe_or_path}: no such model folder; pass a saved SRDiffPipeline folder or a shipped model ({shipped})."
        )
    if (folder / ONNX_CONFIG_NAME).is_file():
        raise ValueError(f"{folder} is already an ONNX export; export from the SRDiffPipeline folder it was made from.")
    check_pipeline_folder(folder)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch_dtype` is deprecated", category=FutureWarning)
        return SRDiffPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)


# Above this, Mish is x to the precision of the dtype, and e^x (e^x + 2) stays finite (float16 overflows at 65504).
_MISH_CLAMP = {"Float": 20.0, "Half": 5.0}


def _mish_symbolic(g, x):
    """
    Mish as `x n / (n + 2)`, `n = u (u + 2)`, `u = e^min(x, c)` (the identity of `models.activations.mish_`): ONNX's
    Mish, and torch's default export of it (`x tanh(softplus(x))`), run onnxruntime's Softplus, which took half of
    a U-Net step on the CPU (measured: 0.66 s against 0.33 s with this form at 256x256).
    """
    scalar_type = x.type().scalarType() if x.type().scalarType() in _MISH_CLAMP else "Float"
    dtype = torch.float16 if scalar_type == "Half" else torch.float32
    limit = g.op("Constant", value_t=torch.tensor(_MISH_CLAMP[scalar_type], dtype=dtype))
    two = g.op("Constant", value_t=torch.tensor(2.0, dtype=dtype))
    u = g.op("Exp", g.op("Min", x, limit))
    n = g.op("Mul", u, g.op("Add", u, two))
    return g.op("Mul", x, g.op("Div", n, g.op("Add", n, two)))


def _export(module: nn.Module, args: tuple, path: Path, inputs: Dict[str, Dict[int, str]], outputs, opset: int):
    """Traces `module` into `path` (TorchScript-based exporter: fast, and exact for these convolutional graphs)."""
    dynamic_axes = {**inputs, **outputs}
    torch.onnx.register_custom_op_symbolic("aten::mish", _mish_symbolic, opset)
    try:
        _trace(module, args, path, inputs, outputs, dynamic_axes, opset)
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::mish", opset)


def _trace(module, args, path, inputs, outputs, dynamic_axes, opset) -> None:
    with warnings.catch_warnings():
        # The tracer warns about the models' Python checks of shapes and values: they hold for every input size.
        warnings.simplefilter("ignore")
        # With autograd on, the models use their out-of-place activations (ONNX ops), not the in-place CPU kernels.
        with torch.enable_grad():
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=opset, input_names=list(inputs),
                output_names=list(outputs), dynamic_axes=dynamic_axes, do_constant_folding=True,
            )  # fmt: skip


def _onnx_config(pipe, dtype: str, opset: int, one_step: bool) -> dict:
    unet, encoder = pipe.unet, pipe.encoder
    lr_multiple, min_lr = lr_size_rule(pipe.unet)
    steps, temperature = pipe.sampling_defaults()
    scheduler_config = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    scheduler_config = json.loads(json.dumps(scheduler_config, default=list))  # tuples, numpy values -> JSON
    config = {
        "format_version": ONNX_FORMAT_VERSION,
        "dtype": dtype,
        "opset": opset,
        "upscale_factor": pipe.upscale_factor,
        "sample_size_multiple": unet.sample_size_multiple,
        "min_sample_size": unet.min_sample_size,
        "lr_size_multiple": lr_multiple,
        "min_lr_size": min_lr,
        "in_channels": unet.config.in_channels,
        "out_channels": unet.config.out_channels,
        "condition_channels": encoder.condition_channels,
        "projected_condition_channels": unet.config.block_out_channels[0],
        "residual_rescale": pipe.config.residual_rescale,
        "lr_upscale_divisor": pipe.config.lr_upscale_divisor,
        "prediction_type": getattr(pipe.scheduler.config, "prediction_type", "epsilon"),
        "scheduler": {"class_name": type(pipe.scheduler).__name__, "config": scheduler_config},
        "alphas_cumprod": [float(a) for a in pipe.scheduler.alphas_cumprod.double()],
        "default_num_inference_steps": pipe.config.get("default_num_inference_steps"),
        "default_temperature": pipe.config.get("default_temperature"),
        "resolved_defaults": {"num_inference_steps": steps, "temperature": temperature},
        "graphs": {name: file for name, file in GRAPH_FILES.items() if name != "upscaler" or one_step},
    }
    if one_step:
        config["upscaler"] = {
            "input": "input: (N, 3, h, w) in [0, 1]",
            "noise": "noise: (N, 3, H', W') standard normal, H' x W' the HR size of the LR padded to a multiple of "
            f"{lr_multiple} (at least {min_lr}) LR pixels",
            "output": "output: (N, 3, s h, s w) in [0, 1]",
            "temperature": temperature,
            "timestep": int(pipe.scheduler.timesteps[0]) if len(pipe.scheduler.timesteps) == 1 else None,
        }
    return config


def export_onnx(
    pipe_or_path,
    output_dir: Union[str, os.PathLike],
    opset: int = DEFAULT_OPSET,
    dtype: str = "float32",
    overwrite: bool = False,
    upscaler: Optional[bool] = None,
) -> Path:
    r"""
    Exports an SRDiff pipeline to ONNX graphs and `srdiff_onnx.json` in `output_dir` (see the module docstring and
    docs/onnx.md). The folder is written next to its destination and renamed into place, so an interrupted export
    leaves nothing behind.

    Args:
        pipe_or_path ([`SRDiffPipeline`], `str` or `os.PathLike`): The pipeline, a saved pipeline folder, or the name
            of a shipped model (`"bicubic"`).
        output_dir (`str` or `os.PathLike`): The folder to create.
        opset (`int`, *optional*, defaults to 17): The ONNX opset.
        dtype (`str`, *optional*, defaults to `"float32"`): `"float32"` or `"float16"` (weights, activations and
            the graphs' inputs and outputs, except `timestep`; half the size, meant for GPU execution providers).
        overwrite (`bool`, *optional*, defaults to `False`): Replace an existing non-empty `output_dir`.
        upscaler (`bool`, *optional*): Also write `upscaler.onnx`; defaults to whether the model is a one-step model
            (x0 or v prediction with `default_num_inference_steps` 1). `True` for another model is a `ValueError`.

    Returns:
        `Path`: `output_dir`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {tuple(DTYPES)}, got {dtype!r}.")
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 20:
        raise ValueError(f"`opset` must be an int from 13 to 20, got {opset!r}.")
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(
            f"{output_dir} exists and is not empty; pass `overwrite=True` (--overwrite) to replace it."
        )
    pipe = _load_pipeline(pipe_or_path)
    one_step = is_one_step(pipe)
    if upscaler is None:
        upscaler = one_step
    if upscaler and not one_step:
        raise ValueError(
            "`upscaler.onnx` is one denoising step, so it needs a one-step model (x0 or v prediction and "
            f"`default_num_inference_steps`=1); this model predicts {pipe.scheduler.config.prediction_type!r} with "
            f"{pipe.config.get('default_num_inference_steps')} default steps. Distil one with `srdiff train --stage "
            "distill`, or export the component graphs only."
        )

    # A copy, so that the caller's pipeline keeps its dtype and scheduler state.
    torch_dtype = DTYPES[dtype]
    pipe = copy.deepcopy(pipe)
    for model in (pipe.unet, pipe.encoder):
        model.eval()
        if model.dtype != torch_dtype:
            verbosity = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()  # its advice to load in the dtype does not apply to a copy
            try:
                model.to(torch_dtype)
            finally:
                diffusers_logging.set_verbosity(verbosity)
    scale = pipe.upscale_factor
    lr_multiple, min_lr = lr_size_rule(pipe.unet)
    # Example inputs of an odd-ish size and batch 2, so that nothing is specialised to 1.
    lr_h, lr_w = max(min_lr, 3 * lr_multiple), max(min_lr, 4 * lr_multiple)
    lr = torch.rand(2, pipe.unet.config.in_channels, lr_h, lr_w, dtype=torch_dtype)
    condition = torch.randn(2, pipe.encoder.condition_channels, lr_h, lr_w, dtype=torch_dtype)
    projected = pipe.unet.project_condition(condition).detach()
    sample = torch.randn(2, pipe.unet.config.in_channels, lr_h * scale, lr_w * scale, dtype=torch_dtype)
    timestep = torch.tensor([10.0, 20.0])
    batch_hw = {0: "batch", 2: "height", 3: "width"}
    hr_hw = {0: "batch", 2: "hr_height", 3: "hr_width"}

    staging = make_staging_dir(output_dir, "onnx")
    try:
        _export(
            EncoderGraph(pipe.encoder), (lr,), staging / GRAPH_FILES["encoder"], {"lr": batch_hw},
            {"condition": batch_hw, "rrdb_image": hr_hw}, opset,
        )  # fmt: skip
        _export(
            ConditionProjectionGraph(pipe.unet), (condition,), staging / GRAPH_FILES["condition_projection"],
            {"condition": batch_hw}, {"projected_condition": hr_hw}, opset,
        )  # fmt: skip
        _export(
            UNetGraph(pipe.unet), (sample, timestep, projected), staging / GRAPH_FILES["unet"],
            {"sample": hr_hw, "timestep": {0: "batch"}, "projected_condition": hr_hw}, {"prediction": hr_hw}, opset,
        )  # fmt: skip
        if upscaler:
            odd = torch.rand(2, 3, lr_h + 1, lr_w + 1, dtype=torch_dtype)  # needs padding: the pad is traced
            padded = padded_size(lr_h + 1, lr_w + 1, pipe.unet)
            noise = torch.randn(2, 3, padded[0] * scale, padded[1] * scale, dtype=torch_dtype)
            _export(
                OneStepUpscalerGraph(pipe), (odd, noise), staging / GRAPH_FILES["upscaler"],
                {"input": batch_hw, "noise": {0: "batch", 2: "noise_height", 3: "noise_width"}}, {"output": hr_hw},
                opset,
            )  # fmt: skip
        config = _onnx_config(pipe, dtype, opset, upscaler)
        atomic_write(staging / ONNX_CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        if output_dir.exists():
            # `overwrite`: the old folder is moved aside first, so a failure never leaves a half-written one.
            old = make_staging_dir(output_dir, "old")
            os.replace(output_dir, old / "previous")
            os.replace(staging, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir
