# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Pulls an SR image's low frequencies to its LR image (iterative back-projection with MATLAB bicubic)."""


import torch

from ..matlab_resize import imresize
from ..argument_checks import is_int


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
    for name, tensor in (("image", image), ("low_res", low_res)):
        if not torch.is_tensor(tensor) or not tensor.is_floating_point() or tensor.ndim != 4:
            what = f"{tensor.dtype} tensor of {tensor.ndim} dims" if torch.is_tensor(tensor) else type(tensor).__name__
            raise TypeError(
                f"`{name}` must be a float tensor (N, C, H, W) in [0, 1] or [-1, 1], got a {what}; convert uint8 "
                "data with `.float() / 255` (integer arithmetic would wrap around)."
            )
    if not is_int(scale) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    if not is_int(iterations) or iterations < 1:
        raise ValueError(f"`iterations` must be a positive integer (back-projection steps), got {iterations!r}.")
    if low_res.shape[0] not in (1, image.shape[0]) or low_res.shape[1] != image.shape[1]:
        raise ValueError(
            f"`low_res` {tuple(low_res.shape)} must have one image or one per SR image and the channels of `image` "
            f"{tuple(image.shape)}."
        )
    if image.shape[-2:] != (low_res.shape[-2] * scale, low_res.shape[-1] * scale):
        raise ValueError(
            f"The SR image is {tuple(image.shape[-2:])} but the LR image {tuple(low_res.shape[-2:])} x{scale} is "
            f"{(low_res.shape[-2] * scale, low_res.shape[-1] * scale)}; pass the LR image the SR image was made from."
        )
    low_res = low_res.to(image.device, image.dtype)
    for _ in range(iterations):
        image = image + imresize(low_res - imresize(image, scale=1 / scale), scale=scale)
    return image
