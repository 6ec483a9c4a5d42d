"""SRDiffPipeline: shapes, determinism, schedulers against a hand-written DDPM loop, input modes, errors, round trips."""

import json
import logging
import math
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.pipelines import ImagePipelineOutput
from safetensors.torch import load_file, save_file

from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, SRDiffUNet2DModel, imresize

from conftest import tiny_components, tiny_pipeline

STEPS = 2


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def lr_batch(n=1, height=6, width=5, seed=0) -> torch.Tensor:
    """LR images in [0, 1] on the uint8 grid, like decoded files."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, height, width), generator=g).float() / 255


def run(pipe, image, seed=0, **kwargs):
    kwargs.setdefault("num_inference_steps", STEPS)
    kwargs.setdefault("output_type", "pt")
    return pipe(image, generator=seeded(seed), **kwargs).images


def zero_residual(pipe, step, timestep, callback_kwargs):
    """Sets the latents to zero after the last step: the output is then exactly up(LR)."""
    if step == pipe.scheduler.timesteps.numel() - 1:
        return {"latents": torch.zeros_like(callback_kwargs["latents"])}
    return {}


# ---------------------------------------------------------------------------------------------------------------
# shapes, determinism, output forms
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_shapes(scale):
    pipe = tiny_pipeline(scale)
    images = run(pipe, lr_batch(2, 5, 3), output_type="np")
    assert images.shape == (2, 5 * scale, 3 * scale, 3)
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    pil = run(pipe, PIL.Image.new("RGB", (3, 5), (10, 200, 30)), output_type="pil")
    assert pil[0].size == (3 * scale, 5 * scale) and pil[0].mode == "RGB"


def test_determinism(pipe):
    lr = lr_batch()
    a, b, c = run(pipe, lr, seed=1), run(pipe, lr, seed=1), run(pipe, lr, seed=2)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_generator_list_equals_separate_calls(pipe):
    lr = lr_batch(2, seed=3)
    batched = pipe(lr, generator=[seeded(5), seeded(6)], num_inference_steps=STEPS, output_type="pt").images
    torch.testing.assert_close(batched[:1], run(pipe, lr[:1], seed=5), rtol=0, atol=1e-5)
    torch.testing.assert_close(batched[1:], run(pipe, lr[1:], seed=6), rtol=0, atol=1e-5)
    # one image, several samples: one generator per sample
    generators = [seeded(5), seeded(6)]
    samples = pipe(lr[:1], generator=generators, num_images_per_prompt=2, num_inference_steps=STEPS, output_type="pt")
    samples = samples.images
    torch.testing.assert_close(samples[1:], run(pipe, lr[:1], seed=6), rtol=0, atol=1e-5)
    assert (samples[0] - samples[1]).abs().max() > 1e-3  # SRDiff gives diverse samples


def test_dict_and_tuple_output(pipe):
    lr = lr_batch()
    out = pipe(lr, generator=seeded(0), num_inference_steps=STEPS, output_type="pt")
    assert isinstance(out, ImagePipelineOutput)
    tup = pipe(lr, generator=seeded(0), num_inference_steps=STEPS, output_type="pt", return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 1
    assert torch.equal(out.images, tup[0])


def test_output_types_agree(pipe):
    lr = lr_batch()
    raw = run(pipe, lr, output_type="raw")
    pt = run(pipe, lr, output_type="pt")
    np_ = run(pipe, lr, output_type="np")
    pil = run(pipe, lr, output_type="pil")
    torch.testing.assert_close(pt, ((raw + 1) / 2).clamp(0, 1))
    np.testing.assert_allclose(np_, pt.permute(0, 2, 3, 1).numpy(), atol=1e-7)
    np.testing.assert_array_equal(np.asarray(pil[0]), np.round(np_[0] * 255).astype(np.uint8))


def test_callback_is_called_every_step_and_can_change_latents(pipe):
    calls = []

    def record(p, step, timestep, kwargs):
        calls.append((step, int(timestep), tuple(kwargs["latents"].shape)))
        return {}

    lr = lr_batch(1, 4, 4)
    plain = run(pipe, lr, output_type="raw", num_inference_steps=3, callback_on_step_end=record)
    assert [c[0] for c in calls] == [0, 1, 2]
    assert [c[1] for c in calls] == pipe.scheduler.timesteps.tolist()
    assert calls[0][2] == (1, 3, 16, 16)
    zeroed = run(pipe, lr, output_type="raw", num_inference_steps=3, callback_on_step_end=zero_residual)
    torch.testing.assert_close(zeroed, imresize(lr, scale=4) * 2 - 1, rtol=0, atol=1e-6)
    assert (plain - zeroed).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------------------------
# schedulers
# ---------------------------------------------------------------------------------------------------------------


def reference_ddpm(unet, encoder, lr01: torch.Tensor, generator: torch.Generator, rescale: float = 2.0):
    """Algorithm 2 of the paper with the DDPM posterior written out: cosine betas (Nichol & Dhariwal), T = 100."""
    T = 100

    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)]
    betas = torch.tensor(betas, dtype=torch.float64)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    condition = encoder.encode(lr01 * 2 - 1)
    up = imresize(lr01.double(), scale=4) * 2 - 1
    x = torch.randn(up.shape, generator=generator, dtype=torch.float32).double()
    for t in reversed(range(T)):
        eps = unet(x.float(), t, condition).sample.double()
        abar_prev = abar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1, 1)
        mean = (abar_prev.sqrt() * betas[t] / (1 - abar[t])) * x0 + (
            alphas[t].sqrt() * (1 - abar_prev) / (1 - abar[t])
        ) * x
        if t > 0:
            variance = betas[t] * (1 - abar_prev) / (1 - abar[t])
            x = mean + variance.sqrt() * torch.randn(x.shape, generator=generator, dtype=torch.float32).double()
        else:
            x = mean
    return x.clamp(-1, 1) / rescale + up


def test_default_ddpm_matches_hand_written_sampler():
    unet, encoder = tiny_components(4)
    pipe = SRDiffPipeline(unet=unet, encoder=encoder)
    pipe.set_progress_bar_config(disable=True)
    lr = lr_batch(1, 4, 4, seed=7)  # HR 16x16: no padding, so both loops see the same image
    with torch.no_grad():
        ours = pipe(lr, generator=seeded(1234), num_inference_steps=100, output_type="raw", tile_size=None).images
        reference = reference_ddpm(unet, encoder, lr, seeded(1234))
    assert ours.shape == reference.shape == (1, 3, 16, 16)
    torch.testing.assert_close(ours.double(), reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "scheduler_class, extra",
    [
        (DDPMScheduler, {}),
        (DDIMScheduler, {"timestep_spacing": "trailing"}),
        (DPMSolverMultistepScheduler, {"timestep_spacing": "trailing"}),
        (UniPCMultistepScheduler, {"timestep_spacing": "trailing"}),
        (EulerAncestralDiscreteScheduler, {"timestep_spacing": "trailing"}),
    ],
)
def test_scheduler_swaps(pipe, scheduler_class, extra):
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **extra)
    lr = lr_batch(1, 4, 6)
    raw = run(pipe, lr, output_type="raw", num_inference_steps=3)
    assert raw.shape == (1, 3, 16, 24)
    assert torch.isfinite(raw).all()
    # clamped residual / 2 added to up(LR) in [-1, 1] (bicubic may overshoot a little)
    up = imresize(lr, scale=4) * 2 - 1
    assert (raw - up).abs().max() <= 0.5 + 1e-6
    again = run(pipe, lr, output_type="raw", num_inference_steps=3)
    assert torch.equal(raw, again)  # the generator reaches the stochastic samplers


def test_the_scheduler_gives_the_prediction_type_and_an_unknown_one_is_refused():
    unet, encoder = tiny_components(4)
    with pytest.raises(ValueError, match="prediction_type='flow'"):
        SRDiffPipeline(unet=unet, encoder=encoder, scheduler=DDPMScheduler(prediction_type="flow"))
    # x0 and v predictors are distilled students (docs/distillation.md): the pipeline samples them as they are
    pipe = SRDiffPipeline(unet=unet, encoder=encoder, scheduler=DDPMScheduler(prediction_type="v_prediction"))
    assert pipe.scheduler.config.prediction_type == "v_prediction"


def test_a_scheduler_swapped_in_later_is_checked_before_any_work(pipe):
    lr = lr_batch(1, 4, 6)
    calls = []
    pipe.encoder.register_forward_hook(lambda *args: calls.append(1))
    cases = [
        (DDIMScheduler(clip_sample=True), ValueError, r"another noise schedule \(1000 training steps, beta_schedule "
         r"'linear'\) than the one this model came with \(100 steps\)"),
        (DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear"), ValueError, "another noise"),
        (pipe.fast_scheduler("ddim", prediction_type="v_prediction"), ValueError,
         "predicts 'epsilon', but the scheduler is set to prediction_type='v_prediction'"),
        (FlowMatchEulerDiscreteScheduler(), ValueError, "has no DDPM noise schedule"),
        (DDIMScheduler, TypeError, "must be a diffusers scheduler instance, got type"),
    ]  # fmt: skip
    original = pipe.scheduler
    for scheduler, error, message in cases:
        pipe.scheduler = scheduler
        with pytest.raises(error, match=message):
            pipe(lr, num_inference_steps=2)
    assert not calls
    # the same schedule under other samplers is fine, including PNDM (no timesteps before its first call)
    pipe.scheduler = original
    for scheduler in (pipe.fast_scheduler("unipc"), PNDMScheduler.from_config(original.config)):
        pipe.scheduler = scheduler
        assert torch.isfinite(run(pipe, lr, output_type="raw", num_inference_steps=10)).all()


def test_temperature_scales_the_starting_noise(pipe):
    pipe.scheduler = pipe.fast_scheduler("ddim")
    lr = lr_batch(1, 4, 4)  # HR 16x16: no padding
    scaled = run(pipe, lr, seed=3, temperature=0.5, output_type="raw")
    # Independent path: x_T drawn from the same generator, scaled by hand, passed as `latents`.
    noise = torch.randn((1, 3, 16, 16), generator=seeded(3))
    given = pipe(lr, num_inference_steps=STEPS, latents=0.5 * noise, output_type="raw").images
    torch.testing.assert_close(scaled, given, rtol=0, atol=0)
    assert not torch.equal(scaled, run(pipe, lr, seed=3, output_type="raw"))


def test_temperature_zero_makes_deterministic_ddim_ignore_the_seed(pipe):
    pipe.scheduler = pipe.fast_scheduler("ddim")
    lr = lr_batch(1, 4, 4)
    # eta = 0: x_T is DDIM's only noise, so at temperature 0 every seed gives the same image; at 1 they differ.
    assert torch.equal(run(pipe, lr, seed=0, temperature=0.0), run(pipe, lr, seed=1, temperature=0.0))
    assert not torch.equal(run(pipe, lr, seed=0), run(pipe, lr, seed=1))


# ---------------------------------------------------------------------------------------------------------------
# input forms
# ---------------------------------------------------------------------------------------------------------------


def test_input_forms_agree(pipe):
    lr = lr_batch(1, 5, 7, seed=2)
    array = (lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    reference = run(pipe, lr)
    for image in (
        PIL.Image.fromarray(array),
        array,
        array.astype(np.float32) / 255,
        array.astype(np.float64) / 255,
        lr[0],  # CHW
        [PIL.Image.fromarray(array)],
        torch.from_numpy(array).permute(2, 0, 1).contiguous(),  # uint8 CHW
    ):
        torch.testing.assert_close(run(pipe, image), reference, rtol=0, atol=1e-6)
    # lists of different sizes give a list
    outs = run(pipe, [array, array[:3, :4]], output_type="np")
    assert isinstance(outs, list) and outs[0].shape == (20, 28, 3) and outs[1].shape == (12, 16, 3)


def test_gray_and_palette_keep_their_mode(pipe):
    gray = (lr_batch(1, 6, 5, seed=4)[0, 0].numpy() * 255).round().astype(np.uint8)
    out_l = run(pipe, PIL.Image.fromarray(gray), output_type="pil")[0]
    assert out_l.mode == "L" and out_l.size == (20, 24)
    # the same gray image as RGB: same network input, so the gray output is the luma of the RGB output
    rgb = run(pipe, np.repeat(gray[:, :, None], 3, axis=2), output_type="pt")[0]
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    np.testing.assert_array_equal(np.asarray(out_l), (luma * 255).round().to(torch.uint8).numpy())
    out_hw = run(pipe, gray, output_type="np")
    assert out_hw.shape == (1, 24, 20, 1)

    palette = PIL.Image.fromarray(np.stack([gray, 255 - gray, gray // 2], axis=2)).quantize(colors=8)
    out_p = run(pipe, palette, output_type="pil")[0]
    assert out_p.mode == "P" and out_p.size == (20, 24)
    assert out_p.getpalette()[:24] == palette.getpalette()[:24]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_bicubic_upscaled(pipe, mode):
    g = np.random.default_rng(0)
    channels = 4 if mode == "RGBA" else 2
    array = g.integers(0, 256, (6, 5, channels), dtype=np.uint8)
    out = run(pipe, PIL.Image.fromarray(array, mode=mode), output_type="pil")[0]
    assert out.mode == mode and out.size == (20, 24)
    alpha = torch.from_numpy(array[:, :, -1]).float()[None, None] / 255
    expected = (imresize(alpha, scale=4).clamp(0, 1) * 255).round()[0, 0].numpy()
    np.testing.assert_array_equal(np.asarray(out)[:, :, -1], expected.astype(np.uint8))
    # the colour channels are not affected by the alpha channel
    colour = run(pipe, PIL.Image.fromarray(array[:, :, :-1].squeeze(), mode=mode[:-1]), output_type="pil")[0]
    np.testing.assert_array_equal(np.asarray(out)[..., :-1].squeeze(), np.asarray(colour))


def test_odd_size_is_padded_and_cropped_not_resampled(pipe):
    lr = lr_batch(1, 7, 13, seed=5)  # 13x7 LR: the U-Net needs HR multiples of 8, so it is padded to 14x8 LR
    out = run(pipe, lr, output_type="pt")
    assert out.shape == (1, 3, 28, 52)
    # 1. with the residual forced to zero the output is exactly up(LR) of the unpadded image; computing up(LR) on
    #    the padded image, or resizing anywhere, changes the right and bottom borders
    zeroed = run(pipe, lr, output_type="raw", callback_on_step_end=zero_residual)
    torch.testing.assert_close(zeroed, imresize(lr, scale=4) * 2 - 1, rtol=0, atol=1e-6)

    # 2. a residual with a known pattern over the padded grid must come back cropped at the top left
    shapes = []

    def pattern(p, step, timestep, kwargs):
        latents = kwargs["latents"]
        shapes.append(tuple(latents.shape))
        rows = torch.arange(latents.shape[-2], dtype=torch.float32)[:, None]
        cols = torch.arange(latents.shape[-1], dtype=torch.float32)[None, :]
        return {"latents": ((rows * 64 + cols) / 4096).expand_as(latents).clone()}

    raw = run(pipe, lr, output_type="raw", callback_on_step_end=pattern)
    assert shapes[0] == (1, 3, 32, 56)
    rows = torch.arange(28, dtype=torch.float32)[:, None]
    cols = torch.arange(52, dtype=torch.float32)[None, :]
    expected = ((rows * 64 + cols) / 4096 / 2).expand(1, 3, -1, -1)
    torch.testing.assert_close(raw - (imresize(lr, scale=4) * 2 - 1), expected, rtol=0, atol=1e-6)


def test_tiny_images_work(pipe):
    out = run(pipe, lr_batch(1, 1, 2), output_type="pt")
    assert out.shape == (1, 3, 4, 8)


# ---------------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, error, message",
    [
        ("photo.png", TypeError, "must be a PIL.Image.Image, numpy.ndarray, torch.Tensor"),
        (None, ValueError, "`image` is required"),
        ([], ValueError, "empty list"),
        (torch.full((1, 3, 4, 4), float("nan")), ValueError, "NaN"),
        (torch.full((1, 3, 4, 4), 2.0), ValueError, r"must be in \[0, 1\]"),
        (-np.ones((4, 4, 3), np.float32), ValueError, r"must be in \[0, 1\]"),
        (torch.rand(1, 5, 4, 4), ValueError, "5 channels"),
        (np.zeros((4, 4, 3), np.uint16), ValueError, "16-bit"),
        (PIL.Image.new("I;16", (4, 4)), ValueError, "16/32-bit"),
        (np.zeros((4, 4, 3), np.int64), TypeError, "uint8 or float"),
        (torch.zeros(4, 4, dtype=torch.float32), ValueError, "CxHxW or NxCxHxW"),
        (np.zeros((1, 1, 4, 4, 3), np.uint8), ValueError, "HxW, HxWxC or NxHxWxC"),
        # transposed layouts are named, with the call that fixes them
        (np.zeros((3, 16, 16), np.float32), ValueError, r"looks channels-first.*array.transpose\(1, 2, 0\)"),
        (np.zeros((2, 3, 16, 16), np.uint8), ValueError, r"looks channels-first.*array.transpose\(0, 2, 3, 1\)"),
        (torch.rand(16, 16, 3), ValueError, r"looks channels-last.*tensor.permute\(2, 0, 1\)"),
        (torch.rand(2, 16, 16, 4), ValueError, r"looks channels-last.*tensor.permute\(0, 3, 1, 2\)"),
        (torch.rand(1, 6, 16, 16), ValueError, r"6 channels; SRDiff takes .* 4 \(RGBA\)\.$"),  # no layout hint
        # out of range by more than rounding: the bounds are printed with enough digits to see it
        (np.full((4, 4, 3), 1.0001, np.float32), ValueError, r"\[1.0001, 1.0001\]"),
    ],
)
def test_bad_images(pipe, image, error, message):
    with pytest.raises(error, match=message):
        pipe(image, num_inference_steps=1)


@pytest.mark.parametrize("mode, converted", [("CMYK", "RGB"), ("1", "L")])
def test_cmyk_and_one_bit_images_are_converted_not_refused(pipe, mode, converted):
    """Print-workflow CMYK JPEGs and 1-bit scans: upscaled as PIL's RGB / L conversion of them, in that mode."""
    rng = np.random.default_rng(0)
    if mode == "1":
        image = PIL.Image.fromarray(rng.integers(0, 2, (8, 8), dtype=np.uint8) * 255).convert("1")
    else:
        image = PIL.Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), mode="CMYK")
    def run(image):
        return pipe(image, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images

    out, expected = run(image), run(image.convert(converted))
    assert out.shape == (1, 32, 32, 3 if converted == "RGB" else 1)
    np.testing.assert_array_equal(out, expected)
    assert pipe(image, num_inference_steps=1).images[0].mode == converted



def test_images_too_large_for_the_memory_left_are_refused_before_any_work(pipe, monkeypatch):
    from srdiff_diffusers import runtime as pipeline_srdiff  # the memory check lives in `runtime`

    lr = torch.rand(2, 3, 16, 12)
    hr_pixels = 2 * 3 * 64 * 48  # two images x three samples, x4
    per_pixel, per_finished_pixel = pipeline_srdiff._BYTES_PER_HR_PIXEL, pipeline_srdiff._BYTES_PER_FINISHED_PIXEL
    needed = per_pixel * hr_pixels // 2 + per_finished_pixel * hr_pixels  # the largest image, then all
    calls = []
    monkeypatch.setattr(pipe.unet, "forward", lambda *a, **k: calls.append(1))  # no work may start
    monkeypatch.setattr(pipeline_srdiff, "available_cpu_memory", lambda: needed - 1)
    with pytest.raises(MemoryError, match=r"largest 12x16 LR pixels\) needs about .* GiB .* set SRDIFF_SKIP_MEMORY"):
        pipe(lr, num_inference_steps=1, num_images_per_prompt=3)
    assert not calls
    monkeypatch.undo()
    monkeypatch.setattr(pipeline_srdiff, "available_cpu_memory", lambda: needed)
    assert len(pipe(lr, num_inference_steps=1, num_images_per_prompt=3).images) == 6
    monkeypatch.setattr(pipeline_srdiff, "available_cpu_memory", lambda: 0)
    monkeypatch.setenv("SRDIFF_SKIP_MEMORY_CHECK", "1")
    assert len(pipe(lr, num_inference_steps=1).images) == 2


@pytest.mark.skipif(not os.path.isfile("/proc/meminfo"), reason="reads /proc/meminfo (Linux)")
def test_available_cpu_memory_is_within_the_machine():
    from srdiff_diffusers.runtime import available_cpu_memory

    with open("/proc/meminfo") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:2]}
    available = available_cpu_memory()
    assert 0 < available <= fields["MemTotal"] + fields.get("SwapTotal", 0)


