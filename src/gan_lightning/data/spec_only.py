"""``data=spec_only``: a data module that declares the images' shape and classes and holds no images."""

from __future__ import annotations

from ..errors import UserError
from .base import GANDataModule


class SpecOnlyDataModule(GANDataModule):
    """``data=spec_only data.shape=[C,H,W] data.num_classes=K``: the images (and classes) imported networks make,
    declared without any data, so that ``import_weights.py`` builds the networks before the user's data is known
    (a StyleGAN2-ADA pickle says its resolution and number of classes; the folder data would list files for the
    classes). It holds no images: training or scoring with it is a ``UserError`` that asks for the data."""

    def __init__(self, shape: list[int] | None = None, num_classes: int | None = None, batch_size: int = 1,
                 seed: int = 0) -> None:
        super().__init__(batch_size, seed)
        if shape is None or len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                                                   for s in shape):
            raise UserError(f"data.shape must be [channels, height, width] for data=spec_only; got {shape}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise UserError(f"data.num_classes must be a positive integer or null; got {num_classes}")
        self.shape, self.num_classes = tuple(shape), num_classes

    def _no_data(self, *args, **kwargs):
        raise UserError("data=spec_only declares the images' shape and holds none: give the data (data=image_folder "
                        "data.path=DIR, ...)")

    _setup = real_samples = fixed_batch = train_dataloader = _no_data
