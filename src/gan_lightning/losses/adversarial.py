"""GAN objectives: how each player is scored, computed on raw discriminator outputs (logits).

A loss is an ``nn.Module``, so state a loss keeps (a running mean, an image pool) lives in buffers that move to
the device and travel in checkpoints. It owns three things, in the manner of stylegan2-ada-pytorch's loss classes:

- ``discriminator_loss(real, fake)`` and ``generator_loss(fake)`` on the discriminator's raw outputs;
- ``regularizer(discriminator, real, fake, grad_scale)``: an extra discriminator term (the gradient penalty);
- ``after_discriminator_step(discriminator)``: a constraint applied after each discriminator update (clipping).

Probabilities never appear: ``log sigmoid`` and ``softplus`` of logits are stable in any precision, where
``log(sigmoid(x))`` under autocast is not. Losses are computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .penalties import gradient_penalty


def _f32(x: Tensor) -> Tensor:
    return x.float()


class GANLoss(nn.Module):
    """Base class: no regulariser, no constraint. ``score`` is what is logged as D(x) / D(G(z))."""

    name = "gan"

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def regularizer(
        self, discriminator: nn.Module, real: Tensor, fake: Tensor, grad_scale: float | None = None, **kwargs
    ) -> Tensor | None:
        return None

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        return None

    def score(self, logits: Tensor) -> Tensor:
        """The discriminator's output as the loss reads it: a probability for the sigmoid losses."""
        return torch.sigmoid(_f32(logits))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_") and k != "training")


class Minimax(GANLoss):
    """The original objective (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(G(z))),
    G minimises the saturating log(1 - D(G(z)))."""

    name = "minimax"

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        # -log sigmoid(r) = softplus(-r);  -log(1 - sigmoid(f)) = softplus(f)
        return F.softplus(-_f32(real)).mean() + F.softplus(_f32(fake)).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f)
        return -F.softplus(_f32(fake)).mean()


class NonSaturating(Minimax):
    """Minimax discriminator; the generator minimises -log D(G(z)) (Goodfellow et al. 2014, sec. 3)."""

    name = "non_saturating"

    def generator_loss(self, fake: Tensor) -> Tensor:
        return F.softplus(-_f32(fake)).mean()


class LeastSquares(GANLoss):
    """LSGAN (Mao et al. 2017) with the 0-1 coding: D regresses real to 1 and fake to 0; G pushes fake to 1.
    Both losses carry the paper's factor 1/2."""

    name = "lsgan"

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * ((_f32(real) - 1).pow(2).mean() + _f32(fake).pow(2).mean())

    def generator_loss(self, fake: Tensor) -> Tensor:
        return 0.5 * (_f32(fake) - 1).pow(2).mean()

    def score(self, logits: Tensor) -> Tensor:
        return _f32(logits)


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - D(x)) + relu(1 + D(G(z))),
    G minimises -D(G(z))."""

    name = "hinge"

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1 - _f32(real)).mean() + F.relu(1 + _f32(fake)).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -_f32(fake).mean()

    def score(self, logits: Tensor) -> Tensor:
        return _f32(logits)


class Wasserstein(GANLoss):
    """WGAN (Arjovsky et al. 2017): the critic maximises D(x) - D(G(z)) and is kept Lipschitz by clipping its
    weights to [-clip, clip] after every update."""

    name = "wgan"

    def __init__(self, clip_value: float = 0.01):
        super().__init__()
        if clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        self.clip_value = clip_value

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return _f32(fake).mean() - _f32(real).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -_f32(fake).mean()

    def score(self, logits: Tensor) -> Tensor:
        return _f32(logits)

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        params = list(discriminator.parameters())
        torch._foreach_clamp_min_(params, -self.clip_value)
        torch._foreach_clamp_max_(params, self.clip_value)


class WassersteinGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): no clipping; penalty weight * (||grad_x D(x_hat)|| - 1)^2 on random
    interpolates x_hat between real and fake samples."""

    name = "wgan_gp"

    def __init__(self, gp_weight: float = 10.0):
        GANLoss.__init__(self)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight = gp_weight

    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        return None

    def regularizer(
        self, discriminator: nn.Module, real: Tensor, fake: Tensor, grad_scale: float | None = None, **kwargs
    ) -> Tensor:
        return self.gp_weight * gradient_penalty(discriminator, real, fake, grad_scale=grad_scale, **kwargs)


LOSSES = {cls.name: cls for cls in (Minimax, NonSaturating, LeastSquares, Hinge, Wasserstein, WassersteinGP)}
