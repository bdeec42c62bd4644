"""Images from folders on disk."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..errors import UserError
from .base import GANDataModule
from .convert import to_float
from .datasets import one_line
from .loader import sample_indices, shuffled_loader

log = logging.getLogger(__name__)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(root: Path, what: str, fix: str) -> list[Path]:
    """The image files under ``root`` (recursive; hidden files and folders skipped), sorted; a ``UserError``
    naming ``what`` and how to ``fix`` it when the folder is missing or holds no images."""
    if not root.is_dir():
        raise UserError(f"{what} {root} does not exist: set {fix} to a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root}: set {fix} to a folder of images")
    return files


def read_image(path: Path, channels: int) -> Tensor:
    """``path`` as a uint8 C x H x W tensor with ``channels`` channels; a ``UserError`` naming an unreadable file."""
    try:
        with Image.open(path) as image:
            return transforms.functional.pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))
    except Exception as err:  # PIL raises many types for bad files
        raise UserError(f"cannot read image {path} ({one_line(err)}): remove or replace it") from err


class _ImageFiles(Dataset):
    def __init__(self, files: list[Path], image_size: int, channels: int) -> None:
        self.files = files
        self.mode = "L" if channels == 1 else "RGB"
        self.transform = transforms.Compose(
            [transforms.Resize(image_size, antialias=True), transforms.CenterCrop(image_size), transforms.PILToTensor()]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        with Image.open(self.files[i]) as image:
            return {"x": to_float(self.transform(image.convert(self.mode)))}


class ImageFolderDataModule(GANDataModule):
    """Unlabelled images from a folder (recursive; hidden files and folders are skipped),
    resized on the shorter side and center-cropped to ``image_size``."""

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 64,
        num_workers: int = 2,
        seed: int = 0,
    ) -> None:
        if image_size < 1:
            raise UserError(f"image_size must be >= 1, got {image_size}: fix data.image_size")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        super().__init__(batch_size, seed)
        self.path, self.num_workers = os.path.expanduser(path), num_workers
        self.shape = (channels, image_size, image_size)

    def _setup(self) -> None:
        root = Path(self.path)
        files = list_images(root, "image folder", "data.path=DIR")
        for f in files:
            try:
                with Image.open(f) as image:
                    image.verify()
            except Exception as err:  # PIL raises many types for bad files
                raise UserError(f"cannot decode image {f} ({one_line(err)}): remove or replace it") from err
        log.info("image folder %s: %d images", root, len(files))
        self._dataset = _ImageFiles(files, self.shape[-1], self.shape[0])

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return shuffled_loader(self._dataset, self.batch_size, self.num_workers, self.seed,
                               self._dist()["world_size"])

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        indices = sample_indices(len(self._dataset), n, seed).tolist()
        return {"x": torch.stack([self._dataset[i]["x"] for i in indices])}


