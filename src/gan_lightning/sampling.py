"""Drawing samples from a trained generator (``generate.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from .callbacks import render_points, to_uint8_grid
from .checkpoints import load_module
from .errors import UserError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 [0, 255]."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def resolve_label(family, label: int | str | None, class_names: list[str] | None = None) -> int | None:
    """``label`` (a class index, or a class name from the training data) as a class index of ``family``; a
    ``UserError`` for an unconditional model or an unknown class."""
    if label is None:
        return None
    if not getattr(family, "conditional", False):
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


def generate(ckpt: str, n: int, out: str, seed: int = 0, batch_size: int = 500, use_ema: bool = True,
             device: str = "cpu", label: int | str | None = None) -> dict:
    """Write ``n`` samples from the checkpoint's (EMA) generator to ``out`` (.npz, key ``images``: uint8 N×C×H×W,
    or ``points``: float32 N×2 for 2-D data) and a PNG grid of the first 64 beside it.

    Conditional models (``family.conditional``): ``label`` (a class index or name) gives ``n`` samples of that
    class; ``None`` gives the classes in turn (0, 1, ..., K-1, 0, ...), balanced. Their labels are saved too
    (key ``labels``: int64 N)."""
    if n <= 0:
        raise UserError(f"n must be a positive integer; got {n}")
    out_path = Path(out)
    if out_path.suffix != ".npz":
        raise UserError(f"out must be a .npz file; got {out}")
    module = load_module(ckpt).to(device)
    family = module.family
    label = resolve_label(family, label, module.config.get("data", {}).get("class_names"))
    labels = family.label_tensor(n, label) if family.conditional else None
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        if labels is None:
            inputs = family.sample_inputs(size, generator=gen)
        else:
            inputs = family.sample_inputs(size, generator=gen, labels=labels[start : start + size])
        chunks.append(module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema).cpu())
    samples = torch.cat(chunks)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    grid_path = out_path.with_suffix(".png")
    extra = {} if labels is None else {"labels": labels.numpy()}
    if samples.dim() == 2:
        np.savez_compressed(out_path, points=samples.numpy().astype(np.float32), **extra)
        write_png(render_points(samples), str(grid_path))
    else:
        np.savez_compressed(out_path, images=to_uint8(samples).numpy(), **extra)
        write_png(to_uint8_grid(samples[:64]), str(grid_path))
    return {"out": str(out_path), "grid": str(grid_path), "n": n, "iteration": module.iteration, "label": label}
