"""SRDiffUNet2DModel and RRDBEncoder: shapes, the paper's parameter counts, timestep forms, strict loading."""

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from srdiff_diffusers import RRDBEncoder, SRDiffUNet2DModel

from conftest import tiny_components, tiny_pipeline

WEIGHTS = "diffusion_pytorch_model.safetensors"


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_shapes(scale):
    unet, encoder = tiny_components(scale)
    lr = torch.rand(2, 3, 5, 6) * 2 - 1
    with torch.no_grad():
        out = encoder(lr, output_hidden_states=True)
        condition = encoder.encode(lr)
    assert out.sample.shape == (2, 3, 5 * scale, 6 * scale)
    assert out.condition.shape == (2, encoder.condition_channels, 5, 6)
    assert len(out.hidden_states) == encoder.config.num_blocks + 1
    # encode() stops early and skips the SR head but must give the same condition
    torch.testing.assert_close(condition, out.condition, rtol=0, atol=0)
    assert out.sample.min() >= -1 and out.sample.max() <= 1

    # the U-Net needs HR sizes that are multiples of 8 (three halvings) and at least 16 (its lowest level pads)
    lr_h, lr_w = (8, 16) if scale == 2 else (32 // scale, 16 // scale)
    x = torch.randn(2, 3, lr_h * scale, lr_w * scale)
    with torch.no_grad():
        cond = encoder.encode(torch.rand(2, 3, lr_h, lr_w) * 2 - 1)
        eps = unet(x, 10, cond).sample
    assert eps.shape == x.shape
    assert torch.isfinite(eps).all()


def test_unet_rejects_bad_sizes():
    unet, encoder = tiny_components(4)
    with pytest.raises(ValueError, match="multiples of 8"):
        unet(torch.randn(1, 3, 12, 16), 1, torch.randn(1, encoder.condition_channels, 3, 4))
    with pytest.raises(ValueError, match="4x smaller"):
        unet(torch.randn(1, 3, 16, 16), 1, torch.randn(1, encoder.condition_channels, 8, 8))
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        unet(torch.randn(1, 3, 16, 16), 1)
    with pytest.raises(ValueError, match="even integer"):
        SRDiffUNet2DModel(upscale_factor=3)
    with pytest.raises(ValueError, match="power of two"):
        RRDBEncoder(upscale_factor=6)
    cond = torch.randn(1, encoder.condition_channels, 2, 2)
    # exactly the size multiple: its lowest level would be 1 pixel, which reflection padding cannot take
    with pytest.raises(ValueError, match="multiples of 8 and at least 16"):
        unet(torch.randn(1, 3, 8, 8), 1, cond)
    cond = torch.randn(1, encoder.condition_channels, 4, 4)
    for sample, timestep, condition, message in [
        (torch.randn(3, 16, 16), 1, cond, r"`sample` must be a \(batch, 3, H, W\) tensor"),  # no batch dimension
        (torch.randn(1, 4, 16, 16), 1, cond, r"`sample` must be a \(batch, 3, H, W\)"),
        (torch.randn(3, 3, 16, 16), torch.tensor([1, 2]), cond, "one number or one per sample"),
        (torch.randn(1, 3, 16, 16), [10], cond, "`timestep` must be a number or a tensor"),
        (torch.randn(1, 3, 16, 16), None, cond, "`timestep` must be a number or a tensor"),
        (torch.randn(1, 3, 16, 16), 1, cond.repeat(2, 1, 1, 1), "give 1 or 1"),
        (torch.randn(1, 3, 16, 16), 1, torch.randn(1, 2 * encoder.condition_channels, 4, 4), "`encoder_hidden_states`"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            unet(sample, timestep, condition)
    with pytest.raises(ValueError, match="The projected condition is"):
        unet(torch.randn(1, 3, 16, 16), 1, projected_condition=torch.randn(1, 4, 16, 16))


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("shape", [(8,), (8, 1, 1), (1, 8, 1, 1), (1, 1, 16, 16), (8, 16, 16), (2, 8, 16, 16)])
def test_unet_refuses_a_condition_torch_would_broadcast(shape, grad):
    unet, _ = tiny_components(4)  # base width 8
    with torch.set_grad_enabled(grad), pytest.raises(ValueError, match="projected condition is|give 1 or 1"):
        unet(torch.randn(1, 3, 16, 16), 1, projected_condition=torch.randn(*shape))


def test_unet_checks_its_inputs_only_when_torch_fails(monkeypatch):
    pipe = tiny_pipeline(4)
    calls = []
    check = type(pipe.unet).check_inputs
    monkeypatch.setattr(type(pipe.unet), "check_inputs", lambda self, *args: calls.append(args) or check(self, *args))
    pipe(torch.rand(1, 3, 4, 4), num_inference_steps=3, output_type="pt")
    assert calls == []  # no check at any of the denoising steps
    condition = torch.randn(1, pipe.encoder.condition_channels, 4, 4)
    with pytest.raises(ValueError, match="4x smaller"):
        pipe.unet(torch.randn(1, 3, 24, 24), 1, condition)
    assert len(calls) == 1


def test_configs_and_inputs_that_cannot_work_are_refused():
    for kwargs, message in [
        (dict(block_out_channels=(8, 0, 16)), r"`block_out_channels\[1\]` must be a positive integer"),
        (dict(condition_channels=0), "`condition_channels` must be a positive integer"),
        (dict(upscale_factor=4.0), "`upscale_factor` must be a positive integer"),
        (dict(block_out_channels=8), "at least two levels"),
    ]:
        with pytest.raises(ValueError, match=message):
            SRDiffUNet2DModel(**kwargs)
    for kwargs, message in [
        (dict(num_features=0), "`num_features` must be a positive integer"),
        (dict(num_features=1), "dense blocks grow by half"),
        (dict(num_blocks=1), "`num_blocks` must be >= 2 for the default condition"),
        (dict(condition_feature_indices=2), "must be a tuple of indices"),
    ]:
        with pytest.raises(ValueError, match=message):
            RRDBEncoder(**kwargs)
    assert RRDBEncoder(num_features=8, num_blocks=1, condition_feature_indices=(0, 1)).condition_channels == 16
    # uint8 or 0..255 input gave saturated garbage (5 dB) without a word
    _, encoder = tiny_components(4)
    lr = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"float tensor in \[-1, 1\].*x / 127.5 - 1"):
        encoder(lr)
    with pytest.raises(ValueError, match=r"values in \[.*\]; the encoder takes LR images in \[-1, 1\]"):
        encoder.encode(lr.float())
    encoder.encode(lr.float() / 127.5 - 1)  # the right range runs


@pytest.mark.parametrize(
    "name, unet_channels, scale, unet_count, rrdb_count, total",
    [
        ("CelebA 8x", (64, 128, 128, 256), 8, 10_545_795, 1_488_003, 12_033_798),
        ("DIV2K 4x", (64, 128, 192, 256), 4, 11_755_267, 1_478_755, 13_234_022),
    ],
)
def test_full_size_parameter_counts(name, unet_channels, scale, unet_count, rrdb_count, total):
    # Counts of the authors' networks, from shared/reference/original_srdiff/README.md.
    encoder = RRDBEncoder(num_features=32, num_blocks=8, upscale_factor=scale)
    unet = SRDiffUNet2DModel(
        block_out_channels=unet_channels, condition_channels=encoder.condition_channels, upscale_factor=scale
    )
    assert encoder.condition_channels == 32 * 3  # features 2, 5, 8
    assert count(unet) == unet_count
    assert count(encoder) == rrdb_count
    assert count(unet) + count(encoder) == total


def test_defaults_are_the_div2k_configuration():
    encoder, unet = RRDBEncoder(), SRDiffUNet2DModel()
    assert count(unet) + count(encoder) == 13_234_022


def test_timestep_forms_agree():
    unet, encoder = tiny_components(4)
    x = torch.randn(2, 3, 16, 16)
    cond = torch.randn(2, encoder.condition_channels, 4, 4)
    with torch.no_grad():
        reference = unet(x, 37, cond).sample
        for timestep in (37.0, torch.tensor(37), torch.tensor(37.0), torch.tensor([37]), torch.tensor([37, 37])):
            torch.testing.assert_close(unet(x, timestep, cond).sample, reference, rtol=0, atol=0)
        # a different timestep changes the prediction (the embedding is used at all)
        assert not torch.allclose(unet(x, 36, cond).sample, reference)
        # one timestep per sample == separate calls
        mixed = unet(x, torch.tensor([3, 90]), cond).sample
        torch.testing.assert_close(mixed[:1], unet(x[:1], 3, cond[:1]).sample, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mixed[1:], unet(x[1:], 90, cond[1:]).sample, rtol=1e-5, atol=1e-6)


def test_dict_and_tuple_outputs():
    unet, encoder = tiny_components(4)
    x, lr = torch.randn(1, 3, 16, 16), torch.rand(1, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        cond = encoder.encode(lr)
        assert torch.equal(unet(x, 5, cond).sample, unet(x, 5, cond, return_dict=False)[0])
        out = encoder(lr)
        sample, condition = encoder(lr, return_dict=False)
        assert torch.equal(out.sample, sample) and torch.equal(out.condition, condition)
        # the projected condition is an exact shortcut for the per-step projection
        projected = unet.project_condition(cond)
        assert torch.equal(unet(x, 5, projected_condition=projected).sample, unet(x, 5, cond).sample)


# ---------------------------------------------------------------------------------------------------------------
# save / load, and loading that refuses weights that do not match the config
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    unet, encoder = tiny_components(4)
    unet.save_pretrained(tmp_path / "unet")
    encoder.save_pretrained(tmp_path / "encoder")
    return tmp_path, unet, encoder


def test_round_trip(saved):
    folder, unet, encoder = saved
    assert (folder / "unet" / WEIGHTS).is_file() and (folder / "encoder" / WEIGHTS).is_file()
    unet2 = SRDiffUNet2DModel.from_pretrained(folder / "unet")
    encoder2 = RRDBEncoder.from_pretrained(folder / "encoder")
    assert tuple(unet2.config.block_out_channels) == tuple(unet.config.block_out_channels)
    for a, b in ((unet, unet2), (encoder, encoder2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_missing_weight_file_fails(saved):
    folder, _, _ = saved
    (folder / "unet" / WEIGHTS).unlink()
    with pytest.raises(OSError, match="no file named"):
        SRDiffUNet2DModel.from_pretrained(folder / "unet")


def test_truncated_weight_file_fails(saved):
    folder, _, _ = saved
    path = folder / "encoder" / WEIGHTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="Unable to load weights"):
        RRDBEncoder.from_pretrained(folder / "encoder")


def test_weights_of_another_config_fail(saved, tmp_path_factory):
    folder, _, encoder = saved
    other = tmp_path_factory.mktemp("other")
    # different widths: shapes differ (diffusers itself raises)
    SRDiffUNet2DModel(
        block_out_channels=(8, 16, 16, 16), condition_channels=encoder.condition_channels
    ).save_pretrained(other / "unet")
    shutil.copy(other / "unet" / WEIGHTS, folder / "unet" / WEIGHTS)
    with pytest.raises(ValueError, match="shape"):
        SRDiffUNet2DModel.from_pretrained(folder / "unet")
    # more blocks: every shape of the smaller model matches, diffusers only warns; we must refuse
    RRDBEncoder(num_features=8, num_blocks=3).save_pretrained(other / "encoder")
    shutil.copy(other / "encoder" / WEIGHTS, folder / "encoder" / WEIGHTS)
    with pytest.raises(ValueError, match="do not match the RRDBEncoder config.*blocks.2"):
        RRDBEncoder.from_pretrained(folder / "encoder")
    # an x2 encoder in an x4 folder: one upsampling convolution fewer, missing from the file
    RRDBEncoder(num_features=8, num_blocks=2, upscale_factor=2).save_pretrained(other / "encoder_x2")
    shutil.copy(other / "encoder_x2" / WEIGHTS, folder / "encoder" / WEIGHTS)
    with pytest.raises(ValueError, match="weights missing from the file: upsamplers.1"):
        RRDBEncoder.from_pretrained(folder / "encoder")


def test_missing_keys_fail_instead_of_random_weights(saved):
    folder, _, _ = saved
    path = folder / "unet" / WEIGHTS
    state = load_file(path)
    del state["conv_out.weight"]
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="weights missing from the file: conv_out.weight"):
        SRDiffUNet2DModel.from_pretrained(folder / "unet")
    # diffusers' explicit opt-in to partial loading still works
    SRDiffUNet2DModel.from_pretrained(folder / "unet", low_cpu_mem_usage=False, ignore_mismatched_sizes=True)
