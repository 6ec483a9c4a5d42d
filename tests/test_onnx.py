"""ONNX export and the onnxruntime pipeline: the graphs against the torch models, whole images against the torch
pipeline, dynamic sizes, the one-step upscaler graph, and the errors for wrong folders."""

import json
import os

import numpy as np
import pytest
import torch

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install .[onnx])")

from srdiff_diffusers import SRDiffPipeline, default_scheduler, fast_scheduler, imresize  # noqa: E402
from srdiff_diffusers.cli import main as srdiff  # noqa: E402
from srdiff_diffusers.onnx_export import ONNX_CONFIG_NAME, MatlabBicubicUpscale, export_onnx  # noqa: E402
from srdiff_diffusers.pipelines.pipeline_srdiff_onnx import OnnxSRDiffPipeline  # noqa: E402
from srdiff_diffusers.pipelines.sizes import padded_size  # noqa: E402

from conftest import tiny_components, tiny_pipeline  # noqa: E402

FP32_TOLERANCE = 1e-4  # max abs difference of an exported graph against its torch model
ODD_LR_SIZES = [(7, 5), (9, 13)]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def session(path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def one_step_pipeline() -> SRDiffPipeline:
    unet, encoder = tiny_components(seed=1)
    scheduler = fast_scheduler(default_scheduler().config, "ddim", prediction_type="sample")
    pipe = SRDiffPipeline(
        unet=unet, encoder=encoder, scheduler=scheduler, default_num_inference_steps=1, default_temperature=0.5
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load(folder) -> OnnxSRDiffPipeline:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    pipe = OnnxSRDiffPipeline.from_pretrained(folder, sess_options=options)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    pipe = tiny_pipeline()
    folder = export_onnx(pipe, tmp_path_factory.mktemp("onnx") / "teacher")
    return pipe, folder


@pytest.fixture(scope="module")
def one_step(tmp_path_factory):
    pipe = one_step_pipeline()
    folder = export_onnx(pipe, tmp_path_factory.mktemp("onnx") / "one-step")
    return pipe, folder


# ---------------------------------------------------------------------------------------------------------------
# the graphs
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_bicubic_upscale_in_onnx_ops_equals_imresize(scale):
    bicubic = MatlabBicubicUpscale(scale)
    for height, width in [(1, 1), (2, 3), (7, 5), (12, 9)]:
        images = torch.rand(2, 3, height, width, generator=seeded(height))
        torch.testing.assert_close(bicubic(images), imresize(images, scale=scale), rtol=0, atol=1e-5)


def test_export_writes_graphs_and_sampling_config(teacher, one_step):
    pipe, folder = teacher
    names = sorted(os.listdir(folder))
    assert names == ["condition_projection.onnx", "encoder.onnx", ONNX_CONFIG_NAME, "unet.onnx"]  # no upscaler
    config = json.loads((folder / ONNX_CONFIG_NAME).read_text())
    assert config["upscale_factor"] == 4 and config["sample_size_multiple"] == 8 and config["lr_size_multiple"] == 2
    assert config["residual_rescale"] == 2.0 and config["lr_upscale_divisor"] == 255.0
    assert config["prediction_type"] == "epsilon" and config["scheduler"]["class_name"] == "DDPMScheduler"
    np.testing.assert_allclose(config["alphas_cumprod"], pipe.scheduler.alphas_cumprod.numpy(), rtol=1e-6)
    assert config["resolved_defaults"] == {"num_inference_steps": 100, "temperature": 1.0}
    one_step_config = json.loads((one_step[1] / ONNX_CONFIG_NAME).read_text())
    assert one_step_config["prediction_type"] == "sample" and one_step_config["default_num_inference_steps"] == 1
    assert (one_step[1] / "upscaler.onnx").is_file() and one_step_config["upscaler"]["timestep"] == 99
    assert one_step_config["upscaler"]["temperature"] == 0.5 == one_step_config["default_temperature"]
    # batch, height and width are symbolic in every graph
    for name in ("encoder.onnx", "unet.onnx", "condition_projection.onnx"):
        for graph_input in session(folder / name).get_inputs():
            dims = graph_input.shape
            assert all(isinstance(d, str) for d in [dims[0], *dims[2:]]), (name, graph_input.name, dims)
    upscaler = session(one_step[1] / "upscaler.onnx")
    assert [i.name for i in upscaler.get_inputs()] == ["input", "noise"]
    assert [o.name for o in upscaler.get_outputs()] == ["output"]


def test_graphs_match_the_torch_models_at_odd_sizes(teacher):
    pipe, folder = teacher
    encoder, projection, unet = (session(folder / f"{n}.onnx") for n in ("encoder", "condition_projection", "unet"))
    for k, (height, width) in enumerate(ODD_LR_SIZES):
        lr01 = torch.rand(2, 3, height, width, generator=seeded(k))
        with torch.no_grad():
            sample, condition = pipe.encoder(lr01 * 2 - 1, return_dict=False)
        onnx_condition, onnx_image = encoder.run(None, {"lr": lr01.numpy()})
        np.testing.assert_allclose(onnx_condition, condition.numpy(), rtol=0, atol=FP32_TOLERANCE)
        np.testing.assert_allclose(onnx_image, ((sample + 1) / 2).numpy(), rtol=0, atol=FP32_TOLERANCE)

        # the U-Net takes HR sizes that are multiples of 8: the LR size padded as the pipeline does
        padded = pipe.pad_to_multiple(lr01)
        with torch.no_grad():
            condition = pipe.encoder.encode(padded * 2 - 1)
            projected = pipe.unet.project_condition(condition)
            noisy = torch.randn(2, 3, padded.shape[-2] * 4, padded.shape[-1] * 4, generator=seeded(k))
            timestep = torch.tensor([3, 97])
            prediction = pipe.unet(noisy, timestep, projected_condition=projected).sample
        (onnx_projected,) = projection.run(None, {"condition": condition.numpy()})
        np.testing.assert_allclose(onnx_projected, projected.numpy(), rtol=0, atol=FP32_TOLERANCE)
        feed = {"sample": noisy.numpy(), "timestep": timestep.float().numpy(), "projected_condition": projected.numpy()}
        (onnx_prediction,) = unet.run(None, feed)
        np.testing.assert_allclose(onnx_prediction, prediction.numpy(), rtol=0, atol=FP32_TOLERANCE)
        assert np.abs(onnx_prediction).max() > 0.1  # not a degenerate comparison


def test_upscaler_graph_is_the_one_step_pipeline(one_step):
    pipe, folder = one_step
    upscaler = session(folder / "upscaler.onnx")
    # odd sizes that need padding, and an image smaller than the U-Net's minimum (edge replication)
    for k, (height, width) in enumerate([*ODD_LR_SIZES, (1, 2)]):
        lr01 = torch.rand(2, 3, height, width, generator=seeded(k))
        padded_height, padded_width = padded_size(height, width, pipe.unet)
        noise = torch.randn(2, 3, padded_height * 4, padded_width * 4, generator=seeded(10 + k))
        # the pipeline draws the same noise from the same generator and scales it by the stored temperature
        expected = pipe(lr01, generator=seeded(10 + k), output_type="pt").images
        torch.testing.assert_close(expected, pipe(lr01, latents=noise * 0.5, output_type="pt").images)
        (output,) = upscaler.run(None, {"input": lr01.numpy(), "noise": noise.numpy()})
        assert output.shape == (2, 3, height * 4, width * 4)
        np.testing.assert_allclose(output, expected.numpy(), rtol=0, atol=FP32_TOLERANCE)
        # the noise matters (the test is not of the bicubic part alone)
        (other,) = upscaler.run(None, {"input": lr01.numpy(), "noise": np.zeros_like(noise.numpy())})
        assert np.abs(other - output).max() > 1e-3


# ---------------------------------------------------------------------------------------------------------------
# the onnxruntime pipeline against the torch pipeline
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_inference_steps": 2},
        {"num_inference_steps": 2, "tile_size": 4, "tile_overlap": 2},  # tiled: encoder, projection and U-Net
        {"num_inference_steps": 2, "num_images_per_prompt": 2, "temperature": 0.5},
    ],
    ids=["whole", "tiled", "samples"],
)
def test_onnx_pipeline_matches_torch_pipeline(teacher, kwargs):
    pipe, folder = teacher
    onnx_pipe = load(folder)
    pipe.scheduler, onnx_pipe.scheduler = pipe.fast_scheduler("ddim"), onnx_pipe.fast_scheduler("ddim")
    images = [torch.rand(3, 11, 9, generator=seeded(0)), torch.rand(3, 6, 13, generator=seeded(1))]
    for image in images:
        expected = pipe(image, generator=seeded(5), output_type="np", **kwargs).images
        result = onnx_pipe(image, generator=seeded(5), output_type="np", **kwargs).images
        assert result.shape == expected.shape
        np.testing.assert_allclose(result, expected, rtol=0, atol=FP32_TOLERANCE)
        # saved images: within one gray level
        assert np.abs(np.round(result * 255) - np.round(expected * 255)).max() <= 1
    pil = onnx_pipe(images[0], generator=seeded(5), num_inference_steps=2).images[0]
    assert pil.size == (9 * 4, 11 * 4)


