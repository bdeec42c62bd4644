"""Data modules: torchvision image datasets, a folder of images, and 2-D Gaussian mixtures.

Every module yields batch dicts ``{"x": float32 [B, *shape], "y": int64 [B]}`` (``"y"`` only when
the data has labels). Images are scaled to [-1, 1].
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from gan_lightning.errors import UserError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 20.0
"""Socket timeout while trying a torchvision download, so an offline machine fails fast."""


def _to_float(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [-1, 1]; float data passes through."""
    return x.float().div_(127.5).sub_(1) if x.dtype == torch.uint8 else x.float()


def _batch(x: Tensor, y: Tensor | None, idx: Tensor | int) -> dict[str, Tensor]:
    batch = {"x": _to_float(x[idx])}
    if y is not None:
        batch["y"] = y[idx]
    return batch


DATA_DEVICES = ("auto", "cpu")


def data_device(choice: str, root: torch.device, nbytes: int) -> torch.device:
    """Where in-memory training tensors live: ``cpu``, or with ``auto`` the training device when that is a GPU
    and the tensors take at most a quarter of its free memory (then batches are cut and normalised there, and
    nothing crosses the bus per step)."""
    if choice not in DATA_DEVICES:
        raise UserError(f"unknown data.device {choice!r}: use one of {', '.join(DATA_DEVICES)}")
    if choice == "cpu" or root.type != "cuda":
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info(root)
    return root if nbytes <= free // 4 else torch.device("cpu")


def _check_one_batch(n: int, batch_size: int, world_size: int) -> None:
    if n // world_size < batch_size:
        raise UserError(
            f"only {n} training examples for {world_size} process(es), fewer than one batch of "
            f"{batch_size} each: lower data.batch_size or use more data"
        )


def _sample_indices(n_total: int, n: int, seed: int) -> Tensor:
    """n random indices: without replacement if n <= n_total, else with replacement."""
    gen = torch.Generator().manual_seed(seed)
    if n <= n_total:
        return torch.randperm(n_total, generator=gen)[:n]
    return torch.randint(n_total, (n,), generator=gen)


class TensorBatchLoader:
    """Batches of an in-memory tensor, reshuffled every epoch, resumable, sharded for DDP.

    Each ``iter()`` starts the next epoch (the first starts epoch 0), except right after
    ``load_state_dict``, which continues where the saved loader stopped. Epoch ``e`` is shuffled
    with a generator seeded from ``(seed, e)``; all ranks draw the same permutation and each
    takes its own contiguous slice of it, so shards are disjoint and equally long.
    The body of ``__iter__`` runs lazily, so an ``iter()`` that is never advanced (Lightning
    calls one to check the loader is iterable) does not consume an epoch.
    With ``device``, the tensors are moved there once; batches are then indexed and normalised on it.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None = None,
        batch_size: int = 64,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if x.dtype not in (torch.uint8, torch.float32):
            raise TypeError(f"x must be uint8 or float32, got {x.dtype}")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}: fix data.batch_size")
        if drop_last:
            _check_one_batch(len(x), batch_size, world_size)
        elif len(x) == 0:
            raise UserError("the training data is empty: check the data options")
        self.x, self.y = x.to(device), (None if y is None else y.long().to(device))
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        n = len(x)
        self._per_rank = n // world_size if drop_last else math.ceil(n / world_size)
        self._epoch = 0  # epoch in progress (or last finished)
        self._batch = 0  # batches of that epoch already yielded
        self._continue = True  # next iteration continues (epoch, batch) instead of a new epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self._per_rank // self.batch_size
        return math.ceil(self._per_rank / self.batch_size)

    def _indices(self, epoch: int) -> Tensor:
        """This rank's example indices for ``epoch``."""
        n = len(self.x)
        if self.shuffle:
            # Mix seed and epoch so that seed s + 1 is not seed s shifted by one epoch.
            gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
            perm = torch.randperm(n, generator=gen)
        else:
            perm = torch.arange(n)
        total = self._per_rank * self.world_size
        if total > n:  # drop_last=False: pad by wrapping around so every rank gets as many
            perm = perm.repeat(math.ceil(total / n))[:total]
        return perm[self.rank * self._per_rank : (self.rank + 1) * self._per_rank].to(self.x.device)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        if not self._continue or self._batch >= len(self):
            self._epoch, self._batch = self._epoch + 1, 0
        self._continue = False
        epoch, indices = self._epoch, self._indices(self._epoch)
        while self._epoch == epoch and self._batch < len(self):  # stop if a newer iter() took over
            idx = indices[self._batch * self.batch_size : (self._batch + 1) * self.batch_size]
            self._batch += 1
            yield _batch(self.x, self.y, idx)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batch": self._batch}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._epoch, self._batch = int(state_dict["epoch"]), int(state_dict["batch"])
        self._continue = True


