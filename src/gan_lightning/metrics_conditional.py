"""Metrics for class-conditional models (CGAN, ACGAN) and InfoGAN.

Conditional models:

- ``label_accuracy``: for each requested label k, the share of samples generated for k that a classifier puts in
  class k (the generator's "does it obey the label" score); mean, minimum and per label.
- ``intra_class_fid``: FID between the samples generated for k and the real images of class k, in a feature
  space, averaged over the classes (Miyato & Koyama 2018).

InfoGAN:

- ``best_assignment_accuracy``: the accuracy of predicted groups (codes) against classes under the best one-to-one
  code-to-class assignment (the Hungarian algorithm);
- ``infogan_code_accuracy``: that accuracy for Q's categorical code inferred from real labelled images (the
  paper's "c1 as a classifier" test);
- ``infogan_generated_code_accuracy``: that accuracy for samples generated with each code value, classified.

The classifier and feature extractor are plain callables on float images in [-1, 1] (any stand-in works, e.g. the
nearest mode of a Gaussian mixture). ``DomainScorer`` provides them from the project's domain classifier
(``gan_lightning.metrics.domain``, the shipped Fashion-MNIST weights), with the same uint8 quantisation as the
other metrics.

    python -m gan_lightning.metrics_conditional CKPT [--n-per-label 1000] [--split test] [--out FILE.json]

scores a checkpoint of cgan / acgan (label accuracy, intra-class FID) or infogan (code accuracies) trained on
Fashion-MNIST (or on any data with a domain classifier: ``--domain-weights``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from .errors import UserError
from .sampling import to_uint8

ImageFn = Callable[[Tensor], Tensor]  # float images in [-1, 1] (or points) -> logits / features


# --- generation --------------------------------------------------------------------------------------------------
def _device(module) -> torch.device:
    return next(iter(module.parameters()), torch.zeros(())).device


@torch.no_grad()
def _generate(module, n: int, inputs_fn: Callable[[int, torch.Generator], dict], seed: int, batch_size: int,
              use_ema: bool) -> Iterator[Tensor]:
    """``n`` samples of ``module`` in batches; ``inputs_fn(size, generator)`` makes each batch's inputs."""
    device, gen = _device(module), torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        inputs = inputs_fn(min(batch_size, n - start), gen)
        yield module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema)


