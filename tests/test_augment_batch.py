"""repro.data.batch_augment: each step against torchvision's own ops and samplers, the
per-image probabilities, determinism, normalisation, and the raw-image dataset."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp
from torch.utils.data import Dataset, Subset
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as TF

from repro.data import build_dataset, get_spec, pretrain_transform
from repro.data import batch_augment as BA
from repro.data.batch_augment import (AugmentParams, BatchAugment, RawImageDataset,
                                      collate_raw)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _float_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=_gen(seed))


def _coarse_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Few distinct levels: gray pixels and ties between channels (the hue's edge cases)."""
    return torch.randint(0, 4, (n, 3, h, w), generator=_gen(seed)).float() * (85 / 255)


def _uint8_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, h, w), generator=_gen(seed), dtype=torch.uint8)


# ---------------------------------------------------------------- colour ops vs torchvision

TV_OPS = {0: TF.adjust_brightness, 1: TF.adjust_contrast, 2: TF.adjust_saturation,
          3: TF.adjust_hue}
FACTORS = {0: [0.0, 0.6, 0.95, 1.0, 1.2, 1.4], 1: [0.0, 0.6, 0.95, 1.0, 1.2, 1.4],
           2: [0.0, 0.6, 0.95, 1.0, 1.2, 1.4], 3: [-0.5, -0.1, -0.03, 0.0, 0.1, 0.5]}


@pytest.mark.parametrize("op_id", [0, 1, 2, 3], ids=["brightness", "contrast", "saturation",
                                                     "hue"])
@pytest.mark.parametrize("images", ["uniform", "coarse"])
def test_each_colour_op_equals_torchvision_on_each_image(op_id, images):
    x = _float_images(6, 12, 14, 0) if images == "uniform" else _coarse_images(6, 12, 14, 1)
    factors = torch.tensor(FACTORS[op_id])
    out = BA.JITTER_OPS[op_id](x, factors)
    assert out.shape == x.shape
    for i in range(len(x)):
        expected = TV_OPS[op_id](x[i], float(factors[i]))
        assert torch.allclose(out[i], expected, atol=1e-5, rtol=0), (i, float(factors[i]))
    if op_id != 0:  # contrast, saturation, hue move pixels differently, not just a scale
        assert not torch.allclose(out[1], x[1], atol=1e-3)


def _sequential(image: torch.Tensor, factors: torch.Tensor, order) -> torch.Tensor:
    for op_id in order:
        image = TV_OPS[int(op_id)](image, float(factors[int(op_id)]))
    return image


def test_jitter_applies_each_images_own_order_as_torchvision_would_in_sequence():
    image = _float_images(1, 10, 10, 2)[0]
    x = image.expand(3, -1, -1, -1).clone()       # one image, three times
    factors = torch.tensor([[1.35, 0.65, 1.3, 0.08]]).expand(3, -1).clone()
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
    out = BA.color_jitter(x, factors, order, torch.tensor([True, True, True]))
    for i in range(3):
        assert torch.allclose(out[i], _sequential(image, factors[i], order[i]), atol=1e-5)
    assert (out[0] - out[1]).abs().max() > 1e-2 and (out[0] - out[2]).abs().max() > 1e-2
    skipped = BA.color_jitter(x, factors, order, torch.tensor([True, False, True]))
    assert torch.equal(skipped[1], x[1]) and torch.equal(skipped[0], out[0])


def test_grayscale_is_torchvisions_luma_on_three_channels():
    x = _float_images(3, 8, 9, 3)
    out = BA.rgb_to_grayscale(x)
    for i in range(3):
        assert torch.allclose(out[i], TF.rgb_to_grayscale(x[i], num_output_channels=3),
                              atol=1e-6)
    expected = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert all(torch.allclose(out[:, c], expected, atol=1e-6) for c in range(3))


