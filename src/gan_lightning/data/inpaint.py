"""Inpainting data: an image with a hole and the hole's mask as input ``a`` (C + 1 channels), the whole image as
target ``b``, as Context Encoders (Pathak et al. 2016) and the pix2pix-style inpainting after it train.

Masks (``masks``, 1 = missing): ``center`` (a square of ``hole`` x the side, as Context Encoders), ``random_boxes``
(``boxes`` boxes of ``box_size`` x the side each), ``free_form`` (``strokes`` random brush strokes of ``vertices``
segments, ``length`` x the side long, ``width`` x the side wide: the irregular masks of Yu et al. 2019). Training
masks are drawn afresh for every batch (every example of every epoch), held-out masks are fixed by the example and
the seed, so every evaluation scores the same holes.

The input: the known pixels, the hole filled with 0 (mid grey in [-1, 1]), then the mask as a channel in [-1, 1]
(1 in the hole). ``split_input`` undoes it.

- ``FashionInpaintDataModule`` (``data=fashion_inpaint``): a torchvision set (Fashion-MNIST by default); labels
  stay, so the completed images can be checked for their class.
- ``InpaintFolderDataModule`` (``data=inpaint_folder data.path=DIR``): a user's images (a folder or a prepared
  zip), resized and centre-cropped to ``image_size``, the masks drawn as above or read from ``mask_path``: files
  with the images' names (any extension, white = missing), resized to the image.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from .datasets import TorchvisionDataModule
from .folders import SourceImages
from .items import ItemDataModule, Items, check_bad_files, example_generator
from .loader import TensorBatchLoader, sample_indices
from .sources import ImageSource, UnreadableImage
from .spec import DataSpec

log = logging.getLogger(__name__)

MASK_KINDS = ("center", "random_boxes", "free_form")


@dataclass
class MaskOptions:
    """How holes are drawn; sizes are fractions of the image side."""

    kind: str = "center"
    hole: float = 0.5  # center: the square's side
    boxes: Sequence[int] = (1, 3)  # random_boxes: how many (inclusive range)
    box_size: Sequence[float] = (0.2, 0.5)  # random_boxes: each side
    strokes: Sequence[int] = (1, 4)  # free_form: brush strokes (inclusive range)
    vertices: Sequence[int] = (2, 6)  # free_form: segments per stroke
    length: Sequence[float] = (0.15, 0.4)  # free_form: each segment
    width: Sequence[float] = (0.08, 0.2)  # free_form: the brush

    def check(self) -> MaskOptions:
        if self.kind not in MASK_KINDS:
            raise UserError(f"data.mask={self.kind}: use one of {', '.join(MASK_KINDS)}")
        if not 0 < self.hole < 1:
            raise UserError(f"data.hole={self.hole} must be in (0, 1): the side of the centre square as a fraction "
                            "of the image side")
        for name, low_ok in (("boxes", 1), ("strokes", 1), ("vertices", 1)):
            lo, hi = getattr(self, name)
            if not (isinstance(lo, int) and isinstance(hi, int) and low_ok <= lo <= hi):
                raise UserError(f"data.{name}=[{lo}, {hi}] must be integers with {low_ok} <= low <= high")
        for name in ("box_size", "length", "width"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise UserError(f"data.{name}=[{lo}, {hi}] must be fractions of the side with 0 < low <= high <= 1")
        return self

    def describe(self) -> dict:
        return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in asdict(self).items()}


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _integers(n: int, lo: int, hi: int, gen: torch.Generator) -> Tensor:
    return torch.randint(int(lo), int(hi) + 1, (n,), generator=gen)


def draw_masks(n: int, size: int, options: MaskOptions, gen: torch.Generator) -> Tensor:
    """``n`` masks of ``size`` x ``size`` (bool N x 1 x H x W, True = missing), every one with a hole."""
    o = options
    centre = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres in [0, 1]
    yy, xx = torch.meshgrid(centre, centre, indexing="ij")
    if o.kind == "center":
        side = max(1, round(o.hole * size))
        top = (size - side) // 2
        mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
        mask[..., top : top + side, top : top + side] = True
        return mask
    if o.kind == "random_boxes":
        k = int(o.boxes[1])
        count = _integers(n, o.boxes[0], o.boxes[1], gen)
        h, w = (_uniform(n * k, *o.box_size, gen).view(n, k, 1, 1) for _ in range(2))
        top, left = torch.rand(n, k, 1, 1, generator=gen) * (1 - h), torch.rand(n, k, 1, 1, generator=gen) * (1 - w)
        inside = (yy >= top) & (yy < top + h) & (xx >= left) & (xx < left + w)
        active = (torch.arange(k).view(1, k, 1, 1) < count.view(n, 1, 1, 1))
        return _never_empty((inside & active).any(1, keepdim=True), gen)
    # free_form: a random walk of segments per stroke, each a capsule of the stroke's width
    s, v = int(o.strokes[1]), int(o.vertices[1])
    strokes, segments = _integers(n, *o.strokes, gen), _integers(n * s, *o.vertices, gen).view(n, s)
    start = torch.rand(n, s, 1, 2, generator=gen)
    angle = torch.rand(n, s, 1, generator=gen) * 2 * math.pi + torch.cumsum(
        (torch.rand(n, s, v, generator=gen) - 0.5) * math.pi, dim=2)
    step = _uniform(n * s * v, *o.length, gen).view(n, s, v)
    moves = torch.stack([angle.cos() * step, angle.sin() * step], dim=-1)
    points = torch.cat([start, start + torch.cumsum(moves, dim=2)], dim=2).clamp(0, 1)  # n, s, v + 1, 2
    radius = (_uniform(n * s, *o.width, gen).view(n, s, 1) / 2).clamp(min=0.5 / size).expand(n, s, v)
    active = (torch.arange(s).view(1, s, 1) < strokes.view(n, 1, 1)) & \
             (torch.arange(v).view(1, 1, v) < segments.unsqueeze(-1))
    owner = torch.arange(n).view(n, 1, 1).expand(n, s, v)[active]  # the drawn segments only, and their masks
    p, q, r = points[:, :, :-1][active], points[:, :, 1:][active], radius[active]
    px, py, ux, uy = p[:, :1], p[:, 1:], q[:, :1] - p[:, :1], q[:, 1:] - p[:, 1:]  # segments x 1
    dx, dy = xx.reshape(1, -1) - px, yy.reshape(1, -1) - py  # segments x H*W: each pixel from the start
    t = ((dx * ux + dy * uy) / (ux * ux + uy * uy).clamp(min=1e-12)).clamp_(0, 1)
    dx.sub_(t * ux)
    dy.sub_(t * uy)
    near = (dx.square_() + dy.square_() <= r.square().unsqueeze(1)).float()
    hit = torch.zeros(n, size * size).index_add_(0, owner, near) > 0
    return _never_empty(hit.view(n, 1, size, size), gen)


def _never_empty(masks: Tensor, gen: torch.Generator) -> Tensor:
    """``masks`` with one random pixel set in any that has none (a small box or brush can fall between pixel
    centres): every example has a hole to fill and to score."""
    n, _, h, w = masks.shape
    pixel = torch.randint(h * w, (n,), generator=gen)
    empty = ~masks.flatten(1).any(1)
    flat = masks.clone().view(n, h * w)
    flat[empty, pixel[empty]] = True
    return flat.view(n, 1, h, w)


def masked_input(images: Tensor, masks: Tensor) -> Tensor:
    """Float images in [-1, 1] (N x C x H x W) and bool masks (N x 1 x H x W) -> the inpainting input: the known
    pixels with 0 in the hole, and the mask as a last channel in [-1, 1]."""
    m = masks.to(images.dtype)
    return torch.cat([images * (1 - m), m * 2 - 1], dim=1)


def split_input(a: Tensor) -> tuple[Tensor, Tensor]:
    """(known pixels, float mask in {0, 1} with 1 = missing) of an inpainting input."""
    return a[:, :-1], (a[:, -1:] > 0).to(a.dtype)


def inpaint_spec(shape: tuple[int, ...], num_classes: int | None = None, class_names=None) -> DataSpec:
    c, h, w = shape
    shapes = {"a": (c + 1, h, w), "b": (c, h, w), **({"y": ()} if num_classes else {})}
    return DataSpec(shapes, target="b", source="a", num_classes=num_classes, class_names=class_names)


def _mask_options(mask: str, hole, boxes, box_size, strokes, vertices, length, width) -> MaskOptions:
    return MaskOptions(mask, float(hole), tuple(boxes), tuple(box_size), tuple(strokes), tuple(vertices),
                       tuple(length), tuple(width)).check()


# --- Fashion-MNIST ---------------------------------------------------------------------------------------------
class _MaskedBatches:
    """The in-memory loader's batches ``{"x", "y"}`` as inpainting batches ``{"a", "b", "y"}``, each with fresh
    masks drawn from (seed, epoch, batch), so a resumed run draws the very masks an uninterrupted one would."""

    def __init__(self, loader: TensorBatchLoader, options: MaskOptions, seed: int) -> None:
        self.loader, self.options, self.seed = loader, options, seed

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for batch in self.loader:
            gen = example_generator(self.seed + 1, self.loader._epoch, self.loader._batch)
            masks = draw_masks(len(batch["x"]), batch["x"].shape[-1], self.options, gen).to(batch["x"].device)
            yield {"a": masked_input(batch["x"], masks), "b": batch["x"], "y": batch["y"]}

    def state_dict(self) -> dict[str, int]:
        return self.loader.state_dict()

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.loader.load_state_dict(state_dict)


class FashionInpaintDataModule(TorchvisionDataModule):
    """A torchvision set as inpainting pairs ``{"a": masked image + mask, "b": image, "y": label}``
    (``data=fashion_inpaint``); held-out pairs from the test split with fixed masks."""

    def __init__(self, name: str = "fashion_mnist", mask: str = "center", hole: float = 0.5,
                 boxes: Sequence[int] = (1, 3), box_size: Sequence[float] = (0.2, 0.5),
                 strokes: Sequence[int] = (1, 4), vertices: Sequence[int] = (2, 6),
                 length: Sequence[float] = (0.15, 0.4), width: Sequence[float] = (0.08, 0.2), **kwargs) -> None:
        self.masks = _mask_options(mask, hole, boxes, box_size, strokes, vertices, length, width)
        kwargs["in_memory"] = True
        super().__init__(name, **kwargs)

    @property
    def spec(self) -> DataSpec:
        return inpaint_spec(self.shape, self.num_classes, self.class_names)

    def train_dataloader(self) -> _MaskedBatches:
        return _MaskedBatches(super().train_dataloader(), self.masks, self.seed)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out images of ``split`` with masks fixed by ``seed``."""
        batch = super().fixed_batch(n, split=split, seed=seed)
        masks = draw_masks(n, self.shape[-1], self.masks, torch.Generator().manual_seed(seed + 1))
        return {"a": masked_input(batch["x"], masks), "b": batch["x"], "y": batch["y"]}

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        return self.fixed_batch(n, split="train", seed=seed)


