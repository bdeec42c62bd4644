"""Logger factories: W&B that works with or without credentials."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger

log = logging.getLogger(__name__)


def wandb_credentials_found() -> bool:
    """True when W&B can authenticate: ``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def default_group() -> str:
    """The sweep's directory name in a Hydra multirun, else the experiment's name, else ``default``."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return "default"
    if hc.mode == RunMode.MULTIRUN:
        return Path(hc.sweep.dir).name
    return hc.runtime.choices.get("experiment") or "default"


def wandb_logger(offline: bool | None = None, group: str | None = None, **kwargs) -> WandbLogger:
    """A ``WandbLogger`` that runs offline when no credentials are found (``offline=None``) instead of prompting.

    Offline runs are written to ``<save_dir>/wandb/offline-run-*`` and can be uploaded with ``wandb sync``.
    """
    if offline is None:
        offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_credentials_found()
        if offline:
            log.info("W&B: no credentials found, logging offline; upload later with `wandb sync`.")
    return WandbLogger(offline=offline, group=group or default_group(), **kwargs)
