"""A callback for DDP tests: each rank saves its final state_dict, so a test can compare the ranks."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch


class RankState(pl.Callback):
    """At the end of training, rank r writes its module's state_dict to ``<dirpath>/rank<r>.pt``."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_train_end(self, trainer, pl_module):
        torch.save({k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
                   Path(self.dirpath) / f"rank{trainer.global_rank}.pt")
