"""One seed rule (srdiff_diffusers.seeds): the same seed and image give the same bytes in Python, the CLI and the demo."""

import threading

import numpy as np
import PIL.Image
import pytest
import torch

from srdiff_diffusers import SRDiffPipeline
from srdiff_diffusers.cli import main
from srdiff_diffusers.io import save_png

gradio = pytest.importorskip("gradio", reason="the demo needs the [demo] extra (gradio)")
from srdiff_diffusers.demo.runner import DemoModels  # noqa: E402
from srdiff_diffusers.demo.uploads import read_upload  # noqa: E402


@pytest.mark.parametrize("num_samples", [1, 2])
def test_python_the_cli_and_the_demo_give_the_same_bytes(model_dir, tmp_path, num_samples):
    path = tmp_path / "photo.png"
    PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(path)
    seed, steps = 5, 2

    # Python: sample k from torch.Generator().manual_seed(seed + k)
    pipe = SRDiffPipeline.from_pretrained(model_dir)
    pipe.scheduler = pipe.fast_scheduler("ddim")
    pipe.set_progress_bar_config(disable=True)
    generators = [torch.Generator().manual_seed(seed + k) for k in range(num_samples)]
    with PIL.Image.open(path) as image:
        python = pipe(image, num_inference_steps=steps, generator=generators, num_images_per_prompt=num_samples).images
    python_bytes = []
    for k, image in enumerate(python):
        save_png(image, tmp_path / f"python{k}.png")
        python_bytes.append((tmp_path / f"python{k}.png").read_bytes())
    assert num_samples == 1 or python_bytes[0] != python_bytes[1]  # the samples differ, so the check can fail

    # the CLI
    out = tmp_path / "cli"
    assert main(["upscale", str(path), "-o", str(out), "--model", model_dir, "--scheduler", "ddim", "--steps",
                 str(steps), "--seed", str(seed), "--num-samples", str(num_samples)]) == 0  # fmt: skip
    names = ["photo_x4.png"] if num_samples == 1 else [f"photo_x4_sample{k}.png" for k in range(num_samples)]
    assert [(out / name).read_bytes() for name in names] == python_bytes

    # the demo's runner (the page's download is the first sample when the mean is not asked for)
    models = DemoModels({"tiny": model_dir}, "cpu", torch.float32)
    result = models.upscale(
        "tiny", read_upload(path, "photo.png", 10**6), "photo", "ddim", steps, seed, num_samples, "auto", False,
        False, 1.0, on_step=lambda done, total: None, cancel=threading.Event(),
    )  # fmt: skip
    assert result.png.read_bytes() == python_bytes[0]
    for k, sample in enumerate(result.samples):
        np.testing.assert_array_equal(np.asarray(sample), np.asarray(python[k]))


def test_the_stored_defaults_are_what_python_the_cli_and_the_demo_use(tmp_path):
    """A model that stores DDIM, 2 steps and temperature 0.3: `pipe(image)`, `srdiff upscale` without sampling options
    and the demo's starting settings all sample with them (and agree to the byte)."""
    from srdiff_diffusers import fast_scheduler
    from srdiff_diffusers.demo.app import _defaults
    from srdiff_diffusers.pipelines.schedulers import default_scheduler

    from conftest import tiny_components

    unet, encoder = tiny_components()
    model = tmp_path / "model"
    SRDiffPipeline(
        unet=unet, encoder=encoder, scheduler=fast_scheduler(default_scheduler().config, "ddim"),
        default_num_inference_steps=2, default_temperature=0.3,
    ).save_pretrained(model)  # fmt: skip
    path = tmp_path / "photo.png"
    PIL.Image.fromarray(np.random.default_rng(2).integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(path)

    pipe = SRDiffPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    with PIL.Image.open(path) as image:
        python = pipe(image, generator=torch.Generator().manual_seed(5)).images[0]
        explicit = pipe(image, num_inference_steps=2, temperature=0.3, generator=torch.Generator().manual_seed(5))
        other = pipe(image, num_inference_steps=2, temperature=1.0, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(np.asarray(python), np.asarray(explicit.images[0]))
    assert not np.array_equal(np.asarray(python), np.asarray(other.images[0]))  # the temperature is really applied
    save_png(python, tmp_path / "python.png")

    assert main(["upscale", str(path), "-o", str(tmp_path / "cli"), "--model", str(model), "--seed", "5"]) == 0
    assert (tmp_path / "cli" / "photo_x4.png").read_bytes() == (tmp_path / "python.png").read_bytes()

    models = {"tiny": str(model)}
    defaults = _defaults(models, "tiny")
    assert (defaults.sampler, defaults.steps, defaults.temperature) == ("ddim", 2, 0.3)
    result = DemoModels(models, "cpu", torch.float32).upscale(
        "tiny", read_upload(path, "photo.png", 10**6), "photo", defaults.sampler, defaults.steps, 5, 1, "auto",
        False, False, defaults.temperature, on_step=lambda done, total: None, cancel=threading.Event(),
    )  # fmt: skip
    assert result.png.read_bytes() == (tmp_path / "python.png").read_bytes()


def test_the_seed_range_is_torchs():
    from srdiff_diffusers.seeds import MAX_SEED, sample_generators, sample_seeds

    torch.Generator().manual_seed(MAX_SEED)  # the largest seed torch takes ...
    with pytest.raises((ValueError, RuntimeError)):
        torch.Generator().manual_seed(MAX_SEED + 1)  # ... and one more it refuses
    assert len(sample_generators(MAX_SEED - 1, 2)) == 2
    for seed, count in [(MAX_SEED, 2), (-1, 1)]:
        with pytest.raises(ValueError, match="a seed must be a non-negative integer up to"):
            sample_seeds(seed, count)
