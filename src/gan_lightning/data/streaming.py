"""Training from LitData chunks (``data=streaming data.path=DIR_OR_URL``): every rank of every node streams its own
share of the images from a local folder or object storage (``s3://``, ``gs://``, ``azure://``), with a local cache.

``write_chunks`` turns an ``ImageSource`` (a zip made by ``prepare_data.py``, or a folder of images of one size)
into LitData chunks (``prepare_data.py format=litdata`` calls it): each example is the image as a uint8
C x H x W tensor, stored raw (read back without decoding: several times the images/s of PNGs), with its int label
``"y"`` when the data is labelled. Beside the chunks, ``gan_lightning.json`` holds what a data module needs
before reading any image: channels, resolution, count, class names and the source's content hash.

``StreamingDataModule`` reads them with LitData's ``StreamingDataset`` and ``StreamingDataLoader``: LitData gives
each rank of each node a disjoint, equally long share (``drop_last``), shuffles by seed and epoch, and the loader's
position is a ``state_dict`` that Lightning stores in the checkpoint, so a resumed run reads the batches an
uninterrupted one would have read.

LitData is imported only here, when first needed (``import gan_lightning.data`` stays fast), and never checks its
version on the network (``LITDATA_DISABLE_VERSION_CHECK``): training is offline-safe.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .base import GANDataModule
from .convert import to_float
from .loader import check_one_batch, sample_indices
from .sources import ImageSource, one_line

log = logging.getLogger(__name__)

META_FILE = "gan_lightning.json"
"""What ``write_chunks`` writes beside LitData's ``index.json``: ``{"format", "count", "channels", "resolution",
"class_names" (null: unlabelled), "content_hash", "litdata"}`` (the version that wrote them)."""
FORMAT = "gan_lightning/litdata-images-v1"
DEFAULT_CHUNK_BYTES = "64MB"
"""LitData's own default: large enough that object storage serves whole chunks efficiently; a rank's share is
cut at item boundaries, so small datasets still spread over every rank and worker."""
_REMOTE = ("s3://", "gs://", "azure://", "r2://", "hf://", "local:")
"""URL prefixes LitData streams from through its cache (``local:DIR``: a folder read as if it were remote)."""


def litdata():
    """The ``litdata`` module, imported with its network version check off (LitData reads the environment variable
    when first imported; the module flag covers a LitData that something imported earlier)."""
    os.environ["LITDATA_DISABLE_VERSION_CHECK"] = "1"  # also reaches processes LitData starts
    import litdata as ld
    import litdata.helpers

    litdata.helpers._LITDATA_DISABLE_VERSION_CHECK = 1
    return ld


def is_remote(path: str) -> bool:
    return str(path).startswith(_REMOTE)


# --- writing -------------------------------------------------------------------------------------------------------
class _Examples(Dataset):
    """The source's images as uint8 tensors of one size (checked), with their labels: decoded in DataLoader workers
    while the main process writes the chunks."""

    def __init__(self, source: ImageSource, channels: int, resolution: int, labels: list[int] | None,
                 order: list[int]) -> None:
        self.source, self.channels, self.resolution, self.labels = source, channels, resolution, labels
        self.order = order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int) -> dict[str, Any]:
        i = self.order[position]
        x = self.source.read(i, self.channels)
        if tuple(x.shape[-2:]) != (self.resolution, self.resolution):
            raise UserError(f"image {self.source.path_of(i)} is {x.shape[-1]}x{x.shape[-2]} px but the first image is "
                            f"{self.resolution}x{self.resolution}: LitData chunks hold images of one square size; "
                            "make them with prepare_data.py resolution=N")
        out: dict[str, Any] = {"x": x}
        if self.labels is not None:
            out["y"] = int(self.labels[i])
        return out


def write_chunks(source: ImageSource, out_dir: str | os.PathLike, num_workers: int = 1,
                 chunk_bytes: int | str = DEFAULT_CHUNK_BYTES, labels: str | None = "auto",
                 channels: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Write ``source``'s images (all of one square size) as LitData chunks into the new folder ``out_dir``, with
    ``gan_lightning.json`` beside them; returns what that file holds.

    ``num_workers`` processes decode the images (1 or fewer: this process); ``chunk_bytes`` is the size of a chunk
    (LitData's ``chunk_bytes``: an int or ``"64MB"``). ``labels`` as ``ImageSource.labels`` takes it (``auto``: a
    ``dataset.json`` when there is one); ``channels`` 1 or 3, or ``None`` for what the images are. Nothing is left
    in ``out_dir`` when an image cannot be used: the chunks are written into ``<out_dir>.partial`` and moved into
    place at the end.

    The images are written in an order shuffled by ``seed``: LitData shuffles the chunks and the items within each
    chunk, never across chunks, so consecutive items of a batch come from one chunk; in the source's order (class
    subfolders, sorted names) a batch would hold one class.
    """
    ld = litdata()
    from litdata.streaming.writer import BinaryWriter

    from .items import _one_line_errors

    out = Path(os.path.expanduser(str(out_dir)))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not an empty folder: LitData chunks go into a new folder")
    source.require("give a folder of images or a zip made by prepare_data.py")
    found = source.labels(labels)
    channels = channels or source.channels()
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {channels}")
    first = source.read(0, channels)
    if first.shape[-1] != first.shape[-2]:
        raise UserError(f"image {source.path_of(0)} is {first.shape[-1]}x{first.shape[-2]} px: LitData chunks hold "
                        "square images; make them with prepare_data.py resolution=N")
    resolution = int(first.shape[-1])
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed)).tolist()
    examples = _Examples(source, channels, resolution, found[0] if found else None, order)
    workers = num_workers if num_workers > 1 else 0
    loader = DataLoader(examples, batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=8 if workers else None)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        writer = BinaryWriter(str(partial), chunk_bytes=chunk_bytes)
        count = 0
        for i, example in enumerate(_one_line_errors(loader)):
            writer[i] = example
            count += 1
        writer.done()
        writer._merge_no_wait()  # the only writer (merge() waits for one per rank when run under WORLD_SIZE=N)
        meta = {"format": FORMAT, "count": count, "channels": channels, "resolution": resolution,
                "class_names": list(found[1]) if found else None, "content_hash": source.content_hash(),
                "litdata": ld.__version__}
        (partial / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("wrote %d images (%d px, %d channel(s)%s) as LitData chunks in %s", count, resolution, channels,
             f", {len(found[1])} classes" if found else "", out)
    return meta


# --- reading -------------------------------------------------------------------------------------------------------
def read_meta(path: str, cache_dir: str | None = None) -> dict[str, Any]:
    """``gan_lightning.json`` of the chunks at ``path`` (a folder, or a URL fetched through LitData), checked."""
    where = f"{path.rstrip('/')}/{META_FILE}"
    if is_remote(path):
        litdata()
        from litdata.streaming.downloader import get_downloader

        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, META_FILE)
            try:
                get_downloader(path, tmp, []).download_file(where, local)
                text = Path(local).read_text(encoding="utf-8")
            except Exception as err:  # noqa: BLE001 - each object store raises its own errors
                raise UserError(f"data.path: cannot read {where} ({one_line(err)}): check the URL and the "
                                "credentials, or write the chunks with prepare_data.py format=litdata") from None
    else:
        folder = Path(path)
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise UserError(f"data.path {path} {what}: give a folder of LitData chunks (or s3://...) made by "
                            "prepare_data.py format=litdata")
        if not (folder / META_FILE).is_file():
            raise UserError(f"data.path {path} holds no {META_FILE}: it is not a folder of image chunks made by "
                            "prepare_data.py format=litdata")
        text = (folder / META_FILE).read_text(encoding="utf-8")
    try:
        meta = json.loads(text)
        ok = meta.get("format") == FORMAT and meta["channels"] in (1, 3) and int(meta["resolution"]) > 0
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise UserError(f"data.path: {where} is not a description of image chunks ({FORMAT}): write the chunks "
                        "again with prepare_data.py format=litdata")
    return meta


