"""Differentiable augmentation of the discriminator's inputs: DiffAugment (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training") and ADA's adaptive probability (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data").

Every image the discriminator scores, real or fake, in its own steps and in the generator's, goes through the same
random augmentations first (fresh randomness on every call, per image); the augmentations are differentiable, so
the generator learns through them. The augmented images are never shown to anyone, so the generator is not pushed
to produce them (as long as the augmentations are invertible in distribution).

The augmentations (images in [-1, 1], ``(B, C, H, W)``), as in DiffAugment's reference code:

- ``color``: brightness (add U(-0.5, 0.5)), saturation (scale the distance to the per-pixel channel mean by
  U(0, 2): a no-op on grey images) and contrast (scale the distance to the image mean by U(0.5, 1.5));
- ``translation``: an integer shift of up to 1/8 of the height and width in each direction; the pixels shifted in
  are -1, the background of images in [-1, 1] (the reference code pads with 0, mid-grey);
- ``cutout``: a square of half the image's size at a random place (it may hang over the edge) set to 0, as the
  reference code does (it multiplies by a 0/1 mask in [-1, 1] space): mid-grey, unlike any background, so the
  discriminator can't mistake a cut-out piece for empty space.

``Augment(kind="ada")`` applies each of these (brightness, saturation, contrast, translation, cutout: five) to each
image with probability ``p`` and adjusts ``p`` from ADA's overfitting heuristic ``r_t = E[sign(D(x_real))]``: every
``interval`` iterations, ``p += sign(r_t - target) * images / speed`` (``images``: the real images scored since
the last adjustment, over all processes), clamped to [0, 1]. ADA's own pipeline (flips, rotations, scaling, colour
transforms, filtering) is not implemented: this is ADA's controller on DiffAugment's augmentations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

BACKGROUND = -1.0
"""What translation shifts in: the background of images in [-1, 1]."""
CUTOUT_FILL = 0.0
"""What cutout fills its square with: 0 in [-1, 1] space, as DiffAugment's reference code."""
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def brightness(x: Tensor) -> Tensor:
    """``x`` plus U(-0.5, 0.5), one draw per image."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def saturation(x: Tensor) -> Tensor:
    """The distance of each pixel to its channel mean scaled by U(0, 2), one draw per image."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    """The distance of each value to the image's mean scaled by U(0.5, 1.5), one draw per image."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: Tensor, ratio: float = TRANSLATION_RATIO, fill: float = BACKGROUND) -> Tensor:
    """Each image shifted by whole pixels, up to ``ratio`` of its height and width each way; the pixels shifted in
    are ``fill``. The other pixels keep their values exactly (a gather, differentiable w.r.t. ``x``)."""
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy  # output (i, j) reads input (i - dy, j - dx)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # (b, h, w)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(b, 1, h * w).expand(b, c, h * w)
    shifted = x.reshape(b, c, h * w).gather(2, index).view(b, c, h, w)
    return torch.where(inside.unsqueeze(1), shifted, torch.full_like(shifted, fill))


