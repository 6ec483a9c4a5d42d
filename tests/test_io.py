"""Atomic writes (`srdiff_diffusers.io`): nothing half-written, and results readable like any other file."""

import os
import stat

import numpy as np
import PIL.Image
import pytest

from srdiff_diffusers.io import atomic_write, make_staging_dir, save_png

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Sets the process umask for one test and restores it."""
    previous = os.umask(0o022)

    def set_mask(mask):
        os.umask(mask)
        return mask

    yield set_mask
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_new_files_get_the_permissions_of_open(tmp_path, umask, mask):
    umask(mask)
    atomic_write(tmp_path / "report.json", "{}\n")
    with open(tmp_path / "plain.json", "w") as f:
        f.write("{}\n")
    assert mode(tmp_path / "report.json") == 0o666 & ~mask == mode(tmp_path / "plain.json")
    assert (tmp_path / "report.json").read_text() == "{}\n"


def test_png_results_are_readable_by_others(tmp_path, umask):
    umask(0o022)
    image = PIL.Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    save_png(image, tmp_path / "out" / "x4.png")
    assert mode(tmp_path / "out" / "x4.png") == 0o644
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "out" / "x4.png")), np.asarray(image))


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "card.md"
    path.write_text("old")
    os.chmod(path, 0o604)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o604


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("kept")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # neither str nor bytes: fails after the temporary file was created
    assert path.read_text() == "kept"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_staging_folders_are_new_hidden_siblings_with_default_permissions(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "models" / "converted"
    first, second = make_staging_dir(target, "converting"), make_staging_dir(target, "converting")
    for folder in (first, second):
        assert folder.parent == target.parent and folder.name.startswith(".converted.converting-")
        assert folder.is_dir() and not os.listdir(folder) and mode(folder) == 0o755
    assert first != second and not target.exists()


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_saved_weights_are_as_readable_as_their_configs(tmp_path, umask, mask):
    from conftest import tiny_pipeline

    umask(mask)
    tiny_pipeline().save_pretrained(tmp_path / "model")  # safetensors 0.8 alone leaves its files 0600
    for part in ("unet", "encoder"):
        weights = tmp_path / "model" / part / "diffusion_pytorch_model.safetensors"
        assert mode(weights) == mode(tmp_path / "model" / part / "config.json") == 0o666 & ~mask
