"""Metrics during training, and the best checkpoint by FID."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer
from torch import Tensor

from ..callbacks.checkpoints import IterationCheckpoint
from ..errors import UserError
from .build import build_evaluator, feed, summary
from .core import Evaluator
from .options import MetricOptions
from .registry import ScoreContext, classifier, classifier_panel, family_scores

log = logging.getLogger(__name__)


class MetricsCallback(pl.Callback):
    """Every ``every_n_iterations`` generator iterations and at the end of training, draw ``n_samples`` samples
    from the EMA generator (a fixed noise batch, ``seed``; for families that generate from data, the data module's
    fixed held-out batch of that size) and score them: FID, KID, IS, precision/recall in each
    feature space (``metrics/fid``, ... for Inception; ``metrics/fid_domain``, ... for the domain classifier;
    ``metrics/fid_domain_b``, ... for each member of its panel, with ``panel``), class coverage
    (``metrics/classes_covered``, ``metrics/class_kl``); for 2-D mixtures, the data module's
    ``score`` (``metrics/modes_covered``, ``metrics/high_quality_frac``, ``metrics/mode_kl``); and the scores the
    family's capabilities call for (``metrics.registry``: label accuracy, code accuracy, PSNR/SSIM/L1).

    Values go to the loggers with the iteration as the step (rank 0), to ``trainer.callback_metrics`` (for
    checkpoint monitoring) and, one JSON line per evaluation, to ``<trainer.default_root_dir>/metrics.jsonl``
    (rank 0; ``{"iteration": N, "metrics/...": value, ...}``; a resumed run appends, so a reader keeps the last
    line of each iteration: ``gan_lightning.report.read_metrics``). The protocol (feature weights and their
    sha256, resize, reference split and size, sample count, seed, library versions) is logged once as the run's
    ``metrics_protocol`` hyperparameter.

    Under DDP each process generates its share of the samples; the features are gathered and every process
    computes the same numbers. The networks and metric state live here, never in the LightningModule, so they
    stay out of checkpoints.
    """

    def __init__(self, every_n_iterations: int = 2000, n_samples: int = 5000, n_reference: int | None = 10000,
                 reference_split: str = "auto", features: str = "auto", inception_weights: str | None = None,
                 domain_weights: str | None = None, cache_dir: str | None = None, seed: int = 0,
                 batch_size: int = 500, kid_subsets: int = 100, panel: bool = True):
        self.every_n_iterations = every_n_iterations
        self.n_samples = n_samples
        self.options = MetricOptions(features=features, n_reference=n_reference, reference_split=reference_split,
                                     inception_weights=inception_weights, domain_weights=domain_weights,
                                     panel=panel, cache_dir=cache_dir, kid_subsets=kid_subsets)
        self.seed = seed
        self.batch_size = batch_size
        self.evaluator: Evaluator | None = None
        self.protocol: dict = {}
        self.evaluated_iteration = -1
        self.latest: dict[str, float] = {}
        self.seconds: list[float] = []  # wall time of each evaluation (setup excluded)
        self._train_start = time.perf_counter()
        self.setup_seconds = 0.0
        self._inputs: dict[str, Tensor] | None = None
        self._source: dict[str, Tensor] | None = None
        self._protocol_logged = False

    # --- set-up ------------------------------------------------------------------------------------------------
    def _check_options(self) -> None:
        # Here rather than in __init__: Hydra would wrap a UserError raised while instantiating.
        if self.every_n_iterations is None or self.every_n_iterations < 0:
            raise UserError(f"metrics.every_n_iterations must be >= 0 (0: only at the end); got "
                            f"{self.every_n_iterations}")
        if self.n_samples is None or self.n_samples < 2:
            raise UserError(f"metrics.n_samples must be at least 2; got {self.n_samples}")
        if self.batch_size is None or self.batch_size < 1:
            raise UserError(f"metrics.batch_size must be positive; got {self.batch_size}")
        self.options.check("metrics.")

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit" or self.evaluator is not None:
            return
        self._check_options()
        t0 = time.perf_counter()
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None:
            if trainer.is_global_zero:
                log.warning("metrics: no datamodule attached to the trainer: no metrics")
            self.evaluator = Evaluator()
            return
        available = datamodule.split_size("test") if pl_module.family.needs_source else None
        if available is not None and self.n_samples > available:  # held-out inputs: each scored once
            if trainer.is_global_zero:
                log.info("metrics: n_samples=%d, but the data holds %d held-out inputs: scoring each once",
                         self.n_samples, available)
            self.n_samples = available
        # Rank 0 first: it prints the one warning and fills the reference cache that the others then read. Its
        # outcome is broadcast (which also waits for it), so that a failure there stops every rank, not just one.
        error = None
        if trainer.is_global_zero:
            try:
                self._build(datamodule, pl_module.family, log.warning)
            except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks know
                error = e
        failed = trainer.strategy.broadcast(error is not None, src=0)
        if error is not None:
            raise error
        if failed:
            raise UserError("metrics: setting up failed on rank 0 (see its error)")
        if not trainer.is_global_zero:
            self._build(datamodule, pl_module.family, lambda message: None)
        self.protocol["generated"] = {"n": self.n_samples, "seed": self.seed,
                                      "generator": "EMA generator (module.generate, eval mode)",
                                      "quantization": "uint8: round((x + 1) * 127.5), clamped (images)",
                                      "every_n_iterations": self.every_n_iterations}
        self.setup_seconds = time.perf_counter() - t0
        if trainer.is_global_zero and self.evaluator.active:
            log.info("metrics: set up in %.1f s (reference statistics included)", self.setup_seconds)

    def _build(self, datamodule, family, warn) -> None:
        # Outside the training's random stream: building the feature networks draws initial weights, and only when
        # the reference statistics are not cached yet, so the same seed would otherwise train differently.
        with torch.random.fork_rng(devices=[]):
            options = self.options.for_family(family)
            self.evaluator, self.protocol = build_evaluator(datamodule, options, warn=warn)

    def fid_key(self) -> str | None:
        """The logged name of the FID to select checkpoints by: Inception's where it is computed, else the
        domain one; None when no FID is computed."""
        if self.evaluator is None or not self.evaluator.spaces:
            return None
        return f"metrics/fid{self.evaluator.spaces[0].suffix}"

    def on_train_start(self, trainer, pl_module) -> None:
        self._train_start = time.perf_counter()
        # A fresh start in a directory that holds an earlier run's history: keep that history, but aside, so that
        # this run's metrics.jsonl is its own (a resumed run, iteration > 0, appends to its file).
        root = getattr(trainer, "default_root_dir", None)
        path = Path(root) / "metrics.jsonl" if root else None
        if trainer.is_global_zero and pl_module.iteration == 0 and path is not None and path.is_file():
            aside = path.with_name(f"metrics.{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
            path.rename(aside)
            log.info("metrics: a fresh run; the earlier history is now %s", aside)

    # --- when -------------------------------------------------------------------------------------------------
    def _active(self, pl_module) -> bool:
        """Anything to score: feature spaces or mixture scores, or the scores of a family that translates data."""
        return self.evaluator is not None and (self.evaluator.active or pl_module.family.needs_source)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._active(pl_module):
            return
        it = pl_module.iteration
        if it == self.evaluated_iteration:
            return
        due = self.every_n_iterations > 0 and it > 0 and it % self.every_n_iterations == 0
        if due or self._training_ends_now(trainer):
            self.evaluate(trainer, pl_module, in_loop=True)

    def on_train_end(self, trainer, pl_module) -> None:
        # Stopped some other way (interrupted, or time ran out between our check and the Timer's).
        if self._active(pl_module) and pl_module.iteration != self.evaluated_iteration:
            self.evaluate(trainer, pl_module, in_loop=False)

    @staticmethod
    def _training_ends_now(trainer) -> bool:
        """Is this the last batch? (max_iterations reached, a stop requested, or max_time used up: the Timer
        callback runs after this one and decides the same way, on rank 0's clock.)"""
        module = trainer.lightning_module
        limit = getattr(module, "max_iterations", None)
        if limit is not None and module.iteration >= limit:
            return True
        if trainer.should_stop:
            return True
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return False
        return bool(trainer.strategy.broadcast(timer.time_remaining() <= 0, src=0))

    # --- what -------------------------------------------------------------------------------------------------
    def _fixed_inputs(self, trainer, pl_module) -> dict[str, Tensor]:
        """The same generator inputs at every evaluation: noise from ``seed``, or for families that generate from
        data, the data module's fixed held-out batch (``fixed_batch(n_samples, "test", seed)``)."""
        if self._inputs is None:
            family = pl_module.family
            if family.needs_source:
                self._source = trainer.datamodule.fixed_batch(self.n_samples, split="test", seed=self.seed)
            gen = torch.Generator().manual_seed(self.seed)
            self._inputs = family.sample_inputs(self.n_samples, generator=gen, source=self._source)
        return self._inputs

    def evaluate(self, trainer, pl_module, in_loop: bool = True) -> dict[str, float]:
        """Generate this process's share of the samples, score all of them (every process), log (rank 0)."""
        t0 = time.perf_counter()
        clock = self._clock(trainer)  # training time up to this evaluation, not counting it
        it = pl_module.iteration
        evaluator = self.evaluator.to(pl_module.device)
        evaluator.reset()
        inputs = self._fixed_inputs(trainer, pl_module)
        rank, world = trainer.global_rank, trainer.world_size
        lo, hi = rank * self.n_samples // world, (rank + 1) * self.n_samples // world
        batches = ({k: v[s : min(s + self.batch_size, hi)] for k, v in inputs.items()}
                   for s in range(lo, hi, self.batch_size))
        values: dict[str, float] = {}
        if evaluator.active:
            feed(evaluator, pl_module, batches, pl_module.device)
            values = evaluator.compute()
            evaluator.reset()
        values.update(family_scores(ScoreContext(
            pl_module, trainer.datamodule, classifier(trainer.datamodule, evaluator.spaces), self.n_samples,
            seed=self.seed, batch_size=self.batch_size, source=self._source, spaces=evaluator.spaces,
            panel=classifier_panel(evaluator.spaces))))
        self.latest, self.evaluated_iteration = values, it
        metrics = {f"metrics/{k}": float(v) for k, v in values.items()}
        if trainer.is_global_zero:
            if not self._protocol_logged:
                log.info("metrics: %s", summary(self.protocol))
                for logger in trainer.loggers:
                    logger.log_hyperparams({"metrics_protocol": self.protocol})
                self._protocol_logged = True
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=it)
                logger.save()
            self._append_history(trainer, it, {**metrics, **clock})
        if in_loop:
            pl_module.log_dict(metrics, logger=False, on_step=True, on_epoch=False, batch_size=1)
        else:  # self.log is not allowed in on_train_end
            trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        self.seconds.append(time.perf_counter() - t0)
        if trainer.is_global_zero:
            log.info("metrics at iteration %d (%.1f s): %s", it, self.seconds[-1],
                     ", ".join(f"{k} {v:.4g}" for k, v in values.items() if not k.endswith("_std")))
        return values

    def _clock(self, trainer) -> dict[str, float]:
        """Wall seconds of training so far (Lightning's Timer under trainer.max_time, which a resumed run carries
        on; else since this process started training) and, of those, the seconds this process spent in earlier
        evaluations: what time-to-FID figures are made of. Four decimals: a 2-D evaluation takes milliseconds."""
        timer = next((c for c in getattr(trainer, "callbacks", []) if isinstance(c, Timer)), None)
        if timer is not None:
            elapsed = timer.time_elapsed("train")
        else:
            elapsed = time.perf_counter() - self._train_start
        return {"elapsed_s": round(float(elapsed), 4), "evaluation_s": round(sum(self.seconds), 4)}

    @staticmethod
    def _append_history(trainer, iteration: int, metrics: dict[str, float]) -> None:
        """One line of ``metrics.jsonl`` in the run directory: what ``report.py`` and the sweeps' objective read."""
        root = getattr(trainer, "default_root_dir", None)  # (None: a stand-in for the Trainer, in tests)
        if root is None:
            return
        path = Path(root) / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps({"iteration": iteration, **metrics}) + "\n")


