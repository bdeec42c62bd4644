"""Paired metrics: how close a family's outputs for held-out inputs are to their targets.

For families that generate ``spec.target`` from ``spec.source`` with aligned pairs (``paired``: image
translation from pairs, super-resolution), on images mapped from [-1, 1] to [0, 1]:

- ``psnr``: peak signal-to-noise ratio in dB (data range 1), computed per image and averaged (as SR papers
  report it);
- ``ssim``: structural similarity (Gaussian window 11, sigma 1.5, as BasicSR and torchmetrics; the
  scikit-image default, a 7x7 uniform window, gives other values), mean over images;
- ``l1``: mean absolute error in [0, 1] units;
- ``class_kept``: where the data has class labels and a domain classifier exists, the share of outputs the
  classifier assigns to the class of their source image (a translation or upscaling must keep what the image is);
  with a classifier panel also by each member (``class_kept_domain_b``) and the panel's ``class_kept_panel_mean``,
  ``_panel_min`` and ``_panel_agree`` (``registry.panel_scores``; the baselines by the primary classifier only).

A family may ask for its field's conventions with ``paired_metric_options()``: super-resolution crops ``scale``
pixels off each border and scores RGB images on their luma (Y of ITU-R BT.601, as SR papers do). A family's
baselines (``baselines_of``: a ``baseline(inputs)`` with a ``baseline_name``, as super-resolution's bicubic
upsampling, or several from ``baselines()``, as inpainting's mean fill and biharmonic fill) get the same scores
beside its own, as ``baseline_psnr``, ``mean_fill_psnr``, ...

Outputs are quantised to uint8 first, as every other metric sees them (and as a user's saved images would be).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ..data.convert import to_float, to_uint8
from .registry import ScoreContext, device_of, panel_predictions, panel_scores, register

SSIM_CHUNK = 128  # images per SSIM call (bounds its memory)


def _luma(x: Tensor) -> Tensor:
    """[0, 1] RGB -> Y in [0, 1] (ITU-R BT.601 studio range, as MATLAB's rgb2ycbcr and BasicSR)."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * weights).sum(1, keepdim=True) + 16.0) / 255.0


def paired_metrics(outputs: Tensor, targets: Tensor, crop_border: int = 0, y_channel: bool = False
                   ) -> dict[str, float]:
    """PSNR, SSIM and L1 of ``outputs`` against ``targets`` (N x C x H x W, uint8 or float in [-1, 1]), with
    ``crop_border`` pixels cropped off each side and RGB reduced to luma if ``y_channel``."""
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    x = to_float(to_uint8(outputs) if outputs.is_floating_point() else outputs).add(1).div(2).double()
    y = to_float(targets).add(1).div(2).double()
    if crop_border:
        c = crop_border
        x, y = x[..., c:-c, c:-c], y[..., c:-c, c:-c]
    if y_channel and x.shape[1] == 3:
        x, y = _luma(x), _luma(y)
    psnr = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    # SSIM per image, in chunks: its 11x11 Gaussian convolution in float64 unfolds every pixel's window on a CPU
    # (an 11x11 window per pixel: ~8 GB for 2000 images of 28x28 at once).
    ssim = torch.cat([structural_similarity_index_measure(x[i : i + SSIM_CHUNK], y[i : i + SSIM_CHUNK],
                                                          data_range=1.0, reduction="none")
                      for i in range(0, len(x), SSIM_CHUNK)])
    return {
        "psnr": float(psnr.clamp(max=100).mean()),
        "ssim": float(ssim.mean()),
        "l1": float((x - y).abs().mean()),
    }


def baselines_of(family) -> dict[str, tuple[str, Callable[[dict[str, Tensor]], Tensor]]]:
    """The family's baselines by metric prefix: ``{prefix: (description, fn(inputs) -> outputs)}``."""
    found = dict(family.baselines()) if callable(getattr(family, "baselines", None)) else {}
    if hasattr(family, "baseline"):
        found["baseline"] = (family.baseline_name, family.baseline)
    return found


@torch.no_grad()
def generate_from(module, source: dict[str, Tensor], batch_size: int = 500, use_ema: bool = True,
                  baseline: Callable[[dict[str, Tensor]], Tensor] | None = None) -> Tensor:
    """The module's outputs for every row of the held-out batch ``source`` (inputs by ``family.sample_inputs``);
    with ``baseline`` (one of ``baselines_of``), that baseline's outputs instead."""
    family, device = module.family, device_of(module)
    n = len(next(iter(source.values())))
    outputs = []
    for start in range(0, n, batch_size):
        part = {k: v[start : start + batch_size] for k, v in source.items()}
        inputs = {k: v.to(device) for k, v in family.sample_inputs(len(next(iter(part.values()))),
                                                                   source=part).items()}
        made = baseline(inputs) if baseline is not None else module.generate(inputs, use_ema=use_ema)
        outputs.append(made.cpu())
    return torch.cat(outputs)


_BASELINES: dict[tuple, Tensor] = {}


def baseline_outputs(ctx: ScoreContext, prefix: str, fn: Callable[[dict[str, Tensor]], Tensor]) -> Tensor:
    """A baseline's outputs for the held-out batch ``ctx.source``, computed once per batch: they do not change as
    the model trains, and a classical fill (scikit-image's biharmonic inpainting) takes seconds."""
    src = ctx.source[ctx.family.spec.source]
    key = (type(ctx.family).__name__, prefix, src.data_ptr(), tuple(src.shape), float(src.double().sum()))
    if key not in _BASELINES:
        if len(_BASELINES) >= 8:
            _BASELINES.clear()
        _BASELINES[key] = generate_from(ctx.module, ctx.source, ctx.batch_size, baseline=fn)
    return _BASELINES[key]


def scores_of(ctx: ScoreContext, outputs: Tensor, panel: bool = True) -> dict[str, float]:
    """The paired metrics of ``outputs`` for ``ctx.source`` and, where there are labels and a classifier, the
    share that keeps its class: by the classifier panel (``class_kept_panel_mean``, ...) where there is one and
    ``panel``, else by the primary classifier alone (the baselines)."""
    family = ctx.family
    options = family.paired_metric_options() if hasattr(family, "paired_metric_options") else {}
    values = paired_metrics(outputs, ctx.source[family.spec.target], **options)
    classifiers = ctx.classifiers()[: None if panel else 1]
    if classifiers and "y" in ctx.source:
        predicted = panel_predictions(classifiers, outputs, ctx.batch_size, device_of(ctx.module))
        values.update(panel_scores("class_kept", [name for name, _ in classifiers], predicted, ctx.source["y"]))
    return values


@register("paired")
def paired_scores(ctx: ScoreContext) -> dict[str, float]:
    """During training and in ``evaluate.py``: the paired metrics on the fixed held-out batch (and the family's
    baseline's, where it has one)."""
    if ctx.source is None:
        return {}
    values = scores_of(ctx, generate_from(ctx.module, ctx.source, ctx.batch_size, ctx.use_ema))
    for prefix, (_, fn) in baselines_of(ctx.family).items():
        base = scores_of(ctx, baseline_outputs(ctx, prefix, fn), panel=False)
        values.update({f"{prefix}_{k}": v for k, v in base.items()})
    return values
