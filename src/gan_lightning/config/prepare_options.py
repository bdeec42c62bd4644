"""``prepare_data.py``'s options: their choices and the checks between them, without torch, so that the entry point
refuses a bad combination in one line before anything loads (``entry.precheck``), and ``data.prepare`` refuses
the same ones when called from Python."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError

LAYOUTS = ("image", "aligned", "unaligned", "sr")
"""``image``: any tree of images, each resized and cropped to ``resolution`` (``data=image_folder``); ``aligned``:
A|B pair files (``train/``, ``test/``, ``val/``), each half resized to ``resolution`` (``data=aligned_folder``);
``unaligned``: ``trainA/ trainB/ testA/ testB/``, each image resized to ``resolution`` (``data=unaligned_folder``);
``sr``: high-resolution images kept at their size, at least ``resolution`` on the shorter side
(``data=sr_folder``)."""
LABELS = ("auto", "none", "subfolders", "json")
"""``labels`` (layout=image): ``auto`` (the input's ``dataset.json`` when it has one, else none), ``none``,
``subfolders`` (the first folder under the input is the class), ``json`` (the input's ``dataset.json``,
required), or the path of a labels JSON (``{"labels": [["name.png", 0], ...]}``, names relative to the input)."""
BAD_FILES = ("skip", "error")
TRANSFORMS = ("center-crop", "resize")
"""``center-crop``: the shorter side resized to ``resolution``, then the centre square; ``resize``: the whole
image squeezed to a square (both antialiased)."""
FORMATS = ("zip", "litdata")
MIN_STYLEGAN2 = 8
"""The smallest image StyleGAN2's networks build (``networks.stylegan2``: a power of two >= 8)."""


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def labels_choice(labels) -> str:
    """``labels`` as a string: null and false read as ``none``."""
    return "none" if labels in (None, False) else str(labels)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_prepare(input, out, resolution: int, layout: str = "image", labels="auto", bad_files: str = "skip",
                  channels: int | None = None, transform: str = "center-crop", max_images: int | None = None,
                  any_resolution: bool = False, format: str = "zip", num_workers: int = 0) -> None:
    """A ``UserError`` (one line) for a bad value (``config.RULES`` says the same for the command line), options
    that do not go together, an input that does not exist, or an ``out`` that exists or cannot be written. Reads
    no image."""
    from ..outputs import check_output

    labels = labels_choice(labels)
    for name, value, ok, allowed in (
        ("resolution", resolution, _is_int(resolution) and resolution > 0, "a positive integer"),
        ("layout", layout, layout in LAYOUTS, ", ".join(LAYOUTS)),
        ("bad_files", bad_files, bad_files in BAD_FILES, "skip or error"),
        ("channels", channels, channels is None or (_is_int(channels) and channels in (1, 3)), "1, 3 or null"),
        ("transform", transform, transform in TRANSFORMS, " or ".join(TRANSFORMS)),
        ("max_images", max_images, max_images is None or (_is_int(max_images) and max_images > 0),
         "a positive integer or null"),
        ("format", format, format in FORMATS, " or ".join(FORMATS)),
        ("num_workers", num_workers, _is_int(num_workers) and num_workers >= 0, "an integer >= 0"),
    ):
        if not ok:
            raise UserError(f"{name}={value}: use {allowed}")
    if layout == "image" and not any_resolution and (resolution < MIN_STYLEGAN2 or not is_power_of_two(resolution)):
        below = max(MIN_STYLEGAN2, 1 << (resolution.bit_length() - 1))
        near = f"{below} or {2 * below}" if resolution > MIN_STYLEGAN2 else str(MIN_STYLEGAN2)
        raise UserError(f"resolution={resolution}: layout=image needs a power of two >= {MIN_STYLEGAN2}, the sizes "
                        f"StyleGAN2 builds (e.g. {near}); set any_resolution=true to keep {resolution} px for the "
                        "other models")
    if layout != "image" and labels not in ("auto", "none"):
        raise UserError(f"labels={labels}: labels are for layout=image only (the {layout} layout carries none): "
                        "drop labels=")
    if labels not in LABELS and not Path(os.path.expanduser(labels)).is_file():
        raise UserError(f"labels={labels}: no such file; use {', '.join(LABELS)} or the path of a labels JSON")
    if format == "litdata" and layout != "image":
        raise UserError(f"format=litdata: LitData chunks hold the image layout only, not layout={layout}: use "
                        "format=zip")
    source = Path(os.path.expanduser(str(input)))
    if not source.exists():
        raise UserError(f"input {source} does not exist: give a folder of images or a zip made by prepare_data.py")
    target = Path(os.path.expanduser(str(out)))
    if format == "zip" and target.suffix.lower() != ".zip":
        raise UserError(f"out: {target} must end in .zip (format=zip writes one zip file)")
    if target.exists() or target.is_symlink():
        raise UserError(f"out: {target} exists: prepare_data.py overwrites nothing; remove it or choose another "
                        "path")
    check_output(target, "out", folder=format == "litdata")
