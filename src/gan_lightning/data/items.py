"""Data read one example at a time (image folders, prepared zips): examples decoded in DataLoader workers, batches
that resume exactly and shard across ranks like the in-memory loader's, and what to do with a file that cannot be
decoded in the middle of a run (``data.bad_files``).

An example's randomness (its crop, its flip, an unpaired partner) comes from a generator seeded by (seed, epoch,
index), so it is the same whichever worker reads it and after a resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..errors import BadDataFile, UserError
from .base import GANDataModule
from .convert import to_float
from .loader import _ShardedEpochs, sample_indices
from .sources import ImageSource, UnreadableImage

log = logging.getLogger(__name__)

BAD_FILES = ("error", "skip")
"""``data.bad_files``: ``error`` ends the run with one line naming the file (after the last checkpoint, which
stays); ``skip`` uses the next readable example instead and counts the skipped files in the log."""

_BAD = "_bad"  # batch key: the index of an unreadable example a batch row replaced (-1: none)
_TRIES = 16  # readable examples looked for after an unreadable one


def check_bad_files(choice: str) -> str:
    if choice not in BAD_FILES:
        raise UserError(f"data.bad_files={choice}: use error (stop with the file's name) or skip")
    return choice


def example_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The random stream of one example of one epoch."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 999_983 + index * 7_919) % 2**63)


class Items(Dataset):
    """Examples read one at a time. Subclasses give ``__len__``, ``name(i)`` (for messages) and ``item(i, gen)``:
    a dict of uint8 images (and int labels), raising ``UnreadableImage`` for a file that cannot be used.

    Indexed by ``(epoch, i)`` keys, which seed the example's random stream; an unreadable example is replaced by
    the next readable one, and the row says so in ``_bad`` (the loader decides what that means)."""

    seed: int = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, i: int) -> str:
        raise NotImplementedError

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        raise NotImplementedError

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Tensor]:
        epoch, i = key if isinstance(key, tuple) else (-1, key)
        tries, first = min(_TRIES, len(self)), None
        for step in range(tries):
            j = (i + step) % len(self)
            try:
                out = self.item(j, example_generator(self.seed, epoch, j))
            except UnreadableImage as err:
                log.debug("%s", err)
                first = first or err
                continue
            out[_BAD] = i if step else -1  # collated into a tensor per batch
            return out
        after = f"; the {tries - 1} after it cannot be read either" if tries > 1 else ""
        raise UserError(f"{first}{after}: check the data (prepare_data.py checks every file)")


class TensorItems(Items):
    """The rows of in-memory tensors as examples (a torchvision set with ``in_memory=false``: workers, no copy)."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = dict(tensors)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def name(self, i: int) -> str:
        return f"row {i}"

    def item(self, i: int, gen: torch.Generator) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


