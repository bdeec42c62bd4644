"""Fully connected GAN (Goodfellow et al. 2014): MLP generator and discriminator."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .common import norm_1d, numel


class Generator(nn.Module):
    """z -> hidden layers (Linear, norm, LeakyReLU) -> data. ``bounded``: end in tanh (images in [-1, 1])."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: Sequence[int],
        hidden: Sequence[int] = (256, 512, 1024),
        norm: str = "batch",
        bounded: bool = True,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for i, h in enumerate(hidden):
            # No normalisation right after the noise, as in the common MLP GAN recipes.
            layers += [nn.Linear(width, h), norm_1d(norm if i > 0 else "none", h), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        layers.append(nn.Linear(width, numel(self.out_shape)))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class Discriminator(nn.Module):
    """data -> hidden layers (Linear, norm, LeakyReLU) -> one logit per sample.

    ``features(x)`` is the trunk's output (``feature_dim`` values per sample) that ``head`` scores; conditional
    and auxiliary heads (projection, ACGAN, InfoGAN) attach to it."""

    def __init__(self, in_shape: Sequence[int], hidden: Sequence[int] = (512, 256), norm: str = "none"):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = numel(in_shape)
        for i, h in enumerate(hidden):
            layers += [nn.Linear(width, h), norm_1d(norm if i > 0 else "none", h), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = nn.Linear(width, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).view(-1)
