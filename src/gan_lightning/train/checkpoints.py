"""Checkpoints: read safely (``torch.load(weights_only=True)``, only allowed config targets), rebuild a module
for sampling, and decide whether a run may resume from one."""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..config.checks import check_targets
from ..core.module import GANModule
from ..errors import UserError
from .build import build_family, current_targets

log = logging.getLogger(__name__)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, loaded without executing code; ``UserError`` for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such checkpoint file: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError, OSError) as e:
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}); is the file truncated?") from None
    if not isinstance(ckpt, dict) or "gan_lightning" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a gan_lightning checkpoint (no gan_lightning section)")
    return ckpt


def load_module(path: str | Path) -> GANModule:
    """A ``GANModule`` (networks and EMA, no optimizers) rebuilt from a checkpoint, in eval mode on CPU."""
    ckpt = read_checkpoint(path)
    config = ckpt["gan_lightning"]["config"]
    check_targets({"model": config["model"], "loss": config["loss"]})
    family = build_family(config["model"], config["loss"], config["data"])
    module = GANModule(family, optimizer={}, ema_decay=config.get("ema_decay"), config=config)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not match the model stored with them ({str(e).splitlines()[0]})") from None
    module.iteration = int(ckpt["gan_lightning"].get("iteration", 0))
    return module.eval()


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``ckpt_path=last``: this run directory's ``checkpoints/last.ckpt`` if there is one, else a fresh start, so
    that re-running an interrupted command with a fixed ``hydra.run.dir`` continues it. Any other value must be a
    checkpoint file."""
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            log.info("resuming from %s", last)
            return str(last)
        log.info("ckpt_path=last: no checkpoint in %s yet, starting from scratch", last.parent)
        return None
    if ckpt_path and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path: no such checkpoint file: {ckpt_path} (or use ckpt_path=last)")
    return ckpt_path


def check_resumable(ckpt_path: str, config: dict) -> dict:
    """A ``UserError`` unless the checkpoint is a readable gan_lightning checkpoint of the same networks, data
    shape and optimizers as this run (anything else would fail deep inside Lightning, or silently misload).
    Returns the checkpoint's own record (iteration, config, W&B run id)."""
    state = read_checkpoint(ckpt_path)["gan_lightning"]
    stored = state["config"]
    keys = ("model", "optim")
    differing = _differences({k: current_targets(stored.get(k)) for k in keys}, {k: config[k] for k in keys})
    if stored["data"]["shape"] != config["data"]["shape"]:
        differing.insert(0, f"data shape {stored['data']['shape']} vs {config['data']['shape']}")
    if differing:
        raise UserError(f"ckpt_path: {ckpt_path} was trained with other settings ({'; '.join(differing[:3])}); "
                        "resume with the settings it was trained with")
    return state


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]
