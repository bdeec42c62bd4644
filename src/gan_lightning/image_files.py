"""Turning a user's image files into new image files with a trained network (``upscale.py``, ``translate.py``):
which files to read, where each result goes, and writing them without overwriting anything."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torch import Tensor

from .data.folders import IMAGE_EXTENSIONS, list_images, read_image
from .errors import UserError
from .outputs import atomic_write, check_output


def plan(input: str, out: str) -> tuple[list[Path], list[Path], Path]:
    """The image files of ``input`` (an image file, or every image in a folder), the PNG path each result takes
    under the folder ``out`` (the same relative name, ``.png``) and ``out`` itself. A ``UserError``, before any
    work, for a missing input, a non-image file, an unwritable ``out`` or a result that would overwrite a file."""
    out_dir = check_output(out, "out", folder=True)
    source = Path(input).expanduser()
    if source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UserError(f"input: {source} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
        files, names = [source], [Path(source.stem + ".png")]
    elif source.is_dir():
        files = list_images(source, "input", "input=")
        names = [f.relative_to(source).with_suffix(".png") for f in files]
    else:
        raise UserError(f"input: {source} does not exist: give an image file or a folder of images")
    targets = [out_dir / n for n in names]
    existing = [t for t in targets if t.exists()]
    if existing:
        raise UserError(f"out: {existing[0]} exists ({len(existing)} file(s) would be overwritten): choose another "
                        "out folder or move them")
    return files, targets, out_dir


def read_all(files: list[Path], channels: int) -> list[Tensor]:
    """Every file as uint8 C x H x W with ``channels`` channels: all read (and checked) before anything is
    written."""
    return [read_image(f, channels) for f in files]


def write_image(path: Path, image: Tensor) -> None:
    """A uint8 C x H x W image (1 or 3 channels) as a PNG, atomically."""
    array = image.permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array[..., 0] if image.shape[0] == 1 else array, "L" if image.shape[0] == 1 else "RGB")
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
