"""Scoring a checkpoint (``evaluate.py``): every metric and the protocol that made it, printed and written as json."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from ..config.checks import check_targets
from ..data.convert import to_uint8
from ..errors import UserError
from ..outputs import atomic_write, check_output
from ..train.checkpoints import load_module, read_checkpoint
from .build import build_evaluator, feed, summary
from .domain import sha256_file
from .options import MetricOptions
from .paired import baselines_of, generate_from
from .registry import ScoreContext, classifier, classifier_panel, family_scores

log = logging.getLogger(__name__)


def infer_data(data_info: dict, data_dir: str):
    """The data module a checkpoint was trained on, from what the checkpoint stores: the data config itself when
    the training stored it (``data.cfg``), else recognised from the class names and shape."""
    from hydra.utils import instantiate

    from ..data import TORCHVISION, GaussianMixtureDataModule, TorchvisionDataModule

    if isinstance(data_info.get("cfg"), dict):
        check_targets(data_info["cfg"])
        return instantiate(data_info["cfg"])
    names = data_info.get("class_names") or []
    shape = list(data_info.get("shape") or [])
    for name, known in TORCHVISION.items():
        if list(known.classes) == list(names) and len(shape) == 3:
            return TorchvisionDataModule(name, root=data_dir, image_size=shape[-1], channels=shape[0])
    if shape == [2] and names and all(n == f"mode {i}" for i, n in enumerate(names)):
        kind = {8: "ring", 25: "grid"}.get(len(names))
        if kind:
            return GaussianMixtureDataModule(kind=kind)
    raise UserError("the checkpoint records no data to take inputs or references from: evaluate.py takes "
                    "data=NAME (and data.root=DIR or data.path=DIR); an import records it with "
                    "'overrides=[\"data.path=DIR\"]'")


def _fill_shape(data_cfg: dict, shape: list[int]) -> dict:
    """A data config's unset image size and channels taken from the checkpoint's sample shape."""
    data_cfg = dict(data_cfg)
    if len(shape) == 3:
        if "image_size" in data_cfg and data_cfg["image_size"] is None:
            data_cfg["image_size"] = shape[-1]
        if "channels" in data_cfg and data_cfg["channels"] is None:
            data_cfg["channels"] = shape[0]
    return data_cfg


def evaluate(ckpt: str, n: int = 10000, out: str | None = "metrics.json", data: dict | None = None,
             data_dir: str = "data", seed: int = 0, batch_size: int = 500, device: str = "cpu",
             use_ema: bool = True, features: str = "auto", n_reference: int | None = 10000,
             reference_split: str = "auto", inception_weights: str | None = None,
             domain_weights: str | None = None, cache_dir: str | None = None, kid_subsets: int = 100,
             cas: bool = False, cas_n: int = 10000, cas_epochs: int = 5, panel: bool = True) -> dict:
    """Score ``n`` samples of the checkpoint's (EMA) generator. The samples are those ``generate.py`` writes
    for the same ``seed`` and ``batch_size`` (for families that generate from data: from the data's held-out
    ``fixed_batch(n, "test", seed)``). With ``cas``, also the classification accuracy score of a class-conditional
    model (``metrics.cas``: ``cas_n`` labelled samples, ``cas_epochs``). ``panel``: also score with the domain
    classifier's panel members, and train the CAS classifier in every panel architecture (``MetricOptions``).
    Returns ``{"metrics", "protocol", "checkpoint"}``."""
    from hydra.utils import instantiate

    if n < 2:
        raise UserError(f"n must be at least 2; got {n}")
    if batch_size < 1:
        raise UserError(f"batch_size must be positive; got {batch_size}")
    if out is not None and Path(out).suffix != ".json":
        raise UserError(f"out must be a .json file (or null); got {out}")
    if out is not None:
        check_output(out, "out")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    module = load_module(ckpt).to(device)
    ckpt_info = read_checkpoint(ckpt)["gan_lightning"]
    data_info = module.config.get("data", {})
    if data:
        check_targets(data)
        datamodule = instantiate(_fill_shape(data, list(data_info.get("shape") or [])))
    else:
        datamodule = infer_data(data_info, data_dir)
    if list(datamodule.spec.shape) != list(data_info.get("shape", datamodule.spec.shape)):
        raise UserError(f"the data's shape {list(datamodule.spec.shape)} is not the generator's "
                        f"{data_info['shape']}: set data.image_size / data.channels to match")

    options = MetricOptions(features=features, n_reference=n_reference, reference_split=reference_split,
                            inception_weights=inception_weights, domain_weights=domain_weights, panel=panel,
                            cache_dir=cache_dir, kid_subsets=kid_subsets).check().for_family(module.family)
    evaluator, protocol = build_evaluator(datamodule, options,
                                          warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    if cas and not module.family.class_conditional:
        raise UserError(f"cas=true scores class-conditional models (cgan, acgan); {ckpt} holds a "
                        f"{type(module.family).__name__}")
    if not evaluator.active and not module.family.needs_source:
        raise UserError("nothing to evaluate: no feature space for this data (see the warning above)")
    available = datamodule.split_size("test") if module.family.needs_source else None
    if available is not None and n > available:
        print(f"warning: n={n} but the data holds {available} held-out inputs: scoring each once (n={available})",
              file=sys.stderr)
        n = available
    protocol["generated"] = {"n": n, "seed": seed, "batch_size": batch_size,
                             "generator": "EMA generator" if use_ema else "raw generator (use_ema=false)",
                             "noise": "family.sample_inputs per batch from one torch.Generator (as generate.py)",
                             "quantization": "uint8: round((x + 1) * 127.5), clamped (images)"}
    evaluator.to(device)
    family = module.family
    source = datamodule.fixed_batch(n, split="test", seed=seed) if family.needs_source else None
    gen = torch.Generator().manual_seed(seed)

    def part(start: int) -> dict | None:
        return None if source is None else {k: v[start : start + batch_size] for k, v in source.items()}

    batches = (family.sample_inputs(min(batch_size, n - start), generator=gen, source=part(start))
               for start in range(0, n, batch_size))
    metrics = {}
    if evaluator.active:
        feed(evaluator, module, batches, device, use_ema=use_ema)
        metrics = evaluator.compute()
        for prefix, (name, fn) in baselines_of(family).items():  # the same scores for the family's baselines
            evaluator.reset()
            for outputs in generate_from(module, source, batch_size, baseline=fn).split(batch_size):
                evaluator.update(to_uint8(outputs).to(device))
            metrics.update({f"{prefix}_{k}": v for k, v in evaluator.compute().items()})
            protocol[prefix] = name
    metrics.update(family_scores(ScoreContext(module, datamodule, classifier(datamodule, evaluator.spaces), n,
                                              seed=seed, batch_size=batch_size, use_ema=use_ema, source=source,
                                              spaces=evaluator.spaces, panel=classifier_panel(evaluator.spaces))))
    if cas:
        from .cas import ARCHITECTURES, classification_accuracy_score

        scored = classification_accuracy_score(module, datamodule, n=cas_n, epochs=cas_epochs, seed=seed,
                                               batch_size=batch_size, use_ema=use_ema,
                                               architectures=ARCHITECTURES if panel else ARCHITECTURES[:1],
                                               log=lambda m: print(m, file=sys.stderr))
        metrics.update(scored["metrics"])
        protocol["cas"] = scored["protocol"]
    result = {
        "metrics": metrics,
        "protocol": protocol,
        "checkpoint": {"path": str(ckpt), "iteration": int(ckpt_info.get("iteration", 0)),
                       "sha256": sha256_file(ckpt)},
    }
    if out is not None:
        text = json.dumps(result, indent=2, default=str) + "\n"
        atomic_write(out, lambda tmp: tmp.write_text(text))
    return result


def format_table(result: dict) -> str:
    """The metrics as a table, each preceded by how they were made."""
    p = result["protocol"]
    lines = [f"checkpoint: {result['checkpoint']['path']} (iteration {result['checkpoint']['iteration']})",
             f"protocol: {summary(p)}"]
    for name, sp in p.get("feature_spaces", {}).items():
        extra = f", test accuracy {sp['test_accuracy']}" if sp.get("test_accuracy") is not None else ""
        lines.append(f"  {name}: {sp['network']}; weights {sp['weights']} (sha256 {sp['weights_sha256']}){extra}")
    if "reference" in p:
        r = p["reference"]
        lines.append(f"  reference: {r['dataset']} {r['split']} split, {r['selection']}")
    width = max(len(k) for k in result["metrics"])
    for k, v in result["metrics"].items():
        lines.append(f"{k:<{width}}  {v:.6g}")
    return "\n".join(lines)
