"""The fast paths (in-place activations, channels_last, cached condition, bfloat16) against the plain path."""

import pytest
import torch
from conftest import tiny_components, tiny_pipeline
from diffusers import DDPMScheduler

from srdiff_diffusers.models import unet_srdiff
from srdiff_diffusers.models.activations import mish_
from srdiff_diffusers.models.padding import reflection_pad1
from srdiff_diffusers.runtime import NonFiniteGuard


def _inputs(unet, encoder, batch=2, lr_size=8, seed=1):
    gen = torch.Generator().manual_seed(seed)
    scale = unet.config.upscale_factor
    sample = torch.randn(batch, 3, lr_size * scale, lr_size * scale, generator=gen)
    lr = torch.rand(batch, 3, lr_size, lr_size, generator=gen) * 2 - 1
    with torch.no_grad():
        condition = encoder.encode(lr)
    return sample, condition


def test_inplace_inference_path_matches_the_autograd_path():
    # Without autograd the blocks overwrite their own intermediates and use the one-exponential Mish; with autograd
    # they run F.mish out of place. The bar for "identical" fp32 outputs is 1e-5 per step; we hold 1e-6.
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)
    with torch.no_grad():
        fast = unet(sample, 37, condition).sample
    plain = unet(sample, 37, condition).sample
    assert plain.requires_grad
    assert (fast - plain.detach()).abs().max().item() <= 1e-6


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
def test_one_exponential_mish_matches_the_definition(dtype, atol):
    x = torch.cat([torch.linspace(-30, 30, 20001), torch.tensor([-1e4, -100.0, -20.5, 0.0, 19.99, 20.01, 44.5, 1e4])])
    x = x.to(dtype)
    # Independent reference: the definition, x * tanh(softplus(x)), in float64.
    reference = x.double() * torch.tanh(torch.nn.functional.softplus(x.double()))
    result = mish_(x.clone())
    assert result.dtype == dtype and torch.isfinite(result).all()
    assert (result.double() - reference).abs().max().item() <= atol
    # In float32 it is as accurate as torch's own kernel (within one float32 rounding of the largest output).
    if dtype == torch.float32:
        torch_error = (torch.nn.functional.mish(x).double() - reference).abs().max().item()
        assert (result.double() - reference).abs().max().item() <= torch_error + 4e-6
    assert torch.equal(mish_(torch.tensor([float("inf")])), torch.tensor([float("inf")]))


def test_one_exponential_mish_is_close_in_bfloat16_and_refuses_autograd():
    x = torch.linspace(-12, 12, 4001)
    reference = torch.nn.functional.mish(x)
    result = mish_(x.to(torch.bfloat16)).float()
    # bf16 keeps 8 bits: a few units in the last place of |x| at most.
    assert ((result - reference).abs() <= 3 * 2.0**-8 * x.abs().clamp(min=1)).all()
    with pytest.raises(RuntimeError, match="no backward"):
        mish_(torch.ones(3, requires_grad=True))


def test_inplace_path_does_not_modify_its_inputs():
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)
    sample_copy, condition_copy = sample.clone(), condition.clone()
    projected = unet.project_condition(condition).detach()
    projected_copy = projected.clone()
    with torch.no_grad():
        unet(sample, 5, projected_condition=projected)
    assert torch.equal(sample, sample_copy) and torch.equal(projected, projected_copy)
    assert torch.equal(condition, condition_copy)


def test_cached_projected_condition_equals_recomputed_condition():
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)
    with torch.no_grad():
        recomputed = unet(sample, 12, encoder_hidden_states=condition).sample
        cached = unet(sample, 12, projected_condition=unet.project_condition(condition)).sample
    assert torch.equal(cached, recomputed)


def test_pipeline_with_cached_condition_equals_a_loop_that_recomputes_it():
    # Independent reference: DDPM written out with the scheduler, calling the U-Net with the raw encoder condition
    # at every step (the projection recomputed inside `forward`, as the authors' sampler does).
    pipe = tiny_pipeline()
    scale = pipe.upscale_factor
    lr01 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))  # 32 HR px: no padding needed
    steps, seed = 3, 11
    out = pipe(lr01, num_inference_steps=steps, output_type="raw", generator=torch.Generator().manual_seed(seed))

    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        condition = pipe.encoder.encode(lr01 * 2 - 1)
        latents = torch.randn(1, 3, 8 * scale, 8 * scale, generator=gen)
        for t in scheduler.timesteps:
            noise = pipe.unet(latents, t, encoder_hidden_states=condition).sample
            latents = scheduler.step(noise, t, latents, generator=gen).prev_sample
        expected = latents.clamp(-1, 1) / pipe.config.residual_rescale + pipe.upscale_bicubic(lr01)
    torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-6)


def test_channels_last_matches_default_layout_in_float32():
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)
    with torch.no_grad():
        plain = unet(sample, 40, condition).sample
        unet.to(memory_format=torch.channels_last)
        assert unet.conv_norm_out.weight.is_contiguous(memory_format=torch.channels_last)
        fast = unet(sample.contiguous(memory_format=torch.channels_last), 40, condition).sample
    # Another memory layout changes only the order of the float32 sums inside the convolutions: differences of a
    # few float32 rounding steps (~1e-7 relative), far below the 1e-5 per step the project allows.
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast.contiguous(), plain, rtol=1e-5, atol=1e-6)


