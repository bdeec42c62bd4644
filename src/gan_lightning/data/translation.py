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


from ..errors import UserError
from .base import GANDataModule
from .convert import luminance, resize, to_float, to_uint8
from .datasets import TorchvisionDataModule
from .items import ItemDataModule, ItemLoader, Items, TensorItems, check_bad_files
from .loader import TensorBatchLoader, sample_indices, select
from .sources import ImageSource, UnreadableImage
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
    one_class_reference = True  # the reference is domain b: one class
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

    def train_dataloader(self) -> TensorBatchLoader | ItemLoader:
        if self.in_memory:
            return super().train_dataloader()
        self.setup()
        a, b = (TensorItems({k: v for k, v in self._tensors.items() if k in group}) for group in self._groups)
        return ItemLoader(_Unpaired(a, b, seed=self.seed), self.batch_size, self.num_workers, self.seed,
                          **self._dist())

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


# --- image folders (or prepared zips) ----------------------------------------------------------------------------
def _crop_box(h: int, w: int, crop: int, gen: torch.Generator | None) -> tuple[int, int]:
    """(top, left) of a ``crop`` window in an h x w image: random with ``gen``, else the centre."""
    if gen is None:
        return (h - crop) // 2, (w - crop) // 2
    return int(torch.randint(0, h - crop + 1, (), generator=gen)), int(torch.randint(0, w - crop + 1, (), generator=gen))


def _crop_and_flip(images: list[Tensor], crop: int, flip: bool, gen: torch.Generator | None) -> list[Tensor]:
    """The SAME crop (random with ``gen``, else the centre) and flip of every image of a row (the halves of an
    aligned pair stay aligned)."""
    top, left = _crop_box(*images[0].shape[-2:], crop, gen)
    flipped = flip and gen is not None and bool(torch.rand((), generator=gen) < 0.5)
    out = []
    for x in images:
        x = x[..., top : top + crop, left : left + crop]
        out.append((x.flip(-1) if flipped else x).contiguous())
    return out


def _hold_out(n: int, fraction: float) -> tuple[range, range]:
    """(training indices, held-out indices) of ``n`` files: the last ``fraction`` (at least one) held out; a single
    file is both."""
    n_val = max(1, round(n * fraction)) if n > 1 else 0
    return range(n - n_val), (range(n - n_val, n) if n_val else range(n))


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


class _Resized(Items):
    """Images of a source (a subset of its indices), each resized to ``load_size`` x ``load_size`` and cropped
    to ``crop`` (randomly and flipped when training, else the centre): subclasses split the image into keys."""

    def __init__(self, source: ImageSource, indices: Sequence[int], channels: int, load_size: int, crop: int,
                 flip: bool, train: bool, seed: int) -> None:
        self.source, self.indices, self.channels = source, list(indices), channels
        self.load_size, self.crop, self.flip, self.train, self.seed = load_size, crop, flip, train, seed

    def __len__(self) -> int:
        return len(self.indices)

    def name(self, i: int) -> str:
        return self.source.path_of(self.indices[i])

    def _resize(self, image: Tensor) -> Tensor:
        """A C x H x W uint8 image resized (antialiased) to load_size x load_size, as Pix2Pix and CycleGAN do."""
        size = self.load_size
        return image if image.shape[-2:] == (size, size) else resize(image[None], size)[0]

    def _read(self, i: int) -> Tensor:
        return self.source.read(self.indices[i], self.channels)


