"""`srdiff train --stage distill`: a few-step student of a teacher's DDIM trajectory, resumable and exportable."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

pytest.importorskip("accelerate", reason="training needs the [train] extra (accelerate)")
from accelerate.state import AcceleratorState  # noqa: E402

from srdiff_diffusers import SRDiffPipeline, fast_scheduler  # noqa: E402
from srdiff_diffusers.commands.train import parse_args  # noqa: E402
from srdiff_diffusers.pipelines.pipeline_srdiff import default_scheduler  # noqa: E402
from srdiff_diffusers.training import export_pipeline  # noqa: E402
from srdiff_diffusers.training import train as train_stage  # noqa: E402
from srdiff_diffusers.training.distillation import ddim_scheduler, predicted_x0, teacher_sample  # noqa: E402

from conftest import tiny_pipeline  # noqa: E402
from test_training import write_images  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    tiny_pipeline().save_pretrained(folder)
    return str(folder)


def distill(tmp_path, teacher_dir, *extra, output="out", data=None):
    data = data or write_images(tmp_path / "hr", 3, size=(40, 36))
    argv = [
        "--stage", "distill", "--teacher", teacher_dir, "--train_data_dir", str(data), "--output_dir",
        str(tmp_path / output), "--resolution", "32", "--train_batch_size", "2", "--report_to", "none",
        "--cache_dir", str(tmp_path / "cache"), "--teacher_steps", "3", "--student_steps", "1,2", *extra,
    ]  # fmt: skip
    return train_stage(parse_args(argv))


def test_distill_resumes_exactly_and_exports_a_one_step_pipeline(tmp_path, teacher_dir):
    common = ["--max_train_steps", "4", "--checkpointing_steps", "2", "--use_ema", "--distill_gt_weight", "0.5",
              "--default_temperature", "0.5"]  # fmt: skip
    full = distill(tmp_path, teacher_dir, *common, output="full")
    assert sorted(full.losses) == [1, 2, 3, 4] and all(np.isfinite(v) for v in full.losses.values())

    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", tmp_path / "resumed" / "checkpoint-2")
    log = (tmp_path / "full" / "loss_log.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "resumed" / "loss_log.jsonl").write_text("".join(log[:2]))
    resumed = distill(tmp_path, teacher_dir, *common, "--resume_from_checkpoint", "latest", output="resumed")
    assert sorted(resumed.losses) == [3, 4]
    for step in (3, 4):  # the same patches, temperatures, noise and timesteps after the resume
        assert resumed.losses[step] == pytest.approx(full.losses[step], abs=1e-6), step

    # the final folder is a one-step pipeline: x0 prediction, DDIM, 1 step and temperature 0.5 stored
    student = SRDiffPipeline.from_pretrained(tmp_path / "full")
    assert isinstance(student.scheduler, DDIMScheduler)
    assert student.scheduler.config.prediction_type == "sample"
    assert student.config.default_num_inference_steps == 1 and student.config.default_temperature == 0.5
    teacher = SRDiffPipeline.from_pretrained(teacher_dir)
    assert any(not torch.equal(a, b) for a, b in zip(student.unet.parameters(), teacher.unet.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(student.encoder.parameters(), teacher.encoder.parameters()))
    # a checkpoint exports the same pipeline (its saved scheduler gives the prediction type)
    exported = export_pipeline(str(tmp_path / "full" / "checkpoint-4"), None, str(tmp_path / "exported"),
                               teacher=teacher_dir, default_num_inference_steps=1)  # fmt: skip
    assert exported.scheduler.config.prediction_type == "sample"
    final = student.unet.state_dict()
    assert all(torch.equal(exported.unet.state_dict()[k], final[k]) for k in final)


def test_the_teacher_trajectory_is_the_pipelines_ddim_sample(teacher_dir):
    """What the student learns from is what `pipe(image)` gives with the teacher's DDIM steps."""
    pipe = SRDiffPipeline.from_pretrained(teacher_dir)
    pipe.scheduler = pipe.fast_scheduler("ddim")
    lr01 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    raw = pipe(lr01, num_inference_steps=3, latents=noise * 0.7, output_type="raw").images
    scheduler = ddim_scheduler(pipe.scheduler.config)
    scheduler.set_timesteps(3)
    condition = pipe.encoder.encode(pipe.image_processor.normalize(lr01))
    x0 = teacher_sample(pipe.unet, scheduler, noise * 0.7, condition)
    np.testing.assert_allclose(pipe.formulas.image_from_residual(x0, lr01).numpy(), raw.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["sample", "v_prediction"])
