"""Building the pieces from a composed config and running a training job. ``train.py`` is a thin wrapper."""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from .checkpoints import read_checkpoint
from .config import validate
from .data import GANDataModule
from .errors import UserError
from .module import PLAYERS, GANModule

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig, datamodule: GANDataModule) -> GANModule:
    """The GANModule for ``cfg``: the model family built for the data's shape, optimizers from ``cfg.optim``."""
    data_info = {
        "shape": list(datamodule.shape),
        "num_classes": datamodule.num_classes,
        "class_names": list(datamodule.class_names) if datamodule.class_names else None,
        "bounded": bool(datamodule.bounded),
    }
    family = build_family(
        OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss, resolve=True), data_info
    )
    return GANModule(
        family,
        optimizer={player: instantiate(cfg.optim[player]) for player in PLAYERS},
        n_critic=cfg.optim.n_critic,
        scheduler={player: instantiate(s) for player, s in cfg.optim.get("scheduler", {}).items()},
        **OmegaConf.to_container(cfg.module, resolve=True),
        config={
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "optim": {player: cfg.optim[player]._target_ for player in PLAYERS},
            "data": data_info,
            "ema_decay": cfg.module.ema_decay,
        },
    )


def build_family(model_cfg: dict, loss_cfg: dict, data_info: dict):
    """The family from plain config dicts (as stored in checkpoints) and the data's description. A model that
    can't be built for the data (DCGAN on 2-D points, say) is a ``UserError``."""
    try:
        return instantiate(
            model_cfg,
            loss=instantiate(loss_cfg),
            data_shape=tuple(data_info["shape"]),
            num_classes=data_info.get("num_classes"),
            bounded=data_info.get("bounded", True),
        )
    except InstantiationException as e:
        if isinstance(e.__cause__, ValueError):
            raise UserError(f"model: {e.__cause__}") from None
        raise


def train(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Train one run described by ``cfg`` (plus any extra ``callbacks``); returns where its outputs are and how
    far it got.

    W&B state and environment variables that loggers set are restored afterwards, so that the next job of a
    multirun (same process) starts clean.
    """
    validate(cfg)
    environ = dict(os.environ)
    output_dir = Path(cfg.paths.output_dir)
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule: GANDataModule = instantiate(cfg.data)
        module = build_module(cfg, datamodule)
        loggers = [instantiate(c) for c in cfg.get("logger", {}).values() if c]
        callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c] + list(callbacks or [])
        _spawn_in_sweeps(cfg)
        trainer: pl.Trainer = instantiate(
            cfg.trainer, max_steps=module.optimizer_steps(cfg.max_iterations), logger=loggers or False,
            callbacks=callbacks,
        )
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        if ckpt_path:
            check_resumable(ckpt_path, module.config)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        return _outcome(output_dir)
    finally:
        _finish_wandb()
        os.environ.clear()
        os.environ.update(environ)


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


def check_resumable(ckpt_path: str, config: dict) -> None:
    """A ``UserError`` unless the checkpoint is a readable gan_lightning checkpoint of the same networks, data
    shape and optimizers as this run (anything else would fail deep inside Lightning, or silently misload)."""
    stored = read_checkpoint(ckpt_path)["gan_lightning"]["config"]
    keys = ("model", "optim")
    differing = _differences({k: stored.get(k) for k in keys}, {k: config[k] for k in keys})
    if stored["data"]["shape"] != config["data"]["shape"]:
        differing.insert(0, f"data shape {stored['data']['shape']} vs {config['data']['shape']}")
    if differing:
        raise UserError(f"ckpt_path: {ckpt_path} was trained with other settings ({'; '.join(differing[:3])}); "
                        "resume with the settings it was trained with")


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """``train(cfg)`` as a Hydra job. In a multirun a failing job does not stop the sweep: its error is logged,
    its traceback written to ``<job dir>/error.txt``, and the next job starts (with W&B and the environment
    reset by ``train``)."""
    if not _in_multirun():
        try:
            return train(cfg)
        except UserError:
            _remove_if_only_hydra_files(Path(cfg.paths.output_dir))  # a rejected run leaves nothing behind
            raise
    try:
        return train(cfg)
    except Exception as e:  # noqa: BLE001 - any failure of one job
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "error.txt").write_text(traceback.format_exc())
        log.error("job failed, the sweep goes on: %s: %s (traceback in %s)", type(e).__name__, e,
                  output_dir / "error.txt")
        return None


def _remove_if_only_hydra_files(output_dir: Path) -> None:
    if output_dir.is_dir() and {p.name for p in output_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(output_dir)


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _outcome(output_dir: Path) -> dict[str, Any]:
    """Where the run's outputs are and how far it got, read from its last checkpoint (which the training
    processes wrote: under spawned DDP this process's module is not the one that trained)."""
    last = output_dir / "checkpoints" / "last.ckpt"
    result: dict[str, Any] = {"output_dir": str(output_dir), "last_checkpoint": None}
    if last.is_file():
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        result.update(last_checkpoint=str(last), iteration=ckpt["gan_lightning"]["iteration"],
                      global_step=ckpt["global_step"])
    return result


def _spawn_in_sweeps(cfg: DictConfig) -> None:
    """Lightning's default DDP launcher re-runs the command line in each process: under a local Hydra multirun
    that relaunches the whole sweep. Use the spawn launcher there instead. (Under the SLURM launcher the processes
    are SLURM's tasks and Lightning launches nothing.)"""
    strategy = cfg.trainer.get("strategy")
    if not (isinstance(strategy, str) and strategy.startswith("ddp") and not strategy.startswith("ddp_spawn")):
        return
    if _in_multirun():
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.get().launcher._target_.endswith("BasicLauncher"):
            return
        spawn = strategy.replace("ddp", "ddp_spawn", 1)
        log.info("multirun: using trainer.strategy=%s instead of %s (no relaunch of the sweep)", spawn, strategy)
        with open_dict(cfg):
            cfg.trainer.strategy = spawn


def _finish_wandb() -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
