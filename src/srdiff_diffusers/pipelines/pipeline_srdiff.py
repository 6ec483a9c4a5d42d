# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""SRDiff: single-image super-resolution with diffusion probabilistic models (Li et al., 2021)."""

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DiffusionPipeline, ImagePipelineOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from ..image_processing import prepare_images, tensor_to_pil, to_output_channels
from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from ..utils.argument_checks import is_int, is_real
from ..utils.cpu_memory import available_cpu_memory
from ..utils.lr_consistency import lr_consistency as lr_consistency_correction
from ..utils.precision import NonFiniteGuard
from ..utils.schedulers import fast_scheduler
from . import srdiff_formulas
from .tiling import (
    DEFAULT_TILE_OVERLAP,
    NoisePredictor,
    TiledNoisePredictor,
    encode_tiled,
    plan_tiles,
    resolve_tile_size,
)


EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from PIL import Image
        >>> from srdiff_diffusers import SRDiffPipeline

        >>> pipe = SRDiffPipeline.from_pretrained("path/to/srdiff-model")  # a local folder or a Hub id
        >>> low_res = Image.open("photo.png")
        >>> image = pipe(low_res, generator=torch.Generator().manual_seed(0)).images[0]

        >>> # 20 steps instead of 100: DPM-Solver++ with "trailing" spacing and x0 clipped as in the paper
        >>> pipe.scheduler = pipe.fast_scheduler("dpmsolver++")
        >>> image = pipe(low_res, num_inference_steps=20).images[0]
        ```
"""

OUTPUT_TYPES = ("pil", "np", "pt", "raw")


def default_scheduler() -> DDPMScheduler:
    """The schedule of the paper: T = 100, cosine betas, DDPM posterior with the predicted x0 clipped to [-1, 1]."""
    return DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)


def check_pipeline_folder(folder: Union[str, os.PathLike], variant: Optional[str] = None) -> None:
    """
    Raises a `FileNotFoundError` or `ValueError` naming what is missing or wrong when a local folder is not a
    complete saved SRDiff pipeline (`model_index.json`, and `unet/`, `encoder/`, `scheduler/` with their configs and
    the two models' weights).
    """
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise FileNotFoundError(
            f"{folder} has no model_index.json, so it is not a saved pipeline (make one with `save_pretrained`, "
            "`srdiff convert` or a training run)."
        )
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{index_file} is not valid JSON ({error}); re-save or re-download the model.") from None
    class_name = index.get("_class_name", "") if isinstance(index, dict) else ""
    if "SRDiff" not in class_name:
        raise ValueError(f"{folder} holds a {class_name or 'model of unknown type'}, not an SRDiff pipeline.")
    for name in ("unet", "encoder", "scheduler"):
        part = folder / name
        if not (part / ("scheduler_config.json" if name == "scheduler" else "config.json")).is_file():
            what = "is missing" if not part.is_dir() else "has no config"
            raise FileNotFoundError(f"{part} {what}: the model folder is incomplete; copy or download it again.")
        if name == "scheduler":
            continue
        weights = sorted(p.name for p in part.glob("diffusion_pytorch_model*") if p.suffix in (".safetensors", ".bin"))
        infix = f".{variant}" if variant else ""
        if not any(w in (f"diffusion_pytorch_model{infix}.safetensors", f"diffusion_pytorch_model{infix}.bin")
                   or w.startswith(f"diffusion_pytorch_model{infix}-") for w in weights):  # fmt: skip
            found = f" (only {', '.join(weights)}: pass the matching `variant=`)" if weights else ""
            raise FileNotFoundError(
                f"{part} has no weights diffusion_pytorch_model{infix}.safetensors{found}; the model folder is "
                "incomplete, copy or download it again."
            )


# Memory of the full-size tensors of the image being upscaled (latents, noise, up(LR), the tiled prediction and its
# blending weights, the scheduler's temporaries), per HR pixel and sample: 89-99 bytes measured on the CPU (default
# model, HR 2048^2 and 4096^2); and of each finished image until all are post-processed.
_BYTES_PER_HR_PIXEL = 96
_BYTES_PER_FINISHED_PIXEL = 16
SKIP_MEMORY_CHECK_VARIABLE = "SRDIFF_SKIP_MEMORY_CHECK"


def _check_prediction_type(scheduler) -> None:
    prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
    if prediction_type != "epsilon":
        raise ValueError(
            f"SRDiff predicts noise, but the scheduler is set to prediction_type={prediction_type!r}; create it "
            "with `Scheduler.from_config(pipe.scheduler.config)` or set prediction_type='epsilon'."
        )


def _noise_schedule(scheduler) -> Optional[torch.Tensor]:
    """The scheduler's cumulative alphas in float64 (what its noise levels derive from), or None if it has none."""
    alphas_cumprod = getattr(scheduler, "alphas_cumprod", None)
    return None if alphas_cumprod is None else torch.as_tensor(alphas_cumprod).detach().cpu().double()


def check_generator(generator) -> None:
    """`generator` is None, a torch.Generator or a list of them (an int seed, for one, fails deep in diffusers)."""
    generators = generator if isinstance(generator, list) else [generator]
    if generator is not None and not all(isinstance(g, torch.Generator) for g in generators):
        raise TypeError(
            "`generator` must be a torch.Generator (e.g. `torch.Generator().manual_seed(0)` for seed 0) or a list "
            f"of them, got {type(generator).__name__}."
        )


def _check_count(value, name: str) -> None:
    """A positive Python or numpy integer (not a bool, not a float)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


class SRDiffPipeline(DiffusionPipeline):
    r"""
    Pipeline for single-image super-resolution with SRDiff (Algorithm 2 of the paper): the LR image is encoded once
    by an RRDB encoder, the residual between the HR image and the MATLAB-bicubic upscaled LR image is denoised from
    Gaussian noise by a conditional U-Net, then added back.

    This model inherits from [`DiffusionPipeline`]. Load it with `SRDiffPipeline.from_pretrained(...)`: diffusers
    resolves third-party pipeline classes only through `custom_pipeline`, so `DiffusionPipeline.from_pretrained`
    does not find this one.

    On the CPU, call [`~utils.retain_freed_cpu_memory`] once per process (the `srdiff` commands do): glibc then
    reuses freed activations instead of page-faulting fresh memory at every step (0.71-0.75x the time per step at
    512x512).

    Args:
        unet ([`SRDiffUNet2DModel`]): The conditional noise predictor.
        encoder ([`RRDBEncoder`]): The LR encoder.
        scheduler ([`SchedulerMixin`]): Any diffusers scheduler for epsilon prediction (DDPM, DDIM,
            DPMSolverMultistep, UniPC, EulerAncestral, ...); defaults to the paper's DDPM schedule.
        residual_rescale (`float`, *optional*, defaults to 2.0): The diffused signal is `(HR - up(LR)) * rescale`.
        lr_upscale_divisor (`float`, *optional*, defaults to 255.0): up(LR) is computed from `uint8 / divisor`.
            255 is exact; the authors' data code used 256, so their released weights expect it (converted
            checkpoints set 256).
    """

    model_cpu_offload_seq = "encoder->unet"
    # `scheduler` has a default, so diffusers would otherwise treat it as a plain config value when loading and pass
    # its `["diffusers", "DDPMScheduler"]` entry from model_index.json to `__init__` instead of the loaded scheduler.
    _optional_components = ["scheduler"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        unet: SRDiffUNet2DModel,
        encoder: RRDBEncoder,
        scheduler: Optional[SchedulerMixin] = None,
        residual_rescale: float = 2.0,
        lr_upscale_divisor: float = 255.0,
    ):
        super().__init__()
        if scheduler is None:
            scheduler = default_scheduler()
        self._check_components(unet, encoder, scheduler)
        self.register_modules(unet=unet, encoder=encoder, scheduler=scheduler)
        self.register_to_config(residual_rescale=residual_rescale, lr_upscale_divisor=lr_upscale_divisor)
        # The noise schedule the model comes with: a scheduler swapped in later must keep it (`_check_scheduler`).
        self._model_schedule = _noise_schedule(scheduler)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        r"""
        diffusers' `DiffusionPipeline.from_pretrained` (a local folder or a Hub id), after checking that a local
        folder holds a complete SRDiff pipeline: diffusers' own errors for a missing part name a file it looked for
        instead (`config.json` of the folder itself, a `.bin` when the `.safetensors` is missing).
        """
        path = pretrained_model_name_or_path
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
            check_pipeline_folder(path, kwargs.get("variant"))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @staticmethod
    def _check_components(unet, encoder, scheduler) -> None:
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
        _check_prediction_type(scheduler)

    def _check_scheduler(self) -> None:
        """
        Checks `self.scheduler` before it is used: it can be swapped at any time (`pipe.scheduler = ...`), and a
        scheduler of another noise schedule or prediction type runs without complaint and gives poor images (13 dB
        instead of 25 measured for a default `DDIMScheduler()`).
        """
        scheduler = self.scheduler
        if not isinstance(scheduler, SchedulerMixin):
            raise TypeError(
                f"`pipe.scheduler` must be a diffusers scheduler instance, got {type(scheduler).__name__}; make one "
                "from this pipeline's config: `pipe.fast_scheduler('ddim')` or `DDIMScheduler.from_config(...)`."
            )
        _check_prediction_type(scheduler)
        schedule = _noise_schedule(scheduler)
        if schedule is None:
            raise ValueError(
                f"{type(scheduler).__name__} has no DDPM noise schedule (`alphas_cumprod`), which SRDiff's noise "
                "predictor was trained on; use DDPM, DDIM, DPM-Solver++, UniPC, Euler or a similar scheduler."
            )
        trained = self._model_schedule
        if trained is not None and (schedule.shape != trained.shape or (schedule - trained).abs().max() > 1e-6):
            raise ValueError(
                f"The scheduler ({type(scheduler).__name__}) has another noise schedule ({len(schedule)} training "
                f"steps, beta_schedule {scheduler.config.get('beta_schedule')!r}) than the one this model came with "
                f"({len(trained)} steps); make schedulers from the pipeline's own config, e.g. "
                "`pipe.fast_scheduler('dpmsolver++')` or `EulerDiscreteScheduler.from_config(pipe.scheduler.config)`."
            )

    @property
    def upscale_factor(self) -> int:
        return self.unet.config.upscale_factor

    def check_inputs(self, num_inference_steps, output_type, num_images_per_prompt, callback_inputs):
        self._check_scheduler()
        _check_count(num_inference_steps, "num_inference_steps")
        train_steps = self.scheduler.config.num_train_timesteps
        if num_inference_steps > train_steps:
            raise ValueError(
                f"`num_inference_steps` ({num_inference_steps}) cannot exceed the {train_steps} training timesteps."
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        _check_count(num_images_per_prompt, "num_images_per_prompt")
        if callback_inputs is not None and any(k not in self._callback_tensor_inputs for k in callback_inputs):
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` may contain only {self._callback_tensor_inputs}, got "
                f"{callback_inputs}."
            )

    def _check_cpu_memory(self, prepared, num_samples: int) -> None:
        """
        Refuses, before any work, images whose full-size tensors cannot fit in the memory left on the CPU: tiling
        bounds the networks' memory, not that of the HR-size latents, and a run that outgrows the memory is killed
        by the system without a word, possibly hours in.
        """
        if self._execution_device.type != "cpu" or os.environ.get(SKIP_MEMORY_CHECK_VARIABLE, "0") not in ("", "0"):
            return
        available = available_cpu_memory()
        if available is None:
            return
        scale = self.upscale_factor
        pixels = [item.rgb.shape[-2] * item.rgb.shape[-1] * scale * scale * num_samples for item in prepared]
        needed = _BYTES_PER_HR_PIXEL * max(pixels) + _BYTES_PER_FINISHED_PIXEL * sum(pixels)
        if needed > available:
            largest = prepared[pixels.index(max(pixels))].rgb
            raise MemoryError(
                f"Upscaling {len(prepared)} image(s) x{scale} ({num_samples} sample(s) each, the largest "
                f"{largest.shape[-1]}x{largest.shape[-2]} LR pixels) needs about {needed / 2**30:.1f} GiB of memory "
                f"for its full-size tensors, and {available / 2**30:.1f} GiB is available. Upscale fewer samples or "
                "images per call, or the image in parts (crops); or set "
                f"{SKIP_MEMORY_CHECK_VARIABLE}=1 to try anyway."
            )

    def _lr_size_rule(self) -> Tuple[int, int]:
        """The LR size multiple the U-Net needs, and the smallest LR size it takes (itself a multiple)."""
        multiple = self.unet.sample_size_multiple
        lr_multiple = multiple // math.gcd(multiple, self.upscale_factor)
        min_lr = -(-self.unet.min_sample_size // self.upscale_factor)
        return lr_multiple, min_lr + (-min_lr) % lr_multiple

    def pad_to_multiple(self, lr: torch.Tensor) -> torch.Tensor:
        """Pads LR (reflect, bottom/right) so that its upscaled size suits the U-Net; never resamples."""
        lr_multiple, min_lr = self._lr_size_rule()
        height, width = lr.shape[-2:]
        pad_h = max(height + (-height) % lr_multiple, min_lr) - height
        pad_w = max(width + (-width) % lr_multiple, min_lr) - width
        if pad_h == 0 and pad_w == 0:
            return lr
        # Reflection needs the pad to be smaller than the image; tiny images fall back to edge replication.
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        return F.pad(lr, (0, pad_w, 0, pad_h), mode=mode)

    def upscale_bicubic(self, lr01: torch.Tensor) -> torch.Tensor:
        """up(LR): MATLAB-bicubic upscaling of an LR batch in [0, 1], returned in [-1, 1] (see `srdiff_formulas`)."""
        return srdiff_formulas.upscale_lr(lr01, self.upscale_factor, self.config.lr_upscale_divisor)

    def fast_scheduler(self, name: str = "dpmsolver++", **kwargs) -> SchedulerMixin:
        r"""
        A few-step scheduler (`"ddim"`, `"dpmsolver++"` or `"unipc"`) with this pipeline's schedule and "trailing"
        timestep spacing, for 10-25 steps: `pipe.scheduler = pipe.fast_scheduler("dpmsolver++")`. See
        [`~srdiff_diffusers.utils.fast_scheduler`].
        """
        return fast_scheduler(self.scheduler.config, name, **kwargs)

    def residual_from_image(self, hr01: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The diffused signal of an HR image in [0, 1]: `x0 = clamp((HR - up(LR)) * rescale, -1, 1)`."""
        return srdiff_formulas.residual_from_image(hr01, lr01, self.upscale_factor, *self._formula_config())

    def image_from_residual(self, x0: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The unclamped HR image in [-1, 1] of a residual: `clamp(x0, -1, 1) / rescale + up(LR)`."""
        return srdiff_formulas.image_from_residual(x0, lr01, self.upscale_factor, *self._formula_config())

    def _formula_config(self) -> Tuple[float, float]:
        return self.config.residual_rescale, self.config.lr_upscale_divisor

    def _noise_predictor(self, lr_padded: torch.Tensor, num_samples: int, tile_size, tile_overlap: int):
        """Encodes the padded LR image and returns `predict(model_input, t) -> noise`, tiled or not."""
        lr = (lr_padded * 2 - 1).to(self.encoder.dtype)
        align, min_tile = self._lr_size_rule()
        height, width = lr.shape[-2:]
        tile_hw = resolve_tile_size(tile_size, height, width, tile_overlap, align, min_tile)
        if tile_hw is None:
            return NoisePredictor(self.unet, self.encoder.encode(lr).to(self.unet.dtype), num_samples)
        tiles = plan_tiles(height, width, *tile_hw, tile_overlap, align)
        # The encoder needs no blending, so its tiles abut (no overlap) and each sees `tile_overlap` of context.
        encoder_tiles = plan_tiles(height, width, *tile_hw, 0, 1)
        condition = encode_tiled(self.encoder, lr, encoder_tiles, context=tile_overlap).to(self.unet.dtype)
        return TiledNoisePredictor(self.unet, condition, tiles, tile_overlap, num_samples)

    def _timesteps(self, num_inference_steps: int, strength: float, device) -> torch.Tensor:
        """The scheduler's timesteps, keeping with `strength` < 1 only those below t-bar = strength * T."""
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        if strength >= 1:
            return timesteps
        # Paper t-bar (1..T) is diffusers' timestep t-bar - 1: keep t <= t-bar - 1, i.e. t < strength * T.
        begin = int((timesteps >= strength * self.scheduler.config.num_train_timesteps).sum())
        if begin == len(timesteps):
            raise ValueError(
                f"`strength`={strength} leaves no timestep of this {num_inference_steps}-step schedule (the smallest "
                f"is {int(timesteps[-1])}): raise `strength` or `num_inference_steps`."
            )
        if hasattr(self.scheduler, "set_begin_index"):  # multistep solvers count their steps from here
            self.scheduler.set_begin_index(begin)
        return timesteps[begin:]

    def _start_latents(self, shape, timesteps, strength, generator, lr01, init_image, latents) -> torch.Tensor:
        """x_T (noise), x_t-bar from an HR guess (Algorithm 3), or the given latents, of the padded HR `shape`."""
        device = self._execution_device
        if latents is not None:
            if tuple(latents.shape) != tuple(shape):
                raise ValueError(
                    f"`latents` must have shape {tuple(shape)} for this image (the HR size of the LR image padded to "
                    f"a multiple of {self.unet.sample_size_multiple} HR pixels), got {tuple(latents.shape)}."
                )
            latents = latents.to(device=device, dtype=torch.float32)
            # Latents at t-bar are used as they are; x_T follows the diffusers convention of being N(0, I).
            return latents * self.scheduler.init_noise_sigma if strength >= 1 else latents
        noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        if init_image is None or strength >= 1:
            return noise * self.scheduler.init_noise_sigma
        residual = self.residual_from_image(init_image.to(device), lr01.to(device))
        pad_h, pad_w = shape[-2] - residual.shape[-2], shape[-1] - residual.shape[-1]
        if pad_h or pad_w:
            mode = "reflect" if pad_h < residual.shape[-2] and pad_w < residual.shape[-1] else "replicate"
            residual = F.pad(residual, (0, pad_w, 0, pad_h), mode=mode)
        residual = residual.expand(shape[0], -1, -1, -1)
        return self.scheduler.add_noise(residual, noise, timesteps[:1])

    def _denoise(
        self,
        lr01: torch.Tensor,
        num_inference_steps: int,
        num_samples: int,
        generator,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        extra_step_kwargs,
        passes_generator,
        progress_offset,
        tile_size=None,
        tile_overlap=DEFAULT_TILE_OVERLAP,
        strength=1.0,
        init_image=None,
        latents=None,
    ) -> torch.Tensor:
        """
        Algorithm 2 for one LR image; returns `num_samples` unclamped images in [-1, 1], (n, 3, H*s, W*s). With
        `strength` < 1 it starts at t-bar = strength * T from `init_image` (an HR guess in [0, 1], Algorithm 3) or
        from given `latents` (Algorithm 4).
        """
        device, dtype = self._execution_device, self.unet.dtype
        scale = self.upscale_factor
        height, width = lr01.shape[-2:]

        # 1. encode the (padded) LR image once, whole or tile by tile (see tiling.py)
        lr_padded = self.pad_to_multiple(lr01.to(device))
        predict_noise = self._noise_predictor(lr_padded, num_samples, tile_size, tile_overlap)

        # 2. starting latents, in float32 so the schedule arithmetic stays exact in reduced precision
        timesteps = self._timesteps(num_inference_steps, strength, device)
        shape = (num_samples, self.unet.config.out_channels, lr_padded.shape[-2] * scale, lr_padded.shape[-1] * scale)
        latents = self._start_latents(shape, timesteps, strength, generator, lr01, init_image, latents)

        # 3. denoising loop (the U-Net may run in reduced precision: its output is checked for NaN/inf)
        guard = NonFiniteGuard(dtype, device)
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_input = self.scheduler.scale_model_input(latents, t)
            noise_pred = predict_noise(model_input.to(dtype), t)
            guard.update(noise_pred, i, t)
            step_kwargs = dict(extra_step_kwargs, generator=generator) if passes_generator else extra_step_kwargs
            latents = self.scheduler.step(noise_pred.float(), t, latents, **step_kwargs).prev_sample
            if callback_on_step_end is not None:
                step_locals = locals()  # not inside the comprehension: there, locals() is its own scope (< 3.12)
                callback_kwargs = {k: step_locals[k] for k in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, progress_offset + i, t, callback_kwargs)
                latents = callback_outputs.pop("latents", latents)
        guard.check()

        # 4. residual back to an image: x0 / rescale + up(LR), cropped to the unpadded size
        return self.image_from_residual(latents[:, :, : height * scale, : width * scale], lr01)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        image: Union[PIL.Image.Image, np.ndarray, torch.Tensor, List] = None,
        num_inference_steps: int = 100,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Optional[Callable[[Any, int, int, Dict], Dict]] = None,
        callback_on_step_end_tensor_inputs: List[str] = ["latents"],
        eta: float = 0.0,
        latents: Optional[torch.Tensor] = None,
        init_image: Optional[Union[PIL.Image.Image, np.ndarray, torch.Tensor, List]] = None,
        strength: Optional[float] = None,
        tile_size: Optional[Union[int, str]] = "auto",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        lr_consistency: bool = False,
    ) -> Union[ImagePipelineOutput, tuple]:
        r"""
        Super-resolves one or more images.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                LR images. PIL images in RGB, L, P, RGBA, LA or F mode; numpy uint8 or float in [0, 1], `HxW`,
                `HxWxC` or `NxHxWxC`; torch float in [0, 1], `CxHxW` or `NxCxHxW`. Gray and palette images come back
                in their mode, alpha is upscaled with bicubic. Any size works.
            num_inference_steps (`int`, *optional*, defaults to 100): Denoising steps (100 = the paper's sampler).
            generator (`torch.Generator` or `List[torch.Generator]`, *optional*): One generator, or one per output
                image (`len(images) * num_images_per_prompt`), for reproducible samples.
            num_images_per_prompt (`int`, *optional*, defaults to 1): Samples per LR image (SRDiff is diverse).
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` (`NxHxWxC` float in [0, 1]),
                `"pt"` (`NxCxHxW` float in [0, 1]) or `"raw"` (`Nx3xHxW` RGB in [-1, 1], before clamping and
                quantisation, as the authors' sampler returns it).
            return_dict (`bool`, *optional*, defaults to `True`): Return an [`ImagePipelineOutput`] or a tuple.
            callback_on_step_end (`Callable`, *optional*): Called after each step as
                `callback_on_step_end(pipe, step, timestep, callback_kwargs)`; may return `{"latents": ...}`.
            callback_on_step_end_tensor_inputs (`List[str]`, *optional*): Tensors passed in `callback_kwargs`.
            eta (`float`, *optional*, defaults to 0.0): DDIM's eta; ignored by other schedulers.
            latents (`torch.Tensor`, *optional*): The starting latents, `(len(images) * num_images_per_prompt, 3,
                H', W')` where `H', W'` is the HR size of the LR image padded to the U-Net's size multiple (all
                inputs must then have one size). With `strength` 1 they are x_T (standard normal, scaled by the
                scheduler's `init_noise_sigma`); with `strength` < 1 they are x_t-bar and used as given (Algorithm 4,
                see [`SRDiffInterpolationPipeline`]).
            init_image (same types as `image`, *optional*): HR guesses (`scale` times the LR size, one per LR image)
                to refine (the core of Algorithm 3): their residual is diffused to t-bar = `strength` * T with the
                same global noise and denoised from there. Supported by schedulers with `add_noise` that can start
                mid-way: DDPM, DDIM, DPMSolverMultistep, UniPC.
            strength (`float`, *optional*): t-bar as a fraction of T (the paper's t-bar = 30, 50, 70 are 0.3, 0.5,
                0.7). Only the scheduler's timesteps below t-bar are run. Unset: 0.5 with `init_image`, else 1
                (plain sampling from noise). 0 returns `init_image` as it is, without a network call; a value below 1
                needs `init_image` or `latents`, and 1 refuses an `init_image` (it would be ignored).
            tile_size (`int`, `"auto"` or `None`, *optional*, defaults to `"auto"`): Tile side in LR pixels for tiled
                inference (encoder and noise predictor), so that memory is bounded by the tile, not the image.
                `"auto"` tiles LR images with a side over 256 pixels, with balanced tiles of at most 256; `None`
                never tiles (the paper's exact sampler). Must be a multiple of the U-Net's LR size multiple.
            tile_overlap (`int`, *optional*, defaults to 16): Overlap of neighbouring tiles in LR pixels; noise
                predictions are blended over it with raised-cosine weights at every step, and the encoder sees this
                much context around each tile.
            lr_consistency (`bool`, *optional*, defaults to `False`): Pull the output's low frequencies to the LR
                image (`out + up(LR - down(out))` with MATLAB bicubic), which fixes colour shifts and raises LR-PSNR.

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the images, in input order, `num_images_per_prompt`
            consecutive samples per input. With inputs of different sizes, `"np"`/`"pt"`/`"raw"` give a list.
        """
        # 1. check inputs
        self.check_inputs(num_inference_steps, output_type, num_images_per_prompt, callback_on_step_end_tensor_inputs)
        num_inference_steps, num_images_per_prompt = int(num_inference_steps), int(num_images_per_prompt)  # numpy ints
        if is_int(tile_size):
            tile_size = int(tile_size)
        if is_int(tile_overlap):
            tile_overlap = int(tile_overlap)
        if not is_real(eta) or not 0 <= eta < math.inf:
            raise ValueError(f"`eta` must be a number >= 0 (0: deterministic DDIM, 1: DDPM-like), got {eta!r}.")
        if not isinstance(lr_consistency, (bool, np.bool_)):
            raise TypeError(f"`lr_consistency` must be True or False, got {lr_consistency!r}.")
        check_generator(generator)
        prepared = prepare_images(image)
        self._check_cpu_memory(prepared, num_images_per_prompt)
        total = len(prepared) * num_images_per_prompt
        if strength is None:  # refining a guess (0.5, t-bar = 50 as in the paper's figures) or sampling
            strength = 0.5 if init_image is not None else 1.0
        init_images = self._check_manipulation_inputs(prepared, total, latents, init_image, strength, tile_overlap)
        strength = float(strength)  # numpy numbers
        if isinstance(generator, list) and len(generator) != total:
            raise ValueError(
                f"Got {len(generator)} generators for {total} output images ({len(prepared)} inputs x "
                f"{num_images_per_prompt} per input); pass one generator or exactly {total}."
            )
        # Not every scheduler's `step` takes `eta` or `generator` (UniPC takes neither).
        step_parameters = inspect.signature(self.scheduler.step).parameters
        extra_step_kwargs = {"eta": eta} if "eta" in step_parameters else {}
        passes_generator = "generator" in step_parameters

        # 2. one image at a time: inputs may differ in size, and memory stays bounded by one image
        results = []
        for index, item in enumerate(prepared):
            gen = generator
            if isinstance(generator, list):
                gen = generator[index * num_images_per_prompt : (index + 1) * num_images_per_prompt]
                gen = gen[0] if len(gen) == 1 else gen
            init = init_images[index] if init_images is not None else None
            if strength == 0:  # nothing to refine: the guess itself, without a network call
                raw = (init * 2 - 1).to(self._execution_device).expand(num_images_per_prompt, -1, -1, -1)
            else:
                raw = self._denoise(
                    item.rgb,
                    num_inference_steps,
                    num_images_per_prompt,
                    gen,
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                    extra_step_kwargs,
                    passes_generator,
                    # (before the first call some schedulers have no timesteps yet)
                    progress_offset=index * len(self.scheduler.timesteps) if index else 0,
                    tile_size=tile_size,
                    tile_overlap=tile_overlap,
                    strength=strength,
                    init_image=init,
                    latents=None
                    if latents is None
                    else latents[index * num_images_per_prompt : (index + 1) * num_images_per_prompt],
                )
            if lr_consistency:
                rgb = item.rgb.to(raw.device)
                raw = lr_consistency_correction(raw.clamp(-1, 1), rgb * 2 - 1, self.upscale_factor)
            results.append((raw, item))

        # 3. post-process
        images = self._postprocess(results, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    def _check_manipulation_inputs(self, prepared, total, latents, init_image, strength, tile_overlap):
        """Checks `latents`, `init_image`, `strength` and `tile_overlap`; returns the init images as (1, 3, H, W)."""
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
        if isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int) or tile_overlap < 0:
            raise ValueError(f"`tile_overlap` must be a non-negative int (LR pixels), got {tile_overlap!r}.")
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
        if init_image is None:
            if strength == 0:
                raise ValueError("`strength`=0 returns `init_image` unchanged; pass `init_image` (or raise strength).")
            return None
        init_images = [item.rgb for item in prepare_images(init_image)]
        if len(init_images) != len(prepared):
            raise ValueError(
                f"Got {len(init_images)} init images for {len(prepared)} LR images; pass one per LR image."
            )
        scale = self.upscale_factor
        for lr, init in zip(prepared, init_images):
            expected = (lr.rgb.shape[-2] * scale, lr.rgb.shape[-1] * scale)
            if tuple(init.shape[-2:]) != expected:
                raise ValueError(
                    f"An init image is {tuple(init.shape[-2:])} (HxW) but its LR image x{scale} is {expected}; pass "
                    "HR guesses of exactly the LR size times the scale."
                )
        return init_images

    def _postprocess(self, results: List[tuple], output_type: str):
        if output_type == "raw":
            outputs = [raw for raw, _ in results]
        else:
            outputs = []
            for raw, item in results:
                rgb01 = ((raw + 1) / 2).clamp(0, 1)
                outputs.append((to_output_channels(rgb01, item, self.upscale_factor), item))
            if output_type == "pil":
                return [tensor_to_pil(img, item) for out, item in outputs for img in out]
            outputs = [out.cpu() for out, _ in outputs]
            if output_type == "np":
                outputs = [out.permute(0, 2, 3, 1).numpy() for out in outputs]
        if len({tuple(out.shape[1:]) for out in outputs}) == 1:
            return np.concatenate(outputs) if output_type == "np" else torch.cat(outputs)
        return [o for out in outputs for o in out]