@pytest.mark.parametrize("kernel", [3, 5, 23])
def test_blur_uses_each_images_sigma_as_torchvision(kernel):
    x = _float_images(3, 32, 30, 4)
    sigma = torch.tensor([0.1, 0.9, 2.0])
    out = BA.gaussian_blur(x, sigma, kernel)
    for i in range(3):
        expected = TF.gaussian_blur(x[i], [kernel, kernel], [float(sigma[i])] * 2)
        assert torch.allclose(out[i], expected, atol=1e-5), i
    assert out[2].std() < out[1].std() < x[1].std()   # a wider sigma smooths more


def test_blur_kernel_is_the_pil_pipelines():
    assert [BA.blur_kernel_size(s) for s in (16, 32, 96, 224)] == [3, 3, 9, 23]


# ---------------------------------------------------------------- crop boxes vs get_params

def _torchvision_boxes(n: int, height: int, width: int, scale, ratio, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    img = torch.zeros(1, height, width)
    return torch.tensor([T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
                         for _ in range(n)])


def _box_stats(boxes: torch.Tensor, height: int, width: int):
    area = (boxes[:, 2] * boxes[:, 3]).double() / (height * width)
    log_ratio = torch.log(boxes[:, 3].double() / boxes[:, 2].double())
    return area, log_ratio


@pytest.mark.parametrize("height,width,scale,ratio", [
    (32, 32, (0.2, 1.0), BA.CROP_RATIO),        # cifar
    (40, 24, (0.08, 1.0), BA.CROP_RATIO),       # a portrait image, torchvision's default scale
    (32, 32, (0.3, 1.0), (2.0, 3.0)),           # extreme ratio: ~15% centre-crop fallbacks
], ids=["square", "portrait", "fallback-mix"])
def test_crop_boxes_follow_torchvisions_get_params_distribution(height, width, scale, ratio):
    n = 4000
    ours = BA.sample_crop_boxes(n, height, width, scale, ratio, _gen(1))
    theirs = _torchvision_boxes(n, height, width, scale, ratio, seed=0)
    assert ours.shape == (n, 4) and ours.dtype == torch.long
    for a, b in zip(_box_stats(ours, height, width), _box_stats(theirs, height, width)):
        se = math.sqrt((a.var() + b.var()).item() / n)
        assert abs(a.mean() - b.mean()).item() < 4 * se + 1e-9
        assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3
        qa = torch.quantile(a, torch.tensor([0.1, 0.5, 0.9], dtype=a.dtype))
        qb = torch.quantile(b, torch.tensor([0.1, 0.5, 0.9], dtype=b.dtype))
        assert torch.allclose(qa, qb, atol=0.05)
    for col, size in ((0, height), (1, width)):    # positions
        assert ks_2samp(ours[:, col].numpy(), theirs[:, col].numpy()).pvalue > 1e-3
    fallback = torch.tensor(BA._centre_crop(height, width, ratio))
    rate_ours = (ours == fallback).all(1).double().mean().item()
    rate_theirs = (theirs == fallback).all(1).double().mean().item()
    p = max(rate_theirs, 1.0 / n)
    assert abs(rate_ours - rate_theirs) < 5 * math.sqrt(2 * p * (1 - p) / n) + 2.0 / n
    if ratio == (2.0, 3.0):
        assert 0.05 < rate_ours < 0.3  # the fallback path is taken, not just possible


@pytest.mark.parametrize("height,width,ratio", [(32, 32, (2.0, 3.0)), (40, 24, (0.1, 0.2)),
                                                (24, 40, (0.1, 0.2))])
def test_when_no_try_fits_the_box_is_torchvisions_centre_crop(height, width, ratio):
    ours = BA.sample_crop_boxes(50, height, width, (0.9, 1.0), ratio, _gen(2))
    theirs = _torchvision_boxes(50, height, width, (0.9, 1.0), ratio, seed=3)
    assert (theirs == theirs[0]).all()  # torchvision always falls back here
    assert (ours == theirs[0]).all()


@pytest.mark.parametrize("height,width,scale,ratio", [
    (32, 32, (0.2, 1.0), BA.CROP_RATIO), (7, 50, (0.08, 1.0), BA.CROP_RATIO),
    (50, 7, (0.01, 0.05), (0.2, 5.0)), (3, 3, (0.5, 1.0), BA.CROP_RATIO),
    (32, 32, (0.3, 1.0), (2.0, 3.0))])
def test_crop_boxes_always_lie_inside_the_image(height, width, scale, ratio):
    top, left, h, w = BA.sample_crop_boxes(3000, height, width, scale, ratio, _gen(5)).unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= height).all() and (left + w <= width).all()


