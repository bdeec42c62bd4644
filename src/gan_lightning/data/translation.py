"""Image-to-image translation data: an input image ``a`` and a target image ``b`` per batch row, from aligned pairs
(Pix2Pix, Isola et al. 2017) or from two independently shuffled domains (CycleGAN, Zhu et al. 2017).

- ``FashionEdgesDataModule`` (``data=fashion_edges``): paired edges -> clothing, the edges2shoes task on
  Fashion-MNIST. Every image's Canny edge map (``canny``, computed once) is its input; held-out pairs come from the
  test split, the labels stay.
- ``FashionDomainsDataModule`` (``data=fashion_domains data.a=Sandal data.b=Sneaker``): unpaired translation
  between two Fashion-MNIST classes chosen by name; each domain is shuffled on its own, so row i of ``a`` and
  ``b`` are unrelated (``spec.paired`` is false). Held-out images of each domain come from the test split.
- ``AlignedFolderDataModule`` (``data=aligned_folder data.path=DIR``): the Pix2Pix datasets' format (facades,
  edges2shoes, maps): files holding A and B side by side, ``DIR/train`` for training and ``DIR/test`` (or ``val``)
  held out. Both halves are resized to ``load_size`` and get the same random ``crop`` and flip.
- ``UnalignedFolderDataModule`` (``data=unaligned_folder data.path=DIR``): CycleGAN's format, ``DIR/trainA`` and
  ``DIR/trainB`` (with ``testA``/``testB`` held out when they exist); each image resized to ``load_size`` and
  randomly cropped and flipped on its own, a domain-B image drawn at random for every domain-A one.

Held-out images (``fixed_batch``: grids, metrics, ``generate.py``) are whole Fashion-MNIST images, or the centre
``crop`` of the resized folder images: the same for the same arguments.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .base import GANDataModule
from .convert import luminance, resize, to_float, to_uint8
from .datasets import TorchvisionDataModule
from .folders import list_images, read_image
from .loader import TensorBatchLoader, TensorDataset, sample_indices, select, shuffled_loader
from .spec import DataSpec

log = logging.getLogger(__name__)

DIRECTIONS = ("AtoB", "BtoA")
"""Which way a translation goes: from domain (or pair half) A to B, or back."""

# --- Canny edges -----------------------------------------------------------------------------------------------
# The defaults draw Fashion-MNIST as thin outlines plus its main inner lines (collars, sleeves, straps, soles):
# measured on all 70,000 images, 12.6% of the pixels are edges (the middle 80% of images between 9.1% and
# 16.8%; 9 images, near-black ones, have none), in 1.4 s on 2 CPU cores. low=0.1, high=0.2 keep 9.0% and lose
# whole outlines of dark garments.
CANNY_SIGMA, CANNY_LOW, CANNY_HIGH = 1.0, 0.05, 0.1
_CHUNK = 8192  # images per step: bounds the memory of the float intermediates
_TAN_22, _TAN_67 = math.tan(math.radians(22.5)), math.tan(math.radians(67.5))
_QUANTUM = 2.0**16  # gradient magnitudes are rounded to 1/_QUANTUM, so that float noise does not break ties


def check_canny(sigma: float, low: float, high: float, prefix: str = "data.") -> None:
    """A ``UserError`` for Canny options that cannot work (the config names are ``prefix`` + option)."""
    if not sigma >= 0:
        raise UserError(f"{prefix}sigma={sigma} must be >= 0 (0: no blur)")
    if not 0 <= low <= high:
        raise UserError(f"{prefix}low={low} and {prefix}high={high}: the thresholds need 0 <= low <= high")


def _correlation_matrix(n: int, kernel: Sequence[float]) -> Tensor:
    """The n x n matrix that correlates a length-n signal with ``kernel`` (odd length), replicate-padded."""
    r = len(kernel) // 2
    rows = torch.arange(n)
    m = torch.zeros(n, n, dtype=torch.float64)
    for t, w in enumerate(kernel):
        m.index_put_((rows, (rows + t - r).clamp(0, n - 1)), torch.full((n,), float(w), dtype=torch.float64),
                     accumulate=True)
    return m


@functools.lru_cache(maxsize=16)
def _gradient_matrices(n: int, sigma: float) -> tuple[Tensor, Tensor]:
    """Along one axis of length ``n``: (Gaussian blur then Sobel smoothing [1, 2, 1] / 4, Gaussian blur then
    central difference [-1, 0, 1] / 2), each step replicate-padded like a convolution would be. As matrices, the
    blur and both Sobel filters of a whole batch are four matrix products (far faster on small images than conv2d
    with a single channel)."""
    blur = torch.eye(n, dtype=torch.float64)
    if sigma > 0:
        r = math.ceil(2 * sigma)
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        g = torch.exp(-(t**2) / (2 * sigma**2))
        blur = _correlation_matrix(n, (g / g.sum()).tolist())
    smooth = _correlation_matrix(n, [0.25, 0.5, 0.25]) @ blur
    diff = _correlation_matrix(n, [-0.5, 0.0, 0.5]) @ blur
    return smooth.float(), diff.float()


def _shifted(m: Tensor, dy: int, dx: int) -> Tensor:
    """``m`` (N x 1 x H x W) seen from the neighbour at (dy, dx): zero outside the image."""
    h, w = m.shape[-2:]
    return F.pad(m, (1, 1, 1, 1))[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _thin(gx: Tensor, gy: Tensor) -> tuple[Tensor, Tensor]:
    """Non-maximum suppression: (the gradient magnitude, the pixels where it is a maximum along the gradient
    direction quantised to 0, 45, 90 or 135 degrees). A tie with the neighbour on the "after" side keeps this
    pixel, one with the "before" side the neighbour, so a symmetric ridge stays one pixel wide."""
    mag = torch.hypot(gx, gy).mul_(_QUANTUM).round_()
    ax, ay = gx.abs(), gy.abs()
    across = ay <= ax * _TAN_22  # gradient along x: compare left and right
    along = ay > ax * _TAN_67  # gradient along y: compare up and down
    diagonal = ~(across | along)
    falling = (gx * gy) > 0  # x and y grow together (y points down): compare up-left and down-right
    directions = ((across, (0, -1), (0, 1)), (along, (-1, 0), (1, 0)),
                  (diagonal & falling, (-1, -1), (1, 1)), (diagonal & ~falling, (-1, 1), (1, -1)))
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for where, before, after in directions:
        keep |= where & (mag > _shifted(mag, *before)) & (mag >= _shifted(mag, *after))
    return mag, keep


def _dilate(mask: Tensor) -> Tensor:
    """3 x 3 binary dilation of a bool batch (max_pool2d(3, stride 1), as shifted ORs)."""
    rows = mask.clone()
    rows[..., 1:] |= mask[..., :-1]
    rows[..., :-1] |= mask[..., 1:]
    out = rows.clone()
    out[..., 1:, :] |= rows[..., :-1, :]
    out[..., :-1, :] |= rows[..., 1:, :]
    return out


def _hysteresis(strong: Tensor, weak: Tensor) -> Tensor:
    """The weak pixels 8-connected to a strong one: grow the strong set inside the weak one until nothing
    changes, carrying on only with the images that still change."""
    edges, todo = strong.clone(), torch.arange(len(strong))
    while len(todo):
        before = edges[todo]
        grown = _dilate(before) & weak[todo]
        edges[todo] = grown
        todo = todo[(grown != before).flatten(1).any(1)]
    return edges


def canny(images: Tensor, sigma: float = CANNY_SIGMA, low: float = CANNY_LOW, high: float = CANNY_HIGH) -> Tensor:
    """Canny edges (Canny 1986) of uint8 images (N x 1 x H x W, or N x 3 x H x W: their luminance): uint8
    N x 1 x H x W, edges 255 on 0. Deterministic, batched, in chunks (all of Fashion-MNIST in under 2 s on 2 cores).

    Gaussian blur (``sigma``, radius ceil(2 sigma), replicate padding), Sobel gradients of the [0, 1] values
    scaled to grey change per pixel (a sharp 0 -> 1 step gives 0.5, 0.32 after a blur of sigma 1), non-maximum
    suppression along the gradient direction, then hysteresis: pixels whose gradient is at least ``high`` and
    those at least ``low`` 8-connected to them (the thresholds are in the same units).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"canny takes uint8 N x 1|3 x H x W images, got {images.dtype} {tuple(images.shape)}")
    check_canny(sigma, low, high, prefix="canny ")
    if images.shape[1] == 3:
        images = luminance(images)
    h, w = images.shape[-2:]
    smooth_h, diff_h = (m.to(images.device) for m in _gradient_matrices(h, float(sigma)))
    smooth_w, diff_w = (m.to(images.device) for m in _gradient_matrices(w, float(sigma)))
    out = []
    for i in range(0, len(images), _CHUNK):
        x = images[i : i + _CHUNK].float().div_(255)
        gx = smooth_h @ (x @ diff_w.T)
        gy = diff_h @ (x @ smooth_w.T)
        mag, keep = _thin(gx, gy)
        weak = keep & (mag >= low * _QUANTUM)
        out.append(_hysteresis(weak & (mag >= high * _QUANTUM), weak).to(torch.uint8).mul_(255))
    return torch.cat(out) if out else torch.zeros(0, 1, h, w, dtype=torch.uint8, device=images.device)


