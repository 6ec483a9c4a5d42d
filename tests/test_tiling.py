"""Tiled inference: exactness with one tile, planning, no seams, memory bounded by the tile; few-step schedulers."""

import ctypes
import gc
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_pipeline

from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, SRDiffUNet2DModel
from srdiff_diffusers.pipelines.sizes import lr_size_rule
from srdiff_diffusers.pipelines.tiling import (
    AUTO_TILE_THRESHOLD,
    TiledNoisePredictor,
    noise_predictor,
    plan_tiles,
    resolve_tile_size,
)


def _raw(pipe, lr, seed=0, **kwargs):
    kwargs.setdefault("num_inference_steps", 2)
    return pipe(lr, generator=torch.Generator().manual_seed(seed), output_type="raw", **kwargs).images


# ---------------------------------------------------------------------------------------------------------------
# planning


@pytest.mark.parametrize(
    "length,tile,overlap,align", [(32, 8, 4, 2), (50, 16, 4, 2), (300, 128, 16, 1), (64, 64, 8, 2)]
)
def test_plan_tiles_cover_every_pixel_with_the_overlap(length, tile, overlap, align):
    tiles = plan_tiles(length, length, tile, tile, overlap, align)
    starts = sorted({t.left for t in tiles})
    assert starts[0] == 0 and starts[-1] + tile == length  # first at 0, last flush with the border
    assert all(s % align == 0 for s in starts)
    covered = torch.zeros(length, dtype=torch.int32)
    for s in starts:
        covered[s : s + tile] += 1
    assert covered.min() >= 1
    # neighbours overlap by at least `overlap`
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:]))
    assert len(tiles) == len(starts) ** 2


def test_auto_tile_size_threshold_and_bad_values():
    assert resolve_tile_size("auto", AUTO_TILE_THRESHOLD, AUTO_TILE_THRESHOLD, 16, 2) is None
    tile_h, tile_w = resolve_tile_size("auto", AUTO_TILE_THRESHOLD + 2, 100, 16, 2)
    assert tile_h <= AUTO_TILE_THRESHOLD and tile_h % 2 == 0 and tile_w == 100
    # balanced: two tiles of (258 + 16) / 2 = 137 -> 138, not one of 256 and a second mostly overlapping it
    assert tile_h == 138
    assert resolve_tile_size(None, 1000, 1000, 16, 2) is None
    with pytest.raises(ValueError, match="multiple of 2"):
        resolve_tile_size(15, 64, 64, 4, 2)
    with pytest.raises(ValueError, match="smaller than `tile_size`"):
        resolve_tile_size(8, 64, 64, 8, 2)
    with pytest.raises(ValueError, match="'auto' or None"):
        resolve_tile_size("big", 64, 64, 4, 2)
    with pytest.raises(ValueError, match="at least 4 LR pixels"):
        resolve_tile_size(2, 64, 64, 0, 2, min_tile=4)
    with pytest.raises(ValueError, match="at least 4 LR pixels"):
        resolve_tile_size(3, 64, 64, 0, 2, min_tile=4)
    with pytest.raises(ValueError, match="try 6"):
        resolve_tile_size(7, 64, 64, 0, 2, min_tile=4)
    with pytest.raises(ValueError, match="try 4"):  # not 2, which would be refused in turn
        resolve_tile_size(5, 64, 64, 0, 2, min_tile=4)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_smallest_tile_accepted_runs(scale):
    """Every tile size the pipeline accepts must run: tiles below the U-Net's minimum used to fail inside torch."""
    pipe = tiny_pipeline(scale)
    align, min_tile = lr_size_rule(pipe.unet)
    lr = torch.rand(1, 3, 3 * min_tile, 2 * min_tile)
    with pytest.raises(ValueError, match=f"at least {min_tile} LR pixels"):
        _raw(pipe, lr, tile_size=min_tile - align, tile_overlap=0)
    # the smallest tile is also what the untiled path pads the tiniest image to
    assert pipe.pad_to_multiple(torch.rand(1, 3, 1, 1)).shape[-2:] == (min_tile, min_tile)
    tiled = _raw(pipe, lr, tile_size=min_tile, tile_overlap=0)
    assert tiled.shape == (1, 3, 3 * min_tile * scale, 2 * min_tile * scale) and torch.isfinite(tiled).all()


# ---------------------------------------------------------------------------------------------------------------
# exactness


