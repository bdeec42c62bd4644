"""A labelled dataset from a class-conditional generator (``synthesize.py``): ``per_class`` images of every class,
written in a format the data modules read, with a record of how they were made.

``format=folder``: ``out/<k>_<class name>/<n>.png`` (class subfolders whose sorted order is the model's class order,
so ``data=image_folder data.path=out data.labels=subfolders`` reads the same labels) and ``out/dataset.json``
(StyleGAN2-ADA's labels, with ``class_names``: ``data.labels=auto`` reads it). ``format=zip``: the same as a
prepared zip (``prepare_data.py``'s format). Either way ``provenance.json`` (in the folder, or a member of the zip)
records the checkpoint's path and sha256, the options, the seeds and the counts per class.

``filter=T`` keeps only the samples that a classifier trained on the checkpoint's own labelled training images
(never the test split) gives a probability of at least ``T`` for the label they were generated for; draws go on
until every class has ``per_class`` (at most ``MAX_DRAWS`` times that).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError

FORMATS = ("folder", "zip")
MAX_DRAWS = 50
"""With a filter: draws per class at most ``MAX_DRAWS * per_class`` before giving up."""


def check_options(out: str, per_class: Any, filter: Any = None, format: str = "folder") -> Path:
    """The checks that need no checkpoint, before anything is loaded or written (one line each)."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise UserError(f"per_class must be a positive integer (images of each class); got {per_class!r}")
    if filter is not None and (isinstance(filter, bool) or not isinstance(filter, (int, float))
                               or not 0 < filter < 1):
        raise UserError(f"filter must be a probability threshold in (0, 1), e.g. filter=0.9, or null for none; "
                        f"got {filter!r}")
    if format not in FORMATS:
        raise UserError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    path = Path(os.path.expanduser(str(out)))
    if format == "zip":
        if path.suffix != ".zip":
            raise UserError(f"out: format=zip writes a .zip file; got {out}")
        if path.exists():
            raise UserError(f"out: {path} exists: synthesize.py overwrites nothing; choose another path")
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "already holds a dataset (or other files)" if path.is_dir() else "is a file"
        raise UserError(f"out: {path} {what}: synthesize.py overwrites nothing; give a new or empty folder")
    from .outputs import check_output

    check_output(path, "out", folder=format == "folder")
    return path


def folder_name(k: int, name: str, classes: int) -> str:
    """The class subfolder of class ``k``: its index (zero-padded, so that names sort in class order) and its name
    with characters a file name cannot hold replaced."""
    return f"{k:0{len(str(classes - 1))}d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'class'}"


