"""Metrics for class-conditional families (CGAN, ACGAN), and the command line that scores them and the
latent-code families (InfoGAN; the code metrics are in ``metrics.codes``).

- ``label_accuracy``: for each requested label k, the share of samples generated for k that a classifier puts in
  class k (the generator's "does it obey the label" score); mean, minimum and per label.
- ``intra_class_fid``: FID between the samples generated for k and the real images of class k, in a feature
  space, averaged over the classes (Miyato & Koyama 2018).

The classifier and feature extractor are plain callables on float images in [-1, 1] (any stand-in works, e.g. the
nearest mode of a Gaussian mixture). ``DomainScorer`` provides them from the project's domain classifier
(``gan_lightning.metrics.domain``, the shipped Fashion-MNIST weights), with the same uint8 quantisation as the
other metrics.

    python -m gan_lightning.metrics.conditional CKPT [--n-per-label 1000] [--split test] [--out FILE.json]

scores a checkpoint of cgan / acgan (label accuracy, intra-class FID) or infogan (code accuracies) trained on
Fashion-MNIST (or on any data with a domain classifier: ``--domain-weights``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..data.convert import to_float, to_uint8
from ..errors import UserError
from .registry import ImageFn, ScoreContext, apply, device_of, generate_batches, panel_scores, register

# --- conditional models ------------------------------------------------------------------------------------------
def _requested_labels(family, labels: Sequence[int] | None) -> list[int]:
    if not family.class_conditional:
        raise ValueError(f"{type(family).__name__} is not class-conditional")
    return list(range(family.num_classes)) if labels is None else [int(k) for k in labels]


def label_accuracy(module, classify: ImageFn, labels: Sequence[int] | None = None, n_per_label: int = 1000,
                   seed: int = 0, batch_size: int = 500, use_ema: bool = True) -> dict:
    """For each label k (all classes by default): ``n_per_label`` samples generated for k (the same noise for
    every k), the share that ``classify`` (images -> logits) assigns to k. ``module`` is a ``GANModule`` of a
    conditional family (anything with ``family`` and ``generate(inputs, use_ema=)``).

    Returns ``{"label_accuracy": mean over labels, "label_accuracy_min": worst label,
    "label_accuracy_per_label": {k: share}}``."""
    predicted, requested = label_predictions(module, [classify], labels, n_per_label, seed, batch_size, use_ema)
    per_label = _per_label(predicted[0], requested)
    values = list(per_label.values())
    return {"label_accuracy": sum(values) / len(values), "label_accuracy_min": min(values),
            "label_accuracy_per_label": per_label}


def label_predictions(module, classifiers: Sequence[ImageFn], labels: Sequence[int] | None = None,
                      n_per_label: int = 1000, seed: int = 0, batch_size: int = 500,
                      use_ema: bool = True) -> tuple[Tensor, Tensor]:
    """``n_per_label`` samples generated for each label (the same noise for every label) and the class each of
    ``classifiers`` predicts for them: (int64 [classifiers, N], the requested labels [N])."""
    family = module.family
    predicted, requested = [], []
    for k in _requested_labels(family, labels):
        for samples in generate_batches(module, n_per_label,
                                        lambda m, g, k=k: family.sample_inputs(m, generator=g, labels=k),
                                        seed, batch_size, use_ema):
            predicted.append(torch.stack([classify(samples).argmax(1).cpu() for classify in classifiers]))
            requested.append(torch.full((len(samples),), k))
    return torch.cat(predicted, 1), torch.cat(requested)


def _per_label(predicted: Tensor, requested: Tensor) -> dict[int, float]:
    """The share of each requested label's samples predicted as that label."""
    return {k: int((predicted[requested == k] == k).sum()) / int((requested == k).sum())
            for k in dict.fromkeys(requested.tolist())}


def frechet_distance(fake: Tensor, real: Tensor) -> float:
    """FID between two feature sets (torch-fidelity's formula, through ``gan_lightning.metrics``)."""
    from .core import fid
    from .reference import Reference

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
    device = device_of(module)
    real = to_float(real_images)
    per_label, n_real = {}, {}
    for k in _requested_labels(family, labels):
        real_k = real[real_labels == k][:n_real_per_label]
        if len(real_k) < 2:
            raise ValueError(f"only {len(real_k)} real images of class {k}: intra-class FID needs at least 2")
        real_features = apply(features, real_k, batch_size, device)
        fake_features = torch.cat([features(s).float().cpu() for s in generate_batches(
            module, n_per_label, lambda m, g, k=k: family.sample_inputs(m, generator=g, labels=k), seed, batch_size,
            use_ema)])
        per_label[k] = frechet_distance(fake_features, real_features)
        n_real[k] = len(real_k)
    values = list(per_label.values())
    return {"intra_fid": sum(values) / len(values), "intra_fid_max": max(values), "intra_fid_per_label": per_label,
            "intra_fid_n_real": n_real}


@register("class_conditional")
def label_scores(ctx: ScoreContext) -> dict[str, float]:
    """During training: ``label_accuracy`` and its worst label, from about ``n_samples`` samples; with a classifier
    panel, also by each member and the panel's mean, minimum and agreement (``label_accuracy_panel_mean``, ...,
    ``label_accuracy_min_panel_min``: ``registry.panel_scores``)."""
    panel = ctx.classifiers()
    if not panel:
        return {}
    n_per_label = max(1, ctx.n_samples // ctx.family.num_classes)
    predicted, requested = label_predictions(ctx.module, [fn for _, fn in panel], n_per_label=n_per_label,
                                             seed=ctx.seed, batch_size=ctx.batch_size, use_ema=ctx.use_ema)
    names = [name for name, _ in panel]

    def mean(row: Tensor) -> float:
        values = list(_per_label(row, requested).values())
        return sum(values) / len(values)

    def worst(row: Tensor) -> float:
        return min(_per_label(row, requested).values())

    return {**panel_scores("label_accuracy", names, predicted, score=mean),
            **panel_scores("label_accuracy_min", names, predicted, score=worst, agreement=False)}


# --- the domain classifier -----------------------------------------------------------------------------------------
class DomainScorer:
    """The project's domain classifier as ``classify`` (images -> logits) and ``features`` (images -> its 128-d
    penultimate features) on float images in [-1, 1], quantised to uint8 first as every other metric does.
    ``weights``: a file, else the package's weights for ``dataset``."""

    def __init__(self, dataset: str = "fashion_mnist", weights: str | Path | None = None, device="cpu"):
        from . import domain

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
    from ..train.checkpoints import load_module
    from .codes import infogan_code_accuracy, infogan_generated_code_accuracy
    from .evaluation import infer_data

    module = load_module(ckpt).to(device)
    family = module.family
    if not (family.class_conditional or family.has_codes):
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
    if family.class_conditional:
        result.update(label_accuracy(module, scorer.classify, n_per_label=n_per_label, **common))
        result.update(intra_class_fid(module, scorer.features, images, labels, n_per_label=n_per_label,
                                      n_real_per_label=n_real_per_label, **common))
    else:
        result.update(infogan_code_accuracy(family, images, labels, batch_size=batch_size))
        result.update(infogan_generated_code_accuracy(module, scorer.classify, n_per_code=n_per_label, **common))
    return result


def main(argv: list[str] | None = None) -> dict:
    from ..config.entry import report_user_errors

    parser = argparse.ArgumentParser(prog="python -m gan_lightning.metrics.conditional",
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
