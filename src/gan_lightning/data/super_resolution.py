"""Super-resolution data: high-resolution images ``hr`` with their low-resolution inputs ``lr``.

The low-resolution image is made as the SR papers make it (Ledig et al. 2017; BasicSR): antialiased bicubic
downsampling by ``scale``, then quantised to uint8 as a user's saved files would be (``downscale``).

- ``FashionSRDataModule`` (``data=fashion_sr``): a torchvision set (Fashion-MNIST by default) with ``lr`` made from
  every image: 28 -> 7 for ``scale=4``, 28 -> 14 for ``scale=2``; held-out pairs from the test split.
- ``ImageFolderSRDataModule`` (``data=sr_folder``): any folder of high-resolution images, random ``crop`` x
  ``crop`` crops (and flips) per example and batch, the input made on the fly; or, with ``lr_path``, a folder of
  low-resolution files matched to the high-resolution ones by name (crops aligned). Held-out pairs are the centre
  crops of the ``val_path`` folder's images, or of the last ``val_fraction`` of the files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from .base import GANDataModule
from .convert import float_op, to_float, to_uint8
from .datasets import TorchvisionDataModule
from .items import ItemDataModule, Items, check_bad_files
from .loader import sample_indices
from .sources import ImageSource, UnreadableImage
from .spec import DataSpec

log = logging.getLogger(__name__)

SCALES = (2, 3, 4, 8)


def check_scale(scale: int, size: int | None = None) -> int:
    """``scale`` as an int, or a ``UserError`` if it is not a supported factor or does not divide ``size``."""
    if isinstance(scale, bool) or scale not in SCALES:
        raise UserError(f"data.scale={scale}: the upscaling factor must be one of {', '.join(map(str, SCALES))}")
    if size is not None and size % scale:
        raise UserError(f"data.scale={scale} does not divide the image size {size}: pick a scale that divides it "
                        f"({', '.join(str(s) for s in SCALES if size % s == 0) or 'none does'})")
    return int(scale)


def downscale(hr: Tensor, scale: int) -> Tensor:
    """uint8 images (N x C x H x W) -> uint8 images ``scale`` times smaller: antialiased bicubic, rounded."""
    h, w = hr.shape[-2:]
    return float_op(hr, lambda f: F.interpolate(f, size=(h // scale, w // scale), mode="bicubic", antialias=True))


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """Float images in [-1, 1] -> bicubic upsampling by ``scale``, clamped to [-1, 1]: the baseline every
    super-resolution model is compared with."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def sr_spec(channels: int, hr_size: int, scale: int, num_classes: int | None = None,
            class_names=None) -> DataSpec:
    lr = hr_size // scale
    shapes = {"lr": (channels, lr, lr), "hr": (channels, hr_size, hr_size), **({"y": ()} if num_classes else {})}
    return DataSpec(shapes, target="hr", source="lr", num_classes=num_classes, class_names=class_names)