def test_onnx_pipeline_uses_the_models_defaults_and_ddpm(one_step, teacher):
    pipe, folder = one_step
    onnx_pipe = load(folder)
    assert onnx_pipe.config.default_num_inference_steps == 1 and onnx_pipe.upscale_factor == 4
    image = torch.rand(1, 3, 5, 7, generator=seeded(2))
    expected = pipe(image, generator=seeded(3), output_type="pt").images
    result = onnx_pipe(image, generator=seeded(3), output_type="pt").images
    torch.testing.assert_close(result, expected, rtol=0, atol=FP32_TOLERANCE)
    # the teacher with its own (stochastic) DDPM scheduler: the same noise from the same generator
    pipe, folder = teacher
    pipe.scheduler = default_scheduler()
    expected = pipe(image, generator=seeded(3), num_inference_steps=3, output_type="pt").images
    result = load(folder)(image, generator=seeded(3), num_inference_steps=3, output_type="pt").images
    torch.testing.assert_close(result, expected, rtol=0, atol=FP32_TOLERANCE)


def test_float16_export(one_step, tmp_path):
    pipe, _ = one_step
    folder = export_onnx(pipe, tmp_path / "fp16", dtype="float16")
    assert json.loads((folder / ONNX_CONFIG_NAME).read_text())["dtype"] == "float16"
    assert pipe.unet.dtype == torch.float32  # the caller's pipeline is untouched
    upscaler = session(folder / "upscaler.onnx")
    assert [i.type for i in upscaler.get_inputs()] == ["tensor(float16)", "tensor(float16)"]
    lr01 = torch.rand(1, 3, 7, 5, generator=seeded(0))
    noise = torch.randn(1, 3, 32, 24, generator=seeded(1))
    expected = pipe(lr01, latents=noise * 0.5, output_type="np").images
    feed = {"input": lr01.numpy().astype(np.float16), "noise": noise.numpy().astype(np.float16)}
    (output,) = upscaler.run(None, feed)
    np.testing.assert_allclose(output.astype(np.float32).transpose(0, 2, 3, 1), expected, rtol=0, atol=2e-3)
    result = load(folder)(lr01, generator=seeded(2), output_type="np").images
    np.testing.assert_allclose(result, pipe(lr01, generator=seeded(2), output_type="np").images, rtol=0, atol=2e-3)