class BestCheckpoint(IterationCheckpoint):
    """Keeps ``<dirpath>/best-iterXXXXXXX.ckpt`` (``checkpoints/best/`` in the default config): the checkpoint
    with the lowest FID so far.

    It saves only right after the ``MetricsCallback`` has evaluated (never on the batches in between, when the
    monitored value is missing or stale). ``monitor=None`` takes the metrics callback's FID: ``metrics/fid``
    (Inception) where it is computed, else ``metrics/fid_domain``; with no FID (2-D data, metrics off) it does
    nothing.
    """

    def __init__(self, dirpath: str, monitor: str | None = None, mode: str = "min",
                 filename: str = "best-iter{iteration:07.0f}", **kwargs):
        super().__init__(dirpath=dirpath, monitor=monitor, mode=mode, filename=filename, save_top_k=1,
                         save_last=False, every_n_train_steps=0, every_n_epochs=0, save_on_train_epoch_end=False,
                         auto_insert_metric_name=False, **kwargs)
        self._metrics: MetricsCallback | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._metrics = next((c for c in trainer.callbacks if isinstance(c, MetricsCallback)), None)
        if self.monitor is None and self._metrics is not None:
            self.monitor = self._metrics.fid_key()  # set before Lightning restores callback state (same key)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._save_if_evaluated(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save_if_evaluated(trainer, pl_module)

    def _save_if_evaluated(self, trainer, pl_module) -> None:
        m = self._metrics
        if self.monitor is None or m is None or m.evaluated_iteration != pl_module.iteration:
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        candidates.update({f"metrics/{k}": torch.tensor(v) for k, v in m.latest.items()})
        if self.monitor in candidates:
            self._save_topk_checkpoint(trainer, candidates)
