"""Real-world degradations (issue 16): each part against its formula or an independent reference."""

import io
import json
import math
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

pytest.importorskip("kornia", reason="the degradations need kornia (pip install 'srdiff-diffusers[train]')")

from srdiff_diffusers import degradations as deg  # noqa: E402
from srdiff_diffusers.cli import main as cli_main  # noqa: E402

from conftest import DATASETS, require_dir  # noqa: E402


def photo(size=96, seed=0):
    """A textured RGB test image in [0, 1], (3, size, size): smooth colour plus fine detail, like a photo crop."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [0.5 + 0.3 * np.sin(2 * np.pi * (rng.uniform(1, 3) * x + rng.uniform(1, 3) * y)) for _ in range(3)]
    detail = 0.1 * np.sin(2 * np.pi * 9 * x) * np.sin(2 * np.pi * 7 * y)
    return torch.from_numpy(np.clip(np.stack(channels) + detail, 0, 1)).float()


def psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


# --- kernels -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "generalized", "plateau"])
def test_kernels_sum_to_one_and_are_symmetric(kind):
    kernel = deg.anisotropic_gaussian_kernel(21, 2.5, 1.0, 0.7, beta=1.5, kind=kind)
    assert kernel.shape == (21, 21)
    assert abs(float(kernel.sum()) - 1) < 1e-6
    assert float(kernel.min()) >= 0
    # point symmetry: k(x) = k(-x) for every covariance
    assert torch.allclose(kernel, kernel.flip(0).flip(1), atol=1e-7)


def test_isotropic_gaussian_is_the_outer_product_of_1d_gaussians():
    sigma, size = 1.7, 15
    t = np.arange(size) - size // 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    expected = np.outer(g, g) / np.outer(g, g).sum()
    kernel = deg.anisotropic_gaussian_kernel(size, sigma, sigma, 0.3)  # rotation changes nothing when isotropic
    np.testing.assert_allclose(kernel.numpy(), expected, atol=1e-7)


def test_anisotropic_gaussian_has_the_rotated_covariance():
    sigma_x, sigma_y, theta = 3.0, 1.0, math.pi / 6
    kernel = deg.anisotropic_gaussian_kernel(41, sigma_x, sigma_y, theta).double()  # wide: tails negligible
    y, x = torch.meshgrid(torch.arange(-20, 21.0), torch.arange(-20, 21.0), indexing="ij")
    covariance = np.array([[(kernel * x * x).sum(), (kernel * x * y).sum()], [(kernel * x * y).sum(), (kernel * y * y).sum()]])
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    expected = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    np.testing.assert_allclose(covariance, expected, atol=1e-3)


def test_generalized_and_plateau_kernels_follow_their_formulas():
    size, sx, sy, theta, beta = 11, 2.0, 1.2, 0.4, 2.5
    t = np.arange(size) - size // 2
    x, y = np.meshgrid(t, t, indexing="xy")
    inverse = np.linalg.inv(
        np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        @ np.diag([sx**2, sy**2])
        @ np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    )
    d = inverse[0, 0] * x * x + 2 * inverse[0, 1] * x * y + inverse[1, 1] * y * y
    for kind, values in (("generalized", np.exp(-0.5 * d**beta)), ("plateau", 1 / (1 + d**beta))):
        kernel = deg.anisotropic_gaussian_kernel(size, sx, sy, theta, beta, kind)
        np.testing.assert_allclose(kernel.numpy(), values / values.sum(), atol=1e-6, err_msg=kind)
    gaussian = deg.anisotropic_gaussian_kernel(size, sx, sy, theta)
    assert torch.allclose(deg.anisotropic_gaussian_kernel(size, sx, sy, theta, 1.0, "generalized"), gaussian, atol=1e-7)


def test_sinc_kernel_is_the_circular_lowpass_of_its_formula():
    scipy_special = pytest.importorskip("scipy.special")
    size, cutoff = 21, math.pi / 3
    t = np.arange(size) - size // 2
    x, y = np.meshgrid(t, t)
    r = np.hypot(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = cutoff * scipy_special.j1(cutoff * r) / (2 * np.pi * r)
    values[r == 0] = cutoff**2 / (4 * np.pi)
    kernel = deg.sinc_kernel(size, cutoff)
    np.testing.assert_allclose(kernel.numpy(), values / values.sum(), atol=1e-7)
    # a low-pass: it keeps the mean and removes most of a frequency above the cut-off
    spectrum = np.abs(np.fft.fft2(kernel.numpy(), s=(64, 64)))
    assert abs(spectrum[0, 0] - 1) < 1e-6
    assert spectrum[0, 24] < 0.2  # 2 pi * 24 / 64 = 0.75 pi, well above pi / 3


def test_blur_with_a_delta_kernel_is_identity_and_keeps_a_flat_image():
    image = photo(32)[None]
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1
    assert torch.allclose(deg.blur(image, delta), image, atol=1e-6)
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(deg.blur(flat, deg.anisotropic_gaussian_kernel(21, 3, 1, 0.5)), flat, atol=1e-6)
    # smaller than half the kernel (a tiny patch's LR): the borders are replicated, as F.pad's "replicate" does
    tiny, kernel = photo(32)[None][..., :8, :8], deg.anisotropic_gaussian_kernel(21, 2.0, 1.0, 0.3)
    padded = torch.nn.functional.pad(tiny, (10, 10, 10, 10), mode="replicate")
    expected = torch.nn.functional.conv2d(padded, kernel.expand(3, 1, 21, 21).flip(-1, -2), groups=3)
    assert torch.allclose(deg.blur(tiny, kernel), expected, atol=1e-6)


# --- noise, JPEG ---------------------------------------------------------------------------------------------


def test_gaussian_noise_has_the_requested_sigma_and_gray_noise_is_shared():
    flat = torch.full((1, 3, 256, 256), 0.5)
    generator = torch.Generator().manual_seed(0)
    noisy = deg.gaussian_noise(flat, 20 / 255, gray=False, generator=generator)
    assert abs(float((noisy - flat).std()) * 255 - 20) < 0.3
    assert abs(float((noisy - flat).mean())) < 2e-3
    gray = deg.gaussian_noise(flat, 20 / 255, gray=True, generator=generator)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    assert not torch.equal(noisy[:, 0], noisy[:, 1])


def test_poisson_noise_variance_is_proportional_to_the_intensity():
    generator = torch.Generator().manual_seed(0)
    for level in (0.2, 0.8):
        flat = torch.full((1, 3, 256, 256), level)
        noise = deg.poisson_noise(flat, 2.0, gray=False, generator=generator) - flat
        # Var(scale * (P(x n) / n - x)) = scale^2 x / n
        expected = 2.0**2 * level / deg.POISSON_LEVELS
        assert abs(float(noise.var()) / expected - 1) < 0.05


def pil_jpeg(image01, quality):
    array = (image01.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return torch.from_numpy(np.array(PIL.Image.open(buffer))).permute(2, 0, 1).float() / 255


def test_jpeg_is_near_identity_at_100_and_far_at_10_like_pils_encoder():
    image = (photo(96) * 255).round() / 255
    high = deg.jpeg(image[None], 100.0)[0]
    low = deg.jpeg(image[None], 10.0)[0]
    assert psnr(high, image) > 40
    assert psnr(low, image) < 32
    # PIL's encoder, the reference, loses about as much at the same quality
    for quality, ours in ((10, low), (50, deg.jpeg(image[None], 50.0)[0])):
        assert abs(psnr(ours, image) - psnr(pil_jpeg(image, quality), image)) < 2.0, quality
        assert psnr(ours, pil_jpeg(image, quality)) > 30


# --- the pipeline ------------------------------------------------------------------------------------------


def test_degrade_is_reproducible_quantised_and_lr_sized():
    hr = photo(96)
    a = deg.degrade(hr, 4, np.random.default_rng([0, 7]))
    b = deg.degrade(hr, 4, np.random.default_rng([0, 7]))
    c = deg.degrade(hr, 4, np.random.default_rng([0, 8]))
    assert a.shape == (3, 24, 24)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal((a * 255).round() / 255, a) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert deg.degrade(hr[None], 4, np.random.default_rng(0)).shape == (1, 3, 24, 24)


def test_degrade_is_worse_than_bicubic_on_average():
    from srdiff_diffusers import imresize

    hr = photo(96)
    bicubic = imresize(hr[None], scale=0.25)[0]
    errors = [psnr(deg.degrade(hr, 4, np.random.default_rng(k)), bicubic) for k in range(8)]
    assert np.mean(errors) < 35  # noise, blur and JPEG move the LR far from the clean bicubic one


def test_degrade_refuses_sizes_that_are_not_a_multiple_of_the_scale():
    with pytest.raises(ValueError, match="multiple of the scale 4"):
        deg.degrade(photo(30), 4, np.random.default_rng(0))


def test_config_overrides_and_refuses_unknown_settings(tmp_path):
    path = tmp_path / "mild.json"
    path.write_text(json.dumps({"first": {"noise_sigma": [1, 5]}, "final_sinc_prob": 0.0}))
    config = deg.DegradationConfig.from_json(str(path))
    assert tuple(config.first.noise_sigma) == (1, 5) and config.final_sinc_prob == 0.0
    assert config.second == deg.DegradationConfig().second
    with pytest.raises(ValueError, match="Unknown degradation settings"):
        deg.DegradationConfig.from_dict({"thrid": {}})
    with pytest.raises(ValueError, match="Unknown settings .*noise"):
        deg.DegradationConfig.from_dict({"first": {"noise": 1}})
    with pytest.raises(ValueError, match="jpeg_quality"):
        deg.DegradationConfig.from_dict({"second": {"jpeg_quality": [0, 120]}})


# --- training data and the command ---------------------------------------------------------------------------


def test_realistic_training_patches_are_reproducible_and_degraded(tmp_path):
    from srdiff_diffusers.training import SRPatchDataset, load_hr_images

    folder = tmp_path / "hr"
    folder.mkdir()
    PIL.Image.fromarray((photo(80).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(folder / "a.png")
    records = load_hr_images(str(folder), cache_dir=str(tmp_path / "cache"))
    realistic = SRPatchDataset(records, 32, 4, seed=3, degradation=deg.DegradationConfig())
    bicubic = SRPatchDataset(records, 32, 4, seed=3)
    first, again, other = realistic[5], realistic[5], realistic[6]
    assert first["lr"].shape == (3, 8, 8) and first["hr"].shape == (3, 32, 32)
    assert torch.equal(first["lr"], again["lr"]) and torch.equal(first["hr"], again["hr"])
    assert not torch.equal(first["lr"], other["lr"])
    # same crop and augmentation as the bicubic path: only the LR differs
    assert torch.equal(first["hr"], bicubic[5]["hr"])
    assert not torch.allclose(first["lr"], bicubic[5]["lr"], atol=2 / 255)


def write_hr(folder, names):
    for index, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray((photo(50, index).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)


def test_degrade_command_is_reproducible_per_file_and_keeps_names(tmp_path, capsys):
    write_hr(tmp_path / "hr", ["a.png", "sub/b.jpg"])
    for out in ("one", "two"):
        assert cli_main(["degrade", "--hr-dir", str(tmp_path / "hr"), "-o", str(tmp_path / out), "--seed", "0"]) == 0
    for name in ("a.png", "sub/b.png"):
        one = np.asarray(PIL.Image.open(tmp_path / "one" / name))
        assert one.shape == (12, 12, 3)  # 50 // 4, the HR cropped to 48 first
        assert np.array_equal(one, np.asarray(PIL.Image.open(tmp_path / "two" / name)))
    a, b = (np.asarray(PIL.Image.open(tmp_path / "one" / n)) for n in ("a.png", "sub/b.png"))
    assert not np.array_equal(a, b)
    assert cli_main(["degrade", "--hr-dir", str(tmp_path / "hr"), "-o", str(tmp_path / "one")]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli_main(["degrade", "--hr-dir", str(tmp_path / "hr"), "-o", str(tmp_path / "hr")]) == 2
    assert "would replace the HR ones" in capsys.readouterr().err


def test_degrade_command_bicubic_matches_the_shared_matlab_lr(tmp_path):
    set14 = require_dir(DATASETS / "Set14")
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "img_001.png").write_bytes((set14 / "HR" / "img_001.png").read_bytes())
    assert cli_main(["degrade", "--hr-dir", str(hr), "-o", str(tmp_path / "lr"), "--degradation", "bicubic"]) == 0
    ours = np.asarray(PIL.Image.open(tmp_path / "lr" / "img_001.png").convert("RGB")).astype(float)
    reference = np.asarray(PIL.Image.open(set14 / "LR_bicubic" / "X4" / "img_001.png").convert("RGB")).astype(float)
    assert np.abs(ours - reference).mean() < 0.2


def test_training_with_realistic_degradation_runs_and_validates_on_degraded_crops(tmp_path):
    folder = tmp_path / "hr"
    write_hr(folder, [f"{i}.png" for i in range(3)])
    command = [
        sys.executable, "-m", "srdiff_diffusers", "train", "--stage", "rrdb", "--train_data_dir", str(folder),
        "--output_dir", str(tmp_path / "out"), "--resolution", "32", "--train_batch_size", "2", "--report_to", "none",
        "--rrdb_num_features", "8", "--rrdb_num_blocks", "2", "--max_train_steps", "2", "--degradation", "realistic",
        "--validation_steps", "2", "--num_validation_images", "1", "--cache_dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "validation" / "step-2.png").is_file()
    assert (tmp_path / "out" / "config.json").is_file()
    bad = [str(tmp_path / "bad") if arg == str(tmp_path / "out") else arg for arg in command]
    result = subprocess.run(bad + ["--degradation_config", str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert result.returncode == 2 and "`--degradation_config`" in result.stderr and "missing.json" in result.stderr
