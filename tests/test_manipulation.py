"""Refinement from an HR guess, content fusion (Algorithm 3), latent interpolation (Algorithm 4), LR consistency."""

import math

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_pipeline

from srdiff_diffusers import (
    SRDiffFusionPipeline,
    SRDiffInterpolationPipeline,
    SRDiffPipeline,
    imresize,
    lr_consistency,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _cosine_alphas_cumprod(T=100, s=0.008):
    """Nichol & Dhariwal's cosine schedule, betas capped at 0.999, written out independently of diffusers."""
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = [min(1 - f(i + 1) / f(i), 0.999) for i in range(T)]
    return torch.tensor(np.cumprod([1 - b for b in betas]), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------------
# refinement from an HR guess


def test_strength_zero_returns_the_guess_exactly(pipe):
    lr = torch.rand(1, 3, 6, 6)
    guess = torch.rand(1, 3, 24, 24)
    calls = []
    pipe.unet.register_forward_hook(lambda *args: calls.append(1))
    out = pipe(lr, init_image=guess, strength=0, output_type="pt").images
    assert (out - guess).abs().max() <= 1e-6 and not calls
    guess_uint8 = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    pil = pipe(
        PIL.Image.fromarray(
            imresize(torch.from_numpy(guess_uint8).permute(2, 0, 1), scale=0.25).permute(1, 2, 0).numpy()
        ),
        init_image=PIL.Image.fromarray(guess_uint8),
        strength=0,
    ).images[0]
    assert np.array_equal(np.asarray(pil), guess_uint8)


def test_strength_and_init_image_go_together(pipe):
    lr, guess = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 24, 24)
    plain = pipe(lr, num_inference_steps=3, generator=_gen(), output_type="raw").images
    assert torch.equal(plain, pipe(lr, strength=1.0, num_inference_steps=3, generator=_gen(), output_type="raw").images)
    # unset with a guess: the paper's t-bar = 50 (the CLI's --init-image default too)
    half = pipe(lr, init_image=guess, strength=0.5, num_inference_steps=10, generator=_gen(), output_type="raw").images
    unset = pipe(lr, init_image=guess, num_inference_steps=10, generator=_gen(), output_type="raw").images
    assert torch.equal(half, unset) and not torch.equal(half, plain[:, :, :24, :24])
    # a guess that strength 1 would ignore, and a mid-way start without a starting point, are refused
    with pytest.raises(ValueError, match="would ignore `init_image`"):
        pipe(lr, init_image=guess, strength=1.0, num_inference_steps=3)
    with pytest.raises(ValueError, match="pass `init_image` .* or `latents`"):
        pipe(lr, strength=np.float32(0.5), num_inference_steps=3)
    numpy_strength = pipe(
        lr, init_image=guess, strength=np.float32(0.5), num_inference_steps=10, generator=_gen(), output_type="raw"
    ).images
    assert torch.equal(numpy_strength, half)


def test_refinement_diffuses_the_guess_residual_to_t_bar(pipe):
    """x_t-bar = sqrt(abar) * clamp((guess - up(LR)) * 2, -1, 1) + sqrt(1 - abar) * noise, noise = the global randn."""
    lr, guess = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 24, 24)
    strength = 0.3  # paper t-bar = 30 -> diffusers timestep 29, then 30 steps 29..0
    timesteps = pipe.get_timesteps(100, strength, "cpu")
    assert timesteps.tolist() == list(range(29, -1, -1))
    start = pipe.prepare_latents((1, 3, 24, 24), timesteps, strength, _gen(5), lr, guess, None)
    noise = torch.randn(1, 3, 24, 24, generator=_gen(5))
    up = imresize(lr, scale=4) * 2 - 1
    x0 = ((guess * 2 - 1 - up) * 2).clamp(-1, 1)
    abar = _cosine_alphas_cumprod()[29]
    expected = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    assert (start.double() - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpmsolver++", "unipc"])
def test_refinement_runs_only_the_timesteps_below_t_bar(pipe, name):
    if name != "ddpm":
        pipe.scheduler = pipe.fast_scheduler(name)
    steps = []
    out = pipe(
        torch.rand(1, 3, 6, 6),
        init_image=torch.rand(1, 3, 24, 24),
        strength=0.5,
        num_inference_steps=20,
        output_type="raw",
        callback_on_step_end=lambda p, i, t, kw: steps.append(int(t)) or {},
    ).images
    assert torch.isfinite(out).all()
    assert steps and max(steps) < 50 and len(steps) == sum(int(t) < 50 for t in pipe.scheduler.timesteps)


def test_refinement_rejects_bad_inputs(pipe):
    lr = torch.rand(1, 3, 6, 6)
    with pytest.raises(ValueError, match="init image is"):
        pipe(lr, init_image=torch.rand(1, 3, 20, 24), strength=0.5)
    with pytest.raises(ValueError, match="strength"):
        pipe(lr, init_image=torch.rand(1, 3, 24, 24), strength=1.5)
    with pytest.raises(ValueError, match="not both"):
        pipe(lr, init_image=torch.rand(1, 3, 24, 24), latents=torch.randn(1, 3, 24, 24), strength=0.5)
    with pytest.raises(ValueError, match="pass `init_image`"):
        pipe(lr, strength=0)
    pipe.scheduler = pipe.fast_scheduler("ddim")  # 10 trailing steps: 99, 89, ..., 9; none below t-bar = 5
    with pytest.raises(ValueError, match="leaves no timestep"):
        pipe(lr, init_image=torch.rand(1, 3, 24, 24), strength=0.05, num_inference_steps=10)


# ---------------------------------------------------------------------------------------------------------------
# content fusion


def _fusion_inputs():
    rng = np.random.default_rng(0)
    target = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    source = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 12:28] = True
    return target, source, mask


