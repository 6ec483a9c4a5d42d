# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
LPIPS (Zhang et al., 2018) with the AlexNet backbone, as in the SRDiff paper, through the optional `lpips` package
(`pip install "srdiff-diffusers[lpips]"`; it needs torchvision, whose AlexNet weights are downloaded on first use).

LPIPS is never faked: when the package, torchvision or the weights are missing, [`LPIPSScorer`] records why, and
reports print "LPIPS unavailable: <reason>" where the number would be.
"""

from typing import Optional, Union

import torch

from ..image_processor import SRDiffImageProcessor


UNAVAILABLE_PREFIX = "LPIPS unavailable: "


class LPIPSScorer:
    r"""
    Lazily loads `lpips.LPIPS(net="alex")` and scores uint8 image batches; when it cannot be loaded, `available` is
    `False` and `unavailable_text` says why.

    Args:
        device (`str` or `torch.device`, *optional*, defaults to `"cpu"`): Where the network runs.
        enabled (`bool`, *optional*, defaults to `True`): `False` skips LPIPS on purpose (e.g. for fast runs); the
            reason then reads "disabled".
        net (`str`, *optional*, defaults to `"alex"`): The `lpips` backbone; the paper uses AlexNet.

    Example:

    ```py
    >>> scorer = LPIPSScorer()
    >>> scorer.available or scorer.unavailable_text.startswith("LPIPS unavailable: ")
    True
    ```
    """

    def __init__(self, device: Union[str, torch.device] = "cpu", enabled: bool = True, net: str = "alex"):
        self.device = torch.device(device)
        self.net = net
        self._model = None
        self._reason: Optional[str] = None if enabled else "disabled (--no-lpips)"
        self._loaded = not enabled

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            import lpips
        except ImportError as error:
            self._reason = (
                f"the `lpips` package cannot be imported ({error}); install it with "
                "`pip install \"srdiff-diffusers[lpips]\"` (it also needs torchvision)"
            )
            return
        try:
            # Builds AlexNet from torchvision (weights downloaded on first use) plus lpips' bundled linear layers.
            model = lpips.LPIPS(net=self.net, verbose=False)
        except Exception as error:  # any failure to build it (no network, no torchvision, corrupt file) is reported
            self._reason = (
                f"could not load the {self.net} LPIPS network and its weights ({type(error).__name__}: {error})"
            )
            return
        self._model = model.eval().to(self.device)
        for parameter in self._model.parameters():
            parameter.requires_grad_(False)

    @property
    def available(self) -> bool:
        self._load()
        return self._model is not None

    @property
    def reason(self) -> Optional[str]:
        """Why LPIPS is unavailable, or `None` when it is available."""
        self._load()
        return self._reason

    @property
    def unavailable_text(self) -> Optional[str]:
        """ "LPIPS unavailable: <reason>", or `None` when LPIPS is available."""
        reason = self.reason
        return None if reason is None else UNAVAILABLE_PREFIX + reason

    @torch.no_grad()
    def __call__(self, prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """
        LPIPS distances of a batch.

        Args:
            prediction (`torch.Tensor`): `(N, 3, H, W)` uint8 (or float on the 0-255 scale).
            reference (`torch.Tensor`): The ground truth, same shape.

        Returns:
            `torch.Tensor`: `(N,)` float64 distances (lower is better).
        """
        if not self.available:
            raise RuntimeError(self.unavailable_text)
        if prediction.shape != reference.shape:
            raise ValueError(f"Shapes differ: {tuple(prediction.shape)} vs {tuple(reference.shape)}.")
        # lpips takes RGB in [-1, 1].
        processor = SRDiffImageProcessor
        to_input = lambda image: processor.normalize(processor.uint8_to_float(image.to(self.device)))  # noqa: E731
        distance = self._model(to_input(prediction), to_input(reference))
        return distance.flatten().double().cpu()
