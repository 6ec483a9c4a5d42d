"""Hub-native folders (issue 17, part 1): what `save_pretrained` writes loads with `SRDiffPipeline.from_pretrained` and
with plain diffusers (`pipeline.py`, `trust_remote_code=True`), from a folder and by Hub id from a Hub cache; the SRDiff
card goes with every save and every upload; `srdiff push`. No network: uploads stop at `huggingface_hub.HfApi`, and
`HF_HUB_OFFLINE` makes any other Hub call fail."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from huggingface_hub import ModelCard

from srdiff_diffusers import SRDiffFusionPipeline, SRDiffPipeline
from srdiff_diffusers.cli import main as srdiff
from srdiff_diffusers.pipelines.pipeline_folder import check_pipeline_folder

from conftest import tiny_pipeline

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD_FOLDER = FIXTURES / "saved_v0_1"  # release 0.1: `_class_name: "SRDiffPipeline"`, no pipeline.py, no card
WEIGHTS = "diffusion_pytorch_model.safetensors"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    # Any Hub call that the fakes below do not catch fails instead of reaching the network.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # diffusers copies a folder's pipeline.py into its modules cache: keep it in the test's folder.
    import diffusers.utils.dynamic_modules_utils as dynamic_modules

    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))


class FakeHub:
    """`HfApi.create_repo` and `HfApi.create_commit` replaced: records the repository and the files a commit sends."""

    def __init__(self, monkeypatch, namespace="user"):
        self.repos, self.commits = [], []
        hub = self

        def create_repo(api, repo_id, *, private=None, exist_ok=False, **kwargs):
            full = repo_id if "/" in repo_id else f"{namespace}/{repo_id}"
            hub.repos.append({"repo_id": full, "private": private, "token": api.token})
            return huggingface_hub.RepoUrl(f"https://huggingface.co/{full}")

        def create_commit(api, repo_id, operations, *, commit_message, **kwargs):
            files = {}
            for operation in operations:  # read now: a push's temporary folder is gone after the call
                with operation.as_file() as file:
                    files[operation.path_in_repo] = file.read()
            hub.commits.append({"repo_id": repo_id, "files": files, "message": commit_message, **kwargs})
            return huggingface_hub.CommitInfo(
                commit_url=f"https://huggingface.co/{repo_id}/commit/{COMMIT}", commit_message=commit_message,
                commit_description="", oid=COMMIT,
            )  # fmt: skip

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)

    @property
    def files(self):
        assert len(self.commits) == 1, self.commits
        return self.commits[0]["files"]

    def card(self) -> ModelCard:
        return ModelCard(self.files["README.md"].decode("utf-8"))


def check_srdiff_card(card: ModelCard, repo_id: str):
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "image-to-image"
    assert {"super-resolution", "srdiff"} <= set(card.data.tags)
    assert card.data.license == "apache-2.0" and "psnr" in card.data.metrics
    assert "pip install srdiff-diffusers" in card.text
    assert f'SRDiffPipeline.from_pretrained("{repo_id}")' in card.text
    assert f'DiffusionPipeline.from_pretrained("{repo_id}", trust_remote_code=True)' in card.text
    assert "Model Card for Model ID" not in card.text and "{{" not in card.text and "{%" not in card.text


def sample(pipe, lr):
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    return pipe(lr, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images


def lr_input() -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURES / "saved_v0_1_input.npy"))


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# the saved folder
# ---------------------------------------------------------------------------------------------------------------


def test_save_pretrained_writes_pipeline_py_class_list_and_card(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", "SRDiffPipeline"]
    # the component module paths stay those of every earlier release
    assert index["unet"] == ["srdiff_diffusers.models.unet_srdiff", "SRDiffUNet2DModel"]
    assert index["encoder"] == ["srdiff_diffusers.models.rrdb_encoder", "RRDBEncoder"]
    source = (tmp_path / "pipeline.py").read_text()
    assert "from srdiff_diffusers import SRDiffPipeline" in source and "pip install srdiff-diffusers" in source
    imports = [line for line in source.splitlines() if line.strip().startswith(("import ", "from "))]
    assert imports == ["    from srdiff_diffusers import SRDiffPipeline"]  # nothing but the installed package
    check_srdiff_card(ModelCard.load(tmp_path / "README.md"), "path/to/this/folder")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_pipeline_py_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    tiny_pipeline().save_pretrained(tmp_path)
    monkeypatch.setitem(sys.modules, "srdiff_diffusers", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install srdiff-diffusers"):
        exec(compile((tmp_path / "pipeline.py").read_text(), "pipeline.py", "exec"), {})


def test_save_keeps_a_card_already_in_the_folder(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# A training run's card\n")
    tiny_pipeline().save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text().endswith("# A training run's card\n")


def test_both_loading_ways_from_a_folder(tmp_path):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path)
    expected = sample(tiny_pipeline(), lr_input())
    ours = SRDiffPipeline.from_pretrained(tmp_path)  # no trust_remote_code needed: the class is asked for
    plain = DiffusionPipeline.from_pretrained(str(tmp_path), trust_remote_code=True)
    assert type(ours) is SRDiffPipeline and type(plain) is SRDiffPipeline
    for loaded in (ours, plain):
        np.testing.assert_allclose(sample(loaded, lr_input()), expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # diffusers' own guard stays in place
        DiffusionPipeline.from_pretrained(str(tmp_path))


def test_manipulation_pipelines_save_their_own_class(tmp_path):
    fusion = SRDiffFusionPipeline.from_pipe(tiny_pipeline())
    fusion.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["_class_name"] == [
        "pipeline", "SRDiffFusionPipeline"
    ]  # fmt: skip
    assert type(DiffusionPipeline.from_pretrained(str(tmp_path), trust_remote_code=True)) is SRDiffFusionPipeline
    assert type(SRDiffPipeline.from_pretrained(tmp_path)) is SRDiffPipeline  # the class asked for wins
    assert type(SRDiffFusionPipeline.from_pretrained(tmp_path)) is SRDiffFusionPipeline


def test_folder_check_accepts_both_forms_of_class_name(tmp_path):
    check_pipeline_folder(OLD_FOLDER)
    folder = tmp_path / "model"
    shutil.copytree(OLD_FOLDER, folder)
    index = json.loads((folder / "model_index.json").read_text())
    for class_name in (["pipeline", "SRDiffPipeline"], "SRDiffPipeline"):
        (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": class_name}))
        check_pipeline_folder(folder)
    for class_name, shown in ((["pipeline", "DDPMPipeline"], "DDPMPipeline"), ([1, 2], "model of unknown type")):
        (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": class_name}))
        with pytest.raises(ValueError, match=f"holds a {shown}, not an SRDiff pipeline"):
            SRDiffPipeline.from_pretrained(folder)


def test_a_folder_of_release_0_1_still_loads_and_re_saves_hub_native(tmp_path):
    pipe = SRDiffPipeline.from_pretrained(OLD_FOLDER)
    assert not (OLD_FOLDER / "pipeline.py").exists()
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "pipeline.py").is_file()
    np.testing.assert_allclose(
        sample(DiffusionPipeline.from_pretrained(str(tmp_path), trust_remote_code=True), lr_input()),
        np.load(FIXTURES / "saved_v0_1_ddim2_seed0.npy"), atol=1e-6, rtol=0,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# by Hub id, from a Hub cache
# ---------------------------------------------------------------------------------------------------------------


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lay_out_hub_cache(folder: Path, cache: Path, repo_id: str) -> Path:
    """`folder` as `huggingface_hub` caches a download of `repo_id` at `COMMIT`: blobs, snapshot links, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for name, data in tree(folder).items():
        lfs = name.endswith(".safetensors")  # LFS files are stored by sha256, the others by their git blob id
        blob = repo / "blobs" / (hashlib.sha256(data).hexdigest() if lfs else _git_blob_id(data))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / COMMIT / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return repo