def _float_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: (v if v.dtype == torch.int64 else to_float(v)) for k, v in batch.items()}


_LOADER: type | None = None


def _loader_class() -> type:
    """LitData's ``StreamingDataLoader`` whose batches hold float images in [-1, 1] (converted here, in the main
    process: uint8 crosses from the workers), resumed as Lightning iterates it. Made on first use, so that LitData
    is imported only then.

    LitData continues from a loaded state in every ``iter()`` until one runs to its end (``restore`` is cleared only
    when the epoch's iterator is exhausted). Lightning never exhausts it: an epoch ends after ``len(loader)`` batches.
    So after a resume, the epoch after the resumed one would replay the resumed one's batches. Here only the first
    iteration after ``load_state_dict`` continues; the next starts a new epoch, as in an uninterrupted run. (A state
    saved after the epoch's last batch needs nothing: LitData starts the next epoch then.)"""
    global _LOADER
    if _LOADER is None:
        ld = litdata()

        class StreamingBatches(ld.StreamingDataLoader):
            _continue_once = False
            content: str | None = None  # the chunks' content hash (StreamingDataModule.content_hash)

            def state_dict(self) -> dict[str, Any]:
                return {**super().state_dict(), "content": self.content}

            def load_state_dict(self, obj: dict[str, Any]) -> None:
                super().load_state_dict(_resumable(self.dataset, obj, self.content))
                self._continue_once = self.restore

            def __iter__(self):
                # (a generator: this runs at the first next(), so an iter() that is never advanced changes nothing)
                if self.restore and not self._continue_once:
                    self.restore = False
                self._continue_once = False
                for batch in super().__iter__():
                    yield _float_batch(batch)

        StreamingBatches.__module__, StreamingBatches.__qualname__ = __name__, "StreamingBatches"
        _LOADER = StreamingBatches
    return _LOADER


