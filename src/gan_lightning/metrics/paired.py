"""Paired metrics: how close a family's outputs for held-out inputs are to their targets.

For families that generate ``spec.target`` from ``spec.source`` with aligned pairs (``paired``: image
translation from pairs, super-resolution), on images mapped from [-1, 1] to [0, 1]:

- ``psnr``: peak signal-to-noise ratio in dB (data range 1), over the whole batch;
- ``ssim``: structural similarity (Gaussian window 11, sigma 1.5; torchmetrics), mean over images;
- ``l1``: mean absolute error in [0, 1] units.

Outputs are quantised to uint8 first, as every other metric sees them (and as a user's saved images would be).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ..data.convert import to_float, to_uint8
from .registry import ScoreContext, device_of, register


def paired_metrics(outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """PSNR, SSIM and L1 of ``outputs`` against ``targets`` (N x C x H x W, uint8 or float in [-1, 1])."""
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    x = to_float(to_uint8(outputs) if outputs.is_floating_point() else outputs).add(1).div(2).double()
    y = to_float(targets).add(1).div(2).double()
    return {
        "psnr": float(peak_signal_noise_ratio(x, y, data_range=1.0)),
        "ssim": float(structural_similarity_index_measure(x, y, data_range=1.0)),
        "l1": float((x - y).abs().mean()),
    }


@torch.no_grad()
def generate_from(module, source: dict[str, Tensor], batch_size: int = 500, use_ema: bool = True) -> Tensor:
    """The module's outputs for every row of the held-out batch ``source`` (inputs by ``family.sample_inputs``)."""
    family, device = module.family, device_of(module)
    n = len(next(iter(source.values())))
    outputs = []
    for start in range(0, n, batch_size):
        part = {k: v[start : start + batch_size] for k, v in source.items()}
        inputs = family.sample_inputs(len(next(iter(part.values()))), source=part)
        outputs.append(module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema).cpu())
    return torch.cat(outputs)


@register("paired")
def paired_scores(ctx: ScoreContext) -> dict[str, float]:
    """During training and in ``evaluate.py``: the paired metrics on the fixed held-out batch."""
    if ctx.source is None:
        return {}
    outputs = generate_from(ctx.module, ctx.source, ctx.batch_size, ctx.use_ema)
    return paired_metrics(outputs, ctx.source[ctx.family.spec.target])