@torch.no_grad()
def _apply(fn: ImageFn, x: Tensor, batch_size: int, device) -> Tensor:
    return torch.cat([fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def _requested_labels(family, labels: Sequence[int] | None) -> list[int]:
    if not getattr(family, "conditional", False):
        raise ValueError(f"{type(family).__name__} is not class-conditional")
    return list(range(family.num_classes)) if labels is None else [int(k) for k in labels]


# --- conditional models ------------------------------------------------------------------------------------------
def label_accuracy(module, classify: ImageFn, labels: Sequence[int] | None = None, n_per_label: int = 1000,
                   seed: int = 0, batch_size: int = 500, use_ema: bool = True) -> dict:
    """For each label k (all classes by default): ``n_per_label`` samples generated for k (the same noise for
    every k), the share that ``classify`` (images -> logits) assigns to k. ``module`` is a ``GANModule`` of a
    conditional family (anything with ``family`` and ``generate(inputs, use_ema=)``).

    Returns ``{"label_accuracy": mean over labels, "label_accuracy_min": worst label,
    "label_accuracy_per_label": {k: share}}``."""
    family = module.family
    per_label = {}
    for k in _requested_labels(family, labels):
        correct = 0
        for samples in _generate(module, n_per_label, lambda m, g, k=k: family.sample_inputs(m, generator=g, labels=k),
                                 seed, batch_size, use_ema):
            correct += int((classify(samples).argmax(1).cpu() == k).sum())
        per_label[k] = correct / n_per_label
    values = list(per_label.values())
    return {"label_accuracy": sum(values) / len(values), "label_accuracy_min": min(values),
            "label_accuracy_per_label": per_label}


def frechet_distance(fake: Tensor, real: Tensor) -> float:
    """FID between two feature sets (torch-fidelity's formula, through ``gan_lightning.metrics``)."""
    from .metrics.core import fid
    from .metrics.reference import Reference

    if len(real) < 2:
        return math.nan
    return fid(fake.double(), Reference(features=real.float(), class_counts=None, meta={}))


def intra_class_fid(module, features: ImageFn, real_images: Tensor, real_labels: Tensor,
                    labels: Sequence[int] | None = None, n_per_label: int = 1000, seed: int = 0,
                    batch_size: int = 500, use_ema: bool = True, n_real_per_label: int | None = None) -> dict:
    """Mean over labels k of FID(samples generated for k, real images of class k) in the space of ``features``
    (images -> [N, d]). ``real_images``: uint8 or float in [-1, 1], N×C×H×W; ``real_labels``: int64 [N];
    ``n_real_per_label``: use only the first that many real images of each class (None: all).

    Returns ``{"intra_fid": mean, "intra_fid_max": worst label, "intra_fid_per_label": {k: fid},
    "intra_fid_n_real": {k: real images used}}``."""
    family = module.family
    device = _device(module)
    real = real_images.float().div(127.5).sub(1) if real_images.dtype == torch.uint8 else real_images
    per_label, n_real = {}, {}
    for k in _requested_labels(family, labels):
        real_k = real[real_labels == k][:n_real_per_label]
        if len(real_k) < 2:
            raise ValueError(f"only {len(real_k)} real images of class {k}: intra-class FID needs at least 2")
        real_features = _apply(features, real_k, batch_size, device)
        fake_features = torch.cat([features(s).float().cpu() for s in _generate(
            module, n_per_label, lambda m, g, k=k: family.sample_inputs(m, generator=g, labels=k), seed, batch_size,
            use_ema)])
        per_label[k] = frechet_distance(fake_features, real_features)
        n_real[k] = len(real_k)
    values = list(per_label.values())
    return {"intra_fid": sum(values) / len(values), "intra_fid_max": max(values), "intra_fid_per_label": per_label,
            "intra_fid_n_real": n_real}


# --- InfoGAN -----------------------------------------------------------------------------------------------------
def _max_weight_assignment(weights: list[list[float]]) -> list[int]:
    """For a rows x cols matrix with rows <= cols, the column of each row in a one-to-one assignment of maximum
    total weight (the Hungarian algorithm with potentials, O(rows^2 cols))."""
    n, m = len(weights), len(weights[0])
    cost = [[-w for w in row] for row in weights]
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner = [0] * (m + 1)  # owner[j]: the row (1-based) assigned to column j; column 0 is a sentinel
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        min_slack, used = [inf] * (m + 1), [False] * (m + 1)
        while owner[j0] != 0:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    slack = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if slack < min_slack[j]:
                        min_slack[j], way[j] = slack, j0
                    if min_slack[j] < delta:
                        delta, j1 = min_slack[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    min_slack[j] -= delta
            j0 = j1
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    assignment = [-1] * n
    for j in range(1, m + 1):
        if owner[j]:
            assignment[owner[j] - 1] = j - 1
    return assignment


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
    if p <= t:
        mapping = dict(enumerate(_max_weight_assignment(confusion)))
    else:
        by_class = _max_weight_assignment([list(col) for col in zip(*confusion)])
        mapping = {group: cls for cls, group in enumerate(by_class)}
    correct = sum(confusion[g][c] for g, c in mapping.items())
    return correct / len(pred), mapping


@torch.no_grad()
def infogan_code_accuracy(family, images: Tensor, labels: Tensor, batch_size: int = 500) -> dict:
    """Q's categorical code for real images (argmax, discriminator and Q in eval mode) against their labels,
    under the best code-to-class assignment. ``images``: uint8 or float in [-1, 1]."""
    x = images.float().div(127.5).sub(1) if images.dtype == torch.uint8 else images
    nets = [family.discriminator, family.q_head]
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        device = _device(family.discriminator)
        codes = _apply(lambda b: family.infer_codes(b)[0].argmax(1, keepdim=True), x, batch_size, device)
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
    family = module.family
    codes, predicted = [], []
    for c in range(family.categorical_dim):
        for samples in _generate(module, n_per_code,
                                 lambda m, g, c=c: family.sample_inputs(m, generator=g, categorical=c),
                                 seed, batch_size, use_ema):
            logits = classify(samples)
            predicted.append(logits.argmax(1).cpu())
            codes.append(torch.full((len(samples),), c))
            num_classes = num_classes or logits.shape[1]
    accuracy, mapping = best_assignment_accuracy(torch.cat(codes), torch.cat(predicted), family.categorical_dim,
                                                 num_classes)
    return {"generated_code_accuracy": accuracy, "generated_code_to_class": mapping}


# --- during training -----------------------------------------------------------------------------------------------
def training_scores(module, datamodule, spaces: Sequence, n_samples: int, seed: int = 0,
                    batch_size: int = 500) -> dict[str, float]:
    """What the metrics callback adds for conditional models and InfoGAN, from about ``n_samples`` samples:
    ``label_accuracy`` (and its worst label, ``label_accuracy_min``) for cgan / acgan, ``generated_code_accuracy``
    for InfoGAN. The classifier is the feature space whose logits are the dataset's classes (the domain
    classifier) or, on a labelled 2-D mixture, the nearest mode. Empty where there is no such classifier."""
    from .infogan import InfoGAN

    family = module.family
    classify = _classifier(datamodule, spaces)
    if classify is None:
        return {}
    common = dict(seed=seed, batch_size=batch_size)
    if family.conditional:
        scores = label_accuracy(module, classify, n_per_label=max(1, n_samples // family.num_classes), **common)
        return {k: scores[k] for k in ("label_accuracy", "label_accuracy_min")}
    if isinstance(family, InfoGAN):
        scores = infogan_generated_code_accuracy(module, classify, n_per_code=max(1, n_samples // family.categorical_dim),
                                                 num_classes=datamodule.num_classes, **common)
        return {"generated_code_accuracy": scores["generated_code_accuracy"]}
    return {}


def _classifier(datamodule, spaces: Sequence) -> ImageFn | None:
    space = next((s for s in spaces if s.classes), None)
    if space is not None:
        return lambda images: space.extract(to_uint8(images))[1]
    modes = getattr(datamodule, "modes", None)
    if isinstance(modes, Tensor) and getattr(datamodule, "num_classes", None) == len(modes):
        return lambda points: -torch.cdist(points.float(), modes.to(points.device).float())
    return None


# --- the domain classifier -----------------------------------------------------------------------------------------
class DomainScorer:
    """The project's domain classifier as ``classify`` (images -> logits) and ``features`` (images -> its 128-d
    penultimate features) on float images in [-1, 1], quantised to uint8 first as every other metric does.
    ``weights``: a file, else the package's weights for ``dataset``."""

    def __init__(self, dataset: str = "fashion_mnist", weights: str | Path | None = None, device="cpu"):
        from .metrics import domain

        path = Path(weights) if weights else domain.shipped_weights(dataset)
        if path is None:
            raise UserError(f"no domain classifier for {dataset}: make one with python -m "
                            "gan_lightning.metrics.train_domain --data DATASET, or pass --domain-weights FILE")
        self._preprocess = domain.preprocess
        self.net, self.sha256 = domain.load_classifier(path)
        self.net.to(device)
        self.weights = str(path)

    def _input(self, images: Tensor) -> Tensor:
        return self._preprocess(to_uint8(images))

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        return self.net(self._input(images))

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        return self.net.features(self._input(images))[0]


# --- command line ----------------------------------------------------------------------------------------------------
def evaluate_checkpoint(ckpt: str, n_per_label: int = 1000, split: str = "test", data_dir: str = "data",
                        domain_weights: str | None = None, seed: int = 0, batch_size: int = 500,
                        device: str = "cpu", n_real_per_label: int | None = None) -> dict:
    """The conditional / InfoGAN metrics of a checkpoint against its data's ``split`` (EMA generator)."""
    from .checkpoints import load_module
    from .infogan import InfoGAN
    from .metrics.evaluation import infer_data

    module = load_module(ckpt).to(device)
    family = module.family
    if not (family.conditional or isinstance(family, InfoGAN)):
        raise UserError(f"{ckpt} holds an unconditional {type(family).__name__}: these metrics are for cgan, acgan "
                        "and infogan (use evaluate.py)")
    datamodule = infer_data(module.config.get("data", {}), data_dir)
    if not hasattr(datamodule, "load_split"):
        raise UserError(f"{type(datamodule).__name__} has no labelled {split} split to compare with")
    images, labels = datamodule.load_split(split)
    scorer = DomainScorer(datamodule.name, domain_weights, device)
    result: dict = {"checkpoint": str(ckpt), "iteration": module.iteration, "data": f"{datamodule.name} {split}",
                    "classifier": {"weights": scorer.weights, "sha256": scorer.sha256}, "n_per_label": n_per_label,
                    "n_real_per_label": n_real_per_label or "all", "seed": seed,
                    "class_names": module.config.get("data", {}).get("class_names")}
    common = dict(seed=seed, batch_size=batch_size)
    if family.conditional:
        result.update(label_accuracy(module, scorer.classify, n_per_label=n_per_label, **common))
        result.update(intra_class_fid(module, scorer.features, images, labels, n_per_label=n_per_label,
                                      n_real_per_label=n_real_per_label, **common))
    else:
        result.update(infogan_code_accuracy(family, images, labels, batch_size=batch_size))
        result.update(infogan_generated_code_accuracy(module, scorer.classify, n_per_code=n_per_label, **common))
    return result


def main(argv: list[str] | None = None) -> dict:
    from .cli import report_user_errors

    parser = argparse.ArgumentParser(prog="python -m gan_lightning.metrics_conditional",
                                     description="Label accuracy and intra-class FID (cgan, acgan), code accuracy "
                                                 "(infogan) of a checkpoint, with the domain classifier.")
    parser.add_argument("ckpt")
    parser.add_argument("--n-per-label", type=int, default=1000, help="samples per label / code (default 1000)")
    parser.add_argument("--split", choices=("train", "test"), default="test", help="real images (default test)")
    parser.add_argument("--n-real-per-label", type=int, default=None,
                        help="real images per class for the intra-class FID (default: all of the split's)")
    parser.add_argument("--data-dir", default="data", help="data folder (as train.py's paths.data_dir)")
    parser.add_argument("--domain-weights", default=None, help="classifier weights (default: the shipped ones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write the result to this .json file")
    args = parser.parse_args(argv)
    result = report_user_errors(evaluate_checkpoint, args.ckpt, n_per_label=args.n_per_label, split=args.split,
                                data_dir=args.data_dir, domain_weights=args.domain_weights, seed=args.seed,
                                batch_size=args.batch_size, device=args.device,
                                n_real_per_label=args.n_real_per_label)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
