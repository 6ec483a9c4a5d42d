"""Conversion of the authors' checkpoints: parity with the original code's outputs, config inference, safety, CLI.

The parity references are outputs of the original SRDiff code (../shared/reference/original_srdiff); run with `-s`
to print the measured differences.
"""

import argparse
import json
import os
import pickle
import re
import stat

import numpy as np
import pytest
import torch
import yaml  # installed with huggingface_hub, which diffusers requires
from safetensors.torch import load_file

from srdiff_diffusers import SRDiffPipeline, convert_original_checkpoint
from srdiff_diffusers.commands import convert as convert_command

from conftest import REFERENCE, require_dir

NAMES = ("x4_small", "x8_small")
_CACHE = {}


def reference(name):
    """(checkpoint path, fixture tensors, original hyper-parameters) of one reference checkpoint."""
    folder = require_dir(REFERENCE)
    if name not in _CACHE:
        tensors = load_file(folder / f"parity_{name}.safetensors")
        hparams = json.loads((folder / f"parity_{name}.json").read_text())["original_hparams"]
        _CACHE[name] = (folder / f"original_srdiff_{name}.ckpt", tensors, hparams)
    return _CACHE[name]


def converted(name, **kwargs):
    pipe = convert_original_checkpoint(reference(name)[0], **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def max_diff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


def plain_config(component):
    """The config as saved (tuples as lists), without bookkeeping entries such as `_name_or_path`."""
    config = json.loads(json.dumps(dict(component.config)))
    return {key: value for key, value in config.items() if not key.startswith("_")}


def lr_uint8(tensors):
    return tensors["img_lr_uint8"].numpy()


def original_state_dict(name):
    return torch.load(reference(name)[0], map_location="cpu", weights_only=True)["state_dict"]["model"]


def save_checkpoint(model_state, path):
    torch.save({"global_step": 0, "optimizer_states": [], "state_dict": {"model": model_state}}, path)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Parity with the original code
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_config_is_inferred_from_tensors(name):
    _, tensors, hparams = reference(name)
    pipe = converted(name)
    unet, encoder = pipe.unet.config, pipe.encoder.config
    mults = [int(m) for m in hparams["unet_dim_mults"].split("|")]
    assert tuple(unet.block_out_channels) == tuple(hparams["hidden_size"] * m for m in mults)
    assert unet.upscale_factor == encoder.upscale_factor == hparams["sr_scale"]
    assert encoder.num_features == hparams["rrdb_num_feat"]
    assert encoder.num_blocks == hparams["rrdb_num_block"]
    assert encoder.growth_channels == hparams["rrdb_num_feat"] // 2
    assert tuple(encoder.condition_feature_indices) == tuple(range(2, hparams["rrdb_num_block"] + 1, 3))
    assert pipe.scheduler.config.num_train_timesteps == hparams["timesteps"]
    assert torch.equal(pipe.scheduler.betas, tensors["betas"])
    assert pipe.config.residual_rescale == hparams["res_rescale"]
    assert pipe.config.lr_upscale_divisor == 256.0


@pytest.mark.parametrize("name", NAMES)
def test_rrdb_features_and_sr_head_match_original(name):
    _, tensors, _ = reference(name)
    encoder = converted(name).encoder
    with torch.no_grad():
        out = encoder(tensors["img_lr"], output_hidden_states=True)
    num_features = len([k for k in tensors if k.startswith("rrdb_feature_")])
    assert len(out.hidden_states) == num_features == encoder.config.num_blocks + 1
    features = max(max_diff(out.hidden_states[i], tensors[f"rrdb_feature_{i}"]) for i in range(num_features))
    head = max_diff(out.sample, tensors["rrdb_sr"])
    print(f"\n{name}: RRDB features max abs diff {features:.3g}, SR head {head:.3g}")
    assert features <= 1e-5
    assert head <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_noise_prediction_matches_original(name):
    _, tensors, _ = reference(name)
    pipe = converted(name)
    with torch.no_grad():
        condition = pipe.encoder.encode(tensors["img_lr"])
        eps = pipe.unet(tensors["unet_x_t"], tensors["unet_t"], condition).sample
    diff = max_diff(eps, tensors["unet_eps"])
    print(f"\n{name}: noise prediction max abs diff {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("divisor, suffix", [(255, ""), (256, "_div256")])
def test_upscaled_lr_matches_original(name, divisor, suffix):
    _, tensors, _ = reference(name)
    pipe = converted(name, lr_upscale_divisor=divisor)
    lr01 = tensors["img_lr_uint8"].permute(2, 0, 1)[None].float() / 255
    diff = max_diff(pipe.upscale_bicubic(lr01), tensors[f"img_lr_up{suffix}"])
    print(f"\n{name} /{divisor}: up(LR) max abs diff {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("divisor, fixture", [(None, "sample_seed1234_div256"), (255, "sample_seed1234")])
def test_full_sampler_matches_original(name, divisor, fixture):
    _, tensors, _ = reference(name)
    # The two references must differ by more than the tolerance, or this test could not tell /255 from /256.
    assert max_diff(tensors["sample_seed1234"], tensors["sample_seed1234_div256"]) > 1e-3
    pipe = converted(name) if divisor is None else converted(name, lr_upscale_divisor=divisor)
    assert pipe.config.lr_upscale_divisor == (divisor or 256)
    sample = pipe(
        lr_uint8(tensors), num_inference_steps=100, generator=torch.Generator().manual_seed(1234), output_type="raw"
    ).images
    diff = max_diff(sample, tensors[fixture])
    print(f"\n{name} /{divisor or 256}: 100-step sample max abs diff {diff:.3g}")
    # The issue asks for 1e-4; we measure ~3e-6. Swapping the RRDB's dense blocks moves this sample by only 7e-5-1e-4
    # (the 0.2 residual scales damp it), so 1e-4 alone could miss a wrong conversion: hold it to 2e-5.
    assert diff <= 2e-5


def test_save_and_from_pretrained_give_identical_output(tmp_path):
    _, tensors, _ = reference("x4_small")
    pipe = converted("x4_small", output_dir=tmp_path / "model")
    for path in ("model_index.json", "unet/diffusion_pytorch_model.safetensors",
                 "encoder/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json"):
        assert (tmp_path / "model" / path).is_file(), path
    assert not list(tmp_path.glob(".*")), "the staging folder was left behind"
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["lr_upscale_divisor"] == 256.0

    loaded = SRDiffPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.lr_upscale_divisor == 256.0
    assert torch.equal(loaded.scheduler.betas, tensors["betas"])
    for ours, theirs in ((pipe.unet, loaded.unet), (pipe.encoder, loaded.encoder), (pipe.scheduler, loaded.scheduler)):
        assert plain_config(ours) == plain_config(theirs)
    for ours, theirs in ((pipe.unet, loaded.unet), (pipe.encoder, loaded.encoder)):
        loaded_state = theirs.state_dict()
        assert all(torch.equal(value, loaded_state[key]) for key, value in ours.state_dict().items())
    outputs = [
        p(lr_uint8(tensors), num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="raw")
        for p in (pipe, loaded)
    ]
    outputs = [output.images for output in outputs]
    # The weights are bit-identical, but from_pretrained leaves them in memory-mapped storage whose alignment can
    # change the CPU kernels' rounding by an ulp.
    assert max_diff(outputs[0], outputs[1]) <= 1e-6


def test_refuses_to_overwrite_without_flag(tmp_path):
    checkpoint = reference("x4_small")[0]
    output = tmp_path / "model"
    output.mkdir()
    (output / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_original_checkpoint(checkpoint, output)
    assert (output / "mine.txt").read_text() == "keep me"

    convert_original_checkpoint(checkpoint, output, overwrite=True)
    assert not (output / "mine.txt").exists()
    assert (output / "model_index.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        convert_original_checkpoint(checkpoint, a_file, overwrite=True)


def test_never_replaces_the_folder_that_holds_its_inputs(tmp_path, monkeypatch):
    folder = tmp_path / "downloads"
    folder.mkdir()
    checkpoint = save_checkpoint(original_state_dict("x4_small"), folder / "model_ckpt_steps_1.ckpt")
    (folder / "config.yaml").write_text("sr_scale: 4\n")
    with pytest.raises(ValueError, match="holds the input"):
        convert_original_checkpoint(checkpoint, folder, overwrite=True)
    monkeypatch.chdir(folder)  # `srdiff convert model.ckpt . --overwrite`
    with pytest.raises(ValueError, match="holds the input"):
        convert_original_checkpoint(checkpoint.name, ".", overwrite=True)
    with pytest.raises(ValueError, match="holds the input .*config.yaml"):
        convert_original_checkpoint(reference("x4_small")[0], folder, folder / "config.yaml", overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "model_ckpt_steps_1.ckpt"]


def test_cli_writes_a_loadable_folder(tmp_path, capsys):
    checkpoint = reference("x8_small")[0]
    parser = argparse.ArgumentParser()
    convert_command.register(parser)
    output = tmp_path / "x8"
    args = parser.parse_args([str(checkpoint), str(output), "--lr-upscale-divisor", "255"])
    assert convert_command.run(args) == 0
    assert "x8" in capsys.readouterr().out
    loaded = SRDiffPipeline.from_pretrained(output)
    assert loaded.upscale_factor == 8 and loaded.config.lr_upscale_divisor == 255.0
    mask = os.umask(0)
    os.umask(mask)
    # staged in a hidden sibling and renamed: with a plain folder's permissions, not tempfile's private 0700
    assert stat.S_IMODE(output.stat().st_mode) == 0o777 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x8"]

    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_command.run(parser.parse_args([str(checkpoint), str(output)]))
    assert convert_command.run(parser.parse_args([str(checkpoint), str(output), "--overwrite"])) == 0
    assert SRDiffPipeline.from_pretrained(output).config.lr_upscale_divisor == 256.0
    with pytest.raises(SystemExit):
        parser.parse_args([str(checkpoint), str(output), "--lr-upscale-divisor", "100"])


# ----------------------------------------------------------------------------------------------------------------
# The optional YAML cross-check
# ----------------------------------------------------------------------------------------------------------------


def write_yaml(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


def test_matching_original_config_is_accepted(tmp_path):
    _, _, hparams = reference("x4_small")
    config = write_yaml(tmp_path / "config.yaml", dict(hparams, res_rescale=1.5))
    pipe = converted("x4_small", original_config=config)
    assert pipe.config.residual_rescale == 1.5  # taken from the YAML


@pytest.mark.parametrize(
    "key, value, stored",
    [
        ("hidden_size", 32, "16"),
        ("unet_dim_mults", "1|2|3|4", "(1, 2, 2, 4)"),
        ("rrdb_num_feat", 16, "8"),
        ("rrdb_num_block", 8, "5"),
        ("sr_scale", 8, "4"),
        ("timesteps", 1000, "100"),
        ("beta_schedule", "linear", "cosine"),
        ("use_attn", True, "use_attn: False"),
        ("res", False, "res: True"),
    ],
)
def test_contradicting_original_config_is_refused(tmp_path, key, value, stored):
    _, _, hparams = reference("x4_small")
    config = write_yaml(tmp_path / "config.yaml", dict(hparams, **{key: value}))
    with pytest.raises(ValueError) as error:
        converted("x4_small", original_config=config)
    message = str(error.value)
    assert f"`{key}`" in message and repr(value) in message and stored in message


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hidden_size", "16", "`hidden_size` must be an integer, got '16' (str)"),  # said "'16' but ... give 16"
        ("res", "False", "`res` must be true or false, got 'False'"),  # the string "False" is truthy
    ],
)
def test_original_config_values_of_the_wrong_type_are_named(key, value, message):
    _, _, hparams = reference("x4_small")
    with pytest.raises(ValueError, match=re.escape(message)):
        converted("x4_small", original_config=dict(hparams, **{key: value}))


# ----------------------------------------------------------------------------------------------------------------
# Safety and bad files
# ----------------------------------------------------------------------------------------------------------------


class _CreatesAFolder:
    """Unpickling this calls os.mkdir(path): arbitrary code execution, as a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    def malicious_checkpoint(path, marker):
        with open(path, "wb") as f:  # plain pickle, as a legacy torch.save file starts
            pickle.dump({"state_dict": {"model": {"betas": _CreatesAFolder(marker)}}}, f, protocol=2)
        return path

    # Control: the file really does run code when loaded without weights_only.
    control = tmp_path / "control_marker"
    with pytest.raises(RuntimeError, match="magic number"):  # after the payload ran
        torch.load(malicious_checkpoint(tmp_path / "control.ckpt", control), weights_only=False)
    assert control.is_dir()

    marker = tmp_path / "marker"
    with pytest.raises(ValueError, match="weights_only=True") as error:
        convert_original_checkpoint(malicious_checkpoint(tmp_path / "evil.ckpt", marker))
    assert "mkdir" in str(error.value)  # names what was refused
    assert not marker.exists()


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        convert_original_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="not a file"):
        convert_original_checkpoint(tmp_path)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        convert_original_checkpoint(tmp_path / "empty.ckpt")
    (tmp_path / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="random.ckpt"):
        convert_original_checkpoint(tmp_path / "random.ckpt")
    (tmp_path / "truncated.ckpt").write_bytes(reference("x4_small")[0].read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated.ckpt"):
        convert_original_checkpoint(tmp_path / "truncated.ckpt")


@pytest.mark.parametrize(
    "content, match",
    [
        ({"global_step": 1, "weights": {}}, "no 'state_dict'"),
        ({"state_dict": {"unet": {}}}, r"\['model'\]"),
        (torch.zeros(3), "Tensor, not the dict"),
        ({"state_dict": {"model": {"betas": 3}}}, r"\['betas'\] is a int"),
    ],
)
def test_files_of_the_wrong_structure_are_refused(tmp_path, content, match):
    torch.save(content, tmp_path / "wrong.ckpt")
    with pytest.raises(ValueError, match=match):
        convert_original_checkpoint(tmp_path / "wrong.ckpt")


# ----------------------------------------------------------------------------------------------------------------
# Incomplete and inconsistent checkpoints (edited copies of the reference checkpoint)
# ----------------------------------------------------------------------------------------------------------------


def _drop(key):
    return lambda state: state.pop(key)


def _add(key, tensor):
    return lambda state: state.__setitem__(key, tensor)


def _truncate(key, dim, size):
    return lambda state: state.__setitem__(key, state[key].narrow(dim, 0, size).clone())


@pytest.mark.parametrize(
    "edit, messages",
    [
        (_drop("denoise_fn.ups.1.1.block2.block.1.bias"), ["`denoise_fn.ups.1.1.block2.block.1.bias` is missing"]),
        (_drop("rrdb.RRDB_trunk.3.RDB2.conv4.weight"), ["`rrdb.RRDB_trunk.3.RDB2.conv4.weight` is missing"]),
        (_drop("denoise_fn.cond_proj.weight"), ["`denoise_fn.cond_proj.weight` is missing"]),
        (_drop("betas"), ["`betas` is missing"]),
        (_add("denoise_fn.attn.weight", torch.zeros(1)), ["Unexpected key `denoise_fn.attn.weight`"]),
        (_add("ema.weight", torch.zeros(1)), ["Unexpected key `ema.weight`"]),
        (
            _add("denoise_fn.downs.1.1.res_conv.weight", torch.zeros(32, 32, 1, 1)),
            ["Unexpected key `denoise_fn.downs.1.1.res_conv.weight`"],
        ),
        # one factor of two fewer in the SR head than the condition projection's kernel says
        (
            lambda state: [state.pop("rrdb.upconv2.weight"), state.pop("rrdb.upconv2.bias")],
            ["`denoise_fn.cond_proj.weight`", "scale 4", "rrdb.upconv1..1", "scale 2"],
        ),
        (_truncate("denoise_fn.cond_proj.weight", 0, 8), ["`denoise_fn.cond_proj.weight` takes 8", "give 16"]),
        (
            _truncate("denoise_fn.mid_block1.block1.block.1.weight", 1, 32),
            ["`denoise_fn.mid_block1.block1.block.1.weight` has shape (64, 32, 3, 3)", "(64, 64, 3, 3)"],
        ),
        (
            lambda state: state.__setitem__("alphas_cumprod", state["alphas_cumprod"] * 0.9),
            ["`alphas_cumprod` are not the cumulative product"],
        ),
        # a diverged run: converted, it would only produce noise
        (
            lambda state: state["denoise_fn.final_conv.1.weight"].fill_(float("nan")),
            ["`denoise_fn.final_conv.1.weight` holds NaN or infinite weights", "earlier checkpoint"],
        ),
        (
            lambda state: state["rrdb.conv_first.bias"].__setitem__(0, float("inf")),
            ["`rrdb.conv_first.bias` holds NaN or infinite weights"],
        ),
    ],
)
def test_incomplete_or_inconsistent_checkpoints_are_refused(tmp_path, edit, messages):
    state = original_state_dict("x4_small")
    edit(state)
    with pytest.raises(ValueError) as error:
        convert_original_checkpoint(save_checkpoint(state, tmp_path / "edited.ckpt"))
    for message in messages:
        assert message in str(error.value)


def test_non_cosine_betas_are_carried_as_trained_betas(tmp_path, caplog):
    state = original_state_dict("x4_small")
    betas = torch.linspace(1e-4, 0.02, 100)  # the linear schedule, not the cosine one
    state["betas"] = betas
    state["alphas_cumprod"] = torch.cumprod(1 - betas.double(), 0).float()
    with caplog.at_level("WARNING"):
        pipe = convert_original_checkpoint(save_checkpoint(state, tmp_path / "linear.ckpt"))
    assert "trained_betas" in caplog.text
    assert pipe.scheduler.config.trained_betas is not None
    assert max_diff(pipe.scheduler.betas, betas) <= 1e-7
    assert max_diff(pipe.scheduler.alphas_cumprod, state["alphas_cumprod"]) <= 1e-6