def test_one_tile_covering_the_image_equals_untiled(pipe):
    lr = torch.rand(1, 3, 10, 14)  # padded to 10 x 14 (multiple of 2): one 16-pixel tile covers it
    predictor = noise_predictor(pipe.unet, pipe.encoder, pipe.image_processor.normalize(lr), 1, 16, 4)
    assert isinstance(predictor, TiledNoisePredictor)  # the tiled code path runs
    untiled = _raw(pipe, lr, tile_size=None)
    tiled = _raw(pipe, lr, tile_size=16, tile_overlap=4)
    assert untiled.shape == tiled.shape == (1, 3, 40, 56)
    assert (untiled - tiled).abs().max() <= 1e-5


def test_tile_condition_projection_equals_the_crop_of_the_full_projection(pipe):
    lr = torch.rand(1, 3, 24, 20) * 2 - 1
    condition = pipe.encoder.encode(lr)
    full = pipe.unet.project_condition(condition)
    tiles = plan_tiles(24, 20, 8, 8, 2, 2)
    predictor = TiledNoisePredictor(pipe.unet, condition, tiles, overlap=2, num_samples=1)
    for tile in tiles:
        rows, cols = tile.hr_slices(4)
        assert (predictor._project(tile) - full[:, :, rows, cols]).abs().max() <= 1e-6


def test_default_auto_does_not_tile_small_images(pipe):
    lr = torch.rand(1, 3, 12, 12)
    assert (_raw(pipe, lr) - _raw(pipe, lr, tile_size=None)).abs().max() == 0


# ---------------------------------------------------------------------------------------------------------------
# seams


def _blur_pipeline() -> SRDiffPipeline:
    """
    A tiny pipeline whose U-Net is a deep positive blur (random weights in [0.5, 1.5] / fan-in, no bias): its output
    is smooth and depends on context, so tiles that disagree at their borders show as a jump. The default random
    init gives nearly context-free, high-frequency output in which seams would be invisible.
    """
    pipe = tiny_pipeline()
    generator = torch.Generator().manual_seed(3)
    for module in pipe.unet.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
        elif isinstance(module, torch.nn.ConvTranspose2d):
            fan_in = module.weight.shape[0] * module.weight.shape[2] * module.weight.shape[3] / module.stride[0] ** 2
        else:
            continue
        module.weight.data = (torch.rand(module.weight.shape, generator=generator) + 0.5) / fan_in
        if module.bias is not None:
            module.bias.data.zero_()
    pipe.unet.conv_out.weight.data *= 1e-3  # noise predictions of order 1
    return pipe


def _seam_ratio(image: torch.Tensor, borders) -> float:
    """Mean |x[j] - x[j-1]| over columns j at tile borders, divided by the same mean over all other columns."""
    diffs = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    at_border = torch.zeros_like(diffs, dtype=torch.bool)
    at_border[[b - 1 for b in borders]] = True
    return (diffs[at_border].mean() / diffs[~at_border].mean()).item()


def _tile_borders(tiles, width: int, scale: int = 4):
    edges = {t.left for t in tiles if t.left > 0} | {t.left + t.width for t in tiles if t.left + t.width < width}
    return sorted(e * scale for e in edges)


@pytest.mark.parametrize("level", ["noise_prediction", "pipeline"])
def test_no_seams_across_tile_borders_and_naive_tiling_has_them(level):
    pipe = _blur_pipeline()
    pipe.scheduler = pipe.fast_scheduler("ddim")
    lr = F.interpolate(
        torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1)), size=(32, 32), mode="bilinear"
    )
    x_t = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))

    def output(tile_size, overlap):
        if level == "noise_prediction":
            lr_11 = pipe.image_processor.normalize(lr)
            return noise_predictor(pipe.unet, pipe.encoder, lr_11, 1, tile_size, overlap)(x_t, 50)
        # deterministic DDIM from t-bar = 50 with zero latents: no white noise to hide a seam in
        return _raw(
            pipe, lr, latents=torch.zeros(1, 3, 128, 128), strength=0.5, tile_size=tile_size, tile_overlap=overlap
        )

    with torch.no_grad():
        untiled = output(None, 0)
        blended = output(8, 4)
        naive = output(8, 0)  # abutting tiles, no blending
    blended_borders = _tile_borders(plan_tiles(32, 32, 8, 8, 4, 2), 32)
    naive_borders = _tile_borders(plan_tiles(32, 32, 8, 8, 0, 2), 32)
    assert _seam_ratio(blended, blended_borders) <= 1.5
    # the measurement detects seams: without overlap and blending the borders stand out ...
    assert _seam_ratio(naive, naive_borders) > 1.5
    # ... and blending also keeps the tiled result closer to the untiled one
    assert (blended - untiled).abs().mean() < 0.5 * (naive - untiled).abs().mean()


