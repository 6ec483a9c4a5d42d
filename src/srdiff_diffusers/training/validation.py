# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Validation during training: PSNR and LR-PSNR of the model and of bicubic on a few held-out images, and a comparison
image per validation step.
"""

import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import PIL.Image
import torch

from ..degradations import DegradationConfig, degrade_uint8
from ..evaluation.metrics import lr_psnr_torch, psnr_torch  # the paper's convention: RGB, whole image, peak 255
from ..evaluation.report import comparison_grid
from ..matlab_resize import imresize
from ..image_processor import SRDiffImageProcessor
from ..pipelines.pipeline_srdiff import SRDiffPipeline, default_scheduler
from ..io import save_png
from .distillation import ddim_scheduler
from .data import ImageRecord, _to_rgb_uint8, crop_to_multiple, degradation_config, load_hr_images, make_lr


logger = logging.getLogger(__name__)

# Where each validation step's comparison image goes, under `--output_dir`.
VALIDATION_SUBFOLDER = "validation"


def pipeline_of_run(args, unet, encoder) -> SRDiffPipeline:
    """
    The pipeline of a stage-diffusion run (the paper's scheduler) or of a stage-distill run (DDIM for the student's
    prediction type, its first `--student_steps` and the temperature as stored defaults), with the run's residual
    rescale and divisor.
    """
    if args.stage != "distill":
        return SRDiffPipeline(
            unet=unet,
            encoder=encoder,
            scheduler=default_scheduler(),
            residual_rescale=args.residual_rescale,
            lr_upscale_divisor=args.lr_upscale_divisor,
        )
    return SRDiffPipeline(
        unet=unet,
        encoder=encoder,
        scheduler=ddim_scheduler(default_scheduler().config, args.prediction_type),
        residual_rescale=args.residual_rescale,
        lr_upscale_divisor=args.lr_upscale_divisor,
        default_num_inference_steps=args.student_steps[0],
        default_temperature=args.default_temperature,
    )


def split_validation(records: List[ImageRecord], args) -> Tuple[List[ImageRecord], List[ImageRecord]]:
    """
    Training and validation images: `--validation_data_dir`, or the last few training images held out. The
    validation images are checked here ([`check_validation_images`]), before training starts.
    """
    n = args.num_validation_images
    if args.validation_data_dir:
        validation = load_hr_images(
            train_data_dir=args.validation_data_dir, cache_dir=args.cache_dir, option="--validation_data_dir"
        )[:n]
        check_validation_images(
            validation, args.upscale_factor, f"in `--validation_data_dir` {args.validation_data_dir!r}",
            "remove it from `--validation_data_dir`",
        )  # fmt: skip
        return records, validation
    if len(records) <= n:
        raise ValueError(
            f"Holding out {n} validation images would leave no training image ({len(records)} in all); pass "
            "`--validation_data_dir` or lower `--num_validation_images`."
        )
    check_validation_images(
        records[-n:], args.upscale_factor,
        f"one of the last {n} training images, held out for validation (`--num_validation_images`)",
        "remove it from the training images, or pass `--validation_data_dir`",
    )  # fmt: skip
    return records[:-n], records[-n:]


def check_validation_images(records: List[ImageRecord], scale: int, source: str, fix: str) -> None:
    r"""
    Raises `ValueError` unless every validation image decodes and has at least one LR pixel: training skips a bad
    image, but validation cannot, and would fail only at its first step. The images are decoded in full (`verify`
    misses a truncated file); there are only a few.

    The minimum is `scale` HR pixels on each side, whatever `--validation_crop` (at least `scale`, see
    `check_args`): the HR image is cropped to a multiple of the scale before its LR is made, and the pipeline pads
    any LR image of one pixel or more to what the U-Net needs.

    Args:
        records (`List[ImageRecord]`): The validation images.
        scale (`int`): SR scale.
        source (`str`): Where the images come from, for the message.
        fix (`str`): What to do about a bad image, for the message.
    """
    for record in records:
        try:
            with record.open() as image:
                hr = _to_rgb_uint8(image, record.name)
        except Exception as error:  # PIL raises many types for broken files
            raise ValueError(
                f"Validation image {record.name!r} ({source}) cannot be read ({type(error).__name__}: {error}): "
                f"{fix}."
            ) from None
        height, width = hr.shape[-2:]
        if min(height, width) < scale:
            raise ValueError(
                f"Validation image {record.name!r} ({source}) is {width}x{height}, smaller than the {scale}x{scale} "
                f"px validation needs (one LR pixel at `--upscale_factor` {scale}): {fix}."
            )


def _validation_pair(
    record: ImageRecord, scale: int, crop: int, degradation: Optional[DegradationConfig] = None, seed: int = 0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    uint8 (1, 3, H, W) HR, center-cropped to at most `crop`, and its LR: MATLAB bicubic, or `degradation` drawn
    from `seed` (the same LR at every validation, so that the scores compare).
    """
    with record.open() as image:
        hr = _to_rgb_uint8(image, record.name)
    if crop:
        crop = crop - crop % scale
        height, width = hr.shape[-2:]
        top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
        hr = hr[:, top : top + crop, left : left + crop]
    if degradation is None:
        hr, lr = make_lr(hr, scale)
    else:
        hr = crop_to_multiple(hr, scale)
        lr = degrade_uint8(hr, scale, np.random.default_rng([seed, 4]), degradation)
    return hr[None], lr[None]


