"""The unconditional GAN: FCGAN and DCGAN (they differ only in their networks)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..core.family import Batch, GANFamily, StepContext, StepResult
from ..data.spec import DataSpec
from ..losses import GANLoss


class GAN(GANFamily):
    """The unconditional GAN: G(z) against D(x), z ~ N(0, I).

    ``generator`` / ``discriminator`` are factories (Hydra ``_partial_``) called with the data's shape.
    Each discriminator step draws fresh noise; the generator step draws its own, as in Goodfellow et al.'s
    Algorithm 1. Takes ``augment=`` on images: D scores every real and fake through ``d``.
    """

    augmentable = True

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 100,
    ):
        super().__init__(loss, spec)
        self.latent_dim = latent_dim
        self.generator = generator(latent_dim=latent_dim, out_shape=self.data_shape, bounded=spec.bounded)
        self.discriminator = discriminator(in_shape=self.data_shape)

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        with torch.no_grad():
            fake = self.generator(self.noise(real.shape[0], real.device))
        return StepResult(*self.adversarial_d_step(real, fake, ctx))

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        fake = self.generator(self.noise(real.shape[0], real.device))
        loss = self.loss.generator_loss(self.d(fake))
        return StepResult(loss, {"loss_g": loss})

    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None) -> dict[str, Tensor]:
        return {"z": self.noise(n, generator=generator).to(device)}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs["z"])