# ---------------------------------------------------------------- crop + resize

@pytest.mark.parametrize("box", [(0, 0, 20, 24), (3, 5, 10, 12), (8, 2, 12, 7), (19, 23, 1, 1),
                                 (0, 0, 16, 16)])
def test_upsampling_crop_equals_torchvisions_resized_crop_without_antialias(box):
    x = _float_images(1, 20, 24, 6)
    out = BA.resized_crop(x, torch.tensor([box]), 24)
    expected = TF.resized_crop(x[0], *box, [24, 24], antialias=False)
    assert torch.allclose(out[0], expected, atol=1e-5)


@pytest.mark.parametrize("box", [(0, 0, 40, 36), (5, 3, 30, 17), (1, 2, 31, 33)])
def test_downsampling_crop_equals_torchvisions_antialiased_resize_as_pil(box):
    x = _float_images(1, 40, 36, 7)
    out = BA.resized_crop(x, torch.tensor([box]), 16)
    expected = TF.resized_crop(x[0], *box, [16, 16], antialias=True)
    assert torch.allclose(out[0], expected, atol=1e-5)


def test_each_image_gets_its_own_box_and_an_identity_box_returns_the_image():
    x = _float_images(3, 16, 16, 8)
    boxes = torch.tensor([[0, 0, 16, 16], [2, 3, 9, 11], [4, 0, 12, 16]])
    out = BA.resized_crop(x, boxes, 16)
    assert torch.allclose(out[0], x[0], atol=1e-6)
    for i in (1, 2):
        assert torch.allclose(out[i], TF.resized_crop(x[i], *boxes[i].tolist(), [16, 16],
                                                      antialias=False), atol=1e-5)
    flipped = BA.resized_crop(x, boxes, 16, flip=torch.tensor([True, False, True]))
    assert torch.allclose(flipped[0], x[0].flip(-1), atol=1e-6)
    assert torch.equal(flipped[1], out[1]) and torch.allclose(flipped[2], out[2].flip(-1))


# ---------------------------------------------------------------- probabilities

def _rate(mask: torch.Tensor) -> float:
    return mask.double().mean().item()


def _binomial_ok(rate: float, p: float, n: int) -> bool:
    return abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("name", ["cifar10", "digits", "imagenet"])
def test_per_image_coins_hit_their_rates_and_the_spec_switches_blur_and_flip(name):
    spec, n = get_spec(name), 20000
    params = BA.sample_params(spec, n, 40, 48, _gen(9))
    assert len(params) == n
    assert _binomial_ok(_rate(params.jitter), 0.8, n)
    assert _binomial_ok(_rate(params.gray), 0.2, n)
    assert _binomial_ok(_rate(params.blur), 0.5 if spec.blur else 0.0, n)
    assert _binomial_ok(_rate(params.flip), 0.5 if spec.flip else 0.0, n)
    if name == "digits":
        assert not params.flip.any()  # digits are not flip-invariant
    for k, (lo, hi) in enumerate(BA.JITTER_RANGES):
        f = params.factors[:, k]
        assert lo <= f.min() and f.max() <= hi
        assert abs(f.mean().item() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * n)
    assert 0.1 <= params.sigma.min() and params.sigma.max() <= 2.0
    assert torch.equal(params.order.sort(1).values, torch.arange(4).expand(n, 4))
    for step in range(4):  # each op equally likely at each step
        counts = torch.bincount(params.order[:, step], minlength=4).double() / n
        assert all(_binomial_ok(c, 0.25, n) for c in counts.tolist())
    # the coins are independent of each other
    both = _rate(params.jitter & params.gray)
    assert _binomial_ok(both, 0.8 * 0.2, n)


