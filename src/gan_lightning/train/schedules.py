"""Learning-rate schedules stepped once per iteration (``optim.scheduler.<player>``)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class ConstantThenLinear(LRScheduler):
    """The Pix2Pix/CycleGAN schedule (the authors' ``linear`` policy, in iterations instead of epochs): the base
    learning rate for the first ``decay_from * total`` iterations, then a linear decay towards 0 at ``total``
    (factor ``1 - (i - start) / (total - start + 1)``)."""

    def __init__(self, optimizer: Optimizer, total: int, decay_from: float = 0.5, last_epoch: int = -1):
        if total is None or int(total) < 1:
            raise ValueError(f"ConstantThenLinear needs the run's length: set max_iterations (got {total})")
        if not 0 <= decay_from <= 1:
            raise ValueError(f"decay_from must be in [0, 1]; got {decay_from}")
        self.total, self.start = int(total), int(round(decay_from * int(total)))
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        return max(0.0, 1.0 - max(0, step - self.start) / (self.total - self.start + 1))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]
