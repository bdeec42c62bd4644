"""Fashion-MNIST, MNIST and CIFAR-10 through torchvision, found offline when possible."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from torchvision import datasets

from ..errors import UserError
from .base import TensorDataModule
from .convert import luminance, resize
from .items import ItemLoader, TensorItems
from .loader import TensorBatchLoader, data_device, sample_indices, select
from .sources import one_line

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 20.0
"""Socket timeout while trying a torchvision download, so an offline machine fails fast."""


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class KnownDataset:
    """A torchvision dataset this module can find, stage and read."""

    title: str
    cls: type
    channels: int
    size: int
    classes: tuple[str, ...]
    folder: str  # where torchvision looks, relative to root
    files: tuple[str, ...]  # what torchvision needs there
    idx: bool  # MNIST-style files that can be staged from .gz copies
    system_dir: str | None = None  # a Debian package's copy
    apt_package: str | None = None


TORCHVISION: dict[str, KnownDataset] = {
    "fashion_mnist": KnownDataset(
        title="Fashion-MNIST",
        cls=datasets.FashionMNIST,
        channels=1,
        size=28,
        classes=tuple(datasets.FashionMNIST.classes),
        folder="FashionMNIST/raw",
        files=_IDX_FILES,
        idx=True,
        system_dir="/usr/share/datasets/fashion-mnist",
        apt_package="dataset-fashion-mnist",
    ),
    "mnist": KnownDataset(
        title="MNIST",
        cls=datasets.MNIST,
        channels=1,
        size=28,
        classes=tuple(datasets.MNIST.classes),
        folder="MNIST/raw",
        files=_IDX_FILES,
        idx=True,
    ),
    "cifar10": KnownDataset(
        title="CIFAR-10",
        cls=datasets.CIFAR10,
        channels=3,
        size=32,
        # torchvision reads these from batches.meta, i.e. only once the data is there.
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        folder="cifar-10-batches-py",
        files=tuple(name for name, _ in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list)
        + (datasets.CIFAR10.meta["filename"],),
        idx=False,
    ),
}


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily bound every socket operation (torchvision's downloads set no timeout)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _find_copy(directory: Path, name: str) -> Path | None:
    """``directory/name.gz`` or ``directory/name``, whichever exists first."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _stage(src: Path, dst: Path) -> None:
    """Copy ``src`` (decompressing a .gz) to ``dst`` atomically."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    except OSError as err:
        raise UserError(f"cannot write to {dst.parent} ({err}): set data.root=DIR to a writable folder") from err
    try:
        opener = gzip.open if src.suffix == ".gz" else open
        with os.fdopen(fd, "wb") as out, opener(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        os.replace(tmp, dst)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(
            f"cannot copy {src} to {dst} ({one_line(err)}): check that the file is intact and the disk not full"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class TorchvisionDataModule(TensorDataModule):
    """Fashion-MNIST, MNIST or CIFAR-10 through torchvision, found offline when possible.

    For the MNIST-style sets, files outside torchvision's layout (the ``.gz`` files directly in
    ``root``, or Debian's ``dataset-fashion-mnist`` in /usr/share/datasets/fashion-mnist) are
    decompressed into ``root/<Name>/raw`` first. A download is tried only if the data is nowhere
    (for CIFAR-10, torchvision then uses ``root/cifar-10-python.tar.gz`` if it is there).
    """

    def __init__(
        self,
        name: str,
        root: str,
        batch_size: int = 64,
        image_size: int | None = None,
        channels: int | None = None,
        subset: int | None = None,
        subset_per_class: int | None = None,
        download: bool = True,
        seed: int = 0,
        in_memory: bool = True,
        num_workers: int = 0,
        device: str = "auto",
    ) -> None:
        if name not in TORCHVISION:
            raise UserError(f"unknown dataset {name!r}: data.name must be one of {', '.join(TORCHVISION)}")
        if image_size is not None and image_size < 1:
            raise UserError(f"image_size must be >= 1, got {image_size}: fix data.image_size")
        if channels not in (None, 1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        if subset is not None and subset < 1:
            raise UserError(f"subset must be >= 1, got {subset}: fix data.subset or set it to null")
        if subset_per_class is not None and (isinstance(subset_per_class, bool) or subset_per_class < 1):
            raise UserError(f"subset_per_class must be >= 1, got {subset_per_class}: fix data.subset_per_class or "
                            "set it to null")
        if subset is not None and subset_per_class is not None:
            raise UserError("data.subset and data.subset_per_class both given: keep one (set the other to null)")
        if subset_per_class is not None and type(self)._setup is not TorchvisionDataModule._setup:
            raise UserError(f"data.subset_per_class applies to the labelled image sets (data=fashion_mnist, mnist, "
                            f"cifar10, image_folder), not to {type(self).__name__}: set it to null")
        super().__init__(batch_size, seed)
        self.known = TORCHVISION[name]
        self._splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.name, self.root = name, os.path.expanduser(root)
        self.subset, self.subset_per_class, self.download = subset, subset_per_class, download
        self.in_memory, self.num_workers = in_memory, num_workers
        data_device(device, torch.device("cpu"), 0)  # checks the choice now, not at the first batch
        self.device = device
        size = image_size or self.known.size
        self.shape = (channels or self.known.channels, size, size)
        self.num_classes = len(self.known.classes)
        self.class_names = list(self.known.classes)

    def prepare_data(self) -> None:
        self._ensure_files()

    def _ensure_files(self) -> None:
        """Put the files torchvision needs under ``root``: stage local copies, else download."""
        spec, root = self.known, Path(self.root)
        target = root / spec.folder
        if all((target / f).is_file() for f in spec.files):
            return
        if spec.idx:
            for source in [root] + ([Path(spec.system_dir)] if spec.system_dir else []):
                copies = [_find_copy(source, f) for f in spec.files]
                if all(copies):
                    log.info("staging %s from %s into %s", spec.title, source, target)
                    for src, f in zip(copies, spec.files):
                        _stage(src, target / f)
                    return
        reason = "data.download=false"
        if self.download:
            log.info("%s not found under %s: trying to download it", spec.title, root)
            try:
                with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                    spec.cls(self.root, train=True, download=True)
                return
            except Exception as err:  # any failure means: no download
                reason = f"download failed: {one_line(err)}"
        places = f"{root}" + (f" or {spec.system_dir}" if spec.system_dir else "")
        apt = f"install it with `apt-get install {spec.apt_package}`, " if spec.apt_package else ""
        wanted = "the four *-ubyte.gz files" if spec.idx else f"{spec.folder}/"
        raise UserError(
            f"{spec.title} not found in {places} ({reason}): download it with data.download=true "
            f"(needs internet), {apt}or set data.root=DIR to a folder with {wanted}"
        )

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """All of ``split`` ("train" or "test") as uint8 [N, *shape] and int64 labels [N]."""
        return self._load(split)

    def _load(self, split: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
        if split not in ("train", "test"):
            raise UserError(f"unknown split {split!r}: use 'train' or 'test'")
        self._ensure_files()
        folder = Path(self.root, self.known.folder)
        try:
            ds = self.known.cls(self.root, train=split == "train", download=False)
        except Exception as err:  # torchvision's readers raise many types
            raise UserError(
                f"cannot read {self.known.title} in {folder} ({one_line(err)}): delete it and "
                "download again (data.download=true) or set data.root=DIR to an intact copy"
            ) from err
        x = torch.as_tensor(ds.data)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # MNIST NHW / CIFAR NHWC
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        return self._convert(x.contiguous()), y

    def _convert(self, x: Tensor) -> Tensor:
        """Native uint8 images -> this module's channels and size."""
        channels, size = self.shape[0], self.shape[-1]
        if channels == 1 and x.shape[1] == 3:
            x = luminance(x)
        if x.shape[-2:] != (size, size):
            log.info("resizing %d images to %dx%d", len(x), size, size)
            x = resize(x, size)
        if channels == 3 and x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return x

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` examples of ``split`` (the held-out test split by default), chosen by ``seed``."""
        if split not in self._splits:
            self._splits[split] = self.load_split(split)
        x, y = self._splits[split]
        return select({"x": x, "y": y}, sample_indices(len(x), n, seed))

    def _setup(self) -> None:
        x, y = self._load("train", self.subset)
        if self.subset_per_class is not None:
            keep = class_subset(y, self.subset_per_class, self.seed, self.class_names)
            x, y = x[keep], y[keep]
        self._tensors = {"x": x, "y": y}
        log.info("%s: %d training images of shape %s", self.known.title, len(self._x), self.shape)

    def train_subset(self) -> tuple[Tensor, Tensor]:
        """The training images and labels this module trains on (after ``subset`` or ``subset_per_class``)."""
        self.setup()
        return self._tensors["x"], self._tensors["y"]

    def train_dataloader(self) -> TensorBatchLoader | ItemLoader:
        if self.in_memory:
            return super().train_dataloader()
        self.setup()
        return ItemLoader(TensorItems(self._tensors), self.batch_size, self.num_workers, self.seed, **self._dist())


def class_subset(labels: Tensor, per_class: int, seed: int, class_names: list[str] | None = None) -> Tensor:
    """Indices of ``per_class`` examples of every class of ``labels``, drawn by ``seed`` (sorted): the labelled
    subset of ``data.subset_per_class``. A ``UserError`` if a class has fewer."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(int(labels.max()) + 1):
        members = (labels == c).nonzero().flatten()
        if len(members) < per_class:
            name = class_names[c] if class_names and c < len(class_names) else str(c)
            raise UserError(f"subset_per_class={per_class}: class {name} has only {len(members)} training images: "
                            f"lower data.subset_per_class to at most {len(members)}")
        picked.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picked).sort().values
