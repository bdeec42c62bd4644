"""Never lose a run: a checkpoint when the process is told to stop."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException


class InterruptCheckpoint(pl.Callback):
    """On SIGTERM (a scheduler's preemption, ``kill``) or SIGINT (Ctrl-C), write ``<dirpath>/last.ckpt`` before the
    process exits, so that ``ckpt_path=last`` (or the file's path) continues from where it stopped.

    Lightning turns SIGTERM into ``SIGTERMException`` at the end of the current batch, so the checkpoint is that of
    a finished step. Other exceptions (a diverged loss, a bug) write nothing: the last good checkpoint stays.
    """

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            return
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        signal = "SIGTERM" if isinstance(exception, SIGTERMException) else "SIGINT"
        rank_zero_info(f"{signal} at iteration {pl_module.iteration}: saved {path}; resume with ckpt_path={path}")
