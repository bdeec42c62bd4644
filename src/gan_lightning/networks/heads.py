"""Conditional pieces that wrap the plain networks (``fc``, ``dcgan``): label inputs and extra heads.

They take any backbone built by a family's factories: a generator ``G(z)`` with an input of ``latent_dim`` values,
a discriminator with ``features(x)`` (``feature_dim`` values per sample) and a linear ``head`` to one logit.

- ``ConditionalGenerator``: ``G(z, y) = backbone([z, embed(y)])``, a learned label embedding beside the noise.
- ``ProjectionDiscriminator``: ``D(x, y) = head(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018), with
  ``phi`` the backbone's features.
- ``ConcatDiscriminator``: the label enters with the input, as a learned extra image plane (images) or a learned
  vector beside the data (flat data), as in the conditional GAN of Mirza & Osindero (2014).
- ``AuxiliaryClassifierDiscriminator``: the backbone plus a class head on its features (ACGAN, Odena et al. 2017).
- ``QHead``: InfoGAN's recognition network on the discriminator's features (Chen et al. 2016): logits of the
  categorical code and the means of the continuous codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .common import numel

CONDITIONING = ("projection", "concat")


class ClassBatchNorm(nn.Module):
    """Conditional batch normalisation (de Vries et al. 2017; the generators of Miyato & Koyama 2018): a
    BatchNorm's output scaled and shifted per class, ``bn(x) * (1 + gamma[y]) + beta[y]``, with ``gamma`` and
    ``beta`` starting at zero (the plain BatchNorm). ``y`` is set by the ``ConditionalGenerator`` that owns it."""

    def __init__(self, bn: nn.Module, num_classes: int):
        super().__init__()
        self.bn = bn
        self.gamma = nn.Embedding(num_classes, bn.num_features)
        self.beta = nn.Embedding(num_classes, bn.num_features)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)
        self.y: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.y is None:
            raise RuntimeError("ClassBatchNorm needs its labels: call it through ConditionalGenerator")
        shape = (len(x), -1) + (1,) * (x.dim() - 2)
        return self.bn(x) * (1 + self.gamma(self.y).view(shape)) + self.beta(self.y).view(shape)


class ConditionalGenerator(nn.Module):
    """``backbone([z, embed(y)])``: the backbone is built for ``latent_dim + embed_dim`` inputs. With
    ``class_norm``, each of the backbone's BatchNorm layers also becomes a ``ClassBatchNorm`` (the label then
    reaches every layer, not just the input)."""

    def __init__(self, backbone: nn.Module, num_classes: int, embed_dim: int, class_norm: bool = False):
        super().__init__()
        self.backbone = backbone
        self.embed = nn.Embedding(num_classes, embed_dim)  # N(0, 1) init: the scale of z
        if class_norm:
            _replace_batch_norms(backbone, num_classes)
        # (found once, not on every forward; a deepcopy, the EMA's, maps them to its own copies)
        self._class_norms = tuple(m for m in backbone.modules() if isinstance(m, ClassBatchNorm))

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        if not self._class_norms:
            return self.backbone(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))
        for m in self._class_norms:
            m.y = y
        try:
            return self.backbone(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))
        finally:
            for m in self._class_norms:
                m.y = None


def _replace_batch_norms(module: nn.Module, num_classes: int) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, ClassBatchNorm(child, num_classes))
        else:
            _replace_batch_norms(child, num_classes)


class ProjectionDiscriminator(nn.Module):
    """The projection discriminator: the backbone's unconditional logit plus the inner product of a class
    embedding with the backbone's features. ``y=None`` gives the unconditional term alone."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        self.embed = nn.Embedding(num_classes, self.feature_dim)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)  # as DCGAN's linear layers: small next to the features

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.backbone.features(x)
        out = self.backbone.head(h).view(-1)
        if y is None:
            return out
        return out + (self.embed(y) * h).sum(dim=1)


class ConcatDiscriminator(nn.Module):
    """The label concatenated to the input: for images (C, H, W) a learned H x W plane per class as an extra
    channel, for flat data (D,) a learned ``embed_dim`` vector beside the data. The backbone is built for the
    widened input. ``y=None`` feeds a zero plane (vector): a score with no label, for inspection only."""

    def __init__(self, factory: Callable[..., nn.Module], in_shape: Sequence[int], num_classes: int,
                 embed_dim: int = 32):
        super().__init__()
        self.in_shape = tuple(in_shape)
        if len(self.in_shape) == 3:
            channels, height, width = self.in_shape
            self.embed = nn.Embedding(num_classes, height * width)
            self.backbone = factory(in_shape=(channels + 1, height, width))
        else:
            self.embed = nn.Embedding(num_classes, embed_dim)
            self.backbone = factory(in_shape=(numel(self.in_shape) + embed_dim,))
        self.feature_dim = self.backbone.feature_dim

    def _label_input(self, x: Tensor, y: Tensor | None) -> Tensor:
        if y is None:
            return x.new_zeros(x.shape[0], self.embed.embedding_dim)
        return self.embed(y).to(x.dtype)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        e = self._label_input(x, y)
        if len(self.in_shape) == 3:
            x = torch.cat([x, e.view(x.shape[0], 1, *self.in_shape[1:])], dim=1)
        else:
            x = torch.cat([x.flatten(1), e], dim=1)
        return self.backbone(x)


def conditional_discriminator(conditioning: str, factory: Callable[..., nn.Module], in_shape: Sequence[int],
                              num_classes: int, embed_dim: int = 32) -> nn.Module:
    """The discriminator for ``conditioning`` (``projection`` or ``concat``) around ``factory``'s backbone."""
    if conditioning == "projection":
        return ProjectionDiscriminator(factory(in_shape=tuple(in_shape)), num_classes)
    if conditioning == "concat":
        return ConcatDiscriminator(factory, in_shape, num_classes, embed_dim)
    raise ValueError(f"conditioning must be one of {', '.join(CONDITIONING)}; got {conditioning!r}")


class AuxiliaryClassifierDiscriminator(nn.Module):
    """ACGAN's discriminator: ``forward(x)`` is the backbone's real/fake logit (what a gradient penalty sees);
    ``scores(x)`` returns it with the class logits of a linear head on the same features."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.backbone.features(x)
        return self.backbone.head(h).view(-1), self.classifier(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)


class QHead(nn.Module):
    """InfoGAN's Q on the discriminator's features: Linear - LeakyReLU(0.2) - Linear to ``categorical_dim``
    logits and ``continuous_dim`` means (the continuous posterior is a unit-variance Gaussian)."""

    def __init__(self, feature_dim: int, categorical_dim: int, continuous_dim: int, hidden: int = 128):
        super().__init__()
        self.categorical_dim, self.continuous_dim = categorical_dim, continuous_dim
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, categorical_dim + continuous_dim),
        )

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(features)
        return out[:, : self.categorical_dim], out[:, self.categorical_dim :]
