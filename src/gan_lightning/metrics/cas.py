"""Classification accuracy score (Ravuri & Vinyals 2019): generated data as training data.

A fixed classifier is trained from scratch on ``n`` labelled samples of a class-conditional generator (labels
balanced over the classes) and tested on the real test split; the same classifier trained the same way on ``n``
real training images gives the yardstick. ``cas / cas_real`` near 1 means the samples carry as much of what
tells the classes apart as real data does; mode dropping and off-class samples lower it even where FID is good.

Protocol: the domain classifier's architecture (``metrics.domain.DomainClassifier``, about 130k parameters) and
recipe (``metrics.train_domain.train_classifier``: AdamW with a one-cycle schedule, label smoothing 0.05, random
shifts of up to 2 pixels, batch 128), ``epochs`` passes over the ``n`` images, ``seed`` for the samples, the real
subset and the classifier's initialisation; images quantised to uint8 as every other metric sees them.

The classifier panel: the same is done for each of ``architectures`` (by default both of the panel's,
``metrics.domain.ARCHITECTURES``: ``cnn``, then ``pool``, the ``PoolClassifier``), on the same images.
``cas``, ``cas_real`` and ``cas_ratio`` are the ``cnn`` classifier's (as before the panel); ``cas_pool``,
``cas_real_pool`` and ``cas_ratio_pool`` the ``pool`` one's; ``cas_panel_mean`` and ``cas_panel_min`` the mean and
the minimum of ``cas`` over the architectures. A CAS that holds for one architecture only says more about that
classifier than about the samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.convert import to_uint8
from ..data.loader import sample_indices
from ..errors import UserError
from . import domain
from .domain import INPUT_SIZE
from .registry import device_of
from .train_domain import accuracy, train_classifier

ARCHITECTURES = tuple(domain.ARCHITECTURES)
"""The classifier panel's architectures (``cnn``, ``pool``), the first the one of ``cas``."""


@torch.no_grad()
def labelled_samples(module, n: int, seed: int, batch_size: int = 500, use_ema: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 samples of a class-conditional module with balanced labels (0, 1, ..., K-1, 0, ...)."""
    family, device = module.family, device_of(module)
    labels = family.label_tensor(n)
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        y = labels[start : start + batch_size]
        inputs = family.sample_inputs(len(y), generator=gen, labels=y)
        chunks.append(to_uint8(module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema)).cpu())
    return torch.cat(chunks), labels


def classification_accuracy_score(module, datamodule, n: int = 10000, epochs: int = 5, seed: int = 0,
                                  batch_size: int = 500, use_ema: bool = True, log=lambda message: None,
                                  architectures: Sequence[str] = ARCHITECTURES) -> dict:
    """``{"cas", "cas_real", "cas_ratio"}`` (the first architecture's), the same with ``_<architecture>`` for the
    others and, with more than one, ``cas_panel_mean`` and ``cas_panel_min``; and the protocol that made them (see
    the module docstring)."""
    family = module.family
    if not family.class_conditional:
        raise UserError(f"cas=true scores class-conditional models (cgan, acgan); this checkpoint holds a "
                        f"{type(family).__name__}")
    if not hasattr(datamodule, "load_split"):
        raise UserError(f"cas=true needs labelled train and test splits; {type(datamodule).__name__} has none")
    if n < family.num_classes or epochs < 1:
        raise UserError(f"cas_n must be at least the number of classes ({family.num_classes}) and cas_epochs at "
                        f"least 1; got {n} and {epochs}")
    unknown = [a for a in architectures if a not in domain.ARCHITECTURES]
    if not architectures or unknown:
        raise UserError(f"cas architectures must be some of {', '.join(domain.ARCHITECTURES)}; got "
                        f"{', '.join(map(str, architectures)) or 'none'}")
    train_x, train_y = datamodule.load_split("train")
    test_x, test_y = datamodule.load_split("test")
    real = sample_indices(len(train_x), n, seed)
    fake_x, fake_y = labelled_samples(module, n, seed, batch_size, use_ema)
    k = family.num_classes
    scores = {}
    for i, arch in enumerate(architectures):
        suffix = f"_{arch}" if i else ""
        for name, (x, y) in {"cas": (fake_x, fake_y), "cas_real": (train_x[real], train_y[real])}.items():
            log(f"cas: training the {arch} classifier on {n} {'generated' if name == 'cas' else 'real'} images")
            net = train_classifier(x, y, k, epochs=epochs, seed=seed, log=log, arch=arch)
            scores[name + suffix] = accuracy(net, test_x, test_y)
        scores[f"cas_ratio{suffix}"] = scores[f"cas{suffix}"] / scores[f"cas_real{suffix}"]
    if len(architectures) > 1:
        values = [scores["cas"]] + [scores[f"cas_{arch}"] for arch in architectures[1:]]
        scores["cas_panel_mean"], scores["cas_panel_min"] = sum(values) / len(values), min(values)
    names = {name: cls.__name__ for name, cls in domain.ARCHITECTURES.items()}
    protocol = {"n": n, "epochs": epochs, "seed": seed, "labels": "balanced over the classes",
                "generator": "EMA generator" if use_ema else "raw generator",
                "classifier": f"metrics.domain.{names[architectures[0]]} from scratch ({INPUT_SIZE}x{INPUT_SIZE} "
                              "grayscale input), metrics.train_domain.train_classifier's recipe",
                "architectures": {arch: f"metrics.domain.{names[arch]}" for arch in architectures},
                "real": f"{n} training images (seed {seed})", "test": f"the whole test split ({len(test_x)})"}
    return {"metrics": scores, "protocol": protocol}
