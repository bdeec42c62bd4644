"""Pictures of samples: uint8 grids of images, input | output | target panels, scatter plots of 2-D points."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.utils import make_grid


def to_uint8_grid(images: Tensor, nrow: int = 8) -> Tensor:
    """[-1, 1] images N×C×H×W -> one uint8 3×H×W grid (grayscale repeated to RGB)."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def render_points(points: Tensor, modes: Tensor | None = None, size: int = 256, extent: float | None = None) -> Tensor:
    """A uint8 3×size×size scatter plot of 2-D points (white) over the mixture's modes (red)."""
    points = points.detach().float().cpu()
    ref = modes if modes is not None else points
    if extent is None:
        extent = float(ref.abs().max()) * 1.5 + 1e-6
    canvas = torch.zeros(3, size, size, dtype=torch.uint8)

    def to_pixels(p: Tensor) -> Tensor:
        xy = ((p / extent + 1) * 0.5 * (size - 1)).round().long()
        keep = ((xy >= 0) & (xy < size)).all(dim=1)
        return xy[keep]

    if modes is not None:
        for dx in (-2, -1, 0, 1, 2):
            for dy in (-2, -1, 0, 1, 2):
                m = to_pixels(modes.float().cpu() + torch.tensor([dx, dy]) * extent * 2 / size)
                canvas[0, size - 1 - m[:, 1], m[:, 0]] = 255
    xy = to_pixels(points)
    canvas[:, size - 1 - xy[:, 1], xy[:, 0]] = 255
    return canvas


def panel_grid(panels: dict[str, Tensor], nrow: int = 8) -> tuple[Tensor, int]:
    """Named panels of one batch (``{"input", "output", "target"}``, each N x C x H x W in [-1, 1]) side by side:
    each example's panels next to each other, ``ceil(nrow / len(panels))`` examples a grid row; returned as one
    image batch and the images per grid row. One panel: the samples as they are."""
    images = list(panels.values())
    if len(images) == 1:
        return images[0], nrow
    channels = max(p.shape[1] for p in images)
    size = max(p.shape[-1] for p in images)
    same = [torch.nn.functional.interpolate(p.float(), size=(size, size), mode="nearest") if p.shape[-1] != size
            else p.float() for p in images]
    same = [p.expand(-1, channels, -1, -1) if p.shape[1] != channels else p for p in same]
    per_row = -(-nrow // len(same))  # examples per grid row: about nrow images wide
    return torch.stack(same, 1).flatten(0, 1), per_row * len(same)
