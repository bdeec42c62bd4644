"""``prepare_data.py``: a user's images checked once and packed for training, in StyleGAN2-ADA's dataset format
(Karras et al. 2020, ``dataset_tool.py``), which every folder data option reads (``data.path=FILE.zip``).

The input is a folder (searched recursively) or such a zip, read through ``sources.ImageSource``. Every image is
decoded once, here, converted to ``channels`` and brought to the layout's size:

- ``image``: the shorter side resized to ``resolution`` and the centre square kept (``transform=resize``: the
  whole image squeezed to the square), stored as ``00000/img00000000.png``, ``00000/img00000001.png``, ... (a
  thousand a folder, as dataset_tool names them), with the labels in ``dataset.json``;
- ``aligned``: each half of each A|B pair file resized to ``resolution`` x ``resolution`` and the halves stored side
  by side again, under the input's names (``train/``, ``test/``, ``val/``);
- ``unaligned``: the images of ``trainA/ trainB/ testA/ testB/``, each resized to ``resolution`` x ``resolution``;
- ``sr``: high-resolution images kept at their size, each at least ``resolution`` (the training crop) on its
  shorter side.

The resizing is the data modules' own (antialiased), so a prepared image is what training on the folder would
have made of the file, and the modules pass it through untouched. The zip holds uncompressed PNGs with unfiltered
rows (``data/png.py``: the loaders read them with no decoding; any PNG reader decodes them) stored as they are
(``ZIP_STORED``), and ``dataset.json``::

    {"labels": [["00000/img00000000.png", 3], ...] or null, "class_names": [...] or null,
     "gan_lightning": {"layout", "resolution", "channels", "transform", "images", "content_hash", "source",
                       "skipped": [[name, reason], ...]}}

(readers of the format ignore the keys they do not know). ``content_hash`` is a sha256 of the stored pixels, names
and labels: the same input and options give the same hash, and the same bytes (entries carry a fixed date).

Images go one at a time from the reader (``num_workers`` DataLoader processes, in order, a few ahead) into the
zip, so memory does not grow with the data. The zip is written to a temporary file beside ``out`` and linked into
place at the end: an interrupted or failed run leaves nothing, and nothing is ever overwritten. A file that cannot
be decoded (or does not fit the layout: a pair that is not twice as wide as high, an SR image smaller than the
crop) is left out and listed (``bad_files=skip``) or refused with its name (``bad_files=error``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..config.prepare_options import check_prepare, labels_choice
from ..errors import UserError
from .convert import resize
from .png import write_plain
from .sources import _GREY_MODES, LABELS_FILE, ImageSource, UnreadableImage

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Every entry's date: the same input and options give the same zip, byte for byte."""
UNALIGNED_FOLDERS = ("trainA", "trainB", "testA", "testB")
SHOWN = 5
"""Skipped files named in the summary (all of them are listed in dataset.json)."""
WINDOW = 4
"""Images each reading process works ahead of the writer."""


