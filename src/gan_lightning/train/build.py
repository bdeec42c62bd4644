"""From a composed config to the pieces of a run: the family (built from the data's spec), the GANModule, the
callbacks and the loggers."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.profilers import PassThroughProfiler
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..augment import Augment
from ..config.checks import builds_object
from ..core.family import PLAYERS
from ..core.module import UNBOUNDED_STEPS, GANModule
from ..data.base import GANDataModule
from ..data.spec import DataSpec
from ..errors import UserError

log = logging.getLogger(__name__)

SPEED_KEYS = ("compile", "channels_last")
"""Keys of the model config that say how the networks run, not what they are (``GANModule`` takes them)."""

MOVED_TARGETS = {
    "gan_lightning.families.GAN": "gan_lightning.families.gan.GAN",
    "gan_lightning.conditional.CGAN": "gan_lightning.families.class_conditional.CGAN",
    "gan_lightning.conditional.ACGAN": "gan_lightning.families.class_conditional.ACGAN",
    "gan_lightning.infogan.InfoGAN": "gan_lightning.families.infogan.InfoGAN",
}
"""Where the classes named by configs stored in older checkpoints live now."""


def current_targets(cfg: Any) -> Any:
    """``cfg`` (plain dicts and lists) with every moved ``_target_`` renamed (``MOVED_TARGETS``)."""
    if isinstance(cfg, dict):
        return {k: (MOVED_TARGETS.get(v, v) if k == "_target_" else current_targets(v)) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [current_targets(v) for v in cfg]
    return cfg


def instantiate_or_user_error(node: Any, **kwargs) -> Any:
    """``hydra.utils.instantiate``, re-raising a ``UserError`` from the constructor as itself (Hydra wraps every
    constructor exception in an ``InstantiationException``, which would print a traceback)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, UserError):
            raise e.__cause__ from None
        raise


def build_family(model_cfg: dict, loss_cfg: dict, spec: DataSpec | dict):
    """The family from plain config dicts (as stored in checkpoints) and the data's spec (or the data record a
    checkpoint stores). A model that can't be built for the data (DCGAN on 2-D points, say) is a ``UserError``.
    ``model_cfg["augment"]`` (``Augment``'s options; absent: none) is the discriminator's input augmentation: it
    travels in the model's config so that checkpoints rebuild ADA's buffers and resuming with another one is
    refused."""
    if not isinstance(spec, DataSpec):
        spec = DataSpec.from_dict(spec)
    augment_cfg = model_cfg.get("augment") or {}
    model_cfg = current_targets({k: v for k, v in model_cfg.items() if k not in SPEED_KEYS and k != "augment"})
    # A partial, called here: Hydra would turn the spec (a dataclass) into a config node.
    factory = instantiate_or_user_error(model_cfg, _partial_=True)
    try:
        family = factory(loss=instantiate_or_user_error(loss_cfg), spec=spec)
    except ValueError as e:
        raise UserError(f"model: {e}") from None
    try:
        family.set_augment(Augment(**augment_cfg))
    except (TypeError, ValueError) as e:  # (TypeError: an option Augment does not have)
        raise UserError(f"augment: {e}") from None
    return family