def test_an_x0_or_v_student_samples_through_the_ordinary_pipeline_and_schedulers(kind):
    pipe = tiny_pipeline()
    pipe = SRDiffPipeline(
        unet=pipe.unet, encoder=pipe.encoder,
        scheduler=fast_scheduler(default_scheduler().config, "ddim", prediction_type=kind),
        default_num_inference_steps=1, default_temperature=0.0,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    lr01 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    # one DDIM step from x_T = 0 (temperature 0) is the model's x0, by hand: the formula of `predicted_x0`
    out = pipe(lr01, output_type="raw").images
    x_T = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        condition = pipe.encoder.encode(pipe.image_processor.normalize(lr01))
        model_output = pipe.unet(x_T, 99, condition).sample
    a = pipe.scheduler.alphas_cumprod[99]
    by_hand = model_output if kind == "sample" else a.sqrt() * x_T - (1 - a).sqrt() * model_output
    assert torch.allclose(predicted_x0(pipe.scheduler, model_output, x_T, torch.tensor([99])), by_hand)
    np.testing.assert_allclose(out.numpy(), pipe.formulas.image_from_residual(by_hand, lr01).numpy(), atol=1e-5)
    # other schedulers made from its config keep the prediction type; one that drops it is refused
    pipe.scheduler = pipe.fast_scheduler("dpmsolver++")
    assert pipe(lr01, num_inference_steps=2, output_type="np").images.shape == (1, 32, 32, 3)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, prediction_type="epsilon")
    with pytest.raises(ValueError, match=f"predicts '{kind}'"):
        pipe(lr01, num_inference_steps=2)


def test_distill_options_are_checked_before_anything_is_loaded(tmp_path, teacher_dir, capsys):
    from srdiff_diffusers.cli import main

    base = ["train", "--train_data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--report_to", "none"]
    cases = [
        (["--stage", "distill"], "needs `--teacher`"),
        (["--stage", "distill", "--teacher", str(tmp_path / "none")], "is not a pipeline folder"),
        (["--stage", "diffusion", "--teacher", teacher_dir], "goes with `--stage distill`"),
        (["--stage", "distill", "--teacher", teacher_dir, "--student_steps", "1,20"], "`--student_steps` must be"),
        (["--stage", "distill", "--teacher", teacher_dir, "--distill_gt_weight", "-1"], "must be a number >= 0"),
    ]
    for extra, words in cases:
        assert main(base + extra) == 2
        assert words in capsys.readouterr().err, extra
    assert not (tmp_path / "o").exists()


def test_the_student_checkpoint_records_its_scheduler(tmp_path, teacher_dir):
    distill(tmp_path, teacher_dir, "--max_train_steps", "1", "--checkpointing_steps", "1",
            "--prediction_type", "v_prediction")  # fmt: skip
    saved = json.loads((tmp_path / "out" / "checkpoint-1" / "scheduler" / "scheduler_config.json").read_text())
    assert saved["prediction_type"] == "v_prediction" and saved["_class_name"] == "DDIMScheduler"


def test_a_teacher_of_another_noise_schedule_is_refused(tmp_path, capsys):
    from diffusers import DDPMScheduler

    from srdiff_diffusers.cli import main

    tiny = tiny_pipeline()
    teacher = SRDiffPipeline(unet=tiny.unet, encoder=tiny.encoder, scheduler=DDPMScheduler(num_train_timesteps=1000))
    teacher.save_pretrained(tmp_path / "teacher")
    data = write_images(tmp_path / "hr", 2, size=(40, 36))
    argv = ["train", "--stage", "distill", "--teacher", str(tmp_path / "teacher"), "--train_data_dir", str(data),
            "--output_dir", str(tmp_path / "o"), "--resolution", "32", "--report_to", "none", "--max_train_steps", "1"]
    assert main(argv) == 2
    assert "another noise schedule" in capsys.readouterr().err
