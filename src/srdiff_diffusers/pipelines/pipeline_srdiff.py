# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""SRDiff: single-image super-resolution with diffusion probabilistic models (Li et al., 2021)."""

import inspect
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from ..argument_checks import is_int
from ..image_processor import SRDiffImageProcessor
from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from ..runtime import NonFiniteGuard
from .lr_consistency import lr_consistency as lr_consistency_correction
from .hub_mixin import HubNativeMixin
from .input_checks import check_call_inputs, check_components, check_defaults
from .srdiff_formulas import SRDiffFormulas
from .schedulers import PAPER_NUM_INFERENCE_STEPS, PAPER_TEMPERATURE, check_scheduler, default_scheduler
from .schedulers import fast_scheduler, noise_schedule, prediction_type
from .sizes import pad_bottom_right, padded_size
from .tiling import DEFAULT_TILE_OVERLAP, batches, noise_predictor, output_rows, repeat_rows


EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from PIL import Image
        >>> from srdiff_diffusers import SRDiffPipeline

        >>> pipe = SRDiffPipeline.from_pretrained("path/to/srdiff-model")  # a local folder or a Hub id
        >>> low_res = Image.open("photo.png")
        >>> image = pipe(low_res, generator=torch.Generator().manual_seed(0)).images[0]  # the model's defaults

        >>> pipe.scheduler = pipe.fast_scheduler("dpmsolver++")  # trailing spacing, x0 clipped as in the paper
        >>> image = pipe(low_res, num_inference_steps=20).images[0]
        ```
"""


class SRDiffPipeline(HubNativeMixin, DiffusionPipeline):
    r"""
    Pipeline for single-image super-resolution with SRDiff (Algorithm 2 of the paper): the LR image is encoded once
    by an RRDB encoder, the residual between the HR image and the MATLAB-bicubic upscaled LR image is denoised from
    Gaussian noise by a conditional U-Net, then added back.

    This model inherits from [`DiffusionPipeline`]. Load it with `SRDiffPipeline.from_pretrained(...)`, or with
    `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)` through the `pipeline.py` that `save_pretrained`
    writes beside `model_index.json` (docs/hub.md).

    On the CPU, call [`~runtime.retain_freed_cpu_memory`] once per process (docs/performance.md).

    Args:
        unet ([`SRDiffUNet2DModel`]): The conditional noise predictor.
        encoder ([`RRDBEncoder`]): The LR encoder.
        scheduler ([`SchedulerMixin`]): Any diffusers scheduler (DDPM, DDIM, DPMSolverMultistep, UniPC, ...) whose
            `prediction_type` is what the U-Net predicts: epsilon (SRDiff), x0 or v (distilled students); defaults
            to the paper's DDPM schedule.
        residual_rescale (`float`, *optional*, defaults to 2.0): The diffused signal is `(HR - up(LR)) * rescale`.
        lr_upscale_divisor (`float`, *optional*, defaults to 255.0): up(LR) is computed from `uint8 / divisor`
            (255 is exact; converted checkpoints of the authors set 256, as their data code used).
        default_num_inference_steps (`int`, *optional*), default_temperature (`float`, *optional*): The model's
            sampling defaults, used when a call gives none (docs/sampling_defaults.md); unset: the paper's 100, 1.
    """

    model_cpu_offload_seq = "encoder->unet"
    # `scheduler` has a default, so diffusers would otherwise treat it as a plain config value when loading and pass
    # its `["diffusers", "DDPMScheduler"]` entry from model_index.json to `__init__` instead of the loaded scheduler.
    _optional_components = ["scheduler"]
    _callback_tensor_inputs = ["latents"]

    # A method, so that a pipeline on another runtime (`OnnxSRDiffPipeline`) can state what its components are.
    _check_components = staticmethod(check_components)

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
        scheduler = default_scheduler() if scheduler is None else scheduler
        self._check_components(unet, encoder, scheduler)
        check_defaults(default_num_inference_steps, default_temperature)
        self.register_modules(unet=unet, encoder=encoder, scheduler=scheduler)
        self.register_to_config(
            residual_rescale=residual_rescale, lr_upscale_divisor=lr_upscale_divisor,
            default_num_inference_steps=default_num_inference_steps, default_temperature=default_temperature,
        )  # fmt: skip
        self.image_processor = SRDiffImageProcessor()
        # The noise schedule and prediction type the model comes with: a scheduler swapped in later must keep them.
        self._model_schedule = noise_schedule(scheduler)
        self._model_prediction_type = prediction_type(scheduler)

    @property
    def upscale_factor(self) -> int:
        return self.unet.config.upscale_factor

    def check_inputs(
        self, image, num_inference_steps, strength, init_image=None, latents=None, output_type="pil",
        num_images_per_prompt=1, callback_on_step_end_tensor_inputs=None, generator=None, eta=0.0,
        lr_consistency=False, tile_overlap=DEFAULT_TILE_OVERLAP, batch_size=1, temperature=1.0,
    ) -> None:  # fmt: skip
        """Checks the arguments of `__call__`, with `image` and `init_image` already preprocessed (lists)."""
        check_scheduler(self.scheduler, self._model_schedule, self._model_prediction_type)
        check_call_inputs(
            image, num_inference_steps, strength, init_image, latents, output_type, num_images_per_prompt,
            callback_on_step_end_tensor_inputs, generator, eta, lr_consistency, tile_overlap, batch_size, temperature,
            self.scheduler.config.num_train_timesteps, self.unet, self._callback_tensor_inputs, self._execution_device,
        )  # fmt: skip

    def pad_to_multiple(self, lr: torch.Tensor) -> torch.Tensor:
        """Pads LR (reflect, bottom/right) so that its upscaled size suits the U-Net; never resamples."""
        return pad_bottom_right(lr, *padded_size(*lr.shape[-2:], self.unet))

    def upscale_bicubic(self, lr01: torch.Tensor) -> torch.Tensor:
        """up(LR): MATLAB-bicubic upscaling of an LR batch in [0, 1], returned in [-1, 1] (see `SRDiffFormulas`)."""
        return SRDiffFormulas(self.upscale_factor, lr_upscale_divisor=self.config.lr_upscale_divisor).upscale_lr(lr01)

    def residual_from_image(self, hr01: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The diffused signal of an HR image in [0, 1]: `x0 = clamp((HR - up(LR)) * rescale, -1, 1)`."""
        return self.formulas.residual_from_image(hr01, lr01)

    @property
    def formulas(self) -> SRDiffFormulas:
        """up(LR), the residual and back, with this pipeline's rescale and divisor (the trainer uses the same)."""
        return SRDiffFormulas(self.upscale_factor, self.config.residual_rescale, self.config.lr_upscale_divisor)

    def fast_scheduler(self, name: str = "dpmsolver++", **kwargs) -> SchedulerMixin:
        r"""
        A few-step scheduler (`"ddim"`, `"dpmsolver++"` or `"unipc"`) with this pipeline's schedule and "trailing"
        spacing, for 10-25 steps: `pipe.scheduler = pipe.fast_scheduler("dpmsolver++")`; see [`fast_scheduler`].
        """
        return fast_scheduler(self.scheduler.config, name, **kwargs)

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
        if latents is not None:  # of `shape`, as `check_inputs` made sure
            latents = latents.to(device=device, dtype=torch.float32)
            # Latents at t-bar are used as they are; x_T follows the diffusers convention of being N(0, I).
            return latents * self.scheduler.init_noise_sigma if strength >= 1 else latents
        noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        if init_image is None or strength >= 1:
            return noise * (self.scheduler.init_noise_sigma * temperature)
        residual = pad_bottom_right(self.residual_from_image(init_image.to(device), lr01.to(device)), *shape[-2:])
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
            temperature (`float`, *optional*): Scale of the starting noise x_T; defaults to the model's stored
                `default_temperature`, else 1 (the model's own samples). Below 1: more faithful (higher PSNR), less
                diverse and less detailed; with a deterministic sampler (DDIM with `eta` 0, DPM-Solver++, UniPC) it
                sets the diversity, DDPM adds fresh noise it does not scale (docs/sampling_defaults.md).
            latents (`torch.Tensor`, *optional*): The starting latents, `(len(images) * num_images_per_prompt, 3,
                H', W')` with `H', W'` the HR size of the LR image padded to the U-Net's size multiple (all inputs
                must then have one size). With `strength` 1 they are x_T (standard normal, scaled by the scheduler's
                `init_noise_sigma`); below 1, x_t-bar used as given (Algorithm 4, [`SRDiffInterpolationPipeline`]).
            init_image (same types as `image`, *optional*): HR guesses (`scale` times the LR size, one per LR image)
                to refine (the core of Algorithm 3): their residual is diffused to t-bar = `strength` * T with the
                same global noise and denoised from there. Supported by schedulers with `add_noise` that can start
                mid-way: DDPM, DDIM, DPMSolverMultistep, UniPC.
            strength (`float`, *optional*): t-bar as a fraction of T (the paper's t-bar = 30, 50, 70 are 0.3, 0.5,
                0.7); only the timesteps below t-bar run. Unset: 0.5 with `init_image`, else 1 (sampling from noise).
                0 returns `init_image` as it is, without a network call; below 1 needs `init_image` or `latents`; 1
                refuses an `init_image` (it would be ignored).
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
                `num_images_per_prompt` samples) in one U-Net call per step; for a tiled image, the tiles per U-Net
                call. Equal to unbatched results to float rounding when each output image has its own generator (a
                list) or none; one generator shared by several images is drawn from in another order. Memory grows
                with the batch.

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

        # 2. check inputs
        self.check_inputs(
            prepared, num_inference_steps, strength, init_images, latents, output_type, num_images_per_prompt,
            callback_on_step_end_tensor_inputs, generator, eta, lr_consistency, tile_overlap, batch_size, temperature,
        )  # fmt: skip
        num_inference_steps, count = int(num_inference_steps), int(num_images_per_prompt)  # numpy ints
        tile_size = int(tile_size) if is_int(tile_size) else tile_size
        tile_overlap, strength, batch_size = int(tile_overlap), float(strength), int(batch_size)

        # 3. encode, prepare latents, denoise (`upscale_batch`) by batches of inputs of one size; one by default
        sizes = [tuple(item.rgb.shape[-2:]) for item in prepared]
        results = {}  # input index -> its samples
        for batch_index, batch in enumerate(batches(sizes, batch_size, self.unet, tile_size, tile_overlap)):
            rows = output_rows(batch, count)
            gen = [generator[row] for row in rows] if isinstance(generator, list) else generator
            raws = self.upscale_batch(
                torch.cat([prepared[index].rgb for index in batch]),
                None if init_images is None else torch.cat([init_images[index].rgb for index in batch]),
                None if latents is None else latents[rows],
                gen[0] if isinstance(gen, list) and len(gen) == 1 else gen,
                count, num_inference_steps, strength, temperature, eta, tile_size, tile_overlap, batch_size,
                lr_consistency, callback_on_step_end, callback_on_step_end_tensor_inputs, batch_index,
            )  # fmt: skip
            results.update(zip(batch, raws.split(count)))

        # 4. postprocess: each input's samples in the input's form; one batch when all have one shape, else a list
        outputs = [
            self.image_processor.postprocess(results[i], output_type, item, self.upscale_factor)
            for i, item in enumerate(prepared)
        ]
        if output_type == "pil":
            images = [image for images in outputs for image in images]
        elif len({tuple(out.shape[1:]) for out in outputs}) == 1:
            images = np.concatenate(outputs) if output_type == "np" else torch.cat(outputs)
        else:
            images = [image for out in outputs for image in out]
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    def upscale_batch(
        self, lr01, init_image, latents, generator, num_images_per_prompt, num_inference_steps, strength, temperature,
        eta, tile_size, tile_overlap, batch_size, lr_consistency, callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",), batch_index=0,
    ) -> torch.Tensor:  # fmt: skip
        """
        Super-resolves LR images of one size (`lr01`, `(N, 3, H, W)` in [0, 1]) with `__call__`'s checked arguments,
        cut to the batch: unclamped HR images in [-1, 1], `num_images_per_prompt` consecutive rows per LR image.
        """
        device, scale, count = self._execution_device, self.upscale_factor, num_images_per_prompt
        lr01 = lr01.to(device)
        if strength == 0:  # nothing to refine: the guess itself, without a network call
            raw = repeat_rows(self.image_processor.normalize(init_image).to(device), count)
            return self._lr_consistency(raw, lr01, count) if lr_consistency else raw

        # 1. encode the (padded) LR images once, whole or tile by tile (see tiling.py)
        lr_padded = self.image_processor.normalize(self.pad_to_multiple(lr01)).to(self.encoder.dtype)
        predict_noise = noise_predictor(self.unet, self.encoder, lr_padded, count, tile_size, tile_overlap, batch_size)

        # 2. starting latents of the padded HR size, in float32 so the schedule arithmetic stays exact
        timesteps = self.get_timesteps(num_inference_steps, strength, device)
        shape = (len(lr01) * count, self.unet.config.out_channels, *(size * scale for size in lr_padded.shape[-2:]))
        # The base method: the interpolation pipeline's public `prepare_latents` has another signature.
        latents = SRDiffPipeline.prepare_latents(
            self, shape, timesteps, strength, generator, lr01, init_image, latents, temperature
        )

        # 3. denoising loop (the U-Net may run in reduced precision: its output is checked for NaN/inf)
        extra_step_kwargs = self.prepare_extra_step_kwargs(generator, eta)
        progress_offset = batch_index * len(self.scheduler.timesteps)  # of the whole schedule, as without strength
        guard = NonFiniteGuard(self.unet.dtype, device)
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_input = self.scheduler.scale_model_input(latents, t)
            noise_pred = predict_noise(model_input.to(self.unet.dtype), t)
            guard.update(noise_pred, i, t)
            latents = self.scheduler.step(noise_pred.float(), t, latents, **extra_step_kwargs).prev_sample
            if callback_on_step_end is not None:
                step_locals = locals()  # not inside the comprehension: there, locals() is its own scope (< 3.12)
                callback_kwargs = {k: step_locals[k] for k in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, progress_offset + i, t, callback_kwargs)
                latents = callback_outputs.pop("latents", latents)
        guard.check()

        # 4. residuals back to images: x0 / rescale + up(LR), cropped to the unpadded size
        x0 = latents[:, :, : lr01.shape[-2] * scale, : lr01.shape[-1] * scale]
        raw = self.formulas.image_from_residual(x0, repeat_rows(lr01, count))
        return self._lr_consistency(raw, lr01, count) if lr_consistency else raw

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
