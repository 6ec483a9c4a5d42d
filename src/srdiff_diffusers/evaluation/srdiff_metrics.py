# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The SRDiff paper's metrics as a Hugging Face `evaluate` module (works offline: it is a local file).

```py
>>> import evaluate
>>> from srdiff_diffusers.evaluation import METRIC_SCRIPT

>>> metric = evaluate.load(METRIC_SCRIPT)  # or: from srdiff_diffusers.evaluation import SRMetrics; SRMetrics()
>>> metric.compute(predictions=sr_images, references=hr_images, scale=4, low_res=lr_images)
{'psnr': ..., 'ssim': ..., 'psnr_y': ..., 'ssim_y': ..., 'lr_psnr': ...}
```
"""

import datasets
import evaluate
import numpy as np

from srdiff_diffusers.evaluation.loop import to_uint8_rgb
from srdiff_diffusers.evaluation.metrics import lr_psnr, psnr, ssim
from srdiff_diffusers.evaluation.perceptual import LPIPSScorer
from srdiff_diffusers.image_processor import SRDiffImageProcessor


_DESCRIPTION = """
Full-reference super-resolution metrics as in SRDiff (Li et al., 2021): PSNR and SSIM in the paper's convention
(RGB, uint8, whole image, scikit-image defaults) and in the SR literature's (BT.601 luma, `scale`-pixel border
cropped, Gaussian-window SSIM), LR-PSNR (the SR image downscaled with MATLAB bicubic against the LR input) and,
optionally, LPIPS (AlexNet; needs the `lpips` package and its weights).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: SR images (PIL images or HxW / HxWxC uint8 arrays; gray and RGBA are read as RGB).
    references: HR ground truths, the same sizes.
    scale (`int`): the SR factor (Y-convention border crop and LR-PSNR).
    low_res (`list`, *optional*): LR inputs; adds `lr_psnr`.
    lpips (`bool`, *optional*, defaults to `False`): add `lpips`, a number or "LPIPS unavailable: <reason>".
Returns:
    A dict of means over the images: `psnr`, `ssim`, `psnr_y`, `ssim_y` (and `lr_psnr`, `lpips`). PSNR is `inf`
    when images are identical.
"""

_CITATION = """
@article{li2022srdiff,
  title={SRDiff: Single image super-resolution with diffusion probabilistic models},
  author={Li, Haoying and Yang, Yifan and Chang, Meng and Chen, Shiqi and Feng, Huajun and Xu, Zhihai and Li, Qi and
          Chen, Yueting},
  journal={Neurocomputing},
  volume={479},
  pages={47--59},
  year={2022}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SRMetrics(evaluate.Metric):
    """PSNR / SSIM (two conventions), LR-PSNR and LPIPS of SR images against their ground truths."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Images are stored losslessly (PNG) in the module's Arrow cache and come back as PIL images.
            features=datasets.Features({"predictions": datasets.Image(), "references": datasets.Image()}),
        )

    def _compute(self, predictions, references, scale=None, low_res=None, lpips=False):
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"Pass the SR factor: `compute(..., scale=4)`; got scale={scale!r}.")
        if low_res is not None and len(low_res) != len(predictions):
            raise ValueError(f"Got {len(low_res)} LR images for {len(predictions)} predictions.")
        results = {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": [], "lr_psnr": []}
        pairs = []
        for index, (prediction, reference) in enumerate(zip(predictions, references)):
            prediction = to_uint8_rgb(prediction, f"prediction {index}")
            reference = to_uint8_rgb(reference, f"reference {index}")
            pairs.append((prediction, reference))
            results["psnr"].append(psnr(prediction, reference, "paper"))
            results["ssim"].append(ssim(prediction, reference, "paper"))
            results["psnr_y"].append(psnr(prediction, reference, "y", scale))
            results["ssim_y"].append(ssim(prediction, reference, "y", scale))
            if low_res is not None:
                results["lr_psnr"].append(lr_psnr(prediction, to_uint8_rgb(low_res[index], f"low_res {index}"), scale))
        output = {name: float(np.mean(values)) for name, values in results.items() if values}
        if lpips:
            import torch

            scorer = LPIPSScorer()
            if scorer.available:
                to_batch = SRDiffImageProcessor.numpy_to_pt
                output["lpips"] = float(np.mean([float(scorer(to_batch(p), to_batch(r))[0]) for p, r in pairs]))
            else:
                output["lpips"] = scorer.unavailable_text
        return output