def test_a_truncated_file_opened_lazily_is_a_clear_error(pipe, tmp_path):
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with PIL.Image.open(tmp_path / "cut.png") as image:  # PIL decodes only when the pixels are read
        with pytest.raises(ValueError, match="could not be decoded .*truncated or corrupt"):
            pipe(image, num_inference_steps=1)


def test_float_rounding_just_outside_the_range_is_clipped(pipe):
    image = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    image[0, 0, 0], image[1, 1, 1] = 1 + 2e-7, -3e-7  # what float resizing or arithmetic leaves
    clipped = np.clip(image, 0, 1)
    got = pipe(image, num_inference_steps=2, generator=seeded(0), output_type="np").images
    assert np.array_equal(got, pipe(clipped, num_inference_steps=2, generator=seeded(0), output_type="np").images)
    assert image[0, 0, 0] > 1  # the caller's array is not clipped in place


def test_numpy_integers_are_integers(pipe):
    lr = lr_batch()
    expected = pipe(lr, num_inference_steps=2, num_images_per_prompt=2, generator=seeded(0), output_type="pt").images
    got = pipe(
        lr, num_inference_steps=np.int64(2), num_images_per_prompt=np.int32(2), generator=seeded(0), output_type="pt"
    ).images
    assert torch.equal(got, expected)
    for value in (True, 2.0, np.float32(2)):
        with pytest.raises(ValueError, match="`num_inference_steps` must be a positive integer"):
            pipe(lr, num_inference_steps=value)


