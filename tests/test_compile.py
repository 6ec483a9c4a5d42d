"""torch.compile of the noise predictor: the traced one-exponential Mish, inference (with freezing) and training."""

import shutil

import pytest
import torch
from conftest import tiny_components

from srdiff_diffusers.models.activations import mish

# Inductor writes and builds C++ on the CPU; without a compiler there is nothing to test (the eager paths are
# tested elsewhere).
pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on the CPU needs a C++ compiler"
)


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