@pytest.mark.parametrize("sync_free", [False, True], ids=["indexed", "sync-free"])
def test_the_applied_pipeline_follows_the_coins(sync_free):
    spec = dataclasses.replace(get_spec("imagenet"), image_size=16)
    x = _uint8_images(4, 16, 16, 10)
    n = len(x)
    identity = AugmentParams(
        boxes=torch.tensor([[0, 0, 16, 16]] * n), jitter=torch.zeros(n, dtype=torch.bool),
        factors=torch.tensor([[1.3, 0.7, 1.2, 0.1]] * n), order=torch.arange(4).expand(n, 4),
        gray=torch.zeros(n, dtype=torch.bool), blur=torch.zeros(n, dtype=torch.bool),
        sigma=torch.ones(n), flip=torch.zeros(n, dtype=torch.bool))
    plain = BA.apply_params(x, identity, spec, sync_free)
    assert torch.allclose(plain, x.float() / 255, atol=1e-6)
    coins = torch.tensor([True, False, True, False])
    jittered = BA.apply_params(x, dataclasses.replace(identity, jitter=coins), spec, sync_free)
    gray = BA.apply_params(x, dataclasses.replace(identity, gray=coins), spec, sync_free)
    blurred = BA.apply_params(x, dataclasses.replace(identity, blur=coins), spec, sync_free)
    flipped = BA.apply_params(x, dataclasses.replace(identity, flip=coins), spec, sync_free)
    for i in range(n):
        image = plain[i]
        if coins[i]:
            assert torch.allclose(jittered[i], _sequential(image, identity.factors[i],
                                                           range(4)), atol=1e-5)
            assert torch.allclose(gray[i], TF.rgb_to_grayscale(image, 3), atol=1e-6)
            assert torch.allclose(blurred[i], TF.gaussian_blur(image, [3, 3], [1.0, 1.0]),
                                  atol=1e-5)
            assert torch.allclose(flipped[i], image.flip(-1), atol=1e-6)
        else:
            for out in (jittered, gray, blurred, flipped):
                assert torch.allclose(out[i], image, atol=1e-6)



@pytest.mark.parametrize("name", ["shapes", "cifar10", "imagenet"])
def test_sync_free_path_gives_the_indexed_paths_images(name):
    """The masked path (every op on the whole batch, kept where drawn: no ``nonzero``, so no
    wait for a GPU) makes the images the indexed path makes, for drawn parameters where every
    (step, op) pair, grayscale and blur occur."""
    spec = dataclasses.replace(get_spec(name), image_size=16)
    x = _uint8_images(64, 20, 18, 13)
    params = BatchAugment(spec).sample(64, 20, 18, _gen(4))
    assert all(((params.order[:, t] == k) & params.jitter).any()
               for t in range(4) for k in range(4))
    assert params.gray.any() and (params.blur.any() or not spec.blur)
    indexed = BA.apply_params(x, params, spec, sync_free=False)
    masked = BA.apply_params(x, params, spec, sync_free=True)
    assert torch.allclose(masked, indexed, atol=1e-6, rtol=0)
    jitter_only = BA.color_jitter(indexed, params.factors, params.order, params.jitter, True)
    assert torch.allclose(jitter_only, BA.color_jitter(indexed, params.factors, params.order,
                                                       params.jitter, False), atol=1e-6, rtol=0)

# ---------------------------------------------------------------- the whole call

def test_same_seed_same_views_other_seed_other_views():
    spec = get_spec("shapes")
    aug = BatchAugment(spec)
    x = _uint8_images(16, 32, 32, 11)
    a, b = aug(x, _gen(0)), aug(x, _gen(0))
    assert a.shape == (16, 3, spec.image_size, spec.image_size) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, aug(x, _gen(1)), atol=1e-2)
    gen = _gen(0)
    first, second = aug(x, gen), aug(x, gen)
    assert torch.equal(first, a) and not torch.allclose(first, second, atol=1e-2)