# --- a user's images -------------------------------------------------------------------------------------------
class _MaskedImages(Items):
    """Images with their masks: drawn from the example's own stream, or the user's mask file of the same name."""

    def __init__(self, images: SourceImages, indices: Sequence[int], options: MaskOptions,
                 masks: ImageSource | None, mask_index: dict[str, int] | None, seed: int) -> None:
        self.images, self.indices, self.options, self.seed = images, list(indices), options, seed
        self.masks, self.mask_index = masks, mask_index

    def __len__(self) -> int:
        return len(self.indices)

    def name(self, i: int) -> str:
        return self.images.name(self.indices[i])

    def _mask_file(self, i: int, size: int) -> Tensor:
        j = self.indices[i]
        stem = self.images.source.relative(j).rsplit(".", 1)[0]
        m = self.masks.read(self.mask_index[stem], 1)
        if m.shape[-2:] != (size, size):
            m = F.interpolate(m[None].float(), size=(size, size), mode="nearest")[0]
        m = m > 127
        if not m.any():
            raise UnreadableImage(self.masks.path_of(self.mask_index[stem]), "has no hole (no pixel above 127)")
        return m

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        x = self.images.item(self.indices[i], gen)["x"]
        size = x.shape[-1]
        m = self._mask_file(i, size) if self.masks is not None else draw_masks(1, size, self.options, gen)[0]
        # uint8 out of the worker: the hole 128 (0 in [-1, 1]), the mask channel 0 / 255
        known = torch.where(m, torch.full_like(x, 128), x)
        return {"a": torch.cat([known, m.to(torch.uint8) * 255]), "b": x}