def test_fusion_leaves_pixels_outside_the_mask_untouched(pipe):
    fusion = SRDiffFusionPipeline.from_pipe(pipe)
    target, source, mask = _fusion_inputs()
    for output_type in ("pil", "pt"):
        out = fusion(
            target, source, mask, strength=0.3, num_inference_steps=10, generator=_gen(), output_type=output_type
        )
        image = np.asarray(out.images[0]) if output_type == "pil" else out.images[0].permute(1, 2, 0).numpy()
        expected = target if output_type == "pil" else target / np.float32(255)
        assert np.array_equal(image[~mask], expected[~mask])  # exactly, not approximately
        assert not np.allclose(image[mask], expected[mask], atol=0.02)  # the region did change


def test_fusion_inside_the_mask_is_the_refined_paste(pipe):
    """Inside the mask the result is SRDiff's refinement (under the target's LR) of the naive paste; with strength 0
    it is the paste itself, i.e. the source's pixels."""
    fusion = SRDiffFusionPipeline.from_pipe(pipe)
    target, source, mask = _fusion_inputs()
    out = fusion(target, source, mask, strength=0, output_type="pil").images[0]
    assert np.array_equal(np.asarray(out)[mask], source[mask])

    pasted = np.where(mask[..., None], source, target)
    low_res = imresize(torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255, scale=0.25).clamp(0, 1)
    refined = (
        pipe(
            low_res,
            init_image=torch.from_numpy(pasted).permute(2, 0, 1)[None].float() / 255,
            strength=0.3,
            num_inference_steps=10,
            generator=_gen(),
            output_type="pt",
        )
        .images[0]
        .permute(1, 2, 0)
        .numpy()
    )
    fused = fusion(
        target, source, mask, strength=0.3, num_inference_steps=10, generator=_gen(), output_type="np"
    ).images[0]
    assert np.abs(fused[mask] - refined[mask]).max() <= 1e-6


