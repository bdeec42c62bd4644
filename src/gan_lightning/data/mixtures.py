"""2-D Gaussian mixtures: the classic test of mode collapse (``metrics.mixtures`` scores samples against ``modes`` and ``std``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import UserError
from .base import TensorDataModule
from .loader import data_device


_MIXTURES = {"ring": 0.02, "grid": 0.05}  # kind -> default std


def _mixture_modes(kind: str) -> Tensor:
    if kind == "ring":  # Metz et al. 2016: 8 modes on a circle of radius 2
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (2 * torch.stack([angles.cos(), angles.sin()], 1)).float()
    values = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])  # VEEGAN / PacGAN: 5 x 5 grid
    return torch.cartesian_prod(values, values)


class GaussianMixtureDataModule(TensorDataModule):
    """2-D points from 8 Gaussians on a ring or 25 on a grid; labels are mode indices."""

    bounded = False

    def __init__(
        self,
        kind: str = "ring",
        n_samples: int = 100_000,
        std: float | None = None,
        batch_size: int = 512,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        if kind not in _MIXTURES:
            raise UserError(f"unknown mixture kind {kind!r}: data.kind must be one of {', '.join(_MIXTURES)}")
        if n_samples < 1:
            raise UserError(f"n_samples must be >= 1, got {n_samples}: fix data.n_samples")
        if std is not None and std <= 0:
            raise UserError(f"std must be > 0, got {std}: fix data.std or set it to null")
        super().__init__(batch_size, seed)
        self.kind, self.n_samples = kind, n_samples
        data_device(device, torch.device("cpu"), 0)
        self.device = device
        self.std = float(std if std is not None else _MIXTURES[kind])
        self.modes = _mixture_modes(kind)
        self.shape = (2,)
        self.num_classes = len(self.modes)
        self.class_names = [f"mode {i}" for i in range(self.num_classes)]

    def _setup(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        y = torch.randint(len(self.modes), (self.n_samples,), generator=gen)
        self._tensors = {"x": self.modes[y] + self.std * torch.randn(self.n_samples, 2, generator=gen), "y": y}
