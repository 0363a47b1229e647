"""The paper's augmentations (torchvision.transforms v1) and the two-view pretraining dataset.

Pretraining follows MoCo v2 / the paper's setup, scaled to each dataset's image size:
``RandomResizedCrop(scale=spec.crop_scale)``, ``ColorJitter(0.4, 0.4, 0.4, 0.1)`` with p=0.8,
``RandomGrayscale(0.2)``, Gaussian blur (p=0.5, ImageNet size only, as in MoCo v2), horizontal
flip (except ``digits``: digits are not flip-invariant, and their crops keep >= 50% of the area),
``ToTensor``, ``Normalize(spec.mean, spec.std)``.

All randomness comes from torch's global RNG, so with a fixed ``torch.manual_seed`` and
``num_workers=0`` two passes yield identical batches (the resumable trainer relies on this);
with workers, pass :func:`seed_worker` as the DataLoader's ``worker_init_fn``.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.registry import DatasetSpec

__all__ = ["pretrain_transform", "eval_transform", "TwoViewDataset", "seed_worker"]


def pretrain_transform(spec: DatasetSpec) -> Callable:
    """The stochastic pretraining augmentation for ``spec``: PIL image -> ``(3, S, S)`` tensor."""
    from torchvision import transforms as T  # here: importing torchvision costs ~2.5 s

    size = spec.image_size
    steps: list[Any] = [
        T.RandomResizedCrop(size, scale=spec.crop_scale),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]
    if spec.blur:
        kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # ~10% of the side, odd
        steps.append(T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5))
    if spec.flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(spec.mean, spec.std)]
    return T.Compose(steps)


def eval_transform(spec: DatasetSpec) -> Callable:
    """The deterministic evaluation transform: resize (ImageNet: to 256/224 of the crop), centre
    crop to ``spec.image_size``, ``ToTensor``, ``Normalize``."""
    from torchvision import transforms as T

    size = spec.image_size
    resize = int(round(size * 256 / 224)) if size >= 224 else size
    return T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(),
                      T.Normalize(spec.mean, spec.std)])


class TwoViewDataset(Dataset):
    """Two independently augmented views of each image of ``base``.

    ``dataset[i]`` is ``{"index": i, "views": (v1, v2), "label": y}`` with ``v1, v2`` of shape
    ``(3, S, S)``; the default collate gives ``views`` as a list of two ``(B, 3, S, S)`` tensors
    and ``index`` as ``(B,)`` (the memory-bank row of each image).
    """

    def __init__(self, base: Dataset, transform: Callable):
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label = self.base[index]
        return {"index": index, "views": (self.transform(image), self.transform(image)),
                "label": int(label)}


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` that seeds numpy and ``random`` from the worker's torch seed."""
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)
