"""Scoring generated samples against reference statistics.

The formulas are torch-fidelity's (``fid_statistics_to_metric``, ``kid_features_to_metric``,
``isc_features_to_metric``, ``prc_features_to_metric``), applied to features this package extracts once per batch
(one network pass serves FID, KID, IS and precision/recall). The generated side is held in a torchmetrics ``Metric``
with ``cat`` reduction, so under DDP each process extracts features for its own share of the samples and
``compute()`` gathers all of them on every process: every rank computes the same numbers from the same features
(``compute`` must therefore run on all ranks). The reference side is never synchronised (each process has all of it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .reference import Reference
from .registry import panel_scores
from .spaces import FeatureSpace

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
PRC_NEIGHBORHOOD = 3
RNG_SEED = 2020  # torch-fidelity's default seed for KID subsets and the IS shuffle
COVERAGE_SHARE = 0.2  # a class is covered if the samples give it >= 20% of its share in the data


class FeatureBank(Metric):
    """Tensors appended by ``update(name=tensor, ...)`` on each process; ``compute()`` returns them concatenated
    over all processes (rank order)."""

    full_state_update = False
    higher_is_better = None

    def __init__(self, names: list[str]):
        super().__init__(compute_with_cache=False)
        self.names = list(names)
        for name in self.names:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, **tensors: Tensor) -> None:
        for name, value in tensors.items():
            getattr(self, name).append(value.detach().float().to(self.device))

    def compute(self) -> dict[str, Tensor]:
        return {name: dim_zero_cat(getattr(self, name)).cpu() for name in self.names}


def fid(fake: Tensor, ref: Reference) -> float:
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    if len(fake) < 2:
        return math.nan
    stats = fid_features_to_statistics(fake.double())
    return float(fid_statistics_to_metric(stats, ref.fid_statistics(), verbose=False)[KEY_METRIC_FID])


def kid(fake: Tensor, real: Tensor, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> tuple[float, float]:
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = min(subset_size, len(fake), len(real))
    if size < 2:
        return math.nan, math.nan
    out = kid_features_to_metric(fake, real, kid_subsets=subsets, kid_subset_size=size, verbose=False,
                                 rng_seed=RNG_SEED)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def inception_score(logits: Tensor, splits: int = IS_SPLITS) -> tuple[float, float]:
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    splits = max(1, min(splits, len(logits)))
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=RNG_SEED)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])


def precision_recall(fake: Tensor, real: Tensor, k: int = PRC_NEIGHBORHOOD) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), k-NN balls in feature space."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    if min(len(fake), len(real)) <= k:
        return math.nan, math.nan
    out = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=2000, save_cpu_ram=True,
                                 verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def class_coverage(fake_logits: Tensor, ref_counts: Tensor, share: float = COVERAGE_SHARE) -> dict[str, float]:
    """How many classes the samples cover and KL(sample class histogram || reference class histogram), both
    from the classifier's predictions. Class c is covered when the samples' share of c is at least ``share``
    times the reference's share of c."""
    k = len(ref_counts)
    counts = torch.bincount(fake_logits.argmax(1), minlength=k).double()
    p = counts / counts.sum()
    q = ref_counts.double() / ref_counts.sum()
    kl = torch.where(p > 0, p * (p.log() - q.clamp_min(1e-12).log()), torch.zeros_like(p)).sum()
    return {"classes_covered": float(((p >= share * q) & (q > 0)).sum()), "class_kl": float(kl)}


def score_space(space: FeatureSpace, ref: Reference, fake: Tensor, logits: Tensor,
                kid_subsets: int = KID_SUBSETS, class_coverage_applies: bool = True) -> dict[str, float]:
    s = space.suffix
    out = {f"fid{s}": fid(fake, ref)}
    out[f"kid{s}"], out[f"kid{s}_std"] = kid(fake, ref.features, subsets=kid_subsets)
    out[f"is{s}"], out[f"is{s}_std"] = inception_score(logits)
    # Equal sizes, as in Kynkaanniemi et al.: the first M reference images (a random subset already) against M.
    out[f"precision{s}"], out[f"recall{s}"] = precision_recall(fake, ref.features[: len(fake)])
    if class_coverage_applies and space.classes and ref.class_counts is not None:
        out.update({f"{k}{space.coverage_suffix}": v for k, v in class_coverage(logits, ref.class_counts).items()})
    return out


