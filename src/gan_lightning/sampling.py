"""Drawing samples from a trained generator (``generate.py``): from noise (labels, codes), or from held-out data
for families that generate from a source."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from .data.convert import to_uint8
from .errors import UserError
from .outputs import atomic_write, check_output
from .render import panel_grid, render_points, to_uint8_grid
from .train.checkpoints import load_module


def resolve_label(family, label: int | str | None, class_names: list[str] | None = None) -> int | None:
    """``label`` (a class index, or a class name from the training data) as a class index of ``family``; a
    ``UserError`` for an unconditional model or an unknown class."""
    if label is None:
        return None
    if not family.class_conditional:
        raise UserError(f"label={label}: this checkpoint's model is not class-conditional (train with model=cgan or "
                        "model=acgan), so its samples cannot be asked for a class; drop label=")
    k = family.num_classes
    names = list(class_names or [])
    listing = ", ".join(f"{i} {name}" for i, name in enumerate(names)) if names else f"0 to {k - 1}"
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        if label not in names:
            raise UserError(f"label={label}: no such class; the classes are {listing}")
        return names.index(label)
    try:
        index = int(label)
        valid = not isinstance(label, bool) and index == float(label) and 0 <= index < k
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise UserError(f"label={label}: not a class of this model; the classes are {listing}")
    return index


def has_truncation(family) -> bool:
    """The family's ``sample_inputs`` takes a truncation ``psi`` (StyleGAN2)."""
    return "psi" in inspect.signature(family.sample_inputs).parameters


def truncation_options(family, psi) -> dict:
    """``{"psi": psi}`` for a family whose ``sample_inputs`` takes a truncation ``psi`` (StyleGAN2), ``{}`` for
    another family at ``psi=1`` (no truncation); a ``UserError`` for a psi outside [0, 1], or below 1 for a family
    without truncation."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0 <= psi <= 1:
        raise UserError(f"psi must be a number in [0, 1] (1: no truncation, 0: the mean image); got {psi!r}")
    if has_truncation(family):
        return {"psi": float(psi)}
    if psi != 1:
        raise UserError(f"psi={psi}: this checkpoint's model ({type(family).__name__}) has no truncation trick "
                        "(model=stylegan2 has one); drop psi=")
    return {}


def generate(ckpt: str, n: int, out: str, seed: int = 0, batch_size: int = 500, use_ema: bool = True,
             device: str = "cpu", label: int | str | None = None, data_dir: str = "data", psi: float = 1.0) -> dict:
    """Write ``n`` samples from the checkpoint's (EMA) generator to ``out`` (.npz, key ``images``: uint8 N×C×H×W,
    or ``points``: float32 N×2 for 2-D data) and a PNG grid of the first 64 beside it.

    Class-conditional families: ``label`` (a class index or name) gives ``n`` samples of that class; ``None``
    gives the classes in turn (0, 1, ..., K-1, 0, ...), balanced. Their labels are saved too (key ``labels``:
    int64 N). Families that generate from data (``family.needs_source``) translate the first ``n`` examples of
    the data's held-out ``fixed_batch(n, "test", seed)`` (found from the checkpoint, under ``data_dir``): the
    outputs are ``images``, with ``inputs``, ``targets`` where the data is paired, and the inputs' ``labels`` where
    the data has classes; the grid shows the family's panels (input | output | target). ``psi`` < 1: the truncation
    trick, for the families that have one (StyleGAN2)."""
    if n <= 0:
        raise UserError(f"n must be a positive integer; got {n}")
    out_path = Path(out)
    if out_path.suffix != ".npz":
        raise UserError(f"out must be a .npz file; got {out}")
    check_output(out_path, "out")
    module = load_module(ckpt).to(device)
    family = module.family
    truncation = truncation_options(family, psi)
    label = resolve_label(family, label, module.config.get("data", {}).get("class_names"))
    labels = family.label_tensor(n, label) if family.class_conditional else None
    source = None
    if family.needs_source:
        from .metrics.evaluation import infer_data

        source = infer_data(module.config.get("data", {}), data_dir).fixed_batch(n, split="test", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        options = dict(truncation) if labels is None else {"labels": labels[start : start + size], **truncation}
        part = None if source is None else {k: v[start : start + size] for k, v in source.items()}
        inputs = family.sample_inputs(size, generator=gen, source=part, **options)
        chunks.append(module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema).cpu())
    samples = torch.cat(chunks)
    grid_path = out_path.with_suffix(".png")
    extra = {} if labels is None else {"labels": labels.numpy()}
    if samples.dim() == 2:
        arrays, grid = {"points": samples.numpy().astype(np.float32), **extra}, render_points(samples)
    elif source is not None:
        spec = family.spec
        arrays = {"images": to_uint8(samples).numpy(), "inputs": to_uint8(source[spec.source]).numpy()}
        if family.paired:  # unpaired data's target rows are unrelated to the inputs
            arrays["targets"] = to_uint8(source[spec.target]).numpy()
        labels_key = next((k for k in ("y", f"y_{spec.source}") if k in source), None)
        if labels_key is not None:  # the inputs' classes
            arrays["labels"] = source[labels_key].numpy()
        first = {k: v[:16] for k, v in source.items()}
        images, nrow = panel_grid(family.visuals(family.sample_inputs(len(samples[:16]), source=first),
                                                 samples[:16]))
        grid = to_uint8_grid(images, nrow)
    else:
        arrays, grid = {"images": to_uint8(samples).numpy(), **extra}, to_uint8_grid(samples[:64])
    atomic_write(out_path, lambda tmp: np.savez_compressed(tmp, **arrays))
    atomic_write(grid_path, lambda tmp: write_png(grid, str(tmp)))
    return {"out": str(out_path), "grid": str(grid_path), "n": n, "iteration": module.iteration, "label": label,
            "psi": truncation.get("psi", 1.0)}
