"""Frozen auxiliary networks stay out of the state a run saves and trains, and still move with it."""

from __future__ import annotations

import torch
from torch import nn

from gan_lightning.networks.frozen import Frozen, load_frozen


class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.trained = nn.Linear(3, 3)
        self.features = Frozen(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))


def test_a_frozen_network_is_outside_the_state_but_moves_with_its_holder():
    holder = Holder()
    assert set(holder.state_dict()) == {"trained.weight", "trained.bias"}  # no weights, no BatchNorm buffers
    assert len(list(holder.parameters())) == 2 and not list(holder.buffers())
    holder.to(torch.float64).train()
    inner = holder.features.net
    assert all(p.dtype == torch.float64 for p in inner.parameters())
    assert all(b.dtype == torch.float64 for b in inner.buffers() if b.is_floating_point())
    assert not inner.training and holder.trained.training  # .train() leaves it in eval mode

    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    holder.features(holder.trained(x)).sum().backward()
    assert x.grad is not None and holder.trained.weight.grad is not None  # gradients flow through it...
    assert all(p.grad is None for p in inner.parameters())  # ...not into it


def test_load_frozen_builds_each_file_once(tmp_path):
    calls = []

    def build(path: str) -> nn.Module:
        calls.append(path)
        return nn.Linear(2, 2)

    weights = tmp_path / "w.pt"
    first, second = load_frozen(weights, build), load_frozen(weights, build)
    assert len(calls) == 1 and first.net is second.net
