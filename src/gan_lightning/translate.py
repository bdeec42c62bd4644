"""Translating user images with a trained translation model (``translate.py``): Pix2Pix in the direction it was
trained, CycleGAN either way (``direction=AtoB`` or ``BtoA``). The generators are fully convolutional, so any
image size works (the U-Net pads to a multiple of ``2**num_downs`` and crops back; the ResNet generator pads by
reflection to a multiple of 4)."""

from __future__ import annotations

import torch

from .data.convert import to_float, to_uint8
from .data.translation import DIRECTIONS
from .errors import UserError
from .image_files import plan, read_all, write_image
from .train.checkpoints import load_module


@torch.no_grad()
def translate(ckpt: str, input: str, out: str, direction: str = "AtoB", use_ema: bool = True,
              device: str = "cpu") -> dict:
    """Translate the image ``input`` (or every image in the folder ``input``) with the checkpoint's generator and
    write PNGs under the folder ``out`` (same relative names, ``.png``). Refuses, before any work, a checkpoint
    that is not a translation model, a direction it cannot go, and outputs that would overwrite files."""
    if direction not in DIRECTIONS:
        raise UserError(f"direction={direction}: must be AtoB or BtoA")
    files, targets, out_dir = plan(input, out)
    module = load_module(ckpt).to(device).eval()
    family = module.family
    directions = getattr(family, "directions", ())
    if not directions:
        raise UserError(f"ckpt: {ckpt} holds a {type(family).__name__}, not an image-to-image translation model: "
                        "translate.py needs a checkpoint of model=pix2pix or model=cyclegan")
    if direction not in directions:
        raise UserError(f"direction={direction}: a {type(family).__name__} translates {' and '.join(directions)} "
                        "only (train with data.direction=BtoA for the other way)")
    spec = family.spec
    channels = spec.shapes[spec.source if direction == "AtoB" else spec.target][0]
    net = (module.sampling_generator if use_ema else family.generator).eval()
    for image, target in zip(read_all(files, channels), targets):
        y = family.translate(to_float(image)[None].to(device), direction, net)
        write_image(target, to_uint8(y)[0])
    return {"n": len(files), "direction": direction, "out": str(out_dir)}
