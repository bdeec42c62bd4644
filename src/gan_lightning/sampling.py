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


def generate(ckpt: str, n: int, out: str, seed: int = 0, batch_size: int = 500, use_ema: bool = True,
             device: str = "cpu") -> dict:
    """Write ``n`` samples from the checkpoint's (EMA) generator to ``out`` (.npz, key ``images``: uint8 N×C×H×W,
    or ``points``: float32 N×2 for 2-D data) and a PNG grid of the first 64 beside it."""
    if n <= 0:
        raise UserError(f"n must be a positive integer; got {n}")
    out_path = Path(out)
    if out_path.suffix != ".npz":
        raise UserError(f"out must be a .npz file; got {out}")
    module = load_module(ckpt).to(device)
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        inputs = module.family.sample_inputs(min(batch_size, n - start), generator=gen)
        chunks.append(module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema).cpu())
    samples = torch.cat(chunks)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    grid_path = out_path.with_suffix(".png")
    if samples.dim() == 2:
        np.savez_compressed(out_path, points=samples.numpy().astype(np.float32))
        write_png(render_points(samples), str(grid_path))
    else:
        np.savez_compressed(out_path, images=to_uint8(samples).numpy())
        write_png(to_uint8_grid(samples[:64]), str(grid_path))
    return {"out": str(out_path), "grid": str(grid_path), "n": n, "iteration": module.iteration}
