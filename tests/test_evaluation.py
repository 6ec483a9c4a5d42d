"""Tests of the evaluation metrics (against scikit-image, numpy and hand computations), its loop and CLI."""

import csv
import json
import math
import os
import shutil
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srdiff_diffusers import SRDiffPipeline, imresize
from srdiff_diffusers.cli import main
from srdiff_diffusers.evaluation import (
    METRIC_SCRIPT,
    LPIPSScorer,
    diversity_sigma,
    diversity_sigma_torch,
    evaluate_pipeline,
    lr_psnr,
    lr_psnr_torch,
    prepare_pair,
    psnr,
    psnr_torch,
    ssim,
    ssim_torch,
    super_resolve,
)
from srdiff_diffusers.evaluation.loop import min_evaluable_size, to_uint8_rgb
from srdiff_diffusers.evaluation.report import markdown_table, write_json

from conftest import DATASETS, require_dir, tiny_pipeline


def random_pair(shape, seed=0, noise=25):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, shape, dtype=np.uint8)
    prediction = np.clip(reference.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return prediction, reference


def smooth_image(size, seed):
    """A 'natural-looking' HR test image: a gradient plus mild noise."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.linspace(0, 200, size), np.linspace(0, 55, size))
    image = np.stack([ramp, ramp[::-1], ramp.T], axis=-1) + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(40, 36, 3), (23, 31, 3), (20, 18)])
def test_paper_convention_equals_skimage(shape):
    prediction, reference = random_pair(shape)
    channel_axis = -1 if len(shape) == 3 else None
    expected_psnr = peak_signal_noise_ratio(reference, prediction, data_range=255)
    expected_ssim = structural_similarity(prediction, reference, channel_axis=channel_axis, data_range=255)
    assert abs(psnr(prediction, reference) - expected_psnr) < 1e-6
    assert abs(ssim(prediction, reference) - expected_ssim) < 1e-6


def test_batched_torch_path_matches_per_image_skimage():
    pairs = [random_pair((24, 20, 3), seed=seed, noise=5 + 10 * seed) for seed in range(3)]
    predictions = torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p, _ in pairs])
    references = torch.stack([torch.from_numpy(r).permute(2, 0, 1) for _, r in pairs])
    batch_psnr, batch_ssim = psnr_torch(predictions, references), ssim_torch(predictions, references)
    assert batch_psnr.shape == batch_ssim.shape == (3,)
    for index, (prediction, reference) in enumerate(pairs):
        assert abs(float(batch_psnr[index]) - peak_signal_noise_ratio(reference, prediction, data_range=255)) < 1e-6
        expected = structural_similarity(prediction, reference, channel_axis=-1, data_range=255)
        assert abs(float(batch_ssim[index]) - expected) < 1e-6
    # float input on the 0-255 scale gives the same numbers as uint8
    assert torch.allclose(psnr_torch(predictions.float(), references.float()), batch_psnr)


def y_by_hand(rgb):
    r, g, b = (float(v) for v in rgb)
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def test_y_convention_constant_images_by_hand():
    scale = 2
    prediction = np.empty((20, 20, 3), dtype=np.uint8)
    prediction[:] = (200, 100, 50)
    reference = np.empty_like(prediction)
    reference[:] = (190, 110, 40)
    y_pred, y_ref = y_by_hand((200, 100, 50)), y_by_hand((190, 110, 40))
    expected_psnr = 10 * math.log10(255**2 / (y_pred - y_ref) ** 2)
    # constant images: zero variances and covariance, so SSIM is the luminance term only
    c1 = (0.01 * 255) ** 2
    expected_ssim = (2 * y_pred * y_ref + c1) / (y_pred**2 + y_ref**2 + c1)
    assert abs(psnr(prediction, reference, "y", scale) - expected_psnr) < 1e-9
    assert abs(ssim(prediction, reference, "y", scale) - expected_ssim) < 1e-9
    # the paper convention (RGB) gives a different, also hand-computable PSNR: MSE = (100 + 100 + 100) / 3
    assert abs(psnr(prediction, reference) - 10 * math.log10(255**2 / 100)) < 1e-9


def test_y_convention_crops_the_border_and_reads_gray_as_rgb():
    scale = 3
    reference = np.full((20, 20), 100, dtype=np.uint8)
    prediction = reference.copy()
    prediction[:scale, :] = 0  # a difference only inside the cropped border
    assert psnr(prediction, reference, "y", scale) == math.inf
    assert psnr(prediction, reference) < 100  # seen without cropping
    prediction[10, 10] = 110  # one pixel inside: Y differs by 219 * 10 / 255
    mse = (219 * 10 / 255) ** 2 / (20 - 2 * scale) ** 2
    assert abs(psnr(prediction, reference, "y", scale) - 10 * math.log10(255**2 / mse)) < 1e-9
    rgb = np.repeat(prediction[:, :, None], 3, axis=2), np.repeat(reference[:, :, None], 3, axis=2)
    assert abs(psnr(*rgb, "y", scale) - psnr(prediction, reference, "y", scale)) < 1e-9


def test_y_ssim_equals_skimage_gaussian_settings_on_the_luma():
    prediction, reference = random_pair((40, 44, 3), seed=3, noise=30)
    scale = 4

    def luma(image):
        image = image.astype(np.float64)
        y = 16 + (65.481 * image[..., 0] + 128.553 * image[..., 1] + 24.966 * image[..., 2]) / 255
        return y[scale:-scale, scale:-scale]

    # Wang et al.'s settings as scikit-image documents them.
    expected = structural_similarity(
        luma(prediction), luma(reference), data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(prediction, reference, "y", scale) - expected) < 1e-9


def test_metric_argument_errors():
    prediction, reference = random_pair((16, 16, 3))
    with pytest.raises(ValueError, match="same size"):
        psnr(prediction, reference[:8])
    with pytest.raises(TypeError, match="uint8"):
        psnr(prediction.astype(np.float32) / 255, reference)
    with pytest.raises(ValueError, match="scale"):
        ssim(prediction, reference, "y")
    with pytest.raises(ValueError, match="convention"):
        psnr(prediction, reference, "rgb")
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(prediction[:6, :6], reference[:6, :6])
    # the torch metrics: [0, 1] floats (pipeline output) and NaN were scored without a word (86 dB, inf)
    a, b = (torch.from_numpy(x).permute(2, 0, 1).float() for x in (prediction, reference))
    for metric in (psnr_torch, ssim_torch):
        with pytest.raises(ValueError, match=r"looks like \[0, 1\] data.*multiply it by 255"):
            metric(a / 255, b / 255)
        with pytest.raises(ValueError, match="NaN or infinite"):
            metric(a * float("nan"), b)
    assert psnr_torch(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)).item() == math.inf  # black 0-255 images are fine
    assert psnr_torch(a, b).item() == pytest.approx(psnr(prediction, reference))
    # one colour image is not K samples of one
    with pytest.raises(ValueError, match="looks like one HxWxC image"):
        diversity_sigma(prediction)
    with pytest.raises(ValueError, match="at least 2 samples"):
        diversity_sigma([])


def test_evaluate_pipeline_argument_errors(tmp_path):
    hr = smooth_image(32, seed=3)
    run = dict(scale=4, lpips=False, progress=False)
    for kwargs, error, message in [
        (dict(hr_images=str(tmp_path), methods=["bicubic"]), TypeError, "for a folder, list its files"),
        (dict(hr_images=hr, methods=["bicubic"]), TypeError, "got one ndarray"),
        (dict(hr_images=[hr], methods="bicubic"), TypeError, "`methods` must be a list"),
        (dict(hr_images=[hr], methods=["bicubic"], names="a"), TypeError, "`names` must be a list"),
        (dict(hr_images=[hr], methods=["bicubic"], seed=None), ValueError, "`seed` must be an integer"),
    ]:
        with pytest.raises(error, match=message):
            evaluate_pipeline(None, **kwargs, **run)
    one = evaluate_pipeline(None, [hr], methods=["bicubic"], num_samples=np.int64(1), **run)
    assert one["methods"]["bicubic"]["psnr"] > 0
    for scale in (None, 0, 4.0, "4"):
        with pytest.raises(ValueError, match="`scale` must be a positive integer"):
            prepare_pair(hr, scale=scale)
    with pytest.raises(ValueError, match="`crop` must be an integer"):
        prepare_pair(hr, scale=4, crop=30.5)
    lr = prepare_pair(hr, scale=4)[1]
    for method, image, message in [
        ("bicubic", lr[:, :, 0], "HxWx3 uint8 array"),  # gray: used to fail inside torch
        ("bicubic", lr / 255.0, "HxWx3 uint8 array"),  # floats gave a float64 image at 1/255 of the scale
        ("bicubc", lr, "Unknown method 'bicubc'"),  # was "needs a model"
    ]:
        with pytest.raises(ValueError, match=message):
            super_resolve(method, image, scale=4)
    with pytest.raises(ValueError, match="does not match the model"):
        super_resolve("rrdb", lr, scale=2, pipe=tiny_pipeline())


def test_lr_psnr_infinite_for_a_downscale_consistent_image_and_finite_otherwise():
    hr = smooth_image(32, seed=1)
    lr = imresize(torch.from_numpy(hr).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0).numpy()
    assert lr_psnr(hr, lr, 4) == math.inf  # HR itself downscales to the LR input exactly
    # a perturbed SR image: LR-PSNR is the PSNR of its own MATLAB downscale against LR
    sr = np.clip(hr.astype(int) + 20, 0, 255).astype(np.uint8)
    downscaled = imresize(torch.from_numpy(sr).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0).numpy()
    assert abs(lr_psnr(sr, lr, 4) - peak_signal_noise_ratio(lr, downscaled, data_range=255)) < 1e-9
    with pytest.raises(ValueError, match="times 4"):
        lr_psnr(sr[:28], lr, 4)
    # reports keep the infinity, written as the string "inf" in strict JSON
    row = {"method": "bicubic", "image": "a", "height": 32, "width": 32, "num_samples": 1}
    results = {
        "scale": 4,
        "methods": {"bicubic": {"num_images": 1, "psnr": 30.0, "lr_psnr": math.inf, "lpips": 0.1, "sigma": 0.0}},
        "per_image": [dict(row, lr_psnr=math.inf)],
    }
    batch = lr_psnr_torch(torch.from_numpy(hr).permute(2, 0, 1)[None], torch.from_numpy(lr).permute(2, 0, 1)[None], 4)
    assert math.isinf(float(batch[0]))
    assert "| inf |" in markdown_table(results)


def test_lr_psnr_inf_is_the_string_inf_in_json(tmp_path):
    write_json({"scale": 4, "methods": {"srdiff": {"lr_psnr": math.inf}}, "per_image": []}, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert json.loads(text)["methods"]["srdiff"]["lr_psnr"] == "inf"
    assert "Infinity" not in text


def test_diversity_sigma():
    sample = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    assert diversity_sigma([sample, sample, sample]) == 0.0
    samples = np.random.default_rng(1).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    expected = np.std(samples.astype(np.float64), axis=0, ddof=0).mean()
    assert abs(diversity_sigma(samples) - expected) < 1e-9
    assert abs(float(diversity_sigma_torch(torch.from_numpy(samples).permute(0, 3, 1, 2))) - expected) < 1e-9
    with pytest.raises(ValueError, match="at least 2"):
        diversity_sigma(samples[:1])


# ---------------------------------------------------------------------------------------------------------------
# LPIPS and the `evaluate` module
# ---------------------------------------------------------------------------------------------------------------


def test_lpips_unavailable_is_reported_not_faked(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # the import fails, whatever is installed
    scorer = LPIPSScorer()
    assert not scorer.available
    assert scorer.unavailable_text.startswith("LPIPS unavailable: ")
    assert "lpips" in scorer.reason
    hr = smooth_image(32, seed=0)
    results = evaluate_pipeline(None, [hr], scale=4, methods=["bicubic"], progress=False)
    assert results["methods"]["bicubic"]["lpips"] == scorer.unavailable_text
    assert results["per_image"][0]["lpips"] is None
    assert scorer.unavailable_text in markdown_table(results)


def test_lpips_weights_missing_is_reported(monkeypatch):
    class FakeLPIPSModule:
        @staticmethod
        def LPIPS(**kwargs):
            raise RuntimeError("alexnet weights not found and the network is unreachable")

    monkeypatch.setitem(sys.modules, "lpips", FakeLPIPSModule)
    scorer = LPIPSScorer()
    assert not scorer.available
    assert scorer.unavailable_text.startswith("LPIPS unavailable: ")
    assert "alexnet weights not found" in scorer.unavailable_text
    with pytest.raises(RuntimeError, match="LPIPS unavailable"):
        scorer(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_evaluate_load_offline(monkeypatch, tmp_path):
    evaluate = pytest.importorskip("evaluate", reason="the `evaluate` package (eval extra) is not installed")
    for variable in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    metric = evaluate.load(METRIC_SCRIPT)
    pairs = [random_pair((24, 24, 3), seed=seed) for seed in range(2)]
    hr = [reference for _, reference in pairs]
    lr = [imresize(torch.from_numpy(h).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0).numpy() for h in hr]
    result = metric.compute(predictions=[p for p, _ in pairs], references=hr, scale=4, low_res=lr)
    assert abs(result["psnr"] - np.mean([peak_signal_noise_ratio(r, p, data_range=255) for p, r in pairs])) < 1e-6
    expected_ssim = np.mean([structural_similarity(p, r, channel_axis=-1, data_range=255) for p, r in pairs])
    assert abs(result["ssim"] - expected_ssim) < 1e-6
    assert result["psnr_y"] == pytest.approx(np.mean([psnr(p, r, "y", 4) for p, r in pairs]))
    assert math.isinf(metric.compute(predictions=hr, references=hr, scale=4, low_res=lr)["lr_psnr"])


# ---------------------------------------------------------------------------------------------------------------
# The loop and the command
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path):
    """A tiny saved pipeline and two 32x32 HR images (one gray, as Set14 has one)."""
    tiny_pipeline().save_pretrained(tmp_path / "model")
    (tmp_path / "hr").mkdir()
    PIL.Image.fromarray(smooth_image(32, seed=0)).save(tmp_path / "hr" / "a.png")
    PIL.Image.fromarray(smooth_image(32, seed=1)[:, :, 0]).save(tmp_path / "hr" / "b.png")
    return tmp_path


def test_evaluate_pipeline_bicubic_numbers_are_independent_metrics():
    hr = smooth_image(32, seed=2)
    results = evaluate_pipeline(None, [hr], scale=4, methods=["bicubic"], lpips=False, progress=False)
    lr = imresize(torch.from_numpy(hr).permute(2, 0, 1), scale=1 / 4)
    bicubic = imresize(lr, scale=4).permute(1, 2, 0).numpy()
    summary = results["methods"]["bicubic"]
    assert abs(summary["psnr"] - peak_signal_noise_ratio(hr, bicubic, data_range=255)) < 1e-9
    assert abs(summary["ssim"] - structural_similarity(hr, bicubic, channel_axis=-1, data_range=255)) < 1e-9
    assert summary["sigma"] == 0.0


def test_mean_of_samples_is_the_pixel_mean_of_the_srdiff_samples():
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    hr = smooth_image(32, seed=3)
    seen = {}
    results = evaluate_pipeline(
        pipe, [hr], methods=["srdiff_mean", "srdiff"], num_inference_steps=2, num_samples=3, lpips=False,
        progress=False, on_image=lambda name, hr, lr, outputs: seen.update(outputs),
    )  # fmt: skip
    samples = seen["srdiff"]
    assert len(samples) == 3 and len(seen["srdiff_mean"]) == 1
    # Independent reference: numpy's mean of the three saved samples, rounded, scored by scikit-image.
    expected_mean = np.round(np.stack(samples).astype(float).mean(axis=0)).astype(np.uint8)
    assert np.array_equal(seen["srdiff_mean"][0], expected_mean)
    summary = results["methods"]["srdiff_mean"]
    assert abs(summary["psnr"] - peak_signal_noise_ratio(hr, expected_mean, data_range=255)) < 1e-6
    assert summary["sigma"] is None and results["per_image"][-1]["num_samples"] == 1
    # Asked alone, the mean runs the pipeline itself with the same seed: the same image.
    alone = evaluate_pipeline(
        pipe, [hr], methods=["srdiff_mean"], num_inference_steps=2, num_samples=3, lpips=False, progress=False
    )
    assert alone["methods"]["srdiff_mean"]["psnr"] == summary["psnr"]
    with pytest.raises(ValueError, match="num_samples` >= 2"):
        evaluate_pipeline(pipe, [hr], methods=["srdiff_mean"], num_inference_steps=2, lpips=False, progress=False)


def test_cli_writes_every_file_and_a_rerun_reuses_the_cache(data, monkeypatch, capsys):
    calls = []
    original_call = SRDiffPipeline.__call__

    def counting_call(self, *args, **kwargs):
        calls.append(kwargs.get("num_images_per_prompt"))
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(SRDiffPipeline, "__call__", counting_call)
    out = data / "report"
    argv = [
        "evaluate", "--model", str(data / "model"), "--hr-dir", str(data / "hr"), "--steps", "2",
        "--num-samples", "2", "--device", "cpu", "-o", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    assert calls == [2, 2]  # one pipeline call per image, K = 2 samples each
    for name in ("per_image.csv", "summary.json", "results.md", "grids/a.png", "grids/b.png", "diversity/a.png"):
        assert (out / name).is_file(), name
    with open(out / "per_image.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["method"], row["image"]) for row in rows) == sorted(
        (method, image) for method in ("bicubic", "rrdb", "srdiff") for image in ("a", "b")
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"bicubic", "rrdb", "srdiff"}
    assert summary["methods"]["srdiff"]["sigma"] > 0
    markdown = (out / "results.md").read_text()
    for column in ("PSNR", "SSIM", "LPIPS", "LR-PSNR", "σ", "| Bicubic |", "| RRDB |", "| SRDiff |"):
        assert column in markdown
    grid = PIL.Image.open(out / "grids" / "a.png")
    # 6 columns (LR, bicubic, RRDB, 2 samples, HR) of 256-px tiles with 4-px gaps, 2 rows (full, zoom)
    assert ((grid.width - 4) / 260, (grid.height - 16 - 4) / 260) == (6, 2)
    # the SRDiff images saved are the samples the metrics were computed on
    srdiff_rows = [row for row in rows if row["method"] == "srdiff" and row["image"] == "a"]
    hr_a = np.asarray(PIL.Image.open(data / "hr" / "a.png"))
    samples = [np.asarray(PIL.Image.open(out / "images" / "srdiff" / f"a_s{k}.png")) for k in range(2)]
    assert abs(float(srdiff_rows[0]["psnr"]) - np.mean([psnr(s, hr_a) for s in samples])) < 1e-5
    assert abs(float(srdiff_rows[0]["sigma"]) - diversity_sigma(samples)) < 1e-5

    # rerun: nothing is recomputed, same report
    mtime = os.stat(out / "grids" / "a.png").st_mtime_ns
    assert main(argv) == 0
    assert calls == [2, 2]
    assert os.stat(out / "grids" / "a.png").st_mtime_ns == mtime
    assert json.loads((out / "summary.json").read_text())["methods"] == summary["methods"]
    assert json.loads((out / "summary.json").read_text())["settings"]["computed"] == 0
    # other settings are other results: more steps recompute SRDiff only
    assert main(argv[:6] + ["3"] + argv[7:]) == 0
    assert calls == [2, 2, 2, 2]
    # and so is a reduced precision, whose samples differ a little; it runs the networks in that dtype
    dtypes = []

    def recording_call(self, *args, **kwargs):
        dtypes.append(self.unet.dtype)
        return counting_call(self, *args, **kwargs)

    monkeypatch.setattr(SRDiffPipeline, "__call__", recording_call)
    assert main(argv + ["--dtype", "bfloat16"]) == 0
    assert calls == [2, 2, 2, 2, 2, 2] and dtypes == [torch.bfloat16] * 2
    assert json.loads((out / "summary.json").read_text())["settings"]["computed"] > 0


def test_cli_mean_of_samples_row_and_image(data, capsys):
    out = data / "mean_report"
    argv = [
        "evaluate", "--model", str(data / "model"), "--hr-dir", str(data / "hr"), "--steps", "2", "--num-samples", "2",
        "--srdiff-mean", "--baselines", "none", "--device", "cpu", "-o", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    assert "| SRDiff, mean of samples |" in (out / "results.md").read_text()
    samples = [np.asarray(PIL.Image.open(out / "images" / "srdiff" / f"a_s{k}.png")).astype(float) for k in range(2)]
    mean = np.asarray(PIL.Image.open(out / "images" / "srdiff_mean" / "a.png"))
    assert np.array_equal(mean, np.round((samples[0] + samples[1]) / 2).astype(np.uint8))


def test_cli_given_lr_folder_and_bicubic_only(data, capsys):
    (data / "lr").mkdir()
    for name in ("a", "b"):
        hr = np.asarray(PIL.Image.open(data / "hr" / f"{name}.png").convert("RGB"))
        lr = imresize(torch.from_numpy(hr).permute(2, 0, 1), scale=1 / 4).permute(1, 2, 0).numpy()
        PIL.Image.fromarray(lr).save(data / "lr" / f"{name}x4.png")  # DIV2K-style names
    out = data / "bicubic"
    argv = ["evaluate", "--hr-dir", str(data / "hr"), "--lr-dir", str(data / "lr"), "--scale", "4", "-o", str(out)]
    assert main(argv + ["--no-lpips"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["bicubic"]
    assert summary["methods"]["bicubic"]["lpips"] == "LPIPS unavailable: disabled (--no-lpips)"
    assert "LPIPS unavailable: disabled" in (out / "results.md").read_text()


def test_cli_dataset_from_a_data_folder_or_a_saved_dataset(data, capsys):
    datasets = pytest.importorskip("datasets")

    def bicubic_psnr(*source):
        out = data / f"report{len(list(data.glob('report*')))}"
        assert main(["evaluate", *source, "--scale", "4", "--no-lpips", "-o", str(out)]) == 0
        return json.loads((out / "summary.json").read_text())["methods"]["bicubic"]["psnr"]

    expected = bicubic_psnr("--hr-dir", str(data / "hr"))
    (data / "folder" / "train").mkdir(parents=True)
    for name in ("a", "b"):
        shutil.copy(data / "hr" / f"{name}.png", data / "folder" / "train" / f"{name}.png")
    assert bicubic_psnr("--dataset", str(data / "folder"), "--split", "train") == pytest.approx(expected, abs=1e-9)
    # a `save_to_disk` folder, which `load_dataset` refuses ("use load_from_disk")
    images = [PIL.Image.open(data / "hr" / f"{name}.png") for name in ("a", "b")]
    saved = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"image": images}, features=datasets.Features(
        {"image": datasets.Image()}))})  # fmt: skip
    saved.save_to_disk(str(data / "saved"))
    assert bicubic_psnr("--dataset", str(data / "saved"), "--split", "test") == pytest.approx(expected, abs=1e-9)
    assert main(["evaluate", "--dataset", str(data / "saved"), "--split", "train", "--scale", "4", "-o",
                 str(data / "o_split")]) == 2  # fmt: skip
    assert "has no split 'train'; it has ['test']" in capsys.readouterr().err


def test_cli_refuses_a_too_small_image_before_evaluating_any(data, capsys, monkeypatch):
    from srdiff_diffusers.commands import evaluate as evaluate_command

    evaluated = []
    real = evaluate_command.FigureWriter.__call__
    monkeypatch.setattr(
        evaluate_command.FigureWriter, "__call__", lambda *a, **k: evaluated.append(1) or real(*a, **k)
    )
    PIL.Image.new("RGB", (16, 24)).save(data / "hr" / "z_small.png")  # sorted last, so reached last
    for source in (["--hr-dir", str(data / "hr")], ["--dataset", str(data / "hr"), "--split", "train"]):
        out = data / f"o_small{len(evaluated)}{source[0]}"
        assert main(["evaluate", *source, "--scale", "4", "--no-lpips", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "HR image 'z_small' (16x24) is too small" in err and "at least 20x20" in err
        assert not evaluated and not out.exists()


def test_cli_errors(data, capsys):
    hr, model = str(data / "hr"), str(data / "model")

    def error_of(*argv):
        assert main(["evaluate", *argv]) == 2
        return capsys.readouterr().err

    assert "no such folder" in error_of("--hr-dir", str(data / "missing"), "--scale", "4", "-o", str(data / "o1"))
    assert "no such folder" in error_of("--model", str(data / "nope"), "--hr-dir", hr, "-o", str(data / "o2"))
    message = error_of("--model", model, "--hr-dir", hr, "--scale", "2", "-o", str(data / "o3"))
    assert "--scale 2 does not match" in message
    assert "--scale is required" in error_of("--hr-dir", hr, "-o", str(data / "o4"))
    assert "exactly one of --hr-dir" in error_of("--scale", "4", "-o", str(data / "o5"))
    message = error_of("--model", model, "--hr-dir", hr, "--srdiff-mean", "-o", str(data / "o7"))
    assert "--num-samples 2 or more" in message
    message = error_of("--model", model, "--hr-dir", hr, "--srdiff-mean", "--num-samples", "2", "--no-srdiff",
                       "-o", str(data / "o8"))  # fmt: skip
    assert "--no-srdiff turns off" in message  # used to give a report without the mean row
    message = error_of("--hr-dir", hr, "--scale", "4", "--baselines", "none,bicubic", "-o", str(data / "o9"))
    assert "'none' alone" in message
    assert "empty" in error_of("--hr-dir", hr, "--scale", "4", "--baselines", ",", "-o", str(data / "o10"))
    # LR images of the wrong size
    (data / "lr").mkdir()
    for name in ("a", "b"):
        PIL.Image.new("RGB", (16, 16)).save(data / "lr" / f"{name}.png")
    message = error_of("--hr-dir", hr, "--lr-dir", str(data / "lr"), "--scale", "4", "-o", str(data / "o6"))
    assert "should be 8x8" in message
    # a folder that is not ours is never written into
    (data / "mine").mkdir()
    (data / "mine" / "notes.txt").write_text("keep")
    assert "not an `srdiff evaluate` report" in error_of("--hr-dir", hr, "--scale", "4", "-o", str(data / "mine"))
    assert sorted(p.name for p in (data / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_the_smallest_evaluable_size_is_what_the_metrics_take(scale):
    minimum = min_evaluable_size(scale)
    rng = np.random.default_rng(scale)
    for size, fits in ((minimum, True), (minimum - scale, False)):  # sizes are multiples of the scale
        hr = rng.integers(0, 256, (size, size + scale, 3), dtype=np.uint8)
        sr = rng.integers(0, 256, hr.shape, dtype=np.uint8)
        if fits:  # every metric of the report runs on it
            assert np.isfinite(image_metrics_of(hr, sr, scale)).all()
        else:  # the metrics themselves refuse it, and prepare_pair says why first, for the image and for `crop`
            with pytest.raises(ValueError, match="SSIM"):
                image_metrics_of(hr, sr, scale)
            message = f"too small: at x{scale} the metrics need HR images of at least {minimum}x"
            with pytest.raises(ValueError, match=message):
                prepare_pair(hr, scale=scale)
            with pytest.raises(ValueError, match=f"crop to {minimum} or more"):
                prepare_pair(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), scale=scale, crop=size)


def image_metrics_of(hr, sr, scale):
    """PSNR/SSIM in both conventions straight from `evaluation.metrics` (not through prepare_pair)."""
    return [metric(sr, hr, convention=c, scale=scale) for metric in (psnr, ssim) for c in ("paper", "y")]


def test_sixteen_bit_files_are_rounded_to_eight_bits_not_clipped(tmp_path):
    values = np.array([[0, 257, 1000], [32896, 65000, 65535]], dtype=np.uint16)
    PIL.Image.fromarray(values).save(tmp_path / "g16.png")
    with PIL.Image.open(tmp_path / "g16.png") as check:
        assert check.mode.startswith("I")  # PIL reads it as a 16-bit (or 32-bit integer) gray image
    expected = np.round(values / 257).astype(np.uint8)  # 65535 -> 255, 257 -> 1
    rgb = to_uint8_rgb(tmp_path / "g16.png")
    assert rgb.shape == (2, 3, 3) and all(np.array_equal(rgb[:, :, c], expected) for c in range(3))
    with pytest.raises(ValueError, match="mode 'F'"):
        to_uint8_rgb(PIL.Image.fromarray(values.astype(np.float32)))


def test_cli_reports_a_corrupt_image_before_loading_the_model(data, capsys, monkeypatch):
    from srdiff_diffusers.commands import evaluate as evaluate_command

    monkeypatch.setattr(evaluate_command, "load_model", lambda *a, **k: pytest.fail("loaded the model first"))
    bad = data / "hr_bad"
    shutil.copytree(data / "hr", bad)
    (bad / "zz.png").write_bytes(b"\x89PNG not really")
    argv = ["evaluate", "--model", str(data / "model"), "--hr-dir", str(bad), "-o", str(data / "o_bad")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "zz.png" in err and not (data / "o_bad").exists()


def test_set14_bicubic_y_psnr_is_the_literature_value():
    """Set14 x4 bicubic is 26.0-26.1 dB Y-PSNR (BT.601 luma, 4-pixel border cropped) in the SR literature."""
    set14 = require_dir(DATASETS / "Set14")
    values = []
    for hr_path in sorted((set14 / "HR").glob("*.png")):
        hr, lr = prepare_pair(hr_path, set14 / "LR_bicubic" / "X4" / hr_path.name, scale=4)
        (bicubic,) = super_resolve("bicubic", lr, scale=4)
        values.append(psnr(bicubic, hr, "y", 4))
    assert len(values) == 14
    assert 25.9 < np.mean(values) < 26.2


def test_temperature_is_passed_to_the_sampler_and_keys_the_cache(tmp_path):
    pipe = tiny_pipeline()
    pipe.scheduler = pipe.fast_scheduler("ddim")
    hr = smooth_image(32, seed=4)
    common = dict(methods=["srdiff"], num_inference_steps=2, lpips=False, progress=False, cache_dir=tmp_path)
    seen = {}
    cooled = evaluate_pipeline(
        pipe, [hr], temperature=0.0, on_image=lambda name, hr, lr, outputs: seen.update(outputs), **common
    )
    assert cooled["settings"]["temperature"] == 0.0
    # Independent reference: the pipeline itself at temperature 0 (DDIM, eta 0: the seed no longer matters).
    lr = imresize(torch.from_numpy(hr).permute(2, 0, 1), scale=1 / 4).round().clamp(0, 255).byte()
    direct = pipe(lr.permute(1, 2, 0).numpy(), num_inference_steps=2, temperature=0.0, output_type="np").images[0]
    assert np.array_equal(seen["srdiff"][0], np.round(direct * 255).astype(np.uint8))
    # A cached result at temperature 0 is not reused for temperature 1.
    plain = evaluate_pipeline(pipe, [hr], **common)
    assert plain["settings"]["computed"] == 1 and plain["settings"]["temperature"] == 1.0
    assert plain["methods"]["srdiff"]["psnr"] != cooled["methods"]["srdiff"]["psnr"]
