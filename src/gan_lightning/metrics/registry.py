"""Scores chosen by what a family can do, not by its type.

Each scoring function registers under a capability of ``core.family.GANFamily`` (``class_conditional``,
``has_codes``, ``paired``, ...); the metrics callback and ``evaluate.py`` run every function whose capability the
family has. Adding a score for a new kind of family is one decorated function: no branch on types anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data.convert import to_uint8

ImageFn = Callable[[Tensor], Tensor]  # float images in [-1, 1] (or points) -> logits / features


@dataclass
class ScoreContext:
    """What a scoring function may use: the module (``generate``, ``family``), the data module, a classifier of
    the data's classes (``None`` where there is none), a fixed held-out batch (``source``, for families that
    generate from data), the evaluator's feature spaces and the sampling protocol."""

    module: Any
    datamodule: Any
    classify: ImageFn | None
    n_samples: int
    seed: int = 0
    batch_size: int = 500
    use_ema: bool = True
    source: dict[str, Tensor] | None = None
    spaces: Sequence = ()  # the evaluator's feature spaces (FeatureSpace), for scores that need features

    @property
    def family(self):
        return self.module.family


SCORES: list[tuple[str, Callable[[ScoreContext], dict[str, float]]]] = []


def register(capability: str) -> Callable:
    """Decorator: run ``fn(ctx) -> {name: value}`` for every family whose ``capability`` attribute is true."""

    def add(fn: Callable[[ScoreContext], dict[str, float]]) -> Callable:
        SCORES.append((capability, fn))
        return fn

    return add


def family_scores(ctx: ScoreContext) -> dict[str, float]:
    """Every registered score the family's capabilities call for, merged."""
    from . import codes, conditional, inpaint, paired, path_length, translation  # noqa: F401 - registers scores

    values: dict[str, float] = {}
    for capability, fn in SCORES:
        if getattr(ctx.family, capability, False):
            values.update(fn(ctx))
    return values


def classifier(datamodule, spaces: Sequence) -> ImageFn | None:
    """A classifier of the data's classes: the feature space whose logits are the dataset's classes (the domain
    classifier) or, on a labelled 2-D mixture, the nearest mode; ``None`` where there is none."""
    space = next((s for s in spaces if s.classes), None)
    if space is not None:
        return lambda images: space.extract(to_uint8(images))[1]
    modes = getattr(datamodule, "modes", None)
    if isinstance(modes, Tensor) and getattr(datamodule, "num_classes", None) == len(modes):
        return lambda points: -torch.cdist(points.float(), modes.to(points.device).float())
    return None


# --- generation helpers the scores share ----------------------------------------------------------------------
def device_of(module) -> torch.device:
    return next(iter(module.parameters()), torch.zeros(())).device


@torch.no_grad()
def generate_batches(module, n: int, inputs_fn: Callable[[int, torch.Generator], dict], seed: int,
                     batch_size: int, use_ema: bool) -> Iterator[Tensor]:
    """``n`` samples of ``module`` in batches; ``inputs_fn(size, generator)`` makes each batch's inputs."""
    device, gen = device_of(module), torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        inputs = inputs_fn(min(batch_size, n - start), gen)
        yield module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema)


@torch.no_grad()
def apply(fn: ImageFn, x: Tensor, batch_size: int, device) -> Tensor:
    return torch.cat([fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
