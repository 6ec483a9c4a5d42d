# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""SRDiff: single-image super-resolution with diffusion probabilistic models (Li et al., 2021)."""

import inspect
import math
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DiffusionPipeline, ImagePipelineOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from ..argument_checks import check_count, check_generator, is_int, is_real
from ..image_processor import SRDiffImageProcessor
from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from ..runtime import NonFiniteGuard, check_cpu_memory
from .lr_consistency import lr_consistency as lr_consistency_correction
from .hub_mixin import HubNativeMixin
from .srdiff_formulas import SRDiffFormulas
from .schedulers import check_prediction_type, check_scheduler, fast_scheduler, noise_schedule, prediction_type
from .tiling import (
    DEFAULT_TILE_OVERLAP,
    NoisePredictor,
    TiledNoisePredictor,
    encode_tiled,
    plan_tiles,
    repeat_rows,
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


# The paper's sampling, used where a model stores no defaults of its own.
PAPER_NUM_INFERENCE_STEPS, PAPER_TEMPERATURE = 100, 1.0


def check_defaults(num_inference_steps, temperature) -> None:
    """The sampling defaults a model stores (`default_num_inference_steps`, `default_temperature`), if any."""
    if num_inference_steps is not None and (not is_int(num_inference_steps) or num_inference_steps < 1):
        raise ValueError(f"`default_num_inference_steps` must be an int >= 1 or None, got {num_inference_steps!r}.")
    if temperature is not None and (not is_real(temperature) or not 0 <= temperature < math.inf):
        raise ValueError(f"`default_temperature` must be a number >= 0 or None, got {temperature!r}.")


class SRDiffPipeline(HubNativeMixin, DiffusionPipeline):
    r"""
    Pipeline for single-image super-resolution with SRDiff (Algorithm 2 of the paper): the LR image is encoded once
    by an RRDB encoder, the residual between the HR image and the MATLAB-bicubic upscaled LR image is denoised from
    Gaussian noise by a conditional U-Net, then added back.

    This model inherits from [`DiffusionPipeline`]. Load it with `SRDiffPipeline.from_pretrained(...)`, or with
    `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)` through the `pipeline.py` that `save_pretrained`
    writes beside `model_index.json` (docs/hub.md).

    On the CPU, call [`~runtime.retain_freed_cpu_memory`] once per process (the `srdiff` commands do): glibc then
    reuses freed activations instead of page-faulting fresh memory at every step (see docs/performance.md).

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
        default_num_inference_steps: Optional[int] = None,
        default_temperature: Optional[float] = None,
    ):
        super().__init__()
        if scheduler is None:
            scheduler = default_scheduler()
        self._check_components(unet, encoder, scheduler)
        check_defaults(default_num_inference_steps, default_temperature)
        self.register_modules(unet=unet, encoder=encoder, scheduler=scheduler)
        self.register_to_config(
            residual_rescale=residual_rescale,
            lr_upscale_divisor=lr_upscale_divisor,
            default_num_inference_steps=default_num_inference_steps,
            default_temperature=default_temperature,
        )
        self.image_processor = SRDiffImageProcessor()
        # The noise schedule and prediction type the model comes with: a scheduler swapped in later must keep them.
        self._model_schedule = noise_schedule(scheduler)
        self._model_prediction_type = prediction_type(scheduler)

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
        check_prediction_type(scheduler)

    def _check_scheduler(self) -> None:
        check_scheduler(self.scheduler, self._model_schedule, self._model_prediction_type)

    @property
    def upscale_factor(self) -> int:
        return self.unet.config.upscale_factor

    def check_inputs(
        self,
        image,
        num_inference_steps,
        strength,
        init_image=None,
        latents=None,
        output_type="pil",
        num_images_per_prompt=1,
        callback_on_step_end_tensor_inputs=None,
        generator=None,
        eta=0.0,
        lr_consistency=False,
        tile_overlap=DEFAULT_TILE_OVERLAP,
        batch_size=1,
        temperature=1.0,
    ) -> None:
        """Checks the arguments of `__call__`, with `image` and `init_image` already preprocessed (lists)."""
        self._check_scheduler()
        check_count(num_inference_steps, "num_inference_steps")
        train_steps = self.scheduler.config.num_train_timesteps
        if num_inference_steps > train_steps:
            raise ValueError(
                f"`num_inference_steps` ({num_inference_steps}) cannot exceed the {train_steps} training timesteps."
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        check_count(num_images_per_prompt, "num_images_per_prompt")
        check_count(batch_size, "batch_size")
        callback_inputs = callback_on_step_end_tensor_inputs
        if callback_inputs is not None and any(k not in self._callback_tensor_inputs for k in callback_inputs):
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` may contain only {self._callback_tensor_inputs}, got "
                f"{callback_inputs}."
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
        # refining (Algorithm 3) and starting from given latents (Algorithm 4)
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
        if isinstance(tile_overlap, bool) or not is_int(tile_overlap) or tile_overlap < 0:
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
            return
        if len(init_image) != len(image):
            raise ValueError(f"Got {len(init_image)} init images for {len(image)} LR images; pass one per LR image.")
        scale = self.upscale_factor
        for lr, init in zip(image, init_image):
            expected = (lr.rgb.shape[-2] * scale, lr.rgb.shape[-1] * scale)
            if tuple(init.rgb.shape[-2:]) != expected:
                raise ValueError(
                    f"An init image is {tuple(init.rgb.shape[-2:])} (HxW) but its LR image x{scale} is {expected}; "
                    "pass HR guesses of exactly the LR size times the scale."
                )

    def _lr_size_rule(self) -> Tuple[int, int]:
        """The LR size multiple the U-Net needs, and the smallest LR size it takes (itself a multiple)."""
        multiple = self.unet.sample_size_multiple
        lr_multiple = multiple // math.gcd(multiple, self.upscale_factor)
        min_lr = -(-self.unet.min_sample_size // self.upscale_factor)
        return lr_multiple, min_lr + (-min_lr) % lr_multiple

    def _padded_size(self, height: int, width: int) -> Tuple[int, int]:
        """The LR size `pad_to_multiple` pads a `height x width` LR image to."""
        lr_multiple, min_lr = self._lr_size_rule()
        return max(height + (-height) % lr_multiple, min_lr), max(width + (-width) % lr_multiple, min_lr)

    def pad_to_multiple(self, lr: torch.Tensor) -> torch.Tensor:
        """Pads LR (reflect, bottom/right) so that its upscaled size suits the U-Net; never resamples."""
        height, width = lr.shape[-2:]
        padded_height, padded_width = self._padded_size(height, width)
        pad_h, pad_w = padded_height - height, padded_width - width
        if pad_h == 0 and pad_w == 0:
            return lr
        # Reflection needs the pad to be smaller than the image; tiny images fall back to edge replication.
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        return F.pad(lr, (0, pad_w, 0, pad_h), mode=mode)

    def upscale_bicubic(self, lr01: torch.Tensor) -> torch.Tensor:
        """up(LR): MATLAB-bicubic upscaling of an LR batch in [0, 1], returned in [-1, 1] (see `SRDiffFormulas`)."""
        return SRDiffFormulas(self.upscale_factor, lr_upscale_divisor=self.config.lr_upscale_divisor).upscale_lr(lr01)

    def residual_from_image(self, hr01: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The diffused signal of an HR image in [0, 1]: `x0 = clamp((HR - up(LR)) * rescale, -1, 1)`."""
        return self.formulas.residual_from_image(hr01, lr01)

    def image_from_residual(self, x0: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The unclamped HR image in [-1, 1] of a residual: `clamp(x0, -1, 1) / rescale + up(LR)`."""
        return self.formulas.image_from_residual(x0, lr01)

    @property
    def formulas(self) -> SRDiffFormulas:
        """up(LR), the residual and back, with this pipeline's rescale and divisor (the trainer uses the same)."""
        return SRDiffFormulas(self.upscale_factor, self.config.residual_rescale, self.config.lr_upscale_divisor)

    def fast_scheduler(self, name: str = "dpmsolver++", **kwargs) -> SchedulerMixin:
        r"""
        A few-step scheduler (`"ddim"`, `"dpmsolver++"` or `"unipc"`) with this pipeline's schedule and "trailing"
        timestep spacing, for 10-25 steps: `pipe.scheduler = pipe.fast_scheduler("dpmsolver++")`. See
        [`~srdiff_diffusers.fast_scheduler`].
        """
        return fast_scheduler(self.scheduler.config, name, **kwargs)

    def _tile_size(self, height: int, width: int, tile_size, tile_overlap: int) -> Optional[Tuple[int, int]]:
        """The `(tile_height, tile_width)` in LR pixels for a padded LR image of this size, or `None` (no tiling)."""
        align, min_tile = self._lr_size_rule()
        return resolve_tile_size(tile_size, height, width, tile_overlap, align, min_tile)

    def _noise_predictor(self, lr_padded: torch.Tensor, num_samples: int, tile_size, tile_overlap: int, batch_size=1):
        """
        Encodes the padded LR images (a batch of one size) and returns `predict(model_input, t) -> noise`, tiled or
        not; tiled, `batch_size` tiles go through the U-Net together.
        """
        lr = self.image_processor.normalize(lr_padded).to(self.encoder.dtype)
        height, width = lr.shape[-2:]
        tile_hw = self._tile_size(height, width, tile_size, tile_overlap)
        if tile_hw is None:
            return NoisePredictor(self.unet, self.encoder.encode(lr).to(self.unet.dtype), num_samples)
        tiles = plan_tiles(height, width, *tile_hw, tile_overlap, self._lr_size_rule()[0])
        # The encoder needs no blending, so its tiles abut (no overlap) and each sees `tile_overlap` of context.
        encoder_tiles = plan_tiles(height, width, *tile_hw, 0, 1)
        condition = encode_tiled(self.encoder, lr, encoder_tiles, context=tile_overlap).to(self.unet.dtype)
        return TiledNoisePredictor(self.unet, condition, tiles, tile_overlap, num_samples, batch_size)

    def get_timesteps(self, num_inference_steps: int, strength: float, device) -> torch.Tensor:
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

    def prepare_extra_step_kwargs(self, generator, eta: float) -> Dict[str, Any]:
        """`eta` and `generator` for the scheduler's `step`, for the schedulers that take them (UniPC takes neither)."""
        step_parameters = inspect.signature(self.scheduler.step).parameters
        extra_step_kwargs = {"eta": eta} if "eta" in step_parameters else {}
        if "generator" in step_parameters:
            extra_step_kwargs["generator"] = generator
        return extra_step_kwargs

    def prepare_latents(
        self, shape, timesteps, strength, generator, lr01, init_image, latents, temperature: float = 1.0
    ) -> torch.Tensor:
        """x_T (noise times `temperature`), x_t-bar from an HR guess (Algorithm 3), or the given latents, of the
        padded HR `shape`."""
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
            return noise * (self.scheduler.init_noise_sigma * temperature)
        residual = self.residual_from_image(init_image.to(device), lr01.to(device))
        pad_h, pad_w = shape[-2] - residual.shape[-2], shape[-1] - residual.shape[-1]
        if pad_h or pad_w:
            mode = "reflect" if pad_h < residual.shape[-2] and pad_w < residual.shape[-1] else "replicate"
            residual = F.pad(residual, (0, pad_w, 0, pad_h), mode=mode)
        residual = repeat_rows(residual, shape[0] // residual.shape[0])
        return self.scheduler.add_noise(residual, noise, timesteps[:1])

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        image: Union[PIL.Image.Image, np.ndarray, torch.Tensor, List] = None,
        num_inference_steps: Optional[int] = None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Optional[Callable[[Any, int, int, Dict], Dict]] = None,
        callback_on_step_end_tensor_inputs: List[str] = ["latents"],
        eta: float = 0.0,
        temperature: Optional[float] = None,
        latents: Optional[torch.Tensor] = None,
        init_image: Optional[Union[PIL.Image.Image, np.ndarray, torch.Tensor, List]] = None,
        strength: Optional[float] = None,
        tile_size: Optional[Union[int, str]] = "auto",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        lr_consistency: bool = False,
        batch_size: int = 1,
    ) -> Union[ImagePipelineOutput, tuple]:
        r"""
        Super-resolves one or more images.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                LR images. PIL images in RGB, L, P, RGBA, LA or F mode; numpy uint8 or float in [0, 1], `HxW`,
                `HxWxC` or `NxHxWxC`; torch float in [0, 1], `CxHxW` or `NxCxHxW`. Gray and palette images come back
                in their mode, alpha is upscaled with bicubic. Any size works.
            num_inference_steps (`int`, *optional*): Denoising steps; defaults to the model's stored
                `default_num_inference_steps`, else 100 (the paper's sampler).
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
            temperature (`float`, *optional*): Defaults to the model's stored `default_temperature`, else 1.0.
                Scale of the starting noise x_T. 1 samples the model's
                distribution (the paper's sampler); below 1 gives outputs closer to the average of the samples: more
                faithful (higher PSNR), less diverse and less detailed. With a deterministic sampler (DDIM with `eta`
                0, DPM-Solver++, UniPC) x_T is the only noise, so it sets the diversity; DDPM and DDIM with `eta` > 0
                add fresh noise at every step, which it does not scale. See `docs/schedulers.md`.
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
            batch_size (`int`, *optional*, defaults to 1): Inputs of one size denoised together (each with its
                `num_images_per_prompt` samples), in one U-Net call per step; for a tiled image, the tiles that go
                through the U-Net together. The results equal the unbatched ones to float rounding when each output
                image has its own generator (a list) or none; one generator shared by several images is drawn from
                in another order once they are batched. Memory grows with the batch.

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the images, in input order, `num_images_per_prompt`
            consecutive samples per input. With inputs of different sizes, `"np"`/`"pt"`/`"raw"` give a list.
        """
        # 1. preprocess: [0, 1] tensors of the LR images (and HR guesses), and what gives each result back in its form
        prepared = self.image_processor.preprocess(image)
        init_images = None if init_image is None else self.image_processor.preprocess(init_image)
        if strength is None:  # refining a guess (0.5, t-bar = 50 as in the paper's figures) or sampling
            strength = 0.5 if init_image is not None else 1.0
        num_inference_steps, temperature = self.sampling_defaults(num_inference_steps, temperature, latents, strength)
        self.check_inputs(
            prepared, num_inference_steps, strength, init_images, latents, output_type, num_images_per_prompt,
            callback_on_step_end_tensor_inputs, generator, eta, lr_consistency, tile_overlap, batch_size, temperature,
        )  # fmt: skip
        check_cpu_memory(
            self._execution_device, [item.rgb.shape[-2:] for item in prepared], self.upscale_factor,
            num_images_per_prompt, batch_size=min(int(batch_size), len(prepared)),
        )  # fmt: skip
        num_inference_steps, num_images_per_prompt = int(num_inference_steps), int(num_images_per_prompt)  # numpy ints
        tile_size = int(tile_size) if is_int(tile_size) else tile_size
        tile_overlap, strength, given_latents, batch_size = int(tile_overlap), float(strength), latents, int(batch_size)
        device, dtype, scale = self._execution_device, self.unet.dtype, self.upscale_factor
        count = num_images_per_prompt

        # batches of inputs of one padded size (one image at a time by default, so memory stays bounded by one image)
        results = [None] * len(prepared)
        for group_index, group in enumerate(self._batches(prepared, batch_size, tile_size, tile_overlap)):
            rows = [row for index in group for row in range(index * count, (index + 1) * count)]
            gen = [generator[row] for row in rows] if isinstance(generator, list) else generator
            gen = gen[0] if isinstance(gen, list) and len(gen) == 1 else gen
            init = torch.cat([init_images[index].rgb for index in group]) if init_images is not None else None
            lr01 = torch.cat([prepared[index].rgb for index in group]).to(device)
            if strength == 0:  # nothing to refine: the guess itself, without a network call
                raw = repeat_rows(self.image_processor.normalize(init).to(device), count)
                raws = self._lr_consistency(raw, lr01, count) if lr_consistency else raw
                for position, index in enumerate(group):
                    results[index] = (raws[position * count : (position + 1) * count], prepared[index])
                continue

            # 2. encode the (padded) LR images once, whole or tile by tile (see tiling.py)
            lr_padded = self.pad_to_multiple(lr01)
            predict_noise = self._noise_predictor(lr_padded, count, tile_size, tile_overlap, batch_size)

            # 3. starting latents of the padded HR size, in float32 so the schedule arithmetic stays exact
            timesteps = self.get_timesteps(num_inference_steps, strength, device)
            shape = (len(rows), self.unet.config.out_channels, lr_padded.shape[-2] * scale, lr_padded.shape[-1] * scale)
            start = None if given_latents is None else given_latents[rows]
            # The base method: the interpolation pipeline's public `prepare_latents` has another signature.
            latents = SRDiffPipeline.prepare_latents(
                self, shape, timesteps, strength, gen, lr01, init, start, temperature
            )

            # 4. denoising loop (the U-Net may run in reduced precision: its output is checked for NaN/inf)
            extra_step_kwargs = self.prepare_extra_step_kwargs(gen, eta)
            progress_offset = group_index * len(self.scheduler.timesteps)  # of the whole schedule, as without strength
            guard = NonFiniteGuard(dtype, device)
            for i, t in enumerate(self.progress_bar(timesteps)):
                model_input = self.scheduler.scale_model_input(latents, t)
                noise_pred = predict_noise(model_input.to(dtype), t)
                guard.update(noise_pred, i, t)
                latents = self.scheduler.step(noise_pred.float(), t, latents, **extra_step_kwargs).prev_sample
                if callback_on_step_end is not None:
                    step_locals = locals()  # not inside the comprehension: there, locals() is its own scope (< 3.12)
                    callback_kwargs = {k: step_locals[k] for k in callback_on_step_end_tensor_inputs}
                    callback_outputs = callback_on_step_end(self, progress_offset + i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
            guard.check()

            # 5. residuals back to images: x0 / rescale + up(LR), cropped to the unpadded size
            height, width = lr01.shape[-2:]
            raw = self.image_from_residual(
                latents[:, :, : height * scale, : width * scale], repeat_rows(lr01, count)
            )
            raws = self._lr_consistency(raw, lr01, count) if lr_consistency else raw
            for position, index in enumerate(group):
                results[index] = (raws[position * count : (position + 1) * count], prepared[index])

        # 6. postprocess
        images = self._postprocess(results, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    def sampling_defaults(self, num_inference_steps=None, temperature=None, latents=None, strength=1.0):
        """
        The steps and temperature a call uses: the given ones, else the model's stored defaults
        (`default_num_inference_steps`, `default_temperature` in its config), else the paper's (100, 1). The stored
        temperature applies only when the pipeline draws x_T itself (no `latents`, no `init_image`).
        """
        if num_inference_steps is None:
            num_inference_steps = self.config.get("default_num_inference_steps") or PAPER_NUM_INFERENCE_STEPS
        if temperature is None:
            stored = self.config.get("default_temperature")
            own_noise = latents is None and strength >= 1
            temperature = stored if stored is not None and own_noise else PAPER_TEMPERATURE
        return num_inference_steps, temperature

    def _lr_consistency(self, raw: torch.Tensor, lr01: torch.Tensor, count: int) -> torch.Tensor:
        lr = repeat_rows(self.image_processor.normalize(lr01.to(raw.device)), count)
        return lr_consistency_correction(raw.clamp(-1, 1), lr, self.upscale_factor)

    def _batches(self, prepared, batch_size: int, tile_size, tile_overlap: int) -> List[List[int]]:
        """
        The inputs' indices in batches of at most `batch_size` inputs of one padded LR size, in input order. A tiled
        input is a batch of its own: its tiles are what is batched, so memory stays bounded by the tiles.
        """
        by_size: Dict[Tuple[int, int], List[int]] = {}
        batches = []
        for index, item in enumerate(prepared):
            size = tuple(item.rgb.shape[-2:])
            tiled = self._tile_size(*self._padded_size(*size), tile_size, tile_overlap) is not None
            if batch_size == 1 or tiled:
                batches.append([index])
                continue
            pending = by_size.setdefault(size, [])
            pending.append(index)
            if len(pending) == batch_size:
                batches.append(by_size.pop(size))
        batches.extend(by_size.values())
        return sorted(batches, key=lambda batch: batch[0])

    def _postprocess(self, results: List[tuple], output_type: str):
        """Each input's samples in the input's form; one batch when all have one shape, else a list."""
        scale = self.upscale_factor
        outputs = [self.image_processor.postprocess(raw, output_type, item, scale) for raw, item in results]
        if output_type == "pil":
            return [image for images in outputs for image in images]
        if len({tuple(out.shape[1:]) for out in outputs}) == 1:
            return np.concatenate(outputs) if output_type == "np" else torch.cat(outputs)
        return [o for out in outputs for o in out]