def test_fusion_returns_the_target_s_mode(pipe):
    """Gray, RGBA and palette targets come back as such (as the main pipeline returns its input's mode)."""
    fusion = SRDiffFusionPipeline.from_pipe(pipe)
    target, source, mask = _fusion_inputs()
    gray = PIL.Image.fromarray(target[:, :, 0])
    out = fusion(gray, PIL.Image.fromarray(source[:, :, 0]), mask, num_inference_steps=2, generator=_gen()).images[0]
    assert out.mode == "L" and np.array_equal(np.asarray(out)[~mask], target[:, :, 0][~mask])
    alpha = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    rgba = PIL.Image.fromarray(np.dstack([target, alpha]))
    out = fusion(rgba, source, mask, num_inference_steps=2, generator=_gen()).images[0]
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[:, :, 3], alpha)  # the target's own alpha
    palette = PIL.Image.fromarray(target).quantize(16)
    out = fusion(palette, source, mask, num_inference_steps=2, generator=_gen()).images[0]
    assert out.mode == "P" and out.getpalette() == palette.getpalette()
    pt = fusion(gray, source[:, :, 0], mask, num_inference_steps=2, output_type="pt").images
    assert pt.shape == (1, 1, 32, 32)


def test_fusion_rejects_bad_masks(pipe):
    fusion = SRDiffFusionPipeline.from_pipe(pipe)
    target, source, _ = _fusion_inputs()
    with pytest.raises(ValueError, match="HR images are"):
        fusion(target, source, np.ones((16, 16), dtype=bool))
    with pytest.raises(ValueError, match="values must be in"):
        fusion(target, source, np.full((32, 32), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match="source_image"):
        fusion(target, source[:16], np.ones((32, 32), dtype=bool))
    mask = np.ones((32, 32), dtype=bool)
    with pytest.raises(ValueError, match=r"`image` \(the target's LR image\) is \(10, 10\)"):  # not an "init image"
        fusion(target, source, mask, image=torch.rand(3, 10, 10))
    with pytest.raises(ValueError, match=r"in \[0, 1\) for content fusion"):
        fusion(target, source, mask, strength=1.0)


# ---------------------------------------------------------------------------------------------------------------
# latent interpolation


def test_interpolation_endpoints_equal_the_plain_samples_from_each_latent(pipe):
    interp = SRDiffInterpolationPipeline.from_pipe(pipe)
    lr = torch.rand(1, 3, 8, 8)
    latents_a = interp.prepare_latents(lr, strength=0.5, generator=_gen(1))
    latents_b = interp.prepare_latents(lr, strength=0.5, generator=_gen(2))
    assert latents_a.shape == (1, 3, 32, 32) and not torch.equal(latents_a, latents_b)
    # DDPM draws noise at every step: the endpoints must also reproduce those draws
    images = interp(
        lr,
        latents_a,
        latents_b,
        interpolation_weights=[0.0, 0.5, 1.0],
        strength=0.5,
        num_inference_steps=10,
        generator=_gen(7),
        output_type="raw",
    ).images
    plain_a = pipe(
        lr, latents=latents_a, strength=0.5, num_inference_steps=10, generator=_gen(7), output_type="raw"
    ).images
    plain_b = pipe(
        lr, latents=latents_b, strength=0.5, num_inference_steps=10, generator=_gen(7), output_type="raw"
    ).images
    assert (images[2] - plain_a[0]).abs().max() <= 1e-6
    assert (images[0] - plain_b[0]).abs().max() <= 1e-6
    assert (images[1] - plain_a[0]).abs().max() > 1e-3 and (images[1] - plain_b[0]).abs().max() > 1e-3
    # weights as numpy or torch numbers, or a single number, are the same weights
    for weights in (np.array([0.0, 0.5, 1.0], dtype=np.float32), torch.tensor([0.0, 0.5, 1.0])):
        again = interp(lr, latents_a, latents_b, interpolation_weights=weights, strength=0.5, num_inference_steps=10,
                       generator=_gen(7), output_type="raw").images  # fmt: skip
        assert all(torch.equal(x, y) for x, y in zip(again, images))
    one = interp(lr, latents_a, latents_b, interpolation_weights=0.5, strength=0.5, num_inference_steps=10,
                 generator=_gen(7), output_type="raw").images  # fmt: skip
    assert len(one) == 1 and torch.equal(one[0], images[1])
    with pytest.raises(TypeError, match="torch.Generator"):
        interp(lr, latents_a, latents_b, interpolation_weights=[0.5], strength=0.5, generator=1)
    # slerp of a zero latent has no angle: said so, not a NaN caught later as "check the weights"
    with pytest.raises(ValueError, match="finite, non-zero latents"):
        interp(lr, latents_a, torch.zeros_like(latents_b), interpolation_weights=[0.5], strength=0.5,
               interpolation="slerp")  # fmt: skip


def test_interpolation_from_sr_results_and_slerp(pipe):
    interp = SRDiffInterpolationPipeline.from_pipe(pipe)
    lr = torch.rand(1, 3, 8, 8)
    sr = pipe(lr, num_inference_steps=2, generator=_gen(3), output_type="pt").images
    latents = interp.prepare_latents(lr, strength=0.5, generator=_gen(4), hr_image=sr)
    # equals the scheduler's diffusion of that SR result's residual at t-bar
    timesteps = pipe.get_timesteps(100, 0.5, "cpu")
    expected = pipe.prepare_latents((1, 3, 32, 32), timesteps, 0.5, _gen(4), lr, sr, None)
    assert torch.equal(latents, expected)
    a, b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    assert torch.equal(interp.interpolate(a, b, 1.0, "slerp"), a) and torch.equal(
        interp.interpolate(a, b, 0.0, "slerp"), b
    )
    middle = interp.interpolate(a, b, 0.5, "slerp")
    assert abs(middle.norm() / a.norm() - 1) < 0.2  # slerp keeps the norm of noise; linear would shrink it ~0.7x


# ---------------------------------------------------------------------------------------------------------------
# from_pipe


def test_from_pipe_shares_components_and_config():
    pipe = SRDiffPipeline(*tiny_pipeline().components.values(), residual_rescale=3.0, lr_upscale_divisor=256.0)
    for cls in (SRDiffFusionPipeline, SRDiffInterpolationPipeline):
        sibling = cls.from_pipe(pipe)
        assert sibling.unet is pipe.unet and sibling.encoder is pipe.encoder and sibling.scheduler is pipe.scheduler
        assert sibling.config.residual_rescale == 3.0 and sibling.config.lr_upscale_divisor == 256.0


# ---------------------------------------------------------------------------------------------------------------
# LR consistency


def _psnr(a, b):
    return (10 * torch.log10(1 / ((a - b) ** 2).mean())).item()


def test_lr_consistency_raises_lr_psnr(pipe):
    lr = torch.rand(1, 3, 12, 12, generator=_gen(9))
    kwargs = dict(num_inference_steps=2, output_type="pt")
    plain = pipe(lr, generator=_gen(), **kwargs).images
    corrected = pipe(lr, generator=_gen(), lr_consistency=True, **kwargs).images
    before, after = _psnr(imresize(plain, scale=0.25), lr), _psnr(imresize(corrected, scale=0.25), lr)
    assert after > before + 3, (before, after)
    # the function alone: one back-projection step removes most of the LR error of a blurred image
    hr = torch.rand(1, 3, 48, 48)
    lr_exact = imresize(hr, scale=0.25)
    drifted = hr * 0.8 + 0.1  # a colour/contrast shift
    fixed = lr_consistency(drifted, lr_exact, 4)
    assert _psnr(imresize(fixed, scale=0.25), lr_exact) > _psnr(imresize(drifted, scale=0.25), lr_exact) + 10
    with pytest.raises(ValueError, match="LR image"):
        lr_consistency(hr, torch.rand(1, 3, 10, 10), 4)
    # integer images would wrap around (uint8 arithmetic), numpy arrays have no `.to`: both refused, saying why
    with pytest.raises(TypeError, match=r"float tensor .* got a torch.uint8 tensor.*wrap around"):
        lr_consistency((hr * 255).to(torch.uint8), (lr_exact * 255).to(torch.uint8), 4)
    with pytest.raises(TypeError, match="got a ndarray"):
        lr_consistency(hr[0].permute(1, 2, 0).numpy(), lr_exact, 4)
    for iterations in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="`iterations` must be a positive integer"):
            lr_consistency(drifted, lr_exact, 4, iterations=iterations)
    with pytest.raises(ValueError, match="one image or one per SR image"):
        lr_consistency(torch.rand(2, 3, 48, 48), torch.rand(3, 3, 12, 12), 4)
    assert torch.equal(lr_consistency(drifted, lr_exact, 4, iterations=np.int64(1)), fixed)