# --- Fashion-MNIST: edges -> clothing ----------------------------------------------------------------------------
class FashionEdgesDataModule(TorchvisionDataModule):
    """A torchvision dataset as translation pairs ``{"a": edges, "b": image, "y": label}`` (``data=fashion_edges``):
    every image (at ``image_size`` and ``channels``) is a target, its Canny edge map (``sigma``, ``low``,
    ``high``; one channel, computed once) the input. The labels stay, so outputs can be checked for their class."""

    def __init__(self, name: str = "fashion_mnist", sigma: float = CANNY_SIGMA, low: float = CANNY_LOW,
                 high: float = CANNY_HIGH, **kwargs) -> None:
        check_canny(sigma, low, high)
        super().__init__(name, **kwargs)
        self.sigma, self.low, self.high = float(sigma), float(low), float(high)

    @property
    def spec(self) -> DataSpec:
        size = self.shape[1:]
        return DataSpec({"a": (1, *size), "b": self.shape, "y": ()}, target="b", source="a",
                        num_classes=self.num_classes, class_names=self.class_names)

    def edges(self, images: Tensor) -> Tensor:
        """The inputs for uint8 ``images``: their edge maps with this module's thresholds."""
        return canny(images, self.sigma, self.low, self.high)

    def _setup(self) -> None:
        x, y = self._load("train", self.subset)
        self._tensors = {"a": self.edges(x), "b": x, "y": y}
        density = self._tensors["a"].float().mean().item() / 255
        log.info("%s edges: %d training pairs of shape %s, %.1f%% edge pixels", self.known.title, len(x),
                 self.shape, 100 * density)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out pairs of ``split`` (the test split by default), chosen by ``seed``."""
        batch = super().fixed_batch(n, split=split, seed=seed)  # float in [-1, 1], exactly the uint8 values
        return {"a": to_float(self.edges(to_uint8(batch["x"]))), "b": batch["x"], "y": batch["y"]}


# --- Fashion-MNIST: two classes as unpaired domains --------------------------------------------------------------
def _alias(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_class(value: str | int, class_names: Sequence[str], option: str) -> int:
    """The index of the class ``value`` names: an index, or a name compared case-insensitively and ignoring all
    but letters and digits, whole or any part between "/" (``tshirt``, ``T-shirt/top``, ``ankle_boot``). A
    ``UserError`` naming ``option`` lists the classes when nothing (or more than one class) matches."""
    names = list(class_names)
    listing = f"use one of {', '.join(names)} (or an index 0-{len(names) - 1})"
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return value
        raise UserError(f"{option}={value} is not a class index: {listing}")
    wanted = _alias(str(value))
    if wanted.isdigit() and int(wanted) < len(names) and not any(_alias(n) == wanted for n in names):
        return int(wanted)
    matches = {i for i, n in enumerate(names) if wanted and wanted in {_alias(n), *map(_alias, n.split("/"))}}
    if len(matches) != 1:
        what = "matches several classes" if matches else "is not a class"
        raise UserError(f"{option}={value} {what}: {listing}")
    return matches.pop()


class FashionDomainsDataModule(TorchvisionDataModule):
    """Two classes of a torchvision dataset as unpaired domains (``data=fashion_domains data.a=Sandal
    data.b=Sneaker``): batches ``{"a", "y_a", "b", "y_b"}`` with the images of class ``a`` and of class ``b``, each
    domain shuffled on its own, so the rows of ``a`` and ``b`` are unrelated. In memory an epoch is as long as the
    smaller domain; with ``in_memory=false`` as the larger, each of its images with a random one of the other.
    ``subset`` keeps the first ``subset`` training images of each domain.

    ``domains`` and ``domain_names`` are the two class indices and names; ``foreground_threshold``: uint8 pixels
    above it are foreground (the garment on Fashion-MNIST's black background), for shape-correspondence metrics.
    """

    foreground_threshold = 25
    _groups = [["a", "y_a"], ["b", "y_b"]]

    def __init__(self, name: str = "fashion_mnist", a: str | int = "Sandal", b: str | int = "Sneaker",
                 **kwargs) -> None:
        super().__init__(name, **kwargs)
        index_a = resolve_class(a, self.class_names, "data.a")
        index_b = resolve_class(b, self.class_names, "data.b")
        if index_a == index_b:
            raise UserError(f"data.a={a} and data.b={b} are both {self.class_names[index_a]}: pick two different "
                            "classes to translate between")
        self.domains = (index_a, index_b)
        self.domain_names = (self.class_names[index_a], self.class_names[index_b])

    @property
    def spec(self) -> DataSpec:
        return DataSpec({"a": self.shape, "y_a": (), "b": self.shape, "y_b": ()}, target="b", source="a",
                        num_classes=self.num_classes, class_names=self.class_names, paired=False)

    def _domains_of(self, x: Tensor, y: Tensor, limit: int | None = None) -> dict[str, Tensor]:
        """The images and labels of each domain among ``x``, ``y`` (the first ``limit`` of each)."""
        out = {}
        for key, index in zip("ab", self.domains):
            rows = torch.nonzero(y == index).squeeze(1)[:limit]
            out[key], out[f"y_{key}"] = x[rows], y[rows]
        return out

    def _split(self, split: str) -> dict[str, Tensor]:
        if split not in self._splits:
            self._splits[split] = self.load_split(split)
        return self._domains_of(*self._splits[split])

    def _setup(self) -> None:
        x, y = self._load("train")
        self._tensors = self._domains_of(x, y, self.subset)
        sizes = [len(self._tensors[k]) for k in "ab"]
        for key, size, name in zip("AB", sizes, self.domain_names):
            if size == 0:
                raise UserError(f"{self.known.title} has no training images of {name} (domain {key})")
        log.info("%s domains: A = %s (%d training images), B = %s (%d training images)", self.known.title,
                 self.domain_names[0], sizes[0], self.domain_names[1], sizes[1])

    def train_dataloader(self) -> TensorBatchLoader | DataLoader:
        if self.in_memory:
            return super().train_dataloader()
        self.setup()
        a, b = ({k: v for k, v in self._tensors.items() if k in group} for group in self._groups)
        dataset = _Unpaired(TensorDataset(a), TensorDataset(b))
        return shuffled_loader(dataset, self.batch_size, self.num_workers, self.seed, self._dist()["world_size"])

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random training images of each domain (with replacement only for a domain with fewer)."""
        self.setup()
        return _per_domain(self._tensors, n, seed)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` images of each domain from ``split`` (the test split by default), chosen by ``seed``; row i of
        ``a`` and of ``b`` are unrelated."""
        return _per_domain(self._split(split), n, seed)

    def split_size(self, split: str = "test") -> int | None:
        """The smaller domain's number of images in ``split``."""
        tensors = self._split(split)
        return min(len(tensors["a"]), len(tensors["b"]))


def _per_domain(tensors: Mapping[str, Tensor], n: int, seed: int) -> dict[str, Tensor]:
    """``n`` rows of each domain (keys ``a``, ``b`` and their ``y_`` labels where present), chosen apart."""
    out: dict[str, Tensor] = {}
    for offset, key in enumerate("ab"):
        group = {k: v for k, v in tensors.items() if k in (key, f"y_{key}")}
        out.update(select(group, sample_indices(len(group[key]), n, seed + offset)))
    return out


# --- image folders -----------------------------------------------------------------------------------------------
class _RandomCrops(Dataset):
    """Random ``crop`` x ``crop`` crops (flipped left-right half the time with ``flip``) of uint8 images held in
    memory (key -> N x C x H x W), as float in [-1, 1]: the SAME crop and flip for every key of a row, so the
    halves of an aligned pair stay aligned."""

    def __init__(self, tensors: Mapping[str, Tensor], crop: int, flip: bool) -> None:
        self.tensors, self.crop, self.flip = dict(tensors), crop, flip

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        c = self.crop
        h, w = next(iter(self.tensors.values())).shape[-2:]
        top, left = int(torch.randint(0, h - c + 1, ())), int(torch.randint(0, w - c + 1, ()))
        flip = self.flip and bool(torch.rand(()) < 0.5)
        out = {}
        for key, t in self.tensors.items():
            x = t[i, :, top : top + c, left : left + c]
            out[key] = to_float((x.flip(-1) if flip else x).contiguous())
        return out


class _Unpaired(Dataset):
    """Two collections shuffled apart (CycleGAN's unaligned dataset): item i is item ``i % len(a)`` of ``a`` and a
    random item of ``b`` (torch's global generator: reproducible for a seed), ``max(len(a), len(b))`` items."""

    def __init__(self, a: Dataset, b: Dataset) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {**self.a[i % len(self.a)], **self.b[int(torch.randint(len(self.b), ()))]}


def _hold_out(files: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files): the last ``fraction`` of ``files`` (at least one) held out; a single
    file is both."""
    n_val = max(1, round(len(files) * fraction)) if len(files) > 1 else 0
    return files[: len(files) - n_val], files[len(files) - n_val :] or files


def _centre(x: Tensor, crop: int) -> Tensor:
    """The centre ``crop`` x ``crop`` of N x C x H x W images."""
    top, left = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
    return x[..., top : top + crop, left : left + crop].contiguous()


def _check_sizes(load_size: int, crop: int, flip: bool, val_fraction: float) -> None:
    """A ``UserError`` for folder options that cannot work, before any file is read."""
    for option, value in (("load_size", load_size), ("crop", crop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"data.{option}={value} must be a positive integer")
    if crop > load_size:
        raise UserError(f"data.crop={crop} is larger than data.load_size={load_size}: the random crop must fit in "
                        f"the resized images (e.g. data.crop={load_size})")
    if not isinstance(flip, bool):
        raise UserError(f"data.flip={flip} must be true or false")
    if not 0 <= val_fraction < 1:
        raise UserError(f"data.val_fraction={val_fraction} must be in [0, 1)")


class _FolderTranslation(GANDataModule):
    """What the two folder modules share: sizes, crops, the loader, held-out centre crops."""

    _train: Dataset
    _held_out: dict[str, Tensor]  # uint8 centre crops, "a" and "b" (not necessarily as many)
    _train_full: dict[str, Tensor]  # uint8 resized training images, "a" and "b"

    def __init__(self, path: str, load_size: int, crop: int, flip: bool, val_fraction: float, batch_size: int,
                 num_workers: int, seed: int) -> None:
        _check_sizes(load_size, crop, flip, val_fraction)
        super().__init__(batch_size, seed)
        self.path = os.path.expanduser(path)
        self.load_size, self.crop, self.flip = load_size, crop, flip
        self.val_fraction, self.num_workers = val_fraction, num_workers

    def _read(self, path: Path, channels: int) -> Tensor:
        return self._resize(read_image(path, channels))

    def _resize(self, image: Tensor) -> Tensor:
        """A C x H x W uint8 image resized (antialiased) to load_size x load_size, as Pix2Pix and CycleGAN do."""
        size = self.load_size
        return image if image.shape[-2:] == (size, size) else resize(image[None], size)[0]

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return shuffled_loader(self._train, self.batch_size, self.num_workers, self.seed,
                               self._dist()["world_size"])

    def _sample(self, dataset: Dataset, n: int, seed: int) -> list[dict[str, Tensor]]:
        """``n`` items of ``dataset`` chosen by ``seed``, their random crops drawn from ``seed`` too."""
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        try:
            return [dataset[int(i)] for i in sample_indices(len(dataset), n, seed)]
        finally:
            torch.set_rng_state(state)

    def _collection(self, split: str) -> dict[str, Tensor]:
        """uint8 centre crops: of the training images for ``split="train"``, else the held-out ones."""
        self.setup()
        if split == "train":
            return {k: _centre(v, self.crop) for k, v in self._train_full.items()}
        return self._held_out

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out examples (centre crops; ``split="train"``: of the training images), chosen by ``seed``."""
        return _per_domain(self._collection(split), n, seed)

    def split_size(self, split: str = "test") -> int | None:
        """The smaller number of distinct images of ``split`` among ``a`` and ``b``."""
        return min(len(v) for v in self._collection(split).values())


class AlignedFolderDataModule(_FolderTranslation):
    """Paired translation from a folder of aligned pairs (``data=aligned_folder data.path=DIR``), the Pix2Pix
    datasets' format: each file holds A (left half) and B (right half) side by side.

    Training pairs: the files of ``DIR/train`` (or of ``DIR`` itself when it has no ``train/``), every half read
    once, resized to ``load_size`` x ``load_size`` and held in memory (uint8: 0.5 MB a pair at 286 px, so 25 GB
    for edges2shoes' 50,000: lower ``load_size`` there); each example is a random ``crop``
    of both halves at the same place, both flipped or neither (``flip``). ``direction=BtoA`` makes the right half
    the input ``a``. Held-out pairs: the centre crops of ``DIR/<val_split>`` (or ``DIR/val``), or of the last
    ``val_fraction`` of the training files when neither exists.
    """

    def __init__(self, path: str, direction: str = "AtoB", load_size: int = 286, crop: int = 256, flip: bool = True,
                 channels: int = 3, val_split: str | None = "test", val_fraction: float = 0.1, batch_size: int = 4,
                 num_workers: int = 0, seed: int = 0) -> None:
        if direction not in DIRECTIONS:
            raise UserError(f"data.direction={direction} must be AtoB or BtoA")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        super().__init__(path, load_size, crop, flip, val_fraction, batch_size, num_workers, seed)
        self.direction, self.channels, self.val_split = direction, channels, val_split
        self.shape = (channels, crop, crop)

    @property
    def spec(self) -> DataSpec:
        return DataSpec({"a": self.shape, "b": self.shape}, target="b", source="a")

    def _files(self) -> tuple[list[Path], list[Path]]:
        """(training files, held-out files)."""
        root = Path(self.path)
        train_dir = root / "train" if (root / "train").is_dir() else root
        val_dir = next((root / s for s in dict.fromkeys([self.val_split, "val"]) if s and (root / s).is_dir()
                        and (root / s).resolve() != train_dir.resolve()), None)
        files = list_images(train_dir, "aligned pair folder", "data.path=DIR")
        if val_dir is None:
            return _hold_out(files, self.val_fraction)
        files = [f for f in files if val_dir not in f.parents]  # training from DIR itself: not the held-out ones
        if not files:
            raise UserError(f"no training pairs in {train_dir} outside {val_dir}: put them in {root / 'train'}")
        return files, list_images(val_dir, "held-out pair folder", "data.path=DIR")

    def _read_pairs(self, files: list[Path]) -> dict[str, Tensor]:
        """Every file's halves, resized: uint8 ``{"a", "b"}`` in this module's direction."""
        left, right = [], []
        for f in files:
            image = read_image(f, self.channels)
            h, w = image.shape[-2:]
            if w != 2 * h:
                raise UserError(f"image {f} is {w}x{h}: an aligned pair must be twice as wide as high "
                                "(A|B side by side)")
            left.append(self._resize(image[..., : w // 2]))
            right.append(self._resize(image[..., w // 2 :]))
        a, b = torch.stack(left), torch.stack(right)
        return {"a": a, "b": b} if self.direction == "AtoB" else {"a": b, "b": a}

    def _setup(self) -> None:
        files, val_files = self._files()
        self._train_full = self._read_pairs(files)
        self._train = _RandomCrops(self._train_full, self.crop, self.flip)
        self._held_out = {k: _centre(v, self.crop) for k, v in self._read_pairs(val_files).items()}
        log.info("aligned pairs %s (%s): %d training pairs, %d held out, resized to %d, crops %d", self.path,
                 self.direction, len(files), len(val_files), self.load_size, self.crop)

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random training pairs, chosen (and cropped) by ``seed``."""
        self.setup()
        rows = self._sample(self._train, n, seed)
        return {k: torch.stack([r[k] for r in rows]) for k in ("a", "b")}

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out pairs (centre crops; ``split="train"``: of the training pairs), chosen by ``seed``."""
        pairs = self._collection(split)
        return select(pairs, sample_indices(len(pairs["a"]), n, seed))


_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _images_or_none(folder: Path) -> list[Path] | None:
    """The image files in ``folder``; ``None`` when it does not exist or holds none (an optional folder)."""
    if not folder.is_dir():
        return None
    try:
        return list_images(folder, "folder", "data.path=DIR")
    except UserError:  # no images: as if it were not there
        return None


class UnalignedFolderDataModule(_FolderTranslation):
    """Unpaired translation from two folders of images (``data=unaligned_folder data.path=DIR``), CycleGAN's
    format: ``DIR/trainA`` and ``DIR/trainB``, held out ``DIR/testA`` and ``DIR/testB`` (or, where a test folder is
    missing, the last ``val_fraction`` of that domain's training files).

    Every image is read once, resized to ``load_size`` x ``load_size`` and held in memory (uint8); an epoch goes
    through the larger domain once, each image of A with a random image of B, each given its own random ``crop``
    and flip. ``channels=null`` takes them from the files (1 if all are greyscale, else 3), read from the file
    headers when the spec is first asked for.
    """

    def __init__(self, path: str, load_size: int = 286, crop: int = 256, flip: bool = True,
                 channels: int | None = None, val_fraction: float = 0.1, batch_size: int = 4, num_workers: int = 0,
                 seed: int = 0) -> None:
        if channels not in (None, 1, 3):
            raise UserError(f"channels must be 1, 3 or null, got {channels}: fix data.channels")
        super().__init__(path, load_size, crop, flip, val_fraction, batch_size, num_workers, seed)
        self._channels = channels
        self._listing: dict[str, list[Path]] = {}

    @property
    def channels(self) -> int:
        """The channels of both domains: data.channels, or found from the training files."""
        if self._channels is None:
            self._channels = self._detect_channels()
        return self._channels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.crop, self.crop)

    @property
    def spec(self) -> DataSpec:
        return DataSpec({"a": self.shape, "b": self.shape}, target="b", source="a", paired=False)

    def _train_files(self, domain: str) -> list[Path]:
        """The image files of ``DIR/train<domain>``; a ``UserError`` naming the folder when it is missing or empty."""
        if domain not in self._listing:
            folder = Path(self.path) / f"train{domain}"
            layout = "data.path must hold trainA/ and trainB/ (and optionally testA/, testB/): CycleGAN's layout"
            if not folder.is_dir():
                raise UserError(f"{folder} does not exist: {layout}")
            try:
                self._listing[domain] = list_images(folder, "domain folder", "data.path=DIR")
            except UserError:
                raise UserError(f"no images in {folder}: {layout}") from None
        return self._listing[domain]

    def _detect_channels(self) -> int:
        """1 when every training file of both domains is greyscale, 3 when neither domain's are; a ``UserError``
        when one domain is greyscale and the other not (converting one silently would hide a wrong folder)."""
        grey = {}
        for domain in "AB":
            modes = set()
            for f in self._train_files(domain):
                try:
                    with Image.open(f) as image:
                        modes.add(image.mode)
                except Exception:  # an unreadable file: read_image names it when the data is read
                    continue
            grey[domain] = bool(modes) and modes <= set(_GREY_MODES)
        if grey["A"] != grey["B"]:
            kind = {True: "grayscale", False: "RGB"}
            raise UserError(f"domain A images are {kind[grey['A']]} and domain B's are {kind[grey['B']]}: set "
                            "data.channels=1 or data.channels=3 to convert both")
        return 1 if grey["A"] else 3

    def _domain(self, domain: str) -> tuple[Tensor, Tensor, str]:
        """(training images, held-out images, where the held-out ones come from) of ``domain``, resized."""
        files = self._train_files(domain)
        test = Path(self.path) / f"test{domain}"
        test_files, where = _images_or_none(test), str(test)
        if test_files is None:
            files, test_files = _hold_out(files, self.val_fraction)
            where = f"the last {len(test_files)} of train{domain}"
        channels = self.channels
        train = torch.stack([self._read(f, channels) for f in files])
        held = torch.stack([self._read(f, channels) for f in test_files])
        return train, held, where

    def _setup(self) -> None:
        (train_a, held_a, from_a), (train_b, held_b, from_b) = self._domain("A"), self._domain("B")
        self._train_full = {"a": train_a, "b": train_b}
        self._train = _Unpaired(_RandomCrops({"a": train_a}, self.crop, self.flip),
                                _RandomCrops({"b": train_b}, self.crop, self.flip))
        self._held_out = {"a": _centre(held_a, self.crop), "b": _centre(held_b, self.crop)}
        log.info("unaligned domains %s: A %d training images, %d held out (%s); B %d training, %d held out (%s); "
                 "%d channel(s), resized to %d, crops %d", self.path, len(train_a), len(held_a), from_a, len(train_b),
                 len(held_b), from_b, self.channels, self.load_size, self.crop)

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random training crops of each domain, chosen (and cropped) by ``seed``."""
        self.setup()
        out = {}
        for offset, dataset in enumerate((self._train.a, self._train.b)):
            rows = self._sample(dataset, n, seed + offset)
            out.update({k: torch.stack([r[k] for r in rows]) for k in rows[0]})
        return out
