"""Write a generated dataset in CIFAR-10's python pickle layout, so the real reader reads it.

    python bench/cifar_shaped.py DATA_ROOT [--train 50000] [--test 10000]

Writes ``DATA_ROOT/cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5`` (the train
images split evenly), ``test_batch`` and ``batches.meta``, each a pickle of the layout
https://www.cs.toronto.edu/~kriz/cifar.html describes (``b"data"``: ``(N, 3072)`` uint8 rows,
1024 red, then green, then blue values, each plane row-major; ``b"labels"``: N ints in 0..9).
Images are seeded noise with a class-coloured square (what the pixels hold does not matter for
timing; the shape, dtype and layout are CIFAR-10's). ``bench/device_check.sh`` trains one
paper-config epoch per base model on it.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Optional

import numpy as np

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = 5
SIDE = 32


def cifar_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(count, 32, 32, 3)`` uint8 images and ``(count,)`` labels in 0..9: noise with a square
    of the label's colour."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 128, (count, SIDE, SIDE, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    colours = rng.integers(128, 256, (10, 3), dtype=np.uint8)
    corner = rng.integers(0, SIDE - 12, (count, 2))
    for i, (y, x) in enumerate(corner):
        images[i, y:y + 12, x:x + 12] = colours[labels[i]]
    return images, labels


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """``(N, 32, 32, 3)`` -> CIFAR's ``(N, 3072)`` rows (R plane, G plane, B plane)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def write_cifar10(root: Path, train: int = 50_000, test: int = 10_000, seed: int = 0) -> Path:
    """Write the folder under ``root``; returns it. ``train`` must split into 5 batches."""
    if train % TRAIN_FILES or train < TRAIN_FILES or test < 1:
        raise ValueError(f"train must be a positive multiple of {TRAIN_FILES} and test >= 1, "
                         f"got {train}, {test}")
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = cifar_images(train + test, seed)
    per = train // TRAIN_FILES
    for i in range(TRAIN_FILES):
        part = slice(i * per, (i + 1) * per)
        _dump(folder / f"data_batch_{i + 1}", {b"batch_label": f"training batch {i + 1} of 5"
                                               .encode(), b"labels": labels[part].tolist(),
                                               b"data": cifar_rows(images[part])})
    _dump(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1",
                                  b"labels": labels[train:].tolist(),
                                  b"data": cifar_rows(images[train:])})
    _dump(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                    b"num_cases_per_batch": per, b"num_vis": 3072})
    return folder


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="data root (the folder pretrain.data_root names)")
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(write_cifar10(Path(args.root), args.train, args.test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
