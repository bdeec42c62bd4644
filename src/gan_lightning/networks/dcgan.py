"""DCGAN (Radford et al. 2015) for 1- or 3-channel images of 28, 32, 64 px (any size base * 2^n, base >= 4).

Generator: a transposed convolution from z to a base x base map, then stride-2 transposed convolutions that double
the size and halve the channels, BatchNorm + ReLU between, tanh at the end. Discriminator: the mirror image with
stride-2 convolutions, LeakyReLU(0.2), no normalisation on the first layer, a base x base convolution to one logit.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .common import norm_2d


def _image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"DCGAN needs square images (C, H, W); the data has shape {tuple(shape)}: "
                         "use model=fcgan for other data (model/backbone=fcgan with cgan, acgan, infogan)")
    return tuple(shape)


def _plan(size: int) -> tuple[int, int]:
    """(base, doublings) with size == base * 2**doublings, base >= 4 as small as possible: 28 -> (7, 2),
    32 -> (4, 3), 64 -> (4, 4)."""
    doublings = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        doublings += 1
    if doublings == 0:
        raise ValueError(f"DCGAN needs an image size of base * 2^n with n >= 1 (28, 32, 64, ...); got {size}")
    return size, doublings


def init_weights(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, out_shape: Sequence[int], ngf: int = 64, norm: str = "batch", bounded: bool = True):
        super().__init__()
        channels, height, _ = _image_shape(out_shape)
        self.latent_dim = latent_dim
        base, doublings = _plan(height)
        widths = [ngf * 2 ** i for i in reversed(range(doublings))]  # e.g. 64px: 8ngf, 4ngf, 2ngf, ngf
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], base, 1, 0, bias=False),
            norm_2d(norm, widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), norm_2d(norm, c_out), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """``features(x)``: the flattened base x base map of the last convolution (``feature_dim`` values); ``head``:
    a linear layer to one logit (the same as the paper's base x base convolution). Conditional and auxiliary heads
    attach to the features. ``spectral_norm``: spectral normalisation of every layer (SNGAN; the projection
    discriminator's setting)."""

    def __init__(self, in_shape: Sequence[int], ndf: int = 64, norm: str = "batch", spectral_norm: bool = False):
        super().__init__()
        channels, height, _ = _image_shape(in_shape)
        base, doublings = _plan(height)
        widths = [ndf * 2 ** i for i in range(doublings)]  # e.g. 64px: ndf, 2ndf, 4ndf, 8ndf
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), norm_2d(norm, c_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Flatten())
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = widths[-1] * base * base
        self.head = nn.Linear(self.feature_dim, 1)
        init_weights(self)
        if spectral_norm:  # Miyato et al. 2018: every layer 1-Lipschitz (with norm=none, as in SNGAN)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(m)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).view(-1)
