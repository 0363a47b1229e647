"""The offline datasets of the embedded default: real digits and generated shapes.

Both are 16 x 16 RGB (``repro.data.registry`` declares each size once): small enough that the
default's pretraining grid fits minutes on a CPU, large enough that every class stays legible.

``digits``: scikit-learn's ``load_digits`` (1,797 real 8 x 8 handwritten digits, 10 classes),
upscaled (bilinear) to the registry's size, grey replicated to RGB, split 80/20 stratified with
a fixed seed (1,438 / 359). Grey has a consequence for CMC, whose two views are the L and ab
channels of Lab: the ab view of a grey image is zero everywhere, so on digits CMC's ab encoder
sees no input and its contrast has nothing to learn from. (Colouring the digits does not help:
one colour pair for every image leaves the random network at 95% linear-eval top-1, and a random
pair per image hands every contrastive model a colour shortcut: MoCo fell from 95% to 53%.)

``shapes``: 10 shape classes (:data:`SHAPE_CLASSES`) drawn at a random position, size,
rotation and colour on a noisy background; 2,000 train / 500 test, class-balanced, generated
deterministically from a fixed seed in well under a second.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from repro.data.arrays import ArrayDataset

__all__ = ["SHAPE_CLASSES", "digits", "shapes", "make_shapes", "make_digits",
           "load_digits_arrays", "stratified_split"]

SHAPE_CLASSES = ["disk", "square", "triangle", "plus", "diamond", "ring", "frame", "cross",
                 "half_disk", "two_dots"]
_SHAPES_SIZE = {"train": 2000, "test": 500}
_SHAPES_SEED = {"train": 0, "test": 1}


def _shape_mask(label: int, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of shape ``label`` in rotated, centred coordinates ``(u, v)``; ``r`` = size."""
    au, av = np.abs(u), np.abs(v)
    if label == 0:   # disk
        return u ** 2 + v ** 2 <= r ** 2
    if label == 1:   # square
        return np.maximum(au, av) <= 0.8 * r
    if label == 2:   # triangle, apex up
        return (v >= -0.8 * r) & (v <= 0.8 * r - 2 * au)
    if label == 3:   # plus
        t = 0.3 * r
        return ((au <= t) & (av <= r)) | ((av <= t) & (au <= r))
    if label == 4:   # diamond
        return au + av <= r
    if label == 5:   # ring
        d2 = u ** 2 + v ** 2
        return (d2 <= r ** 2) & (d2 >= (0.55 * r) ** 2)
    if label == 6:   # hollow square
        m = np.maximum(au, av)
        return (m <= 0.85 * r) & (m >= 0.5 * r)
    if label == 7:   # x-cross
        t = 0.3 * r
        return (np.abs(u - v) <= t * 1.4) & (au <= r * 0.8) | \
               (np.abs(u + v) <= t * 1.4) & (au <= r * 0.8)
    if label == 8:   # half disk, flat side down
        return (u ** 2 + v ** 2 <= r ** 2) & (v >= -0.2 * r)
    if label == 9:   # two dots
        d = 0.55 * r
        rr = (0.42 * r) ** 2
        return ((u - d) ** 2 + v ** 2 <= rr) | ((u + d) ** 2 + v ** 2 <= rr)
    raise ValueError(f"shape label must be in 0..9, got {label}")


def make_shapes(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``n`` shape images: ``(n, size, size, 3)`` uint8 and ``(n,)`` labels, balanced classes.

    Drawn in one vectorised pass; image ``y`` points down, so ``v = -(y - cy)`` makes "up" up.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    r = rng.uniform(0.2, 0.34, n) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    angle = rng.uniform(-0.26, 0.26, n)  # +-15 degrees keeps square and diamond apart
    background = rng.uniform(0.0, 0.35, (n, 1, 1, 3))
    colour = rng.uniform(0.45, 1.0, (n, 1, 1, 3))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx = xs[None] - cx[:, None, None]
    dy = -(ys[None] - cy[:, None, None])
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    mask = np.zeros((n, size, size), dtype=bool)
    for label in range(len(SHAPE_CLASSES)):
        idx = labels == label
        mask[idx] = _shape_mask(label, u[idx], v[idx], r[idx, None, None])
    noise = rng.normal(0.0, 1.0, (n, size, size, 3))
    image = np.where(mask[..., None], colour + 0.03 * noise, background + 0.06 * noise)
    images = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


@lru_cache(maxsize=None)
def _shapes_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    from repro.data.registry import get_spec

    images, labels = make_shapes(_SHAPES_SIZE[split], _SHAPES_SEED[split],
                                 size=get_spec("shapes").image_size)
    images.setflags(write=False)
    return images, labels


def shapes(split: str) -> ArrayDataset:
    """The generated shapes dataset (2,000 train / 500 test)."""
    images, labels = _shapes_arrays(split)
    return ArrayDataset(images, labels, SHAPE_CLASSES)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``(1797, 8, 8)`` float images in 0..16 and ``(1797,)`` labels.

    Read from the ``digits.csv.gz`` that scikit-learn ships (what ``load_digits`` reads)
    without importing scikit-learn, which costs every job that reads digits a second or two;
    ``load_digits`` itself where that file is not found.
    """
    import importlib.util
    from pathlib import Path

    found = importlib.util.find_spec("sklearn")
    roots = list(found.submodule_search_locations or []) if found else []
    for root in roots:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices: ``round(test_fraction * n_c)`` random items of each
    class ``c`` (``n_c`` items) go to test, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test.append(rng.permutation(members)[:int(round(test_fraction * len(members)))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


@lru_cache(maxsize=None)
def make_digits(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 scikit-learn digits as ``(N, size, size, 3)`` uint8 and ``(N,)`` labels."""
    from PIL import Image

    pixels, targets = load_digits_arrays()
    small = np.clip(pixels * (255.0 / 16.0) + 0.5, 0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im, mode="L").resize((size, size),
                                                                      Image.BILINEAR))
                    for im in small])
    images = np.repeat(big[..., None], 3, axis=3)
    images.setflags(write=False)
    return images, targets


def digits(split: str) -> ArrayDataset:
    """scikit-learn digits, 80/20 split stratified by class (:func:`stratified_split`, seed 0;
    1,438 / 359)."""
    from repro.data.registry import get_spec

    images, labels = make_digits(get_spec("digits").image_size)
    train_idx, test_idx = stratified_split(labels, 0.2, seed=0)
    idx = train_idx if split == "train" else test_idx
    return ArrayDataset(images[idx], labels[idx], [str(d) for d in range(10)])
