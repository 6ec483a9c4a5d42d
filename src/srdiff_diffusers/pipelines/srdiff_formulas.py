# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The SRDiff formulas shared by sampling ([`SRDiffPipeline`]) and training (`training.trainer.diffusion_loss`), so that
a model samples with exactly the residual it was trained on. Images are in [0, 1]; up(LR) and the residual in
[-1, 1].

- up(LR) = MATLAB-bicubic upscaling of `LR * 255 / divisor` (the LR image from its uint8 values / divisor);
- the diffused signal x0 = clamp((HR - up(LR)) * rescale, -1, 1) (HR and up(LR) in [-1, 1]);
- back: HR = clamp(x0, -1, 1) / rescale + up(LR).
"""

from dataclasses import dataclass

import torch

from ..matlab_resize import imresize
from ..image_processor import SRDiffImageProcessor


@dataclass(frozen=True)
class SRDiffFormulas:
    r"""
    Args:
        upscale_factor (`int`): The SR scale s.
        residual_rescale (`float`, *optional*, defaults to 2.0): The residual's rescale (the paper's 2).
        lr_upscale_divisor (`float`, *optional*, defaults to 255.0): up(LR) is made from `uint8 / divisor` (255 is
            exact; the authors' data code used 256).
    """

    upscale_factor: int
    residual_rescale: float = 2.0
    lr_upscale_divisor: float = 255.0

    def upscale_lr(self, lr01: torch.Tensor) -> torch.Tensor:
        """up(LR): MATLAB-bicubic upscaling of an LR batch in [0, 1], returned in [-1, 1]."""
        lr01 = lr01 * (255.0 / self.lr_upscale_divisor)
        return SRDiffImageProcessor.normalize(imresize(lr01, scale=self.upscale_factor))

    def residual_from_image(self, hr01: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The diffused signal of an HR image in [0, 1]: `x0 = clamp((HR - up(LR)) * rescale, -1, 1)`."""
        residual = SRDiffImageProcessor.normalize(hr01.to(lr01.device)) - self.upscale_lr(lr01)
        return (residual * self.residual_rescale).clamp(-1, 1)

    def image_from_residual(self, x0: torch.Tensor, lr01: torch.Tensor) -> torch.Tensor:
        """The HR image in [-1, 1], unclamped, of a denoised residual: `clamp(x0, -1, 1) / rescale + up(LR)`."""
        return x0.clamp(-1, 1) / self.residual_rescale + self.upscale_lr(lr01.to(x0.device))
