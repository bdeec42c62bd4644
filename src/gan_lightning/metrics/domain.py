"""The domain classifier: a small CNN trained by this project on a dataset's train split.

It gives a feature space for FID / KID / precision-recall (its 128-d penultimate activations), class
probabilities for the Inception Score computed with its logits (``is_domain``), and class predictions for class
coverage. It runs in seconds on a CPU and needs no download, unlike Inception-v3. Its numbers are only comparable
with numbers from the same weights (the sha256 is recorded with every result), never with Inception numbers.

Weights are shipped in ``weights/<dataset>.pt`` (float16 state dict) with ``weights/<dataset>.json`` (test
accuracy, sha256, how they were trained); ``python -m gan_lightning.metrics.train_domain --data DATASET`` makes them.

The classifier panel: beside the primary ``<dataset>.pt``, the files ``<dataset>_<tag>.pt`` (``tag``: lowercase
letters, e.g. ``fashion_mnist_b.pt``) are further classifiers of the same data, trained independently (another
seed, another architecture: ``train_domain --arch pool --seed 2 --name fashion_mnist_c``). Every score made with
the domain classifier is also made with each of them (``panel_weights``; docs/metrics.md, "The classifier panel").
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INPUT_SIZE = 28
DATASETS = ("fashion_mnist", "mnist")  # datasets the training script knows (28x28 grayscale, 10 classes)


def _block(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DomainClassifier(nn.Module):
    """28x28 grayscale in [-1, 1] -> logits; ``features`` also returns the penultimate activations.

    conv32 4x4/2 (14x14) - conv64 - max pool (7x7) - conv64 - max pool (3x3) - linear 128 + ReLU (the features) -
    linear (the logits). About 130k parameters, 5.5M multiply-adds per image.
    """

    def __init__(self, num_classes: int = 10, width: int = 32, num_features: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(1, w, kernel=4, stride=2),
            *_block(w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 2 * w), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * w * 9, num_features), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(num_features, num_classes)
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.body(x)))

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(penultimate features [N, 128], logits [N, classes])."""
        feats = self.body(x)
        return feats, self.head(feats)


class PoolClassifier(nn.Module):
    """A second architecture for the classifier panel, of the same size and cost as ``DomainClassifier`` but of
    another design: five 3x3 convolutions (24 - 24/2 - 48 - 48/2 - 96; strided, no max pooling, no fully connected
    hidden layer) and global average pooling. The features are the 96-d pooled activations. About 80k parameters,
    6.2M multiply-adds per image. Same interface as ``DomainClassifier`` (``body``, ``head``, ``features``)."""

    def __init__(self, num_classes: int = 10, width: int = 24, num_features: int | None = None):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(1, w), *_block(w, w, stride=2),
            *_block(w, 2 * w), *_block(2 * w, 2 * w, stride=2),
            *_block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(4 * w, num_classes)
        self.num_features = 4 * w

    forward = DomainClassifier.forward
    features = DomainClassifier.features


ARCHITECTURES = {"cnn": DomainClassifier, "pool": PoolClassifier}
"""The panel's architectures, by the name ``train_domain --arch`` takes."""


def architecture_of(state: dict) -> str:
    """Which of ``ARCHITECTURES`` a state dict is: ``DomainClassifier`` has a fully connected layer in its body."""
    return "cnn" if any(k.startswith("body.") and v.dim() == 2 for k, v in state.items()) else "pool"


