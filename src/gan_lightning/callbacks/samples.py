"""Sample grids during training, counted in generator iterations."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from torchvision.io import write_png

from ..core.family import GridInputs
from ..render import panel_grid, render_points, to_uint8_grid

log = logging.getLogger(__name__)


class SampleGrid(pl.Callback):
    """Every ``every_n_iterations`` (and at the end of training), draw samples from a fixed input batch with the
    EMA generator and save them as ``<dirpath>/iter_XXXXXXX.png`` and to the loggers that take images (W&B).

    What is drawn and how it is laid out is the family's ``grid_inputs``: ``n_images`` samples ``nrow`` a row by
    default, one row per class for conditional models (the class names in the W&B caption), latent traversals for
    InfoGAN, ``n_images / 4`` held-out inputs (the data module's ``fixed_batch``) for families that generate from
    data. What each grid cell shows is the family's ``visuals``: the sample, or input | output | target panels
    side by side.
    For 2-D data the picture is a scatter plot of ``n_points`` samples.
    """

    def __init__(self, dirpath: str, every_n_iterations: int = 500, n_images: int = 64, nrow: int = 8,
                 n_points: int = 2500, seed: int = 1234):
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.n_images = n_images
        self.nrow = nrow
        self.n_points = n_points
        self.seed = seed
        self._grid: GridInputs | None = None
        self._last_iteration = -1

    def _fixed_grid(self, trainer, pl_module) -> GridInputs:
        if self._grid is None:
            n = self.n_points if len(pl_module.family.data_shape) == 1 else self.n_images
            if pl_module.family.needs_source:  # each example is a row of panels (input | output | target)
                n = max(1, n // 4)
            gen = torch.Generator().manual_seed(self.seed)
            datamodule = getattr(trainer, "datamodule", None)
            class_names = getattr(datamodule, "class_names", None) \
                or pl_module.config.get("data", {}).get("class_names")
            source = datamodule.fixed_batch(n, split="test", seed=self.seed) if pl_module.family.needs_source \
                else None
            self._grid = pl_module.family.grid_inputs(n, self.nrow, generator=gen, class_names=class_names,
                                                      source=source)
        return self._grid

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        it = pl_module.iteration
        if self.every_n_iterations and it > 0 and it % self.every_n_iterations == 0 and it != self._last_iteration:
            self.sample(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.iteration != self._last_iteration:
            self.sample(trainer, pl_module)

    def sample(self, trainer, pl_module) -> None:
        self._last_iteration = pl_module.iteration
        grid = self._fixed_grid(trainer, pl_module)
        samples = pl_module.generate({k: v.to(pl_module.device) for k, v in grid.inputs.items()})
        datamodule = getattr(trainer, "datamodule", None)
        self._save(trainer, pl_module, samples, datamodule, grid)

    @rank_zero_only
    def _save(self, trainer, pl_module, samples: Tensor, datamodule, grid: GridInputs) -> None:
        if samples.dim() == 2:
            image = render_points(samples, getattr(datamodule, "modes", None))
        else:
            images, nrow = panel_grid(pl_module.family.visuals(grid.inputs, samples), grid.nrow)
            image = to_uint8_grid(images, nrow)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"iter_{pl_module.iteration:07d}.png"
        write_png(image, str(path))
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                caption = f"iteration {pl_module.iteration}" + (f": {grid.caption}" if grid.caption else "")
                logger.log_image(key="samples", images=[image.permute(1, 2, 0).numpy()], caption=[caption],
                                 step=pl_module.iteration)
