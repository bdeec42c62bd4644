"""The data module base classes: a spec of the batches, training batches, and fixed held-out batches."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch import Tensor

from ..errors import UserError
from .loader import TensorBatchLoader, data_device, sample_indices, select
from .spec import DataSpec

log = logging.getLogger(__name__)


class GANDataModule(pl.LightningDataModule):
    """Base class. ``shape``, ``num_classes``, ``class_names`` and ``bounded`` (or a whole ``spec``) are set in
    ``__init__`` without reading data; ``setup`` reads it (once).

    Subclasses provide ``train_dataloader`` and ``real_samples``; ``fixed_batch`` (held-out inputs for grids,
    metrics and ``generate.py``) defaults to ``real_samples``.
    """

    shape: tuple[int, ...]
    num_classes: int | None = None
    class_names: list[str] | None = None
    bounded: bool = True  # samples lie in [-1, 1]
    # The metrics' reference images are one class (a translation's target domain): class coverage compares the
    # samples' class histogram with the reference's, which means nothing there, so it is not scored.
    one_class_reference: bool = False

    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}: fix data.batch_size")
        self.batch_size, self.seed = batch_size, seed
        self._ready = False

    @property
    def spec(self) -> DataSpec:
        """The batch layout: ``{"x"}`` images or points, with labels ``"y"`` where the data has classes. Data
        modules with other keys (pairs, LR/HR) override this."""
        shapes = {"x": tuple(self.shape), **({"y": ()} if self.num_classes else {})}
        return DataSpec(shapes, num_classes=self.num_classes, class_names=self.class_names,
                        value_range=(-1.0, 1.0) if self.bounded else None)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """A batch of tensors already on ``device`` as it is (the training data on the device, or any CPU run):
        Lightning's own transfer walks the batch and calls ``.to`` on each tensor, every batch. (Here, not in the
        LightningModule: Lightning takes the data module's hook without a warning.)"""
        if isinstance(batch, dict) and all(isinstance(v, Tensor) and v.device == device for v in batch.values()):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def setup(self, stage: str | None = None) -> None:
        if not self._ready:
            self._setup()
            self._ready = True

    def _setup(self) -> None:
        raise NotImplementedError

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """A batch dict of ``n`` random training examples (with replacement only if n > size)."""
        raise NotImplementedError

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        """``n`` examples of ``split`` (held out where the data has a test split), the same for the same
        arguments: the inputs that grids, metrics and ``generate.py`` feed a generator that translates from data.
        By default ``real_samples`` (data without a test split)."""
        return self.real_samples(n, seed=seed)

    def split_size(self, split: str = "test") -> int | None:
        """How many distinct examples ``fixed_batch(n, split)`` draws from (the smallest collection for unpaired
        data); ``None``: not known without reading the data, or plenty. Metrics take at most this many, so that no
        image counts twice."""
        return None

    def _dist(self) -> dict[str, int]:
        """This process's rank and the world size (0 and 1 without a trainer)."""
        if self.trainer is None:
            return {"rank": 0, "world_size": 1}
        return {"rank": self.trainer.global_rank, "world_size": self.trainer.world_size}


class TensorDataModule(GANDataModule):
    """A data module whose training split is held as tensors after setup: ``_tensors`` (batch key -> tensor,
    uint8 images, float points, int64 labels), shuffled together or in ``_groups``."""

    _tensors: dict[str, Tensor]
    _groups: list[list[str]] | None = None
    device: str = "auto"  # where the training tensors live: see data_device()

    @property
    def _x(self) -> Tensor:
        return self._tensors["x"]

    @property
    def _y(self) -> Tensor | None:
        return self._tensors.get("y")

    def train_dataloader(self) -> TensorBatchLoader:
        self.setup()
        root = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        nbytes = sum(t.nbytes for t in self._tensors.values())
        device = data_device(self.device, root, nbytes)
        if device != root and root.type != "cpu":
            log.info("training data stays in host memory (data.device=%s)", self.device)
        return TensorBatchLoader(self._tensors, batch_size=self.batch_size, seed=self.seed, device=device,
                                 groups=self._groups, **self._dist())

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        self.setup()
        size = min(len(t) for t in self._tensors.values())
        return select(self._tensors, sample_indices(size, n, seed))
