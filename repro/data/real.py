"""Readers for the real datasets, in their distributed file formats (no download ever).

CIFAR and STL-10 are read directly from their files rather than through torchvision's classes,
which insist on the md5 sums of the full downloads (and so reject the small real-format files
the tests write); ImageNet uses ``torchvision.datasets.ImageFolder``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from repro.data.arrays import ArrayDataset
from repro.data.registry import DATASETS, missing

__all__ = ["read_cifar_batch", "cifar10", "cifar100", "read_stl10_images", "stl10", "imagenet"]


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python pickle -> ``(N, 32, 32, 3)`` uint8 images, ``(N,)`` labels.

    The pickle holds ``b"data"``: ``(N, 3072)`` uint8 rows of 1024 red, then green, then blue
    values, each plane row-major.
    """
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1)), np.asarray(batch[label_key])


def _meta_names(path: Path, key: bytes, count: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            return [n.decode() for n in pickle.load(fh, encoding="bytes")[key]]
    except (OSError, KeyError, pickle.UnpicklingError):
        return [str(i) for i in range(count)]


def _read_cifar(name: str, folder: Path, files: list[str], label_key: bytes,
                meta: str, names_key: bytes, count: int) -> ArrayDataset:
    paths = [folder / f for f in files]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise missing(name, folder, f"missing {', '.join(p.name for p in absent)}")
    parts = [read_cifar_batch(p, label_key) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ArrayDataset(images, labels, _meta_names(folder / meta, names_key, count))


def cifar10(root: Path, split: str) -> ArrayDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py``: 50,000 train / 10,000 test."""
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return _read_cifar("cifar10", root / DATASETS["cifar10"].folder, files, b"labels",
                       "batches.meta", b"label_names", 10)


def cifar100(root: Path, split: str) -> ArrayDataset:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``: 50,000 train / 10,000 test."""
    return _read_cifar("cifar100", root / DATASETS["cifar100"].folder, [split], b"fine_labels",
                       "meta", b"fine_label_names", 100)


def read_stl10_images(path: Path) -> np.ndarray:
    """An STL-10 ``*_X.bin`` -> ``(N, 96, 96, 3)`` uint8.

    Each image is stored as 3 planes (R, G, B) of 96 x 96 bytes, each plane column-major.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise ValueError(f"{path}: size {raw.size} is not a multiple of 3*96*96 bytes")
    # raw[n, c, x, y] (column-major planes) -> [n, y, x, c]
    return np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1))


STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                 "truck"]


def stl10(root: Path, split: str) -> Dataset:
    """STL-10 from ``root/stl10_binary``: 5,000 train / 8,000 test / 100,000 unlabeled.

    Labels in ``*_y.bin`` are 1..10 and are returned as 0..9; unlabeled items get -1.
    """
    folder = root / DATASETS["stl10"].folder
    if split == "train+unlabeled":
        return ConcatDataset([stl10(root, "train"), stl10(root, "unlabeled")])
    images_path = folder / f"{split}_X.bin"
    labels_path = folder / f"{split}_y.bin"
    needed = [images_path] + ([labels_path] if split != "unlabeled" else [])
    absent = [p for p in needed if not p.is_file()]
    if absent:
        raise missing("stl10", folder, f"missing {', '.join(p.name for p in absent)}")
    images = read_stl10_images(images_path)
    if split == "unlabeled":
        labels = np.full(len(images), -1, dtype=np.int64)
    else:
        labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64) - 1
        if len(labels) != len(images):
            raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels in {split}")
    return ArrayDataset(images, labels, STL10_CLASSES)


def imagenet(root: Path, split: str) -> Dataset:
    """ImageNet as ``torchvision.datasets.ImageFolder`` over ``root/imagenet/{train,val}``."""
    from torchvision.datasets import ImageFolder

    folder = root / DATASETS["imagenet"].folder / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise missing("imagenet", folder)
    try:
        return ImageFolder(str(folder))  # its default loader converts to RGB
    except FileNotFoundError as err:  # no class folders / no images
        raise missing("imagenet", folder, str(err)) from None

