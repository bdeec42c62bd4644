"""The progress bar: Rich, with the generator iteration beside the losses, redrawn a few times a second."""

from __future__ import annotations

from time import monotonic

from pytorch_lightning.callbacks import RichProgressBar


class GANProgressBar(RichProgressBar):
    """Rich progress bar with the generator iteration beside the losses (the values the module last logged:
    ``GANModule.progress_values``). Runs are bounded by iterations, not epochs, so the epoch count is shown without
    a total.

    The bar is updated at most ``refresh_rate`` times a second, by its batch-end hook and by Rich's own refresh
    thread (Lightning's default, 100 a second and on every batch, costs a fast training step more time than the
    step itself).
    """

    def __init__(self, refresh_rate: int = 4, **kwargs):
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._next_update = 0.0

    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {current_epoch}"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = monotonic()
        if now < self._next_update and not trainer.should_stop:
            return
        self._next_update = now + 1.0 / max(self.refresh_rate, 1)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module) -> dict:
        return {"iteration": pl_module.iteration, **getattr(pl_module, "progress_values", {}),
                **super().get_metrics(trainer, pl_module)}
