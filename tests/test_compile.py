"""torch.compile of the noise predictor: the traced one-exponential Mish, inference (with freezing) and training."""

import pytest
import torch
from conftest import tiny_components

from srdiff_diffusers.commands.speed import has_cpp_compiler
from srdiff_diffusers.models.activations import mish

# Without a compiler there is nothing to test (the eager paths are tested elsewhere).
pytestmark = pytest.mark.skipif(not has_cpp_compiler(), reason="torch.compile on the CPU needs a C++ compiler")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _mish_reference(x: torch.Tensor):
    """Mish and its derivative from the definition, in float64."""
    x = x.double()
    softplus = torch.nn.functional.softplus(x)
    tanh = torch.tanh(softplus)
    return x * tanh, tanh + x * torch.sigmoid(x) * (1 - tanh**2)


def test_compiled_mish_and_its_gradient_match_the_definition():
    # Under torch.compile, `mish` is traced as the one-exponential formula (fused by inductor), with autograd.
    x = torch.cat([torch.linspace(-30, 30, 6001), torch.tensor([-1e4, -100.0, 0.0, 19.99, 20.01, 44.5, 1e4])])
    x.requires_grad_(True)
    compiled = torch.compile(mish, fullgraph=True)
    value = compiled(x)
    (gradient,) = torch.autograd.grad(value.sum(), x)
    expected_value, expected_gradient = _mish_reference(x.detach())
    assert torch.isfinite(value).all() and torch.isfinite(gradient).all()
    # As accurate as torch's eager kernels (measured: F.mish 6.7e-7 / its backward 9.6e-7; this 6.7e-7 / 1.1e-7).
    # Autograd's quotient rule on the formula instead of the written-out derivative would be 4.5e-6 off near 20.
    assert (value.double() - expected_value).abs().max().item() <= 1e-6
    assert (gradient.double() - expected_gradient).abs().max().item() <= 1e-6


def test_traced_mish_is_the_one_exponential_form_with_its_own_backward():
    # What dynamo hands to inductor: one exp in the forward, one in the written-out backward, no aten mish.
    graphs = []

    def record(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch.compile(mish, backend=record, fullgraph=True)(torch.randn(8, requires_grad=True))
    code = "\n".join(m.code for g in graphs for m in g.modules() if isinstance(m, torch.fx.GraphModule))
    assert code.count("torch.exp(") == 2 and "mish" not in code
    assert "grad_output" in code  # the backward body is ours, not autograd's derivative of the formula


def test_compiled_unet_with_freezing_matches_eager():
    unet, encoder = tiny_components()
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        projected = unet.project_condition(encoder.encode(torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1))
        eager = unet(sample, 40, projected_condition=projected).sample
        # freezing: the weights become constants of the graph (prepacked for oneDNN), as the README recommends.
        with torch._inductor.config.patch(freezing=True):
            compiled = torch.compile(unet)(sample, 40, projected_condition=projected).sample
    # The bar for identical fp32 outputs: 1e-5 per step.
    assert (compiled - eager).abs().max().item() <= 1e-5


def test_compiled_training_step_gives_the_eager_gradients():
    unet, encoder = tiny_components()
    unet.train()
    gen = torch.Generator().manual_seed(1)
    noisy = torch.randn(2, 3, 32, 32, generator=gen)
    noise = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        condition = encoder.encode(torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1)
    timesteps = torch.tensor([3, 70])

    def gradients(model):
        loss = torch.nn.functional.l1_loss(model(noisy, timesteps, condition).sample, noise)
        return loss, torch.autograd.grad(loss, list(unet.parameters()))

    eager_loss, eager_grads = gradients(unet)
    compiled_loss, compiled_grads = gradients(torch.compile(unet))
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    for name, got, expected in zip([n for n, _ in unet.named_parameters()], compiled_grads, eager_grads):
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_training_under_accelerate_dynamo_backend_matches_eager_and_resumes(tmp_path, monkeypatch):
    # `accelerate launch --dynamo_backend inductor` (here its environment variable) compiles the trained U-Net;
    # checkpoints, resuming and the final save must see the model itself, not the compiled wrapper.
    from accelerate.state import AcceleratorState
    from test_training import write_images

    from srdiff_diffusers import RRDBEncoder, SRDiffPipeline
    from srdiff_diffusers.commands.train import parse_args
    from srdiff_diffusers.training import train as train_stage

    torch.manual_seed(0)
    RRDBEncoder(num_features=8, num_blocks=2).save_pretrained(tmp_path / "encoder")
    data = write_images(tmp_path / "hr", 1)

    def train(backend, output, *extra):
        monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", backend)
        argv = [
            "--stage", "diffusion", "--pretrained_encoder", str(tmp_path / "encoder"), "--train_data_dir", str(data),
            "--output_dir", str(tmp_path / output), "--resolution", "32", "--train_batch_size", "2",
            "--unet_block_out_channels", "8,16,16,32", "--report_to", "none", "--seed", "0",
            "--cache_dir", str(tmp_path / "cache"), "--checkpointing_steps", "2", "--max_train_steps", "4", *extra,
        ]  # fmt: skip
        try:
            return train_stage(parse_args(argv))
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)

    eager = train("NO", "eager")
    compiled = train("INDUCTOR", "compiled")
    for step, loss in eager.losses.items():
        assert compiled.losses[step] == pytest.approx(loss, rel=1e-5, abs=1e-6)
    pipe = SRDiffPipeline.from_pretrained(tmp_path / "compiled")
    reference = SRDiffPipeline.from_pretrained(tmp_path / "eager")
    for (name, got), expected in zip(pipe.unet.state_dict().items(), reference.unet.state_dict().values()):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")

    # resume the compiled run from its checkpoint-2: steps 3 and 4 again, the same losses
    resumed = train("INDUCTOR", "compiled", "--resume_from_checkpoint", str(tmp_path / "compiled" / "checkpoint-2"))
    assert sorted(resumed.losses) == [3, 4]
    for step in (3, 4):
        assert resumed.losses[step] == pytest.approx(compiled.losses[step], rel=1e-5, abs=1e-6)


def test_upscale_cli_compile_matches_eager(tmp_path, monkeypatch):
    import numpy as np
    import PIL.Image
    from conftest import tiny_pipeline

    from srdiff_diffusers.cli import main
    from srdiff_diffusers.commands import upscale

    monkeypatch.setattr(torch._inductor.config, "freezing", False)  # the CLI sets it; restored after the test
    model = tmp_path / "model"
    tiny_pipeline().save_pretrained(model)
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "lr.png")
    seen = []
    apply = upscale.apply_speed_arguments
    monkeypatch.setattr(upscale, "apply_speed_arguments", lambda pipe, args: (apply(pipe, args), seen.append(pipe)))

    def run(out, *extra):
        argv = ["upscale", str(tmp_path / "lr.png"), "-o", str(tmp_path / out), "--model", str(model)]
        assert main([*argv, "--steps", "2", "--seed", "0", "--device", "cpu", *extra]) == 0
        return np.asarray(PIL.Image.open(tmp_path / out / "lr_x4.png")).astype(int)

    eager = run("eager")
    compiled = run("compiled", "--compile")
    assert seen[0].unet._compiled_call_impl is None and seen[1].unet._compiled_call_impl is not None
    assert torch._inductor.config.freezing
    # float32 outputs within 1e-5 of eager: at most a rounding flip of one 8-bit level
    assert np.abs(compiled - eager).max() <= 1
