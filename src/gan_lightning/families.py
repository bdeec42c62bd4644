"""GAN families: the networks of a model and how each player's loss is computed from a batch.

A family is the seam between the training schedule (``GANModule``, which knows nothing model-specific) and a
model. It declares:

- ``networks_of(player)``: the modules each player's optimizer updates (players are ``"generator"`` and
  ``"discriminator"``; a player may own several networks: CycleGAN's two generators, InfoGAN's Q head);
- ``discriminator_step(batch, ctx)`` and ``generator_step(batch, ctx)``: one player's loss on one batch, with the
  values worth logging;
- ``after_discriminator_step()``: a constraint after each discriminator update (weight clipping);
- ``generator``: the module whose weights the EMA tracks, and ``sample_inputs`` / ``generate``: how to draw
  samples from it (a fixed noise batch for grids, labels for conditional models);
- ``grid_inputs``: the inputs of the sample grids and their layout (one row per class, latent traversals).

New families (conditional, InfoGAN, CycleGAN, Pix2Pix, SRGAN, StyleGAN) subclass ``GANFamily``; the schedule does
not change. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .losses import GANLoss

Batch = dict[str, Tensor]


@dataclass
class StepContext:
    """What the schedule tells a family about the step being taken."""

    iteration: int  # generator iterations completed before this step
    scaler: Any = None  # the GradScaler of 16-mixed precision, or None

    @property
    def grad_scale(self) -> float | None:
        return None if self.scaler is None or not self.scaler.is_enabled() else float(self.scaler.get_scale())


@dataclass
class StepResult:
    """A player's loss for one step and the scalars to log with it (detached by the module)."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


class GridInputs(NamedTuple):
    """What a sample grid draws: the generator's inputs, images per row, and a caption (or None) saying what the
    rows and columns are."""

    inputs: dict[str, Tensor]
    nrow: int
    caption: str | None = None


class GANFamily(nn.Module):
    """Base class of the GAN families. Subclasses set ``self.generator`` and ``self.discriminator``."""

    PLAYERS = ("generator", "discriminator")
    conditional = False  # True: generate() follows class labels, and sample_inputs takes ``labels=``

    def __init__(self, loss: GANLoss, data_shape: Sequence[int], num_classes: int | None = None):
        super().__init__()
        self.loss = loss
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes

    # --- what is trained -------------------------------------------------------------------------------------
    def networks_of(self, player: str) -> list[nn.Module]:
        return [{"generator": self.generator, "discriminator": self.discriminator}[player]]

    def parameters_of(self, player: str) -> list[nn.Parameter]:
        return [p for net in self.networks_of(player) for p in net.parameters()]

    # --- how each player is scored ---------------------------------------------------------------------------
    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def after_discriminator_step(self) -> None:
        self.loss.after_discriminator_step(self.discriminator)

    # --- sampling --------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None) -> dict[str, Tensor]:
        raise NotImplementedError

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        raise NotImplementedError

    def grid_inputs(self, n: int, nrow: int = 8, generator: torch.Generator | None = None,
                    class_names: Sequence[str] | None = None) -> GridInputs:
        """The fixed inputs of the sample grids and their layout. By default ``n`` draws of ``sample_inputs``,
        ``nrow`` a row, no caption; conditional families lay out one row per class (named from ``class_names``),
        InfoGAN its latent traversals."""
        return GridInputs(self.sample_inputs(n, generator=generator), nrow)


class GAN(GANFamily):
    """The unconditional GAN: G(z) against D(x), z ~ N(0, I). FCGAN and DCGAN differ only in their networks.

    ``generator`` / ``discriminator`` are factories (Hydra ``_partial_``) called with the data's shape.
    Each discriminator step draws fresh noise; the generator step draws its own, as in Goodfellow et al.'s
    Algorithm 1.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        data_shape: Sequence[int],
        latent_dim: int = 100,
        bounded: bool = True,
        num_classes: int | None = None,
    ):
        super().__init__(loss, data_shape, num_classes)
        self.latent_dim = latent_dim
        self.generator = generator(latent_dim=latent_dim, out_shape=self.data_shape, bounded=bounded)
        self.discriminator = discriminator(in_shape=self.data_shape)

    def noise(self, n: int, device=None, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch["x"]
        with torch.no_grad():
            fake = self.generator(self.noise(real.shape[0], real.device))
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        loss = self.loss.discriminator_loss(d_real, d_fake)
        logs = {"loss_d": loss, "D(x)": self.loss.score(d_real).mean(), "D(G(z))": self.loss.score(d_fake).mean()}
        reg = self.loss.regularizer(self.discriminator, real, fake, grad_scale=ctx.grad_scale)
        if reg is not None:
            logs["reg_d"] = reg
            loss = loss + reg
        return StepResult(loss, logs)

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = self.generator(self.noise(batch["x"].shape[0], batch["x"].device))
        loss = self.loss.generator_loss(self.discriminator(fake))
        return StepResult(loss, {"loss_g": loss})

    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None) -> dict[str, Tensor]:
        return {"z": self.noise(n, generator=generator).to(device)}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs["z"])
