"""Pieces shared by the networks."""

from __future__ import annotations

import math

from torch import nn

NORMS = ("batch", "instance", "layer", "none")


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    return norm


def norm_2d(norm: str, channels: int) -> nn.Module:
    """A normalisation layer for feature maps. ``layer`` normalises over (C, H, W) per sample (GroupNorm with
    one group), the batch-independent choice the WGAN-GP paper recommends for critics."""
    return {
        "batch": lambda: nn.BatchNorm2d(channels),
        "instance": lambda: nn.InstanceNorm2d(channels, affine=True),
        "layer": lambda: nn.GroupNorm(1, channels),
        "none": nn.Identity,
    }[check_norm(norm)]()


def norm_1d(norm: str, features: int) -> nn.Module:
    return {
        "batch": lambda: nn.BatchNorm1d(features),
        "instance": lambda: nn.LayerNorm(features),  # no spatial extent: the per-sample norm is LayerNorm
        "layer": lambda: nn.LayerNorm(features),
        "none": nn.Identity,
    }[check_norm(norm)]()


def numel(shape) -> int:
    return math.prod(shape)
