"""Images from a folder or a prepared zip, read one at a time, with labels from class subfolders or a
``dataset.json`` (``data=image_folder data.path=DIR_OR_ZIP``)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from torch import Tensor
from torchvision import transforms

from ..errors import UserError
from .datasets import class_subset
from .items import ItemDataModule, Items, check_bad_files, example_generator
from .sources import IMAGE_EXTENSIONS, LABELS_FILE, ImageSource, UnreadableImage

log = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataModule", "SourceImages", "labelled_images", "list_images", "read_image"]


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
    """The images of a source, resized on the shorter side and centre-cropped to ``size``, with their labels;
    ``index``: only these images of the source, in this order (a labelled subset)."""

    def __init__(self, source: ImageSource, size: int, channels: int, labels: list[int] | None, seed: int,
                 index: list[int] | None = None) -> None:
        self.source, self.channels, self.labels, self.seed = source, channels, labels, seed
        self.size, self.index = size, index
        self.transform = transforms.Compose([transforms.Resize(size, antialias=True), transforms.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.source) if self.index is None else len(self.index)

    def name(self, i: int) -> str:
        return self.source.path_of(i if self.index is None else self.index[i])

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        j = i if self.index is None else self.index[i]
        x = self.source.read(j, self.channels)
        if x.shape[-2:] != (self.size, self.size):
            x = self.transform(x)
        out = {"x": x}
        if self.labels is not None:
            out["y"] = torch.tensor(self.labels[j], dtype=torch.int64)
        return out


class ImageFolderDataModule(ItemDataModule):
    """Images from a folder (recursive; hidden files and folders skipped) or a zip made by ``prepare_data.py`` or
    StyleGAN2-ADA's ``dataset_tool.py``, resized on the shorter side and centre-cropped to ``image_size``.

    Start-up lists the names and decodes nothing; the images are read in the loader's workers. ``labels``:
    ``auto`` (a ``dataset.json`` at the top, else none), ``none``, ``subfolders``, ``json`` or a labels file
    (see ``sources.LABEL_CHOICES``); with labels the conditional families train on it and ``generate.py label=``
    takes the class names. ``bad_files``: ``error`` or ``skip`` (see ``items.BAD_FILES``). ``subset_per_class``:
    train on ``N`` images of every class only, drawn by ``seed`` (few labels; needs labels).
    """

    MAX_SUBSET_BYTES = 2**30
    """``train_subset`` holds the training images in memory: at most this many bytes of them."""

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        labels: str | None = "auto",
        batch_size: int = 64,
        num_workers: int = 2,
        bad_files: str = "error",
        subset_per_class: int | None = None,
        seed: int = 0,
    ) -> None:
        if subset_per_class is not None and (isinstance(subset_per_class, bool)
                                             or not isinstance(subset_per_class, int) or subset_per_class < 1):
            raise UserError(f"subset_per_class must be a positive integer, got {subset_per_class!r}: fix "
                            "data.subset_per_class or set it to null")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise UserError(f"image_size must be a positive integer, got {image_size}: fix data.image_size")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        super().__init__(batch_size, seed)
        self.path, self.num_workers = os.path.expanduser(str(path)), num_workers
        self.bad_files = check_bad_files(bad_files)
        self.shape = (channels, image_size, image_size)
        self.labels, self.subset_per_class = labels, subset_per_class
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
        index = None
        if self.subset_per_class is not None:
            if labels is None:
                raise UserError(f"data.subset_per_class needs labels and {self.source.where()} has none: put each "
                                "class in a subfolder (data.labels=subfolders) or give a dataset.json")
            index = class_subset(torch.tensor(labels), self.subset_per_class, self.seed, self.class_names).tolist()
        self._items = SourceImages(self.source, self.shape[-1], self.shape[0], labels, self.seed, index)
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        subset = f", training on {len(index)} ({self.subset_per_class} a class)" if index is not None else ""
        log.info("image folder %s: %d images%s%s", self.source.where(), len(self.source), classes, subset)

    def train_subset(self) -> tuple[Tensor, Tensor]:
        """The labelled images this module trains on (after ``subset_per_class``), uint8, with their labels, read
        into memory (at most ``MAX_SUBSET_BYTES``): what ``synthesize.py``'s filter and ``augmentation_gain.py``
        train their classifiers on."""
        self.setup()
        if self.num_classes is None:
            raise UserError(f"{self.source.where()} has no labels: the classifier of synthesize.py's filter and of "
                            "augmentation_gain.py needs labelled images (data.labels=subfolders or a dataset.json)")
        n, size = len(self._items), math.prod(self.shape)
        if n * size > self.MAX_SUBSET_BYTES:
            raise UserError(f"the {n} training images of {self.source.where()} take {n * size / 2**30:.1f} GiB in "
                            f"memory, more than the {self.MAX_SUBSET_BYTES / 2**30:.0f} GiB this reads at once: "
                            "train on a labelled subset (data.subset_per_class=N)")
        rows = []
        for i in range(n):
            try:
                rows.append(self._items.item(i, example_generator(self.seed, -1, i)))
            except UnreadableImage as err:
                raise UserError(f"{err}: remove or replace it") from None
        return torch.stack([r["x"] for r in rows]), torch.stack([r["y"] for r in rows])


def labelled_images(path: str, shape: tuple[int, int, int], class_names: list[str], what: str
                    ) -> tuple[Tensor, Tensor]:
    """A labelled folder or zip (its ``dataset.json``, else class subfolders) read whole as uint8 images of
    ``shape`` with labels in the order of ``class_names`` (a held-out test set of a user's classes); a
    ``UserError`` naming ``what`` when its classes are not those."""
    has_json = ImageSource(os.path.expanduser(str(path)), what=what).require(
        f"set {what} to a labelled folder or zip").read_text(LABELS_FILE) is not None
    module = ImageFolderDataModule(path, image_size=shape[-1], channels=shape[0],
                                   labels="json" if has_json else "subfolders")
    x, y = module.train_subset()
    names = module.class_names or []
    if sorted(names) != sorted(class_names):
        raise UserError(f"{what}: {path} holds the classes {names}, the generator's are {class_names}: give held-out "
                        "images of the generator's classes")
    order = torch.tensor([class_names.index(n) for n in names])
    return x, order[y]
