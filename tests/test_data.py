"""Datasets in their real file formats, the offline default datasets, and the augmentations."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from repro.data import (DATASETS, DatasetNotFoundError, TwoViewDataset, build_dataset,
                        eval_transform, get_spec, missing_data, pretrain_transform)
from repro.data.offline import make_digits, make_shapes


# ---------------------------------------------------------------- real-format fixtures

def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> CIFAR's (N, 3072) rows: the R plane, then G, then B, row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _images(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _write_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        imgs = _images(4, 32, i)
        if i == 1:
            imgs[0] = 0
            imgs[0, 2, 5] = (255, 0, 0)  # one red pixel at row 2, column 5
        _write_pickle(folder / f"data_batch_{i}",
                      {b"data": _cifar_rows(imgs), b"labels": [i, i, i, i]})
    _write_pickle(folder / "test_batch", {b"data": _cifar_rows(_images(3, 32, 9)),
                                          b"labels": [7, 8, 9]})
    _write_pickle(folder / "batches.meta",
                  {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return tmp_path


def test_cifar10_pickle_batches_load_with_pixel_layout_and_labels(cifar10_root):
    train = build_dataset("cifar10", cifar10_root, "train")
    test = build_dataset("cifar10", cifar10_root, "test")
    assert (len(train), len(test)) == (20, 3)
    image, label = train[0]
    assert image.mode == "RGB" and image.size == (32, 32) and label == 1
    assert image.getpixel((5, 2)) == (255, 0, 0)  # PIL is (x, y)
    assert image.getpixel((2, 5)) == (0, 0, 0)
    assert [train[i][1] for i in (4, 19)] == [2, 5]
    assert [test[i][1] for i in range(3)] == [7, 8, 9]
    assert train.classes[3] == "c3"


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    for split, n in (("train", 5), ("test", 2)):
        _write_pickle(folder / split, {b"data": _cifar_rows(_images(n, 32, n)),
                                       b"fine_labels": list(range(90, 90 + n)),
                                       b"coarse_labels": [0] * n})
    train = build_dataset("cifar100", tmp_path, "train")
    assert len(train) == 5 and [train[i][1] for i in range(5)] == [90, 91, 92, 93, 94]
    assert len(build_dataset("cifar100", tmp_path, "test")) == 2


def _stl_bytes(images: np.ndarray) -> bytes:
    """(N, 96, 96, 3) -> STL-10's layout: per image 3 planes, each column-major."""
    return images.transpose(0, 3, 2, 1).tobytes()


@pytest.fixture
def stl10_root(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    train = np.zeros((3, 96, 96, 3), dtype=np.uint8)
    train[1, 10, 40] = (0, 255, 0)  # green pixel at row 10, column 40 of image 1
    (folder / "train_X.bin").write_bytes(_stl_bytes(train))
    (folder / "train_y.bin").write_bytes(bytes([1, 5, 10]))
    (folder / "test_X.bin").write_bytes(_stl_bytes(_images(2, 96, 0)))
    (folder / "test_y.bin").write_bytes(bytes([2, 3]))
    (folder / "unlabeled_X.bin").write_bytes(_stl_bytes(_images(4, 96, 1)))
    return tmp_path


def test_stl10_binary_is_column_major_with_one_based_labels(stl10_root):
    train = build_dataset("stl10", stl10_root, "train")
    assert len(train) == 3 and [train[i][1] for i in range(3)] == [0, 4, 9]
    image = train[1][0]
    assert image.size == (96, 96)
    assert image.getpixel((40, 10)) == (0, 255, 0)
    assert image.getpixel((10, 40)) == (0, 0, 0)
    assert [build_dataset("stl10", stl10_root, "test")[i][1] for i in range(2)] == [1, 2]


def test_stl10_unlabeled_split_has_label_minus_one_and_concatenates(stl10_root):
    unlabeled = build_dataset("stl10", stl10_root, "unlabeled")
    assert len(unlabeled) == 4 and {unlabeled[i][1] for i in range(4)} == {-1}
    assert len(build_dataset("stl10", stl10_root, "train+unlabeled")) == 7


def test_imagenet_image_folder_tree_loads_train_and_val(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        for wnid, colour in (("n01440764", (255, 0, 0)), ("n01443537", (0, 0, 255))):
            folder = tmp_path / "imagenet" / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40, 30), colour).save(folder / f"{wnid}_{i}.JPEG", quality=95)
    train = build_dataset("imagenet", tmp_path, "train")
    val = build_dataset("imagenet", tmp_path, "test")
    assert (len(train), len(val)) == (4, 2)
    image, label = val[1]
    assert label == 1 and image.mode == "RGB" and image.size == (40, 30)
    r, g, b = image.getpixel((20, 15))
    assert b > 200 and r < 50
    out = eval_transform(get_spec("imagenet"))(image)
    assert out.shape == (3, 224, 224)