def synthesize(ckpt: str, per_class: int, out: str, seed: int = 0, psi: float = 1.0, filter: float | None = None,
               format: str = "folder", batch_size: int = 500, use_ema: bool = True, device: str = "cpu",
               data_dir: str = "data", filter_steps: int | None = None, log=lambda message: None) -> dict:
    """Write the dataset (module docstring); returns what was written: ``out``, ``counts`` (per class name),
    ``drawn``, ``accepted_share`` (with a filter), ``provenance``."""
    import torch

    from .data.convert import to_uint8
    from .data.png import write_plain
    from .metrics.domain import sha256_file
    from .sampling import truncation_options
    from .train.checkpoints import load_module

    path = check_options(out, per_class, filter, format)
    module = load_module(ckpt).to(device)
    family = module.family
    if not family.class_conditional:
        raise UserError(f"{ckpt}: synthesize.py needs a class-conditional model (cgan, acgan, conditional "
                        f"stylegan2) to label its images; this checkpoint holds a {type(family).__name__}: train "
                        "one with experiment=few_labels/n50 or model=cgan")
    truncation = truncation_options(family, psi)
    k = family.num_classes
    data_info = module.config.get("data", {})
    names = list(data_info.get("class_names") or [str(c) for c in range(k)])[:k]
    judge, filter_note = None, None
    if filter is not None:
        from .metrics.augmentation import label_confidence

        judge, filter_note = _filter_classifier(data_info, data_dir, k, seed, filter_steps, log)

    gen = torch.Generator().manual_seed(seed)
    kept, drawn, passed = [], [0] * k, [0] * k
    with torch.no_grad():
        for c in range(k):
            parts, have = [], 0
            while have < per_class:
                if drawn[c] >= MAX_DRAWS * per_class:
                    raise UserError(f"filter={filter}: only {have} of {drawn[c]} samples of class {names[c]} passed; "
                                    f"lower filter (or train the generator longer)")
                size = batch_size if judge is not None else min(batch_size, per_class - have)
                labels = torch.full((size,), c, dtype=torch.int64)
                inputs = family.sample_inputs(size, generator=gen, labels=labels, **truncation)
                images = to_uint8(module.generate({n: v.to(device) for n, v in inputs.items()}, use_ema=use_ema)).cpu()
                drawn[c] += size
                if judge is not None:
                    images = images[label_confidence(judge, images, labels) >= filter]
                passed[c] += len(images)  # (all of a batch is judged; the class keeps what it still needs)
                parts.append(images[: per_class - have])
                have += len(parts[-1])
            kept.append(torch.cat(parts))
            passing = f", {passed[c]} passed" if judge is not None else ""
            log(f"class {names[c]}: {per_class} images ({drawn[c]} drawn{passing})")

    sha = sha256_file(ckpt)
    provenance = {
        "checkpoint": {"path": str(Path(ckpt).resolve()), "sha256": sha, "iteration": module.iteration},
        "options": {"per_class": per_class, "seed": seed, "psi": truncation.get("psi", 1.0), "filter": filter,
                    "use_ema": use_ema, "format": format, "batch_size": batch_size},
        "class_names": names, "counts": {names[c]: per_class for c in range(k)}, "drawn": dict(zip(names, drawn)),
        "passed": dict(zip(names, passed)),
        "filter": filter_note,
        "seeds": f"one torch.Generator seeded {seed} draws every class in turn, {batch_size} samples at a time",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as scratch:
        folder = Path(scratch) / "dataset"
        folder.mkdir()
        labels = []
        for c, images in enumerate(kept):
            sub = folder_name(c, names[c], k)
            (folder / sub).mkdir()
            for i, image in enumerate(images):
                name = f"{sub}/{i:06d}.png"
                (folder / name).write_bytes(write_plain(image.permute(1, 2, 0).squeeze(2).numpy()))
                labels.append([name, c])
        (folder / "dataset.json").write_text(json.dumps({"labels": labels, "class_names": names}))
        (folder / "provenance.json").write_text(json.dumps(provenance, indent=2))
        if format == "zip":
            _as_zip(folder, path, int(kept[0].shape[-1]))
        else:
            _publish_folder(folder, path)
    accepted = None if filter is None else sum(passed) / sum(drawn)  # the filter's pass rate over every draw
    return {"out": str(path), "counts": provenance["counts"], "drawn": sum(drawn), "accepted_share": accepted,
            "provenance": provenance, "iteration": module.iteration, "format": format}


def _filter_classifier(data_info: dict, data_dir: str, num_classes: int, seed: int, steps: int | None, log):
    """The confidence filter's classifier, trained on the checkpoint's labelled training images only."""
    from .metrics.augmentation import auto_steps, fit_classifier
    from .metrics.evaluation import infer_data

    datamodule = infer_data(data_info, data_dir)
    if not hasattr(datamodule, "train_subset"):
        raise UserError(f"filter= trains a classifier on the checkpoint's labelled training images, which "
                        f"{type(datamodule).__name__} does not give; drop filter=")
    x, y = datamodule.train_subset()
    steps = steps or auto_steps(len(x))
    log(f"training the filter's classifier on the checkpoint's {len(x)} labelled training images ({steps} steps)")
    net = fit_classifier(x, y, num_classes, steps=steps, seed=seed)
    note = {"classifier": "metrics.augmentation.fit_classifier (DomainClassifier)", "steps": steps, "seed": seed,
            "trained_on": f"the checkpoint's {len(x)} labelled training images (no test images)"}
    return net, note


def _publish_folder(folder: Path, out: Path) -> None:
    if out.exists():
        if any(out.iterdir()):
            raise UserError(f"out: {out} filled up while synthesizing: synthesize.py overwrites nothing")
        out.rmdir()
    os.rename(folder, out)


def _as_zip(folder: Path, out: Path, resolution: int) -> None:
    """``folder`` as a prepared zip at ``out`` (prepare_data.py's writer), ``provenance.json`` added to it."""
    import zipfile

    from .data.prepare import prepare

    staged = folder.parent / "dataset.zip"
    prepare(folder, staged, resolution=resolution, labels="json", bad_files="error", any_resolution=True,
            progress=False)
    with zipfile.ZipFile(staged, "a") as archive:
        archive.write(folder / "provenance.json", "provenance.json")
    if out.exists():
        raise UserError(f"out: {out} appeared while synthesizing: synthesize.py overwrites nothing")
    os.rename(staged, out)
