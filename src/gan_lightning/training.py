"""Building the pieces from a composed config and running a training job. ``train.py`` is a thin wrapper."""

from __future__ import annotations

import logging
import math
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
from .errors import TrainingDiverged, UserError
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
    # The data config itself, so that evaluate.py finds the data a checkpoint was trained on without data=...
    stored_data = {**data_info, "cfg": OmegaConf.to_container(cfg.data, resolve=True)}
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    family = build_family(model_cfg, OmegaConf.to_container(cfg.loss, resolve=True), data_info)
    speed = {key: model_cfg.get(key, False) for key in SPEED_KEYS}
    return GANModule(
        family,
        optimizer={player: instantiate(cfg.optim[player]) for player in PLAYERS},
        n_critic=cfg.optim.n_critic,
        scheduler={player: instantiate(s) for player, s in cfg.optim.get("scheduler", {}).items()},
        **OmegaConf.to_container(cfg.module, resolve=True),
        **speed,
        config={
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "optim": {player: cfg.optim[player]._target_ for player in PLAYERS},
            "data": stored_data,
            "ema_decay": cfg.module.ema_decay,
        },
    )


def instantiate_or_user_error(node: Any) -> Any:
    """``hydra.utils.instantiate``, re-raising a ``UserError`` from the constructor as itself (Hydra wraps every
    constructor exception in an ``InstantiationException``, which would print a traceback)."""
    try:
        return instantiate(node)
    except InstantiationException as e:
        if isinstance(e.__cause__, UserError):
            raise e.__cause__ from None
        raise


SPEED_KEYS = ("compile", "channels_last")
"""Keys of the model config that say how the networks run, not what they are (``GANModule`` takes them)."""


def build_family(model_cfg: dict, loss_cfg: dict, data_info: dict):
    """The family from plain config dicts (as stored in checkpoints) and the data's description. A model that
    can't be built for the data (DCGAN on 2-D points, say) is a ``UserError``."""
    try:
        return instantiate(
            {k: v for k, v in model_cfg.items() if k not in SPEED_KEYS},
            loss=instantiate(loss_cfg),
            data_shape=tuple(data_info["shape"]),
            num_classes=data_info.get("num_classes"),
            bounded=data_info.get("bounded", True),
        )
    except InstantiationException as e:
        if isinstance(e.__cause__, UserError):
            raise e.__cause__ from None
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
        datamodule: GANDataModule = instantiate_or_user_error(cfg.data)
        module = build_module(cfg, datamodule)
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        stored = check_resumable(ckpt_path, module.config) if ckpt_path else {}
        loggers = [_instantiate_logger(c, stored.get("wandb_run_id")) for c in cfg.get("logger", {}).values() if c]
        callbacks = [instantiate_or_user_error(c) for c in cfg.get("callbacks", {}).values() if c] + list(callbacks or [])
        _spawn_in_sweeps(cfg)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        _fit(cfg, module, datamodule, loggers, callbacks, ckpt_path)
        return _outcome(output_dir)
    finally:
        _finish_wandb()
        os.environ.clear()
        os.environ.update(environ)


def _fit(cfg: DictConfig, module: GANModule, datamodule: GANDataModule, loggers: list, callbacks: list,
         ckpt_path: str | None) -> None:
    """``trainer.fit``; with ``divergence.action=rollback``, again from the last checkpoint after a divergence
    (a fresh Trainer each time, the same module, loggers and callbacks)."""
    divergence = cfg.get("divergence") or {}
    while True:
        trainer: pl.Trainer = instantiate(
            cfg.trainer, max_steps=module.optimizer_steps(cfg.max_iterations), logger=loggers or False,
            callbacks=callbacks,
        )
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            return
        except TrainingDiverged as e:
            if divergence.get("action", "stop") != "rollback":
                raise
            ckpt_path = _rollback_point(e, Path(cfg.paths.output_dir), module.rollbacks,
                                        divergence.get("max_rollbacks", 3))
            module.rollbacks += 1


def _instantiate_logger(node: DictConfig, wandb_run_id: str | None) -> Any:
    """A logger from its config; a resumed run's W&B logger continues the checkpoint's W&B run."""
    if wandb_run_id and str(node.get("_target_", "")).endswith("wandb_logger"):
        return instantiate(node, id=wandb_run_id, resume="allow")
    return instantiate(node)


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
    differing = _differences({k: stored.get(k) for k in keys}, {k: config[k] for k in keys})
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


def run_job(cfg: DictConfig) -> dict[str, Any] | float | None:
    """``train(cfg)`` as a Hydra job. In a multirun a failing job does not stop the sweep: its error is logged,
    its traceback written to ``<job dir>/error.txt``, and the next job starts (with W&B and the environment
    reset by ``train``).

    With ``optimized_metric`` set (``hparams_search=...``) the job returns that metric's value at the end of
    training, for the sweeper to optimise: read from the run's ``metrics.jsonl``, which the training processes
    wrote (under spawned DDP this process's trainer is not the one that trained). A failed job then returns the
    worst value (inf when minimising): Optuna 2 ends the whole study on NaN or on anything that isn't a number."""
    metric = cfg.get("optimized_metric")
    output_dir = Path(cfg.paths.output_dir)
    if not _in_multirun():
        try:
            outcome = train(cfg)
        except UserError:
            _remove_if_only_hydra_files(output_dir)  # a rejected run leaves nothing behind
            raise
        return _objective(output_dir, metric) if metric else outcome
    try:
        outcome = train(cfg)
    except Exception as e:  # noqa: BLE001 - any failure of one job
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "error.txt").write_text(traceback.format_exc())
        log.error("job failed, the sweep goes on: %s: %s (traceback in %s)", type(e).__name__, e,
                  output_dir / "error.txt")
        return _worst_value() if metric else None
    return _objective(output_dir, metric) if metric else outcome


def _objective(output_dir: Path, metric: str) -> float:
    """The final value of ``metric`` (a ``UserError`` when the run didn't log it: the same for every trial)."""
    from .report import final_metric

    value = final_metric(output_dir, metric)
    log.info("%s = %.6g at the end of training (the job's objective)", metric, value)
    return _worst_value() if math.isnan(value) else value


def _worst_value() -> float:
    """What a failed trial returns: the worst possible value for the sweep's direction."""
    direction = "minimize"
    try:
        from hydra.core.hydra_config import HydraConfig

        direction = HydraConfig.get().sweeper.get("direction", direction)
    except ValueError:
        pass
    return -math.inf if "max" in str(getattr(direction, "name", direction)) else math.inf


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