@pytest.mark.parametrize("name,looked_for", [("cifar10", "cifar-10-batches-py"),
                                             ("cifar100", "cifar-100-python"),
                                             ("stl10", "stl10_binary"),
                                             ("imagenet", "imagenet")])
def test_missing_dataset_error_names_path_and_how_to_get_it(tmp_path, name, looked_for):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset(name, tmp_path, "train")
    message = str(err.value)
    assert str(tmp_path / looked_for) in message
    assert "To get it" in message and "http" in message
    assert "default workflow does not need it" in message
    assert isinstance(err.value, FileNotFoundError)


def test_real_dataset_without_data_root_says_to_set_it():
    with pytest.raises(DatasetNotFoundError, match="data_root"):
        build_dataset("cifar10", None, "train")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "stl10", "imagenet"])
def test_missing_data_names_the_folder_until_it_exists(tmp_path, name):
    message = missing_data(name, tmp_path)
    assert str(tmp_path / DATASETS[name].folder) in message and "To get it" in message
    (tmp_path / DATASETS[name].folder).mkdir()
    assert missing_data(name, tmp_path) is None
    assert "pretrain.data_root" in missing_data(name, None)


def test_offline_datasets_are_never_missing():
    assert missing_data("shapes", None) is None and missing_data("digits", "/nowhere") is None


