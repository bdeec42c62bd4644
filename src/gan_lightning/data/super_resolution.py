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
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .base import GANDataModule
from .convert import float_op, to_float, to_uint8
from .datasets import TorchvisionDataModule
from .folders import list_images, read_image
from .loader import select, sample_indices, shuffled_loader
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


# --- image folders ---------------------------------------------------------------------------------------------
class _Crops(Dataset):
    """Random aligned crops of (hr, lr) image pairs as float in [-1, 1]; lr is made by ``downscale`` where no
    file gives it."""

    def __init__(self, hr: list[Tensor], lr: list[Tensor] | None, crop: int, scale: int):
        self.hr, self.lr, self.crop, self.scale = hr, lr, crop, scale

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        hr, s, c = self.hr[i], self.scale, self.crop
        # Crop positions on the low-resolution grid, so that an LR file's crop is aligned with the HR crop.
        top = int(torch.randint(0, hr.shape[-2] // s - c // s + 1, ()))
        left = int(torch.randint(0, hr.shape[-1] // s - c // s + 1, ()))
        hr_crop = hr[:, top * s : top * s + c, left * s : left * s + c]
        if self.lr is not None:
            lr_crop = self.lr[i][:, top : top + c // s, left : left + c // s]
        else:
            lr_crop = downscale(hr_crop[None], s)[0]
        if torch.rand(()) < 0.5:
            hr_crop, lr_crop = hr_crop.flip(-1), lr_crop.flip(-1)
        return {"lr": to_float(lr_crop.contiguous()), "hr": to_float(hr_crop.contiguous())}


class ImageFolderSRDataModule(GANDataModule):
    """Super-resolution from a folder of high-resolution images (``data=sr_folder data.path=DIR``).

    Each training example is a random ``crop`` x ``crop`` crop of one image (flipped at random), its input the
    antialiased bicubic ``scale``-times reduction made on the fly; with ``lr_path``, the input is the crop of
    the low-resolution file of the same name instead (its size must be the high-resolution size / ``scale``).
    Held-out pairs (metrics, grids, ``generate.py``): the centre crops of ``val_path``'s images, or of the last
    ``val_fraction`` of the files (at least one) when there is no ``val_path``.
    """

    def __init__(self, path: str, scale: int = 4, crop: int = 96, channels: int = 3, lr_path: str | None = None,
                 val_path: str | None = None, val_fraction: float = 0.1, batch_size: int = 16,
                 num_workers: int = 0, seed: int = 0) -> None:
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        check_scale(scale)
        if crop < scale or crop % scale:
            raise UserError(f"data.crop={crop} must be a multiple of data.scale={scale} (at least {scale}): "
                            f"e.g. data.crop={max(scale, crop - crop % scale) if crop >= scale else scale * 8}")
        if not 0 <= val_fraction < 1:
            raise UserError(f"data.val_fraction={val_fraction} must be in [0, 1)")
        super().__init__(batch_size, seed)
        self.path, self.lr_path, self.val_path = (os.path.expanduser(p) if p else None
                                                  for p in (path, lr_path, val_path))
        self.scale, self.crop, self.channels = int(scale), int(crop), channels
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self.shape = (channels, crop, crop)

    @property
    def spec(self) -> DataSpec:
        return sr_spec(self.channels, self.crop, self.scale)

    def _read(self, files: list[Path]) -> list[Tensor]:
        images = [read_image(f, self.channels) for f in files]
        small = [(f, tuple(im.shape[-2:])) for f, im in zip(files, images) if min(im.shape[-2:]) < self.crop]
        if small:
            f, size = small[0]
            raise UserError(f"image {f} is {size[1]}x{size[0]}, smaller than data.crop={self.crop} "
                            f"({len(small)} such file(s)): lower data.crop or remove the small images")
        return images

    def _lr_pairs(self, files: list[Path], images: list[Tensor]) -> list[Tensor]:
        """The low-resolution files matching ``files`` by name under ``lr_path``, checked for size."""
        root, hr_root = Path(self.lr_path), Path(self.path)
        out = []
        for f, hr in zip(files, images):
            candidates = [root / f.relative_to(hr_root)] + sorted((root / f.relative_to(hr_root).parent).glob(
                f"{f.stem}.*"))
            match = next((c for c in candidates if c.is_file()), None)
            if match is None:
                raise UserError(f"no low-resolution file for {f} in {root} (matched by name): add it or drop "
                                "data.lr_path to make the inputs by bicubic downsampling")
            lr = read_image(match, self.channels)
            want = (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale)
            if tuple(lr.shape[-2:]) != want:
                raise UserError(f"{match} is {lr.shape[-1]}x{lr.shape[-2]}, but {f} / data.scale={self.scale} "
                                f"is {want[1]}x{want[0]}: fix the files or data.scale")
            out.append(lr)
        return out

    def _setup(self) -> None:
        files = list_images(Path(self.path), "data.path", "data.path=DIR")
        if self.val_path:
            val_files = list_images(Path(self.val_path), "data.val_path", "data.val_path=DIR")
        else:
            n_val = max(1, round(len(files) * self.val_fraction)) if len(files) > 1 else 0
            files, val_files = files[: len(files) - n_val], files[len(files) - n_val :] or files
        images = self._read(files)
        lr = self._lr_pairs(files, images) if self.lr_path else None
        self._train = _Crops(images, lr, self.crop, self.scale)
        val = self._read(val_files)
        c, s = self.crop, self.scale
        centre = []
        for im in val:
            top = (im.shape[-2] // s - c // s) // 2 * s
            left = (im.shape[-1] // s - c // s) // 2 * s
            centre.append(im[:, top : top + c, left : left + c])
        hr = torch.stack(centre)
        self._held_out = {"lr": downscale(hr, s), "hr": hr}
        log.info("super-resolution folder %s: %d training images, %d held out, x%d, crops %d", self.path,
                 len(images), len(val), s, c)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return shuffled_loader(self._train, self.batch_size, self.num_workers, self.seed,
                               self._dist()["world_size"])

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        gen_state = torch.get_rng_state()
        torch.manual_seed(seed)
        try:
            rows = [self._train[int(i)] for i in sample_indices(len(self._train), n, seed)]
        finally:
            torch.set_rng_state(gen_state)
        return {k: torch.stack([r[k] for r in rows]) for k in ("lr", "hr")}

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        return select(self._held_out, sample_indices(len(self._held_out["hr"]), n, seed))
