# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The paper's image manipulations (Section 5.4): content fusion (Algorithm 3) and latent interpolation (Algorithm 4).

Both are sibling pipelines of [`SRDiffPipeline`] with the same components, so they are made from a loaded pipeline
without reloading anything: `SRDiffFusionPipeline.from_pipe(pipe)`.
"""

import numbers
from typing import List, Optional, Sequence, Union

import numpy as np
import PIL.Image
import torch
from diffusers import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from ..matlab_resize import imresize
from ..image_processor import PreparedImage
from ..argument_checks import check_generator, is_real
from .input_checks import OUTPUT_TYPES
from .pipeline_srdiff import SRDiffPipeline
from .schedulers import check_scheduler
from .sizes import padded_size
from .tiling import DEFAULT_TILE_OVERLAP

ImageInput = Union[PIL.Image.Image, np.ndarray, torch.Tensor]


def _is_unit_number(value) -> bool:
    """A real number in [0, 1] (Python or numpy; not a bool)."""
    return is_real(value) and 0 <= value <= 1


class _ManipulationMixin:
    """What both manipulation pipelines add to [`SRDiffPipeline`]: single-image inputs and [0, 1] outputs."""

    def _one_image(self, image: ImageInput, what: str) -> PreparedImage:
        prepared = self.image_processor.preprocess(image)
        if len(prepared) != 1:
            raise ValueError(f"`{what}` must be a single image, got {len(prepared)}.")
        return prepared[0]

    def _output(
        self, images01: torch.Tensor, output_type: str, return_dict: bool, like: Optional[PreparedImage] = None
    ):
        """
        [0, 1] images to the requested type, without a round trip through [-1, 1] (so copied pixels stay exact); RGB
        ones in the channels and mode of `like` (gray, its alpha, its palette), as the main pipeline returns its
        input's (`like` is HR already: its alpha is kept as is).
        """
        images = self.image_processor.postprocess(images01, output_type, like, scale=1, do_denormalize=False)
        return ImagePipelineOutput(images=images) if return_dict else (images,)


class SRDiffFusionPipeline(_ManipulationMixin, SRDiffPipeline):
    r"""
    Content fusion (Algorithm 3 of the paper, with a mask instead of a fixed eye box): the masked region of a source HR
    image is pasted into a target HR image, the result is refined by SRDiff from t-bar = `strength` * T conditioned on
    the target's LR image (which makes the two contents agree), and the refined masked region is pasted back into the
    target. Pixels where the mask is 0 are the target's, exactly.

    Make it from a loaded pipeline without reloading weights: `fusion = SRDiffFusionPipeline.from_pipe(pipe)`.
    """

    @torch.no_grad()
    def __call__(
        self,
        target_image: ImageInput = None,
        source_image: ImageInput = None,
        mask: Union[PIL.Image.Image, np.ndarray, torch.Tensor] = None,
        image: Optional[ImageInput] = None,
        strength: float = 0.5,
        num_inference_steps: int = 100,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        return_dict: bool = True,
        eta: float = 0.0,
        tile_size: Optional[Union[int, str]] = "auto",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        lr_consistency: bool = False,
    ):
        r"""
        Args:
            target_image (`PIL.Image.Image`, `np.ndarray` or `torch.Tensor`): The HR image to edit (the paper's
                face-source image), RGB; its size must be a multiple of the scale when `image` is not given.
            source_image (same types): The HR image whose masked region is fused in (the eye-source image), same size.
            mask (`PIL.Image.Image`, `np.ndarray` or `torch.Tensor`): HxW, 1 (or 255, or True) where the source is
                taken, 0 where the target is kept; values in between blend.
            image (same types, *optional*): The target's LR image; defaults to MATLAB-bicubic downscaling of the
                target, which is how the benchmark LR images are made.
            strength (`float`, *optional*, defaults to 0.5): t-bar / T. The paper shows 0.3, 0.5, 0.7: small values
                keep more of the source, large ones more of what the target's LR image implies.
            num_inference_steps, generator, num_images_per_prompt, eta, tile_size, tile_overlap, lr_consistency:
                As in [`SRDiffPipeline.__call__`].
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: `num_images_per_prompt` fused images.
        """
        if target_image is None or source_image is None or mask is None:
            raise ValueError("Content fusion needs `target_image`, `source_image` and `mask`.")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if not is_real(strength) or not 0 <= strength < 1:
            raise ValueError(
                f"`strength` must be in [0, 1) for content fusion (0 returns the naive paste; 1 would start from pure "
                f"noise and ignore it), got {strength!r}."
            )
        target_item = self._one_image(target_image, "target_image")
        target = target_item.rgb
        source = self._one_image(source_image, "source_image").rgb
        if source.shape != target.shape:
            raise ValueError(
                f"`source_image` is {tuple(source.shape[-2:])} but `target_image` is {tuple(target.shape[-2:])}; "
                "crop or resize them to one size first."
            )
        height, width = target.shape[-2:]
        region = self.image_processor.preprocess_mask(mask, height, width)
        scale = self.upscale_factor
        if image is None:
            if height % scale or width % scale:
                raise ValueError(
                    f"The target is {height}x{width}, not a multiple of the scale {scale}; pass its LR image as "
                    "`image` or crop the target."
                )
            low_res = imresize(target, scale=1 / scale).clamp(0, 1)
        else:
            low_res = self._one_image(image, "image").rgb
            if (low_res.shape[-2] * scale, low_res.shape[-1] * scale) != (height, width):
                raise ValueError(
                    f"`image` (the target's LR image) is {tuple(low_res.shape[-2:])} (HxW), so x{scale} it is "
                    f"{(low_res.shape[-2] * scale, low_res.shape[-1] * scale)}, but `target_image` is "
                    f"{(height, width)}."
                )

        # Algorithm 3, lines 3-12: the naive paste, refined from t-bar under the target's LR image ...
        fused = target + region * (source - target)
        refined = (
            super()
            .__call__(
                low_res,
                init_image=fused,
                strength=strength,
                num_inference_steps=num_inference_steps,
                generator=generator,
                num_images_per_prompt=num_images_per_prompt,
                output_type="pt",
                eta=eta,
                tile_size=tile_size,
                tile_overlap=tile_overlap,
                lr_consistency=lr_consistency,
            )
            .images
        )
        # ... line 13: only the masked region of the refined image goes into the target.
        result = target + region * (refined - target)
        return self._output(result, output_type, return_dict, like=target_item)


class SRDiffInterpolationPipeline(_ManipulationMixin, SRDiffPipeline):
    r"""
    Latent space interpolation (Algorithm 4 of the paper): two latents at t-bar = `strength` * T are mixed,
    `lambda * latents_a + (1 - lambda) * latents_b`, and denoised from t-bar under one LR image. `lambda` = 1 gives
    exactly the sample from `latents_a`, 0 the one from `latents_b`.

    The scheduler's noise is the same for every lambda (each lambda starts from a copy of `generator`'s state), so
    the images differ only through the latents. Make latents with [`~SRDiffInterpolationPipeline.prepare_latents`]:
    pure noise (Algorithm 4 as printed) or two SR results diffused to t-bar (q(x_t-bar | x_0), as the text says).

    Make it from a loaded pipeline without reloading weights: `interp = SRDiffInterpolationPipeline.from_pipe(pipe)`.
    """

    def _start_shape(self, low_res: torch.Tensor, count: int):
        height, width = padded_size(*low_res.shape[-2:], self.unet)
        scale = self.upscale_factor
        return (count, self.unet.config.out_channels, height * scale, width * scale)

    @torch.no_grad()
    def prepare_latents(
        self,
        image: ImageInput,
        strength: float = 0.5,
        num_inference_steps: int = 100,
        generator: Optional[torch.Generator] = None,
        hr_image: Optional[ImageInput] = None,
    ) -> torch.Tensor:
        r"""
        Latents at t-bar for [`~SRDiffInterpolationPipeline.__call__`], `(1, 3, H', W')` with `H', W'` the padded HR
        size.

        Args:
            image: The LR image.
            strength (`float`, *optional*, defaults to 0.5): t-bar / T; use the same value for `__call__`.
            num_inference_steps (`int`, *optional*, defaults to 100): The schedule, to find the first timestep.
            generator (`torch.Generator`, *optional*): For the noise.
            hr_image (*optional*): An SR result (HR, [0, 1]) to diffuse to t-bar with the scheduler's `add_noise`;
                without it the latents are standard normal noise (Algorithm 4, line 3).
        """
        check_scheduler(self.scheduler, self._model_schedule, self._model_prediction_type)
        low_res = self._one_image(image, "image").rgb.to(self._execution_device)
        shape = self._start_shape(low_res, 1)
        if hr_image is None:
            return randn_tensor(shape, generator=generator, device=low_res.device, dtype=torch.float32)
        hr = self._one_image(hr_image, "hr_image")
        self.check_inputs(self.image_processor.preprocess(image), num_inference_steps, strength, [hr], tile_overlap=0)
        timesteps = self.get_timesteps(num_inference_steps, strength, low_res.device)
        return super().prepare_latents(shape, timesteps, strength, generator, low_res, hr.rgb, None)

    @staticmethod
    def interpolate(latents_a: torch.Tensor, latents_b: torch.Tensor, weight: float, method: str = "linear"):
        """`weight * a + (1 - weight) * b` (the paper), or spherical interpolation (keeps the norm of noise)."""
        if method == "linear":
            return weight * latents_a + (1 - weight) * latents_b
        if method != "slerp":
            raise ValueError(f"`interpolation` must be 'linear' or 'slerp', got {method!r}.")
        if weight == 1:
            return latents_a.clone()
        if weight == 0:
            return latents_b.clone()
        a, b = latents_a.flatten(1), latents_b.flatten(1)
        norms = a.norm(dim=1) * b.norm(dim=1)
        if not (torch.isfinite(norms).all() and (norms > 0).all()):
            raise ValueError("Spherical interpolation needs finite, non-zero latents (an angle between them).")
        cos = ((a * b).sum(1) / norms).clamp(-1, 1)
        theta = torch.acos(cos)[:, None]
        sin = torch.sin(theta).clamp_min(1e-8)
        mixed = (torch.sin(weight * theta) * a + torch.sin((1 - weight) * theta) * b) / sin
        return mixed.view_as(latents_a)

    @torch.no_grad()
    def __call__(
        self,
        image: ImageInput = None,
        latents_a: torch.Tensor = None,
        latents_b: torch.Tensor = None,
        interpolation_weights: Sequence[float] = (0.0, 0.4, 0.8, 1.0),
        strength: float = 0.5,
        num_inference_steps: int = 100,
        generator: Optional[torch.Generator] = None,
        interpolation: str = "linear",
        output_type: str = "pil",
        return_dict: bool = True,
        eta: float = 0.0,
        tile_size: Optional[Union[int, str]] = "auto",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        lr_consistency: bool = False,
    ):
        r"""
        Args:
            image: One LR image.
            latents_a, latents_b (`torch.Tensor`): Latents at t-bar, from
                [`~SRDiffInterpolationPipeline.prepare_latents`] (same shape).
            interpolation_weights (`Sequence[float]`, *optional*, defaults to `(0.0, 0.4, 0.8, 1.0)`): The lambdas
                of the paper's Figure 6b, each in [0, 1]; one image per lambda.
            strength (`float`, *optional*, defaults to 0.5): t-bar / T (the paper uses t-bar = 50 of 100).
            generator (`torch.Generator`, *optional*): Its state is copied for every lambda, so all images share
                the scheduler's noise.
            interpolation (`str`, *optional*, defaults to `"linear"`): `"linear"` (the paper) or `"slerp"`.
            num_inference_steps, output_type, return_dict, eta, tile_size, tile_overlap, lr_consistency:
                As in [`SRDiffPipeline.__call__`].

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: one image per weight, in order.
        """
        if latents_a is None or latents_b is None:
            raise ValueError("Pass `latents_a` and `latents_b` (see `prepare_latents`).")
        if output_type not in OUTPUT_TYPES:  # here, not after the work
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if latents_a.shape != latents_b.shape:
            raise ValueError(f"`latents_a` {tuple(latents_a.shape)} and `latents_b` {tuple(latents_b.shape)} differ.")
        if isinstance(interpolation_weights, numbers.Real) or (
            torch.is_tensor(interpolation_weights) and interpolation_weights.ndim == 0
        ):
            interpolation_weights = [interpolation_weights]  # one weight
        weights = [w.item() if hasattr(w, "item") else w for w in interpolation_weights]  # numpy and torch numbers
        if not weights or not all(_is_unit_number(w) for w in weights):
            raise ValueError(f"`interpolation_weights` must be numbers in [0, 1], got {interpolation_weights!r}.")
        if isinstance(generator, list):
            raise ValueError("Pass one `generator`: its state is copied for every interpolation weight.")
        check_generator(generator)  # before its state is read
        state = generator.get_state() if generator is not None else None

        outputs = []
        for weight in self.progress_bar(weights) if len(weights) > 1 else weights:
            gen = None
            if state is not None:
                gen = torch.Generator(device=generator.device).set_state(state)
            mixed = self.interpolate(latents_a, latents_b, float(weight), interpolation)
            out = (
                super()
                .__call__(
                    image,
                    latents=mixed,
                    strength=strength,
                    num_inference_steps=num_inference_steps,
                    generator=gen,
                    output_type="raw" if output_type == "raw" else "pt",
                    eta=eta,
                    tile_size=tile_size,
                    tile_overlap=tile_overlap,
                    lr_consistency=lr_consistency,
                )
                .images
            )
            outputs.append(out)
        images = torch.cat(outputs)
        if output_type == "raw":
            return ImagePipelineOutput(images=images) if return_dict else (images,)
        return self._output(images, output_type, return_dict)
