"""From a data module and the metric options to a ready ``Evaluator`` and the protocol that describes it."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ..data.convert import to_uint8
from ..errors import UserError
from .core import Evaluator, implementation, settings
from .mixtures import mixture_metrics
from .options import SPLITS, MetricOptions
from .reference import reference_for, select
from .spaces import resolve_spaces

log = logging.getLogger(__name__)

REFERENCE_SEED = 0


def is_points(datamodule) -> bool:
    return datamodule.spec.points


def dataset_name(datamodule) -> str:
    name = getattr(datamodule, "name", None)
    if name:
        return str(name)
    import re

    camel = type(datamodule).__name__.removesuffix("DataModule") or "data"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def reference_images(datamodule, split: str, n: int | None) -> tuple[Tensor, str]:
    """uint8 reference images of the data's target key (what the generator imitates) and how they were chosen."""
    if split not in SPLITS:
        raise UserError(f"reference_split must be one of {', '.join(SPLITS)}; got {split!r}")
    target = datamodule.spec.target
    if target != "x":  # translation and super-resolution targets: from the data module's held-out batches
        n = min(n or 10000, datamodule.split_size(split) or 10000)  # each image once, where there are fewer
        images = datamodule.fixed_batch(n, split=split, seed=REFERENCE_SEED)[target]
        return to_uint8(images), f"{n} {target!r} images of fixed_batch({n}, {split!r}, seed {REFERENCE_SEED})"
    if hasattr(datamodule, "load_split"):
        images, _ = datamodule.load_split(split)
        images, _, how = select(images, None, n, seed=REFERENCE_SEED)
        return images, f"{how} from the full {split} split (data.subset does not apply)"
    if split != "train":
        raise UserError(f"{type(datamodule).__name__} has no {split} split: use reference_split=train")
    n = n or 10000
    x = datamodule.real_samples(n, seed=REFERENCE_SEED)[target]
    return to_uint8(x), f"{n} drawn by the data module's real_samples (seed {REFERENCE_SEED}; with replacement " \
                        "only if the data has fewer)"


def build_evaluator(datamodule, options: MetricOptions | None = None,
                    warn: Callable[[str], None] = log.warning) -> tuple[Evaluator, dict]:
    """The evaluator for ``datamodule`` and the protocol (everything that decides the numbers but the generated
    samples). For 2-D data with ``datamodule.score``: mode coverage instead of image metrics."""
    o = (options or MetricOptions()).check()
    features, n_reference, reference_split, cache_dir = o.features, o.n_reference, o.reference_split, o.cache_dir
    reference_split = "train" if reference_split == "auto" else reference_split  # no family to ask (for_family)
    inception_weights, domain_weights, kid_subsets = o.inception_weights, o.domain_weights, o.kid_subsets
    protocol: dict = {"implementation": implementation()}
    if is_points(datamodule):
        if not hasattr(datamodule, "modes"):
            warn(f"metrics: {type(datamodule).__name__} has 2-D data but no modes: no metrics")
            return Evaluator(), protocol
        protocol["score"] = {
            "data": dataset_name(datamodule) + (f" ({datamodule.kind}, std {datamodule.std})"
                                                if hasattr(datamodule, "kind") else ""),
            "method": "gan_lightning.metrics.mixtures.mixture_metrics: high quality = within 3 std of the nearest mode; a mode "
                      "is covered by >= max(1, round(0.2 N / modes)) high-quality samples; mode_kl = KL(high-"
                      "quality mode histogram || uniform)",
        }
        score = functools.partial(mixture_metrics, modes=datamodule.modes, std=datamodule.std)
        return Evaluator(score_fn=score), protocol

    name = dataset_name(datamodule)
    spaces = resolve_spaces(features, getattr(datamodule, "name", None), tuple(datamodule.spec.shape),
                            datamodule.num_classes, inception_weights, domain_weights, panel=o.panel, warn=warn)
    if not spaces:
        return Evaluator(), protocol
    content = None
    if callable(getattr(datamodule, "content_hash", None)):  # a user's files: a cache hit reads none of them
        what = [datamodule.content_hash(), reference_split, n_reference, REFERENCE_SEED]
        content = hashlib.sha256(json.dumps(what).encode()).hexdigest()
    images = functools.cache(lambda: reference_images(datamodule, reference_split, n_reference))
    references = [reference_for(space, images, dataset=name, split=reference_split, cache_dir=cache_dir,
                                content_hash=content) for space in spaces]
    first = references[0].meta
    protocol["reference"] = {k: first[k] for k in ("dataset", "split", "n", "selection", "image_shape",
                                                   "data_sha256")}
    protocol["feature_spaces"] = {
        space.name: {**space.protocol(), "reference_cache_key": ref.meta["cache_key"],
                     "reference_from_cache": ref.cache_hit}
        for space, ref in zip(spaces, references)
    }
    panel = [space for space in spaces if space.classes]
    if len(panel) > 1:
        protocol["panel"] = {space.name: {"weights": space.weights, "sha256": space.weights_sha256,
                                          "test_accuracy": space.description.get("test_accuracy"),
                                          "architecture": space.description.get("architecture"),
                                          "seed": space.description.get("seed")} for space in panel}
    protocol["settings"] = settings(kid_subsets)
    if len(panel) > 1:
        protocol["settings"]["panel"] = (
            "every classifier score (class coverage, target share, class kept, label and code accuracy) by each "
            "panel member (<score>_<member>); <score>_panel_mean and _panel_min over the primary and the members; "
            "<score>_panel_agree: the share of images on which all of them predict the same class")
    coverage = not getattr(datamodule, "one_class_reference", False)
    if not coverage:
        protocol["settings"]["class_coverage"] = "not scored: the reference images are one class"
    return Evaluator(spaces, references, kid_subsets=kid_subsets, class_coverage=coverage), protocol


@torch.no_grad()
def feed(evaluator: Evaluator, module, batches: Iterable[dict[str, Tensor]], device, use_ema: bool = True) -> int:
    """Generate from each batch of inputs and add the samples (uint8 images or float points) to ``evaluator``."""
    n = 0
    for inputs in batches:
        samples = module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema)
        evaluator.update(samples if samples.dim() == 2 else to_uint8(samples))
        n += len(samples)
    return n


def summary(protocol: dict) -> str:
    """One line: feature spaces with weight hashes, reference, implementation."""
    parts = []
    for name, sp in protocol.get("feature_spaces", {}).items():
        parts.append(f"{name} features (sha256 {sp['weights_sha256'][:12]}, resize: {sp['resize']})")
    ref = protocol.get("reference")
    if ref:
        parts.append(f"reference {ref['dataset']} {ref['split']} n={ref['n']} (data sha256 {ref['data_sha256'][:12]})")
    if "score" in protocol:
        parts.append(f"mixture scores on {protocol['score']['data']}")
    gen = protocol.get("generated")
    if gen:
        parts.append(f"{gen['n']} samples (seed {gen['seed']}, {gen['generator']})")
    if "feature_spaces" in protocol:
        parts.append(protocol["implementation"]["formulas"].split(" (")[0])
    return "; ".join(parts)
