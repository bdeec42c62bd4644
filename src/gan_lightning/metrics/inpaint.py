"""Inpainting scores: how well the hole is filled, on the hole alone (for families with ``inpainting``).

On the held-out batch (fixed images and fixed masks), for the model's completions and for each of the family's
baselines (``paired.baselines_of``: the mean fill, biharmonic inpainting), images mapped from [-1, 1] to [0, 1]
and quantised to uint8 first as every metric sees them:

- ``psnr_hole``: 10 log10(1 / MSE) with the MSE over the missing pixels of each image (every channel), averaged
  over images;
- ``ssim_hole``: torchmetrics' SSIM map (Gaussian window 11, sigma 1.5) averaged over the missing pixels of each
  image, then over images (a window centred in the hole reaches past its edge: the one score that sees some known
  pixels, as structure at the seam matters);
- ``l1_hole``: the mean absolute error over the missing pixels.

The whole-image scores (``psnr``, ``ssim``, ``l1``, ``class_kept``: the share of completed images the domain
classifier puts in the original's class) and fid_domain come from ``paired`` and the feature spaces as for any
paired family.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from ..data.convert import to_float, to_uint8
from ..data.inpaint import split_input
from .paired import SSIM_CHUNK, baseline_outputs, baselines_of, generate_from
from .registry import ScoreContext, register


def hole_metrics(outputs: Tensor, targets: Tensor, masks: Tensor) -> dict[str, float]:
    """PSNR, SSIM and L1 over the missing pixels (``masks``: N x 1 x H x W, 1 = missing) of ``outputs`` against
    ``targets`` (float in [-1, 1] or uint8)."""
    x = to_float(to_uint8(outputs) if outputs.is_floating_point() else outputs).add(1).div(2).double()
    y = to_float(to_uint8(targets) if targets.is_floating_point() else targets).add(1).div(2).double()
    m = (masks > 0.5).double()
    pixels = (m.flatten(1).sum(1) * x.shape[1]).clamp(min=1)
    err = (x - y) * m
    mse = err.square().flatten(1).sum(1) / pixels
    psnr = (10 * torch.log10(1 / mse.clamp(min=1e-10))).clamp(max=100)
    ssim = []
    for i in range(0, len(x), SSIM_CHUNK):
        _, full = structural_similarity_index_measure(x[i : i + SSIM_CHUNK], y[i : i + SSIM_CHUNK], data_range=1.0,
                                                      reduction="none", return_full_image=True)
        mm = m[i : i + SSIM_CHUNK]
        ssim.append((full * mm).flatten(1).sum(1) / (mm.flatten(1).sum(1) * full.shape[1]).clamp(min=1))
    return {"psnr_hole": float(psnr.mean()), "ssim_hole": float(torch.cat(ssim).mean()),
            "l1_hole": float((err.abs().flatten(1).sum(1) / pixels).mean())}


@register("inpainting")
def inpainting_scores(ctx: ScoreContext) -> dict[str, float]:
    """The hole scores of the model and of every baseline, on the fixed held-out batch."""
    if ctx.source is None:
        return {}
    family = ctx.family
    targets, masks = ctx.source[family.spec.target], split_input(ctx.source[family.spec.source])[1]
    values = hole_metrics(generate_from(ctx.module, ctx.source, ctx.batch_size, ctx.use_ema), targets, masks)
    for prefix, (_, fn) in baselines_of(family).items():
        base = hole_metrics(baseline_outputs(ctx, prefix, fn), targets, masks)
        values.update({f"{prefix}_{k}": v for k, v in base.items()})
    return values
