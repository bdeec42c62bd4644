"""Importing the authors' released weights into package checkpoints (``python import_weights.py kind=... src=...
out=...``).

Each kind is a module of this package with one function per kind, ``read_<kind>(src: Path) -> Imported``: it
reads the authors' file without executing anything from it, and returns the tensors renamed to the package's
layout with the Hydra overrides that build the networks they fit. ``import_weights.py`` composes that config,
loads the tensors into a freshly built ``GANModule`` (every tensor must find its place and fit it), and writes a
checkpoint that generate.py, translate.py, evaluate.py and ``train.py init_from=...`` read
(``importers.checkpoint``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:  # (the config checks read KINDS before torch loads)
    from torch import Tensor

# kind -> the module (of this package) whose ``read`` imports it
KINDS = {"pix2pix": "translation", "cyclegan": "translation", "stylegan2": "stylegan2_ada"}


@dataclass
class Imported:
    """The authors' tensors in the package's layout.

    state: keyed as ``GANModule.state_dict()`` (``family.generator.*``, ``generator_ema.*``, ...); the networks the
        file does not hold keep their initialisation (a pix2pix generator without its discriminator, say).
    overrides: Hydra overrides of train.yaml that build the networks these tensors fit (``model=...``, widths,
        resolution, channels), before the user's own.
    source: what was read, for the checkpoint's record (``"pix2pix generator (latest_net_G.pth)"``).
    """

    state: dict[str, Tensor]
    overrides: list[str]
    source: str
    notes: list[str] = field(default_factory=list)  # what the user should know (networks left at init, ...)


def check_new_output(out: str | Path, what: str = "out") -> Path:
    """``out`` as a path, or a ``UserError`` when something is there already: an import never overwrites."""
    path = Path(out).expanduser()
    if path.exists() or path.is_symlink():
        raise UserError(f"{what}: {path} exists: choose another path (an import never overwrites)")
    return path


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UserError(f"kind={kind}: must be one of {', '.join(KINDS)}")


def reader(kind: str):
    """The ``read`` function of an import kind; ``KeyError`` for unknown kinds."""
    module = importlib.import_module(f"{__name__}.{KINDS[kind]}")
    return getattr(module, f"read_{kind}")


def read(kind: str, src: Path) -> Imported:
    """The file(s) ``src`` names, read as ``kind`` (see the module docstring)."""
    return reader(kind)(Path(src))