def preprocess(images: Tensor) -> Tensor:
    """uint8 N×C×H×W -> float N×1×28×28 in [-1, 1]: RGB to luminance (ITU-R 601), antialiased bilinear resize
    when the images are not 28x28."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected uint8 N×C×H×W images, got {images.dtype} {tuple(images.shape)}")
    return _luma_28(images.float()).div_(127.5).sub_(1)


def preprocess_float(images: Tensor) -> Tensor:
    """float N×C×H×W images in [-1, 1] -> the network's input, as ``preprocess`` without the uint8 rounding (for
    differences smaller than a grey level: ``ppl_domain``)."""
    if not images.is_floating_point() or images.dim() != 4:
        raise ValueError(f"expected float N×C×H×W images, got {images.dtype} {tuple(images.shape)}")
    return _luma_28(images.float())


def _luma_28(x: Tensor) -> Tensor:
    if x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


def describe_resize(shape: tuple[int, ...]) -> str:
    """How images of ``shape`` (C, H, W) reach the classifier."""
    steps = []
    if shape[0] == 3:
        steps.append("RGB to luminance (ITU-R 601)")
    if tuple(shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        steps.append(f"antialiased bilinear resize {shape[-2]}x{shape[-1]} -> {INPUT_SIZE}x{INPUT_SIZE}")
    return ", ".join(steps) or f"none ({INPUT_SIZE}x{INPUT_SIZE} grayscale, as trained)"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_weights(dataset: str) -> Path | None:
    """The package's weights for ``dataset``, if there are any."""
    path = WEIGHTS_DIR / f"{dataset}.pt"
    return path if path.is_file() else None


MEMBER_TAG = re.compile(r"[a-z]+")
"""A panel member's tag: the part of its file name after ``<primary stem>_`` (one lowercase letter or word)."""


def panel_members(primary: str | Path) -> list[tuple[str, Path]]:
    """The panel members beside the classifier file ``primary``: ``(tag, path)`` of every ``<stem>_<tag>.pt`` in
    its folder, sorted by tag. For the package's weights, ``weights/fashion_mnist_b.pt``, ...; for a user's
    ``domain_weights=DIR/mine.pt``, ``DIR/mine_<tag>.pt`` (none: no panel)."""
    primary = Path(primary)
    found = []
    for path in primary.parent.glob(f"{glob.escape(primary.stem)}_*.pt"):
        tag = path.stem[len(primary.stem) + 1 :]
        if MEMBER_TAG.fullmatch(tag) and path.is_file():
            found.append((tag, path))
    return sorted(found)


def panel_weights(dataset: str, folder: str | Path | None = None) -> list[Path]:
    """The classifier panel of ``dataset``: the primary ``<folder>/<dataset>.pt`` first, then the members
    ``<folder>/<dataset>_<tag>.pt`` sorted by tag (a member's name is its tag). ``folder``: the package's
    ``weights`` folder by default (another one for stand-ins). Empty where there is no primary."""
    primary = Path(folder or WEIGHTS_DIR) / f"{dataset}.pt"
    if not primary.is_file():
        return []
    return [primary] + [path for _, path in panel_members(primary)]


def weights_info(path: Path) -> dict:
    """The json written beside a weights file by the training script ({} if there is none)."""
    info_path = path.with_suffix(".json")
    if not info_path.is_file():
        return {}
    try:
        return json.loads(info_path.read_text())
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> tuple[nn.Module, str]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
        raise UserError(f"cannot read domain classifier weights {path} ({type(e).__name__}): "
                        "retrain them with python -m gan_lightning.metrics.train_domain") from None
    if not isinstance(state, dict) or "head.weight" not in state:
        raise UserError(f"{path} is not a domain classifier state dict: "
                        "retrain it with python -m gan_lightning.metrics.train_domain")
    num_classes, num_features = state["head.weight"].shape
    width = state["body.0.weight"].shape[0] if "body.0.weight" in state else 32
    net = ARCHITECTURES[architecture_of(state)](num_classes=num_classes, width=width, num_features=num_features)
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit the domain classifier ({str(e).splitlines()[0]})") from None
    return net.eval().requires_grad_(False), sha256_file(path)


def load_classifier(path: str | Path) -> tuple[nn.Module, str]:
    """(classifier in eval mode on CPU, sha256 of the file). A fresh copy each call (callers move it to devices)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such domain classifier weights file: {path}")
    net, sha = _load(str(path.resolve()), path.stat().st_mtime)
    import copy

    return copy.deepcopy(net), sha
