"""Lightning callbacks, counted in generator iterations: ``samples`` (grids), ``checkpoints`` (interval, last,
on interrupt), ``progress`` (the Rich bar). Re-exported under the names configs use."""

from .checkpoints import InterruptCheckpoint, IterationCheckpoint
from .progress import GANProgressBar
from .samples import SampleGrid

__all__ = ["GANProgressBar", "InterruptCheckpoint", "IterationCheckpoint", "SampleGrid"]
