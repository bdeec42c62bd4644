"""The one place where image values change representation: uint8 [0, 255] <-> float [-1, 1], and the uint8
resampling helpers the datasets use."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [-1, 1]; float data (points, already scaled images) passes through as float32."""
    return x.float().div_(127.5).sub_(1) if x.dtype == torch.uint8 else x.float()


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8 [0, 255]: ``round((x + 1) * 127.5)``, clamped (the metrics' quantisation)."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def float_op(x: Tensor, fn, chunk: int = 4096) -> Tensor:
    """Apply ``fn`` to uint8 images as float32, chunk by chunk, rounding back to uint8."""
    parts = [fn(x[i : i + chunk].float()).round_().clamp_(0, 255).to(torch.uint8) for i in range(0, len(x), chunk)]
    return torch.cat(parts)


def luminance(x: Tensor) -> Tensor:
    """RGB -> 1 channel with ITU-R 601 weights (as PIL's ``convert("L")``)."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return float_op(x, lambda f: (f * weights).sum(1, keepdim=True))


def resize(x: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of uint8 images to ``size`` x ``size``."""
    return float_op(x, lambda f: F.interpolate(f, size=(size, size), mode="bilinear", antialias=True))
