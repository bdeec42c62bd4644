"""Checkpoints counted in generator iterations, and a checkpoint when the process is told to stop."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor

from ..errors import BadDataFile

# ModelCheckpoint warns that under manual optimization a checkpoint holds the state after the step: that is what
# resuming needs, so the warning is noise here (filtered once, where the checkpoint callbacks are defined).
warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")


class IterationCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with its interval in generator iterations (``every_n_iterations``), the iteration
    available to ``filename`` templates as ``{iteration}``, and ``last.ckpt`` always written at the end of training
    (by the training processes themselves, so also under spawned DDP)."""

    def __init__(self, every_n_iterations: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.every_n_iterations = every_n_iterations
        self._last_iteration_saved = -1

    @property
    def state_key(self) -> str:
        # Lightning names every hook call after it (for its profiler): built once for the settings it is built from.
        settings = (self.monitor, self.mode, self._every_n_train_steps, self._every_n_epochs, self._train_time_interval)
        if getattr(self, "_state_key", (None, None))[0] != settings:
            self._state_key = (settings, super().state_key)
        return self._state_key[1]

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.every_n_iterations:  # counted here, in iterations, not by Lightning in optimizer steps
            self._every_n_train_steps = 0
            self._every_n_epochs = 0

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_iteration_saved = pl_module.iteration  # a resumed run does not save its start again

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.every_n_iterations:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        it = pl_module.iteration
        if it == 0 or it % self.every_n_iterations or it == self._last_iteration_saved:
            return  # (the first batches of the next iteration still see the same count)
        self._last_iteration_saved = it
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self.dirpath and self._last_global_step_saved != trainer.global_step:
            trainer.save_checkpoint(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")

    def _monitor_candidates(self, trainer) -> dict[str, Tensor]:
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(trainer.lightning_module.iteration)
        return candidates


class InterruptCheckpoint(pl.Callback):
    """On SIGTERM (a scheduler's preemption, ``kill``) or SIGINT (Ctrl-C), write ``<dirpath>/last.ckpt`` before the
    process exits, so that ``ckpt_path=last`` (or the file's path) continues from where it stopped.

    Lightning turns SIGTERM into ``SIGTERMException`` at the end of the current batch, so the checkpoint is that of
    a finished step. A training file that cannot be decoded (``BadDataFile``, raised before its batch is used) also
    saves, so nothing is lost. Other exceptions (a diverged loss, a bug) write nothing: the last good checkpoint
    stays.
    """

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (SIGTERMException, KeyboardInterrupt, BadDataFile)):
            return
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        reason = {SIGTERMException: "SIGTERM", KeyboardInterrupt: "SIGINT"}.get(type(exception), "a bad data file")
        rank_zero_info(f"{reason} at iteration {pl_module.iteration}: saved {path}; resume with ckpt_path={path}")
