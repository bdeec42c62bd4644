"""Running one training job: ``train(cfg)``, with divergence rollback; the Trainer stops at ``max_iterations``
(counted by the module in iterations, whatever optimizer steps its phases take)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ..config.checks import validate
from ..core.module import GANModule
from ..data.base import GANDataModule
from ..errors import TrainingDiverged
from .build import build_callbacks, build_loggers, build_module, build_trainer, instantiate_or_user_error
from .checkpoints import check_init_from, check_resumable, init_from_checkpoint, resolve_ckpt_path

log = logging.getLogger(__name__)


def train(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Train one run described by ``cfg`` (plus any extra ``callbacks``); returns where its outputs are and how
    far it got.

    W&B state and environment variables that loggers set are restored afterwards, so that the next job of a
    multirun (same process) starts clean.
    """
    validate(cfg)
    check_init_from(cfg.get("init_from"), cfg.get("ckpt_path"))
    environ = dict(os.environ)
    output_dir = Path(cfg.paths.output_dir)
    try:
        _plain_cuda_check_without_a_driver()
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule: GANDataModule = instantiate_or_user_error(cfg.data)
        module = build_module(cfg, datamodule)
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        stored = check_resumable(ckpt_path, module.config) if ckpt_path else {}
        if cfg.get("init_from") and not ckpt_path:  # (a resumed run has its own weights: ckpt_path=last)
            init_from_checkpoint(module, cfg.init_from)
        loggers = build_loggers(cfg, stored.get("wandb_run_id"))
        callbacks = build_callbacks(cfg) + list(callbacks or [])
        _spawn_in_sweeps(cfg)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        _fit(cfg, module, datamodule, loggers, callbacks, ckpt_path)
        return _outcome(output_dir)
    finally:
        _finish_wandb()
        os.environ.clear()
        os.environ.update(environ)


def _plain_cuda_check_without_a_driver() -> None:
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, so that looking for CUDA does not initialise it before
    DataLoader workers fork. Without an NVIDIA driver NVML never answers, torch does not keep the failure, and every
    ``torch.cuda.is_available()`` loads NVML again: about 60 microseconds, and torch's Adam asks once a step (two
    or more an iteration). Where NVML is missing there is no CUDA to initialise, so the plain check is safe, and it
    takes about a microsecond. (Restored with the rest of the environment when the run ends.)"""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1":
        return
    count_nvml = getattr(torch.cuda, "_device_count_nvml", None)
    if count_nvml is not None and count_nvml() < 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def _fit(cfg: DictConfig, module: GANModule, datamodule: GANDataModule, loggers: list, callbacks: list,
         ckpt_path: str | None) -> None:
    """``trainer.fit``; with ``divergence.action=rollback``, again from the last checkpoint after a divergence
    (a fresh Trainer each time, the same module, loggers and callbacks)."""
    divergence = cfg.get("divergence") or {}
    while True:
        trainer = build_trainer(cfg, loggers, callbacks)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            return
        except TrainingDiverged as e:
            if divergence.get("action", "stop") != "rollback":
                raise
            ckpt_path = _rollback_point(e, Path(cfg.paths.output_dir), module.rollbacks,
                                        divergence.get("max_rollbacks", 3))
            module.rollbacks += 1


def _rollback_point(error: TrainingDiverged, output_dir: Path, done: int, limit: int) -> str:
    """``divergence.action=rollback``: the checkpoint to go back to after ``error``, or ``error`` again (with the
    reason) when there is none or the rollbacks are used up."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if done >= limit:
        raise TrainingDiverged(f"{error} (after {done} rollbacks: divergence.max_rollbacks={limit})") from None
    if not last.is_file():
        raise TrainingDiverged(f"{error} (no checkpoint to roll back to yet)") from None
    log.warning("%s; rolling back to %s with fresh noise (rollback %d of %d)", error, last, done + 1, limit)
    return str(last)


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
    if in_multirun():
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.get().launcher._target_.endswith("BasicLauncher"):
            return
        spawn = strategy.replace("ddp", "ddp_spawn", 1)
        log.info("multirun: using trainer.strategy=%s instead of %s (no relaunch of the sweep)", spawn, strategy)
        with open_dict(cfg):
            cfg.trainer.strategy = spawn


def in_multirun() -> bool:
    """Is this a job of a Hydra multirun?"""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _finish_wandb() -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
