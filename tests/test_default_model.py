"""
Every model shipped in the package must load and super-resolve a bundled photo degraded as it was trained for: a
broken model or loader cannot land.

Measured on this crop (192x192 HR, seed 0): bicubic 25.79 dB PSNR / 36.72 dB LR-PSNR, the RRDB head 26.24 / 35.83;
SRDiff with 10 DDIM steps (8 samples, one generator): single samples 25.40-26.14 dB (around bicubic: on Set14 the
shipped model's samples average 24.35 dB against bicubic's 24.26), LR-PSNR 45.4-46.6 dB, their per-pixel mean
27.32 dB (above bicubic and the RRDB head); a pipeline with a random U-Net 12.68 / 22.45. So the "better than
bicubic" checks are: the mean of the 8 samples in PSNR (a 1.5 dB margin), every sample in LR-PSNR; every single
sample must be within 1 dB of bicubic in PSNR (a broken or random model is 13 dB below).
"""

import numpy as np
import pytest
import torch

from srdiff_diffusers import DEFAULT_MODEL_PATH, SHIPPED_MODELS, SRDiffPipeline
from srdiff_diffusers.matlab_resize import imresize

skimage = pytest.importorskip("skimage", reason="scikit-image provides the bundled sample image (extra `test`)")
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

MAX_MODEL_MEGABYTES = 16  # the limit for each shipped model's weights
# How far below bicubic one SRDiff sample's PSNR may be (see the module docstring); a random U-Net is 13 dB below.
SRDIFF_PSNR_MARGIN_DB = 1.0


def lr_psnr(sr: np.ndarray, lr: np.ndarray) -> float:
    """PSNR between the SR image downscaled with MATLAB bicubic (uint8, as the LR image was made) and the LR image."""
    down = imresize(torch.from_numpy(np.ascontiguousarray(sr)).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0)
    return peak_signal_noise_ratio(lr, down.numpy(), data_range=255)


def bicubic_lr(hr: np.ndarray) -> np.ndarray:
    return imresize(torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0).numpy()


# How each shipped model's test LR is made from the HR crop: the degradation the model was trained for.
TEST_LR = {"bicubic": bicubic_lr, "bicubic-1step": bicubic_lr}


@pytest.fixture(scope="module", params=sorted(SHIPPED_MODELS))
def shipped(request):
    """(name, pipeline) of each shipped model. No skip: a missing or broken shipped model must fail the suite."""
    path = SHIPPED_MODELS[request.param]
    assert path.is_dir(), f"the shipped model {request.param!r} is missing at {path}"
    pipe = SRDiffPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe


@pytest.fixture(scope="module")
def astronaut_hr():
    """A 192x192 HR crop of scikit-image's astronaut (face and helmet detail)."""
    return skimage.data.astronaut()[40:232, 140:332]


def test_every_shipped_model_is_checked_and_the_default_is_shipped():
    assert set(SHIPPED_MODELS) <= set(TEST_LR), "add how to make the test LR of a new shipped model to TEST_LR"
    assert DEFAULT_MODEL_PATH in SHIPPED_MODELS.values()


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_model_is_small_and_complete(name):
    path = SHIPPED_MODELS[name]
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert {"model_index.json", "unet/diffusion_pytorch_model.safetensors", "encoder/diffusion_pytorch_model.safetensors",
            "scheduler/scheduler_config.json", "README.md"} <= set(files)  # fmt: skip
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    assert size <= MAX_MODEL_MEGABYTES


def test_shipped_model_beats_bicubic_on_a_bundled_photo(shipped, astronaut_hr):
    name, pipe = shipped
    hr = astronaut_hr
    lr = TEST_LR[name](hr)
    bicubic = to_uint8(imresize(torch.from_numpy(lr).permute(2, 0, 1).float() / 255, scale=4).permute(1, 2, 0).numpy())
    bicubic_psnr = peak_signal_noise_ratio(hr, bicubic, data_range=255)
    bicubic_lr_psnr = lr_psnr(bicubic, lr)

    # The RRDB encoder's own SR head (the paper's PSNR-oriented baseline).
    lr_tensor = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        rrdb = pipe.encoder(lr_tensor).sample
    rrdb = to_uint8(((rrdb[0] + 1) / 2).permute(1, 2, 0).numpy())
    assert peak_signal_noise_ratio(hr, rrdb, data_range=255) > bicubic_psnr

    # SRDiff's own samples (temperature 1) with DDIM and the model's stored steps (10, or 1 for a one-step model).
    pipe.scheduler = pipe.fast_scheduler("ddim")
    generator = torch.Generator().manual_seed(0)
    steps = pipe.sampling_defaults()[0]
    out = pipe(lr, num_inference_steps=steps, num_images_per_prompt=8, generator=generator, output_type="np",
               temperature=1.0)  # fmt: skip
    samples = [to_uint8(image) for image in out.images]
    assert len(samples) == 8 and samples[0].shape == hr.shape
    for sample in samples:
        assert lr_psnr(sample, lr) > bicubic_lr_psnr
        assert peak_signal_noise_ratio(hr, sample, data_range=255) > bicubic_psnr - SRDIFF_PSNR_MARGIN_DB
    mean = np.round(np.stack(samples).astype(np.float64).mean(axis=0)).astype(np.uint8)
    assert peak_signal_noise_ratio(hr, mean, data_range=255) > bicubic_psnr


def test_shipped_model_with_its_stored_defaults_beats_bicubic(shipped, astronaut_hr):
    """What `pipe(image)`, `srdiff upscale` and the demo give by default: one sample, above bicubic (no skip)."""
    name, pipe = shipped
    assert pipe.config.default_num_inference_steps is not None, f"{name} stores no sampling defaults"
    lr = TEST_LR[name](astronaut_hr)
    bicubic = to_uint8(imresize(torch.from_numpy(lr).permute(2, 0, 1).float() / 255, scale=4).permute(1, 2, 0).numpy())
    sample = to_uint8(pipe(lr, generator=torch.Generator().manual_seed(0), output_type="np").images[0])
    psnr = peak_signal_noise_ratio(astronaut_hr, sample, data_range=255)
    assert psnr > peak_signal_noise_ratio(astronaut_hr, bicubic, data_range=255) + 0.3, psnr
    assert lr_psnr(sample, lr) > lr_psnr(bicubic, lr)
