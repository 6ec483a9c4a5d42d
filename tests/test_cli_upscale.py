"""`srdiff upscale` through `srdiff_diffusers.cli.main`, with a tiny saved pipeline."""

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from srdiff_diffusers import SRDiffPipeline
from srdiff_diffusers.cli import main
from srdiff_diffusers import loading
from srdiff_diffusers.commands import speed, upscale

from conftest import tiny_pipeline


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    g = np.random.default_rng(0)
    PIL.Image.fromarray(g.integers(0, 256, (7, 13, 3), dtype=np.uint8)).save(folder / "odd.png")
    PIL.Image.fromarray(g.integers(0, 256, (6, 5), dtype=np.uint8)).save(folder / "gray.png")
    (folder / "notes.txt").write_text("not an image, and not picked up from the folder")
    return folder


def upscale_cli(*args, model_dir, out, steps=1):
    # ddpm unless `args` names another sampler (the later option wins): the pipeline's own default, to compare with
    return main(["upscale", "--scheduler", "ddpm", *map(str, args), "-o", str(out), "--model", model_dir,
                 "--steps", str(steps), "--seed", "0"])


def test_folder_of_images(model_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert upscale_cli(inputs, model_dir=model_dir, out=out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gray_x4.png", "odd_x4.png"]
    with PIL.Image.open(out / "odd_x4.png") as image:
        assert image.size == (52, 28) and image.mode == "RGB"
    with PIL.Image.open(out / "gray_x4.png") as image:
        assert image.size == (20, 24) and image.mode == "L"
    assert "odd_x4.png" in capsys.readouterr().out


def test_same_as_the_pipeline(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    assert upscale_cli(inputs / "odd.png", model_dir=model_dir, out=out, steps=2) == 0
    pipe = tiny_pipeline()
    with PIL.Image.open(inputs / "odd.png") as image:
        # The seed rule (srdiff_diffusers.seeds): sample k of every image from --seed + k.
        generator = torch.Generator().manual_seed(0)
        expected = pipe(image, num_inference_steps=2, generator=generator).images[0]
    with PIL.Image.open(out / "odd_x4.png") as image:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(expected))


def test_refuses_to_overwrite(model_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "odd_x4.png"
    existing.write_bytes(b"precious")
    assert upscale_cli(inputs / "odd.png", model_dir=model_dir, out=out) == 2
    err = capsys.readouterr().err
    assert "srdiff upscale: error:" in err and "odd_x4.png" in err and "--overwrite" in err
    assert existing.read_bytes() == b"precious"
    assert main(["upscale", str(inputs / "odd.png"), "-o", str(out), "--model", model_dir, "--steps", "1",
                 "--overwrite"]) == 0
    with PIL.Image.open(existing) as image:
        assert image.size == (52, 28)
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_num_samples_and_schedulers(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    assert upscale_cli(inputs / "gray.png", "--num-samples", "2", "--scheduler", "dpm", model_dir=model_dir,
                       out=out, steps=2) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["gray_x4_sample0.png", "gray_x4_sample1.png"]
    first, second = (np.asarray(PIL.Image.open(out / n)) for n in names)
    assert first.shape == (24, 20) and not np.array_equal(first, second)
    for scheduler in ("ddim", "unipc", "ddpm"):
        assert upscale_cli(inputs / "odd.png", "--scheduler", scheduler, model_dir=model_dir, out=tmp_path / scheduler,
                           steps=2) == 0
        assert (tmp_path / scheduler / "odd_x4.png").is_file()


def test_scheduler_swap_uses_trailing_spacing(model_dir):
    pipe = loading.load_pipeline(model_dir)
    loading.set_scheduler(pipe, "dpm")
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    pipe.scheduler.set_timesteps(5)
    assert int(pipe.scheduler.timesteps[0]) == 99  # starts from pure noise
    assert pipe.scheduler.config.beta_schedule == "squaredcos_cap_v2"


def test_sample_image(model_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["upscale", "--sample", "camera", "-o", str(out), "--model", model_dir, "--steps", "1"]) == 0
    with PIL.Image.open(out / "camera_lr.png") as lr, PIL.Image.open(out / "camera_x4.png") as sr:
        assert lr.size == (128, 128) and lr.mode == "L"
        assert sr.size == (512, 512) and sr.mode == "L"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "input not found"),
        (lambda d: (d / "bad.png").write_bytes(b"\x89PNG garbage") and d / "bad.png", "cannot read"),
        (lambda d: (d / "notes.txt"), "cannot read"),
    ],
)
def test_bad_input_files(model_dir, inputs, tmp_path, capsys, make, message):
    out = tmp_path / "out"
    assert upscale_cli(inputs / "odd.png", make(inputs), model_dir=model_dir, out=out) == 2
    err = capsys.readouterr().err
    assert err.startswith("srdiff upscale: error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing written before the error


def test_truncated_image(model_dir, inputs, tmp_path, capsys):
    data = (inputs / "odd.png").read_bytes()
    (inputs / "cut.png").write_bytes(data[: len(data) // 2])
    assert upscale_cli(inputs / "cut.png", model_dir=model_dir, out=tmp_path / "out") == 2
    assert "cannot read" in capsys.readouterr().err


def test_images_over_the_decompression_bomb_limit(model_dir, inputs, tmp_path, capsys, monkeypatch):
    PIL.Image.new("L", (30, 30)).save(inputs / "big.png")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses images over twice the limit
    assert upscale_cli(inputs / "big.png", model_dir=model_dir, out=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("srdiff upscale: error: cannot read") and "crop or downscale" in err
    assert len(err.strip().splitlines()) == 1


def test_an_image_too_large_for_the_memory_is_one_error_line(model_dir, inputs, tmp_path, capsys, monkeypatch):
    from srdiff_diffusers import runtime

    monkeypatch.setattr(runtime, "available_cpu_memory", lambda: 1000)
    assert upscale_cli(inputs / "odd.png", model_dir=model_dir, out=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "srdiff upscale: error: Upscaling 1 image(s) x4" in err and "Traceback" not in err


def test_missing_init_image_is_named(model_dir, inputs, tmp_path, capsys):
    argv = ["upscale", str(inputs / "odd.png"), "-o", str(tmp_path / "out"), "--model", model_dir, "--steps", "1"]
    assert main(argv + ["--init-image", str(tmp_path / "nope.png")]) == 2
    err = capsys.readouterr().err
    assert "nope.png does not exist" in err and "corrupt" not in err


def test_version(capsys):
    import srdiff_diffusers

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"srdiff-diffusers {srdiff_diffusers.__version__}"


def test_bad_models(inputs, tmp_path, capsys):
    assert main(["upscale", str(inputs / "odd.png"), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "no")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["upscale", str(inputs / "odd.png"), "-o", str(tmp_path / "o"), "--model", str(inputs)]) == 2
    assert "no model_index.json" in capsys.readouterr().err
    # a Hub id that cannot be reached (no network here) or does not exist: one clear line, no traceback
    assert main(["upscale", str(inputs / "odd.png"), "-o", str(tmp_path / "o"), "--model",
                 "nobody-xyz/no-such-srdiff-model"]) == 2
    err = capsys.readouterr().err
    assert "could not load the model nobody-xyz/no-such-srdiff-model" in err and "Traceback" not in err
    assert "stacktrace above" not in err  # diffusers' pointer to a traceback the user is not shown


def test_missing_weights_in_model_folder(model_dir, inputs, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert upscale_cli(inputs / "odd.png", model_dir=str(broken), out=tmp_path / "out") == 2
    assert "could not load the model" in capsys.readouterr().err


def test_diverged_weights_give_the_guard_message_not_a_traceback(inputs, tmp_path, capsys):
    pipe = tiny_pipeline()
    with torch.no_grad():
        pipe.unet.conv_out.weight.fill_(float("nan"))  # as a diverged training run leaves them
    pipe.save_pretrained(tmp_path / "nan_model")
    assert upscale_cli(inputs / "odd.png", model_dir=str(tmp_path / "nan_model"), out=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "srdiff upscale: error: The noise predictor returned NaN" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "odd_x4.png").exists()


def test_no_model_uses_the_fallback(inputs, tmp_path, monkeypatch):
    requested = []

    def tiny_fallback(model, dtype, backend):  # the full-size random model is too slow here; its build is checked below
        requested.append((model, dtype))
        return tiny_pipeline()

    monkeypatch.setattr(upscale, "load_pipeline", tiny_fallback)
    assert main(["upscale", str(inputs / "gray.png"), "-o", str(tmp_path / "out"), "--steps", "1"]) == 0
    assert requested == [(None, torch.float32)] and (tmp_path / "out" / "gray_x4.png").is_file()


def test_random_weights_fallback_builds_the_default_config(monkeypatch, capsys):
    monkeypatch.setattr(loading, "default_model_path", lambda: None)
    pipe = loading.load_pipeline(None)
    assert "RANDOM weights" in capsys.readouterr().err and "--model" in loading.RANDOM_WEIGHTS_WARNING
    assert pipe.upscale_factor == 4 and tuple(pipe.unet.config.block_out_channels) == (64, 128, 192, 256)


def test_shipped_default_model_is_used(model_dir, monkeypatch, capsys):
    monkeypatch.setattr(loading, "DEFAULT_MODEL_PATH", model_dir)
    pipe = loading.load_pipeline(None)
    assert "RANDOM" not in capsys.readouterr().err
    assert tuple(pipe.unet.config.block_out_channels) == (8, 16, 16, 32)


def test_argument_errors(model_dir, inputs, tmp_path, capsys):
    assert main(["upscale", "-o", str(tmp_path / "out"), "--model", model_dir]) == 2
    assert "--sample" in capsys.readouterr().err
    assert upscale_cli(inputs / "odd.png", "--num-samples", "0", model_dir=model_dir, out=tmp_path / "o") == 2
    assert "--num-samples" in capsys.readouterr().err
    (inputs / "b").mkdir()
    (inputs / "b" / "odd.png").write_bytes((inputs / "odd.png").read_bytes())
    assert upscale_cli(inputs / "odd.png", inputs / "b" / "odd.png", model_dir=model_dir, out=tmp_path / "o") == 2
    assert "would overwrite each other" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, message",
    [("--steps", 0, "--steps must be a positive integer"), ("--tile-overlap", -1, "--tile-overlap must be a non-neg")],
)
def test_pipeline_errors_name_the_options(option, value, message, model_dir, inputs, tmp_path, capsys):
    # checked once, by the pipeline's check_inputs; the command names the option the user typed
    for name, source in [("file", [str(inputs / "odd.png")]), ("sample", ["--sample", "astronaut"])]:
        out = tmp_path / name
        assert main(["upscale", *source, option, str(value), "-o", str(out), "--model", model_dir]) == 2
        assert f"srdiff upscale: error: {message}" in capsys.readouterr().err
        assert not out.exists()  # refused: no folder, no sample LR image, nothing to clean up


def test_bfloat16_runs_the_networks_in_bfloat16_close_to_float32(model_dir, inputs, tmp_path):
    assert upscale_cli(inputs / "odd.png", model_dir=model_dir, out=tmp_path / "fp32", steps=2) == 0
    args = (inputs / "odd.png", "--dtype", "bfloat16")
    assert upscale_cli(*args, model_dir=model_dir, out=tmp_path / "bf16", steps=2) == 0
    fp32, bf16 = (np.asarray(PIL.Image.open(tmp_path / d / "odd_x4.png")).astype(float) for d in ("fp32", "bf16"))
    assert not np.array_equal(fp32, bf16)  # a float32 run with the same seed would be identical
    psnr = 10 * np.log10(255.0**2 / np.mean((fp32 - bf16) ** 2))
    assert psnr > 45, psnr  # measured: 66 dB


def test_speed_option_errors(model_dir, inputs, tmp_path, capsys, monkeypatch):
    args = (inputs / "odd.png", "--device", "cpu")
    assert upscale_cli(*args, "--dtype", "float16", model_dir=model_dir, out=tmp_path / "o") == 2
    assert "--dtype bfloat16" in capsys.readouterr().err
    monkeypatch.setattr("srdiff_diffusers.commands.speed.shutil.which", lambda name: None)
    assert upscale_cli(*args, "--compile", model_dir=model_dir, out=tmp_path / "o") == 2
    assert "needs a C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_keeps_freed_cpu_memory_on_the_cpu(model_dir, inputs, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(speed, "retain_freed_cpu_memory", lambda: calls.append("cpu"))
    assert upscale_cli(inputs / "odd.png", "--device", "cpu", model_dir=model_dir, out=tmp_path / "out") == 0
    assert calls == ["cpu"]


def test_default_sampler_is_ten_ddim_steps(model_dir, inputs, tmp_path, monkeypatch):
    calls = []
    original = SRDiffPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append((type(self.scheduler).__name__, kwargs.get("num_inference_steps")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SRDiffPipeline, "__call__", spy)
    assert main(["upscale", str(inputs / "odd.png"), "-o", str(tmp_path / "out"), "--model", model_dir]) == 0
    assert calls == [("DDIMScheduler", 10)]


def test_temperature_reaches_the_pipeline_and_the_manifest(model_dir, inputs, tmp_path, capsys):
    out, manifest = tmp_path / "out", tmp_path / "manifest.jsonl"
    args = [inputs / "odd.png", "--temperature", "0.5", "--manifest", manifest]
    assert upscale_cli(*args, model_dir=model_dir, out=out, steps=2) == 0
    with PIL.Image.open(inputs / "odd.png") as image:
        seed = 0  # --seed 0, sample 0
        expected = tiny_pipeline()(
            image, num_inference_steps=2, generator=[torch.Generator().manual_seed(seed)], temperature=0.5
        ).images[0]
        default = tiny_pipeline()(image, num_inference_steps=2, generator=[torch.Generator().manual_seed(seed)]).images[0]
    with PIL.Image.open(out / "odd_x4.png") as image:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(expected))
        assert not np.array_equal(np.asarray(image), np.asarray(default))
    assert json.loads(manifest.read_text().splitlines()[0])["temperature"] == 0.5
    for bad in ("-1", "nan"):
        assert upscale_cli(inputs / "odd.png", "--temperature", bad, model_dir=model_dir, out=tmp_path / "o") == 2
        assert "`temperature` must be a number >= 0" in capsys.readouterr().err
