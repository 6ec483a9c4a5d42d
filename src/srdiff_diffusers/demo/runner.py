# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
What the web demo runs, without Gradio: the models (loaded on first use, then kept), the time estimate, and one
upscale with progress and cancel between steps. `app.py` puts a page around it.
"""

import atexit
import contextlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch

from ..loading import load_pipeline, set_scheduler, to_pil
from ..seeds import sample_generators
from ..matlab_resize import imresize
from ..image_processor import SRDiffImageProcessor
from ..io import save_png
from .uploads import Upload

# The LR side of the calibration runs: as cheap as possible while the per-pixel costs stay those of photos
# (measured with the shipped model: within 10% of a 128x128 image's from 64x64, 30% off from 32x32).
_CALIBRATION_SIDE = 64
# Downloads older than this are deleted, so a long-running Space does not fill its disk.
_KEEP_DOWNLOADS_S = 3600


class Cancelled(Exception):
    """Raised by the step callback when the visitor pressed Cancel: the pipeline stops between two steps."""

    def __init__(self, step: int, total: int):
        super().__init__(f"cancelled after step {step} of {total}")
        self.step, self.total = step, total


@dataclass
class Result:
    """One demo run: what the page shows (8-bit) and the PNG to download (16-bit for 16-bit inputs)."""

    before: PIL.Image.Image  # MATLAB-bicubic upscale of the input, what SRDiff starts from
    after: PIL.Image.Image  # the first sample, or the mean of the samples
    samples: List[PIL.Image.Image]
    png: Path
    seconds: float


class DemoModels:
    """
    The demo's models by label, each loaded on first use with `srdiff upscale`'s loader and then kept, with their
    measured costs per HR pixel (once per image, and per step and sample) for the time estimate.

    Args:
        models (`Dict[str, str]`): Label shown in the page -> a shipped model's name, a folder or a Hub id.
        device (`str`, *optional*, defaults to `"cpu"`): Where the networks run.
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): Precision of the networks.
        prepare (`Callable`, *optional*): Called on each pipeline once loaded (e.g. to compile its U-Net).
    """

    def __init__(
        self,
        models: Dict[str, str],
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        prepare: Optional[Callable] = None,
    ):
        if not models:
            raise ValueError("the demo needs at least one model (a shipped model's name, a folder or a Hub id)")
        self.models = dict(models)
        self.device, self.dtype, self.prepare = device, dtype, prepare
        self._pipelines = {}
        self._costs: Dict[str, Tuple[float, float]] = {}  # label -> seconds per HR pixel: (once, per step)
        self._lock = threading.Lock()
        self.output_dir = Path(tempfile.mkdtemp(prefix="srdiff-demo-"))
        atexit.register(shutil.rmtree, self.output_dir, ignore_errors=True)

    def check_label(self, label) -> str:
        if label not in self.models:
            raise ValueError(f"unknown model {label!r}; this demo serves {', '.join(map(repr, self.models))}")
        return label

    def pipeline(self, label: str):
        """The loaded pipeline for `label` (loaded and calibrated on the first call; concurrent calls wait)."""
        self.check_label(label)
        with self._lock:
            if label not in self._pipelines:
                pipe = load_pipeline(self.models[label], self.dtype).to(self.device)
                if self.prepare is not None:
                    self.prepare(pipe)
                self._costs[label] = self._calibrate(pipe)
                self._pipelines[label] = pipe
            return self._pipelines[label]

    def run_pipeline(self, label: str, sampler: str):
        """
        A pipeline sharing `label`'s networks with its own scheduler: a scheduler keeps the state of one run, and
        with `--concurrency` above 1 several runs share the networks at once.
        """
        return _with_own_scheduler(self.pipeline(label), sampler)

    def _calibrate(self, base) -> Tuple[float, float]:
        """
        Seconds per HR pixel spent once per image (encoder, bicubic, output) and per step and sample, from a 1-step
        and a 3-step DDIM run on a small gray image: their difference is two steps.
        """
        pipe = _with_own_scheduler(base, "ddim")
        image = PIL.Image.new("RGB", (_CALIBRATION_SIDE, _CALIBRATION_SIDE), (128, 128, 128))
        pipe(image, num_inference_steps=1, output_type="np")  # the first call allocates and picks kernels
        seconds = []
        for steps in (1, 3):
            start = time.perf_counter()
            pipe(image, num_inference_steps=steps, output_type="np")
            seconds.append(time.perf_counter() - start)
        hr_pixels = (_CALIBRATION_SIDE * base.upscale_factor) ** 2
        per_step = max(seconds[1] - seconds[0], 0.0) / 2
        return max(seconds[0] - per_step, 0.0) / hr_pixels, per_step / hr_pixels

    def estimate(self, label: str, width: int, height: int, steps: int, samples: int) -> float:
        """Seconds an upscale of a `width`x`height` LR image is expected to take (loads the model if needed)."""
        pipe = self.pipeline(label)
        once, per_step = self._costs[label]
        return width * height * pipe.upscale_factor**2 * (once + per_step * steps * samples)

    def upscale(
        self,
        label: str,
        upload: Upload,
        stem: str,
        sampler: str,
        steps: int,
        seed: int,
        num_samples: int,
        tile_size: Union[int, str, None],
        lr_consistency: bool,
        show_mean: bool,
        temperature: float,
        on_step: Callable[[int, int], None],
        cancel: threading.Event,
    ) -> Result:
        """
        Super-resolves `upload`. `on_step(done, total)` is called after each step; setting `cancel` stops the run
        at the next step with [`Cancelled`]. Sample k uses `torch.Generator().manual_seed(seed + k)`, as
        `srdiff upscale --seed` does, so a result can be reproduced from the command line.
        """
        pipe = self.run_pipeline(label, sampler)
        scale = pipe.upscale_factor

        def step_end(pipe, step, timestep, callback_kwargs):
            if cancel.is_set():
                raise Cancelled(step + 1, steps)
            on_step(step + 1, steps)
            return callback_kwargs

        start = time.perf_counter()
        outputs = pipe(
            upload.image,
            num_inference_steps=steps,
            generator=sample_generators(seed, num_samples),
            num_images_per_prompt=num_samples,
            output_type="np" if upload.sixteen_bit else "pil",
            tile_size=tile_size,
            lr_consistency=lr_consistency,
            temperature=temperature,
            callback_on_step_end=step_end,
        ).images
        seconds = time.perf_counter() - start
        # Rescale the costs to this run's: the machine's load (other visitors, other programs) changes them.
        expected = self.estimate(label, upload.width, upload.height, steps, num_samples)
        if expected > 0:
            self._costs[label] = tuple(cost * seconds / expected for cost in self._costs[label])

        samples = [to_pil(output) for output in outputs]
        with_mean = show_mean and num_samples > 1
        after = mean_image(samples) if with_mean else samples[0]
        png = self._download_path(f"{stem}_x{scale}{'_mean' if with_mean else ''}.png")
        save_png(after, png)
        return Result(
            before=display(bicubic(upload.image, scale)),
            after=display(after),
            samples=[display(sample) for sample in samples],
            png=png,
            seconds=seconds,
        )

    def _download_path(self, name: str) -> Path:
        """A new folder per run (two visitors may upload files of one name), after deleting old ones."""
        now = time.time()
        for old in self.output_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):  # another run may be deleting it too
                if now - old.stat().st_mtime > _KEEP_DOWNLOADS_S:
                    shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.output_dir)) / name


def _with_own_scheduler(base, sampler: str):
    """`base`'s networks and settings with a new scheduler for `sampler` (diffusers' `from_pipe` would also cast the
    shared networks to float32)."""
    settings = {key: value for key, value in base.config.items() if key not in base.components and key[0] != "_"}
    scheduler = type(base.scheduler).from_config(base.scheduler.config)
    pipe = type(base)(**{**base.components, "scheduler": scheduler}, **settings)
    set_scheduler(pipe, sampler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def mean_image(samples: List[PIL.Image.Image]) -> PIL.Image.Image:
    """The per-pixel mean of samples of one mode (8- or 16-bit): the posterior-mean estimate (smoother, higher PSNR)."""
    arrays = [np.asarray(sample) for sample in samples]
    mean = np.mean(np.stack(arrays).astype(np.float64), axis=0)
    return PIL.Image.fromarray(np.round(mean).astype(arrays[0].dtype))


def bicubic(image: Union[PIL.Image.Image, np.ndarray], scale: int) -> PIL.Image.Image:
    """The MATLAB-bicubic upscale of an input image (as the pipeline computes up(LR)), in the mode of its result."""
    array = np.asarray(image)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    if tensor.dtype != torch.uint8:  # floats in [0, 1]: 16-bit gray, or a mode "F" image
        return to_pil(imresize(tensor.float(), scale=scale).clamp(0, 1).permute(1, 2, 0).numpy())
    upscaled = imresize(tensor, scale=scale).permute(1, 2, 0).numpy()
    return PIL.Image.fromarray(upscaled[:, :, 0] if upscaled.shape[2] == 1 else upscaled)


def display(image: PIL.Image.Image) -> PIL.Image.Image:
    """An image a browser shows as it is: 16-bit gray rounded to 8-bit (browsers and Gradio's previews take 8 bits)."""
    if image.mode in ("I;16", "I"):
        return SRDiffImageProcessor.to_rgb8(image)
    return image
