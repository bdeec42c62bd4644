"""Real-image reference statistics, computed once per (data, feature space) and cached on disk.

The cache key is a sha256 of the reference images themselves (the uint8 tensor, after the subset is drawn and the
images converted to the training shape), of the feature extractor's weights file, and of how features are made.
Changing one pixel, the subset, the weights or the recipe gives a different key, so stale statistics are never
reused (unlike torch-fidelity's own cache, keyed by a name). A user's folder or prepared zip is keyed instead by its
content hash (every file's name with its CRC or size and time, and the data options), so that a cache hit decodes
no image. Files: ``<cache_dir>/<dataset>-<split>-n<N>-<space>-
<key[:16]>.pt``, read with ``torch.load(weights_only=True)`` and written atomically (several processes may race).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .spaces import FeatureSpace

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when what is stored or how it is computed changes


@dataclass
class Reference:
    """The reference (real) side of a feature space: features of every reference image, its class histogram
    under the space's classifier (domain only) and where it came from."""

    features: Tensor  # float32 [N, d]
    class_counts: Tensor | None  # int64 [K]: predicted classes of the reference images
    meta: dict
    cache_hit: bool = False
    _fid_stats: dict | None = field(default=None, repr=False)

    def fid_statistics(self) -> dict:
        """torch-fidelity's (mu, sigma) of the features, in float64; computed once."""
        if self._fid_stats is None:
            from torch_fidelity.metric_fid import fid_features_to_statistics

            self._fid_stats = fid_features_to_statistics(self.features.double())
        return self._fid_stats


def data_sha256(images: Tensor) -> str:
    h = hashlib.sha256(f"{tuple(images.shape)} {images.dtype}".encode())
    h.update(memoryview(np.ascontiguousarray(images.numpy())).cast("B"))
    return h.hexdigest()


def select(images: Tensor, labels: Tensor | None, n: int | None, seed: int = 0):
    """``n`` reference images (all if ``n`` is None or at least their number) in a random order fixed by
    ``seed``, so that any prefix is a uniform random subset too (precision/recall use the first M)."""
    total = len(images)
    n = total if n is None else min(n, total)
    idx = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    how = f"random {n} of {total} (seed {seed}, without replacement)" if n < total else \
        f"all {total}, shuffled (seed {seed})"
    return images[idx], (labels[idx] if labels is not None else None), how


def cache_key(space: FeatureSpace, data_hash: str) -> str:
    recipe = {"format": CACHE_FORMAT, "space": space.name, "weights_sha256": space.weights_sha256,
              "resize": space.description.get("resize"), "features": space.description.get("features"),
              "data_sha256": data_hash}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def reference_for(space: FeatureSpace, images: Tensor | Callable[[], tuple[Tensor, str]], *, dataset: str,
                  split: str, selection: str = "", cache_dir: str | Path | None,
                  content_hash: str | None = None) -> Reference:
    """The reference statistics of uint8 ``images`` in ``space``, from the cache when they are there.

    For a user's data, ``images`` may be a function that reads them (returning the images and how they were
    chosen) and ``content_hash`` what decides them (the files' names and sizes, the data options): then the cache
    is keyed by that hash, and a hit reads no image at all."""
    path = None
    if content_hash is not None:
        key = cache_key(space, content_hash)
        if cache_dir:
            path = Path(cache_dir) / f"{dataset}-{split}-{space.name}-{key[:16]}.pt"
            cached = _read(path, key)
            if cached is not None:
                log.info("metrics: reference statistics from %s (data content %s)", path, content_hash[:16])
                return Reference(cached["features"], cached.get("class_counts"), cached["meta"], cache_hit=True)
    if callable(images):
        images, selection = images()
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"reference images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
    data_hash = data_sha256(images)
    meta = {"dataset": dataset, "split": split, "n": len(images), "selection": selection,
            "image_shape": list(images.shape[1:]), "data_sha256": data_hash}
    if content_hash is None:
        key = cache_key(space, data_hash)
        if cache_dir:
            path = Path(cache_dir) / f"{dataset}-{split}-n{len(images)}-{space.name}-{key[:16]}.pt"
            cached = _read(path, key)
            if cached is not None:
                log.info("metrics: reference statistics from %s", path)
                return Reference(cached["features"], cached.get("class_counts"), {**meta, "cache_key": key},
                                 cache_hit=True)
    meta["cache_key"] = key
    features, logits = space.extract(images)
    features = features.cpu()
    counts = None
    if space.classes:
        counts = torch.bincount(logits.argmax(1).cpu(), minlength=logits.shape[1])
    if path is not None:
        _write(path, {"key": key, "features": features, "class_counts": counts, "meta": meta})
        log.info("metrics: wrote reference statistics to %s", path)
    return Reference(features, counts, meta, cache_hit=False)


def _read(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, not fatal
        log.warning("metrics: unreadable cache file %s: recomputing", path)
        return None
    return blob if isinstance(blob, dict) and blob.get("key") == key else None


def _write(path: Path, blob: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        log.warning("metrics: cannot write the reference cache in %s (%s): statistics are not cached",
                    path.parent, e)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is as shareable as the data beside it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
