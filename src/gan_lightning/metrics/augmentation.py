"""Do a GAN's synthetic images help a classifier that has few labelled images? (``augmentation_gain.py``)

The arms, each a fixed small classifier trained from scratch and tested on the real test split:
- ``real``: the labelled real subset alone (the GAN's own training images);
- ``real+<r>x``: the real subset plus ``r`` times as many synthetic images (balanced over the classes);
- ``synthetic``: the synthetic images alone (the classification accuracy score, CAS; Ravuri & Vinyals 2019).
And GAN-test (Shmelkov et al. 2018): the ``real`` arm's classifier scoring the synthetic images against the
labels they were generated for.

Protocol: the domain classifier's architecture (``metrics.domain.DomainClassifier``), trained for a fixed number of
``steps`` in every arm (so that more data is not more compute; by default ``auto_steps`` of the real subset: 20
passes over it, at least ``MIN_STEPS``): batches of 64 drawn with replacement, AdamW with
a one-cycle schedule, label smoothing 0.05, and the standard augmentation in every arm (random shifts of up to
2 pixels, horizontal flips). A replicate is one synthetic dataset (one GAN, its own real subset) and one classifier
seed; the same seed initialises every arm, so the arms' differences are paired. The real subset is the one the GAN
trained on (rebuilt from its checkpoint); neither the GAN, the confidence filter of ``synthesize.py`` nor any
classifier here sees the test split until the final accuracy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .domain import ARCHITECTURES, preprocess
from .train_domain import _shift, accuracy

MIN_STEPS = 500
"""The fewest training steps of an arm's classifier (batch 64)."""
EPOCHS = 20
"""Passes over the real subset that set the steps of every arm (``auto_steps``)."""
BATCH = 64

RATIOS = (0.5, 1.0, 3.0)
"""Synthetic images added, as a multiple of the real subset's size."""

def auto_steps(n_real: int) -> int:
    """The steps of every arm's classifier for a real subset of ``n_real`` images: ``EPOCHS`` passes over it at
    batch ``BATCH``, at least ``MIN_STEPS``."""
    return max(MIN_STEPS, math.ceil(EPOCHS * n_real / BATCH))


