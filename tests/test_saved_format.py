"""A pipeline folder saved by release 0.1 (tests/fixtures/saved_v0_1, made with `tiny_pipeline().save_pretrained`)
keeps loading, and samples what it sampled then (a 2-step DDIM sample at seed 0, saved beside it)."""

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from srdiff_diffusers import SRDiffPipeline

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_saved_v0_1_folder_names_the_same_module_paths():
    index = json.loads((FIXTURES / "saved_v0_1" / "model_index.json").read_text())
    assert index["_class_name"] == "SRDiffPipeline"
    assert index["unet"] == ["srdiff_diffusers.models.unet_srdiff", "SRDiffUNet2DModel"]
    assert index["encoder"] == ["srdiff_diffusers.models.rrdb_encoder", "RRDBEncoder"]


def test_saved_v0_1_folder_loads_and_samples_identically():
    pipe = SRDiffPipeline.from_pretrained(FIXTURES / "saved_v0_1")
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    lr = torch.from_numpy(np.load(FIXTURES / "saved_v0_1_input.npy"))
    out = pipe(lr, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    expected = np.load(FIXTURES / "saved_v0_1_ddim2_seed0.npy")
    assert out.shape == expected.shape == (1, 32, 32, 3)
    # Same arithmetic in the same order: only a change of the algorithm moves it (1e-6 leaves room for BLAS order).
    np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)
