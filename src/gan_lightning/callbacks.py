"""Callbacks that count in generator iterations: sample grids and checkpoints."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from torchvision.io import write_png
from torchvision.utils import make_grid

from .families import GridInputs

log = logging.getLogger(__name__)

# ModelCheckpoint warns that under manual optimization a checkpoint holds the state after the step: that is what
# resuming needs, so the warning is noise here.
warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")


def to_uint8_grid(images: Tensor, nrow: int = 8) -> Tensor:
    """[-1, 1] images N×C×H×W -> one uint8 3×H×W grid (grayscale repeated to RGB)."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def render_points(points: Tensor, modes: Tensor | None = None, size: int = 256, extent: float | None = None) -> Tensor:
    """A uint8 3×size×size scatter plot of 2-D points (white) over the mixture's modes (red)."""
    points = points.detach().float().cpu()
    ref = modes if modes is not None else points
    if extent is None:
        extent = float(ref.abs().max()) * 1.5 + 1e-6
    canvas = torch.zeros(3, size, size, dtype=torch.uint8)

    def to_pixels(p: Tensor) -> Tensor:
        xy = ((p / extent + 1) * 0.5 * (size - 1)).round().long()
        keep = ((xy >= 0) & (xy < size)).all(dim=1)
        return xy[keep]

    if modes is not None:
        for dx in (-2, -1, 0, 1, 2):
            for dy in (-2, -1, 0, 1, 2):
                m = to_pixels(modes.float().cpu() + torch.tensor([dx, dy]) * extent * 2 / size)
                canvas[0, size - 1 - m[:, 1], m[:, 0]] = 255
    xy = to_pixels(points)
    canvas[:, size - 1 - xy[:, 1], xy[:, 0]] = 255
    return canvas


class SampleGrid(pl.Callback):
    """Every ``every_n_iterations`` (and at the end of training), draw samples from a fixed input batch with the
    EMA generator and save them as ``<dirpath>/iter_XXXXXXX.png`` and to the loggers that take images (W&B).

    What is drawn and how it is laid out is the family's ``grid_inputs``: ``n_images`` samples ``nrow`` a row by
    default, one row per class for conditional models (the class names in the W&B caption), latent traversals for
    InfoGAN. For 2-D data the picture is a scatter plot of ``n_points`` samples.
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
            gen = torch.Generator().manual_seed(self.seed)
            class_names = getattr(getattr(trainer, "datamodule", None), "class_names", None) \
                or pl_module.config.get("data", {}).get("class_names")
            self._grid = pl_module.family.grid_inputs(n, self.nrow, generator=gen, class_names=class_names)
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
            image = to_uint8_grid(samples, grid.nrow)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"iter_{pl_module.iteration:07d}.png"
        write_png(image, str(path))
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                caption = f"iteration {pl_module.iteration}" + (f": {grid.caption}" if grid.caption else "")
                logger.log_image(key="samples", images=[image.permute(1, 2, 0).numpy()], caption=[caption],
                                 step=pl_module.iteration)


class IterationCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with its interval in generator iterations (``every_n_iterations``), the iteration
    available to ``filename`` templates as ``{iteration}``, and ``last.ckpt`` always written at the end of training
    (by the training processes themselves, so also under spawned DDP)."""

    def __init__(self, every_n_iterations: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.every_n_iterations = every_n_iterations

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.every_n_iterations:
            # Each iteration is exactly n_critic + 1 optimizer steps, so the step interval is exact.
            self._every_n_train_steps = pl_module.optimizer_steps(self.every_n_iterations)
            self._every_n_epochs = 0

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self.dirpath and self._last_global_step_saved != trainer.global_step:
            trainer.save_checkpoint(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")

    def _monitor_candidates(self, trainer) -> dict[str, Tensor]:
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(trainer.lightning_module.iteration)
        return candidates


class GANProgressBar(RichProgressBar):
    """Rich progress bar with the generator iteration beside the losses. (Runs are bounded by iterations, not
    epochs, so the epoch count is shown without a total.)"""

    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {current_epoch}"

    def get_metrics(self, trainer, pl_module) -> dict:
        return {"iteration": pl_module.iteration, **super().get_metrics(trainer, pl_module)}