def cutout(x: Tensor, ratio: float = CUTOUT_RATIO, fill: float = CUTOUT_FILL) -> Tensor:
    """Each image with a square of ``ratio`` of its size (centred anywhere in the image, so it may be clipped by
    the edge) set to ``fill``."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - sh % 2), (b, 1, 1), device=x.device)  # the reference code's offsets
    cx = torch.randint(0, w + (1 - sw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - cy + sh // 2
    cols = torch.arange(w, device=x.device).view(1, 1, w) - cx + sw // 2
    square = (rows >= 0) & (rows < sh) & (cols >= 0) & (cols < sw)
    return torch.where(square.unsqueeze(1), torch.full_like(x, fill), x)


POLICIES: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}
"""The names ``policy`` takes and the augmentations each stands for, applied in this order."""
KINDS = ("none", "diffaugment", "ada")


class Augment(nn.Module):
    """The discriminator's input augmentation: ``forward(x)`` is ``x`` augmented (``kind="none"``: ``x`` itself).

    Args:
        kind: ``none``, ``diffaugment`` (every augmentation of ``policy`` on every image) or ``ada`` (each with
            probability ``p`` per image, ``p`` adjusted from the discriminator's outputs on reals).
        policy: comma-separated names from ``POLICIES`` (``color,translation,cutout``), or a list of them.
        target: ADA's target for ``r_t = E[sign(D(x_real))]``: ``p`` rises while ``r_t`` is above it.
        interval: iterations between adjustments of ``p`` (ADA: 4 minibatches).
        speed: images over which ``p`` can go from 0 to 1 (ADA's ``ada_kimg=500``: 500 000).
        p: ADA's initial probability.

    ADA's state is three float buffers, so that checkpoints carry it and DDP's per-iteration averaging of floating
    buffers (``GANModule._average_buffers_across_ranks``) shares it: ``p``, and the sum of the per-image
    ``sign(D(x))`` (``r_sum``) and the count of real images (``r_count``) since the last adjustment. Averaging
    divides both sums by the number of processes, so ``r_sum / r_count`` stays the mean over every process's
    images, and ``r_count`` times the number of processes is the images seen by all. Every process adjusts ``p``
    from the same (averaged) sums at the same iteration, so ``p`` stays the same everywhere. The other kinds have
    no state (and no buffers: checkpoints of runs without ADA are unchanged).
    """

    def __init__(self, kind: str = "none", policy: str | list[str] = "color,translation,cutout", target: float = 0.6,
                 interval: int = 4, speed: float = 500_000, p: float = 0.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"augment.kind must be one of {', '.join(KINDS)}; got {kind!r}")
        names = [n.strip() for n in policy.split(",")] if isinstance(policy, str) else [str(n) for n in policy]
        names = [n for n in names if n]
        unknown = [n for n in names if n not in POLICIES]
        if unknown or (kind != "none" and not names):
            raise ValueError(f"augment.policy: unknown augmentation {', '.join(map(repr, unknown)) or 'none given'}; "
                             f"choose from {', '.join(POLICIES)} (comma-separated)")
        if not (isinstance(target, (int, float)) and -1 <= target <= 1):
            raise ValueError(f"augment.target must be a number in [-1, 1]; got {target!r}")
        if not (isinstance(interval, int) and not isinstance(interval, bool) and interval >= 1):
            raise ValueError(f"augment.interval must be an integer >= 1; got {interval!r}")
        if not (isinstance(speed, (int, float)) and speed > 0):
            raise ValueError(f"augment.speed must be a positive number of images; got {speed!r}")
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise ValueError(f"augment.p must be a probability in [0, 1]; got {p!r}")
        self.kind, self.policy = kind, names
        self.target, self.interval, self.speed = float(target), int(interval), float(speed)
        self.functions = [fn for name in names for fn in POLICIES[name]] if kind != "none" else []
        if self.adaptive:
            self.register_buffer("p", torch.tensor(float(p)))
            self.register_buffer("r_sum", torch.tensor(0.0))
            self.register_buffer("r_count", torch.tensor(0.0))

    @property
    def adaptive(self) -> bool:
        return self.kind == "ada"

    def forward(self, x: Tensor) -> Tensor:
        for fn in self.functions:
            if self.adaptive:  # each augmentation on each image with probability p (p = 0: x itself, exactly)
                chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
                x = torch.where(chosen, fn(x), x)
            else:
                x = fn(x)
        return x

    @torch.no_grad()
    def observe(self, d_real: Tensor, iteration: int, first_batch: bool, boundary: float = 0.0) -> None:
        """ADA's bookkeeping in a discriminator step: first, at the first batch of every ``interval``-th iteration
        (counted from the iteration counter, so resuming keeps the rhythm), adjust ``p`` from the images observed
        since the last adjustment and start over; then add this step's reals' ``sign(D(x) - boundary)`` (one
        value per image: the mean over a patch discriminator's outputs). No-op unless ``kind="ada"``."""
        if not self.adaptive:
            return
        if first_batch and iteration > 0 and iteration % self.interval == 0 and float(self.r_count) > 0:
            self.adjust()
        signs = torch.sign(d_real.detach().float() - boundary).reshape(d_real.shape[0], -1).mean(1)
        self.r_sum += signs.sum()
        self.r_count += signs.numel()

    @torch.no_grad()
    def adjust(self) -> None:
        """``p += sign(r_t - target) * images / speed``, clamped to [0, 1]; then the sums start over."""
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        r_t = self.r_sum / self.r_count
        step = torch.sign(r_t - self.target) * self.r_count * world / self.speed
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.r_sum.zero_()
        self.r_count.zero_()

    def logs(self) -> dict[str, Tensor]:
        """ADA's ``p`` and ``r_t`` (the mean of ``sign(D(x_real))`` since the last adjustment); nothing otherwise."""
        if not self.adaptive:
            return {}
        return {"p": self.p.detach().clone(), "r_t": (self.r_sum / self.r_count.clamp_min(1)).detach()}

    def extra_repr(self) -> str:
        if self.kind == "none":
            return "none"
        ada = f", target={self.target}, interval={self.interval}, speed={self.speed:g}" if self.adaptive else ""
        return f"{self.kind}, policy={','.join(self.policy)}{ada}"