def fit_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, steps: int, seed: int = 0,
                   batch_size: int = BATCH, lr: float = 2e-3, arch: str = "cnn") -> torch.nn.Module:
    """The arms' classifier (module docstring) trained on uint8 images ``x`` with labels ``y``, any number of
    them (batches are drawn with replacement)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ARCHITECTURES[arch](num_classes=num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    inputs = preprocess(x)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(inputs), (batch_size,), generator=gen)
        batch = _shift(inputs[idx], 2, gen)
        flip = torch.rand(batch_size, generator=gen) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)
        loss = F.cross_entropy(net(batch), y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def label_confidence(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000
                     ) -> torch.Tensor:
    """The classifier's softmax probability of each image's label ``y`` (uint8 images)."""
    return torch.cat([net(preprocess(x[i : i + batch_size])).softmax(1).gather(1, y[i : i + batch_size, None])[:, 0]
                      for i in range(0, len(x), batch_size)])


def balanced_take(y: torch.Tensor, n: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` items of labels ``y``, as even over the classes as ``y`` allows, drawn by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    per_class = [(y == c).nonzero().flatten() for c in range(num_classes)]
    per_class = [members[torch.randperm(len(members), generator=gen)] for members in per_class]
    order = torch.cat([torch.stack([m[i] for m in per_class if i < len(m)])
                       for i in range(max(len(m) for m in per_class))])  # round-robin over the classes
    return order[:n]


def mean_interval(values: Sequence[float]) -> dict:
    """``{"mean", "ci95", "values"}``: the mean and the half-width of its 95% Student-t interval (``None`` for a
    single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": None, "values": list(values)}
    from scipy.stats import t as student_t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = float(student_t.ppf(0.975, n - 1))
    return {"mean": mean, "ci95": t * sd / math.sqrt(n), "values": list(values)}


def arms_of(real: tuple[torch.Tensor, torch.Tensor], synthetic: tuple[torch.Tensor, torch.Tensor],
            num_classes: int, ratios: Sequence[float], seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The training sets of the arms (module docstring)."""
    (rx, ry), (sx, sy) = real, synthetic
    arms = {"real": (rx, ry)}
    for r in ratios:
        n = round(r * len(rx))
        if n > len(sx):
            raise ValueError(f"real+{r:g}x needs {n} synthetic images, the dataset has {len(sx)}")
        take = balanced_take(sy, n, num_classes, seed)
        arms[f"real+{r:g}x"] = (torch.cat([rx, sx[take]]), torch.cat([ry, sy[take]]))
    arms["synthetic"] = (sx, sy)
    return arms


def replicate(real: tuple[torch.Tensor, torch.Tensor], synthetic: tuple[torch.Tensor, torch.Tensor],
              test: tuple[torch.Tensor, torch.Tensor], num_classes: int, ratios: Sequence[float] = RATIOS,
              steps: int | None = None, seed: int = 0, log: Callable[[str], None] = lambda m: None) -> dict[str, float]:
    """One replicate: every arm's test accuracy, and ``gan_test``; ``steps`` (None: ``auto_steps``) for every
    arm."""
    steps = steps or auto_steps(len(real[0]))
    scores = {}
    for name, (x, y) in arms_of(real, synthetic, num_classes, ratios, seed).items():
        log(f"training the {name} arm's classifier on {len(x)} images (seed {seed}, {steps} steps)")
        net = fit_classifier(x, y, num_classes, steps=steps, seed=seed)
        scores[name] = accuracy(net, *test)
        if name == "real":
            scores["gan_test"] = accuracy(net, *synthetic)
    return scores


def neighbours(real: tuple[torch.Tensor, torch.Tensor], synthetic: tuple[torch.Tensor, torch.Tensor],
               test: tuple[torch.Tensor, torch.Tensor], num_classes: int, cap: int = 1000, seed: int = 0
               ) -> dict[str, float]:
    """Where the synthetic images lie beside the generator's real subset, against held-out real images (the test
    split) as the yardstick, by pixel distance (L2 on [0, 1]) within each class; per class, as many synthetic as
    test images (at most ``cap``, drawn by ``seed``):

    - ``nn_ratio``: the synthetic images' median distance to their nearest subset image over the test images'
      (below 1: nearer the training images than new real images are; copies give about 0);
    - ``near_copies``: the share of synthetic images nearer their nearest subset image than 95% of test images are
      to theirs (0.05 for images as new as the test split's);
    - ``reached``: the share of the subset that is some synthetic image's nearest neighbour, and ``reached_test``
      the same for the test images (a generator that reproduces a few of its images reaches few);
    - ``spread``: the mean distance between two synthetic images of a class over the same for test images (below
      1: less varied than the real class).
    """
    gen = torch.Generator().manual_seed(seed)

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float() / 255

    near_syn, near_test, copies, reached, reached_test, spread_syn, spread_test = [], [], [], [], [], [], []
    for c in range(num_classes):
        sub = flat(real[0][real[1] == c])
        syn, tst = flat(synthetic[0][synthetic[1] == c]), flat(test[0][test[1] == c])
        k = min(len(syn), len(tst), cap)
        if len(sub) == 0 or k < 2:
            continue
        syn = syn[torch.randperm(len(syn), generator=gen)[:k]]
        tst = tst[torch.randperm(len(tst), generator=gen)[:k]]
        d_syn, i_syn = torch.cdist(syn, sub).min(1)
        d_test, i_test = torch.cdist(tst, sub).min(1)
        near_syn.append(d_syn)
        near_test.append(d_test)
        copies.append(d_syn < torch.quantile(d_test, 0.05))
        reached.append(len(i_syn.unique()) / len(sub))
        reached_test.append(len(i_test.unique()) / len(sub))
        pairs = ~torch.eye(k, dtype=torch.bool)
        spread_syn.append(torch.cdist(syn, syn)[pairs].mean())
        spread_test.append(torch.cdist(tst, tst)[pairs].mean())
    if not near_syn:
        raise ValueError("neighbours: no class has subset images and at least two synthetic and test images")
    return {"nn_ratio": float(torch.cat(near_syn).median() / torch.cat(near_test).median()),
            "near_copies": float(torch.cat(copies).float().mean()),
            "reached": sum(reached) / len(reached), "reached_test": sum(reached_test) / len(reached_test),
            "spread": float(torch.stack(spread_syn).mean() / torch.stack(spread_test).mean())}


def summarise(replicates: Sequence[dict[str, float]]) -> dict:
    """Each arm's mean and 95% interval over the replicates, and each augmented arm's paired gain over ``real``
    (``gain_<arm>``: mean and interval of the per-replicate differences)."""
    names = list(replicates[0])
    out = {name: mean_interval([r[name] for r in replicates]) for name in names}
    for name in names:
        if name.startswith("real+") or name == "synthetic":
            out[f"gain_{name}"] = mean_interval([r[name] - r["real"] for r in replicates])
    return out


def load_synthetic(path: str, data_dir: str, test: str | None = None) -> dict:
    """A dataset written by ``synthesize.py`` (a folder or a zip) with what it was made from: ``images`` (uint8),
    ``labels``, ``provenance``, and the generator's real subset (``real``, rebuilt from the checkpoint it names)
    and the real test images (``test``: the data's own test split, or the labelled folder or zip ``test``, which a
    generator trained on a folder needs)."""
    import json

    from ..data.folders import labelled_images
    from ..data.sources import ImageSource
    from ..errors import UserError
    from ..train.checkpoints import read_checkpoint
    from .domain import sha256_file
    from .evaluation import infer_data

    source = ImageSource(path, what="synthetic")
    text = source.read_text("provenance.json")
    if text is None:
        raise UserError(f"synthetic: {path} has no provenance.json, so it was not written by synthesize.py: give "
                        "a dataset that synthesize.py wrote (its record names the generator and its real images)")
    provenance = json.loads(text)
    ckpt = provenance["checkpoint"]["path"]
    if not os.path.isfile(ckpt):
        raise UserError(f"synthetic: {path} was made from {ckpt}, which is gone: its real training subset is "
                        "rebuilt from that checkpoint; restore it or synthesize again")
    if sha256_file(ckpt) != provenance["checkpoint"]["sha256"]:
        raise UserError(f"synthetic: {ckpt} has changed since {path} was made from it (sha256 differs): "
                        "synthesize again from the checkpoint as it is now")
    datamodule = infer_data(read_checkpoint(ckpt)["gan_lightning"]["config"]["data"], data_dir)
    if not hasattr(datamodule, "train_subset"):
        raise UserError(f"synthetic: the generator of {path} trained on {type(datamodule).__name__}, which has no "
                        "labelled training images to measure with: use data=fashion_mnist, mnist, cifar10 or a "
                        "labelled data=image_folder")
    labels, names = source.labels("json")
    channels = datamodule.shape[0]
    trained_on = getattr(datamodule, "path", None)
    if test is not None:
        if trained_on and os.path.realpath(os.path.expanduser(str(test))) == os.path.realpath(trained_on):
            raise UserError(f"test: {test} is the data the generator of {path} trained on: give held-out labelled "
                            "images it never saw")
        test_images = labelled_images(test, tuple(datamodule.shape), list(names), "test")
    elif hasattr(datamodule, "load_split"):
        test_images = datamodule.load_split("test")
    else:
        raise UserError(f"test: the generator of {path} trained on the folder {trained_on}, which has no test "
                        "split: give test=DIR (labelled held-out images of the same classes, never trained on)")
    images = torch.stack([source.read(i, channels) for i in range(len(source))])
    return {"images": images, "labels": torch.tensor(labels, dtype=torch.int64), "class_names": names,
            "provenance": provenance, "real": datamodule.train_subset(), "test": test_images}


def measure(synthetic: Sequence[str], seeds: Sequence[int] = (0,), steps: int | None = None,
            ratios: Sequence[float] = RATIOS, data_dir: str = "data", test: str | None = None,
            log: Callable[[str], None] = lambda m: None) -> dict:
    """Every arm over every (synthetic dataset, classifier seed) replicate: ``replicates`` (their scores),
    ``summary`` (``summarise``), ``protocol``."""
    from ..errors import UserError

    if not synthetic or not seeds or (steps is not None and steps < 1) or any(r <= 0 for r in ratios):
        raise UserError("augmentation_gain.py needs at least one synthetic dataset and one seed, steps >= 1 (or "
                        "null) and positive ratios")
    replicates, datasets = [], []
    for path in synthetic:
        data = load_synthetic(path, data_dir, test)
        real_x, real_y = data["real"]
        k = len(data["class_names"])
        need = round(max(ratios, default=0) * len(real_x))
        if need > len(data["images"]):
            raise UserError(f"synthetic: real+{max(ratios):g}x needs {need} synthetic images and {path} holds "
                            f"{len(data['images'])}: synthesize more (per_class >= {-(-need // k)}) or lower ratios")
        near = neighbours((real_x, real_y), (data["images"], data["labels"]), data["test"], k)
        log(f"{path}: " + ", ".join(f"{n} {v:.3f}" for n, v in near.items()))
        datasets.append({"path": str(path), "real_images": len(real_x), "synthetic_images": len(data["images"]),
                         "checkpoint": data["provenance"]["checkpoint"], "options": data["provenance"]["options"],
                         "neighbours": near})
        for seed in seeds:
            scores = replicate((real_x, real_y), (data["images"], data["labels"]), data["test"], k, ratios, steps,
                               seed, log)
            replicates.append({"dataset": str(path), "seed": seed, "steps": steps or auto_steps(len(real_x)),
                               **scores})
            log(f"{path} seed {seed}: " + ", ".join(f"{n} {v:.4f}" for n, v in scores.items()))
    scores_only = [{n: v for n, v in r.items() if n not in ("dataset", "seed", "steps")} for r in replicates]
    protocol = {"classifier": "metrics.domain.DomainClassifier from scratch, metrics.augmentation.fit_classifier",
                "steps": steps or f"auto: {EPOCHS} passes over the real subset at batch {BATCH}, at least {MIN_STEPS}",
                "batch_size": BATCH, "augmentation": "random shifts <= 2 px, horizontal flips, every arm",
                "ratios": list(ratios), "seeds": list(seeds), "test": test or "the real test split, whole",
                "real": "the generator's own labelled training subset (from its checkpoint)",
                "interval": "95% Student-t over the replicates (a dataset x a classifier seed); gains paired"}
    protocol["neighbours"] = ("pixel L2 within each class, synthetic and test images against the real subset "
                              "(metrics.augmentation.neighbours), one value per dataset")
    near = {n: mean_interval([d["neighbours"][n] for d in datasets]) for n in datasets[0]["neighbours"]}
    return {"replicates": replicates, "summary": summarise(scores_only), "neighbours": near, "datasets": datasets,
            "protocol": protocol}


def table(summary: dict, near: dict | None = None) -> str:
    """The summary as a Markdown table: accuracy and gain over ``real`` per arm; with ``near`` (``measure``'s
    ``neighbours``), a second table of those."""
    def fmt(entry: dict | None) -> str:
        if entry is None:
            return "-"
        return f"{entry['mean']:.4f}" + ("" if entry["ci95"] is None else f" ± {entry['ci95']:.4f}")

    rows = ["| arm | test accuracy | gain over real |", "|---|---|---|"]
    for name in [n for n in summary if not n.startswith("gain_")]:
        rows.append(f"| {name} | {fmt(summary[name])} | {fmt(summary.get(f'gain_{name}'))} |")
    if near:
        rows += ["", "| neighbours (pixel L2, against the real subset) | synthetic |", "|---|---|"]
        rows += [f"| {name} | {fmt(entry)} |" for name, entry in near.items()]
    return "\n".join(rows)
