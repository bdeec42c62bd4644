"""Perceptual path length in the domain classifier's feature space (``ppl_domain``), for families with a W space.

The protocol of StyleGAN2 (Karras et al. 2020; ``ppl_wend`` in its code), with the domain classifier in place of
LPIPS: for ``n`` pairs (z0, z1) (and, for a conditional model, one label per pair), the images at t = 0 and at
t = eps on the straight line in W from w(z0) to w(z1), with eps = 1e-4 and the generator's noise held constant;
the distance is the squared difference of their unit-normalised domain features divided by eps^2 (LPIPS does the
same with channel-normalised VGG activations, summed over layers with learned weights); the distances below the
1st and above the 99th percentile are dropped and the rest averaged. Lower: a smoother mapping from W to images.

The images are compared in float, before any uint8 rounding (a step of 1e-4 in W moves pixels by far less than a
grey level). The value depends on the feature network: compare ``ppl_domain`` only with ``ppl_domain``, never with
published PPL figures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import domain
from .registry import ScoreContext, device_of, register

EPSILON = 1e-4
DROP_PERCENT = 1  # the lowest and highest 1% of the distances are dropped


def filtered_mean(distances: Tensor, percent: float = DROP_PERCENT) -> float:
    """The mean of ``distances`` within their [percent, 100 - percent] percentiles (StyleGAN2's filter: 'lower'
    and 'higher' interpolation, so both bounds are observed values)."""
    d = distances.double().numpy()
    lo = np.percentile(d, percent, method="lower")
    hi = np.percentile(d, 100 - percent, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


@torch.no_grad()
def path_distances(ctx: ScoreContext, features, n: int, eps: float = EPSILON) -> Tensor:
    """The ``n`` scaled distances ``|f(G(w0)) - f(G(lerp(w0, w1, eps)))|^2 / eps^2`` (f: unit-normalised
    ``features`` of float images)."""
    family, device = ctx.family, device_of(ctx.module)
    gen = torch.Generator().manual_seed(ctx.seed)
    out = []
    for start in range(0, n, ctx.batch_size):
        size = min(ctx.batch_size, n - start)
        inputs = family.sample_inputs(size, generator=gen)
        inputs["z_end"] = family.noise(size, generator=gen)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        a = ctx.module.generate({**inputs, "t": torch.zeros(size, device=device)}, use_ema=ctx.use_ema)
        b = ctx.module.generate({**inputs, "t": torch.full((size,), eps, device=device)}, use_ema=ctx.use_ema)
        fa, fb = F.normalize(features(a), dim=1), F.normalize(features(b), dim=1)
        out.append(((fa - fb).square().sum(1) / eps**2).cpu())
    return torch.cat(out)


@register("style_based")
def path_length_scores(ctx: ScoreContext) -> dict[str, float]:
    """``ppl_domain`` over ``ctx.n_samples`` pairs, where the evaluator has the domain classifier."""
    space = next((s for s in ctx.spaces if s.name == "domain"), None)
    if space is None:
        return {}
    net = space.network

    def features(images: Tensor) -> Tensor:
        return net.features(domain.preprocess_float(images).to(next(net.parameters()).device))[0].float()

    return {"ppl_domain": filtered_mean(path_distances(ctx, features, ctx.n_samples))}