def _hwc(image: torch.Tensor) -> np.ndarray:
    """A uint8 (1, 3, H, W) tensor as the `HxWx3` array the report figures take."""
    return np.ascontiguousarray(SRDiffImageProcessor.pt_to_numpy(image)[0])


def _stack(grids: List[PIL.Image.Image]) -> PIL.Image.Image:
    """The comparison grids of the validation images one below the other (they have the same width)."""
    canvas = PIL.Image.new("RGB", (max(g.width for g in grids), sum(g.height for g in grids)), "white")
    top = 0
    for grid in grids:
        canvas.paste(grid, (0, top))
        top += grid.height
    return canvas


@torch.no_grad()
def run_validation(args, accelerator, trained, encoder, ema, records, step: int) -> Dict[str, float]:
    r"""
    Super-resolves the validation images with the current model `trained` (unwrapped; the EMA weights when kept)
    and logs the mean PSNR and LR-PSNR of the model and of bicubic, and the images, to the trackers. Also writes
    LR (nearest) | bicubic | model | HR of every validation image, with a zoomed detail, to
    `--output_dir/validation/step-{step}.png`, which needs no tracker. Main process only.
    """
    scale, processor = args.upscale_factor, SRDiffImageProcessor
    degradation = degradation_config(args)
    if ema is not None:
        ema.store(trained.parameters())
        ema.copy_to(trained.parameters())
    was_training = trained.training
    trained.eval()
    try:
        if args.stage != "rrdb":
            pipeline = pipeline_of_run(args, trained, encoder)
            steps = args.validation_inference_steps if args.stage == "diffusion" else None  # distill: its default
            pipeline.set_progress_bar_config(disable=True)
        scores = {"psnr": [], "lr_psnr": [], "bicubic_psnr": [], "bicubic_lr_psnr": []}
        images, grids = [], []
        method = "rrdb" if args.stage == "rrdb" else "srdiff"
        for index, record in enumerate(records):
            hr, lr = _validation_pair(record, scale, args.validation_crop, degradation, args.seed + index)
            lr01 = processor.uint8_to_float(lr.to(accelerator.device))
            bicubic = processor.to_uint8(imresize(lr01, scale=scale)).cpu()
            if args.stage == "rrdb":
                sr01 = processor.denormalize(trained(processor.normalize(lr01), return_dict=False)[0])
            else:
                generator = torch.Generator(device="cpu").manual_seed(args.seed + index)
                sr01 = pipeline(
                    lr01, num_inference_steps=steps, generator=generator, output_type="pt"
                ).images
            sr = processor.to_uint8(sr01.float()).cpu()
            scores["psnr"].append(float(psnr_torch(sr, hr)[0]))
            scores["lr_psnr"].append(float(lr_psnr_torch(sr, lr, scale)[0]))
            scores["bicubic_psnr"].append(float(psnr_torch(bicubic, hr)[0]))
            scores["bicubic_lr_psnr"].append(float(lr_psnr_torch(bicubic, lr, scale)[0]))
            images.append(torch.cat([bicubic, sr, hr], dim=-1)[0])  # bicubic | model | HR
            grids.append(comparison_grid(_hwc(hr), _hwc(lr), {"bicubic": [_hwc(bicubic)], method: [_hwc(sr)]}))
    finally:
        if ema is not None:
            ema.restore(trained.parameters())
        trained.train(was_training)

    metrics = {k: float(np.mean([v for v in values if np.isfinite(v)] or [np.inf])) for k, values in scores.items()}
    logger.info(
        f"validation at step {step} on {len(records)} images: PSNR {metrics['psnr']:.2f} dB (bicubic "
        f"{metrics['bicubic_psnr']:.2f}), LR-PSNR {metrics['lr_psnr']:.2f} dB "
        f"(bicubic {metrics['bicubic_lr_psnr']:.2f})"
    )
    accelerator.log({f"validation/{k}": v for k, v in metrics.items()}, step=step)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            for index, image in enumerate(images):
                tracker.writer.add_image(f"validation/{index}_bicubic_model_hr", image, step, dataformats="CHW")
    path = os.path.join(args.output_dir, VALIDATION_SUBFOLDER, f"step-{step}.png")
    save_png(_stack(grids), path)  # atomic: a run killed while writing leaves no half image
    logger.info(f"Saved the validation images of step {step} to {path}")
    return metrics
