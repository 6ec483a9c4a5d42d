"""Training (issue 4): both stages learn, resume is exact, checkpoints are atomic, multi-process runs, bad data."""

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from huggingface_hub import ModelCard

# the `train` extra: pip install srdiff-diffusers[train]
for _module in ("accelerate", "datasets", "tensorboard"):
    pytest.importorskip(_module, reason=f"training needs {_module} (pip install 'srdiff-diffusers[train]')")

from accelerate.state import AcceleratorState  # noqa: E402

from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, imresize  # noqa: E402
from srdiff_diffusers.commands.train import parse_args  # noqa: E402
from srdiff_diffusers.training import SRPatchDataset, load_hr_images  # noqa: E402
from srdiff_diffusers.training import train as train_stage  # noqa: E402
from srdiff_diffusers.training.model_card import model_card_of_run  # noqa: E402
from srdiff_diffusers.training.trainer import TrainingResult, list_checkpoints, upscale_lr  # noqa: E402

from conftest import REPO_ROOT  # noqa: E402

TINY_RRDB = ["--rrdb_num_features", "8", "--rrdb_num_blocks", "2"]
TINY_UNET = ["--unet_block_out_channels", "8,16,16,32"]


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps its state per process; each in-process training run must start from a clean one."""
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def smooth_image(size, seed):
    """A smooth random RGB image (sums of low-frequency sinusoids), uint8 HxWx3: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = []
    for _ in range(3):
        fy, fx, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        channels.append(0.5 + 0.4 * np.sin(2 * np.pi * (fy * y + fx * x) + phase))
    return (np.stack(channels, -1) * 255).round().astype(np.uint8)


