"""Feature spaces: the networks that turn uint8 images into the features and class logits the metrics compare.

``inception``: the TF-ported Inception-v3 of the FID / IS papers, through torch-fidelity's
``FeatureExtractorInceptionV3`` (2048-d pool3 features for FID / KID / precision-recall, ``logits_unbiased`` for IS,
the TF1.x-compatible bilinear resize to 299x299). Numbers are named ``fid``, ``kid``, ``is``, ...

``domain``: the project's small classifier for the dataset (``domain.py``). Numbers are named ``fid_domain``,
``kid_domain``, ``is_domain``, ... and, from its predictions, ``classes_covered`` and ``class_kl``.

``domain_<tag>``: each further member of the classifier panel (``domain.panel_members``: ``fashion_mnist_b.pt``
gives ``domain_b``), after the primary. Numbers are named ``fid_domain_b``, ``kid_domain_b``, ...,
``classes_covered_domain_b``; the primary's names stay as they were.

The spaces are never mixed: each metric name belongs to one feature space.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from . import domain

log = logging.getLogger(__name__)

INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
INCEPTION_SHA256_PREFIX = "6726825d"  # torch hub's naming: the file's sha256 starts with this
FEATURE_CHOICES = ("auto", "inception", "domain")


@dataclass
class FeatureSpace:
    """A feature extractor and how it was made. ``extract(uint8 N×C×H×W) -> (features [N, d], logits [N, K])``."""

    name: str  # "inception", "domain" or a panel member's "domain_<tag>"
    suffix: str  # appended to metric names: "", "_domain" or "_domain_<tag>"
    network: nn.Module
    weights: str
    weights_sha256: str
    description: dict = field(default_factory=dict)
    batch_size: int = 500
    classes: bool = False  # its logits are the dataset's classes (class coverage)
    tag: str = ""  # a classifier panel member's tag ("b" for domain_b); "" for the primary and Inception

    @property
    def coverage_suffix(self) -> str:
        """Appended to the class-coverage names: none for the primary (``classes_covered``), the suffix for a
        panel member (``classes_covered_domain_b``)."""
        return self.suffix if self.tag else ""

    def to(self, device) -> FeatureSpace:
        self.network.to(device)
        return self

    @torch.no_grad()
    def extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        device = next(self.network.parameters()).device
        feats, logits = [], []
        for i in range(0, len(images), self.batch_size):
            f, lg = self._extract(images[i : i + self.batch_size].to(device))
            feats.append(f.float())
            logits.append(lg.float())
        return torch.cat(feats), torch.cat(logits)

    def _extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if self.name == "domain" or self.tag:
            return self.network.features(domain.preprocess(images))
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return self.network(images)

    def protocol(self) -> dict:
        return {"weights": self.weights, "weights_sha256": self.weights_sha256, **self.description}


# --- Inception ---------------------------------------------------------------------------------------------------
def inception_cache_path() -> Path:
    """Where torch hub (and so torch-fidelity) looks for the weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def find_inception_weights(path: str | None = None) -> Path | None:
    """The weights file given by ``path`` (which must exist), else torch hub's cached copy, else None.
    Nothing is downloaded."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"inception_weights: no such file: {p} (get {INCEPTION_URL})")
        return p
    p = inception_cache_path()
    return p if p.is_file() else None


def inception_missing_message(fallback: str | None) -> str:
    """The one line printed when the Inception weights are missing; ``fallback``: what is used instead."""
    return (f"Inception-v3 weights not found: put {INCEPTION_FILE} (from {INCEPTION_URL}) in "
            f"{inception_cache_path().parent}/ or pass inception_weights=PATH (train.py: "
            f"metrics.inception_weights=PATH); {fallback or 'no image metrics'}")


@lru_cache(maxsize=4)
def _check_inception_file(path: str, mtime: float) -> str:
    """The file's sha256, after checking that it loads with ``weights_only=True`` (plain tensors, no code) and
    holds Inception-v3's classifier."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
        raise UserError(f"{path} is not a readable Inception-v3 weights file ({type(e).__name__})") from None
    if not isinstance(state, dict) or tuple(getattr(state.get("fc.weight"), "shape", ())) != (1008, 2048):
        raise UserError(f"{path} is not torch-fidelity's Inception-v3 state dict (fc.weight must be 1008x2048)")
    return domain.sha256_file(path)


