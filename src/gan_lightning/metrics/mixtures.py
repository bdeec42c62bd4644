"""Mode coverage of samples from a 2-D Gaussian mixture (the data module is ``data.mixtures``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mixture_metrics(
    samples: Tensor, modes: Tensor, std: float, threshold: float = 3.0, min_count: int | None = None
) -> dict[str, float]:
    """Mode coverage of 2-D samples, as in VEEGAN / PacGAN.

    A sample is high quality if it lies within ``threshold * std`` of its nearest mode. A mode is
    covered if at least ``min_count`` high-quality samples fall on it; by default 20% of a uniform
    share of all samples, ``max(1, round(0.2 * N / K))`` (20 for PacGAN's 2,500 samples on 25
    modes). ``mode_kl`` is KL(high-quality mode histogram || uniform): 0 is perfect balance,
    log K is a single mode, NaN if no sample is high quality.
    """
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1] or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty [N, {modes.shape[1]}] tensor, got {tuple(samples.shape)}")
    k = len(modes)
    if min_count is None:
        min_count = max(1, round(0.2 * len(samples) / k))
    distance, nearest = torch.cdist(samples.detach().float().cpu(), modes.float().cpu()).min(1)
    good = distance <= threshold * std
    counts = torch.bincount(nearest[good], minlength=k).double()
    n_good = counts.sum().item()
    if n_good > 0:
        p = counts[counts > 0] / n_good
        mode_kl = (p * (p * k).log()).sum().item()
    else:
        mode_kl = math.nan
    return {
        "modes_covered": float((counts >= min_count).sum().item()),
        "high_quality_frac": n_good / len(samples),
        "mode_kl": mode_kl,
    }
