"""The prepared GPU run (issue 16, part 5) runs end to end, shrunk to a CPU smoke test, so that a lent GPU's few
minutes are not lost to a typo: both stages under a time budget, the float16 sharded export, the Set14-real table."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytest.importorskip("kornia", reason="the realistic degradations need kornia (pip install 'srdiff-diffusers[train]')")
pytest.importorskip("datasets", reason="training needs datasets (pip install 'srdiff-diffusers[train]')")

from test_training import write_images  # noqa: E402


def test_gpu_script_runs_shrunk_on_the_cpu(tmp_path):
    data = tmp_path / "data"
    write_images(data / "BSD100-HR", 3, size=(64, 64))
    write_images(data / "Set14-HR", 1, size=(48, 48))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    degrade = [sys.executable, "-m", "srdiff_diffusers", "degrade", "--hr-dir", str(data / "Set14-HR"), "-o",
               str(data / "Set14-real-LR"), "--seed", "0"]  # fmt: skip
    subprocess.run(degrade, check=True, env=env, capture_output=True, timeout=120)
    results = tmp_path / "results"
    env.update(
        PYTHON=sys.executable, WHEELS="", DATA=str(data), OUT=str(results), WORK=str(tmp_path / "work"),
        RRDB_MINUTES="0.02", UNET_MINUTES="0.02", RRDB_SIZE="--rrdb_num_features 8 --rrdb_num_blocks 2",
        UNET_WIDTHS="8,16,16,32", BATCH="2", RESOLUTION="32", PRECISION="no", WORKERS="0", OMP_WAIT_POLICY="PASSIVE",
    )
    run = subprocess.run(["bash", str(REPO_ROOT / "benchmarks/gpu/train_realistic.sh")], env=env, text=True,
                         capture_output=True, timeout=400)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (results / "train.log").read_text()
    assert log.count("throughput:") == 2 and "steps/s" in log and "samples/s" in log
    assert log.count("`--max_train_minutes` (0.02) reached") == 2
    model = tmp_path / "work" / "srdiff-realistic-x4"
    assert (model / "model_index.json").is_file()
    table = (results / "set14_real.md").read_text()
    assert all(f"| {method} |" in table for method in ("Bicubic", "RRDB", "SRDiff"))
    parts = sorted(results.glob("srdiff-realistic-x4.tar.part-*"))
    assert parts and len(list(results.iterdir())) <= 8  # what the device sends back
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    (tmp_path / "unpacked").mkdir()
    subprocess.run(["tar", "-xf", str(joined), "-C", str(tmp_path / "unpacked")], check=True)
    unpacked = tmp_path / "unpacked" / "srdiff-realistic-x4"
    assert sorted(p.name for p in unpacked.rglob("*")) == sorted(p.name for p in model.rglob("*"))
