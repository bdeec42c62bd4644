"""Metrics for latent-code families (InfoGAN): how well the categorical code matches the data's classes.

- ``best_assignment_accuracy``: the accuracy of predicted groups (codes) against classes under the best one-to-one
  code-to-class assignment (the Hungarian algorithm, scipy's ``linear_sum_assignment``);
- ``infogan_code_accuracy``: that accuracy for Q's categorical code inferred from real labelled images (the
  paper's "c1 as a classifier" test);
- ``infogan_generated_code_accuracy``: that accuracy for samples generated with each code value, classified
  (with a classifier panel, by each member too: ``generated_code_accuracy_panel_mean``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..data.convert import to_float
from .registry import ImageFn, ScoreContext, apply, device_of, generate_batches, panel_scores, register


def best_assignment_accuracy(pred: Tensor, target: Tensor, num_pred: int | None = None,
                             num_target: int | None = None) -> tuple[float, dict[int, int]]:
    """The accuracy of ``pred`` (group indices, e.g. InfoGAN codes) against ``target`` (classes) under the
    one-to-one group-to-class assignment that maximises it, and that assignment. With more groups than classes
    the unassigned groups count as wrong (and the other way round)."""
    pred, target = pred.long().flatten().cpu(), target.long().flatten().cpu()
    if len(pred) != len(target) or len(pred) == 0:
        raise ValueError(f"need as many predictions as targets (and some); got {len(pred)} and {len(target)}")
    p = num_pred or int(pred.max()) + 1
    t = num_target or int(target.max()) + 1
    confusion = torch.bincount(pred * t + target, minlength=p * t).view(p, t).tolist()
    groups, classes = linear_sum_assignment(confusion, maximize=True)
    mapping = {int(g): int(c) for g, c in zip(groups, classes)}
    correct = sum(confusion[g][c] for g, c in mapping.items())
    return correct / len(pred), mapping


@torch.no_grad()
def infogan_code_accuracy(family, images: Tensor, labels: Tensor, batch_size: int = 500) -> dict:
    """Q's categorical code for real images (argmax, discriminator and Q in eval mode) against their labels,
    under the best code-to-class assignment. ``images``: uint8 or float in [-1, 1]."""
    x = to_float(images)
    nets = [family.discriminator, family.q_head]
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        device = device_of(family.discriminator)
        codes = apply(lambda b: family.infer_codes(b)[0].argmax(1, keepdim=True), x, batch_size, device)
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)
    accuracy, mapping = best_assignment_accuracy(codes.long(), labels, family.categorical_dim,
                                                 int(labels.max()) + 1)
    return {"code_accuracy": accuracy, "code_to_class": mapping}


def infogan_generated_code_accuracy(module, classify: ImageFn, n_per_code: int = 1000, seed: int = 0,
                                    batch_size: int = 500, use_ema: bool = True,
                                    num_classes: int | None = None) -> dict:
    """Samples generated with each value of the categorical code (the rest of the inputs from the prior),
    classified by ``classify``: the accuracy of code against predicted class under the best assignment."""
    codes, predicted, num_classes = code_predictions(module, [classify], n_per_code, seed, batch_size, use_ema,
                                                     num_classes)
    accuracy, mapping = best_assignment_accuracy(codes, predicted[0], module.family.categorical_dim, num_classes)
    return {"generated_code_accuracy": accuracy, "generated_code_to_class": mapping}


def code_predictions(module, classifiers: Sequence[ImageFn], n_per_code: int = 1000, seed: int = 0,
                     batch_size: int = 500, use_ema: bool = True,
                     num_classes: int | None = None) -> tuple[Tensor, Tensor, int]:
    """``n_per_code`` samples generated with each value of the categorical code and the class each of
    ``classifiers`` predicts for them: (codes [N], int64 [classifiers, N], number of classes)."""
    family = module.family
    codes, predicted = [], []
    for c in range(family.categorical_dim):
        for samples in generate_batches(module, n_per_code,
                                        lambda m, g, c=c: family.sample_inputs(m, generator=g, categorical=c),
                                        seed, batch_size, use_ema):
            logits = [classify(samples) for classify in classifiers]
            predicted.append(torch.stack([lg.argmax(1).cpu() for lg in logits]))
            codes.append(torch.full((len(samples),), c))
            num_classes = num_classes or logits[0].shape[1]
    return torch.cat(codes), torch.cat(predicted, 1), num_classes


@register("has_codes")
def code_scores(ctx: ScoreContext) -> dict[str, float]:
    """During training: ``generated_code_accuracy`` from about ``n_samples`` samples; with a classifier panel,
    also by each member (each under its own best assignment) and the panel's mean, minimum and agreement
    (``registry.panel_scores``)."""
    panel = ctx.classifiers()
    if not panel:
        return {}
    family = ctx.family
    codes, predicted, num_classes = code_predictions(
        ctx.module, [fn for _, fn in panel], n_per_code=max(1, ctx.n_samples // family.categorical_dim),
        seed=ctx.seed, batch_size=ctx.batch_size, use_ema=ctx.use_ema, num_classes=ctx.datamodule.num_classes)

    def accuracy(row: Tensor) -> float:
        return best_assignment_accuracy(codes, row, family.categorical_dim, num_classes)[0]

    return panel_scores("generated_code_accuracy", [name for name, _ in panel], predicted, score=accuracy)