class _TensorDataset(Dataset):
    """Map-style view of in-memory tensors that yields batch-dict items."""

    def __init__(self, x: Tensor, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return _batch(self.x, self.y, i)


class GANDataModule(pl.LightningDataModule):
    """Base class. ``shape``, ``num_classes``, ``class_names`` and ``bounded`` are set in
    ``__init__`` without reading data; ``setup`` reads it (once)."""

    shape: tuple[int, ...]
    num_classes: int | None = None
    class_names: list[str] | None = None
    bounded: bool = True  # samples lie in [-1, 1]

    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}: fix data.batch_size")
        self.batch_size, self.seed = batch_size, seed
        self._ready = False

    def setup(self, stage: str | None = None) -> None:
        if not self._ready:
            self._setup()
            self._ready = True

    def _setup(self) -> None:
        raise NotImplementedError

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """A batch dict of ``n`` random training examples (with replacement only if n > size)."""
        raise NotImplementedError

    def _dist(self) -> dict[str, int]:
        """This process's rank and the world size (0 and 1 without a trainer)."""
        if self.trainer is None:
            return {"rank": 0, "world_size": 1}
        return {"rank": self.trainer.global_rank, "world_size": self.trainer.world_size}


class _TensorDataModule(GANDataModule):
    """A data module whose training split is held as tensors ``_x`` and ``_y`` after setup."""

    _x: Tensor
    _y: Tensor | None
    device: str = "auto"  # where the training tensors live: see data_device()

    def train_dataloader(self) -> TensorBatchLoader:
        self.setup()
        root = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        nbytes = self._x.nbytes + (0 if self._y is None else self._y.nbytes)
        device = data_device(self.device, root, nbytes)
        if device != root and root.type != "cpu":
            log.info("training data stays in host memory (data.device=%s)", self.device)
        return TensorBatchLoader(self._x, self._y, self.batch_size, seed=self.seed, device=device, **self._dist())

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        return _batch(self._x, self._y, _sample_indices(len(self._x), n, seed))


# ---------------------------------------------------------------------------------------------
# torchvision datasets

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class _Spec:
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


_TORCHVISION = {
    "fashion_mnist": _Spec(
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
    "mnist": _Spec(
        title="MNIST",
        cls=datasets.MNIST,
        channels=1,
        size=28,
        classes=tuple(datasets.MNIST.classes),
        folder="MNIST/raw",
        files=_IDX_FILES,
        idx=True,
    ),
    "cifar10": _Spec(
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


def _one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, shortened to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            f"cannot copy {src} to {dst} ({_one_line(err)}): check that the file is intact and the disk not full"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _float_op(x: Tensor, fn, chunk: int = 4096) -> Tensor:
    """Apply ``fn`` to uint8 images as float32, chunk by chunk, rounding back to uint8."""
    parts = [fn(x[i : i + chunk].float()).round_().clamp_(0, 255).to(torch.uint8) for i in range(0, len(x), chunk)]
    return torch.cat(parts)


def _luminance(x: Tensor) -> Tensor:
    """RGB -> 1 channel with ITU-R 601 weights (as PIL's ``convert("L")``)."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return _float_op(x, lambda f: (f * weights).sum(1, keepdim=True))


def _resize(x: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of uint8 images to ``size`` x ``size``."""
    return _float_op(x, lambda f: F.interpolate(f, size=(size, size), mode="bilinear", antialias=True))


class TorchvisionDataModule(_TensorDataModule):
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
        download: bool = True,
        seed: int = 0,
        in_memory: bool = True,
        num_workers: int = 0,
        device: str = "auto",
    ) -> None:
        if name not in _TORCHVISION:
            raise UserError(f"unknown dataset {name!r}: data.name must be one of {', '.join(_TORCHVISION)}")
        if image_size is not None and image_size < 1:
            raise UserError(f"image_size must be >= 1, got {image_size}: fix data.image_size")
        if channels not in (None, 1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        if subset is not None and subset < 1:
            raise UserError(f"subset must be >= 1, got {subset}: fix data.subset or set it to null")
        super().__init__(batch_size, seed)
        self._spec = _TORCHVISION[name]
        self.name, self.root = name, os.path.expanduser(root)
        self.subset, self.download = subset, download
        self.in_memory, self.num_workers = in_memory, num_workers
        data_device(device, torch.device("cpu"), 0)  # checks the choice now, not at the first batch
        self.device = device
        size = image_size or self._spec.size
        self.shape = (channels or self._spec.channels, size, size)
        self.num_classes = len(self._spec.classes)
        self.class_names = list(self._spec.classes)

    def prepare_data(self) -> None:
        self._ensure_files()

    def _ensure_files(self) -> None:
        """Put the files torchvision needs under ``root``: stage local copies, else download."""
        spec, root = self._spec, Path(self.root)
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
                reason = f"download failed: {_one_line(err)}"
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
        folder = Path(self.root, self._spec.folder)
        try:
            ds = self._spec.cls(self.root, train=split == "train", download=False)
        except Exception as err:  # torchvision's readers raise many types
            raise UserError(
                f"cannot read {self._spec.title} in {folder} ({_one_line(err)}): delete it and "
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
            x = _luminance(x)
        if x.shape[-2:] != (size, size):
            log.info("resizing %d images to %dx%d", len(x), size, size)
            x = _resize(x, size)
        if channels == 3 and x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return x

    def _setup(self) -> None:
        self._x, self._y = self._load("train", self.subset)
        log.info("%s: %d training images of shape %s", self._spec.title, len(self._x), self.shape)

    def train_dataloader(self) -> TensorBatchLoader | DataLoader:
        if self.in_memory:
            return super().train_dataloader()
        self.setup()
        _check_one_batch(len(self._x), self.batch_size, self._dist()["world_size"])
        return DataLoader(
            _TensorDataset(self._x, self._y),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )


# ---------------------------------------------------------------------------------------------
# a folder of images

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


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
            return {"x": _to_float(self.transform(image.convert(self.mode)))}


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
        if not root.is_dir():
            raise UserError(f"image folder {root} does not exist: set data.path=DIR to a folder of images")
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.is_file()
        )
        if not files:
            raise UserError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root}: set data.path=DIR to a folder of images"
            )
        for f in files:
            try:
                with Image.open(f) as image:
                    image.verify()
            except Exception as err:  # PIL raises many types for bad files
                raise UserError(f"cannot decode image {f} ({_one_line(err)}): remove or replace it") from err
        log.info("image folder %s: %d images", root, len(files))
        self._dataset = _ImageFiles(files, self.shape[-1], self.shape[0])

    def train_dataloader(self) -> DataLoader:
        self.setup()
        _check_one_batch(len(self._dataset), self.batch_size, self._dist()["world_size"])
        return DataLoader(
            self._dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        indices = _sample_indices(len(self._dataset), n, seed).tolist()
        return {"x": torch.stack([self._dataset[i]["x"] for i in indices])}


# ---------------------------------------------------------------------------------------------
# 2-D Gaussian mixtures

_MIXTURES = {"ring": 0.02, "grid": 0.05}  # kind -> default std


def _mixture_modes(kind: str) -> Tensor:
    if kind == "ring":  # Metz et al. 2016: 8 modes on a circle of radius 2
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (2 * torch.stack([angles.cos(), angles.sin()], 1)).float()
    values = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])  # VEEGAN / PacGAN: 5 x 5 grid
    return torch.cartesian_prod(values, values)