def test_registry_reads_without_importing_torch():
    """The Snakefile checks datasets while it parses; that must not cost a torch import."""
    code = ("import sys, repro.data.registry as r; r.missing_data('cifar10', None); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_dataset_and_split_raise_value_error_listing_choices():
    with pytest.raises(ValueError, match="shapes"):
        get_spec("mnist")
    with pytest.raises(ValueError, match="train"):
        build_dataset("shapes", None, "validation")


# ---------------------------------------------------------------- offline datasets

def test_shapes_generation_is_deterministic_and_class_balanced():
    a, la = make_shapes(200, seed=3)
    b, lb = make_shapes(200, seed=3)
    c, _ = make_shapes(200, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert np.bincount(la).tolist() == [20] * 10
    train, test = build_dataset("shapes", None, "train"), build_dataset("shapes", None, "test")
    assert (len(train), len(test)) == (2000, 500)
    assert np.bincount(test.targets).tolist() == [50] * 10
    assert not np.array_equal(train.images[:500], test.images)


def test_shapes_labels_are_learnable_from_translation_free_pixel_features():
    """Logistic regression on the FFT magnitude of the foreground mask (invariant to where the
    shape sits) is far above chance (10%): the labels describe the shapes."""
    from sklearn.linear_model import LogisticRegression

    def features(images):
        gray = images.astype(np.float32).mean(3)
        fg = (gray > np.median(gray.reshape(len(gray), -1), axis=1)[:, None, None])
        spectrum = np.abs(np.fft.fft2(fg.astype(np.float32)))[:, :8, :8]
        return spectrum.reshape(len(images), -1) / (fg.sum((1, 2))[:, None] + 1.0)

    train, train_y = make_shapes(1000, seed=0)
    test, test_y = make_shapes(300, seed=1)
    clf = LogisticRegression(max_iter=2000).fit(features(train), train_y)
    assert clf.score(features(test), test_y) > 0.3


def test_digits_are_read_as_scikit_learn_loads_them_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from repro.data.offline import load_digits_arrays

    pixels, targets = load_digits_arrays()
    reference = load_digits()
    assert np.array_equal(pixels, reference.images) and np.array_equal(targets, reference.target)
    probe = ("import sys; from repro.data.offline import digits; digits('test'); "
             "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stratified_split_is_disjoint_complete_and_seeded():
    from repro.data.offline import stratified_split

    labels = np.repeat(np.arange(3), [10, 20, 31])
    train, test = stratified_split(labels, 0.2, seed=5)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(61))
    assert np.bincount(labels[test]).tolist() == [2, 4, 6]
    again, other = stratified_split(labels, 0.2, seed=5), stratified_split(labels, 0.2, seed=6)
    assert np.array_equal(again[1], test) and not np.array_equal(other[1], test)


def test_digits_are_scikit_learn_digits_upscaled_and_split_80_20():
    from sklearn.datasets import load_digits

    size = get_spec("digits").image_size
    images, labels = make_digits(size)
    assert images.shape == (1797, size, size, 3) and images.dtype == np.uint8
    assert np.array_equal(images[..., 0], images[..., 2])  # gray replicated to RGB
    # each upscaled image is its 8 x 8 original: block means track scikit-learn's pixels
    reference = load_digits()
    f = size // 8
    blocks = images[..., 0].reshape(1797, 8, f, 8, f).mean((2, 4)) * (16.0 / 255.0)
    assert np.corrcoef(blocks.ravel(), reference.images.ravel())[0, 1] > 0.95
    assert np.array_equal(labels, reference.target)
    train, test = build_dataset("digits", None, "train"), build_dataset("digits", None, "test")
    assert (len(train), len(test)) == (1438, 359)
    # stratified: 20% of each class (rounded) in test, the rest in train
    per_class = np.bincount(reference.target)
    assert np.bincount(test.targets).tolist() == np.round(0.2 * per_class).astype(int).tolist()
    assert np.array_equal(np.bincount(train.targets) + np.bincount(test.targets), per_class)
    again = build_dataset("digits", None, "test")
    assert np.array_equal(again.images, test.images)
    image, label = train[0]
    assert image.size == (size, size) and 0 <= label < 10


@pytest.mark.parametrize("name", ["shapes", "digits"])
def test_offline_spec_statistics_match_the_data(name):
    spec = get_spec(name)
    pixels = build_dataset(name, None, "train").images.reshape(-1, 3) / 255.0
    assert np.allclose(pixels.mean(0), spec.mean, atol=2e-3)
    assert np.allclose(pixels.std(0), spec.std, atol=2e-3)
    assert spec.offline


# ---------------------------------------------------------------- augmentations

def test_two_views_differ_and_collate_to_two_batches():
    spec = get_spec("shapes")
    dataset = TwoViewDataset(build_dataset("shapes", None, "train"), pretrain_transform(spec))
    item = dataset[5]
    v1, v2 = item["views"]
    side = spec.image_size
    assert item["index"] == 5 and v1.shape == v2.shape == (3, side, side)
    assert not torch.equal(v1, v2)
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert len(batch["views"]) == 2 and batch["views"][0].shape == (4, 3, side, side)
    assert batch["index"].tolist() == [0, 1, 2, 3] and batch["label"].shape == (4,)


def test_fixed_seed_gives_identical_batches_across_passes():
    spec = get_spec("digits")
    dataset = TwoViewDataset(build_dataset("digits", None, "train"), pretrain_transform(spec))

    def first_batch():
        torch.manual_seed(11)
        return next(iter(DataLoader(dataset, batch_size=8, shuffle=True)))

    a, b = first_batch(), first_batch()
    assert torch.equal(a["index"], b["index"])
    assert all(torch.equal(x, y) for x, y in zip(a["views"], b["views"]))


def test_eval_transform_is_deterministic_and_normalised():
    spec = get_spec("shapes")
    image, _ = build_dataset("shapes", None, "test")[0]
    t = eval_transform(spec)
    x = t(image)
    side = spec.image_size
    assert torch.equal(x, t(image)) and x.shape == (3, side, side)
    raw = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    expected = (raw - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    assert torch.allclose(x, expected, atol=1e-5)


def test_digits_pipeline_never_flips_and_imagenet_blurs():
    names = lambda t: [type(s).__name__ for s in t.transforms]  # noqa: E731
    assert "RandomHorizontalFlip" not in names(pretrain_transform(get_spec("digits")))
    assert "RandomHorizontalFlip" in names(pretrain_transform(get_spec("cifar10")))
    imagenet = pretrain_transform(get_spec("imagenet"))
    assert any("GaussianBlur" in repr(s) for s in imagenet.transforms)
    x = imagenet(Image.new("RGB", (300, 260), (10, 200, 30)))
    assert x.shape == (3, 224, 224)


def test_every_registered_dataset_has_a_how_to_get_and_valid_statistics():
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.how_to_get
        assert all(0 < s < 1 for s in spec.std) and all(0 < m < 1 for m in spec.mean)
        assert spec.crop_scale[0] < spec.crop_scale[1] <= 1.0
