"""Data modules and what they share.

- ``spec``: ``DataSpec``, the batch layout a data module declares (keys and shapes, classes, value range);
- ``loader``: ``TensorBatchLoader``, resumable in-memory batches of any keys;
- ``convert``: uint8 <-> [-1, 1] and the resampling helpers;
- ``base``: ``GANDataModule`` (spec, training batches, fixed held-out batches);
- ``datasets`` (torchvision: Fashion-MNIST, MNIST, CIFAR-10), ``folders`` (image folders), ``mixtures``
  (2-D Gaussian mixtures);
- ``streaming``: LitData chunks for multi-node training (``data=streaming``; LitData is imported there, on first
  use, so importing this package does not load it).

The data modules are re-exported here under the names that configs (and checkpoints) written before this
layout use, ``gan_lightning.data.TorchvisionDataModule`` and so on.
"""

from .base import GANDataModule, TensorDataModule
from .datasets import TORCHVISION, TorchvisionDataModule
from .folders import ImageFolderDataModule
from .loader import TensorBatchLoader, data_device
from .mixtures import GaussianMixtureDataModule
from .spec import DataSpec

__all__ = ["TORCHVISION", "DataSpec", "GANDataModule", "GaussianMixtureDataModule", "ImageFolderDataModule",
           "TensorBatchLoader", "TensorDataModule", "TorchvisionDataModule", "data_device"]