@pytest.mark.parametrize("name", ["shapes", "imagenet"])
def test_output_is_the_unnormalised_result_normalised_with_the_spec(name):
    spec = dataclasses.replace(get_spec(name), image_size=24)
    aug = BatchAugment(spec)
    x = _uint8_images(8, 30, 28, 12)
    out = aug(x, _gen(3))
    params = aug.sample(8, 30, 28, _gen(3))
    raw = aug.apply(x, params, normalise=False)
    assert out.shape == raw.shape == (8, 3, 24, 24)
    assert raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6
    mean = torch.tensor(spec.mean).reshape(1, 3, 1, 1)
    std = torch.tensor(spec.std).reshape(1, 3, 1, 1)
    assert torch.allclose(out, (raw - mean) / std, atol=1e-5)


def test_views_match_the_pil_pipeline_in_distribution():
    """Pixel statistics of 512 views: PIL rounds to uint8 between steps, the batch path does
    not, so they agree closely but not exactly."""
    spec = get_spec("shapes")
    data = build_dataset("shapes", None, "train")
    n = 512
    torch.manual_seed(0)
    transform = pretrain_transform(spec)
    pil = torch.stack([transform(data[i][0]) for i in range(n)])
    raw = collate_raw([RawImageDataset(data)[i] for i in range(n)])["image"]
    batch = BatchAugment(spec)(raw, _gen(0))
    assert batch.shape == pil.shape
    assert torch.allclose(batch.mean((0, 2, 3)), pil.mean((0, 2, 3)), atol=0.08)
    assert torch.allclose(batch.std((2, 3)).mean(0), pil.std((2, 3)).mean(0), atol=0.05)


def test_wrong_input_or_generator_device_is_refused():
    aug = BatchAugment(get_spec("shapes"))
    with pytest.raises(ValueError, match="uint8"):
        aug(torch.rand(2, 3, 8, 8), _gen(0))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), _gen(0))
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="generator"):
            aug(torch.zeros(2, 3, 8, 8, dtype=torch.uint8),
                torch.Generator(device="cuda").manual_seed(0))



def test_cuda_without_an_index_is_the_current_cuda_device(monkeypatch):
    """``torch.Generator(device="cuda").device`` is ``cuda`` while a tensor's is ``cuda:0``:
    the generator check must take them as one device (the H200 device check found it) and
    still refuse another GPU or the CPU. Device objects need no GPU; the current device is
    pinned."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    cuda, cuda0, cuda1, cpu = (torch.device(d) for d in ("cuda", "cuda:0", "cuda:1", "cpu"))
    assert BA.same_device(cuda, cuda0) and BA.same_device(cuda0, cuda)
    assert BA.same_device(cuda0, cuda0) and BA.same_device(cpu, cpu)
    assert not BA.same_device(cuda, cuda1) and not BA.same_device(cuda1, cuda0)
    assert not BA.same_device(cpu, cuda0) and not BA.same_device(cuda, cpu)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert BA.same_device(cuda, cuda1) and not BA.same_device(cuda, cuda0)

# ---------------------------------------------------------------- raw images for the loader

class _PilImages(Dataset):
    """A dataset of PIL images that is not an ArrayDataset (as the real-format readers)."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int):
        return Image.fromarray(self.arrays[index]), index + 10