def _resumable(dataset, state: dict[str, Any], content: str | None) -> dict[str, Any]:
    """A saved loader ``state`` that ``dataset`` can continue: one over the same chunks, wherever they are now (a
    folder moved or staged elsewhere, or the same chunks in object storage: LitData itself refuses another path),
    with the same seed and shuffling; otherwise a one-line ``UserError`` (LitData's own refusal would come from a
    loader worker, as a traceback)."""
    saved = state.get("dataset") or {}
    if state.get("content") not in (None, content):
        raise UserError(f"data.path: {dataset.input_dir.url or dataset.input_dir.path} holds other images than the "
                        "chunks this checkpoint's run read: resume from those chunks")
    for key, now in (("seed", dataset.seed), ("shuffle", dataset.shuffle)):
        if key in saved and saved[key] != now:
            raise UserError(f"data.{key}={now} but the checkpoint's run read its chunks with {key} {saved[key]}: "
                            "resume with the settings it was trained with")
    where = {"input_dir_path": dataset.input_dir.path, "input_dir_url": dataset.input_dir.url}
    return {**state, "dataset": {**saved, **where}} if saved else state


def __getattr__(name: str):  # ``gan_lightning.data.streaming.StreamingBatches`` (for pickle), made on first use
    if name == "StreamingBatches":
        return _loader_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StreamingDataModule(GANDataModule):
    """Images from LitData chunks written by ``write_chunks`` (``prepare_data.py format=litdata``), in a local folder
    or at an object-storage URL (``s3://bucket/prefix``, credentials as LitData reads them).

    The shape and the classes come from ``gan_lightning.json`` beside the chunks (``image_size`` and ``channels``,
    when set, must match it). Batches: ``{"x"}`` float images in [-1, 1], with ``"y"`` int64 labels when the data is
    labelled. ``max_cache_size`` bounds LitData's local copy of remote chunks (``"50GB"``, or a fraction of the
    free disk; ``None``: LitData's default); ``cache_dir`` is where it lives (``None``: LitData's default,
    ``~/.lightning/chunks``). Local chunks are read in place.
    """

    def __init__(
        self,
        path: str,
        batch_size: int = 64,
        num_workers: int = 2,
        seed: int = 0,
        shuffle: bool = True,
        max_cache_size: int | float | str | None = None,
        cache_dir: str | None = None,
        image_size: int | None = None,
        channels: int | None = None,
    ) -> None:
        super().__init__(batch_size, seed)
        path = str(path)
        self.path = path if is_remote(path) else os.path.expanduser(path)
        self.num_workers, self.shuffle = int(num_workers), bool(shuffle)
        self.max_cache_size = max_cache_size
        self.cache_dir = os.path.expanduser(cache_dir) if cache_dir else None
        self.meta = read_meta(self.path, self.cache_dir)
        size, depth = int(self.meta["resolution"]), int(self.meta["channels"])
        for key, given, stored in (("image_size", image_size, size), ("channels", channels, depth)):
            if given is not None and given != stored:
                raise UserError(f"data.{key}={given} but the chunks in {self.path} hold {stored}: leave data.{key} "
                                "unset (null) or prepare the data again at that size")
        self.shape = (depth, size, size)
        names = self.meta.get("class_names")
        self.class_names = [str(n) for n in names] if names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self._samples = None  # an unshuffled dataset for real_samples, made on first use

    def __getstate__(self) -> dict[str, Any]:  # (spawned DDP processes get a copy: without LitData's open cache)
        state = dict(self.__dict__)
        state["_samples"] = None
        return state

    def _setup(self) -> None:
        log.info("LitData chunks %s: %d images of %s%s", self.path, self.meta["count"], "x".join(map(str, self.shape)),
                 f", {self.num_classes} classes" if self.num_classes else "")

    def _dataset(self, shuffle: bool):
        ld = litdata()
        try:
            # One image at a time (raw tensors need no batched decoding), any order within a chunk.
            return ld.StreamingDataset(self.path, cache_dir=self.cache_dir, shuffle=shuffle, drop_last=True,
                                       seed=self.seed, max_cache_size=self.max_cache_size, batch_decode=0,
                                       item_shuffle_window="full")
        except (FileNotFoundError, ValueError) as err:
            raise UserError(f"data.path {self.path}: LitData cannot read the chunks ({one_line(err)}): write them "
                            "again with prepare_data.py format=litdata") from None

    def train_dataloader(self):
        """LitData's loader over this rank's share of the chunks (its state goes into the checkpoint)."""
        self.setup()
        dataset = self._dataset(self.shuffle)
        check_one_batch(int(self.meta["count"]), self.batch_size, dataset.distributed_env.world_size)
        cuda = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        # Its own generator: torch's DataLoader draws a worker seed at each iter(), which would otherwise come from
        # the global RNG and shift the noise of a resumed run (it starts an iterator where a straight run did not).
        loader = _loader_class()(dataset, batch_size=self.batch_size, num_workers=self.num_workers, drop_last=True,
                                 pin_memory=cuda, generator=torch.Generator().manual_seed(self.seed))
        loader.content = self.content_hash()
        if len(loader) == 0:  # LitData cuts each worker's share to whole batches
            raise UserError(f"data.batch_size={self.batch_size}: {self.meta['count']} images make no whole batch "
                            f"for each of {max(1, self.num_workers)} loader worker(s) of "
                            f"{dataset.distributed_env.world_size} process(es): lower data.batch_size or "
                            "data.num_workers, or use more data")
        return loader

    def real_samples(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """``n`` random examples (read directly, in this process)."""
        self.setup()
        if self._samples is None:
            self._samples = self._dataset(shuffle=False)
        items = [self._samples[int(i)] for i in sample_indices(int(self.meta["count"]), n, seed)]
        batch = {"x": torch.stack([item["x"] for item in items])}
        if "y" in items[0]:
            batch["y"] = torch.tensor([int(item["y"]) for item in items], dtype=torch.int64)
        return _float_batch(batch)

    def content_hash(self) -> str:
        """The source's content hash (written with the chunks) with the images' shape: keys the FID reference
        statistics, wherever the chunks live."""
        import hashlib

        key = [type(self).__name__, self.meta["content_hash"], list(self.shape), self.meta["count"]]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()