def build_module(cfg: DictConfig, datamodule: GANDataModule) -> GANModule:
    """The GANModule for ``cfg``: the model family built for the data's spec, optimizers from ``cfg.optim``, a stop
    at ``cfg.max_iterations``."""
    spec = datamodule.spec
    # The data config itself, so that evaluate.py finds the data a checkpoint was trained on without data=...
    stored_data = {**spec.to_dict(), "cfg": OmegaConf.to_container(cfg.data, resolve=True)}
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    augment = OmegaConf.to_container(cfg.augment, resolve=True) if cfg.get("augment") else {}
    if augment.get("kind", "none") != "none":  # (none: configs and checkpoints as before augmentation existed)
        model_cfg["augment"] = augment
    family = build_family(model_cfg, OmegaConf.to_container(cfg.loss, resolve=True), spec)
    if family.paired and not spec.paired:  # (a checkpoint of such a run, if any, still loads: build_family)
        raise UserError(f"model: {type(family).__name__} learns from aligned pairs, but this data draws its inputs and "
                        "targets independently (unpaired): use paired data (data=fashion_edges, data=aligned_folder)")
    speed = {key: model_cfg.get(key, False) for key in SPEED_KEYS}
    players = [p for p in PLAYERS if p in cfg.optim]
    return GANModule(
        family,
        optimizer={player: instantiate(cfg.optim[player]) for player in players},
        n_critic=cfg.optim.n_critic,
        scheduler={player: instantiate(s) for player, s in cfg.optim.get("scheduler", {}).items()},
        **OmegaConf.to_container(cfg.module, resolve=True),
        **speed,
        max_iterations=cfg.get("max_iterations"),
        config={
            "model": model_cfg,
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "optim": {player: cfg.optim[player]._target_ for player in players},
            "data": stored_data,
            "ema_decay": cfg.module.ema_decay,
        },
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The callbacks ``cfg.callbacks`` names (one per entry with a ``_target_``; see ``configured``)."""
    callbacks = []
    for key, node in configured(cfg, "callbacks"):
        callback = instantiate_or_user_error(node)
        if not isinstance(callback, pl.Callback):
            raise UserError(f"callbacks.{key}: {node._target_} is not a Lightning callback")
        callbacks.append(callback)
    return callbacks


def build_loggers(cfg: DictConfig, wandb_run_id: str | None = None) -> list[Any]:
    """The loggers ``cfg.logger`` names (see ``configured``); a resumed run's W&B logger continues the
    checkpoint's W&B run (``wandb_run_id``)."""
    from pytorch_lightning.loggers import Logger

    loggers = []
    for key, node in configured(cfg, "logger"):
        if wandb_run_id and str(node._target_).endswith("wandb_logger"):
            logger = instantiate_or_user_error(node, id=wandb_run_id, resume="allow")
        else:
            logger = instantiate_or_user_error(node)
        if not isinstance(logger, Logger):
            raise UserError(f"logger.{key}: {node._target_} is not a Lightning logger")
        loggers.append(logger)
    return loggers


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler (none), answering its ``profile(action)`` with one shared context that does
    nothing: Lightning opens one around every hook it calls, about 24 a training iteration, and the default builds
    a generator-based context manager each time."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:  # type: ignore[override]
        return self._nothing


def build_trainer(cfg: DictConfig, loggers: list, callbacks: list[pl.Callback]) -> pl.Trainer:
    """The Trainer of ``cfg.trainer``, bounded by the module's iteration count (``max_iterations``), not by steps;
    without a ``trainer.profiler``, ``NoProfiler``."""
    profiler = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    return instantiate(cfg.trainer, max_steps=UNBOUNDED_STEPS, logger=loggers or False, callbacks=callbacks,
                       **profiler)


def configured(cfg: DictConfig, group: str) -> list[tuple[str, DictConfig]]:
    """The entries of ``cfg[group]`` (``callbacks``, ``logger``) that say what to build: those with a ``_target_``.
    An empty or null entry is off (``metrics=none`` empties ``callbacks.metrics``). An entry without a
    ``_target_`` holds settings a preset (or a ``+`` override) gave an object that this group's option leaves out,
    such as ``experiment=gaussian_ring``'s ``callbacks.samples.every_n_iterations`` under ``callbacks=none``: there
    is nothing to apply them to, so they are dropped (one log line). Anything else is a ``UserError``."""
    entries = []
    for key, node in (cfg.get(group) or {}).items():
        if node is None or (isinstance(node, DictConfig) and len(node) == 0):
            continue
        if not isinstance(node, DictConfig):
            raise UserError(f"{group}.{key} must be a config with a _target_, or null to turn it off; got {node!r}")
        if not builds_object(node):
            settings = ", ".join(f"{k}={v}" for k, v in OmegaConf.to_container(node, resolve=False).items())
            log.info("%s.%s (%s): this config builds no %s of that name (its %s option leaves it out); ignored",
                     group, key, settings, {"callbacks": "callback"}.get(group, group), group)
            continue
        entries.append((key, node))
    return entries
