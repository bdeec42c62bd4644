"""Loading checkpoints safely: ``torch.load(weights_only=True)`` and only allowed config targets."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from .config import check_targets
from .errors import UserError
from .module import GANModule


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
    from .training import build_family

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