LOAD_BY_ID = """
import sys
import numpy as np
import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from srdiff_diffusers import SRDiffPipeline

torch.set_num_threads(1)
lr = torch.from_numpy(np.load(sys.argv[1]))
for name, load in (
    ("srdiff", lambda: SRDiffPipeline.from_pretrained("user/name")),
    ("diffusers", lambda: DiffusionPipeline.from_pretrained("user/name", trust_remote_code=True)),
):
    pipe = load()
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    out = pipe(lr, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    np.save(f"{sys.argv[2]}/{name}.npy", out)
    print(name, type(pipe).__module__, type(pipe).__name__)
"""


def test_both_loading_ways_by_hub_id_from_the_hub_cache(tmp_path):
    saved = tmp_path / "saved"
    tiny_pipeline().save_pretrained(saved)
    lay_out_hub_cache(saved, tmp_path / "hub", "user/name")
    np.save(tmp_path / "lr.npy", lr_input().numpy())
    # a fresh process: huggingface_hub and diffusers read these variables when they are imported
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "home"),
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", LOAD_BY_ID, str(tmp_path / "lr.npy"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    srdiff_pipeline = "srdiff_diffusers.pipelines.pipeline_srdiff SRDiffPipeline"
    assert done.stdout.split("\n")[:2] == [f"srdiff {srdiff_pipeline}", f"diffusers {srdiff_pipeline}"]
    expected = sample(tiny_pipeline(), lr_input())
    for name in ("srdiff", "diffusers"):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# push_to_hub
