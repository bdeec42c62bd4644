"""Batches from tensors in memory: resumable, sharded for DDP, any batch keys."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import UserError
from .convert import to_float

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


def check_one_batch(n: int, batch_size: int, world_size: int) -> None:
    if n // world_size < batch_size:
        raise UserError(
            f"only {n} training examples for {world_size} process(es), fewer than one batch of "
            f"{batch_size} each: lower data.batch_size or use more data"
        )


def sample_indices(n_total: int, n: int, seed: int) -> Tensor:
    """n random indices: without replacement if n <= n_total, else with replacement."""
    gen = torch.Generator().manual_seed(seed)
    if n <= n_total:
        return torch.randperm(n_total, generator=gen)[:n]
    return torch.randint(n_total, (n,), generator=gen)


def select(tensors: Mapping[str, Tensor], idx: Tensor | int) -> dict[str, Tensor]:
    """Rows ``idx`` of every tensor as a batch: uint8 images become float in [-1, 1], labels stay int64."""
    return {k: (v[idx] if v.dtype == torch.int64 else to_float(v[idx])) for k, v in tensors.items()}


def _as_tensors(x: Tensor | Mapping[str, Tensor], y: Tensor | None) -> dict[str, Tensor]:
    if isinstance(x, Mapping):
        return dict(x)
    tensors = {"x": x}
    if y is not None:
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        tensors["y"] = y.long()
    return tensors


def epoch_permutation(n: int, seed: int, epoch: int, group: int = 0, shuffle: bool = True) -> Tensor:
    """The order of ``n`` examples in ``epoch``: the same on every rank and for every loader kind. Seed and epoch
    are mixed so that seed s + 1 is not seed s shifted by one epoch; a second group's permutation is seeded apart
    from the first's (the first's is what a single group always drew)."""
    if not shuffle:
        return torch.arange(n)
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch + group * 7_919_009) % 2**63)
    return torch.randperm(n, generator=gen)


class _ShardedEpochs:
    """What the loaders share: an epoch is a seeded permutation of the examples, all ranks draw the same one and
    each takes its own contiguous slice of it, so shards are disjoint and equally long; the position (epoch,
    batches done) is the loader's state, so a resumed run continues with the very next batch.

    Each ``iter()`` starts the next epoch (the first starts epoch 0), except right after ``load_state_dict``,
    which continues where the saved loader stopped. Subclasses give ``_batches(epoch, indices)``, which yields the
    batches of this rank's ``indices`` from batch ``self._batch`` on, advancing ``self._batch``."""

    def _init_epochs(self, sizes: Sequence[int], batch_size: int, shuffle: bool, drop_last: bool, seed: int,
                     rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}: fix data.batch_size")
        n = min(sizes)
        if drop_last:
            check_one_batch(n, batch_size, world_size)
        elif n == 0:
            raise UserError("the training data is empty: check the data options")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._sizes = list(sizes)
        self._per_rank = n // world_size if drop_last else math.ceil(n / world_size)
        self._epoch = 0  # epoch in progress (or last finished)
        self._batch = 0  # batches of that epoch already yielded
        self._continue = True  # next iteration continues (epoch, batch) instead of a new epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self._per_rank // self.batch_size
        return math.ceil(self._per_rank / self.batch_size)

    def _indices(self, epoch: int, group: int = 0) -> Tensor:
        """This rank's example indices of ``group`` for ``epoch``."""
        n = self._sizes[group]
        perm = epoch_permutation(n, self.seed, epoch, group, self.shuffle)
        total = self._per_rank * self.world_size
        if total > n:  # drop_last=False: pad by wrapping around so every rank gets as many
            perm = perm.repeat(math.ceil(total / n))[:total]
        return perm[self.rank * self._per_rank : (self.rank + 1) * self._per_rank]

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        # The body runs lazily, so an ``iter()`` that is never advanced (Lightning calls one to check the loader
        # is iterable) does not consume an epoch.
        if not self._continue or self._batch >= len(self):
            self._epoch, self._batch = self._epoch + 1, 0
        self._continue = False
        epoch = self._epoch
        indices = [self._indices(epoch, g) for g in range(len(self._sizes))]
        yield from self._batches(epoch, indices)

    def _batches(self, epoch: int, indices: list[Tensor]) -> Iterator[dict[str, Tensor]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batch": self._batch}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._epoch, self._batch = int(state_dict["epoch"]), int(state_dict["batch"])
        self._continue = True


class TensorBatchLoader(_ShardedEpochs):
    """Batches of in-memory tensors, reshuffled every epoch, resumable, sharded for DDP (see ``_ShardedEpochs``).

    ``x`` is one tensor (with labels ``y``: batches ``{"x", "y"}``) or a dict of tensors, batched under their keys.
    The keys are shuffled together (one permutation: the rows of a pair stay paired) unless ``groups`` splits
    them into independently shuffled collections (unpaired translation: ``[["a"], ["b"]]``, each group its own
    permutation and its own length; an epoch is as long as the shortest).
    With ``device``, the tensors are moved there once; batches are then indexed and normalised on it.
    """

    def __init__(
        self,
        x: Tensor | Mapping[str, Tensor],
        y: Tensor | None = None,
        batch_size: int = 64,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        groups: Sequence[Sequence[str]] | None = None,
    ) -> None:
        tensors = _as_tensors(x, y)
        for key, t in tensors.items():
            if t.dtype not in (torch.uint8, torch.float32, torch.int64):
                raise TypeError(f"{key} must be uint8, float32 or int64 (labels), got {t.dtype}")
        self.groups = [list(g) for g in groups] if groups else [list(tensors)]
        if sorted(k for g in self.groups for k in g) != sorted(tensors):
            raise ValueError(f"groups {self.groups} must name every key of {sorted(tensors)} once")
        for group in self.groups:
            if len({len(tensors[k]) for k in group}) > 1:
                raise ValueError(f"the tensors of {group} must have as many rows: "
                                 f"{ {k: len(tensors[k]) for k in group} }")
        self._init_epochs([len(tensors[g[0]]) for g in self.groups], batch_size, shuffle, drop_last, seed, rank,
                          world_size)
        self.tensors = {k: v.to(device) for k, v in tensors.items()}

    @property
    def x(self) -> Tensor:
        return self.tensors["x"]

    @property
    def y(self) -> Tensor | None:
        return self.tensors.get("y")

    def _batches(self, epoch: int, indices: list[Tensor]) -> Iterator[dict[str, Tensor]]:
        indices = [idx.to(self.tensors[g[0]].device) for idx, g in zip(indices, self.groups)]
        while self._epoch == epoch and self._batch < len(self):  # stop if a newer iter() took over
            lo, hi = self._batch * self.batch_size, (self._batch + 1) * self.batch_size
            self._batch += 1
            batch: dict[str, Tensor] = {}
            for group, idx in zip(self.groups, indices):
                batch.update(select({k: self.tensors[k] for k in group}, idx[lo:hi]))
            yield batch
