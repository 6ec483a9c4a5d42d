# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
The web demo's page: `build_demo(models) -> gr.Blocks`, served by `srdiff demo` and by the Hugging Face Space in
`space/`. Its `upscale` event is also an API endpoint (`gradio_client.Client(url).predict(..., api_name="/upscale")`).

The image reaches the handlers unprocessed (`preprocess=False`, the uploaded file's path): Gradio's own decoding
would answer a corrupt file or a decompression bomb with a bare "Error", and turn 16-bit gray into clipped 8-bit.
"""

import html
import math
import re
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Optional, Set

import gradio as gr
import torch

from ..loading import SCHEDULERS, StoredDefaults, load_sample
from ..pretrained import DEFAULT_MODEL_NAME, SHIPPED_MODELS
from ..io import save_png
from .runner import Cancelled, DemoModels
from .uploads import read_upload

# 768x768 LR pixels: the one-step default model takes about as long for it on 2 CPU cores as 20 DDIM steps of its
# teacher took for the former limit of 256x256 (docs/demo.md), so that one visitor does not hold a CPU Space for
# minutes; a GPU server can take far more (`--max-pixels`).
DEFAULT_MAX_PIXELS = 768 * 768
# Uploads over this are refused by Gradio before they reach the server's disk.
MAX_FILE_SIZE = "25mb"
# The bundled examples: scikit-image photos (no download), downscaled 4x so a CPU run takes seconds.
EXAMPLES = ("astronaut", "coffee", "chelsea")
EXAMPLE_DOWNSCALE = 4
SAMPLER_LABELS = {"ddpm": "DDPM (the paper's)", "ddim": "DDIM", "dpm": "DPM-Solver++", "unipc": "UniPC"}

NO_IMAGE_YET = "Upload an image or click an example; the expected time shows here."
INTRO = """# SRDiff: diffusion super-resolution
Upload a small photo (or click an example) and press **Upscale**. The slider compares the bicubic upscale that
SRDiff starts from (left) with SRDiff's result (right). SRDiff draws one of many plausible high-resolution
images: another seed gives another one.
"""


def shipped_models() -> Dict[str, str]:
    """Label -> model for every model shipped with the package, the default one first."""
    names = sorted(SHIPPED_MODELS, key=lambda name: name != DEFAULT_MODEL_NAME)
    return {name: name for name in names}


def example_images(folder: Optional[Path] = None) -> List[str]:
    """The bundled examples as PNG files (written once to `folder`, by default in the temp folder Gradio serves)."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        print("srdiff demo: no examples (they come from scikit-image: pip install scikit-image)")
        return []
    folder = Path(folder or Path(tempfile.gettempdir()) / "srdiff-demo-examples")
    paths = [folder / f"{name}_lr.png" for name in EXAMPLES]
    try:
        for name, path in zip(EXAMPLES, paths):
            if not path.is_file():
                save_png(load_sample(name, EXAMPLE_DOWNSCALE)[1], path)  # atomic: two servers may start at once
    except OSError as error:
        print(f"srdiff demo: no examples (could not write them to {folder}: {error})")
        return []
    return [str(path) for path in paths]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _refuse(message: str, title: str = "Error") -> gr.Error:
    """A message for the page; the server log does not need a traceback for each visitor's mistake."""
    return gr.Error(message, title=title, print_exception=False)


def _about(seconds: float) -> str:
    return f"about {max(seconds, 1):.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def _finite(value) -> Optional[float]:
    """A form or API value (a number or its text) as a finite number, or None if it is not one."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _whole(value, what: str, low: int, high: Optional[int] = None) -> int:
    """A whole number in [low, high] from a form or API value, or a `gr.Error` that says what is wrong."""
    number = _finite(value)
    if number is None:
        raise _refuse(f"{what} must be a whole number, got {value!r}.")
    if number != int(number) or number < low or (high is not None and number > high):
        limits = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise _refuse(f"{what} must be a whole number {limits}, got {value!r}.")
    return int(number)


def _tile_size(value):
    """The tile-size field: "auto", "none" or a number of LR pixels."""
    text = str(value).strip().lower()
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    return _whole(value, "Tile size (LR pixels; or auto, none)", 1)


def _temperature(value) -> float:
    """The sampling temperature from a form or API value: a number >= 0 (1 = the model's own samples)."""
    number = _finite(value)
    if number is None or number < 0:
        raise _refuse(f"Temperature must be a number of at least 0 (1: the model's own samples), got {value!r}.")
    return float(number)


def _checkbox(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(f"{what} must be true or false, got {value!r}.")
    return value


def _upload_file(payload):
    """The path and original name of an uploaded image from the raw payload of a `gr.Image`."""
    if payload is None:
        raise _refuse("Upload an image first (or click one of the examples).")
    path = payload.get("path") if isinstance(payload, dict) else None
    if not path:
        raise _refuse("The image did not arrive as a file; upload it again.")
    # Gradio renders error messages as HTML: a file name must not become markup.
    return path, html.escape(payload.get("orig_name") or Path(path).name, quote=False)


def _file_stem(name: str) -> str:
    """The upload's name without its suffix, made safe for the download's file name."""
    return re.sub(r"[^\w.-]", "_", Path(name).stem)[:64] or "image"


def _defaults(models: Dict[str, str], label) -> StoredDefaults:
    """The sampling `srdiff upscale` uses for a model by default: its stored defaults, else DDIM 10 at 1."""
    return StoredDefaults(*StoredDefaults.of_folder(models.get(label)).resolve())


def build_demo(
    models: Optional[Dict[str, str]] = None,
    *,
    device: Optional[str] = None,
    dtype: torch.dtype = torch.float32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_samples: int = 4,
    concurrency: int = 1,
    queue_size: int = 16,
    examples: bool = True,
    prepare_pipeline=None,
    preload: bool = False,
) -> gr.Blocks:
    """
    The demo page, queued.

    Args:
        models (`Dict[str, str]`, *optional*): Label -> a shipped model's name, a folder or a Hub id; the first is
            selected. Defaults to the shipped models. Each is loaded on first use, then kept.
        device (`str`, *optional*): `"cpu"` or `"cuda"`; defaults to cuda when available.
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): Precision of the networks.
        max_pixels (`int`, *optional*, defaults to 768 * 768): Largest input accepted, in LR pixels.
        max_samples (`int`, *optional*, defaults to 4): Most samples per request.
        concurrency (`int`, *optional*, defaults to 1): Upscales run at once; more requests wait in the queue.
        queue_size (`int`, *optional*, defaults to 16): Requests that may wait; more are refused ("queue full").
        examples (`bool`, *optional*, defaults to `True`): Offer the bundled example photos.
        prepare_pipeline (`Callable`, *optional*): Called on each pipeline once loaded (e.g. to compile it).
        preload (`bool`, *optional*, defaults to `False`): Load the first model now (a wrong one fails here), not
            on the first request.
    """
    for what, value in (("max_pixels", max_pixels), ("max_samples", max_samples), ("concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a positive int, got {value!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    demo_models = DemoModels(models or shipped_models(), device, dtype, prepare_pipeline)
    labels = list(demo_models.models)
    if preload:
        demo_models.pipeline(labels[0])
    # Cancel events of the runs in progress, by browser session (an API client may run several at once).
    runs: Dict[str, Set[threading.Event]] = {}
    runs_lock = threading.Lock()

    def read_settings(model, sampler, steps, samples):
        try:
            label = demo_models.check_label(model)
        except ValueError as error:
            raise _refuse(str(error)) from None
        if sampler not in SCHEDULERS:
            raise _refuse(f"Sampler must be one of {', '.join(SCHEDULERS)}, got {sampler!r}.")
        return label, _whole(steps, "Steps", 1), _whole(samples, "Samples", 1, max_samples)

    def upscale(
        image,
        model,
        sampler,
        steps,
        seed,
        samples,
        tile_size,
        lr_consistency,
        show_mean,
        temperature,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        # 1. the settings and the file, checked before any slow work
        label, steps, samples = read_settings(model, sampler, steps, samples)
        seed = _whole(seed, "Seed", 0, 2**63 - 1 - samples)
        tile_size = _tile_size(tile_size)
        lr_consistency = _checkbox(lr_consistency, "LR consistency")
        show_mean = _checkbox(show_mean, "Show the mean")
        temperature = _temperature(temperature)
        path, name = _upload_file(image)
        try:
            upload = read_upload(path, name, max_pixels)
            progress(0, desc="Preparing")
            trained_steps = demo_models.pipeline(label).scheduler.config.num_train_timesteps
            if steps > trained_steps:
                raise ValueError(f"Steps must be at most {trained_steps} (the model's training steps), got {steps}.")
            eta = demo_models.estimate(label, upload.width, upload.height, steps, samples)
        except (ValueError, TypeError, OSError) as error:
            raise _refuse(str(error)) from None

        # 2. denoise, reporting each step; Cancel sets the event and the next step stops
        progress(0, desc=f"Denoising, {_about(eta)}")
        cancel = threading.Event()
        with runs_lock:
            runs.setdefault(request.session_hash, set()).add(cancel)
        try:
            result = demo_models.upscale(
                label,
                upload,
                _file_stem(name),
                sampler,
                steps,
                seed,
                samples,
                tile_size,
                lr_consistency,
                show_mean,
                temperature,
                on_step=lambda done, total: progress((done, total), desc="Denoising", unit="steps"),
                cancel=cancel,
            )
        except Cancelled as error:
            raise _refuse(f"Cancelled after step {error.step} of {error.total}.", title="Cancelled") from None
        except (ValueError, TypeError, MemoryError, FloatingPointError) as error:
            raise _refuse(str(error)) from None
        finally:
            with runs_lock:
                runs[request.session_hash].discard(cancel)
                if not runs[request.session_hash]:
                    del runs[request.session_hash]

        # 3. the page: slider, samples (when several), download, and what was done
        lr_w, lr_h = upload.width, upload.height
        hr_w, hr_h = result.after.size
        what = f"the mean of {samples} samples" if show_mean and samples > 1 else _count(samples, "sample")
        done = f"**{lr_w}x{lr_h} -> {hr_w}x{hr_h}** in {result.seconds:.1f} s: {what}, {SAMPLER_LABELS[sampler]}"
        seeds = f"seed {seed}" if samples == 1 else f"seeds {seed} to {seed + samples - 1} (sample k: seed + k)"
        status = " ".join([f"{done}, {_count(steps, 'step')}, temperature {temperature:g}, {seeds}."] + upload.notes)
        gallery = gr.Gallery(value=result.samples if samples > 1 else None, visible=samples > 1)
        return (result.before, result.after), gallery, str(result.png), status

    def estimate(image, model, sampler, steps, samples):
        if image is None:
            return NO_IMAGE_YET
        try:
            label, steps, samples = read_settings(model, sampler, steps, samples)
            upload = read_upload(*_upload_file(image), max_pixels)
            seconds = demo_models.estimate(label, upload.width, upload.height, steps, samples)
        except gr.Error as error:
            return f"**{error.message}**"
        except (ValueError, TypeError, OSError) as error:
            return f"**{error}**"
        scale = demo_models.pipeline(label).upscale_factor
        return (
            f"{upload.width}x{upload.height} -> {upload.width * scale}x{upload.height * scale}: {_about(seconds)} on "
            f"this server ({_count(steps, 'step')}, {_count(samples, 'sample')})."
        )

    def cancel(request: gr.Request):
        with runs_lock:
            events = list(runs.get(request.session_hash, ()))
        for event in events:
            event.set()
        # Without a run in progress there may be one waiting in the queue, which Gradio's `cancels` drops.
        return "Cancelling at the end of this step..." if events else "Cancelled."

    with gr.Blocks(title="SRDiff super-resolution", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2):
                image = gr.Image(
                    label="Low-resolution image", type="filepath", image_mode=None, sources=["upload", "clipboard"]
                )
                if examples:
                    paths = example_images()
                    if paths:
                        gr.Examples([[path] for path in paths], inputs=[image], label="Examples (downscaled 4x)")
                model = gr.Dropdown(labels, value=labels[0], label="Model")
                first = _defaults(demo_models.models, labels[0])
                with gr.Row():
                    sampler = gr.Dropdown(
                        [(text, key) for key, text in SAMPLER_LABELS.items()], value=first.sampler, label="Sampler"
                    )
                    steps = gr.Slider(1, 100, value=first.steps, step=1, label="Steps")
                with gr.Accordion("More settings", open=False):
                    with gr.Row():
                        seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                        samples = gr.Slider(1, max_samples, value=1, step=1, label="Samples")
                    show_mean = gr.Checkbox(False, label="Show the per-pixel mean of the samples (smoother)")
                    temperature = gr.Slider(
                        0, 1.5, value=first.temperature, step=0.05, label="Temperature",
                        info="1: the model's own samples; lower: more faithful, less detailed",
                    )
                    with gr.Row():
                        tile_size = gr.Dropdown(
                            ["auto", "none", "64", "128", "256"],
                            value="auto",
                            allow_custom_value=True,
                            label="Tile size (LR pixels)",
                            info="auto: tiles of at most 256 for larger images",
                        )
                        lr_consistency = gr.Checkbox(
                            False, label="LR consistency", info="pull the colours to the input's"
                        )
                eta = gr.Markdown(NO_IMAGE_YET)
                with gr.Row():
                    run = gr.Button("Upscale", variant="primary")
                    stop = gr.Button("Cancel", variant="stop")
            with gr.Column(scale=3):
                slider = gr.ImageSlider(
                    label="Bicubic | SRDiff", type="pil", format="png", interactive=False, elem_id="result"
                )
                status = gr.Markdown(label="status")
                gallery = gr.Gallery(label="Samples", format="png", columns=4, visible=False, interactive=False)
                download = gr.File(label="Download the PNG", interactive=False)

        def model_defaults(label):
            defaults = _defaults(demo_models.models, label)
            return defaults.sampler, defaults.steps, defaults.temperature

        def sampler_steps(label, name):
            return StoredDefaults.of_folder(demo_models.models.get(label)).resolve(name)[1]

        model.change(model_defaults, model, [sampler, steps, temperature], queue=False, api_visibility="private")
        sampler.input(sampler_steps, [model, sampler], steps, queue=False, api_visibility="private")
        gr.on(
            [image.change, model.change, steps.change, samples.change],
            estimate,
            [image, model, sampler, steps, samples],
            eta,
            preprocess=False,
            show_progress="hidden",
            api_visibility="private",
            trigger_mode="always_last",
        )
        running = run.click(
            upscale,
            [image, model, sampler, steps, seed, samples, tile_size, lr_consistency, show_mean, temperature],
            [slider, gallery, download, status],
            api_name="upscale",
            preprocess=False,
            concurrency_limit=concurrency,
            concurrency_id="upscale",
        )
        stop.click(cancel, None, status, cancels=[running], api_name="cancel", concurrency_limit=None)
    return demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)


def launch(demo: gr.Blocks, **kwargs):
    """`demo.launch(**kwargs)` with the demo's upload size limit, and errors shown in the page."""
    return demo.launch(max_file_size=MAX_FILE_SIZE, show_error=True, **kwargs)
