"""Scale-out: `srdiff upscale` / `evaluate` under `accelerate launch`, interrupted runs, batching, per-image seeds."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from srdiff_diffusers.cli import main
from srdiff_diffusers.commands.scale_out import Manifest
from srdiff_diffusers.seeds import sample_generators, sample_seeds

from conftest import REPO_ROOT, tiny_pipeline

NESTED = ["a.png", "b.png", "sub/c.png", "sub/d.png", "sub/deeper/e.png", "sub/deeper/f.png"]


@pytest.fixture
def nested_inputs(tmp_path):
    """Six small images in nested folders, of two sizes (so batches mix sizes)."""
    root = tmp_path / "in"
    rng = np.random.default_rng(0)
    for index, name in enumerate(NESTED):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shape = (8, 12, 3) if index % 3 else (10, 8, 3)
        PIL.Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name)
    return root


def outputs_of(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*_x4.png"))}


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", **extra)
    return env


def upscale_args(inputs, out, model_dir, steps=2, *extra):
    return ["upscale", str(inputs), "-o", str(out), "--model", model_dir, "--steps", str(steps), "--seed", "0", *extra]


def test_two_accelerate_processes_write_each_output_once_identical_to_one_process(model_dir, nested_inputs, tmp_path):
    one = tmp_path / "one"
    assert main(upscale_args(nested_inputs, one, model_dir)) == 0
    expected = outputs_of(one)
    assert sorted(expected) == sorted(name.replace(".png", "_x4.png") for name in NESTED)  # relative paths kept

    two, manifest = tmp_path / "two", tmp_path / "two.jsonl"
    command = [
        # `--multi_gpu` is accelerate's torchrun launcher; with ACCELERATE_USE_CPU it starts CPU processes (gloo).
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "srdiff_diffusers",
        *upscale_args(nested_inputs, two, model_dir), "--manifest", str(manifest), "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env(ACCELERATE_USE_CPU="true"), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert outputs_of(two) == expected  # byte-identical
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    written = [Path(r["output"]).relative_to(two).as_posix() for r in records]
    assert sorted(written) == sorted(expected)  # each output written exactly once
    assert {r["process"] for r in records} == {0, 1}  # and the work was shared
    assert done.stdout.count("Upscaled 6 image(s)") == 1  # the summary on the main process only
    assert not list(tmp_path.glob(".two.jsonl.part-*"))


def test_a_killed_run_resumes_without_redoing_finished_images(model_dir, nested_inputs, tmp_path):
    out, manifest = tmp_path / "out", tmp_path / "manifest.jsonl"
    command = [sys.executable, "-m", "srdiff_diffusers", *upscale_args(nested_inputs, out, model_dir, 40),
               "--manifest", str(manifest), "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.rglob("*_x4.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.rglob("*_x4.png")}
    assert 1 <= len(finished) < len(NESTED), "the run must be killed in the middle"
    assert manifest.exists() is False  # parts only: the manifest itself is written at merges
    # What a kill during a write leaves: a temporary file, and a cut line in this process's manifest part.
    planned = [out / name.replace(".png", "_x4.png") for name in NESTED]
    missing = next(output for output in planned if output not in finished)
    missing.parent.mkdir(parents=True, exist_ok=True)
    (missing.parent / f".{missing.name}.tmp-0123abcd").write_bytes(b"half a png")
    (out / "sub").mkdir(exist_ok=True)
    (out / "sub" / ".notes.tmp-0123abcd").write_text("a user's file, not ours")
    with open(tmp_path / ".manifest.jsonl.part-0", "a") as part:
        part.write('{"input": "cut sho')

    assert main(upscale_args(nested_inputs, out, model_dir, 40, "--skip-existing", "--manifest", str(manifest))) == 0
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # finished images were not redone
    assert len(list(out.rglob("*_x4.png"))) == len(NESTED)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]  # valid JSONL, the cut line dropped
    outputs = [Path(r["output"]) for r in records]
    assert sorted(map(str, outputs)) == sorted(map(str, out.rglob("*_x4.png")))  # each output recorded once
    assert {"input", "output", "seed", "model", "sampler", "steps", "seconds"} <= set(records[0])
    assert not [p for p in out.rglob(".*tmp-*") if p.name != ".notes.tmp-0123abcd"]  # no partial or temp file
    assert (out / "sub" / ".notes.tmp-0123abcd").read_text() == "a user's file, not ours"
    assert not list(tmp_path.glob(".manifest.jsonl.part-*"))

    clean = tmp_path / "clean"
    assert main(upscale_args(nested_inputs, clean, model_dir, 40)) == 0
    assert outputs_of(out) == outputs_of(clean)


def test_skip_existing_and_overwrite_exclude_each_other(model_dir, nested_inputs, tmp_path, capsys):
    assert main(upscale_args(nested_inputs, tmp_path / "o", model_dir, 1, "--skip-existing", "--overwrite")) == 2
    assert "--skip-existing" in capsys.readouterr().err
    assert main(upscale_args(nested_inputs, tmp_path / "o", model_dir, 1, "--batch-size", "0")) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_the_output_folder_inside_the_input_folder_is_not_an_input(model_dir, nested_inputs):
    out = nested_inputs / "sr"
    assert main(upscale_args(nested_inputs, out, model_dir, 1)) == 0
    assert main(upscale_args(nested_inputs, out, model_dir, 1, "--skip-existing")) == 0
    assert not list(out.rglob("*_x4_x4.png"))


def test_a_partial_manifest_part_merges_to_valid_lines(tmp_path):
    manifest = Manifest(tmp_path / "m.jsonl", 3)
    (tmp_path / "m.jsonl").write_text("a line the user wrote, not JSON\n")
    manifest.append({"output": "x"})
    with open(manifest.part, "a") as part:
        part.write('{"output": "cut')
    assert manifest.merge() == 1
    assert (tmp_path / "m.jsonl").read_text() == 'a line the user wrote, not JSON\n{"output": "x"}\n'
    assert not manifest.part.exists()


# ---------------------------------------------------------------------------------------------------------------
# batching
# ---------------------------------------------------------------------------------------------------------------


class CountingUNet:
    """Counts the U-Net calls and their batch sizes, so a test can tell that batching happened."""

    def __init__(self, pipe):
        self.calls, forward = [], pipe.unet.forward

        def counted(sample, *args, **kwargs):
            self.calls.append(sample.shape[0])
            return forward(sample, *args, **kwargs)

        pipe.unet.forward = counted


def generators(count, first=0):
    return [torch.Generator().manual_seed(first + k) for k in range(count)]


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_batched_equals_unbatched(scheduler):
    pipe = tiny_pipeline()
    if scheduler == "ddim":
        pipe.scheduler = pipe.fast_scheduler("ddim")
    rng = np.random.default_rng(1)
    images = [rng.random((12, 16, 3)).astype(np.float32) for _ in range(5)] + [rng.random((8, 8, 3)).astype(np.float32)]
    # Each output image from its own generator, drawn alone (the reference), then all in one call in batches.
    reference = [
        pipe(image, num_inference_steps=3, generator=generators(2, 2 * k), num_images_per_prompt=2,
             output_type="np").images
        for k, image in enumerate(images)
    ]  # fmt: skip
    counter = CountingUNet(pipe)
    batched = pipe(images, num_inference_steps=3, generator=generators(12), num_images_per_prompt=2,
                   output_type="np", batch_size=4).images  # fmt: skip
    assert counter.calls == [8] * 3 + [2] * 3 + [2] * 3  # 4 inputs x 2 samples, then the fifth, the other size
    for k, expected in enumerate(reference):
        np.testing.assert_allclose(batched[2 * k : 2 * k + 2], expected, atol=1e-4, rtol=0)
    assert not np.allclose(batched[0], batched[2], atol=1e-2)  # different images, not one repeated


def test_batched_tiles_equal_one_tile_at_a_time():
    pipe = tiny_pipeline()
    image = np.random.default_rng(2).random((40, 40, 3)).astype(np.float32)
    kwargs = dict(num_inference_steps=2, num_images_per_prompt=2, output_type="np", tile_size=16, tile_overlap=4)
    counter = CountingUNet(pipe)
    single = pipe(image, generator=generators(2), **kwargs).images
    tiles = len(counter.calls) // 2
    assert tiles == 9 and set(counter.calls) == {2}
    counter.calls.clear()
    batched = pipe(image, generator=generators(2), batch_size=4, **kwargs).images
    assert counter.calls == [8, 8, 2] * 2  # tiles 4 + 4 + 1, each with its 2 samples
    np.testing.assert_allclose(batched, single, atol=1e-4, rtol=0)


def test_cli_batch_size_gives_the_unbatched_images(model_dir, nested_inputs, tmp_path):
    assert main(upscale_args(nested_inputs, tmp_path / "b1", model_dir)) == 0
    assert main(upscale_args(nested_inputs, tmp_path / "b4", model_dir, 2, "--batch-size", "4")) == 0
    one, four = outputs_of(tmp_path / "b1"), outputs_of(tmp_path / "b4")
    assert sorted(one) == sorted(four)
    for name in one:
        a, b = (np.asarray(PIL.Image.open(folder / name)).astype(int) for folder in (tmp_path / "b1", tmp_path / "b4"))
        assert np.abs(a - b).max() <= 1  # float rounding may move a value across a uint8 step, no further


# ---------------------------------------------------------------------------------------------------------------
# per-image seeds
# ---------------------------------------------------------------------------------------------------------------


def test_the_seed_rule_is_seed_plus_k():
    assert sample_seeds(7, 3) == [7, 8, 9]
    drawn = [torch.randn(4, generator=g) for g in sample_generators(7, 2)]
    assert torch.equal(drawn[1], torch.randn(4, generator=torch.Generator().manual_seed(8)))
    with pytest.raises(ValueError, match="non-negative"):
        sample_seeds(-1, 1)


def test_outputs_do_not_depend_on_the_order_or_the_other_inputs(model_dir, nested_inputs, tmp_path):
    files = [nested_inputs / "a.png", nested_inputs / "b.png"]
    assert main(["upscale", *map(str, files), "-o", str(tmp_path / "ab"), "--model", model_dir, "--steps", "2",
                 "--seed", "3"]) == 0  # fmt: skip
    assert main(["upscale", *map(str, files[::-1]), "-o", str(tmp_path / "ba"), "--model", model_dir, "--steps",
                 "2", "--seed", "3"]) == 0  # fmt: skip
    assert main(["upscale", str(files[1]), "-o", str(tmp_path / "b"), "--model", model_dir, "--steps", "2",
                 "--seed", "3"]) == 0  # fmt: skip
    assert outputs_of(tmp_path / "ab") == outputs_of(tmp_path / "ba")
    assert outputs_of(tmp_path / "b")["b_x4.png"] == outputs_of(tmp_path / "ab")["b_x4.png"]


def test_the_same_picture_and_seed_give_the_same_output_wherever_it_lies(model_dir, nested_inputs, tmp_path):
    (nested_inputs / "sub" / "a_copy.png").write_bytes((nested_inputs / "a.png").read_bytes())
    assert main(upscale_args(nested_inputs, tmp_path / "out", model_dir)) == 0
    outputs = outputs_of(tmp_path / "out")
    assert outputs["a_x4.png"] == outputs["sub/a_copy_x4.png"]  # the seed rule: seed + k, not the file's path
    assert outputs["a_x4.png"] != outputs["b_x4.png"]


def test_evaluate_split_over_two_processes_reports_what_one_process_does(model_dir, tmp_path):
    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(3)
    for index in range(4):
        PIL.Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(hr / f"{index}.png")
    common = ["--hr-dir", str(hr), "--model", model_dir, "--steps", "2", "--baselines", "bicubic", "--no-lpips",
              "--num-grids", "2", "--device", "cpu"]  # fmt: skip
    assert main(["evaluate", *common, "-o", str(tmp_path / "one")]) == 0
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "srdiff_diffusers",
        "evaluate", *common, "-o", str(tmp_path / "two"),
    ]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env(ACCELERATE_USE_CPU="true"), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "two" / "per_image.csv").read_text() == (tmp_path / "one" / "per_image.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "two" / "grids").iterdir()) == ["0.png", "1.png"]
    parts = sorted(p.name for p in (tmp_path / "two" / "cache").glob("srdiff.part-*.jsonl"))
    assert parts == ["srdiff.part-0.jsonl", "srdiff.part-1.jsonl"]  # both processes computed
    assert done.stdout.count("SR evaluation") == 1  # one report, from the main process
    assert "(8 results computed, 0 reused" in done.stderr  # 4 images x (bicubic, srdiff), counted over processes


def test_batched_refinement_of_hr_guesses_equals_one_at_a_time():
    pipe = tiny_pipeline()
    pipe.scheduler = pipe.fast_scheduler("ddim")
    rng = np.random.default_rng(4)
    lows = [rng.random((8, 8, 3)).astype(np.float32) for _ in range(3)]
    guesses = [rng.random((32, 32, 3)).astype(np.float32) for _ in range(3)]
    kwargs = dict(num_inference_steps=4, strength=0.5, output_type="np", num_images_per_prompt=2)
    single = [pipe(lr, init_image=hr, generator=generators(2, 2 * k), **kwargs).images
              for k, (lr, hr) in enumerate(zip(lows, guesses))]  # fmt: skip
    batched = pipe(lows, init_image=guesses, generator=generators(6), batch_size=3, **kwargs).images
    np.testing.assert_allclose(batched, np.concatenate(single), atol=1e-4, rtol=0)


def test_batch_size_must_be_a_positive_count(pipe):
    with pytest.raises(ValueError, match="batch_size"):
        pipe(np.zeros((8, 8, 3), np.float32), num_inference_steps=1, batch_size=0)