class _AlignedPairs(_Resized):
    """A|B pair files: both halves resized, then the same crop and flip; keys ``a``, ``b`` in ``direction``."""

    def __init__(self, *args, direction: str = "AtoB", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.direction = direction

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        image = self._read(i)
        h, w = image.shape[-2:]
        if w != 2 * h:
            raise UnreadableImage(self.name(i), f"is {w}x{h}: an aligned pair must be twice as wide as high (A|B side "
                                                "by side)")
        left, right = self._resize(image[..., : w // 2]), self._resize(image[..., w // 2 :])
        a, b = _crop_and_flip([left, right] if self.direction == "AtoB" else [right, left], self.crop, self.flip,
                              gen if self.train else None)
        return {"a": a, "b": b}


class _DomainImages(_Resized):
    """The images of one domain under ``key``, each resized, cropped and flipped on its own."""

    def __init__(self, *args, key: str = "a", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        (x,) = _crop_and_flip([self._resize(self._read(i))], self.crop, self.flip, gen if self.train else None)
        return {self.key: x}


class _Unpaired(Items):
    """Two collections shuffled apart (CycleGAN's unaligned dataset): example i is example ``i % len(a)`` of ``a``
    and a random example of ``b`` (drawn from the example's own stream), ``max(len(a), len(b))`` examples."""

    def __init__(self, a: Items, b: Items, seed: int = 0) -> None:
        self.a, self.b, self.seed = a, b, seed

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def name(self, i: int) -> str:
        return self.a.name(i % len(self.a))

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        j = int(torch.randint(len(self.b), (), generator=gen))
        return {**self.a.item(i % len(self.a), gen), **self.b.item(j, gen)}


class _FolderTranslation(ItemDataModule):
    """What the two folder modules share: sizes, crops, the loader, held-out centre crops read when asked for."""

    _held: dict[str, Items]  # split -> centre crops of its examples ("test": held out, "train": the training ones)

    def __init__(self, path: str, load_size: int, crop: int, flip: bool, val_fraction: float, batch_size: int,
                 num_workers: int, bad_files: str, seed: int) -> None:
        _check_sizes(load_size, crop, flip, val_fraction)
        super().__init__(batch_size, seed)
        self.path = os.path.expanduser(str(path))
        self.load_size, self.crop, self.flip = load_size, crop, flip
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self.bad_files = check_bad_files(bad_files)

    def _options(self, channels: int, train: bool) -> dict:
        return {"channels": channels, "load_size": self.load_size, "crop": self.crop, "flip": self.flip,
                "train": train, "seed": self.seed}

    def _held_items(self, split: str) -> list[Items]:
        """The centre-crop collections of ``split`` ("train": of the training files, else the held-out ones)."""
        self.setup()
        return self._held["train" if split == "train" else "test"]

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` held-out examples (centre crops; ``split="train"``: of the training images), chosen by ``seed``;
        for unpaired data, ``n`` of each domain chosen apart."""
        out: dict[str, Tensor] = {}
        for offset, items in enumerate(self._held_items(split)):
            out.update(self.read_items(items, sample_indices(len(items), n, seed + offset)))
        return out

    def split_size(self, split: str = "test") -> int | None:
        """The smaller number of distinct images of ``split`` among ``a`` and ``b``."""
        return min(len(items) for items in self._held_items(split))


class AlignedFolderDataModule(_FolderTranslation):
    """Paired translation from aligned pairs (``data=aligned_folder data.path=DIR``), the Pix2Pix datasets' format:
    each file holds A (left half) and B (right half) side by side. ``DIR`` is a folder or a zip made by
    ``prepare_data.py layout=aligned``.

    Training pairs: the files of ``DIR/train`` (or of ``DIR`` itself when it has no ``train/``), read one at a time
    in the loader's workers (memory does not grow with the data), both halves resized to ``load_size`` and given the
    same random ``crop`` and flip (``flip``). ``direction=BtoA`` makes the right half the input ``a``. Held-out
    pairs: the centre crops of ``DIR/<val_split>`` (or ``DIR/val``), or of the last ``val_fraction`` of the
    training files when neither exists.
    """

    def __init__(self, path: str, direction: str = "AtoB", load_size: int = 286, crop: int = 256, flip: bool = True,
                 channels: int = 3, val_split: str | None = "test", val_fraction: float = 0.1, batch_size: int = 4,
                 num_workers: int = 0, bad_files: str = "error", seed: int = 0) -> None:
        if direction not in DIRECTIONS:
            raise UserError(f"data.direction={direction} must be AtoB or BtoA")
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}: fix data.channels")
        super().__init__(path, load_size, crop, flip, val_fraction, batch_size, num_workers, bad_files, seed)
        self.direction, self.channels, self.val_split = direction, channels, val_split
        self.shape = (channels, crop, crop)

    @property
    def spec(self) -> DataSpec:
        return DataSpec({"a": self.shape, "b": self.shape}, target="b", source="a")

    def _sources(self) -> tuple[ImageSource, range, ImageSource, range]:
        """(training source, its indices, held-out source, its indices)."""
        root = ImageSource(self.path, what="data.path")
        train = root.sub("train") if root.has("train") else root
        val_name = next((s for s in dict.fromkeys([self.val_split, "val"]) if s and s != "train" and root.has(s)),
                        None)
        if val_name is None:
            train.require("data.path must hold the pair files, or train/ (and test/): the pix2pix layout")
            keep, held = _hold_out(len(train), self.val_fraction)
            return train, keep, train, held
        val = root.sub(val_name)
        if train is root:  # training from DIR itself: not the held-out ones
            train.names = [n for n in train.names if not n.startswith(f"{val.prefix}/")]
        train.require(f"no training pairs outside {val.where()}: put them in {root.where('train')}")
        return train, range(len(train)), val, range(len(val))

    def _setup(self) -> None:
        train, keep, val, held = self._sources()
        pairs = functools.partial(_AlignedPairs, direction=self.direction)
        self._items = pairs(train, keep, **self._options(self.channels, train=True))
        self._held = {"test": [pairs(val, held, **self._options(self.channels, train=False))],
                      "train": [pairs(train, keep, **self._options(self.channels, train=False))]}
        log.info("aligned pairs %s (%s): %d training pairs, %d held out, resized to %d, crops %d", self.path,
                 self.direction, len(keep), len(held), self.load_size, self.crop)


class UnalignedFolderDataModule(_FolderTranslation):
    """Unpaired translation from two folders of images (``data=unaligned_folder data.path=DIR``), CycleGAN's
    format: ``DIR/trainA`` and ``DIR/trainB``, held out ``DIR/testA`` and ``DIR/testB`` (or, where a test folder is
    missing, the last ``val_fraction`` of that domain's training files). ``DIR`` is a folder or a zip made by
    ``prepare_data.py layout=unaligned``.

    Images are read one at a time in the loader's workers, resized to ``load_size`` x ``load_size``; an epoch goes
    through the larger domain once, each image of A with a random image of B, each given its own random ``crop``
    and flip. ``channels=null`` takes them from the files (1 if the first files of both domains are greyscale,
    else 3), read from their headers when the spec is first asked for.
    """

    def __init__(self, path: str, load_size: int = 286, crop: int = 256, flip: bool = True,
                 channels: int | None = None, val_fraction: float = 0.1, batch_size: int = 4, num_workers: int = 0,
                 bad_files: str = "error", seed: int = 0) -> None:
        if channels not in (None, 1, 3):
            raise UserError(f"channels must be 1, 3 or null, got {channels}: fix data.channels")
        super().__init__(path, load_size, crop, flip, val_fraction, batch_size, num_workers, bad_files, seed)
        self._channels = channels
        self._root: ImageSource | None = None

    @property
    def channels(self) -> int:
        """The channels of both domains: data.channels, or found from the training files' headers."""
        if self._channels is None:
            self._channels = self._detect_channels()
        return self._channels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.crop, self.crop)

    @property
    def spec(self) -> DataSpec:
        return DataSpec({"a": self.shape, "b": self.shape}, target="b", source="a", paired=False)

    def _train_source(self, domain: str) -> ImageSource:
        """The images of ``DIR/train<domain>``; a ``UserError`` naming the folder when it is missing or empty."""
        if self._root is None:
            self._root = ImageSource(self.path, what="data.path")
        folder = self._root.sub(f"train{domain}")
        if not folder.names:
            layout = "data.path must hold trainA/ and trainB/ (and optionally testA/, testB/): CycleGAN's layout"
            exists = (Path(self.path) / f"train{domain}").is_dir() if not self._root.is_zip else False
            raise UserError(f"no images in {folder.where()}: {layout}" if exists else
                            f"{folder.where()} does not exist: {layout}")
        return folder

    def _detect_channels(self) -> int:
        """1 when both domains' first files are greyscale, 3 when neither's are; a ``UserError`` when one domain
        is greyscale and the other not (converting one silently would hide a wrong folder)."""
        grey = {d: self._train_source(d).channels() == 1 for d in "AB"}
        if grey["A"] != grey["B"]:
            kind = {True: "grayscale", False: "RGB"}
            raise UserError(f"domain A images are {kind[grey['A']]} and domain B's are {kind[grey['B']]}: set "
                            "data.channels=1 or data.channels=3 to convert both")
        return 1 if grey["A"] else 3

    def _domain(self, domain: str) -> tuple[ImageSource, range, ImageSource, range, str]:
        """(training source, indices, held-out source, indices, where the held-out images come from)."""
        train = self._train_source(domain)
        test = self._root.sub(f"test{domain}")
        if test.names:
            return train, range(len(train)), test, range(len(test)), test.where()
        keep, held = _hold_out(len(train), self.val_fraction)
        return train, keep, train, held, f"the last {len(held)} of train{domain}"

    def _setup(self) -> None:
        channels, parts, where = self.channels, {}, {}
        for domain, key in (("A", "a"), ("B", "b")):
            train, keep, test, held, where[key] = self._domain(domain)
            items = functools.partial(_DomainImages, key=key)
            parts[key] = (items(train, keep, **self._options(channels, train=True)),
                          items(test, held, **self._options(channels, train=False)),
                          items(train, keep, **self._options(channels, train=False)))
        self._items = _Unpaired(parts["a"][0], parts["b"][0], seed=self.seed)
        self._held = {"test": [parts["a"][1], parts["b"][1]], "train": [parts["a"][2], parts["b"][2]]}
        log.info("unaligned domains %s: A %d training images, %d held out (%s); B %d training, %d held out (%s); "
                 "%d channel(s), resized to %d, crops %d", self.path, len(parts["a"][0]), len(parts["a"][1]),
                 where["a"], len(parts["b"][0]), len(parts["b"][1]), where["b"], channels, self.load_size, self.crop)

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random training crops of each domain, chosen (and cropped) by ``seed``."""
        self.setup()
        out: dict[str, Tensor] = {}
        for offset, items in enumerate((self._items.a, self._items.b)):
            out.update(self.read_items(items, sample_indices(len(items), n, seed + offset), epoch=-1 - seed))
        return out