def test_bfloat16_unet_is_close_to_float32():
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)
    with torch.no_grad():
        reference = unet(sample, 40, condition).sample
        unet_bf16 = unet.to(torch.bfloat16)
        out = unet_bf16(sample.to(torch.bfloat16), 40, condition.to(torch.bfloat16)).sample
    assert out.dtype == torch.bfloat16
    # bfloat16 keeps 8 significant bits: every stored activation is off by up to 2^-9 (0.2%) relative. Through the
    # ~20 layers of this U-Net such errors add up roughly like a random walk, to about 1% of the output's size; 5%
    # leaves room for that and still fails on any real mistake (a wrong cast or layer gives errors of order 100%).
    relative = (out.float() - reference).norm() / reference.norm()
    assert relative < 0.05, f"bfloat16 relative error {relative:.4f}"


def test_pipeline_in_bfloat16_keeps_the_schedule_in_float32():
    pipe = tiny_pipeline()
    lr01 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    reference = pipe(lr01, num_inference_steps=2, output_type="raw", generator=torch.Generator().manual_seed(0))
    pipe.to(dtype=torch.bfloat16)
    seen = {}

    def record_input(module, args):
        seen.setdefault("unet_input", args[0].dtype)

    pipe.unet.register_forward_pre_hook(record_input)

    def callback(pipeline, step, timestep, kwargs):
        seen.setdefault("latents", kwargs["latents"].dtype)
        return {}

    out = pipe(
        lr01, num_inference_steps=2, output_type="raw", generator=torch.Generator().manual_seed(0),
        callback_on_step_end=callback,
    )
    assert seen == {"unet_input": torch.bfloat16, "latents": torch.float32}
    assert out.images.dtype == torch.float32
    # Same noise, so the images differ only by the U-Net's rounding; with a clipped x0 the error stays small.
    assert (out.images - reference.images).abs().max() < 0.1


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_prediction_raises_a_clear_error(bad_value):
    pipe = tiny_pipeline()
    calls = []

    def poison_second_call(module, args, output):
        calls.append(1)
        if len(calls) == 2:
            output.sample[0, 0, 0, 0] = bad_value  # one pixel is enough; an inf would otherwise be clipped away
        return output

    pipe.unet.register_forward_hook(poison_second_call)
    with pytest.raises(FloatingPointError, match=r"NaN or infinite values at step 1"):
        pipe(torch.rand(1, 3, 8, 8), num_inference_steps=3, output_type="raw")


def test_non_finite_error_gives_reduced_precision_advice():
    guard = NonFiniteGuard(torch.float16, "cpu")
    with pytest.raises(FloatingPointError, match="float32"):
        guard.update(torch.tensor([1.0, float("nan")]), step=4, timestep=torch.tensor(60))


def test_guard_on_accelerators_checks_once_after_the_loop():
    # On an accelerator the flags stay on the device until `check`; the logic is device independent, so it is
    # exercised here with CPU tensors and a guard that believes it runs on CUDA.
    guard = NonFiniteGuard(torch.bfloat16, "cuda")
    guard.update(torch.ones(3), 0, 99)
    guard.update(torch.tensor([float("inf")]), 1, 98)  # must not raise yet
    guard.update(torch.ones(3), 2, 97)
    with pytest.raises(FloatingPointError, match="bfloat16"):
        guard.check()
    clean = NonFiniteGuard(torch.bfloat16, "cuda")
    clean.update(torch.ones(3), 0, 99)
    clean.check()


# ---------------------------------------------------------------------------------------------------------------
# reflection padding with a compile-friendly backward (models/padding.py)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (1, 2, 5, 7), (2, 4, 6, 3)])
def test_reflection_pad_gradient_is_exact(shape):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(reflection_pad1, (x,))
    # Against torch's own reflection padding, forward and backward.
    grad = torch.randn(shape[0], shape[1], shape[2] + 2, shape[3] + 2, dtype=torch.float64)
    ours, = torch.autograd.grad(reflection_pad1(x), x, grad)
    reference, = torch.autograd.grad(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), x, grad)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(reflection_pad1(x), torch.nn.ReflectionPad2d(1)(x), rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_reflection_pad_keeps_the_layout_and_float32_gradients(channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 16, 9, 11).contiguous(memory_format=fmt).requires_grad_()
    padded = reflection_pad1(x)
    assert padded.is_contiguous(memory_format=fmt)
    grad = torch.randn_like(padded)
    ours, = torch.autograd.grad(padded, x, grad)
    reference, = torch.autograd.grad(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), x, grad)
    assert ours.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_unet_gradients_equal_those_of_torchs_reflection_padding(monkeypatch):
    unet, encoder = tiny_components()
    sample, condition = _inputs(unet, encoder)

    def gradients():
        unet.zero_grad(set_to_none=True)
        unet(sample, 37, condition).sample.square().mean().backward()
        return {name: p.grad.clone() for name, p in unet.named_parameters()}

    ours = gradients()
    # The plain module: nn.Conv2d(padding=1, padding_mode="reflect") pads with torch's F.pad and its autograd.
    monkeypatch.setattr(unet_srdiff._ReflectionPaddedConv2d, "_conv_forward", torch.nn.Conv2d._conv_forward)
    reference = gradients()
    for name, grad in ours.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-5, atol=1e-6, msg=name)