# ---------------------------------------------------------------------------------------------------------------


def test_push_to_hub_sends_the_srdiff_card_and_pipeline_py(monkeypatch):
    hub = FakeHub(monkeypatch)
    url = tiny_pipeline().push_to_hub("name", private=True, token="hf_test")
    assert hub.repos == [{"repo_id": "user/name", "private": True, "token": "hf_test"}]
    assert url == f"https://huggingface.co/user/name/commit/{COMMIT}"
    weights = {f"{part}/{name}" for part in ("unet", "encoder") for name in ("config.json", WEIGHTS)}
    assert set(hub.files) == {"model_index.json", "pipeline.py", "README.md", "scheduler/scheduler_config.json", *weights}
    assert json.loads(hub.files["model_index.json"])["_class_name"] == ["pipeline", "SRDiffPipeline"]
    check_srdiff_card(hub.card(), "user/name")  # the full id that create_repo gave


def test_save_pretrained_with_push_to_hub_uploads_the_saved_folder(tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch)
    tiny_pipeline().save_pretrained(tmp_path / "x4", push_to_hub=True, repo_id="user/srdiff-x4", create_pr=True)
    assert hub.commits[0]["create_pr"] is True
    assert hub.files["README.md"] == (tmp_path / "x4" / "README.md").read_bytes()
    check_srdiff_card(hub.card(), "user/srdiff-x4")


def test_training_push_to_hub_uploads_the_model_without_checkpoints(tmp_path, monkeypatch):
    pytest.importorskip("accelerate")
    pytest.importorskip("datasets")
    from accelerate.state import AcceleratorState
    from test_training import train, write_images
    from srdiff_diffusers import RRDBEncoder

    hub = FakeHub(monkeypatch)
    torch.manual_seed(0)
    RRDBEncoder(num_features=8, num_blocks=2).save_pretrained(tmp_path / "encoder")
    try:
        train(tmp_path, "diffusion", "--pretrained_encoder", str(tmp_path / "encoder"), "--max_train_steps", "2",
              "--checkpointing_steps", "2", "--push_to_hub", "--hub_model_id", "someone/srdiff-tiny",
              "--hub_token", "hf_test", data=write_images(tmp_path / "hr", 1))  # fmt: skip
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert (tmp_path / "out" / "checkpoint-2").is_dir()
    assert hub.repos[0]["repo_id"] == "someone/srdiff-tiny" and hub.repos[0]["token"] == "hf_test"
    assert not [p for p in hub.files if p.startswith(("checkpoint-", "logs/")) or p.endswith(".jsonl")]
    assert {"pipeline.py", "model_index.json", "README.md", "unet/diffusion_pytorch_model.safetensors"} <= set(hub.files)
    card = hub.card()
    check_srdiff_card(card, "someone/srdiff-tiny")
    assert "for 2 optimizer steps" in card.text and "--max_train_steps 2" in card.text  # the training run's card
    assert "hf_test" not in card.text


