# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Guards for sampling in reduced precision (bfloat16 / float16)."""

from typing import Optional

import torch


class NonFiniteGuard:
    r"""
    Watches the noise predictions of a sampling loop for NaN or infinity and raises a `FloatingPointError` that says
    what to do, instead of returning a silently broken image.

    A float16 U-Net can overflow (its largest value is 65504), and a NaN anywhere makes the whole image NaN. An
    infinite prediction can even go unnoticed: the scheduler clips the predicted `x0` to [-1, 1], so the image would
    look plausible but be wrong. Checking the prediction itself catches both.

    On the CPU every step is checked as it comes (a check costs one reduction and no device synchronisation). On an
    accelerator, reading the result back every step would stall the loop, so the flags are combined on the device
    and read once, by [`~NonFiniteGuard.check`], after the loop.

    Args:
        dtype (`torch.dtype`): The U-Net's dtype, named in the error message.
        device (`torch.device` or `str`): Where the predictions live.
    """

    def __init__(self, dtype: torch.dtype, device):
        self.dtype = dtype
        self.check_every_step = torch.device(device).type == "cpu"
        self._all_finite: Optional[torch.Tensor] = None

    def update(self, noise_pred: torch.Tensor, step: int, timestep) -> None:
        """Records (or, on the CPU, checks at once) the prediction of step `step` (0-based), timestep `timestep`."""
        finite = torch.isfinite(noise_pred).all()
        if self.check_every_step:
            if not finite:
                raise self._error(f" at step {step} (timestep {int(timestep)})")
        else:
            self._all_finite = finite if self._all_finite is None else self._all_finite & finite

    def check(self) -> None:
        """Raises if any prediction recorded by [`~NonFiniteGuard.update`] was not finite (one device sync)."""
        if self._all_finite is not None and not bool(self._all_finite):
            raise self._error("")

    def _error(self, where: str) -> FloatingPointError:
        if self.dtype in (torch.float16, torch.bfloat16):
            advice = (
                f"The U-Net runs in {self.dtype}, whose range or precision may be too small for these weights or this "
                "input; run it in float32 (`pipe.to(dtype=torch.float32)`), or use bfloat16 instead of float16, "
                "which has the range of float32."
            )
        else:
            advice = "Check the weights (e.g. a diverged training run) and that the input image is finite."
        return FloatingPointError(f"The noise predictor returned NaN or infinite values{where}. {advice}")
