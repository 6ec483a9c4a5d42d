"""Shared fixtures: tiny SRDiff components (built after `torch.manual_seed(0)`) and the shared data folders."""

from pathlib import Path

import pytest
import torch

from srdiff_diffusers import RRDBEncoder, SRDiffPipeline, SRDiffUNet2DModel

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
DATASETS = SHARED / "datasets"
REFERENCE = SHARED / "reference" / "original_srdiff"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    # The test models are tiny: on 2 shared cores, intra-op thread hand-offs cost far more than the arithmetic
    # (measured here: a 100-step tiny sample ~1 s on one thread, up to a minute on two under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_components(scale: int = 4, seed: int = 0):
    """A U-Net of widths (8, 16, 16, 32) and an RRDB of 8 features x 2 blocks: fast enough for CPU tests."""
    torch.manual_seed(seed)
    encoder = RRDBEncoder(num_features=8, num_blocks=2, upscale_factor=scale)
    unet = SRDiffUNet2DModel(
        block_out_channels=(8, 16, 16, 32), condition_channels=encoder.condition_channels, upscale_factor=scale
    )
    return unet.eval(), encoder.eval()


def tiny_pipeline(scale: int = 4, seed: int = 0) -> SRDiffPipeline:
    unet, encoder = tiny_components(scale, seed)
    pipe = SRDiffPipeline(unet=unet, encoder=encoder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A saved tiny pipeline folder, for the commands' `--model`."""
    folder = tmp_path_factory.mktemp("model")
    tiny_pipeline().save_pretrained(folder)
    return str(folder)


@pytest.fixture
def pipe() -> SRDiffPipeline:
    return tiny_pipeline()


def require_dir(path: Path) -> Path:
    """Skips the calling test, saying why, when a shared data folder is absent."""
    if not path.is_dir():
        pytest.skip(f"{path} is absent (shared data is not in this checkout's parent folder)")
    return path
