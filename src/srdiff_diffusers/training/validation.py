# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Validation during training: PSNR and LR-PSNR of the model and of bicubic on a few held-out images."""

import logging
from typing import Dict, List, Tuple

import numpy as np
import torch

from ..evaluation.metrics import lr_psnr_torch, psnr_torch  # the paper's convention: RGB, whole image, peak 255
from ..image_processing import imresize
from .data import ImageRecord, _to_rgb_uint8, load_hr_images, make_lr


logger = logging.getLogger(__name__)

def split_validation(records: List[ImageRecord], args) -> Tuple[List[ImageRecord], List[ImageRecord]]:
    """Training and validation images: `--validation_data_dir`, or the last few training images held out."""
    n = args.num_validation_images
    if n < 1:
        raise ValueError(f"`--num_validation_images` must be >= 1 with `--validation_steps`, got {n}.")
    if args.validation_data_dir:
        return records, load_hr_images(train_data_dir=args.validation_data_dir, cache_dir=args.cache_dir)[:n]
    if len(records) <= n:
        raise ValueError(
            f"Holding out {n} validation images would leave no training image ({len(records)} in all); pass "
            "`--validation_data_dir` or lower `--num_validation_images`."
        )
    return records[:-n], records[-n:]


def _validation_pair(record: ImageRecord, scale: int, crop: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """uint8 (1, 3, H, W) HR, center-cropped to at most `crop`, and its MATLAB-bicubic LR."""
    with record.open() as image:
        hr = _to_rgb_uint8(image)
    if crop:
        crop = crop - crop % scale
        height, width = hr.shape[-2:]
        top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
        hr = hr[:, top : top + crop, left : left + crop]
    hr, lr = make_lr(hr, scale)
    return hr[None], lr[None]


def _to_uint8(image01: torch.Tensor) -> torch.Tensor:
    return (image01.clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def run_validation(args, accelerator, trained, encoder, ema, records, step: int) -> Dict[str, float]:
    r"""
    Super-resolves the validation images with the current model `trained` (unwrapped; the EMA weights when kept)
    and logs the mean PSNR and LR-PSNR of the model and of bicubic, and the images, to the trackers. Main process
    only.
    """
    from ..pipelines.pipeline_srdiff import SRDiffPipeline, default_scheduler

    scale = args.upscale_factor
    if ema is not None:
        ema.store(trained.parameters())
        ema.copy_to(trained.parameters())
    was_training = trained.training
    trained.eval()
    try:
        if args.stage == "diffusion":
            pipeline = SRDiffPipeline(unet=trained, encoder=encoder, scheduler=default_scheduler())
            pipeline.set_progress_bar_config(disable=True)
        scores = {"psnr": [], "lr_psnr": [], "bicubic_psnr": [], "bicubic_lr_psnr": []}
        images = []
        for index, record in enumerate(records):
            hr, lr = _validation_pair(record, scale, args.validation_crop)
            lr01 = lr.float().to(accelerator.device) / 255
            bicubic = _to_uint8(imresize(lr01, scale=scale)).cpu()
            if args.stage == "rrdb":
                sr01 = (trained(lr01 * 2 - 1, return_dict=False)[0] + 1) / 2
            else:
                generator = torch.Generator(device="cpu").manual_seed(args.seed + index)
                sr01 = pipeline(
                    lr01, num_inference_steps=args.validation_inference_steps, generator=generator, output_type="pt"
                ).images
            sr = _to_uint8(sr01.float()).cpu()
            scores["psnr"].append(float(psnr_torch(sr, hr)[0]))
            scores["lr_psnr"].append(float(lr_psnr_torch(sr, lr, scale)[0]))
            scores["bicubic_psnr"].append(float(psnr_torch(bicubic, hr)[0]))
            scores["bicubic_lr_psnr"].append(float(lr_psnr_torch(bicubic, lr, scale)[0]))
            images.append(torch.cat([bicubic, sr, hr], dim=-1)[0])  # bicubic | model | HR
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
    return metrics
