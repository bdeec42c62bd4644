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
    generate from data), the evaluator's feature spaces, the sampling protocol and the classifier panel
    (``panel``: ``(name, classify)`` of every classifier of the data's classes, the primary ``classify`` first;
    empty: ``classify`` alone)."""

    module: Any
    datamodule: Any
    classify: ImageFn | None
    n_samples: int
    seed: int = 0
    batch_size: int = 500
    use_ema: bool = True
    source: dict[str, Tensor] | None = None
    spaces: Sequence = ()  # the evaluator's feature spaces (FeatureSpace), for scores that need features
    panel: Sequence[tuple[str, ImageFn]] = ()

    @property
    def family(self):
        return self.module.family

    def classifiers(self) -> list[tuple[str, ImageFn]]:
        """The panel, or ``classify`` alone where there is no panel (a stand-in classifier); empty without one."""
        if self.panel:
            return list(self.panel)
        return [("classify", self.classify)] if self.classify is not None else []


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
        return _classify_with(space)
    modes = getattr(datamodule, "modes", None)
    if isinstance(modes, Tensor) and getattr(datamodule, "num_classes", None) == len(modes):
        return lambda points: -torch.cdist(points.float(), modes.to(points.device).float())
    return None


def classifier_panel(spaces: Sequence) -> list[tuple[str, ImageFn]]:
    """``(space name, classify)`` of every feature space whose logits are the data's classes: the domain classifier
    first (the same as ``classifier``), then its panel members (``domain_b``, ...)."""
    return [(s.name, _classify_with(s)) for s in spaces if s.classes]


def _classify_with(space) -> ImageFn:
    return lambda images: space.extract(to_uint8(images))[1]


# --- the classifier panel ------------------------------------------------------------------------------------
@torch.no_grad()
def panel_predictions(panel: Sequence[tuple[str, ImageFn]], images: Tensor, batch_size: int, device) -> Tensor:
    """The class each classifier of ``panel`` predicts for each of ``images``: int64 [classifiers, N]."""
    return torch.stack([apply(fn, images, batch_size, device).argmax(1) for _, fn in panel])


def panel_scores(name: str, members: Sequence[str], predicted: Tensor, expected: Tensor | int | None = None,
                 score: Callable[[Tensor], float] | None = None, agreement: bool = True,
                 values: Sequence[float] | None = None) -> dict[str, float]:
    """One score by every classifier of a panel, from their predictions on the same images (``predicted``, [M, N],
    the primary's row first; ``members``: their names). Each row's value is ``score(row)``, by default the share
    of images predicted as ``expected`` (one class per image, or one for all); ``values``: the rows' values where
    the caller has them already.

    Returns ``{name: the primary's value}`` and, where there are members beside it, ``name_<member>`` for each,
    ``name_panel_mean`` and ``name_panel_min`` over all of them and (``agreement``) ``name_panel_agree``: the share
    of images on which every classifier predicts the same class. A score that only some of the classifiers give,
    or on images they disagree about, rests on images unlike their training data."""
    if score is None:
        def score(row: Tensor) -> float:
            return float((row == torch.as_tensor(expected)).float().mean())

    values = [score(row) for row in predicted] if values is None else list(values)
    out = {name: values[0]}
    if len(values) > 1:
        out.update({f"{name}_{member}": value for member, value in zip(members[1:], values[1:])})
        out[f"{name}_panel_mean"] = sum(values) / len(values)
        out[f"{name}_panel_min"] = min(values)
        if agreement:
            out[f"{name}_panel_agree"] = float((predicted == predicted[0]).all(0).float().mean())
    return out


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
