"""Images from a folder or a prepared zip, read one at a time, with labels from class subfolders or a
``dataset.json`` (``data=image_folder data.path=DIR_OR_ZIP``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor
from torchvision import transforms

from ..errors import UserError
from .items import ItemDataModule, Items, check_bad_files
from .sources import IMAGE_EXTENSIONS, ImageSource, UnreadableImage

log = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataModule", "SourceImages", "list_images", "read_image"]


def list_images(root: Path, what: str, fix: str) -> list[Path]:
    """The image files under the folder ``root`` (recursive; hidden files and folders skipped), sorted; a
    ``UserError`` naming ``what`` and how to ``fix`` it when the folder is missing or holds no images."""
    if not Path(root).is_dir():
        raise UserError(f"{what} {root} does not exist: set {fix} to a folder of images")
    source = ImageSource(root, what=what).require(f"set {fix} to a folder of images")
    return [source.root / n for n in source.names]


def read_image(path: Path, channels: int) -> Tensor:
    """``path`` as a uint8 C x H x W tensor with ``channels`` channels; a ``UserError`` naming an unreadable file."""
    path = Path(path)
    source = object.__new__(ImageSource)  # one file: no listing
    source.__dict__.update(root=path.parent, prefix="", what="image", is_zip=False, _zip=None, _zip_pid=None,
                           _all=[path.name], names=[path.name])
    try:
        return source.read(0, channels)
    except UnreadableImage as err:
        raise UserError(f"{err}: remove or replace it") from None


class SourceImages(Items):
    """The images of a source, resized on the shorter side and centre-cropped to ``size``, with their labels."""

    def __init__(self, source: ImageSource, size: int, channels: int, labels: list[int] | None, seed: int) -> None:
        self.source, self.channels, self.labels, self.seed = source, channels, labels, seed
        self.size = size
        self.transform = transforms.Compose([transforms.Resize(size, antialias=True), transforms.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.source)

    def name(self, i: int) -> str:
        return self.source.path_of(i)

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        x = self.source.read(i, self.channels)
        if x.shape[-2:] != (self.size, self.size):
            x = self.transform(x)
        out = {"x": x}
        if self.labels is not None:
            out["y"] = torch.tensor(self.labels[i], dtype=torch.int64)
        return out


class ImageFolderDataModule(ItemDataModule):
    """Images from a folder (recursive; hidden files and folders skipped) or a zip made by ``prepare_data.py`` or
    StyleGAN2-ADA's ``dataset_tool.py``, resized on the shorter side and centre-cropped to ``image_size``.

    Start-up lists the names and decodes nothing; the images are read in the loader's workers. ``labels``:
    ``auto`` (a ``dataset.json`` at the top, else none), ``none``, ``subfolders``, ``json`` or a labels file
    (see ``sources.LABEL_CHOICES``); with labels the conditional families train on it and ``generate.py label=``
    takes the class names. ``bad_files``: ``error`` or ``skip`` (see ``items.BAD_FILES``).
    """

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        labels: str | None = "auto",
        batch_size: int = 64,
        num_workers: int = 2,
        bad_files: str = "error",
        seed: int = 0,
    ) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise UserError(f"image_size must be a positive integer, got {image_size}: fix data.image_size")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        super().__init__(batch_size, seed)
        self.path, self.num_workers = os.path.expanduser(str(path)), num_workers
        self.bad_files = check_bad_files(bad_files)
        self.shape = (channels, image_size, image_size)
        self.labels = labels
        self._source: ImageSource | None = None
        self._labels: tuple[list[int], list[str]] | None = None

    @property
    def source(self) -> ImageSource:
        """The images' names and labels, listed the first time anything asks (the spec, or setup)."""
        if self._source is None:
            source = ImageSource(self.path).require("set data.path to a folder of images or a prepared zip")
            self._labels = source.labels(self.labels)
            self._source = source
        return self._source

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    @property
    def class_names(self) -> list[str] | None:
        self.source
        return list(self._labels[1]) if self._labels else None

    def _setup(self) -> None:
        labels = self._labels[0] if self.class_names else None
        self._items = SourceImages(self.source, self.shape[-1], self.shape[0], labels, self.seed)
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        log.info("image folder %s: %d images%s", self.source.where(), len(self.source), classes)