class ItemLoader(_ShardedEpochs):
    """Batches of ``items`` read in ``num_workers`` DataLoader workers, as float images
    in [-1, 1]; reshuffled every epoch, resumable to the batch, sharded across ranks (see ``_ShardedEpochs``).
    ``bad_files``: see ``BAD_FILES``."""

    def __init__(self, items: Items, batch_size: int, num_workers: int = 0, seed: int = 0, rank: int = 0,
                 world_size: int = 1, bad_files: str = "error", pin_memory: bool = False) -> None:
        self._init_epochs([len(items)], batch_size, True, True, seed, rank, world_size)
        self.items, self.bad_files = items, check_bad_files(bad_files)
        self.skipped: set[int] = set()
        self._plan: list[list[tuple[int, int]]] = []
        # Workers start anew each epoch (a fork, tenths of a second): persistent workers took seconds to shut down.
        # The loader's own generator: torch draws the workers' base seed from it at every iter(), which would
        # otherwise take a number from the global stream that the training noise comes from (and a resumed run,
        # which starts its iterator elsewhere, would draw other noise).
        self._loader = DataLoader(items, batch_sampler=_Plan(self), num_workers=num_workers, pin_memory=pin_memory,
                                  generator=torch.Generator().manual_seed(seed),
                                  prefetch_factor=4 if num_workers > 0 else None)

    def _batches(self, epoch: int, indices: list[Tensor]) -> Iterator[dict[str, Tensor]]:
        order = indices[0].tolist()
        first = self._batch
        bs = self.batch_size
        self._plan = [[(epoch, i) for i in order[b * bs : (b + 1) * bs]] for b in range(first, len(self))]
        for batch in _one_line_errors(self._loader):
            if self._epoch != epoch:  # a newer iter() took over
                return
            batch = self._finish(batch)
            self._batch += 1  # after the checks: a run stopped by a bad file resumes with this batch
            yield batch

    def _finish(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        bad = [int(i) for i in batch.pop(_BAD).tolist() if i >= 0]
        for i in bad:
            if self.bad_files == "error":
                raise BadDataFile(f"{self._reason(i)}: remove or replace it and resume from checkpoints/last.ckpt "
                                  "(ckpt_path=...), or set data.bad_files=skip")
            if i not in self.skipped:
                self.skipped.add(i)
                log.warning("skipped unreadable image %s (%d skipped so far; data.bad_files=skip)",
                            self.items.name(i), len(self.skipped))
        return {k: (v if v.dtype == torch.int64 else to_float(v)) for k, v in batch.items()}


    def _reason(self, i: int) -> str:
        """What is wrong with example ``i`` (read again here: the worker that found it only passed its index)."""
        try:
            self.items.item(i, example_generator(self.seed, self._epoch, i))
        except UnreadableImage as err:
            return str(err)
        return f"image {self.items.name(i)} cannot be read"


def _one_line_errors(loader: DataLoader) -> Iterator[dict[str, Tensor]]:
    """``loader``'s batches; a ``UserError`` raised in a worker (which torch re-raises here with the worker's
    traceback in its message) becomes one line again."""
    try:
        yield from loader
    except UserError as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        if len(lines) > 1 and "Traceback" in str(err):
            last = lines[-1]
            name = f"{type(err).__module__}.{type(err).__qualname__}: "
            raise type(err)(last[len(name):] if last.startswith(name) else last) from None
        raise


class _Plan:
    """The loader's batch sampler: the batches its ``ItemLoader`` planned for the epoch in progress."""

    def __init__(self, loader: ItemLoader) -> None:
        self.loader = loader

    def __iter__(self):
        return iter(list(self.loader._plan))

    def __len__(self) -> int:
        return len(self.loader._plan)


class ItemDataModule(GANDataModule):
    """A data module whose training examples are ``Items`` read per example (``self._items`` after setup)."""

    _items: Items
    num_workers: int = 0
    bad_files: str = "error"

    def train_dataloader(self) -> ItemLoader:
        self.setup()
        root = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return ItemLoader(self._items, self.batch_size, self.num_workers, self.seed, bad_files=self.bad_files,
                          pin_memory=root.type == "cuda", **self._dist())

    def content_hash(self) -> str:
        """What decides this data's images without decoding any: the files under ``path`` (names with their CRC or
        size and time) and the options that shape them (sizes, crops, channels, direction, ...). Keys the FID
        reference statistics of a user's data."""
        skip = {"batch_size", "num_workers", "bad_files", "seed"}
        options = {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_") and k not in skip
                   and isinstance(v, (int, float, str, bool, tuple, type(None)))}
        files = [ImageSource(p).content_hash() for p in (getattr(self, "path", None), getattr(self, "lr_path", None),
                                                          getattr(self, "val_path", None)) if p]
        return hashlib.sha256(json.dumps([type(self).__name__, files, options], default=str).encode()).hexdigest()

    def read_items(self, items: Items, indices, epoch: int = -1) -> dict[str, Tensor]:
        """``items`` at ``indices`` as one float batch (unreadable ones replaced), read in the loader's workers
        when there are many (the self-conditioned GAN clusters 20,000 images at start-up)."""
        keys = [(epoch, int(i)) for i in indices]
        chunks = [keys[i : i + 256] for i in range(0, len(keys), 256)]
        workers = self.num_workers if len(keys) >= 1024 else 0
        parts = list(DataLoader(items, batch_sampler=chunks, num_workers=workers, generator=torch.Generator()))
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0] if k != _BAD}
        return {k: (v if v.dtype == torch.int64 else to_float(v)) for k, v in batch.items()}

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random training examples (their crops and flips drawn from ``seed`` too)."""
        self.setup()
        return self.read_items(self._items, sample_indices(len(self._items), n, seed), epoch=-1 - seed)