def write_images(folder, count, size=(32, 32), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        PIL.Image.fromarray(smooth_image(size, seed + i)).save(folder / f"img_{i:03d}.png")
    return folder


def train(tmp_path, stage, *extra, data=None, output="out"):
    data = data or write_images(tmp_path / "hr", 1)
    argv = [
        "--stage", stage, "--train_data_dir", str(data), "--output_dir", str(tmp_path / output),
        "--resolution", "32", "--train_batch_size", "2", "--report_to", "none", "--seed", "0",
        "--cache_dir", str(tmp_path / "cache"), "--logging_steps", "10",
        *(TINY_RRDB if stage == "rrdb" else TINY_UNET), *extra,
    ]  # fmt: skip
    return train_stage(parse_args(argv))


@pytest.fixture
def encoder_dir(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "encoder"
    RRDBEncoder(num_features=8, num_blocks=2).save_pretrained(path)
    return path


def first_last(losses, n=5):
    values = [losses[k] for k in sorted(losses)]
    return float(np.mean(values[:n])), float(np.mean(values[-n:]))


# ---------------------------------------------------------------------------------------------------------------
# both stages learn
# ---------------------------------------------------------------------------------------------------------------


def test_rrdb_stage_overfits_one_image(tmp_path):
    result = train(
        tmp_path, "rrdb", "--max_train_steps", "25", "--learning_rate", "2e-3", "--no_augment",
        "--checkpointing_steps", "100",
    )  # fmt: skip
    assert sorted(result.losses) == list(range(1, 26))
    first, last = first_last(result.losses)
    assert last < 0.75 * first, (first, last)
    # the output folder is a loadable RRDBEncoder with a model card
    out = tmp_path / "out"
    assert RRDBEncoder.from_pretrained(out).config.num_features == 8
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "diffusers" and "--stage rrdb" in card.text


def test_cpu_training_keeps_freed_memory(tmp_path, monkeypatch):
    import srdiff_diffusers.training.trainer as trainer

    calls = []
    monkeypatch.setattr(trainer, "retain_freed_cpu_memory", lambda: calls.append(True))
    train(tmp_path, "rrdb", "--max_train_steps", "1", "--checkpointing_steps", "100")
    assert calls == [True]


def test_diffusion_stage_learns_and_saves_pipeline(tmp_path, encoder_dir):
    validation = write_images(tmp_path / "val", 1, size=(32, 32), seed=10)
    result = train(
        tmp_path, "diffusion", "--pretrained_encoder", str(encoder_dir), "--max_train_steps", "30",
        "--learning_rate", "5e-3", "--train_batch_size", "4", "--no_augment", "--checkpointing_steps", "100",
        "--use_ema",
        "--validation_steps", "30", "--validation_data_dir", str(validation), "--num_validation_images", "1",
        "--validation_inference_steps", "2", "--report_to", "tensorboard",
    )  # fmt: skip
    # the noise-prediction loss is noisy (random t and noise per step): compare means of ten steps
    first, last = first_last(result.losses, n=10)
    assert last < 0.95 * first, (first, last)
    # validation numbers: finite, and bicubic's recomputed independently from the image and the formula
    metrics = result.validation[30]
    hr = torch.from_numpy(smooth_image((32, 32), 10)).permute(2, 0, 1)[None]
    lr = imresize(hr, scale=1 / 4)
    bicubic = (imresize(lr.double() / 255, scale=4).clamp(0, 1) * 255).round()
    expected = 10 * np.log10(255**2 / float(((bicubic - hr.double()) ** 2).mean()))
    assert metrics["bicubic_psnr"] == pytest.approx(expected, abs=1e-6)
    assert all(np.isfinite(v) for v in metrics.values())
    # the final folder is a full pipeline that runs
    pipe = SRDiffPipeline.from_pretrained(tmp_path / "out")
    pipe.set_progress_bar_config(disable=True)
    image = pipe(torch.rand(1, 3, 8, 8), num_inference_steps=2, output_type="np").images
    assert image.shape == (1, 32, 32, 3)
    # losses, validation numbers and bicubic | model | HR images went to tensorboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    event_dirs = {p.parent for p in (tmp_path / "out" / "logs").rglob("events.out.tfevents.*")}
    tags = {"scalars": set(), "images": set()}
    for folder in event_dirs:
        events = EventAccumulator(str(folder)).Reload().Tags()
        tags["scalars"] |= set(events["scalars"])
        tags["images"] |= set(events["images"])
    assert {"loss", "lr", "validation/psnr", "validation/bicubic_lr_psnr"} <= tags["scalars"]
    assert "validation/0_bicubic_model_hr" in tags["images"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"{metrics['bicubic_psnr']:.2f}" in card and f"{metrics['psnr']:.2f}" in card


def test_diffusion_target_is_the_rescaled_residual():
    """up(LR) is MATLAB bicubic of the exact uint8 / 255 LR, as the pipeline computes it with divisor 255."""
    lr8 = torch.randint(0, 256, (1, 3, 6, 5), dtype=torch.uint8)
    lr = lr8.float() / 127.5 - 1
    pipe_up = SRDiffPipeline.upscale_bicubic(
        type("P", (), {"config": type("C", (), {"lr_upscale_divisor": 255.0}), "upscale_factor": 4})(),
        lr8.float() / 255,
    )
    assert torch.allclose(upscale_lr(lr, 4), pipe_up, atol=1e-6)


def test_trainer_x0_is_the_exported_pipelines_residual_with_non_default_rescale_and_divisor(
    tmp_path, encoder_dir, monkeypatch
):
    """The trainer's x0 and the saved pipeline's `residual_from_image` are one formula with the run's settings."""
    import srdiff_diffusers.training.trainer as trainer

    seen = []
    target = trainer.diffusion_target

    def recording_target(hr, lr, args):
        seen.append((hr, lr, target(hr, lr, args)))
        return seen[-1][2]

    monkeypatch.setattr(trainer, "diffusion_target", recording_target)
    train(tmp_path, "diffusion", "--pretrained_encoder", str(encoder_dir), "--max_train_steps", "1",
          "--checkpointing_steps", "10", "--residual_rescale", "3.0", "--lr_upscale_divisor", "256")  # fmt: skip
    hr, lr, x0 = seen[0]
    pipe = SRDiffPipeline.from_pretrained(tmp_path / "out")
    assert pipe.config.residual_rescale == 3.0 and pipe.config.lr_upscale_divisor == 256.0
    hr01, lr01 = (hr + 1) / 2, (lr + 1) / 2
    assert torch.allclose(x0, pipe.residual_from_image(hr01, lr01), atol=1e-6)
    # and both are the paper's formula, written out here: clamp((HR - up(LR * 255 / 256)) * 3, -1, 1)
    expected = ((hr - (imresize(lr01 * 255 / 256, scale=4) * 2 - 1)) * 3).clamp(-1, 1)
    assert torch.allclose(x0, expected, atol=1e-5)
    assert not torch.allclose(x0, ((hr - (imresize(lr01, scale=4) * 2 - 1)) * 2).clamp(-1, 1), atol=1e-3)


def test_gradient_accumulation_matches_the_larger_batch(tmp_path):
    """Two micro-batches of 2 draw the same samples as one batch of 4; without noise (stage rrdb) the updates match."""
    data = write_images(tmp_path / "hr", 3, size=(40, 40))
    big = train(tmp_path, "rrdb", "--max_train_steps", "3", "--checkpointing_steps", "10", "--train_batch_size", "4",
                data=data, output="big")  # fmt: skip
    accumulated = train(tmp_path, "rrdb", "--max_train_steps", "3", "--checkpointing_steps", "10",
                        "--gradient_accumulation_steps", "2", data=data, output="accumulated")  # fmt: skip
    assert sorted(accumulated.losses) == [1, 2, 3]
    for step in (1, 2, 3):
        assert accumulated.losses[step] == pytest.approx(big.losses[step], abs=1e-5)
    a = RRDBEncoder.from_pretrained(tmp_path / "big").state_dict()
    b = RRDBEncoder.from_pretrained(tmp_path / "accumulated").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_data_workers_do_not_change_the_run(tmp_path):
    """Samples depend on (seed, index) only, so worker processes give the same losses as the main process."""
    data = write_images(tmp_path / "hr", 3, size=(40, 40))
    inline = train(tmp_path, "rrdb", "--max_train_steps", "3", "--checkpointing_steps", "10", data=data, output="a")
    workers = train(tmp_path, "rrdb", "--max_train_steps", "3", "--checkpointing_steps", "10",
                    "--dataloader_num_workers", "2", data=data, output="b")  # fmt: skip
    assert workers.losses == inline.losses


def test_bf16_mixed_precision_runs(tmp_path):
    result = train(
        tmp_path, "rrdb", "--max_train_steps", "2", "--mixed_precision", "bf16", "--checkpointing_steps", "5"
    )
    assert len(result.losses) == 2 and all(np.isfinite(v) for v in result.losses.values())


# ---------------------------------------------------------------------------------------------------------------
# checkpoints: exact resume, atomic writes, limits
# ---------------------------------------------------------------------------------------------------------------


def test_resume_continues_exactly(tmp_path, encoder_dir):
    data = write_images(tmp_path / "hr", 3, size=(40, 36))
    common = [
        "--pretrained_encoder", str(encoder_dir), "--max_train_steps", "6", "--checkpointing_steps", "2",
        "--gradient_accumulation_steps", "2", "--use_ema", "--lr_decay_steps", "3",
    ]  # fmt: skip
    full = train(tmp_path, "diffusion", *common, data=data, output="full")
    assert [Path(p).name for p in list_checkpoints(tmp_path / "full")] == [
        "checkpoint-2", "checkpoint-4", "checkpoint-6"
    ]  # fmt: skip

    # a run "killed" during step 4: its folder holds checkpoint-2 and the losses of steps 1-3
    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", tmp_path / "resumed" / "checkpoint-2")
    full_log = (tmp_path / "full" / "loss_log.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "resumed" / "loss_log.jsonl").write_text("".join(full_log[:3]))
    resumed = train(tmp_path, "diffusion", *common, "--resume_from_checkpoint", "latest", data=data, output="resumed")
    assert sorted(resumed.losses) == [3, 4, 5, 6]
    for step in (3, 4, 5, 6):
        assert resumed.losses[step] == pytest.approx(full.losses[step], abs=1e-6), step
    # the log holds each step once: step 3, trained again after the resume, is not repeated
    records = [json.loads(line) for line in (tmp_path / "resumed" / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in records] == pytest.approx([json.loads(line)["loss"] for line in full_log], abs=1e-6)
    # any checkpoint exports as a pipeline; with EMA its weights are the EMA's, as in the final save
    from srdiff_diffusers.training import export_pipeline

    exported = export_pipeline(str(tmp_path / "full" / "checkpoint-6"), str(encoder_dir), str(tmp_path / "exported"))
    final = SRDiffPipeline.from_pretrained(tmp_path / "full").unet.state_dict()
    assert all(torch.equal(exported.unet.state_dict()[k], final[k]) for k in final)
    for folder in ("unet", "encoder"):
        config = json.loads((tmp_path / "exported" / folder / "config.json").read_text())
        assert "decay" not in config and "_name_or_path" not in config  # no EMA state, no local path of this run
    with pytest.raises(ValueError, match="already holds a pipeline"):
        export_pipeline(str(tmp_path / "full" / "checkpoint-6"), str(encoder_dir), str(tmp_path / "exported"))
    with pytest.raises(TypeError, match="`overwrite` must be True or False"):  # "False" is truthy: it overwrote
        export_pipeline(str(tmp_path / "full" / "checkpoint-6"), str(encoder_dir), str(tmp_path / "exported"),
                        overwrite="False")  # fmt: skip
    with pytest.raises(TypeError, match="`output_dir` must be a folder path"):
        export_pipeline(str(tmp_path / "full" / "checkpoint-6"), str(encoder_dir), None)
    # several checkpoints: the mean of their (EMA) weights, against the two exported one by one
    checkpoints = [str(tmp_path / "full" / f"checkpoint-{step}") for step in (4, 6)]
    averaged = export_pipeline(checkpoints, str(encoder_dir), str(tmp_path / "averaged")).unet.state_dict()
    four = export_pipeline(checkpoints[0], str(encoder_dir), str(tmp_path / "exported4")).unet.state_dict()
    assert any(not torch.equal(four[k], final[k]) for k in final)  # the two differ, so the mean is a real test
    assert all(torch.allclose(averaged[k], (four[k] + final[k]) / 2, atol=1e-7) for k in final)
    from srdiff_diffusers import SRDiffUNet2DModel
    from srdiff_diffusers.cli import main as srdiff

    argv = [*checkpoints, "--pretrained_encoder", str(encoder_dir), "--output_dir", str(tmp_path / "cli")]
    assert srdiff(["export", *argv]) == 0
    from_cli = SRDiffPipeline.from_pretrained(tmp_path / "cli").unet.state_dict()
    assert all(torch.equal(from_cli[k], averaged[k]) for k in final)
    other = tmp_path / "other-run" / "checkpoint-1"
    SRDiffUNet2DModel(block_out_channels=(8, 16), condition_channels=8).save_pretrained(other / "unet")
    with pytest.raises(ValueError, match="another U-Net configuration"):
        export_pipeline([checkpoints[0], str(other)], str(encoder_dir), str(tmp_path / "mixed"))
    # same final weights (EMA copied in), and the LR schedule was restored (decayed once at step 3, again at 6)
    a = SRDiffPipeline.from_pretrained(tmp_path / "full").unet.state_dict()
    b = SRDiffPipeline.from_pretrained(tmp_path / "resumed").unet.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    scheduler_state = torch.load(tmp_path / "resumed" / "checkpoint-6" / "custom_checkpoint_0.pkl", weights_only=False)
    assert scheduler_state["last_epoch"] == 6 and scheduler_state["_last_lr"][0] == pytest.approx(2e-4 * 0.25)


def test_killed_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    original = RRDBEncoder.save_pretrained

    def crash_in_second_checkpoint(self, save_directory, *args, **kwargs):
        if ".tmp-checkpoint-4" in str(save_directory):
            os.makedirs(save_directory, exist_ok=True)
            Path(save_directory, "diffusion_pytorch_model.safetensors").write_bytes(b"half a file")
            raise KeyboardInterrupt("simulated kill while saving")
        return original(self, save_directory, *args, **kwargs)

    monkeypatch.setattr(RRDBEncoder, "save_pretrained", crash_in_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, "rrdb", "--max_train_steps", "6", "--checkpointing_steps", "2")
    out = tmp_path / "out"
    assert [Path(p).name for p in list_checkpoints(out)] == ["checkpoint-2"]
    assert RRDBEncoder.from_pretrained(out / "checkpoint-2" / "encoder").config.num_blocks == 2
    assert json.loads((out / "checkpoint-2" / "training_state.json").read_text()) == {"global_step": 2}

    monkeypatch.setattr(RRDBEncoder, "save_pretrained", original)
    resumed = train(tmp_path, "rrdb", "--max_train_steps", "6", "--checkpointing_steps", "2",
                    "--resume_from_checkpoint", "latest", "--checkpoints_total_limit", "2")  # fmt: skip
    assert sorted(resumed.losses) == [3, 4, 5, 6]
    assert sorted(os.listdir(out)) == sorted(
        ["checkpoint-4", "checkpoint-6", "README.md", "config.json", "diffusion_pytorch_model.safetensors",
         "loss_log.jsonl", "train.log"]
    )  # fmt: skip


def test_two_process_cpu_run_main_process_writes(tmp_path):
    data = write_images(tmp_path / "hr", 2)
    out = tmp_path / "out"
    command = [
        # `--cpu` alone starts one process without mpirun; the torchrun launcher plus ACCELERATE_USE_CPU gives
        # two CPU processes with the gloo backend.
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO_ROOT / "examples" / "train_srdiff.py"), "--stage", "rrdb", *TINY_RRDB,
        "--train_data_dir", str(data), "--output_dir", str(out), "--resolution", "32", "--train_batch_size", "1",
        "--max_train_steps", "4", "--checkpointing_steps", "2", "--report_to", "none",
        "--cache_dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="true")
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "MULTI_CPU" in run.stderr and "Num processes: 2" in run.stderr
    assert [Path(p).name for p in list_checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
    # only the main process saved: one RNG state file, one line per step in the loss log
    assert sorted(f for f in os.listdir(out / "checkpoint-4") if f.startswith("random_states")) == [
        "random_states_0.pkl"
    ]
    assert [json.loads(line)["step"] for line in (out / "loss_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert RRDBEncoder.from_pretrained(out).config.num_features == 8


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


def test_patches_are_aligned_and_lr_is_matlab_bicubic_of_the_whole_image(tmp_path):
    folder = write_images(tmp_path / "hr", 2, size=(50, 45))
    records = load_hr_images(str(folder), cache_dir=str(tmp_path / "cache"))
    dataset = SRPatchDataset(records, resolution=16, scale=4, seed=3, augment=False)
    for k in range(6):
        sample = dataset[k]
        image = torch.from_numpy(np.array(PIL.Image.open(records[dataset.image_index(k)].path))).permute(2, 0, 1)
        image = image[:, :48, :44]  # cropped to a multiple of the scale
        lr_full = imresize(image, scale=1 / 4)
        hr8 = ((sample["hr"] + 1) * 127.5).round().to(torch.uint8)
        lr8 = ((sample["lr"] + 1) * 127.5).round().to(torch.uint8)
        hits = [
            (t, l) for t in range(lr_full.shape[1] - 3) for l in range(lr_full.shape[2] - 3)
            if torch.equal(image[:, 4 * t : 4 * t + 16, 4 * l : 4 * l + 16], hr8)
        ]  # fmt: skip
        assert any(torch.equal(lr_full[:, t : t + 4, l : l + 4], lr8) for t, l in hits), k


def test_dataset_name_loads_a_local_dataset(tmp_path):
    folder = write_images(tmp_path / "hr", 2)
    by_name = load_hr_images(dataset_name=str(folder), image_column="image", cache_dir=str(tmp_path / "c"))
    assert sorted(r.name for r in by_name) == ["img_000.png", "img_001.png"]
    with pytest.raises(ValueError, match="not a column of the dataset"):
        load_hr_images(dataset_name=str(folder), image_column="picture", cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="exactly one of"):
        load_hr_images(str(folder), dataset_name=str(folder))


def test_face_preset_center_crops_178_and_resizes_to_160(tmp_path):
    from srdiff_diffusers.training.data import face_preset

    image = torch.from_numpy(smooth_image((218, 178), 4)).permute(2, 0, 1)  # CelebA's aligned size
    out = face_preset(image)
    assert out.shape == (3, 160, 160) and out.dtype == torch.uint8
    assert torch.equal(out, imresize(image[:, 20:198, :], size=(160, 160)))
    with pytest.raises(ValueError, match="at least 178"):
        face_preset(image[:, :100])
    folder = write_images(tmp_path / "faces", 1, size=(218, 178))
    dataset = SRPatchDataset(load_hr_images(str(folder), cache_dir=str(tmp_path / "c")), 160, 4, preset="faces")
    assert dataset[0]["hr"].shape == (3, 160, 160) and dataset[0]["lr"].shape == (3, 40, 40)


def test_paired_lr_images_give_the_same_samples_as_lr_made_on_the_fly(tmp_path):
    from srdiff_diffusers.training.data import attach_lr_images

    hr_folder = write_images(tmp_path / "HR", 3, size=(42, 37))
    lr_folder = tmp_path / "LR_bicubic" / "X4"
    lr_folder.mkdir(parents=True)
    for path in sorted(hr_folder.iterdir()):
        hr = torch.from_numpy(np.array(PIL.Image.open(path))).permute(2, 0, 1)[:, :40, :36]
        lr = imresize(hr, scale=1 / 4)  # what the benchmark sets hold (MATLAB bicubic of the mod-cropped HR)
        PIL.Image.fromarray(lr.permute(1, 2, 0).numpy()).save(lr_folder / path.name)
    records = load_hr_images(str(hr_folder), cache_dir=str(tmp_path / "c"))
    on_the_fly = SRPatchDataset(records, 16, 4, seed=1)
    paired = SRPatchDataset(attach_lr_images(load_hr_images(str(hr_folder), cache_dir=str(tmp_path / "c")),
                                             str(lr_folder)), 16, 4, seed=1)  # fmt: skip
    for k in range(6):
        assert all(torch.equal(paired[k][key], on_the_fly[k][key]) for key in ("hr", "lr")), k

    # a missing or wrongly sized LR image is a counted skip that says why
    (lr_folder / "img_000.png").unlink()
    PIL.Image.fromarray(smooth_image((9, 9), 0)).save(lr_folder / "img_001.png")
    records = attach_lr_images(load_hr_images(str(hr_folder), cache_dir=str(tmp_path / "c")), str(lr_folder))
    dataset = SRPatchDataset(records, 16, 4)
    assert len(dataset) == 1
    assert dataset.skipped == {
        "img_000.png": "no LR image of the same relative path",
        "img_001.png": "LR image is 9x9, expected 9x10 (HR / 4)",
    }
    with pytest.raises(ValueError, match="is not a folder"):
        attach_lr_images(records, str(tmp_path / "nowhere"))


def test_sixteen_bit_training_images_are_rounded_not_saturated(tmp_path):
    """PIL's `convert("RGB")` clips 16-bit gray at 255 (every patch white); the patches must be round(v / 257)."""
    folder = tmp_path / "hr16"
    folder.mkdir()
    gray16 = (smooth_image((32, 32), 0)[..., 0].astype(np.uint16) * 257 + 100).astype(np.uint16)
    PIL.Image.fromarray(gray16).save(folder / "gray16.png")
    records = load_hr_images(str(folder), cache_dir=str(tmp_path / "c"))
    assert PIL.Image.open(records[0].path).mode.startswith("I")
    sample = SRPatchDataset(records, resolution=32, scale=4, augment=False)[0]
    expected = torch.from_numpy(np.round(gray16 / 65535 * 255)).float() / 127.5 - 1
    assert all(torch.equal(sample["hr"][c], expected) for c in range(3))

    # a float image has no range to convert from: skipped with the reason, known before decoding
    PIL.Image.fromarray(np.zeros((32, 32), np.float32)).save(folder / "float.tif")
    dataset = SRPatchDataset(load_hr_images(str(folder), cache_dir=str(tmp_path / "c")), 32, 4)
    assert len(dataset) == 1 and "mode 'F'" in dataset.skipped["float.tif"]


def test_nested_folders_with_the_same_file_name_keep_both_images(tmp_path):
    """Records are named by relative path: a skipped `b/x.png` must not hide `a/x.png`, and LR pairs by path."""
    from srdiff_diffusers.training.data import attach_lr_images

    nested = tmp_path / "nested"
    for sub, size, seed in (("a", (64, 64), 1), ("b", (8, 8), 2)):
        (nested / sub).mkdir(parents=True)
        PIL.Image.fromarray(smooth_image(size, seed)).save(nested / sub / "x.png")
    dataset = SRPatchDataset(load_hr_images(str(nested), cache_dir=str(tmp_path / "c")), 32, 4, augment=False)
    assert [r.name for r in dataset.records] == ["a/x.png"] and list(dataset.skipped) == ["b/x.png"]
    a = torch.from_numpy(smooth_image((64, 64), 1)).permute(2, 0, 1).float() / 127.5 - 1
    for k in range(3):  # every sample is a crop of a/x.png
        hr = dataset[k]["hr"]
        assert any(torch.equal(a[:, t : t + 32, l : l + 32], hr) for t in range(0, 33, 4) for l in range(0, 33, 4))

    # the same file name in two sub-folders: each HR image gets the LR image at its own relative path
    hr_folder, lr_folder = tmp_path / "HR", tmp_path / "LR"
    for sub, seed in (("a", 1), ("b", 2)):
        (hr_folder / sub).mkdir(parents=True)
        (lr_folder / sub).mkdir(parents=True)
        PIL.Image.fromarray(smooth_image((32, 32), seed)).save(hr_folder / sub / "x.png")
        PIL.Image.fromarray(smooth_image((8, 8), seed)).save(lr_folder / sub / "x.png")
    records = attach_lr_images(load_hr_images(str(hr_folder), cache_dir=str(tmp_path / "c")), str(lr_folder))
    assert {r.name: Path(r.lr_path).relative_to(lr_folder).as_posix() for r in records} == {
        "a/x.png": "a/x.png", "b/x.png": "b/x.png",
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["Dataset", "DatasetDict"])
def test_dataset_name_opens_a_save_to_disk_folder(tmp_path, kind):
    import datasets

    folder = write_images(tmp_path / "hr", 2)
    dataset = datasets.Dataset.from_dict({"image": [str(p) for p in sorted(folder.iterdir())]})
    dataset = dataset.cast_column("image", datasets.Image())
    saved = tmp_path / "saved_ds"
    (datasets.DatasetDict({"train": dataset}) if kind == "DatasetDict" else dataset).save_to_disk(str(saved))
    records = load_hr_images(dataset_name=str(saved), cache_dir=str(tmp_path / "c"))
    assert sorted(r.name for r in records) == ["img_000.png", "img_001.png"]
    sample = SRPatchDataset(records, 32, 4, augment=False)[0]
    hr8 = ((sample["hr"] + 1) * 127.5).round().to(torch.uint8)
    assert any(torch.equal(hr8, torch.from_numpy(smooth_image((32, 32), i)).permute(2, 0, 1)) for i in (0, 1))


def test_every_image_is_seen_once_per_epoch(tmp_path):
    folder = write_images(tmp_path / "hr", 5)
    dataset = SRPatchDataset(load_hr_images(str(folder), cache_dir=str(tmp_path / "c")), resolution=16, scale=4)
    assert sorted(dataset.image_index(k) for k in range(5, 10)) == list(range(5))


def test_bad_data_errors_and_skips(tmp_path, encoder_dir):
    cache = str(tmp_path / "cache")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="contains no images"):
        load_hr_images(str(empty), cache_dir=cache)
    with pytest.raises(ValueError, match="is not a folder"):
        load_hr_images(str(tmp_path / "missing"), cache_dir=cache)

    folder = write_images(tmp_path / "mixed", 2, size=(32, 32))
    PIL.Image.fromarray(smooth_image((8, 8), 5)).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    dataset = SRPatchDataset(load_hr_images(str(folder), cache_dir=cache), resolution=32, scale=4)
    assert len(dataset) == 2
    assert set(dataset.skipped) == {"tiny.png", "broken.png"}
    assert "smaller than 32x32" in dataset.skipped["tiny.png"] and "unreadable" in dataset.skipped["broken.png"]

    # a truncated JPEG passes PIL's `verify`; it is skipped when first decoded, never a crash in a data worker
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # compresses badly: long data
    PIL.Image.fromarray(noise).save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    dataset = SRPatchDataset(load_hr_images(str(folder), cache_dir=cache), resolution=32, scale=4, augment=False)
    assert len(dataset) == 3 and "truncated.jpg" not in dataset.skipped
    truncated = [i for i, r in enumerate(dataset.records) if r.name == "truncated.jpg"][0]
    k = next(k for k in range(30) if dataset.image_index(k) == truncated)
    fallback = dataset.records[(truncated + 1) % 3].path
    expected = torch.from_numpy(np.array(PIL.Image.open(fallback))).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(dataset[k]["hr"], expected)
    assert "undecodable" in dataset.skipped["truncated.jpg"]

    with pytest.raises(ValueError, match="None of the 2 training images is usable.*smaller than 64x64"):
        SRPatchDataset(load_hr_images(str(write_images(tmp_path / "small", 2)), cache_dir=cache), 64, 4)
    with pytest.raises(ValueError, match="needs `--pretrained_encoder`"):
        train(tmp_path, "diffusion", "--max_train_steps", "1")
    with pytest.raises(ValueError, match="multiple of `--upscale_factor`"):
        train(tmp_path, "rrdb", "--resolution", "30")
    with pytest.raises(ValueError, match="No RRDBEncoder found"):
        train(tmp_path, "diffusion", "--pretrained_encoder", str(empty), "--max_train_steps", "1")


def test_final_model_is_not_overwritten_without_flag(tmp_path):
    train(tmp_path, "rrdb", "--max_train_steps", "1", "--checkpointing_steps", "5")
    with pytest.raises(ValueError, match="--overwrite_output_dir"):
        train(tmp_path, "rrdb", "--max_train_steps", "1", "--checkpointing_steps", "5")


# ---------------------------------------------------------------------------------------------------------------
# model card
# ---------------------------------------------------------------------------------------------------------------


def test_model_card_has_hub_metadata_arguments_and_numbers(tmp_path):
    args = parse_args(
        ["--stage", "diffusion", "--train_data_dir", "/data/BSD100/HR", "--output_dir", str(tmp_path),
         "--pretrained_encoder", "/runs/rrdb", "--resolution", "96", "--unet_block_out_channels", "32,64,64,128",
         "--hub_model_id", "someone/srdiff-x4"]
    )  # fmt: skip
    result = TrainingResult(
        losses={1: 0.5, 2: 0.25}, global_step=2,
        validation={2: {"psnr": 25.123, "lr_psnr": 45.6, "bicubic_psnr": 24.0, "bicubic_lr_psnr": 38.25}},
    )  # fmt: skip
    card = model_card_of_run(args, result, template=REPO_ROOT / "model_card.md")
    assert card.data.license == "apache-2.0" and card.data.library_name == "diffusers"
    assert {"super-resolution", "diffusion", "srdiff"} <= set(card.data.tags)
    assert card.data.datasets == ["BSD100"] and "psnr" in card.data.metrics
    text = card.text
    assert "--resolution 96" in text and "--unet_block_out_channels 32,64,64,128" in text
    assert "| `learning_rate` | `0.0002` |" in text
    assert "| this model | 25.12 | 45.60 |" in text and "| bicubic | 24.00 | 38.25 |" in text
    assert 'from_pretrained("someone/srdiff-x4")' in text and "{{" not in text


def test_model_card_of_each_stage_and_preset_says_what_the_folder_is(tmp_path):
    def card_text(*extra):
        args = parse_args(["--train_data_dir", "/data/faces/HR", "--output_dir", str(tmp_path), *extra])
        return model_card_of_run(args, TrainingResult(), template=REPO_ROOT / "model_card.md").text

    encoder_card = card_text("--stage", "rrdb", "--upscale_factor", "8")
    assert 'RRDBEncoder.from_pretrained("path/to/this/folder")' in encoder_card  # not a pipeline: no model_index.json
    assert "SRDiffPipeline.from_pretrained" not in encoder_card and "An x8 single-image" in encoder_card
    faces = card_text("--stage", "diffusion", "--pretrained_encoder", "/runs/rrdb", "--preset", "faces")
    assert "SRDiffPipeline.from_pretrained" in faces and "aligned face crops" in faces
    assert "natural photographs" not in faces and "{{" not in faces and "{%" not in faces
    photos = card_text("--stage", "diffusion", "--pretrained_encoder", "/runs/rrdb")
    assert "natural photographs" in photos and "aligned face crops" not in photos


def test_the_installed_package_carries_the_model_card_template():
    import srdiff_diffusers.hub as hub

    packaged = Path(hub.__file__).parent / "model_card.md"  # what a wheel install finds (see setup.py)
    assert packaged.read_text() == (REPO_ROOT / "model_card.md").read_text()


def test_model_card_of_an_exported_checkpoint(tmp_path, capsys):
    from srdiff_diffusers.cli import main as srdiff

    def model_card_main(argv):
        return srdiff(["model-card", *argv])

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # The card's mean loss covers only the steps up to the exported checkpoint (step 2 here): (0.5 + 0.3) / 2.
    records = [(1, 0.5), (2, 0.3), (3, 9.0)]
    (run_dir / "loss_log.jsonl").write_text("".join(f'{{"step": {s}, "loss": {v}}}\n' for s, v in records))
    (tmp_path / "results.md").write_text("| method | PSNR |\n|---|---|\n| SRDiff | 23.45 |\n")
    command = (
        "python examples/train_srdiff.py --stage diffusion --train_data_dir ../shared/datasets/BSD100/HR "
        f"--output_dir {run_dir} --pretrained_encoder runs/rrdb --resolution 96"
    )
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    argv = [str(model_dir), "--training_command", command, "--run_dir", str(run_dir), "--global_step", "2",
            "--evaluation", str(tmp_path / "results.md")]  # fmt: skip
    assert model_card_main(argv) == 0
    text = (model_dir / "README.md").read_text()
    assert "| SRDiff | 23.45 |" in text and "for 2 optimizer steps" in text and "0.4000" in text
    assert "library_name: diffusers" in text and "{{" not in text
    # mistakes are one `error:` line (exit 2), never a traceback or the training parser's usage
    common = ["--run_dir", str(run_dir), "--global_step", "2"]
    for argv, words in [
        ([str(model_dir), "--training_command", "python other.py", *common], ["the command that trained"]),
        ([str(model_dir), "--training_command", "python -m srdiff_diffusers train --stage rrdb", *common],
         ["does not parse as training arguments", "--output_dir"]),
        ([str(model_dir), "--training_command", command, "--run_dir", str(tmp_path / "none"), "--global_step", "2"],
         ["loss_log.jsonl"]),
        ([str(tmp_path / "typo"), "--training_command", command, *common], ["not an exported model folder"]),
    ]:  # fmt: skip
        assert model_card_main(argv) == 2
        assert_one_error_line(capsys.readouterr().err, "srdiff model-card", *words)
    assert not (tmp_path / "typo").exists()  # a mistyped folder is not created
    # `srdiff train` is a training command too; the evaluation may be given as a path
    package_command = command.replace("python examples/train_srdiff.py", "srdiff train")
    evaluation = ["--evaluation", str(tmp_path / "results.md")]
    argv = [str(model_dir), "--training_command", package_command, *common, *evaluation]
    assert model_card_main(argv) == 0 and "| SRDiff | 23.45 |" in (model_dir / "README.md").read_text()
    args = parse_args(shlex.split(command)[2:])
    card = model_card_of_run(args, TrainingResult(global_step=2), evaluation=tmp_path / "results.md")
    assert "| SRDiff | 23.45 |" in card.text and "results.md" not in card.text.split("## Evaluation")[1][:40]


# ---------------------------------------------------------------------------------------------------------------
# command line: one `error:` line for a mistake, never a traceback
# ---------------------------------------------------------------------------------------------------------------


def assert_one_error_line(stderr, prog, *words):
    """The last line of stderr is the only `error:` line, starts with the program name and has all `words`."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and stderr.rstrip().splitlines()[-1] == errors[0], stderr[-3000:]
    assert errors[0].startswith(f"{prog}: error: "), errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])


def cli_train(tmp_path, capsys, stage, *extra, data=None):
    """`cli_main` on the arguments of [`train`]: (exit status, stderr)."""
    from srdiff_diffusers.commands.train import cli_main

    data = data or write_images(tmp_path / "hr", 1)
    argv = [
        "--stage", stage, "--train_data_dir", str(data), "--output_dir", str(tmp_path / "out"),
        "--resolution", "32", "--train_batch_size", "2", "--report_to", "none", "--max_train_steps", "1",
        "--cache_dir", str(tmp_path / "cache"), *(TINY_RRDB if stage == "rrdb" else TINY_UNET), *extra,
    ]  # fmt: skip
    status = cli_main(argv, prog="train_srdiff.py")
    return status, capsys.readouterr().err


def test_training_script_prints_one_error_line_and_exits_2(tmp_path):
    data = write_images(tmp_path / "hr", 1)
    command = [
        sys.executable, str(REPO_ROOT / "examples" / "train_srdiff.py"), "--stage", "rrdb", *TINY_RRDB,
        "--train_data_dir", str(data), "--output_dir", str(tmp_path / "out"), "--resolution", "0",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert run.returncode == 2
    assert_one_error_line(run.stderr, "train_srdiff.py", "`--resolution` must be at least 4")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_unexpected_errors_keep_their_traceback(tmp_path, monkeypatch):
    import srdiff_diffusers.training as training
    from srdiff_diffusers.commands.train import cli_main

    def bug(args):
        raise RuntimeError("a bug, not a user mistake")

    monkeypatch.setattr(training, "train", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        cli_main(["--stage", "rrdb", "--output_dir", str(tmp_path / "out")])


def test_too_small_resolution_is_refused_with_the_minimum(tmp_path, capsys, encoder_dir):
    # stage rrdb: one LR pixel; 0 (a multiple of every scale) used to fail inside torch's convolution
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--resolution", "0")
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "`--resolution` must be at least 4", "got 0")
    # stage diffusion: 4 levels halve 16 px down to 2 px, the least the lowest level's reflection padding takes
    encoder = ["--pretrained_encoder", str(encoder_dir)]
    status, stderr = cli_train(tmp_path, capsys, "diffusion", *encoder, "--resolution", "8")
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "`--resolution` must be at least 16", "4 levels", "got 8")

    from srdiff_diffusers.training.trainer import check_args, min_resolution

    def minimum(stage, widths, scale):
        argv = ["--stage", stage, "--output_dir", "out", "--unet_block_out_channels", widths,
                "--upscale_factor", str(scale), "--resolution", "160"]  # fmt: skip
        return min_resolution(parse_args(argv))[0]

    assert minimum("rrdb", "8,16,16,32", 4) == 4 and minimum("rrdb", "8,16,16,32", 8) == 8
    assert minimum("diffusion", "8,16,16,32", 4) == 16 and minimum("diffusion", "8,16", 4) == 4
    assert minimum("diffusion", "8,16", 8) == 8 and minimum("diffusion", "8,16,16,32,32", 2) == 32
    with pytest.raises(ValueError, match="must be at least 4 "):
        check_args(parse_args(["--stage", "rrdb", "--output_dir", "out", "--resolution", "-4"]))
    with pytest.raises(ValueError, match="power of two"):
        check_args(parse_args(["--stage", "rrdb", "--output_dir", "out", "--upscale_factor", "0"]))
    # the minimum itself trains (one step)
    result = train(tmp_path, "diffusion", *encoder, "--resolution", "16", "--max_train_steps", "1",
                   "--checkpointing_steps", "5", output="smallest")  # fmt: skip
    assert sorted(result.losses) == [1]


def test_bad_validation_images_and_options_are_refused_before_training(tmp_path, capsys):
    """Each used to pass set-up and crash the run at its first validation step (an empty LR image in the encoder)."""
    data = write_images(tmp_path / "hr", 2)
    validate = ["--validation_steps", "1", "--num_validation_images", "1"]

    def refused(*extra, data=data):
        status, stderr = cli_train(tmp_path, capsys, "rrdb", *validate, *extra, data=data)
        assert status == 2
        assert not (tmp_path / "out" / "loss_log.jsonl").exists()  # not a single step was trained
        return stderr

    prog = "train_srdiff.py"
    tiny = tmp_path / "val_tiny"
    tiny.mkdir()
    PIL.Image.fromarray(smooth_image((3, 3), 1)).save(tiny / "tiny.png")
    assert_one_error_line(refused("--validation_data_dir", str(tiny)), prog, "'tiny.png'", "3x3", "4x4",
                          "`--validation_data_dir`")  # fmt: skip
    # the last training image, held out for validation
    held_out = write_images(tmp_path / "hr_tiny", 2)
    PIL.Image.fromarray(smooth_image((3, 3), 1)).save(held_out / "zz_tiny.png")
    assert_one_error_line(refused(data=held_out), prog, "'zz_tiny.png'", "held out", "4x4", "`--validation_data_dir`")
    # corrupt and truncated files: `verify` passes the truncated one, the validation step would not
    broken = tmp_path / "val_broken"
    broken.mkdir()
    (broken / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    assert_one_error_line(refused("--validation_data_dir", str(broken)), prog, "'broken.png'", "cannot be read")
    truncated = tmp_path / "val_truncated"
    truncated.mkdir()
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (truncated / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_one_error_line(refused("--validation_data_dir", str(truncated)), prog, "'cut.jpg'", "cannot be read")
    for crop in ("3", "-8"):
        assert_one_error_line(refused("--validation_crop", crop), prog, "`--validation_crop`", "at least", "(4",
                              f"got {crop}")  # fmt: skip

    # the options: each message names the option it is about
    assert_one_error_line(refused("--validation_data_dir", str(tmp_path / "nope")), prog,
                          "`--validation_data_dir`", "is not a folder")  # fmt: skip
    assert "--train_data_dir" not in capsys.readouterr().err
    empty = tmp_path / "val_empty"
    empty.mkdir()
    assert_one_error_line(refused("--validation_data_dir", str(empty)), prog, "`--validation_data_dir`", "no images")
    assert_one_error_line(refused("--validation_steps", "-1"), prog, "`--validation_steps` must be >= 1", "got -1")
    for steps in ([], ["--validation_steps", "0"]):
        status, stderr = cli_train(tmp_path, capsys, "rrdb", *steps, "--validation_data_dir", str(tiny), data=data)
        assert status == 2
        assert_one_error_line(stderr, prog, "`--validation_data_dir` is only used when validating",
                              "`--validation_steps N`")  # fmt: skip
    assert_one_error_line(refused("--num_validation_images", "0"), prog, "`--num_validation_images` must be >= 1")
    status, stderr = cli_train(tmp_path, capsys, "diffusion", "--pretrained_encoder", str(tmp_path), *validate,
                               "--validation_inference_steps", "0", data=data)  # fmt: skip
    assert status == 2
    assert_one_error_line(stderr, prog, "`--validation_inference_steps` must be >= 1", "got 0")


def test_validation_writes_a_comparison_image_per_step_without_trackers(tmp_path):
    """With `--report_to none` the validation images are still saved; one LR pixel (4x4 HR at x4) is enough."""
    from srdiff_diffusers.evaluation.report import comparison_grid

    validation = write_images(tmp_path / "val", 1, size=(32, 32), seed=10)
    PIL.Image.fromarray(smooth_image((4, 5), 11)).save(validation / "img_001.png")  # the smallest accepted
    result = train(
        tmp_path, "rrdb", "--max_train_steps", "2", "--checkpointing_steps", "10", "--validation_steps", "1",
        "--validation_data_dir", str(validation), "--num_validation_images", "2", "--validation_crop", "0",
    )  # fmt: skip
    assert sorted(result.validation) == [1, 2]
    folder = tmp_path / "out" / "validation"
    assert sorted(p.name for p in folder.iterdir()) == ["step-1.png", "step-2.png"]  # no temporary file left
    # LR (nearest) | bicubic | RRDB | HR of each validation image, one below the other
    hr = smooth_image((32, 32), 10)
    one = comparison_grid(hr, hr[::4, ::4], {"bicubic": [hr], "rrdb": [hr]})
    with PIL.Image.open(folder / "step-2.png") as image:
        assert image.mode == "RGB" and image.size == (one.width, 2 * one.height)


def test_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    status, stderr = cli_train(tmp_path, capsys, "rrdb")
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "`--output_dir`", "is a file", "choose a folder")


def test_rrdb_num_blocks_below_two_is_refused_in_terms_of_the_option(tmp_path, capsys):
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--rrdb_num_blocks", "1")
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "`--rrdb_num_blocks` must be >= 2, got 1")
    assert "condition_feature_indices" not in stderr  # an option the user never set


def test_resume_from_an_incomplete_or_other_stage_checkpoint(tmp_path, capsys, encoder_dir):
    from srdiff_diffusers import SRDiffUNet2DModel

    encoder = ["--pretrained_encoder", str(encoder_dir)]
    out = tmp_path / "out"
    (out / "checkpoint-3").mkdir(parents=True)  # e.g. copied without its files
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--resume_from_checkpoint", str(out / "checkpoint-3"))
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "checkpoint-3", "incomplete checkpoint", "`encoder/`")
    assert sorted(os.listdir(out)) == ["checkpoint-3"]  # refused before anything was written

    rrdb_checkpoint = tmp_path / "rrdb-run" / "checkpoint-2"
    RRDBEncoder(num_features=8, num_blocks=2).save_pretrained(rrdb_checkpoint / "encoder")
    status, stderr = cli_train(tmp_path, capsys, "diffusion", *encoder, "--resume_from_checkpoint",
                               str(rrdb_checkpoint))  # fmt: skip
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "checkpoint of a `--stage rrdb` run", "`--stage diffusion`")

    diffusion_checkpoint = out / "checkpoint-5"  # now the newest in --output_dir
    SRDiffUNet2DModel(block_out_channels=(8, 16, 16, 32), condition_channels=8).save_pretrained(
        diffusion_checkpoint / "unet"
    )
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--resume_from_checkpoint", "latest")
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "checkpoint-5", "checkpoint of a `--stage diffusion` run")
    status, stderr = cli_train(tmp_path, capsys, "diffusion", *encoder, "--resume_from_checkpoint", "latest",
                               "--use_ema")  # fmt: skip
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "no EMA weights", "without `--use_ema`")
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--resume_from_checkpoint", str(tmp_path / "checkpoint-9"))
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "`--resume_from_checkpoint`", "not found")

    # a checkpoint of this stage but of another model: its options, not a list of mismatched tensor shapes
    RRDBEncoder(num_features=8, num_blocks=3).save_pretrained(tmp_path / "deeper" / "checkpoint-1" / "encoder")
    status, stderr = cli_train(tmp_path, capsys, "rrdb", "--resume_from_checkpoint",
                               str(tmp_path / "deeper" / "checkpoint-1"))  # fmt: skip
    assert status == 2
    assert_one_error_line(stderr, "train_srdiff.py", "num_blocks=3 in the checkpoint, 2 here")


def test_wrong_size_lr_images_get_a_matching_hint(tmp_path):
    from srdiff_diffusers.training.data import attach_lr_images

    hr_folder = write_images(tmp_path / "HR", 2, size=(48, 48))
    lr_folder = write_images(tmp_path / "LR_bicubic" / "X2", 2, size=(24, 24))  # the x2 set given for x4
    records = attach_lr_images(load_hr_images(str(hr_folder), cache_dir=str(tmp_path / "c")), str(lr_folder))
    with pytest.raises(ValueError) as error:
        SRPatchDataset(records, 32, 4)
    message = str(error.value)
    assert "LR image is 24x24, expected 12x12 (HR / 4)" in message
    assert "`--upscale_factor` (4)" in message and "`--train_lr_data_dir`" in message
    assert "--resolution" not in message and "px on each side" not in message


def test_export_module_runs_without_warning_and_reports_errors_in_one_line(tmp_path, capsys, encoder_dir):
    from srdiff_diffusers.cli import main as srdiff

    def export_main(argv):
        return srdiff(["export", *argv])

    prog = "srdiff export"
    missing = tmp_path / "run" / "checkpoint-4"
    command = [sys.executable, "-m", "srdiff_diffusers", "export", str(missing),
               "--pretrained_encoder", str(encoder_dir), "--output_dir", str(tmp_path / "model")]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert "RuntimeWarning" not in run.stderr and "found in sys.modules" not in run.stderr, run.stderr
    assert run.returncode == 2
    assert_one_error_line(run.stderr, prog, "checkpoint-4", "not found")

    rrdb_checkpoint = tmp_path / "rrdb-run" / "checkpoint-2"
    RRDBEncoder(num_features=8, num_blocks=2).save_pretrained(rrdb_checkpoint / "encoder")
    argv = [str(rrdb_checkpoint), "--pretrained_encoder", str(encoder_dir), "--output_dir", str(tmp_path / "model")]
    assert export_main(argv) == 2
    assert_one_error_line(capsys.readouterr().err, prog, "checkpoint of a `--stage rrdb` run")


def test_srdiff_train_export_and_model_card_are_subcommands(tmp_path, capsys, encoder_dir):
    """`srdiff train` takes the training script's arguments; every command reports a mistake as one line, exit 2."""
    from srdiff_diffusers.cli import main as srdiff

    data = write_images(tmp_path / "hr", 1)
    argv = ["train", "--stage", "diffusion", "--pretrained_encoder", str(encoder_dir), "--train_data_dir", str(data),
            "--output_dir", str(tmp_path / "run"), "--resolution", "32", "--train_batch_size", "2", "--report_to",
            "none", "--max_train_steps", "2", "--checkpointing_steps", "2", "--cache_dir", str(tmp_path / "cache"),
            *TINY_UNET]  # fmt: skip
    assert srdiff(argv) == 0
    assert SRDiffPipeline.from_pretrained(tmp_path / "run").upscale_factor == 4
    capsys.readouterr()
    assert srdiff([*argv, "--resolution", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "srdiff train", "`--resolution` must be at least")
    checkpoint = str(tmp_path / "run" / "checkpoint-2")
    export = ["export", checkpoint, "--pretrained_encoder", str(encoder_dir), "--output_dir", str(tmp_path / "model")]
    assert srdiff(export) == 0 and (tmp_path / "model" / "model_index.json").is_file()
    assert srdiff(export) == 2
    assert_one_error_line(capsys.readouterr().err, "srdiff export", "already holds a pipeline")
    command = "srdiff " + " ".join(shlex.quote(a) for a in argv)
    card = ["model-card", str(tmp_path / "model"), "--training_command", command, "--run_dir", str(tmp_path / "run"),
            "--global_step", "2"]  # fmt: skip
    assert srdiff(card) == 0 and "for 2 optimizer steps" in (tmp_path / "model" / "README.md").read_text()
    with pytest.raises(SystemExit) as usage_error:  # argparse's own usage error: the same status
        srdiff([*card[:-1], "x"])
    assert usage_error.value.code == 2


def test_pretrained_unet_warm_starts_the_noise_predictor(tmp_path, encoder_dir):
    from conftest import tiny_components

    unet, encoder = tiny_components()
    warm = tmp_path / "warm"
    SRDiffPipeline(unet=unet, encoder=RRDBEncoder.from_pretrained(encoder_dir)).save_pretrained(warm)
    # learning rate 0: the saved U-Net is exactly the warm start
    train(tmp_path, "diffusion", "--pretrained_encoder", str(encoder_dir), "--pretrained_unet", str(warm),
          "--max_train_steps", "1", "--learning_rate", "0")  # fmt: skip
    trained = SRDiffPipeline.from_pretrained(tmp_path / "out").unet.state_dict()
    for name, value in unet.state_dict().items():
        assert torch.equal(trained[name], value), name
    AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.raises(ValueError, match="holds another U-Net"):
        train(tmp_path, "diffusion", "--pretrained_encoder", str(encoder_dir), "--pretrained_unet", str(warm),
              "--unet_block_out_channels", "8,16,32", "--max_train_steps", "1", output="other")  # fmt: skip


def test_max_train_minutes_stops_in_time_saves_and_resumes(tmp_path, encoder_dir):
    """A time budget (GPU scripts): the run stops, checkpoints the step reached, saves the model, reports throughput."""
    common = ["--pretrained_encoder", str(encoder_dir), "--checkpointing_steps", "1000", "--train_batch_size", "2"]
    result = train(tmp_path, "diffusion", *common, "--max_train_steps", "100000", "--max_train_minutes", "0.05")
    stopped = result.global_step
    assert 1 <= stopped < 100000
    assert [Path(p).name for p in list_checkpoints(tmp_path / "out")] == [f"checkpoint-{stopped}"]
    assert (tmp_path / "out" / "model_index.json").is_file()
    assert result.steps_per_second > 0 and result.samples_per_second == pytest.approx(2 * result.steps_per_second)
    assert stopped / result.steps_per_second == pytest.approx(3.0, abs=1.5)  # 0.05 minutes, plus at most one step
    AcceleratorState._reset_state(reset_partial_state=True)
    resumed = train(tmp_path, "diffusion", *common, "--max_train_steps", str(stopped + 2), "--max_train_minutes", "5",
                    "--resume_from_checkpoint", "latest", "--overwrite_output_dir")  # fmt: skip
    assert sorted(resumed.losses) == [stopped + 1, stopped + 2]
    with pytest.raises(ValueError, match="`--max_train_minutes` must be a positive number"):
        train(tmp_path, "diffusion", *common, "--max_train_minutes", "0", output="zero")


def test_export_in_float16_sharded(tmp_path, encoder_dir):
    """`srdiff export --dtype float16 --max_shard_size`: half the bytes, no file over the limit, the rounded weights."""
    from srdiff_diffusers.cli import main as srdiff

    train(tmp_path, "diffusion", "--pretrained_encoder", str(encoder_dir), "--max_train_steps", "2",
          "--checkpointing_steps", "2")  # fmt: skip
    checkpoint = str(tmp_path / "out" / "checkpoint-2")
    export = ["export", checkpoint, "--pretrained_encoder", str(encoder_dir), "--output_dir"]
    assert srdiff([*export, str(tmp_path / "fp32")]) == 0
    assert srdiff([*export, str(tmp_path / "fp16"), "--dtype", "float16", "--max_shard_size", "20KB"]) == 0
    for folder in ("unet", "encoder"):
        shards = sorted((tmp_path / "fp16" / folder).glob("*.safetensors"))
        # the limit counts tensor bytes (20KB = 20,000); each file adds its JSON header, a few KB here
        assert len(shards) > 1 and all(p.stat().st_size <= 24_000 for p in shards), shards
        assert (tmp_path / "fp16" / folder / "diffusion_pytorch_model.safetensors.index.json").is_file()
        full = (tmp_path / "fp32" / folder / "diffusion_pytorch_model.safetensors").stat().st_size
        assert sum(p.stat().st_size for p in shards) < 0.6 * full
    for bad in ("banana", "15GiB", "0"):  # refused before anything is written
        assert srdiff([*export, str(tmp_path / "bad"), "--max_shard_size", bad]) == 2
        assert not (tmp_path / "bad").exists()
    full, half = (SRDiffPipeline.from_pretrained(tmp_path / folder) for folder in ("fp32", "fp16"))
    assert half.unet.dtype == torch.float32  # half-precision files load into the default dtype
    for name in ("unet", "encoder"):
        weights = getattr(full, name).state_dict()
        for key, value in getattr(half, name).state_dict().items():  # every tensor, from its shard
            assert torch.equal(value, weights[key].half().float()), key
