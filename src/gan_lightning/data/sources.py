"""One way of reading a user's images, under every data kind: a folder or a prepared zip, names listed at start-up,
images decoded one at a time where they are needed (in the DataLoader workers), labels from class subfolders or a
``dataset.json``.

A zip is StyleGAN2-ADA's dataset format (Karras et al. 2020, ``dataset_tool.py``): images (uncompressed PNGs)
under any folders, and ``dataset.json`` at the top, ``{"labels": [["00000/img00000000.png", 3], ...]}``, or
``"labels": null``. ``prepare_data.py`` writes it, adding ``"class_names"`` (a list, the index is the label), which
other readers ignore. A folder may hold the same ``dataset.json``. Either way the layout under it is that of the
data kind: any tree of images, ``train/`` and ``test/`` pair files, ``trainA/ trainB/ testA/ testB/``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import UserError
from .png import read_plain

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LABELS_FILE = "dataset.json"
LABEL_CHOICES = ("auto", "none", "subfolders", "json")
"""``data.labels``: ``auto`` (the ``dataset.json`` at the top when there is one, else none), ``none``,
``subfolders`` (torchvision's ImageFolder layout: the first folder under the root is the class, sorted by name),
``json`` (the ``dataset.json`` at the top, required), or the path of a labels JSON file."""

_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (PIL and zipfile messages may span several), shortened to ``limit``."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UnreadableImage(UserError):
    """An image that cannot be decoded (or does not fit the data's options); ``name`` is its path or zip member."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"image {name} {reason}")
        self.name, self.reason = name, reason


def _tensor(image: Image.Image) -> Tensor:
    """An L or RGB image as a contiguous uint8 C x H x W tensor: ``pil_to_tensor``'s values, in a third of its time
    on small images (one transposing copy in numpy, where torchvision's transposed view is copied again, slowly,
    by the DataLoader's collate)."""
    array = np.asarray(image)
    if array.ndim == 2:
        return torch.from_numpy(array.copy())[None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _is_image(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not any(p.startswith(".") or p == "__MACOSX"
                                                                for p in path.parts)


class ImageSource:
    """The images under ``prefix`` of a folder or a zip, by name (the path relative to the root, with "/").

    Creating one lists names only: nothing is decoded, and a zip is opened for its table of contents. Items are
    read with ``read(i, channels)``; the zip's handle is reopened in each process (it is not pickled), so a
    source can go to DataLoader workers.
    """

    def __init__(self, root: str | os.PathLike, prefix: str = "", what: str = "data.path") -> None:
        self.root = Path(os.path.expanduser(str(root)))
        self.prefix = prefix.strip("/")
        self.what = what
        self.is_zip = self.root.suffix.lower() == ".zip" or (self.root.is_file() and zipfile.is_zipfile(self.root))
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        self._all = self._list_all()
        inside = f"{self.prefix}/" if self.prefix else ""
        self.names = [n for n in self._all if n.startswith(inside)]

    # --- listing ------------------------------------------------------------------------------------------
    def _list_all(self) -> list[str]:
        if self.is_zip:
            if not self.root.is_file():
                raise UserError(f"{self.what} {self.root} does not exist: give a folder of images or a zip made by "
                                "prepare_data.py")
            try:
                names = self._archive().namelist()
            except (zipfile.BadZipFile, OSError) as err:
                raise UserError(f"{self.what} {self.root} is not a readable zip ({one_line(err)}): give a folder "
                                "of images or a zip made by prepare_data.py") from None
            return sorted(n for n in names if not n.endswith("/") and _is_image(n))
        if not self.root.is_dir():
            if self.root.is_file():
                raise UserError(f"{self.what} {self.root} is a file, not a folder or a zip: give a folder of "
                                "images or a zip made by prepare_data.py")
            raise UserError(f"{self.what} {self.root} does not exist: set {self.what} to a folder of images")
        names = []
        for folder, dirs, files in os.walk(self.root, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(folder).relative_to(self.root).as_posix()
            base = "" if rel == "." else f"{rel}/"
            names.extend(base + f for f in files if _is_image(f))
        return sorted(names)

    def sub(self, prefix: str) -> ImageSource:
        """The images under ``prefix`` (a folder inside this source), sharing the listing."""
        out = object.__new__(ImageSource)
        out.__dict__.update(self.__dict__)
        out.prefix = "/".join(p for p in (self.prefix, prefix.strip("/")) if p)
        out._zip, out._zip_pid = None, None
        inside = f"{out.prefix}/"
        out.names = [n for n in self._all if n.startswith(inside)]
        return out

    def has(self, prefix: str) -> bool:
        """Whether any image lies under ``prefix`` (relative to this source)."""
        inside = "/".join(p for p in (self.prefix, prefix.strip("/")) if p) + "/"
        return any(n.startswith(inside) for n in self._all)

    def where(self, prefix: str = "") -> str:
        """A readable location, for messages: ``DIR/sub`` or ``file.zip:sub``."""
        inner = "/".join(p for p in (self.prefix, prefix) if p)
        if self.is_zip:
            return f"{self.root}:{inner}" if inner else str(self.root)
        return str(self.root / inner) if inner else str(self.root)

    def require(self, fix: str) -> ImageSource:
        """This source, or a ``UserError`` saying where no images were found and how to ``fix`` it."""
        if not self.names:
            raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {self.where()}: {fix}")
        return self

    def __len__(self) -> int:
        return len(self.names)

    def path_of(self, i: int) -> str:
        """Item ``i``'s location, for messages."""
        return f"{self.root}:{self.names[i]}" if self.is_zip else str(self.root / self.names[i])

    def relative(self, i: int) -> str:
        """Item ``i``'s name relative to this source's prefix."""
        name = self.names[i]
        return name[len(self.prefix) + 1 :] if self.prefix else name

    # --- reading -------------------------------------------------------------------------------------------
    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip, self._zip_pid = zipfile.ZipFile(self.root), os.getpid()
        return self._zip

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"], state["_zip_pid"] = None, None
        return state

    def _bytes(self, i: int, verify: bool = True) -> bytes:
        """Item ``i``'s file, undecoded (``verify=False``: a zip member's CRC left to the caller)."""
        if self.is_zip:
            return self._member(self.names[i], verify)
        with open(self.root / self.names[i], "rb") as f:
            return f.read()

    def _member(self, name: str, verify: bool = True) -> bytes:
        """A zip member's bytes. A stored one (all of a prepared zip's) is read at its offset with two ``pread``
        calls, its CRC checked unless ``verify`` is false: a third of zipfile's time for a small file, which opens
        a reader object per member. Anything else (compressed, encrypted, a damaged header) goes through zipfile,
        which names the problem."""
        archive = self._archive()
        info = archive.getinfo(name)
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1 and hasattr(os, "pread"):
            fd = archive.fp.fileno()
            header = os.pread(fd, 30, info.header_offset)
            if len(header) == 30 and header[:4] == b"PK\x03\x04":
                start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(
                    header[28:30], "little")
                data = os.pread(fd, info.compress_size, start)
                if len(data) == info.file_size and (not verify or zlib.crc32(data) == info.CRC):
                    return data
        return archive.read(name)

    def open(self, i: int, data: bytes | None = None) -> Image.Image:
        """Item ``i`` (from ``data``, its file's bytes, when they are at hand) as a loaded PIL image;
        ``UnreadableImage`` naming it if it cannot be decoded."""
        try:
            if self.is_zip or data is not None:
                image = Image.open(io.BytesIO(self._bytes(i) if data is None else data))
                image.load()
            else:
                with Image.open(self.root / self.names[i]) as f:
                    f.load()
                    image = f
            return image
        except Exception as err:  # PIL and zipfile raise many types for bad files
            raise UnreadableImage(self.path_of(i), f"cannot be decoded ({one_line(err)})") from None

    def read(self, i: int, channels: int) -> Tensor:
        """Item ``i`` as a uint8 ``channels`` x H x W tensor (grey <-> RGB converted).

        A PNG stored unfiltered (what ``prepare_data.py`` writes: ``data/png.py``) is read straight into a tensor,
        with no decoding to speak of; every other file goes through PIL."""
        data = None
        if self.names[i].lower().endswith(".png"):
            try:
                # The PNG's own CRCs, which read_plain checks, cover its pixels: the zip's CRC is not read twice.
                data = self._bytes(i, verify=False)
            except Exception as err:  # noqa: BLE001 - zipfile raises many types for bad members
                raise UnreadableImage(self.path_of(i), f"cannot be decoded ({one_line(err)})") from None
            plain = read_plain(data, channels)
            if plain is not None:
                return plain
        # A file's bytes serve PIL as they are; a zip member is read again with its CRC checked.
        image = self.open(i, None if self.is_zip else data)
        mode = "L" if channels == 1 else "RGB"
        try:
            return _tensor(image if image.mode == mode else image.convert(mode))
        except Exception as err:  # noqa: BLE001 - a mode PIL cannot convert
            raise UnreadableImage(self.path_of(i), f"cannot be decoded ({one_line(err)})") from None

    def mode(self, i: int) -> str:
        """Item ``i``'s PIL mode, from its header alone."""
        try:
            if self.is_zip:
                with self._archive().open(self.names[i]) as f, Image.open(f) as image:
                    return image.mode
            with Image.open(self.root / self.names[i]) as image:
                return image.mode
        except Exception as err:  # noqa: BLE001
            raise UnreadableImage(self.path_of(i), f"cannot be decoded ({one_line(err)})") from None

    def channels(self, probe: int = 16) -> int:
        """1 when the first ``probe`` readable images are greyscale, else 3 (headers only)."""
        modes = set()
        for i in range(min(probe, len(self))):
            try:
                modes.add(self.mode(i))
            except UnreadableImage:
                continue
        return 1 if modes and modes <= set(_GREY_MODES) else 3

    # --- identity and labels -------------------------------------------------------------------------------
    def content_hash(self) -> str:
        """A hash of what this source holds, without decoding anything: every name with its CRC and size (zip)
        or its size and modification time (folder). Keys the FID reference statistics of user data."""
        h = hashlib.sha256()
        if self.is_zip:
            infos = {i.filename: i for i in self._archive().infolist()}
            for n in self.names:
                h.update(f"{n}\0{infos[n].CRC}\0{infos[n].file_size}\n".encode())
        else:
            for n in self.names:
                st = (self.root / n).stat()
                h.update(f"{n}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def read_text(self, name: str) -> str | None:
        """The text of ``name`` at the root of the source (``dataset.json``), or ``None`` if it is absent."""
        if self.is_zip:
            try:
                return self._archive().read(name).decode("utf-8")
            except KeyError:
                return None
        path = self.root / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def labels(self, choice: str | None) -> tuple[list[int], list[str]] | None:
        """``(label of each image, class names)`` as ``choice`` (one of ``LABEL_CHOICES`` or a JSON file's path)
        says, or ``None`` for unlabelled data; a ``UserError`` for labels that do not fit the images."""
        choice = "none" if choice in (None, False) else str(choice)
        if choice == "none":
            return None
        if choice == "subfolders":
            return self._subfolder_labels()
        if choice in ("auto", "json"):
            text = self.read_text(LABELS_FILE)
            if text is None:
                if choice == "auto":
                    return None
                raise UserError(f"data.labels=json but {self.where()} has no {LABELS_FILE}: use "
                                "data.labels=subfolders, a labels file's path, or none")
            return self._json_labels(text, f"{self.where()}/{LABELS_FILE}", required=choice == "json")
        path = Path(os.path.expanduser(choice))
        if not path.is_file():
            raise UserError(f"data.labels={choice}: no such file; use one of {', '.join(LABEL_CHOICES)} or the path "
                            "of a labels JSON")
        return self._json_labels(path.read_text(encoding="utf-8"), str(path), required=True)

    def _subfolder_labels(self) -> tuple[list[int], list[str]]:
        tops = [self.relative(i).split("/")[0] if "/" in self.relative(i) else None for i in range(len(self))]
        loose = [self.relative(i) for i, t in enumerate(tops) if t is None]
        if loose:
            raise UserError(f"data.labels=subfolders but {len(loose)} image(s) lie directly in {self.where()} (first: "
                            f"{loose[0]}): put every image in a folder named after its class")
        classes = sorted(set(tops))
        index = {c: k for k, c in enumerate(classes)}
        return [index[t] for t in tops], classes

    def _json_labels(self, text: str, where: str, required: bool) -> tuple[list[int], list[str]] | None:
        try:
            data = json.loads(text)
            raw = data["labels"]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{where} is not a labels file ({one_line(err)}): it must be "
                            '{"labels": [["name.png", 0], ...]}') from None
        if raw is None:
            if required:
                raise UserError(f"{where} holds no labels (\"labels\": null): use data.labels=none or subfolders")
            return None
        try:
            table = {str(name).replace("\\", "/"): int(label) for name, label in raw}
        except (ValueError, TypeError) as err:
            raise UserError(f"{where}: each label must be [file name, integer] ({one_line(err)})") from None
        mine = {self.relative(i): i for i in range(len(self))}
        missing = [n for n in table if n not in mine]
        if missing:
            raise UserError(f"{where} names {len(missing)} file(s) that are not among the images of "
                            f"{self.where()} (first: {missing[0]}): fix the labels file or add the images")
        unlabelled = [n for n in mine if n not in table]
        if unlabelled:
            raise UserError(f"{len(unlabelled)} image(s) of {self.where()} have no label in {where} (first: "
                            f"{unlabelled[0]}): label them or remove them")
        labels = [table[self.relative(i)] for i in range(len(self))]
        if min(labels) < 0:
            raise UserError(f"{where}: labels must be >= 0, found {min(labels)}")
        names = data.get("class_names") if isinstance(data, dict) else None
        count = max(labels) + 1
        if isinstance(names, Sequence) and not isinstance(names, str) and len(names) >= count:
            return labels, [str(n) for n in names]
        return labels, [str(k) for k in range(count)]


def stack_items(items: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Item dicts as one batch dict (what a DataLoader's default collate makes, without one)."""
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