def test_bad_arguments(pipe):
    lr = lr_batch()
    for eta in (-1.0, float("nan"), "0"):
        with pytest.raises(ValueError, match="`eta` must be a number >= 0"):
            pipe(lr, num_inference_steps=1, eta=eta)
    for temperature in (-0.5, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="`temperature` must be a number >= 0"):
            pipe(lr, num_inference_steps=1, temperature=temperature)
    with pytest.raises(ValueError, match="scale your `latents` yourself"):
        pipe(lr, num_inference_steps=1, temperature=0.5, latents=torch.zeros(1, 3, 24, 20))
    with pytest.raises(ValueError, match="scale your `latents` yourself"):
        pipe(lr, num_inference_steps=1, temperature=0.5, init_image=torch.zeros(1, 3, 24, 20))
    with pytest.raises(TypeError, match="`lr_consistency` must be True or False"):
        pipe(lr, num_inference_steps=1, lr_consistency="yes")
    for generator in (0, "cpu", [seeded(0), 1]):
        with pytest.raises(TypeError, match=r"torch.Generator\(\).manual_seed\(0\)"):
            pipe(lr, num_inference_steps=1, generator=generator)
    with pytest.raises(ValueError, match="output_type"):
        pipe(lr, num_inference_steps=1, output_type="latent")
    with pytest.raises(ValueError, match="exceed the 100 training timesteps"):
        pipe(lr, num_inference_steps=101)
    with pytest.raises(ValueError, match="positive integer"):
        pipe(lr, num_inference_steps=0)
    with pytest.raises(ValueError, match="`num_images_per_prompt`"):
        pipe(lr, num_inference_steps=1, num_images_per_prompt=0)
    with pytest.raises(ValueError, match="Got 2 generators for 3 output images"):
        pipe(lr, num_inference_steps=1, num_images_per_prompt=3, generator=[seeded(0), seeded(1)])
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipe(lr, num_inference_steps=1, callback_on_step_end=zero_residual, callback_on_step_end_tensor_inputs=["x"])


