# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Pulls an SR image's low frequencies to its LR image (iterative back-projection with MATLAB bicubic)."""

import torch

from ..image_processing import imresize


def lr_consistency(image: torch.Tensor, low_res: torch.Tensor, scale: int, iterations: int = 1) -> torch.Tensor:
    r"""
    Corrects colour shifts and other low-frequency drift of an SR image: `image + up(low_res - down(image))`,
    repeated `iterations` times, with `down`/`up` MATLAB's bicubic `imresize` (the degradation that made the
    benchmark LR images). Afterwards `down(image)` is close to `low_res` (bicubic `down(up(x))` is not exactly `x`,
    so each iteration removes most, not all, of the remaining LR error); the high frequencies are kept.

    Both tensors must use the same value range ([0, 1] or [-1, 1]); the result is not clamped.

    Args:
        image (`torch.Tensor` of shape `(N, C, H * scale, W * scale)`): The SR images.
        low_res (`torch.Tensor` of shape `(1 or N, C, H, W)`): Their LR image(s).
        scale (`int`): The SR factor.
        iterations (`int`, *optional*, defaults to 1): Back-projection steps.
    """
    if image.shape[-2:] != (low_res.shape[-2] * scale, low_res.shape[-1] * scale):
        raise ValueError(
            f"The SR image is {tuple(image.shape[-2:])} but the LR image {tuple(low_res.shape[-2:])} x{scale} is "
            f"{(low_res.shape[-2] * scale, low_res.shape[-1] * scale)}; pass the LR image the SR image was made from."
        )
    low_res = low_res.to(image.device, image.dtype)
    for _ in range(iterations):
        image = image + imresize(low_res - imresize(image, scale=1 / scale), scale=scale)
    return image