# --- one image -------------------------------------------------------------------------------------------------
class _Converted(Dataset):
    """Image ``i`` of the source as the layout stores it: ``(i, png bytes, sha256 of its shape and pixels,
    enlarged)``, or ``(i, None, (name, reason), False)`` for a file that cannot be used. A dataset so that
    ``num_workers`` DataLoader processes can make them, in order."""

    def __init__(self, source: ImageSource, layout: str, resolution: int, channels: int, transform: str) -> None:
        self.source, self.layout, self.size = source, layout, resolution
        self.channels, self.transform = channels, transform
        self.crop = transforms.Compose([transforms.Resize(resolution, antialias=True),
                                        transforms.CenterCrop(resolution)])  # as folders.SourceImages

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple:
        try:
            image, upscaled = self.convert(i)
        except UnreadableImage as err:
            return i, None, (self.source.relative(i), err.reason), False
        array = image.permute(1, 2, 0).contiguous().numpy()
        digest = hashlib.sha256(f"{tuple(image.shape)}\0".encode() + array.tobytes()).digest()
        return i, write_plain(array[..., 0] if self.channels == 1 else array), digest, upscaled

    def _square(self, x: torch.Tensor) -> torch.Tensor:
        """Resized (antialiased) to size x size, as the aligned and unaligned data modules do."""
        return x if x.shape[-2:] == (self.size, self.size) else resize(x[None], self.size)[0]

    def convert(self, i: int) -> tuple[torch.Tensor, bool]:
        """(the stored uint8 C x H x W image, whether it was enlarged); ``UnreadableImage`` for a bad file."""
        x = self.source.read(i, self.channels)  # decodes the whole file: truncated ones fail here
        h, w = x.shape[-2:]
        size = self.size
        if self.layout == "image":
            if (h, w) == (size, size):
                return x, False
            if self.transform == "center-crop":
                return self.crop(x), min(h, w) < size
            return self._square(x), min(h, w) < size
        if self.layout == "aligned":
            if w != 2 * h:
                raise UnreadableImage(self.source.path_of(i), f"is {w}x{h}: an aligned pair must be twice as wide as "
                                                              "high (A|B side by side)")
            halves = [self._square(x[..., : w // 2]), self._square(x[..., w // 2 :])]
            return torch.cat(halves, dim=-1), h < size
        if self.layout == "unaligned":
            return self._square(x), min(h, w) < size
        if min(h, w) < size:  # sr: kept at its size
            raise UnreadableImage(self.source.path_of(i), f"is {w}x{h}, smaller than resolution={size} (the "
                                                          "training crop) on its shorter side")
        return x, False


class _Order:
    """The indices to read, group by group (``max_images`` counts per group), skipping a group once it is full:
    the writer counts, the reader asks lazily, a few images ahead."""

    def __init__(self, groups: list[list[int]], max_images: int | None, size: int) -> None:
        self.groups, self.max_images = groups, max_images
        self.group_of = [-1] * size  # the group of each index of the source
        for g, indices in enumerate(groups):
            for i in indices:
                self.group_of[i] = g
        self.kept = Counter()

    def full(self, i: int) -> bool:
        return self.max_images is not None and self.kept[self.group_of[i]] >= self.max_images

    def __iter__(self) -> Iterator[int]:
        for indices in self.groups:
            for i in indices:
                if not self.full(i):
                    yield i

    def heads(self) -> Iterator[int]:
        """The first ``max_images`` indices of each group (what a header pass looks at)."""
        for indices in self.groups:
            yield from indices[: self.max_images]


def _identity(item):
    return item


# --- what to read, and what it becomes --------------------------------------------------------------------------
def _png_names(names: list[str]) -> list[str]:
    """The stored names of the aligned, unaligned and sr layouts: the input's, with ``.png``; ``a.jpg`` and
    ``a.png`` side by side become ``a.jpg.png`` and ``a.png.png``."""
    plain = [str(PurePosixPath(n).with_suffix(".png")) for n in names]
    counts = Counter(plain)
    out = [p if counts[p] == 1 else f"{n}.png" for n, p in zip(names, plain)]
    if len(set(out)) != len(out):
        twice = next(n for n, c in Counter(out).items() if c > 1)
        raise UserError(f"two input files would be stored as {twice}: rename one")
    return out


def _plan(source: ImageSource, layout: str, labels: str) -> tuple[list[list[int]], list[str] | None,
                                                                    tuple[list[int], list[str]] | None, int]:
    """(index groups, stored names (None: numbered), labels, images ignored) of ``layout``."""
    fix = "give a folder of images (searched recursively) or a zip made by prepare_data.py"
    if layout == "unaligned":
        folders = {f: [i for i, n in enumerate(source.names) if n.startswith(f"{f}/")] for f in UNALIGNED_FOLDERS}
        for f in ("trainA", "trainB"):
            if not folders[f]:
                raise UserError(f"no images in {source.where(f)}: layout=unaligned needs trainA/ and trainB/ (and "
                                "optionally testA/, testB/), CycleGAN's layout")
        groups = [g for g in folders.values() if g]
        ignored = len(source) - sum(len(g) for g in groups)
        return groups, _png_names(source.names), None, ignored
    source.require(fix)
    if layout == "image":
        try:
            found = source.labels(labels)
        except UserError as err:  # sources words its options as train.py's data.labels
            raise UserError(str(err).replace("data.labels=", "labels=")) from None
        return [list(range(len(source)))], None, found, 0
    if layout == "aligned":
        tops: dict[str, list[int]] = {}
        for i, n in enumerate(source.names):
            tops.setdefault(n.split("/")[0] if "/" in n else "", []).append(i)
        return list(tops.values()), _png_names(source.names), None, 0
    return [list(range(len(source)))], _png_names(source.names), None, 0  # sr


def _find_channels(source: ImageSource, indices: Iterator[int], progress: _Progress) -> int:
    """1 when every image is greyscale, 3 when none is (from the files' headers); a ``UserError`` when both
    kinds are there. Files whose header cannot be read are left to the full pass."""
    first: dict[bool, int] = {}
    for k, i in enumerate(indices):
        progress.update(k, 0)
        try:
            grey = source.mode(i) in _GREY_MODES
        except UnreadableImage:
            continue
        first.setdefault(grey, i)
        if len(first) == 2:
            raise UserError(f"grey and RGB images are mixed in {source.where()} (grey: {source.relative(first[True])}, "
                            f"RGB: {source.relative(first[False])}): set channels=1 or channels=3 to convert them all")
    progress.done()
    return 1 if True in first else 3


# --- progress, signals, files -----------------------------------------------------------------------------------
class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, else a line every ``every`` seconds."""

    def __init__(self, what: str, total: int, enabled: bool = True, every: float = 15.0) -> None:
        self.what, self.total, self.enabled = what, total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.every = 0.25 if self.tty else every
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, done: int, skipped: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < self.every:
            return
        self.last, self.shown = now, True
        rate = done / max(now - self.start, 1e-9)
        bad = f", {skipped} skipped" if skipped else ""
        line = f"{self.what}: {done}/{self.total} images ({rate:.0f}/s{bad})"
        print(f"\r{line}" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and self.shown:
            print(file=sys.stderr, flush=True)


@contextmanager
def _sigterm_stops():
    """SIGTERM unwinds like Ctrl-C, so the temporary files are removed (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        print("stopped by SIGTERM: nothing written", file=sys.stderr)
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _one_thread():
    """One torch thread while preparing (as in DataLoader workers): small images gain nothing from more, and on a
    busy machine their synchronisation made resizing 15x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def _scratch(out: Path):
    """Temporary paths beside ``out`` (and ``out``'s missing parent folders), all removed unless the run
    succeeds; yields a function that makes a fresh temporary path."""
    parent = out.parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir()
    temps: list[Path] = []

    def temp(suffix: str) -> Path:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
        os.close(fd)
        temps.append(Path(name))
        return Path(name)

    ok = False
    try:
        yield temp
        ok = True
    finally:
        for t in temps:
            if t.is_dir():
                shutil.rmtree(t, ignore_errors=True)
            elif t.exists():
                t.unlink()
        if not ok:
            for folder in missing:  # innermost first; only the ones made here, and only if still empty
                try:
                    folder.rmdir()
                except OSError:
                    break


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out`` unless ``out`` exists by now: a hard link fails rather than overwrite."""
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes a private file; a dataset is not
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise UserError(f"out: {out} appeared while preparing: prepare_data.py overwrites nothing; remove it or "
                        "choose another path") from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise UserError(f"out: {out} appeared while preparing: prepare_data.py overwrites nothing") from None
        os.replace(tmp, out)
        return
    tmp.unlink()


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _image_name(k: int) -> str:
    """dataset_tool's name of the k-th image: ``00000/img00000000.png``, a thousand a folder."""
    digits = f"{k:08d}"
    return f"{digits[:5]}/img{digits}.png"


# --- the command ------------------------------------------------------------------------------------------------
def prepare(input: str | os.PathLike, out: str | os.PathLike, resolution: int, layout: str = "image",
            labels: str | None = "auto", bad_files: str = "skip", channels: int | None = None,
            transform: str = "center-crop", max_images: int | None = None, any_resolution: bool = False,
            format: str = "zip", num_workers: int = 0, progress: bool = True) -> dict[str, Any]:
    """Check every image of ``input`` (a folder or a zip) once and write them to ``out`` in ``layout`` (see the
    module's docstring; the options are ``conf/prepare_data.yaml``'s). A ``UserError`` (one line, nothing
    written) for bad options, an input without images, an unreadable file under ``bad_files=error``, grey and
    RGB images mixed without ``channels``, labels that do not fit the images, or an ``out`` that exists.

    Returns what was written: ``out``, ``images``, ``channels``, ``class_names``, ``skipped`` ([name, reason]
    pairs), ``upscaled`` (images smaller than the resolution, enlarged), ``ignored`` (images outside the layout's
    folders), ``content_hash`` and ``train`` (a command that trains on it)."""
    check_prepare(input, out, resolution, layout=layout, labels=labels, bad_files=bad_files, channels=channels,
                  transform=transform, max_images=max_images, any_resolution=any_resolution, format=format,
                  num_workers=num_workers)
    write_chunks = None
    if format == "litdata":
        try:
            from .streaming import write_chunks
        except ImportError as err:
            raise UserError(f"format=litdata needs LitData and gan_lightning.data.streaming ({err}): use "
                            "format=zip") from None
    out = Path(os.path.expanduser(str(out)))
    choice = labels_choice(labels) if layout == "image" else "none"
    source = ImageSource(input, what="input")
    groups, names, found, ignored = _plan(source, layout, choice)
    order = _Order(groups, max_images, len(source))
    total = sum(len(g) if max_images is None else min(len(g), max_images) for g in groups)
    if channels is None:
        channels = _find_channels(source, order.heads(), _Progress("checking channels", total, progress))

    with _sigterm_stops(), _one_thread(), _scratch(out) as temp:
        tmp_zip = temp(".zip")
        result = _write_zip(tmp_zip, source, order, names, found, layout, resolution, channels, transform,
                            bad_files, num_workers, _Progress(f"preparing {out.name}", total, progress))
        if write_chunks is None:
            _publish(tmp_zip, out)
        else:
            chunks = temp(".part")
            chunks.unlink()  # a fresh name for the folder of chunks
            write_chunks(ImageSource(tmp_zip, what="input"), str(chunks), num_workers=num_workers,
                         channels=result["channels"])
            if out.exists():
                raise UserError(f"out: {out} appeared while preparing: prepare_data.py overwrites nothing")
            os.rename(chunks, out)
    result.update(out=str(out), format=format, ignored=ignored, train=_train_command(result, out, format))
    return result


def _write_zip(tmp: Path, source: ImageSource, order: _Order, names: list[str] | None,
               found: tuple[list[int], list[str]] | None, layout: str, resolution: int, channels: int,
               transform: str, bad_files: str, num_workers: int, progress: _Progress) -> dict[str, Any]:
    """Every image of ``order`` converted and stored in the zip ``tmp``, then ``dataset.json``."""
    labels, class_names = found if found else (None, None)
    digest = hashlib.sha256(json.dumps([layout, resolution, channels]).encode())
    listed: list[list] = []
    skipped: list[list[str]] = []
    count = upscaled = 0
    reader = DataLoader(_Converted(source, layout, resolution, channels, transform), batch_size=None,
                        sampler=order, num_workers=num_workers, collate_fn=_identity,
                        prefetch_factor=WINDOW if num_workers else None)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for i, png, pixels, enlarged in reader:
            if order.full(i):  # read ahead of a group that has filled up since
                continue
            if png is None:
                name, reason = pixels
                if bad_files == "error":
                    raise UserError(f"image {source.path_of(i)} {reason}: remove or replace it, or set "
                                    "bad_files=skip to leave it out")
                skipped.append([name, reason])
            else:
                stored = _image_name(count) if names is None else names[i]
                label = None if labels is None else labels[i]
                _add(archive, stored, png)
                digest.update(f"{stored}\0{label}\0".encode() + pixels)
                if label is not None:
                    listed.append([stored, label])
                order.kept[order.group_of[i]] += 1
                count += 1
                upscaled += enlarged
            progress.update(count + len(skipped), len(skipped))
        progress.done()
        if count == 0:
            first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise UserError(f"no readable images in {source.where()}: {len(skipped)} file(s) failed{first}")
        digest.update(json.dumps(class_names).encode())
        content_hash = digest.hexdigest()
        meta = {
            "labels": listed if labels is not None else None,
            "class_names": class_names,
            "gan_lightning": {"layout": layout, "resolution": resolution, "channels": channels,
                              "transform": transform if layout == "image" else None, "images": count,
                              "content_hash": content_hash, "source": str(source.root.resolve()),
                              "skipped": skipped},
        }
        _add(archive, LABELS_FILE, json.dumps(meta).encode())
    return {"layout": layout, "resolution": resolution, "channels": channels, "images": count,
            "class_names": class_names, "skipped": skipped, "upscaled": upscaled, "content_hash": content_hash}


def _train_command(result: dict[str, Any], out: Path, format: str) -> str:
    size, grey = result["resolution"], " data.channels=1" if result["channels"] == 1 else ""
    if format == "litdata":
        return f"python train.py data=streaming data.path={out}"
    if result["layout"] == "image":
        model = "model=cgan " if result["class_names"] else ""
        return f"python train.py {model}data=image_folder data.path={out} data.image_size={size}{grey}"
    if result["layout"] == "aligned":
        return f"python train.py model=pix2pix data=aligned_folder data.path={out} data.load_size={size} " \
               f"data.crop={size}{grey}"
    if result["layout"] == "unaligned":
        return f"python train.py model=cyclegan data=unaligned_folder data.path={out} data.load_size={size} " \
               f"data.crop={size}{grey}"
    crop = max(4, size - size % 4)
    return f"python train.py model=srgan data=sr_folder data.path={out} data.crop={crop}{grey}"


def summary(result: dict[str, Any]) -> str:
    """What ``prepare`` wrote, in a few lines (``prepare_data.py`` prints them)."""
    size = result["resolution"]
    shape = {"image": f"{size}x{size}", "aligned": f"pairs of {size}x{size}", "unaligned": f"{size}x{size}",
             "sr": f"their own size (at least {size} px a side)"}[result["layout"]]
    classes = f", {len(result['class_names'])} classes" if result["class_names"] else ", no labels"
    lines = [f"wrote {result['out']}: {result['images']} images at {shape}, {result['channels']} channel(s){classes} "
             f"(content hash {result['content_hash'][:16]})"]
    skipped = result["skipped"]
    if skipped:
        shown = ", ".join(name for name, _ in skipped[:SHOWN]) + (", ..." if len(skipped) > SHOWN else "")
        lines.append(f"skipped {len(skipped)} unreadable file(s): {shown} (all listed in dataset.json; "
                     f"first: {skipped[0][1]})")
    if result["upscaled"]:
        lines.append(f"{result['upscaled']} image(s) were smaller than resolution={size} and were enlarged")
    if result["ignored"]:
        lines.append(f"{result['ignored']} image(s) outside trainA/, trainB/, testA/, testB/ were left out")
    lines.append(f"train on it: {result['train']}")
    return "\n".join(lines)


__all__ = ["prepare", "summary"]
