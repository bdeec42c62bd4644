"""Each loss against its formula, written naively in float64 on probabilities, and the gradient penalty."""

import math

import pytest
import torch
from torch import nn

from gan_lightning.losses import (
    LOSSES,
    Hinge,
    LeastSquares,
    Minimax,
    NonSaturating,
    Wasserstein,
    WassersteinGP,
    gradient_penalty,
)

torch.manual_seed(0)
REAL = torch.randn(64, dtype=torch.float64) * 3
FAKE = torch.randn(64, dtype=torch.float64) * 3


def close(a, b):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                          rtol=1e-5, atol=1e-6)


def test_minimax_matches_goodfellow_value_function():
    d_real, d_fake = torch.sigmoid(REAL), torch.sigmoid(FAKE)
    loss = Minimax()
    # D maximises E log D(x) + E log(1 - D(G(z))): its loss is the negative.
    assert close(loss.discriminator_loss(REAL, FAKE), -(d_real.log().mean() + (1 - d_fake).log().mean()))
    # G minimises E log(1 - D(G(z))) (saturating).
    assert close(loss.generator_loss(FAKE), (1 - d_fake).log().mean())


def test_minimax_known_value_at_zero_logits():
    zeros = torch.zeros(8)
    assert close(Minimax().discriminator_loss(zeros, zeros), 2 * math.log(2))
    assert close(Minimax().generator_loss(zeros), -math.log(2))
    assert close(NonSaturating().generator_loss(zeros), math.log(2))


def test_non_saturating_generator_loss():
    assert close(NonSaturating().generator_loss(FAKE), -torch.sigmoid(FAKE).log().mean())
    assert close(NonSaturating().discriminator_loss(REAL, FAKE), Minimax().discriminator_loss(REAL, FAKE))


def test_saturation_is_the_difference_between_minimax_and_non_saturating():
    # A confident discriminator (very negative logit on fakes): the minimax generator gradient vanishes,
    # the non-saturating one does not.
    fake = torch.full((4,), -10.0, requires_grad=True)
    Minimax().generator_loss(fake).backward()
    g_minimax = fake.grad.abs().max().item()
    fake.grad = None
    NonSaturating().generator_loss(fake).backward()
    g_ns = fake.grad.abs().max().item()
    assert g_minimax < 1e-4 < 0.2 < g_ns


def test_least_squares():
    loss = LeastSquares()
    assert close(loss.discriminator_loss(REAL, FAKE), 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE ** 2).mean())
    assert close(loss.generator_loss(FAKE), 0.5 * ((FAKE - 1) ** 2).mean())
    assert close(loss.discriminator_loss(torch.ones(3), torch.zeros(3)), 0.0)


def test_hinge():
    loss = Hinge()
    assert close(loss.discriminator_loss(REAL, FAKE),
                 torch.clamp(1 - REAL, min=0).mean() + torch.clamp(1 + FAKE, min=0).mean())
    assert close(loss.generator_loss(FAKE), -FAKE.mean())
    assert close(loss.discriminator_loss(torch.tensor([2.0]), torch.tensor([-3.0])), 0.0)


def test_wasserstein_and_clipping():
    loss = Wasserstein(clip_value=0.01)
    assert close(loss.discriminator_loss(REAL, FAKE), FAKE.mean() - REAL.mean())
    assert close(loss.generator_loss(FAKE), -FAKE.mean())
    net = nn.Linear(10, 1)
    nn.init.normal_(net.weight, std=1.0)
    assert net.weight.abs().max() > 0.01
    loss.after_discriminator_step(net)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    assert (net.weight.abs() == 0.01).any()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_stay_finite_on_extreme_logits(name):
    loss = LOSSES[name]()
    big = torch.tensor([-200.0, -50.0, 0.0, 50.0, 200.0], dtype=torch.float16)
    for value in (loss.discriminator_loss(big, big.flip(0)), loss.generator_loss(big)):
        assert value.dtype == torch.float32 and torch.isfinite(value)


class LinearCritic(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_gradient_penalty_of_a_linear_critic_is_exact():
    # D(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 whatever the interpolates.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||w|| = 5
    critic = LinearCritic(w)
    real, fake = torch.randn(16, 4), torch.randn(16, 4)
    assert close(gradient_penalty(critic, real, fake), 16.0)
    assert close(WassersteinGP(gp_weight=10).regularizer(critic, real, fake), 160.0)


def test_gradient_penalty_is_differentiable_and_pulls_the_norm_to_one():
    critic = LinearCritic(torch.tensor([3.0, 4.0]))
    gp = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||  = 2 * 4 * w / 5
    assert torch.allclose(critic.w.grad, 1.6 * torch.tensor([3.0, 4.0]))


def test_gradient_penalty_with_grad_scale_equals_unscaled():
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1))
    real, fake = torch.randn(16, 6), torch.randn(16, 6)
    torch.manual_seed(2)
    plain = gradient_penalty(critic, real, fake)
    torch.manual_seed(2)
    scaled = gradient_penalty(critic, real, fake, grad_scale=65536.0)
    assert torch.allclose(plain, scaled, rtol=1e-5)
    assert plain > 0
