"""The progress bar: Rich, with the generator iteration beside the losses."""

from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar


class GANProgressBar(RichProgressBar):
    """Rich progress bar with the generator iteration beside the losses. (Runs are bounded by iterations, not
    epochs, so the epoch count is shown without a total.)"""

    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {current_epoch}"

    def get_metrics(self, trainer, pl_module) -> dict:
        return {"iteration": pl_module.iteration, **super().get_metrics(trainer, pl_module)}
