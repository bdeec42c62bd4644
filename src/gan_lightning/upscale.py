"""Upscaling user images with a trained super-resolution model (``upscale.py``).

The generator is fully convolutional, so any image size works; to keep memory bounded, an image is processed in
tiles of ``tile`` x ``tile`` input pixels, each run with ``overlap`` extra pixels of context on every side that are
cut off again. When ``overlap`` covers the generator's receptive field, the result equals upscaling the whole
image at once.
"""

from __future__ import annotations

from collections.abc import Callable
import torch
from torch import Tensor

from .data.convert import to_float, to_uint8
from .errors import UserError
from .image_files import plan, read_all, write_image
from .train.checkpoints import load_module


@torch.no_grad()
def tiled(net: Callable[[Tensor], Tensor], image: Tensor, scale: int, tile: int = 128, overlap: int = 16) -> Tensor:
    """``net(image)`` for a 1 x C x H x W ``image``, computed tile by tile (see the module docstring)."""
    _, c, h, w = image.shape
    out = image.new_zeros(1, c, h * scale, w * scale)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            part = net(image[:, :, t0:t1, l0:l1])
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = part[
                :, :, (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale]
    return out


def upscale(ckpt: str, input: str, out: str, tile: int = 128, overlap: int = 16, use_ema: bool = True,
            device: str = "cpu") -> dict:
    """Upscale the image ``input`` (or every image in the folder ``input``) with the checkpoint's (EMA) generator
    and write PNGs under the folder ``out`` (same relative names, ``.png``). Refuses, before any work, a
    checkpoint that is not a super-resolution model and outputs that would overwrite existing files."""
    if tile < 1 or overlap < 0:
        raise UserError(f"tile must be >= 1 and overlap >= 0; got tile={tile}, overlap={overlap}")
    files, targets, out_dir = plan(input, out)
    module = load_module(ckpt).to(device).eval()
    family = module.family
    scale = getattr(family, "scale", None)
    if not isinstance(scale, int) or family.spec.source is None:
        raise UserError(f"ckpt: {ckpt} holds a {type(family).__name__}, not a super-resolution model: upscale.py "
                        "needs a checkpoint of model=srgan or model=srresnet")
    net = (module.sampling_generator if use_ema else family.generator).eval()
    for image, target in zip(read_all(files, family.spec.shape[0]), targets):
        x = to_float(image)[None].to(device)
        write_image(target, to_uint8(tiled(net, x, scale, tile, overlap))[0])
    return {"n": len(files), "scale": scale, "out": str(out_dir)}