def test_mismatched_components():
    unet, _ = tiny_components(4)
    _, encoder_x2 = tiny_components(2)
    with pytest.raises(ValueError, match="Scale mismatch: the unet upscales x4 but the encoder x2"):
        SRDiffPipeline(unet=unet, encoder=encoder_x2)
    wide = RRDBEncoder(num_features=16, num_blocks=2, upscale_factor=4)
    with pytest.raises(ValueError, match="expects 8 condition channels but the encoder gives 16"):
        SRDiffPipeline(unet=unet, encoder=wide)
    with pytest.raises(TypeError, match="`unet` must be an SRDiffUNet2DModel"):
        SRDiffPipeline(unet=torch.nn.Conv2d(3, 3, 1), encoder=wide)


# ---------------------------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    unet, encoder = tiny_components(4)
    pipe = SRDiffPipeline(unet=unet, encoder=encoder, residual_rescale=3.0, lr_upscale_divisor=256.0)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    for component in ("unet", "encoder"):
        assert (tmp_path / component / "diffusion_pytorch_model.safetensors").is_file()
        assert not (tmp_path / component / "diffusion_pytorch_model.bin").exists()
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["unet"] == ["srdiff_diffusers.models.unet_srdiff", "SRDiffUNet2DModel"]
    assert index["encoder"] == ["srdiff_diffusers.models.rrdb_encoder", "RRDBEncoder"]
    assert index["scheduler"] == ["diffusers", "DDPMScheduler"]

    loaded = SRDiffPipeline.from_pretrained(str(tmp_path))
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.unet, SRDiffUNet2DModel) and isinstance(loaded.encoder, RRDBEncoder)
    assert loaded.config.residual_rescale == 3.0 and loaded.config.lr_upscale_divisor == 256.0
    assert loaded.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    assert loaded.scheduler.config.num_train_timesteps == 100 and loaded.scheduler.config.clip_sample
    lr = lr_batch()
    # identical weights; convolution kernels may pick a different summation order for a fresh module (~6e-8)
    torch.testing.assert_close(run(loaded, lr, output_type="raw"), run(pipe, lr, output_type="raw"), rtol=0, atol=1e-6)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_loading_a_broken_folder_fails_loudly(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    folder = str(tmp_path)  # diffusers' pipeline loader takes str, not Path
    weights = tmp_path / "encoder" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    del state["conv_out.bias"]
    save_file(state, weights, metadata={"format": "pt"})
    logged = _Records()
    loading_logger = logging.getLogger("diffusers.models.modeling_utils")  # diffusers' loggers do not propagate
    loading_logger.addHandler(logged)
    try:
        with pytest.raises(ValueError, match="weights missing from the file: conv_out.bias"):
            SRDiffPipeline.from_pretrained(folder)
        # diffusers' "You should probably TRAIN this model" is not printed before a refusal
        assert not any("TRAIN" in record.getMessage() for record in logged.records)
        # what is held back during a load is logged after all when the load succeeds
        from srdiff_diffusers.models.strict_loading import _HeldRecords

        held = _HeldRecords()
        with held:
            loading_logger.warning("held back")
        assert not logged.records
        held.release()
        assert [record.getMessage() for record in logged.records] == ["held back"]
    finally:
        loading_logger.removeHandler(logged)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="encoder has no weights diffusion_pytorch_model.safetensors;"):
        SRDiffPipeline.from_pretrained(folder)
    with pytest.raises(ValueError, match="neither a valid local path nor a valid repo id"):
        SRDiffPipeline.from_pretrained(str(tmp_path / "absent"))