def load_inception(path: Path, warn=log.warning) -> FeatureSpace:
    """torch-fidelity's TF-ported Inception-v3 with the weights at ``path``."""
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    sha = _check_inception_file(str(path.resolve()), path.stat().st_mtime)
    # torch-fidelity reads the file with weights_only=False; it was just shown to hold only tensors.
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                          feature_extractor_weights_path=str(path))
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit Inception-v3 ({str(e).splitlines()[0]})") from None
    standard = sha.startswith(INCEPTION_SHA256_PREFIX)
    if not standard:
        warn(f"metrics: {path} has sha256 {sha[:8]}..., not the standard {INCEPTION_SHA256_PREFIX}... weights: its "
             "Inception numbers are not comparable with published ones")
    return FeatureSpace(
        name="inception", suffix="", network=net.eval(), weights=str(path), weights_sha256=sha, batch_size=50,
        description={
            "network": f"Inception-v3, TF 2015-12-05 weights ported by torch-fidelity {torch_fidelity.__version__} "
                       "(FeatureExtractorInceptionV3)",
            "standard_weights": standard,
            "features": "2048-d pool3 (FID, KID, precision/recall); logits_unbiased (IS)",
            "resize": "grayscale repeated to RGB; TF1.x-compatible bilinear resize to 299x299 "
                      "(torch-fidelity interpolate_bilinear_2d_like_tensorflow1x; = torchmetrics antialias=False)",
        },
    )


# --- domain ------------------------------------------------------------------------------------------------------
def find_domain_weights(dataset: str | None, path: str | None = None) -> Path | None:
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"domain_weights: no such file: {p} "
                            "(make one with python -m gan_lightning.metrics.train_domain)")
        return p
    return domain.shipped_weights(dataset) if dataset else None


def load_domain(path: Path, dataset: str | None, shape: tuple[int, ...], num_classes: int | None,
                tag: str = "") -> FeatureSpace:
    """The domain classifier at ``path`` as a feature space: the primary (``domain``), or with ``tag`` the panel
    member ``domain_<tag>``."""
    net, sha = domain.load_classifier(path)
    info = domain.weights_info(path)
    if num_classes is not None and net.head.out_features != num_classes:
        raise UserError(f"domain classifier {path} has {net.head.out_features} classes but the data has {num_classes}")
    architecture = next(name for name, cls in domain.ARCHITECTURES.items() if isinstance(net, cls))
    return FeatureSpace(
        name=f"domain_{tag}" if tag else "domain", suffix=f"_domain_{tag}" if tag else "_domain", network=net,
        weights=str(path), weights_sha256=sha, batch_size=1000, classes=True, tag=tag,
        description={
            "network": f"gan_lightning {type(net).__name__} trained on {info.get('dataset', dataset)} train",
            "architecture": architecture,
            "seed": info.get("recipe", {}).get("seed"),
            "test_accuracy": info.get("test_accuracy"),
            "features": f"{net.num_features}-d penultimate layer (FID, KID, precision/recall); logits (IS, classes)",
            "resize": domain.describe_resize(tuple(shape)),
        },
    )


def resolve_spaces(features: str, dataset: str | None, shape: tuple[int, ...], num_classes: int | None,
                   inception_weights: str | None = None, domain_weights: str | None = None, panel: bool = True,
                   warn=log.warning) -> list[FeatureSpace]:
    """The feature spaces to use for image data. ``auto``: Inception where its weights are present, plus the
    domain classifier where one exists for the dataset. A missing Inception file costs one warning line (and the
    domain features are used); a file given by path that does not exist is a ``UserError``.

    With ``panel``, the domain classifier's panel members follow it (``domain_b``, ``domain_c``, ...): the files
    ``<stem>_<tag>.pt`` beside its weights (``domain.panel_members``), so a user's ``domain_weights=DIR/mine.pt``
    has a panel only where ``DIR/mine_b.pt``, ... exist."""
    if features not in FEATURE_CHOICES:
        raise UserError(f"unknown feature space {features!r}; valid: {', '.join(FEATURE_CHOICES)}")
    spaces: list[FeatureSpace] = []
    domain_path = find_domain_weights(dataset, domain_weights)
    if features in ("auto", "inception"):
        inception_path = find_inception_weights(inception_weights)
        if inception_path is not None:
            spaces.append(load_inception(inception_path, warn))
        else:
            warn("metrics: " + inception_missing_message(
                "image metrics use the domain classifier's features instead (named *_domain, not comparable with "
                "Inception numbers)" if domain_path else f"no domain classifier for {dataset or 'this data'} "
                "either: no image metrics"))
    if features == "domain" and domain_path is None:
        raise UserError(f"no domain classifier weights for {dataset or 'this data'}: make them with "
                        "python -m gan_lightning.metrics.train_domain --data DATASET (fashion_mnist, mnist) or set "
                        "domain_weights=PATH")
    if domain_path is not None and (features == "domain" or features == "auto" or not spaces):
        spaces.append(load_domain(domain_path, dataset, shape, num_classes))
        if panel:
            spaces += [load_domain(path, dataset, shape, num_classes, tag=tag)
                       for tag, path in domain.panel_members(domain_path)]
    return spaces