class Evaluator:
    """Collects generated samples (``update``, per process) and scores them (``compute``, on every process).

    Image data: ``spaces`` with one ``Reference`` each; ``update`` takes uint8 N×C×H×W. 2-D data: ``score_fn``
    (the datamodule's ``score``); ``update`` takes float N×2 points. ``class_coverage=False`` where the reference
    is one class (a translation's target domain): coverage of its one class says nothing.
    """

    def __init__(self, spaces: list[FeatureSpace] | None = None, references: list[Reference] | None = None,
                 score_fn: Callable[[Tensor], dict] | None = None, kid_subsets: int = KID_SUBSETS,
                 class_coverage: bool = True):
        self.kid_subsets, self.class_coverage = kid_subsets, class_coverage
        self.spaces = list(spaces or [])
        self.references = list(references or [])
        self.score_fn = score_fn
        names = ["points"] if score_fn is not None else \
            [f"{sp.name}_{part}" for sp in self.spaces for part in ("features", "logits")]
        self.bank = FeatureBank(names)

    @property
    def active(self) -> bool:
        return self.score_fn is not None or bool(self.spaces)

    def to(self, device) -> Evaluator:
        for space in self.spaces:
            space.to(device)
        self.bank.to(device)
        return self

    def reset(self) -> None:
        self.bank.reset()

    def update(self, samples: Tensor) -> None:
        if self.score_fn is not None:
            self.bank.update(points=samples)
            return
        for space in self.spaces:
            features, logits = space.extract(samples)
            self.bank.update(**{f"{space.name}_features": features, f"{space.name}_logits": logits})

    def compute(self) -> dict[str, float]:
        """Every metric as a float; gathers from all processes, so call it on all of them."""
        gathered = self.bank.compute()
        if self.score_fn is not None:
            return {k: float(v) for k, v in self.score_fn(gathered["points"]).items()}
        out: dict[str, float] = {}
        for space, ref in zip(self.spaces, self.references):
            out.update(score_space(space, ref, gathered[f"{space.name}_features"], gathered[f"{space.name}_logits"],
                                   kid_subsets=self.kid_subsets, class_coverage_applies=self.class_coverage))
        panel = [space for space, ref in zip(self.spaces, self.references)
                 if space.classes and ref.class_counts is not None]
        if self.class_coverage and len(panel) > 1:  # the classifier panel's summary of class coverage
            predicted = torch.stack([gathered[f"{space.name}_logits"].argmax(1) for space in panel])
            out.update(panel_scores("classes_covered", [space.name for space in panel], predicted,
                                    values=[out[f"classes_covered{space.coverage_suffix}"] for space in panel]))
        return out


def implementation() -> dict:
    import torch_fidelity
    import torchmetrics

    return {
        "formulas": f"torch-fidelity {torch_fidelity.__version__} (fid_statistics_to_metric, kid_features_to_metric, "
                    "isc_features_to_metric, prc_features_to_metric)",
        "distributed_gathering": f"torchmetrics {torchmetrics.__version__} (Metric state, cat reduction)",
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def settings(kid_subsets: int = KID_SUBSETS) -> dict:
    return {
        "kid": {"subsets": kid_subsets, "subset_size": f"min({KID_SUBSET_SIZE}, N, M)", "kernel": "poly, degree 3, "
                "gamma 1/d, coef 1", "estimator": "unbiased", "rng_seed": RNG_SEED},
        "is": {"splits": IS_SPLITS, "shuffle_seed": RNG_SEED},
        "precision_recall": {"k": PRC_NEIGHBORHOOD, "sizes": "min(N, M) reference (the first of the subset) vs M "
                             "generated", "reference": "Kynkaanniemi et al. 2019"},
        "class_coverage": {"covered": f"sample share >= {COVERAGE_SHARE} x reference share (classifier predictions)",
                           "class_kl": "KL(samples' predicted-class histogram || reference's)"},
    }
