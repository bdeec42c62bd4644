"""Filling holes in a user's images with a trained inpainting model (``inpaint.py``). The U-Net is fully
convolutional (it pads to a multiple of ``2**num_downs`` and crops back), so any image size works; the mask is a
file of the image's size (white = missing), a folder of such files with the images' names, or drawn
(``mask=center``, ``random_boxes``, ``free_form``, seeded by ``seed``) as in training."""

from __future__ import annotations

from pathlib import Path

import torch

from .data.convert import to_float, to_uint8
from .data.inpaint import MASK_KINDS, MaskOptions, draw_masks, masked_input
from .errors import UserError
from .image_files import plan, read_all, write_image
from .data.folders import IMAGE_EXTENSIONS, read_image
from .train.checkpoints import load_module


def _mask_files(mask: str, files: list[Path], input: str) -> list[Path]:
    """The mask file of each image: ``mask`` itself for one image, else the file of the same relative name (any
    image extension) under the folder ``mask``; a ``UserError`` naming the first image without one."""
    where = Path(mask).expanduser()
    if where.is_file():
        if len(files) != 1:
            raise UserError(f"mask={mask} is one file but input={input} holds {len(files)} images: give a folder of "
                            "masks with the images' names, or mask=center|random_boxes|free_form")
        return [where]
    if not where.is_dir():
        raise UserError(f"mask={mask}: no such file or folder; give a mask image, a folder of masks, or one of "
                        f"{', '.join(MASK_KINDS)}")
    root = Path(input).expanduser()
    found = []
    for f in files:
        stem = (f.relative_to(root) if root.is_dir() else Path(f.name)).with_suffix("")
        match = next((where / stem.with_suffix(ext) for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in
                      IMAGE_EXTENSIONS) if (where / stem.with_suffix(ext)).is_file()), None)
        if match is None:
            raise UserError(f"mask: no mask for {f} in {where} (matched by name): add {stem}.png there")
        found.append(match)
    return found


@torch.no_grad()
def inpaint(ckpt: str, input: str, out: str, mask: str = "center", seed: int = 0, use_ema: bool = True,
            device: str = "cpu") -> dict:
    """Fill the holes of the image ``input`` (or of every image in the folder ``input``) and write PNGs under the
    folder ``out`` (same relative names, ``.png``). Refuses, before writing anything, a checkpoint that is not an
    inpainting model, a mask of another size or with no hole, and outputs that would overwrite files."""
    files, targets, out_dir = plan(input, out)
    module = load_module(ckpt).to(device).eval()
    family = module.family
    if not getattr(family, "inpainting", False):
        raise UserError(f"ckpt: {ckpt} holds a {type(family).__name__}, not an inpainting model: inpaint.py needs a "
                        "checkpoint of model=inpaint or model=inpaint_l1")
    channels = family.spec.shape[0]
    images = read_all(files, channels)
    if mask in MASK_KINDS:
        gen = torch.Generator().manual_seed(seed)
        masks = [draw_masks(1, min(x.shape[-2:]), MaskOptions(mask).check(), gen)[0] for x in images]
        masks = [_fit(m, x) for m, x in zip(masks, images)]
    else:
        masks = []
        for f, m_file, x in zip(files, _mask_files(mask, files, input), images):
            m = read_image(m_file, 1) > 127
            if m.shape[-2:] != x.shape[-2:]:
                raise UserError(f"mask {m_file} is {m.shape[-1]}x{m.shape[-2]} but image {f} is "
                                f"{x.shape[-1]}x{x.shape[-2]}: give a mask of the image's size")
            if not m.any():
                raise UserError(f"mask {m_file} has no hole (no pixel above 127): white marks what to fill")
            masks.append(m)
    net = (module.sampling_generator if use_ema else family.generator).eval()
    for x, m, target in zip(images, masks, targets):
        a = masked_input(to_float(x)[None].to(device), m[None].to(device))
        write_image(target, to_uint8(family.complete(a, net))[0])
    return {"n": len(files), "mask": mask, "out": str(out_dir)}


def _fit(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A square mask drawn for the image's shorter side, placed in the middle of a (possibly oblong) image."""
    h, w = x.shape[-2:]
    full = torch.zeros(1, h, w, dtype=torch.bool)
    top, left = (h - m.shape[-2]) // 2, (w - m.shape[-1]) // 2
    full[:, top : top + m.shape[-2], left : left + m.shape[-1]] = m
    return full