# ---------------------------------------------------------------------------------------------------------------
# srdiff push
# ---------------------------------------------------------------------------------------------------------------


def test_srdiff_push_adds_what_an_old_folder_lacks_without_touching_it(tmp_path, monkeypatch, capsys):
    hub = FakeHub(monkeypatch)
    folder = tmp_path / "converted"
    shutil.copytree(OLD_FOLDER, folder)
    before = tree(folder)
    assert srdiff(["push", str(folder), "user/srdiff-old", "--private", "--token", "hf_test"]) == 0
    assert tree(folder) == before  # the user's folder is as it was
    assert hub.repos == [{"repo_id": "user/srdiff-old", "private": True, "token": "hf_test"}]
    assert set(hub.files) == set(before) | {"pipeline.py", "README.md"}
    assert json.loads(hub.files["model_index.json"])["_class_name"] == ["pipeline", "SRDiffPipeline"]
    for name in ("unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json"):
        assert hub.files[name] == before[name]
    check_srdiff_card(hub.card(), "user/srdiff-old")
    assert "Uploaded" in capsys.readouterr().out
    # asked to, it writes the same files into the folder, which then loads with plain diffusers
    assert srdiff(["push", str(folder), "user/srdiff-old", "--update-folder"]) == 0
    assert (folder / "pipeline.py").is_file() and (folder / "README.md").is_file()
    assert type(DiffusionPipeline.from_pretrained(str(folder), trust_remote_code=True)) is SRDiffPipeline


def test_srdiff_push_keeps_the_folder_s_own_card(tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch)
    folder = tmp_path / "trained"
    shutil.copytree(OLD_FOLDER, folder)
    (folder / "README.md").write_text("---\nlibrary_name: diffusers\n---\n# Trained for 4000 steps\n")
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "optimizer.bin").write_bytes(b"x")
    assert srdiff(["push", str(folder), "user/trained"]) == 0
    assert hub.files["README.md"] == (folder / "README.md").read_bytes()
    assert "checkpoint-2/optimizer.bin" not in hub.files


@pytest.mark.parametrize(
    "breakage, args, message",
    [
        ("no_weights", ["user/name"], "has no weights diffusion_pytorch_model.safetensors"),
        ("no_index", ["user/name"], "has no model_index.json"),
        ("not_srdiff", ["user/name"], "holds a DDPMPipeline, not an SRDiff pipeline"),
        ("missing", ["user/name"], "is not a folder"),
        (None, ["not a/valid/id"], "Repo id must"),
    ],
)
def test_srdiff_push_refuses_a_bad_folder_or_id_before_any_upload(tmp_path, monkeypatch, capsys, breakage, args,
                                                                  message):  # fmt: skip
    hub = FakeHub(monkeypatch)
    folder = tmp_path / "model"
    shutil.copytree(OLD_FOLDER, folder)
    if breakage == "no_weights":
        (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    elif breakage == "no_index":
        (folder / "model_index.json").unlink()
    elif breakage == "not_srdiff":
        index = json.loads((folder / "model_index.json").read_text())
        (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "DDPMPipeline"}))
    elif breakage == "missing":
        folder = tmp_path / "typo"
    assert srdiff(["push", str(folder), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srdiff push: error: ") and message in lines[0], lines
    assert hub.repos == [] and hub.commits == []


def test_srdiff_push_without_the_hub_is_one_line(tmp_path, monkeypatch, capsys):
    def unreachable(api, repo_id, **kwargs):
        raise huggingface_hub.errors.HTTPError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", unreachable)
    folder = tmp_path / "model"
    shutil.copytree(OLD_FOLDER, folder)
    assert srdiff(["push", str(folder), "user/name"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "could not upload to the Hugging Face Hub (" in lines[0], lines
    assert "Name or service not known" in lines[0] and "hf auth login" in lines[0]