# ---------------------------------------------------------------------------------------------------------------
# memory


def _largest_activation(pipe, lr, **kwargs) -> int:
    """The largest tensor any U-Net or encoder layer outputs during a call, in elements."""
    largest = [0]

    def hook(module, inputs, output):
        if torch.is_tensor(output):
            largest[0] = max(largest[0], output.numel())

    handles = [m.register_forward_hook(hook) for m in [*pipe.unet.modules(), *pipe.encoder.modules()]]
    try:
        pipe(lr, num_inference_steps=1, output_type="pt", **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return largest[0]


def test_network_activations_are_bounded_by_the_tile_not_the_image(pipe):
    small, large = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 32, 32)
    assert _largest_activation(pipe, small, tile_size=8, tile_overlap=2) == _largest_activation(
        pipe, large, tile_size=8, tile_overlap=2
    )
    # untiled, they grow with the image (4x pixels): the check above can fail
    assert _largest_activation(pipe, large, tile_size=None) >= 3.5 * _largest_activation(pipe, small, tile_size=None)


def _peak_rss_increase_kb(run) -> int:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back so earlier runs do not hide this one's peak
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
    status = Path("/proc/self/status").read_text()
    before = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    run()
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) - before


def test_peak_memory_stays_flat_as_the_image_grows():
    """Peak RSS of a call (Linux /proc), for 4x the pixels; with a U-Net wide enough that activations dominate
    the full-size buffers (latents, blended prediction, output), as in real models."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        assert callable(ctypes.CDLL("libc.so.6").malloc_trim)
    except (OSError, AttributeError) as error:
        pytest.skip(f"needs Linux /proc/self/clear_refs and glibc to measure peak RSS: {error}")
    torch.manual_seed(0)
    encoder = RRDBEncoder(num_features=8, num_blocks=2, upscale_factor=4)
    unet = SRDiffUNet2DModel(block_out_channels=(32, 32, 32, 32), condition_channels=8, upscale_factor=4)
    pipe = SRDiffPipeline(unet=unet.eval(), encoder=encoder.eval())
    pipe.set_progress_bar_config(disable=True)
    pipe(torch.rand(1, 3, 16, 16), num_inference_steps=1, tile_size=8, tile_overlap=2)  # warm-up allocations

    def peak(size, tile_size):
        lr = torch.rand(1, 3, size, size)
        return _peak_rss_increase_kb(lambda: pipe(lr, num_inference_steps=1, output_type="pt", tile_size=tile_size))

    tiled = peak(64, 32) / peak(32, 32)
    untiled = peak(64, None) / peak(32, None)
    assert tiled < 2, f"tiled peak grew {tiled:.2f}x for 4x the pixels"
    assert untiled > 2, f"untiled peak grew only {untiled:.2f}x: the measurement cannot see growth here"


# ---------------------------------------------------------------------------------------------------------------
# few-step schedulers


@pytest.mark.parametrize("name", ["ddim", "dpmsolver++", "unipc"])
def test_fast_schedulers_start_at_the_last_training_step_and_run(pipe, name):
    from srdiff_diffusers import fast_scheduler

    # the scheduler itself, rather than its config, gives the same (it used to be taken for a Hub id)
    assert dict(fast_scheduler(pipe.scheduler, name).config) == dict(pipe.fast_scheduler(name).config)
    with pytest.raises(TypeError, match="`config` must be a scheduler config"):
        fast_scheduler("ddim", name)
    pipe.scheduler = pipe.fast_scheduler(name)
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    pipe.scheduler.set_timesteps(10)
    assert int(pipe.scheduler.timesteps[0]) == 99 and len(pipe.scheduler.timesteps) == 10
    lr = torch.rand(1, 3, 8, 8)
    steps = []
    out = pipe(
        lr,
        num_inference_steps=10,
        output_type="raw",
        callback_on_step_end=lambda p, i, t, kw: steps.append(int(t)) or {},
    ).images
    assert len(steps) == 10 and out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    # the predicted x0 is clipped to [-1, 1] like the paper's sampler: a last step with an absurd noise prediction
    # must land inside [-1, 1] (DDIM: clip_sample; multistep solvers: thresholding with sample_max_value=1)
    scheduler = pipe.fast_scheduler(name)
    scheduler.set_timesteps(1)
    sample = torch.randn(1, 3, 8, 8)
    x0 = scheduler.step(torch.full_like(sample, 50.0), scheduler.timesteps[0], sample).prev_sample
    assert x0.abs().max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="Unknown fast scheduler"):
        pipe.fast_scheduler("euler")
