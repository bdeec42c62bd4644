"""Penalties on the discriminator's input gradient, correct under a GradScaler."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(
    discriminator: nn.Module, real: Tensor, fake: Tensor, grad_scale: float | None = None, **kwargs
) -> Tensor:
    """Mean of (||grad D(x_hat)||_2 - 1)^2 over random interpolates (Gulrajani et al. 2017).

    Under a GradScaler (``grad_scale`` = its current scale) the gradient is taken of the *scaled* output, so it
    cannot underflow in float16, and divided by the scale before the norm: PyTorch's AMP recipe for gradient
    penalties. ``kwargs`` (class labels, say) are passed on to the discriminator.
    """
    real, fake = real.detach(), fake.detach().to(real.dtype)  # under autocast G's output may be half precision
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(real, fake, alpha).requires_grad_(True)
    out = discriminator(x_hat, **kwargs)
    scale = 1.0 if grad_scale is None else float(grad_scale)
    (grad,) = torch.autograd.grad(outputs=(out.float() * scale).sum(), inputs=x_hat, create_graph=True)
    grad = grad.float() / scale
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
