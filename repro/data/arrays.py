"""An in-memory image dataset: ``(N, H, W, 3)`` uint8 array + labels -> ``(PIL image, label)``."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["ArrayDataset"]


class ArrayDataset(Dataset):
    """Images held as one uint8 array.

    Args:
        images: ``(N, H, W, 3)`` uint8 RGB.
        labels: ``(N,)`` integer labels (-1 for unlabelled items).
        classes: class names, index = label.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str]):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.targets = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), int(self.targets[index])