class FashionSRDataModule(TorchvisionDataModule):
    """A torchvision dataset as super-resolution pairs ``{"lr", "hr", "y"}`` (``data=fashion_sr``): every image
    (at ``image_size``) is a high-resolution target, its antialiased bicubic ``scale``-times reduction, quantised
    to uint8, the input. The class labels stay, so outputs can be checked for keeping their class."""

    def __init__(self, name: str = "fashion_mnist", scale: int = 4, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.scale = check_scale(scale, self.shape[-1])

    @property
    def spec(self) -> DataSpec:
        return sr_spec(self.shape[0], self.shape[-1], self.scale, self.num_classes, self.class_names)

    def _setup(self) -> None:
        x, y = self._load("train", self.subset)
        self._tensors = {"lr": downscale(x, self.scale), "hr": x, "y": y}
        log.info("%s x%d: %d training pairs, %s -> %s", self.known.title, self.scale, len(x),
                 tuple(self._tensors["lr"].shape[1:]), self.shape)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out pairs of ``split`` (the test split by default), chosen by ``seed``."""
        batch = super().fixed_batch(n, split=split, seed=seed)  # float in [-1, 1], exactly the uint8 values
        return {"lr": to_float(downscale(to_uint8(batch["x"]), self.scale)), "hr": batch["x"], "y": batch["y"]}


# --- image folders (or prepared zips) --------------------------------------------------------------------------
class _SRCrops(Items):
    """(hr, lr) crops of a source's images as uint8: random and flipped when training, else the centre crop (on
    the low-resolution grid, so that a low-resolution file's crop is aligned with the high-resolution one); lr is
    made by ``downscale`` where no file gives it (``lr_source``: the low-resolution file of each image)."""

    def __init__(self, source: ImageSource, indices, channels: int, crop: int, scale: int, train: bool, seed: int,
                 lr_source: ImageSource | None = None, lr_index: dict[str, int] | None = None) -> None:
        self.source, self.indices, self.channels = source, list(indices), channels
        self.crop, self.scale, self.train, self.seed = crop, scale, train, seed
        self.lr_source, self.lr_index = lr_source, lr_index

    def __len__(self) -> int:
        return len(self.indices)

    def name(self, i: int) -> str:
        return self.source.path_of(self.indices[i])

    def _lr_file(self, i: int, hr: Tensor) -> Tensor:
        name = self.source.relative(self.indices[i])
        stem = name.rsplit(".", 1)[0]
        j = self.lr_index.get(name, self.lr_index.get(stem))
        if j is None:
            raise UnreadableImage(self.name(i), f"has no low-resolution file of that name in {self.lr_source.where()}")
        lr = self.lr_source.read(j, self.channels)
        want = (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale)
        if tuple(lr.shape[-2:]) != want:
            raise UnreadableImage(self.lr_source.path_of(j), f"is {lr.shape[-1]}x{lr.shape[-2]}, but its "
                                  f"high-resolution file / data.scale={self.scale} is {want[1]}x{want[0]}")
        return lr

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        hr, s, c = self.source.read(self.indices[i], self.channels), self.scale, self.crop
        if min(hr.shape[-2:]) < c:
            raise UnreadableImage(self.name(i), f"is {hr.shape[-1]}x{hr.shape[-2]}, smaller than data.crop={c}: lower "
                                  "data.crop or remove the small images")
        rows, cols = hr.shape[-2] // s - c // s, hr.shape[-1] // s - c // s
        if self.train:
            top, left = int(torch.randint(0, rows + 1, (), generator=gen)), int(torch.randint(0, cols + 1, (), generator=gen))
        else:
            top, left = rows // 2, cols // 2
        hr_crop = hr[:, top * s : top * s + c, left * s : left * s + c]
        if self.lr_source is not None:
            lr_crop = self._lr_file(i, hr)[:, top : top + c // s, left : left + c // s]
        else:
            lr_crop = downscale(hr_crop[None], s)[0]
        if self.train and torch.rand((), generator=gen) < 0.5:
            hr_crop, lr_crop = hr_crop.flip(-1), lr_crop.flip(-1)
        return {"lr": lr_crop.contiguous(), "hr": hr_crop.contiguous()}


class ImageFolderSRDataModule(ItemDataModule):
    """Super-resolution from a folder (or a prepared zip) of high-resolution images (``data=sr_folder
    data.path=DIR``).

    Each training example is a random ``crop`` x ``crop`` crop of one image (flipped at random), its input the
    antialiased bicubic ``scale``-times reduction made on the fly; with ``lr_path``, the input is the crop of
    the low-resolution file of the same name instead (its size must be the high-resolution size / ``scale``).
    Images are read one at a time in the loader's workers. Held-out pairs (metrics, grids, ``generate.py``): the
    centre crops of ``val_path``'s images, or of the last ``val_fraction`` of the files (at least one) when there is
    no ``val_path``.
    """

    def __init__(self, path: str, scale: int = 4, crop: int = 96, channels: int = 3, lr_path: str | None = None,
                 val_path: str | None = None, val_fraction: float = 0.1, batch_size: int = 16,
                 num_workers: int = 0, bad_files: str = "error", seed: int = 0) -> None:
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        check_scale(scale)
        if crop < scale or crop % scale:
            raise UserError(f"data.crop={crop} must be a multiple of data.scale={scale} (at least {scale}): "
                            f"e.g. data.crop={max(scale, crop - crop % scale) if crop >= scale else scale * 8}")
        if not 0 <= val_fraction < 1:
            raise UserError(f"data.val_fraction={val_fraction} must be in [0, 1)")
        super().__init__(batch_size, seed)
        self.path, self.lr_path, self.val_path = (os.path.expanduser(str(p)) if p else None
                                                  for p in (path, lr_path, val_path))
        self.scale, self.crop, self.channels = int(scale), int(crop), channels
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self.bad_files = check_bad_files(bad_files)
        self.shape = (channels, crop, crop)

    @property
    def spec(self) -> DataSpec:
        return sr_spec(self.channels, self.crop, self.scale)

    def _setup(self) -> None:
        files = ImageSource(self.path, what="data.path").require("set data.path to a folder of images or a zip")
        if self.val_path:
            val = ImageSource(self.val_path, what="data.val_path").require("set data.val_path to a folder of images")
            keep, held = range(len(files)), range(len(val))
        else:
            n = len(files)
            n_val = max(1, round(n * self.val_fraction)) if n > 1 else 0
            val, keep, held = files, range(n - n_val), (range(n - n_val, n) if n_val else range(n))
        lr = {}
        if self.lr_path:
            lr_source = ImageSource(self.lr_path, what="data.lr_path").require("set data.lr_path to a folder")
            index = {}
            for j, name in enumerate(lr_source.names):
                index.setdefault(name, j)
                index.setdefault(name.rsplit(".", 1)[0], j)
            lr = {"lr_source": lr_source, "lr_index": index}
        options = {"channels": self.channels, "crop": self.crop, "scale": self.scale, "seed": self.seed}
        self._items = _SRCrops(files, keep, train=True, **options, **lr)
        self._held = _SRCrops(val, held, train=False, **options)
        log.info("super-resolution folder %s: %d training images, %d held out, x%d, crops %d", self.path,
                 len(keep), len(held), self.scale, self.crop)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out pairs (centre crops, inputs by bicubic downsampling), chosen by ``seed``."""
        self.setup()
        return self.read_items(self._held, sample_indices(len(self._held), n, seed))

    def split_size(self, split: str = "test") -> int | None:
        self.setup()
        return len(self._held)