def mixture_metrics(
    samples: Tensor, modes: Tensor, std: float, threshold: float = 3.0, min_count: int | None = None
) -> dict[str, float]:
    """Mode coverage of 2-D samples, as in VEEGAN / PacGAN.

    A sample is high quality if it lies within ``threshold * std`` of its nearest mode. A mode is
    covered if at least ``min_count`` high-quality samples fall on it; by default 20% of a uniform
    share of all samples, ``max(1, round(0.2 * N / K))`` (20 for PacGAN's 2,500 samples on 25
    modes). ``mode_kl`` is KL(high-quality mode histogram || uniform): 0 is perfect balance,
    log K is a single mode, NaN if no sample is high quality.
    """
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1] or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty [N, {modes.shape[1]}] tensor, got {tuple(samples.shape)}")
    k = len(modes)
    if min_count is None:
        min_count = max(1, round(0.2 * len(samples) / k))
    distance, nearest = torch.cdist(samples.detach().float().cpu(), modes.float().cpu()).min(1)
    good = distance <= threshold * std
    counts = torch.bincount(nearest[good], minlength=k).double()
    n_good = counts.sum().item()
    if n_good > 0:
        p = counts[counts > 0] / n_good
        mode_kl = (p * (p * k).log()).sum().item()
    else:
        mode_kl = math.nan
    return {
        "modes_covered": float((counts >= min_count).sum().item()),
        "high_quality_frac": n_good / len(samples),
        "mode_kl": mode_kl,
    }


class GaussianMixtureDataModule(_TensorDataModule):
    """2-D points from 8 Gaussians on a ring or 25 on a grid; labels are mode indices."""

    bounded = False

    def __init__(
        self,
        kind: str = "ring",
        n_samples: int = 100_000,
        std: float | None = None,
        batch_size: int = 512,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        if kind not in _MIXTURES:
            raise UserError(f"unknown mixture kind {kind!r}: data.kind must be one of {', '.join(_MIXTURES)}")
        if n_samples < 1:
            raise UserError(f"n_samples must be >= 1, got {n_samples}: fix data.n_samples")
        if std is not None and std <= 0:
            raise UserError(f"std must be > 0, got {std}: fix data.std or set it to null")
        super().__init__(batch_size, seed)
        self.kind, self.n_samples = kind, n_samples
        data_device(device, torch.device("cpu"), 0)
        self.device = device
        self.std = float(std if std is not None else _MIXTURES[kind])
        self.modes = _mixture_modes(kind)
        self.shape = (2,)
        self.num_classes = len(self.modes)
        self.class_names = [f"mode {i}" for i in range(self.num_classes)]

    def _setup(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        self._y = torch.randint(len(self.modes), (self.n_samples,), generator=gen)
        self._x = self.modes[self._y] + self.std * torch.randn(self.n_samples, 2, generator=gen)

    def score(self, samples: Tensor) -> dict[str, float]:
        """:func:`mixture_metrics` against this mixture."""
        return mixture_metrics(samples, self.modes, self.std)