def test_raw_images_are_the_datasets_pixels_also_through_a_subset_and_from_pil():
    data = build_dataset("shapes", None, "train")
    sub = Subset(Subset(data, [5, 9, 3, 7]), [2, 0])  # rows 3, 5
    for dataset, rows in ((data, [0, 1]), (sub, [3, 5])):
        raw = RawImageDataset(dataset)
        for i, row in enumerate(rows):
            item = raw[i]
            assert item["index"] == i and item["label"] == int(data.targets[row])
            height, width = data.images.shape[1:3]
            assert item["image"].dtype == torch.uint8
            assert item["image"].shape == (3, height, width)
            assert np.array_equal(item["image"].permute(1, 2, 0).numpy(), data.images[row])
    arrays = [np.random.default_rng(i).integers(0, 256, (9, 7, 3), dtype=np.uint8)
              for i in range(3)]
    raw = RawImageDataset(_PilImages(arrays))
    batch = collate_raw([raw[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 9, 7) and batch["label"].tolist() == [10, 11, 12]
    assert batch["index"].tolist() == [0, 1, 2]
    assert np.array_equal(batch["image"][1].permute(1, 2, 0).numpy(), arrays[1])


def test_a_batch_of_mixed_image_sizes_is_refused_with_the_way_out():
    arrays = [np.zeros((9, 7, 3), np.uint8), np.zeros((8, 7, 3), np.uint8)]
    raw = RawImageDataset(_PilImages(arrays))
    with pytest.raises(ValueError, match="one size per batch.*augment: pil"):
        collate_raw([raw[0], raw[1]])


# ---------------------------------------------------------------- mutation-found properties

def test_the_sync_free_path_never_picks_images_with_nonzero_and_the_cpu_default_does(
        monkeypatch):
    """``nonzero`` is what waits for a GPU: the sync-free path must not call it, asked for
    explicitly (here on the CPU); the CPU's default is the indexed path, which does."""
    calls = []
    real = torch.nonzero
    monkeypatch.setattr(torch, "nonzero", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = dataclasses.replace(get_spec("imagenet"), image_size=16)
    x = _uint8_images(16, 20, 20, 14)
    params = BatchAugment(spec).sample(16, 20, 20, _gen(5))
    BA.apply_params(x, params, spec, sync_free=True)
    BA.color_jitter(x.float() / 255, params.factors, params.order, params.jitter, True)
    assert calls == []
    BA.apply_params(x, params, spec)
    assert len(calls) >= 16
    assert BA.sync_free_by_default(torch.device("cuda")) and not BA.sync_free_by_default(torch.device("cpu"))


def test_crop_positions_draw_top_and_left_independently_and_tiny_images_get_every_size():
    gen = _gen(6)
    boxes = BA.sample_crop_boxes(4000, 40, 40, (0.08, 1.0), BA.CROP_RATIO, gen)
    top, left, h, w = boxes.T.double()
    u_top, u_left = (top + 0.5) / (40 - h + 1), (left + 0.5) / (40 - w + 1)
    assert abs(float(torch.corrcoef(torch.stack([u_top, u_left]))[0, 1])) < 0.1
    tiny = BA.sample_crop_boxes(2000, 2, 2, (0.08, 1.0), BA.CROP_RATIO, gen)
    assert (tiny[:, 2:] >= 1).all() and (tiny[:, 2:] <= 2).all()
    assert {1, 2} <= set(tiny[:, 2].tolist()) and {1, 2} <= set(tiny[:, 3].tolist())


def test_blur_sigma_spans_torchvisions_range():
    params = BatchAugment(get_spec("imagenet")).sample(4000, 32, 32, _gen(7))
    low, high = BA.BLUR_SIGMA
    assert low <= float(params.sigma.min()) < low + 0.02
    assert high - 0.02 < float(params.sigma.max()) <= high


def test_mixed_sizes_error_names_the_first_four_sizes_and_says_there_are_more():
    def item(h, w):
        return {"index": 0, "label": 0, "image": torch.zeros(3, h, w, dtype=torch.uint8)}

    with pytest.raises(ValueError) as five:
        collate_raw([item(8, 7), item(9, 7), item(10, 7), item(11, 7), item(12, 7)])
    assert "got 5 sizes (8x7, 9x7, 10x7, 11x7, ...); use pretrain.augment: pil" in str(five.value)
    with pytest.raises(ValueError) as four:
        collate_raw([item(8, 7), item(9, 7), item(10, 7), item(11, 7)])
    assert "got 4 sizes (8x7, 9x7, 10x7, 11x7); use" in str(four.value)


def test_raw_images_of_a_grayscale_dataset_have_three_channels():
    arrays = [np.full((5, 4), 7, np.uint8), np.full((5, 4), 9, np.uint8)]

    class _Gray(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return Image.fromarray(arrays[i], mode="L"), i

    raw = RawImageDataset(_Gray())
    image = raw[1]["image"]
    assert image.shape == (3, 5, 4) and (image == 9).all()
