"""Tiny image folders for tests that must not read real data: one folder in every layout the folder data options
read, at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folders(root: Path, size: int = 16, n: int = 4) -> Path:
    """Write into ``root`` (created) ``n`` small greyscale images in each of CycleGAN's folders (``trainA/``,
    ``trainB/``, ``testA/``, ``testB/``) and ``n`` Pix2Pix A|B pair files (twice as wide as high) in ``train/`` and
    ``test/``, so that ``data.path=root`` serves ``unaligned_folder``, ``aligned_folder`` and, reading every file
    below it, ``image_folder`` and ``sr_folder`` (with ``data.crop`` at most ``size``). Returns ``root``."""
    rows, cols = np.mgrid[0:size, 0:size]
    for k, folder in enumerate(("trainA", "trainB", "testA", "testB", "train", "test")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = ((rows * (i + 1) + cols * (k + 1)) * 255 // (2 * size * (n + 6))).astype(np.uint8)
            if folder in ("train", "test"):
                image = np.concatenate([image, 255 - image], axis=1)  # A | B
            Image.fromarray(image).save(root / folder / f"{i}.png")
    return root
