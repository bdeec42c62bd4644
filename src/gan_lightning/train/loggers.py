"""Logger factories: W&B that works with or without credentials."""

from __future__ import annotations

import logging
import netrc
import os
import socket
import sys
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


def _hydra():
    """(HydraConfig, is multirun), or (None, False) outside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, False
    return hc, hc.mode == RunMode.MULTIRUN


def default_group() -> str:
    """The sweep's directory name in a Hydra multirun, else the experiment's name, else ``default``."""
    hc, multirun = _hydra()
    if hc is None:
        return "default"
    if multirun:
        return Path(hc.sweep.dir).name
    return hc.runtime.choices.get("experiment") or "default"


def swept_keys(argv: list[str]) -> set[str]:
    """The keys a command line sweeps over (``loss=a,b`` or ``seed=range(3)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides([a for a in argv if not a.startswith("-")])
    except Exception:  # noqa: BLE001 - not a Hydra command line (e.g. a remote launcher's process)
        return set()
    return {o.get_key_element() for o in overrides if o.is_sweep_override()}


def run_name(name: str | None) -> str | None:
    """In a multirun, a job is named after its swept values (``loss=hinge,seed=2``) so that the runs of one sweep
    can be told apart in the dashboard; otherwise ``name`` (model-loss-data-seed)."""
    hc, multirun = _hydra()
    if not multirun:
        return name
    swept = swept_keys(sys.argv[1:])
    values = sorted(o for o in hc.overrides.task if o.split("=", 1)[0] in swept)
    return ",".join(values) or hc.job.override_dirname or name


def wandb_unavailable(timeout: float = 5.0) -> str | None:
    """Why an online W&B run can't start (server unreachable, key rejected), or None when it can."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host = url.hostname or "api.wandb.ai"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"server {host}:{port} unreachable ({e.strerror or type(e).__name__})"
    try:
        import wandb

        if not wandb.login(key=os.environ.get("WANDB_API_KEY") or None, verify=True, relogin=False):
            return "login failed"
    except Exception as e:  # noqa: BLE001 - wandb raises various errors for a bad key
        return f"login failed ({type(e).__name__})"
    return None


def wandb_logger(offline: bool | None = None, group: str | None = None, name: str | None = None,
                 **kwargs) -> WandbLogger:
    """A ``WandbLogger`` that runs offline when no credentials are found (``offline=None``) instead of prompting,
    and when the server is unreachable or rejects the key (one warning), instead of failing.

    Offline runs are written to ``<save_dir>/wandb/offline-run-*`` and can be uploaded with ``wandb sync``. In a
    multirun every job writes into the sweep's directory (``<sweep dir>/wandb/``), so that one ``wandb leet
    <sweep dir>/wandb`` shows the sweep's runs side by side and one ``wandb sync`` uploads them all.
    """
    hc, multirun = _hydra()
    if multirun and hc is not None:
        kwargs["save_dir"] = str(hc.sweep.dir)
    if offline is None:
        offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_credentials_found()
        if offline:
            log.info("W&B: no credentials found, logging offline; upload later with `wandb sync`.")
    if not offline and (reason := wandb_unavailable()):
        log.warning("W&B %s: logging offline instead; upload later with `wandb sync`", reason)
        offline = True
    return WandbLogger(offline=offline, group=group or default_group(), name=run_name(name), **kwargs)