# ---------------------------------------------------------------------------------------------------------------
# errors and the command line
# ---------------------------------------------------------------------------------------------------------------


def test_wrong_folders_get_clear_errors(teacher, tmp_path):
    pipe, folder = teacher
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        export_onnx(str(tmp_path / "missing"), tmp_path / "out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ValueError, match="not an SRDiff pipeline"):
        export_onnx(str(tmp_path / "other"), tmp_path / "out")
    with pytest.raises(TypeError, match="SRDiffPipeline"):
        export_onnx(pipe.unet, tmp_path / "out")
    with pytest.raises(ValueError, match="one-step model"):
        export_onnx(pipe, tmp_path / "out", upscaler=True)
    with pytest.raises(ValueError, match="already an ONNX export"):
        export_onnx(str(folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(pipe, folder)

    # loading: a missing folder, a torch pipeline folder, an export missing a graph
    with pytest.raises(FileNotFoundError, match="no such folder"):
        OnnxSRDiffPipeline.from_pretrained(tmp_path / "missing")
    saved = tmp_path / "saved"
    pipe.save_pretrained(saved)
    with pytest.raises(FileNotFoundError, match=r"export it first, `srdiff export-onnx \S*saved -o \S*saved-onnx`"):
        OnnxSRDiffPipeline.from_pretrained(saved)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in os.listdir(folder):
        if name != "unet.onnx":
            (incomplete / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="unet.onnx is missing"):
        OnnxSRDiffPipeline.from_pretrained(incomplete)


def test_srdiff_upscale_backend_onnx_writes_the_torch_images(model_dir, tmp_path, capsys):
    """`srdiff upscale --backend onnx` on an exported folder writes the torch pipeline's images: the command's
    scheduler swap, tiling and seeds all work unchanged."""
    import PIL.Image

    folder = export_onnx(model_dir, tmp_path / "exported")
    image = np.random.default_rng(0).integers(0, 256, (9, 14, 3), dtype=np.uint8)
    PIL.Image.fromarray(image).save(tmp_path / "in.png")
    args = ["--scheduler", "ddim", "--steps", "2", "--seed", "3", "--device", "cpu", "--tile-size", "4"]
    args = ["upscale", str(tmp_path / "in.png"), *args, "--tile-overlap", "2"]
    assert srdiff([*args, "-o", str(tmp_path / "torch"), "--model", model_dir]) == 0
    assert srdiff([*args, "-o", str(tmp_path / "onnx"), "--model", str(folder), "--backend", "onnx"]) == 0
    (name,) = os.listdir(tmp_path / "torch")
    expected = np.asarray(PIL.Image.open(tmp_path / "torch" / name), dtype=np.int16)
    result = np.asarray(PIL.Image.open(tmp_path / "onnx" / name), dtype=np.int16)
    assert result.shape == (36, 56, 3) and np.abs(result - expected).max() <= 1
    # a torch model folder, or the torch-only options, are refused with what to do
    capsys.readouterr()
    assert srdiff([*args, "-o", str(tmp_path / "x"), "--model", model_dir, "--backend", "onnx"]) == 2
    assert "srdiff export-onnx" in capsys.readouterr().err
    assert srdiff([*args, "-o", str(tmp_path / "x"), "--model", str(folder), "--backend", "onnx", "--compile"]) == 2
    assert "drop --compile" in capsys.readouterr().err


def test_export_onnx_command(model_dir, tmp_path, capsys):
    output = tmp_path / "exported"
    assert srdiff(["export-onnx", model_dir, "-o", str(output)]) == 0
    assert "no upscaler.onnx" in capsys.readouterr().out
    assert (output / "unet.onnx").is_file() and (output / ONNX_CONFIG_NAME).is_file()
    # an existing export is kept unless --overwrite
    assert srdiff(["export-onnx", model_dir, "-o", str(output)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    before = (output / "unet.onnx").stat().st_mtime_ns
    assert srdiff(["export-onnx", model_dir, "-o", str(output), "--overwrite", "--opset", "18"]) == 0
    assert json.loads((output / ONNX_CONFIG_NAME).read_text())["opset"] == 18
    assert (output / "unet.onnx").stat().st_mtime_ns != before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no staging folders left
    # a path that is not a model: one error line, status 2
    assert srdiff(["export-onnx", str(tmp_path / "nope"), "-o", str(tmp_path / "x")]) == 2
    assert "no such model folder" in capsys.readouterr().err
