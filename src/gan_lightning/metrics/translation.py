"""Unpaired translation metrics (CycleGAN): is a translation of the target domain, does it keep the input's
shape, and does the cycle come back through real images, in both directions (``ab``: A -> B, ``ba``: B -> A).

On the fixed held-out images of both domains (``fixed_batch``: ``a``, ``b`` and, where the data has classes,
their labels ``y_a``, ``y_b``):

- ``target_share_ab``: the share of translations A -> B that the domain classifier assigns to domain B's class
  (the FCN-score of Pix2Pix/CycleGAN, with the package's classifier); ``baseline_target_share_ab``: the same for
  the identity map (the untranslated inputs);
- ``iou_ab``: correspondence, the mean IoU of the foreground masks (pixels brighter than the data's
  ``foreground_threshold`` of 255: dark-background data such as Fashion-MNIST) of each input and its translation.
  A generator that draws an unrelated target image scores the IoU of random pairs;
- ``cycle_l1_a``: mean |F(G(a)) - a| in [0, 1] units; ``cycle_l1_a_quantised``: the same with G(a) saved as
  uint8 and given Gaussian noise of ``NOISE_LEVELS`` grey levels before F reads it. A cycle that only closes
  through low-amplitude signals hidden in G(a) (Chu et al. 2017, "CycleGAN, a master of steganography") fails it;
- ``fid_domain_ba``: FID in the domain classifier's space of the B -> A translations against the held-out A
  images (the A -> B FID is the package's ``fid_domain``, against domain B's reference images).

With a classifier panel (``registry.panel_scores``), ``target_share_ab`` / ``_ba`` are also given by each member
(``target_share_ab_domain_b``, ...) with the panel's mean, minimum and agreement (``target_share_ab_panel_mean``,
``_panel_min``, ``_panel_agree``), and ``fid_domain_ba`` in each member's space (``fid_domain_b_ba``, ...). The
baselines are scored by the primary classifier only.

Translations are made by the sampling generator (the EMA copy where there is one) in eval mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.convert import to_float, to_uint8
from .core import fid
from .reference import Reference
from .registry import ScoreContext, apply, device_of, panel_predictions, panel_scores, register

NOISE_LEVELS = 1.0  # standard deviation of the noise added to the quantised intermediate image, in grey levels


@torch.no_grad()
def translate(module, images: Tensor, direction: str, batch_size: int = 500, use_ema: bool = True) -> Tensor:
    """``images`` (float in [-1, 1]) translated in ``direction`` (``AtoB`` or ``BtoA``), on the module's device,
    by its sampling generator in eval mode; returned on the CPU."""
    net = module.sampling_generator if use_ema else module.family.generator
    device, was_training = device_of(module), net.training
    net.eval()
    try:
        return torch.cat([net(images[i : i + batch_size].to(device), direction).float().cpu()
                          for i in range(0, len(images), batch_size)])
    finally:
        net.train(was_training)


def foreground_iou(x: Tensor, y: Tensor, threshold: int) -> float:
    """Mean IoU of the masks ``grey > threshold`` of uint8 (or [-1, 1] float) image batches ``x`` and ``y``; an
    image pair with both masks empty counts 1."""
    def mask(images: Tensor) -> Tensor:
        u = to_uint8(images) if images.is_floating_point() else images
        return u.float().mean(1) > threshold

    mx, my = mask(x), mask(y)
    inter, union = (mx & my).flatten(1).sum(1).float(), (mx | my).flatten(1).sum(1).float()
    return float(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean())


def quantise_with_noise(images: Tensor, generator: torch.Generator) -> Tensor:
    """[-1, 1] images as a saved uint8 file would hold them, plus Gaussian noise of ``NOISE_LEVELS`` grey levels."""
    noise = torch.randn(images.shape, generator=generator) * (NOISE_LEVELS / 127.5)
    return (to_float(to_uint8(images)) + noise).clamp(-1, 1)


def _domain_fid(ctx: ScoreContext, outputs: Tensor, real: Tensor) -> dict[str, float]:
    """FID of ``outputs`` against ``real`` in the domain classifier's space (``fid_domain``) and in each panel
    member's (``fid_domain_b``, ...)."""
    values = {}
    for space in (s for s in ctx.spaces if s.classes):
        real_features, _ = space.extract(to_uint8(real))
        fake_features, _ = space.extract(to_uint8(outputs))
        values[f"fid{space.suffix}"] = fid(fake_features.cpu(), Reference(real_features.cpu(), None, {}))
    return values


def _target_class(labels: Tensor) -> int:
    return int(labels.mode().values)


@register("unpaired")
def translation_scores(ctx: ScoreContext) -> dict[str, float]:
    """The metrics of the module docstring, both directions, on ``ctx.source``."""
    if ctx.source is None:
        return {}
    family, source = ctx.family, ctx.source
    keys = {"a": family.key_a, "b": family.key_b}
    threshold = getattr(ctx.datamodule, "foreground_threshold", None)
    noise = torch.Generator().manual_seed(ctx.seed)
    values: dict[str, float] = {}
    for src, dst, direction, back in (("a", "b", "AtoB", "BtoA"), ("b", "a", "BtoA", "AtoB")):
        tag = src + dst
        x = to_float(source[keys[src]])
        out = translate(ctx.module, x, direction, ctx.batch_size, ctx.use_ema)
        rec = translate(ctx.module, out, back, ctx.batch_size, ctx.use_ema)
        rec_q = translate(ctx.module, quantise_with_noise(out, noise), back, ctx.batch_size, ctx.use_ema)
        values[f"cycle_l1_{src}"] = float((rec - x).abs().mean() / 2)
        values[f"cycle_l1_{src}_quantised"] = float((rec_q - x).abs().mean() / 2)
        if threshold is not None:
            values[f"iou_{tag}"] = foreground_iou(x, out, threshold)
        labels = source.get(f"y_{keys[dst]}")
        panel = ctx.classifiers()
        if panel and labels is not None:
            target, device = _target_class(labels), device_of(ctx.module)
            predicted = panel_predictions(panel, out, ctx.batch_size, device)
            values.update(panel_scores(f"target_share_{tag}", [name for name, _ in panel], predicted, target))
            predicted = apply(panel[0][1], x, ctx.batch_size, device).argmax(1)  # the baseline: primary only
            values[f"baseline_target_share_{tag}"] = float((predicted == target).float().mean())
        if direction == "BtoA":
            values.update({f"{k}_ba": v for k, v in _domain_fid(ctx, out, to_float(source[keys["a"]])).items()})
    return values