def test_incomplete_or_foreign_folders_name_the_missing_part(tmp_path):
    def saved(name):
        folder = tmp_path / name
        tiny_pipeline().save_pretrained(folder)
        return folder

    folder = saved("no_unet")
    shutil.rmtree(folder / "unet")  # diffusers said: no config.json in the pipeline folder itself
    with pytest.raises(FileNotFoundError, match=r"no_unet[/\\]unet is missing"):
        SRDiffPipeline.from_pretrained(str(folder))
    folder = saved("variant_only")
    weights = folder / "encoder" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_name("diffusion_pytorch_model.fp16.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"only diffusion_pytorch_model.fp16.safetensors: pass the matching"):
        SRDiffPipeline.from_pretrained(str(folder))
    (folder / "unet" / "diffusion_pytorch_model.safetensors").rename(
        folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    )
    assert isinstance(SRDiffPipeline.from_pretrained(str(folder), variant="fp16"), SRDiffPipeline)
    folder = saved("ddpm")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "DDPMPipeline"}))
    with pytest.raises(ValueError, match="holds a DDPMPipeline, not an SRDiff pipeline"):
        SRDiffPipeline.from_pretrained(str(folder))
    # weights of another configuration: the component is named, and no advice to load them anyway
    folder = saved("mismatched")
    config = json.loads((folder / "unet" / "config.json").read_text())
    config["block_out_channels"] = [2 * c for c in config["block_out_channels"]]
    (folder / "unet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"do not match the SRDiffUNet2DModel config .*wrong shape: \S+ is") as error:
        SRDiffPipeline.from_pretrained(str(folder))
    assert "ignore_mismatched_sizes" not in str(error.value)