class InpaintFolderDataModule(ItemDataModule):
    """A user's images as inpainting pairs (``data=inpaint_folder data.path=DIR``): see the module docstring.
    Held out: the last ``val_fraction`` of the files (at least one), with fixed masks."""

    def __init__(self, path: str, image_size: int = 64, channels: int = 3, mask_path: str | None = None,
                 mask: str = "free_form", hole: float = 0.5, boxes: Sequence[int] = (1, 3),
                 box_size: Sequence[float] = (0.2, 0.5), strokes: Sequence[int] = (1, 4),
                 vertices: Sequence[int] = (2, 6), length: Sequence[float] = (0.15, 0.4),
                 width: Sequence[float] = (0.08, 0.2), val_fraction: float = 0.1, batch_size: int = 16,
                 num_workers: int = 2, bad_files: str = "error", seed: int = 0) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 4:
            raise UserError(f"data.image_size={image_size} must be an integer >= 4")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        if not 0 <= val_fraction < 1:
            raise UserError(f"data.val_fraction={val_fraction} must be in [0, 1)")
        super().__init__(batch_size, seed)
        self.masks = _mask_options(mask, hole, boxes, box_size, strokes, vertices, length, width)
        self.path = os.path.expanduser(str(path))
        self.mask_path = os.path.expanduser(str(mask_path)) if mask_path else None
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self.bad_files = check_bad_files(bad_files)
        self.shape = (channels, image_size, image_size)
        self.mask_kind = "files" if self.mask_path else mask

    @property
    def spec(self) -> DataSpec:
        return inpaint_spec(self.shape)

    def _setup(self) -> None:
        source = ImageSource(self.path).require("set data.path to a folder of images or a prepared zip")
        images = SourceImages(source, self.shape[-1], self.shape[0], None, self.seed)
        masks, index = None, None
        if self.mask_path:
            masks = ImageSource(self.mask_path, what="data.mask_path").require("set data.mask_path to the masks")
            index = {}
            for j, name in enumerate(masks.names):
                index.setdefault(masks.relative(j).rsplit(".", 1)[0], j)
            missing = [source.relative(i) for i in range(len(source))
                       if source.relative(i).rsplit(".", 1)[0] not in index]
            if missing:
                raise UserError(f"{len(missing)} image(s) have no mask of the same name in {masks.where()} (first: "
                                f"{missing[0]}): add them, or drop data.mask_path to draw masks")
        n = len(source)
        n_val = max(1, round(n * self.val_fraction)) if n > 1 else 0
        keep, held = range(n - n_val), (range(n - n_val, n) if n_val else range(n))
        self._items = _MaskedImages(images, keep, self.masks, masks, index, self.seed)
        self._held = _MaskedImages(images, held, self.masks, masks, index, self.seed + 1)
        log.info("inpainting folder %s: %d training images, %d held out, masks: %s", self.path, len(keep),
                 len(held), self.mask_path or self.masks.kind)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out images (``split="train"``: training images) with masks fixed by the example."""
        self.setup()
        items = self._items if split == "train" else self._held
        return self.read_items(items, sample_indices(len(items), n, seed), epoch=-1 - seed)

    def split_size(self, split: str = "test") -> int | None:
        self.setup()
        return len(self._items if split == "train" else self._held)


__all__ = ["MASK_KINDS", "FashionInpaintDataModule", "InpaintFolderDataModule", "MaskOptions", "draw_masks",
           "masked_input", "split_input"]
