"""Where results are written: checked before any work starts, and written whole or not at all.

Every command that writes (``train.py``'s run directory, ``generate.py``, ``evaluate.py``, ``report.py``) calls
``check_output`` first, so that a location that cannot be written is one line and a non-zero exit before any
training or sampling, and writes its files with ``atomic_write`` (a temporary file beside the target, renamed
into place), so that a failure half-way leaves no half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import UserError


def check_output(path: str | Path, what: str, folder: bool = False) -> Path:
    """A ``UserError`` (one line: which option, which path, why) unless ``path`` can be written: a file (or, with
    ``folder``, a folder) whose missing parent folders can be created. Creates nothing."""
    p = Path(path).expanduser()
    if folder and p.exists() and not p.is_dir():
        raise UserError(f"{what}: {p} exists and is not a folder: choose another path")
    if not folder and p.is_dir():
        raise UserError(f"{what}: {p} is a folder: give a file path")
    existing = p if folder else p.parent
    existing = existing if str(existing) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what}: cannot create {p}: {existing} is a file, not a folder: choose another path")
    try:  # the real test (permissions, read-only file systems, root or not): a temporary file, removed at once
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UserError(f"{what}: cannot write under {existing} ({e.strerror or type(e).__name__}): choose "
                        "another path") from None
    return p


def atomic_write(path: str | Path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """``write(tmp)`` to a temporary file beside ``path`` (same suffix), then rename it to ``path``: readers see
    the old file or the whole new one, never a part. ``overwrite=False``: linked into place instead, so that a
    file that appeared at ``path`` meanwhile is kept (``FileExistsError``; the temporary file is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private (0600); a saved result is not
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:  # (an OSError too: not the fallback below)
                raise
            except OSError:  # a file system without hard links: check, then rename
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
