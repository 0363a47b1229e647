"""The pretraining augmentation applied to a whole uint8 batch at once, on the training device.

:class:`BatchAugment` is the batched counterpart of :func:`repro.data.augment.pretrain_transform`
(``pretrain.augment: batch``): it maps a ``(B, 3, H, W)`` uint8 batch to ``(B, 3, S, S)``
normalised float views, ``S = spec.image_size``, with the same per-image distributions, and no
Python loop over images. It is stateless apart from the spec: every random number comes from
the ``torch.Generator`` passed in (on the images' device), so a fixed seed gives identical views.

Sampling (:meth:`BatchAugment.sample`, returning :class:`AugmentParams`) is separate from
applying fixed parameters (:func:`apply_params`), and every step is a small pure function of
tensors, in the order of the PIL pipeline:

1. ``RandomResizedCrop(S, scale=spec.crop_scale, ratio=(3/4, 4/3))``: boxes drawn exactly as
   ``torchvision.transforms.RandomResizedCrop.get_params`` (area fraction uniform in ``scale``,
   log-uniform aspect ratio, ``w, h`` rounded half to even, up to 10 attempts, then the centre
   crop with the ratio clamped), vectorised: all 10 attempts are drawn for every image and the
   first valid one is kept (:func:`sample_crop_boxes`). The crop is resampled to ``S x S`` by
   one separable resampling matrix per image and axis, applied as two batched matmuls
   (:func:`resized_crop`). Why matrices and not ``roi_align`` / ``grid_sample``: both
   interpolate with the pixels just outside the crop at its border (``resized_crop`` clamps
   to the crop), and neither has PIL's antialiasing filter when downsampling (ImageNet); the
   matrices hold PIL's bilinear filter (triangle, widened by the scale factor when
   downsampling, clamped to the crop, normalised), so upsampling equals
   ``v2.functional.resized_crop(..., antialias=False)`` and downsampling equals
   ``antialias=True`` (PIL's algorithm), with no data-dependent shapes or host sync. The
   dense matmul does ``S H W + S^2 W`` multiply-adds per channel: a few hundred thousand per
   image at 16-32 px, ~50 M for ImageNet (fine on a GPU; on one CPU thread ImageNet-sized
   batches are slower than PIL).
2. ``ColorJitter(0.4, 0.4, 0.4, 0.1)`` with p=0.8: brightness, contrast, saturation factors
   uniform in [0.6, 1.4], hue in [-0.1, 0.1], applied in an order drawn per image (a uniform
   random permutation, as torchvision's ``randperm(4)``); each op is the float math of
   ``torchvision.transforms.v2.functional.adjust_*`` (clamped to [0, 1] after each op).
3. ``RandomGrayscale(0.2)``: torchvision's luma weights (0.2989, 0.587, 0.114), 3 channels.
4. ``GaussianBlur`` with p=0.5 (``spec.blur`` only): kernel ``max(3, int(0.1 S) // 2 * 2 + 1)``,
   sigma uniform in (0.1, 2.0) per image, reflect padding; a separable per-image grouped conv.
5. Horizontal flip with p=0.5 (``spec.flip`` only), folded into the crop's column matrix (it
   commutes with every later step: per-pixel colour ops, image-wide means, a symmetric blur
   with symmetric padding).
6. ``Normalize(spec.mean, spec.std)``.

What is exact and what is approximate, against the PIL pipeline:

- exact in distribution: crop boxes (same sampler; the per-image draws differ from the PIL
  path's because the random streams differ), jitter / grayscale / blur / flip probabilities,
  factor, order and sigma distributions;
- exact (to float32 rounding, ~1e-6) given the parameters: the colour ops, grayscale and blur
  against torchvision's tensor ops on float images, the crop against
  ``v2.functional.resized_crop`` (``antialias=False`` upsampling, ``antialias=True``
  downsampling);
- approximate: PIL works on uint8 and rounds after the resize and after every colour op and
  blur (the batch path stays in float: differences of about 1/255), PIL's resize uses
  fixed-point filter weights, and PIL's grayscale uses 299/587/114 integer weights.

On a GPU the whole pipeline runs without a host sync: the jitter, grayscale and blur go
over the whole batch and masks keep them where drawn (:func:`color_jitter`; on the CPU,
indexed subsets do less work), and constants are made once per device.

Images in one batch must share one size (a ``ValueError`` otherwise, see :func:`collate_raw`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

from repro.data.arrays import ArrayDataset
from repro.data.registry import DatasetSpec

__all__ = ["AugmentParams", "BatchAugment", "sample_crop_boxes", "sample_params",
           "apply_params", "resized_crop", "resample_matrix", "adjust_brightness",
           "adjust_contrast", "adjust_saturation", "adjust_hue", "color_jitter",
           "rgb_to_grayscale", "gaussian_blur", "blur_kernel_size", "normalize",
           "RawImageDataset", "collate_raw", "JITTER_P", "GRAYSCALE_P", "BLUR_P", "FLIP_P",
           "JITTER_RANGES", "CROP_RATIO", "BLUR_SIGMA"]

CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
JITTER_P, GRAYSCALE_P, BLUR_P, FLIP_P = 0.8, 0.2, 0.5, 0.5
# ColorJitter(0.4, 0.4, 0.4, 0.1): brightness, contrast, saturation, hue ranges (op order ids)
JITTER_RANGES = ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
BLUR_SIGMA = (0.1, 2.0)
LUMA = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights (ITU-R 601-2)


@dataclass(frozen=True)
class AugmentParams:
    """Per-image augmentation parameters of a batch of ``B`` images (all on one device).

    Attributes:
        boxes: ``(B, 4)`` int64 crop boxes ``top, left, height, width`` in source pixels.
        jitter: ``(B,)`` bool, colour jitter applied.
        factors: ``(B, 4)`` float32 brightness, contrast, saturation, hue factors.
        order: ``(B, 4)`` int64, a permutation of 0..3 per image: the jitter ops in the order
            they are applied (0 brightness, 1 contrast, 2 saturation, 3 hue).
        gray: ``(B,)`` bool, converted to grayscale.
        blur: ``(B,)`` bool, Gaussian-blurred (all False when the spec has no blur).
        sigma: ``(B,)`` float32 blur sigma (drawn for every image, used where ``blur``).
        flip: ``(B,)`` bool, flipped horizontally (all False when the spec does not flip).
    """

    boxes: Tensor
    jitter: Tensor
    factors: Tensor
    order: Tensor
    gray: Tensor
    blur: Tensor
    sigma: Tensor
    flip: Tensor

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


@functools.lru_cache(maxsize=None)
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """A small constant tensor on ``device``, made once per device and dtype: building it
    afresh on a GPU each call is a host-to-device copy, which waits for the device."""
    return torch.tensor(values, dtype=dtype, device=device)


def sync_free_by_default(device: torch.device) -> bool:
    """Whether to take the masked, sync-free path: on an accelerator, where each
    ``nonzero`` (the indexed path's subset of images) waits for the device; on the CPU the
    indexed path does less work."""
    return device.type != "cpu"


# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------


def _uniform(shape: Sequence[int], low: float, high: float, generator: torch.Generator,
             dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform draws in ``[low, high)`` on the generator's device (as ``Tensor.uniform_``)."""
    return torch.empty(tuple(shape), dtype=dtype, device=generator.device).uniform_(
        low, high, generator=generator)


def _bernoulli(n: int, p: float, generator: torch.Generator) -> Tensor:
    """``(n,)`` bool, each True with probability ``p`` (``torch.rand(1) < p`` per image)."""
    return torch.rand(n, generator=generator, device=generator.device) < p


def sample_crop_boxes(n: int, height: int, width: int, scale: Sequence[float],
                      ratio: Sequence[float], generator: torch.Generator,
                      attempts: int = 10) -> Tensor:
    """``n`` crop boxes of a ``height x width`` image, drawn as ``RandomResizedCrop.get_params``.

    Per image: up to ``attempts`` tries of an area fraction uniform in ``scale`` and an aspect
    ratio ``exp(uniform(log ratio))`` (float32 draws, as torchvision), ``w = round(sqrt(area *
    ratio))``, ``h = round(sqrt(area / ratio))`` (round half to even, as Python's ``round``);
    the first try that fits gives the box, at a uniform integer position. When none fits, the
    centre crop: the whole image with its aspect ratio clamped into ``ratio``. All tries are
    drawn for every image, so the number of draws does not depend on the outcome.

    Returns:
        ``(n, 4)`` int64 ``top, left, height, width`` on the generator's device; every box
        lies inside the image.
    """
    device = generator.device
    log_ratio = torch.log(torch.tensor([float(r) for r in ratio]))  # float32, as torchvision
    area_frac = _uniform((n, attempts), float(scale[0]), float(scale[1]), generator)
    log_r = _uniform((n, attempts), float(log_ratio[0]), float(log_ratio[1]), generator)
    target_area = float(height * width) * area_frac.double()
    aspect = torch.exp(log_r).double()
    w = torch.round(torch.sqrt(target_area * aspect))
    h = torch.round(torch.sqrt(target_area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.to(torch.uint8), dim=1, keepdim=True)  # first fitting try
    w = w.gather(1, first).squeeze(1).long()
    h = h.gather(1, first).squeeze(1).long()
    # uniform integer positions in [0, size - crop]: floor(u * (size - crop + 1)), float64 u
    u = torch.rand((n, 2), dtype=torch.float64, generator=generator, device=device)
    top = torch.minimum(torch.floor(u[:, 0] * (height - h + 1)).long(), height - h)
    left = torch.minimum(torch.floor(u[:, 1] * (width - w + 1)).long(), width - w)
    fb_top, fb_left, fb_h, fb_w = _centre_crop(height, width, ratio)
    found = fits.any(dim=1)
    boxes = torch.stack([top, left, h, w], dim=1)
    fallback = _constant((fb_top, fb_left, fb_h, fb_w), torch.long, device)
    return torch.where(found[:, None], boxes, fallback)


def _centre_crop(height: int, width: int, ratio: Sequence[float]) -> tuple[int, int, int, int]:
    """``get_params``' fallback box: the whole image, its aspect ratio clamped into ``ratio``."""
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def blur_kernel_size(image_size: int) -> int:
    """The blur kernel of :func:`repro.data.augment.pretrain_transform`: ~10% of the side, odd."""
    return max(3, int(0.1 * image_size) // 2 * 2 + 1)


def sample_params(spec: DatasetSpec, n: int, height: int, width: int,
                  generator: torch.Generator) -> AugmentParams:
    """Draw the augmentation parameters of ``n`` images of size ``height x width`` for ``spec``.

    The draws (always the same number for given ``n``) come in a fixed order from
    ``generator``: crop boxes, jitter coin, jitter factors, jitter order, grayscale coin, blur
    coin and sigma, flip coin. The order is a uniform random permutation per image (argsort of
    i.i.d. uniforms), as torchvision's ``randperm(4)``.
    """
    boxes = sample_crop_boxes(n, height, width, spec.crop_scale, CROP_RATIO, generator)
    jitter = _bernoulli(n, JITTER_P, generator)
    factors = torch.stack([_uniform((n,), lo, hi, generator) for lo, hi in JITTER_RANGES], 1)
    order = torch.argsort(torch.rand((n, 4), generator=generator, device=generator.device), 1)
    gray = _bernoulli(n, GRAYSCALE_P, generator)
    blur = _bernoulli(n, BLUR_P, generator) & spec.blur
    sigma = _uniform((n,), BLUR_SIGMA[0], BLUR_SIGMA[1], generator)
    flip = _bernoulli(n, FLIP_P, generator) & spec.flip
    return AugmentParams(boxes=boxes, jitter=jitter, factors=factors, order=order, gray=gray,
                         blur=blur, sigma=sigma, flip=flip)


# ------------------------------------------------------------------------------------------
# Crop and resize
# ------------------------------------------------------------------------------------------


def resample_matrix(start: Tensor, length: Tensor, in_size: int, out_size: int,
                    flip: Optional[Tensor] = None) -> Tensor:
    """Per-image resampling weights of one axis: crop ``[start, start + length)`` of an axis of
    ``in_size`` pixels and resize it to ``out_size`` with PIL's bilinear filter.

    Output pixel ``i`` has centre ``c = start + (i + 0.5) * length / out_size``; source pixel
    ``j`` gets weight ``max(0, 1 - |j + 0.5 - c| / max(1, length / out_size))`` if it lies in
    the crop, normalised over ``j``. Upsampling this is ``F.interpolate(bilinear,
    align_corners=False)`` of the crop (edges clamped to the crop); downsampling it is the
    antialiased filter of PIL and ``antialias=True``.

    Args:
        start, length: ``(B,)`` integer crop start and length along the axis.
        flip: ``(B,)`` bool; flipped images get their output pixels in reverse order.

    Returns:
        ``(B, out_size, in_size)`` float32.
    """
    device = start.device
    start64, length64 = start.double(), length.double()
    scale = length64 / out_size
    i = torch.arange(out_size, dtype=torch.float64, device=device)
    centre = start64[:, None] + (i[None, :] + 0.5) * scale[:, None]          # (B, out)
    if flip is not None:
        centre = torch.where(flip[:, None], centre.flip(1), centre)
    # source pixel j's centre is j + 0.5: its distance is j - (c - 0.5), in filter units
    inv_support = (1.0 / torch.clamp(scale, min=1.0)).float()[:, None, None]
    j = torch.arange(in_size, dtype=torch.float32, device=device)
    dist = j[None, None, :] - (centre - 0.5).float()[:, :, None]              # (B, out, in)
    weights = torch.clamp_(1.0 - dist.abs_().mul_(inv_support), min=0.0)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < (start + length)[:, None])
    weights.mul_(inside.float()[:, None, :])                # (multiplying beats masked_fill)
    return weights.div_(weights.sum(dim=2, keepdim=True))


def resized_crop(images: Tensor, boxes: Tensor, size: int, flip: Optional[Tensor] = None,
                 gain: float = 1.0) -> Tensor:
    """Crop ``boxes`` out of ``images`` and resize each crop to ``size x size``.

    Args:
        images: ``(B, C, H, W)`` float, or uint8 (converted on the way, in the layout the
            matmul wants).
        boxes: ``(B, 4)`` int ``top, left, height, width``.
        flip: ``(B,)`` bool, mirror those outputs horizontally (free: the column weights are
            reversed).
        gain: multiplies the output (folded into the row weights: ``1/255`` turns uint8
            input into [0, 1] at no cost).

    Returns:
        ``(B, C, size, size)`` float32 (or the input's float dtype), contiguous:
        ``gain * rows @ image @ cols^T`` per image and channel, with the matrices of
        :func:`resample_matrix` (two ``bmm`` over the batch, the channels side by side).
    """
    n, c, height, width = images.shape
    dtype = images.dtype if images.is_floating_point() else torch.float32
    rows = resample_matrix(boxes[:, 0], boxes[:, 2], height, size).to(dtype)
    if gain != 1.0:
        rows = rows.mul_(gain)
    cols = resample_matrix(boxes[:, 1], boxes[:, 3], width, size, flip).to(dtype)
    side_by_side = images.transpose(1, 2).reshape(n, height, c * width).to(dtype)  # (B, H, CW)
    out = torch.bmm(rows, side_by_side).reshape(n, size * c, width)          # (B, S*C, W)
    out = torch.bmm(out, cols.transpose(1, 2))                               # (B, S*C, S)
    return out.reshape(n, size, c, size).transpose(1, 2).contiguous()


# ------------------------------------------------------------------------------------------
# Colour ops: float images in [0, 1], one factor per image
# ------------------------------------------------------------------------------------------


def _per_image(factor: Tensor) -> Tensor:
    """``(B,)`` -> ``(B, 1, 1, 1)``, to broadcast over ``(B, C, H, W)``."""
    return factor.reshape(-1, 1, 1, 1)


def _gray(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, H, W)`` luma, as torchvision's ``rgb_to_grayscale``."""
    r, g, b = images.unbind(dim=-3)
    return r.mul(LUMA[0]).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(-3)


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """``images * factor + other * (1 - factor)`` clamped to [0, 1] (torchvision's ``_blend``)."""
    f = _per_image(factor)
    return (images * f + other * (1.0 - f)).clamp_(0.0, 1.0)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """``(B, 3, H, W)`` times ``factor`` ``(B,)``, clamped to [0, 1]."""
    return (images * _per_image(factor)).clamp_(0.0, 1.0)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with the mean of its grayscale image."""
    mean = _gray(images).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(images, mean, factor)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its grayscale image."""
    return _blend(images, _gray(images), factor)


def adjust_hue(images: Tensor, factor: Tensor) -> Tensor:
    """Rotate each image's hue by ``factor`` ``(B,)`` turns (in [-0.5, 0.5]) in HSV space.

    torchvision converts RGB -> HSV, adds the factor to H and converts back. A hue rotation
    keeps each pixel's max ``v`` and min (so its chroma ``C = v - min``), so this computes the
    same in closed form: the hue in sixths ``h6`` as torchvision's ``_rgb_to_hsv`` (red, then
    green, then blue maximum), ``k = (n + h6 + 6 factor) mod 6`` for channels ``n = 5, 3, 1``
    (R, G, B), and channel ``= v - C clamp(min(k, 4 - k), 0, 1)`` (the closed form of
    ``_hsv_to_rgb``'s sector table). Equals ``v2.functional.adjust_hue`` up to float32 rounding
    (~1e-6).
    """
    # Branch-free (0/1 masks, no torch.where): where / aminmax run ~20x slower than plain
    # arithmetic on one CPU thread.
    r, g, b = images.unbind(dim=-3)
    maxc, minc = images.amax(dim=-3), images.amin(dim=-3)
    chroma = maxc - minc
    inv = (chroma + (chroma == 0).to(images.dtype)).reciprocal_()   # 1 / C, 1 for gray pixels
    is_r = (maxc == r).to(images.dtype)
    is_g = (maxc == g).to(images.dtype).mul_(1.0 - is_r)
    is_b = 1.0 - is_r - is_g
    h6 = ((g - b).mul_(is_r).add_((b - r).mul_(is_g)).add_((r - g).mul_(is_b)).mul_(inv)
          .add_(is_g, alpha=2.0).add_(is_b, alpha=4.0))                       # (B, H, W)
    h6 = h6.unsqueeze(-3).add_(6.0 * factor.to(images.dtype).reshape(-1, 1, 1, 1))
    n = _constant((5.0, 3.0, 1.0), images.dtype, images.device)
    k = h6 + n.reshape(1, 3, 1, 1)                                            # (B, 3, H, W)
    k = k.sub_(torch.floor(k * (1.0 / 6.0)).mul_(6.0))                        # k mod 6
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return (maxc.unsqueeze(-3) - chroma.unsqueeze(-3) * ramp).clamp_(0.0, 1.0)


JITTER_OPS: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def _apply_to(images: Tensor, mask: Tensor, op: Callable[[Tensor, Tensor], Tensor],
              per_image: Tensor, sync_free: bool) -> Tensor:
    """``op(images, per_image)`` on the images where ``mask`` ``(B,)`` is True, the others
    unchanged. Sync-free: ``op`` on the whole batch, a mask keeps it where chosen (no wait for
    a GPU). Indexed: ``op`` on the chosen images only (``nonzero`` waits for a GPU), written
    back into ``images`` in place."""
    if sync_free:
        return torch.where(mask.reshape(-1, 1, 1, 1), op(images, per_image), images)
    chosen = torch.nonzero(mask).squeeze(1)
    if chosen.numel():
        images.index_copy_(0, chosen, op(images.index_select(0, chosen), per_image[chosen]))
    return images


def color_jitter(images: Tensor, factors: Tensor, order: Tensor, apply: Tensor,
                 sync_free: Optional[bool] = None) -> Tensor:
    """Colour jitter with a per-image op order.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        factors: ``(B, 4)`` brightness, contrast, saturation, hue factors.
        order: ``(B, 4)`` per-image permutation of the op ids 0..3 (:data:`JITTER_OPS`).
        apply: ``(B,)`` bool; other images are returned unchanged.
        sync_free: default :func:`sync_free_by_default` of the images' device.

    At step ``t`` every jittered image whose ``order[:, t]`` is op ``k`` goes through op ``k``.
    Indexed (the CPU): one call per (step, op) on the chosen images, four ops of work per image;
    each ``nonzero`` would wait for a GPU. Sync-free (accelerators): each (step, op) runs on the
    whole batch and a mask keeps it where chosen, sixteen ops of work per image and no wait.
    Both give the same images.
    """
    if sync_free is None:
        sync_free = sync_free_by_default(images.device)
    out = images.clone()
    for step in range(4):
        for op_id, op in enumerate(JITTER_OPS):
            out = _apply_to(out, apply & (order[:, step] == op_id), op, factors[:, op_id],
                            sync_free)
    return out


def rgb_to_grayscale(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> its luma replicated to 3 channels ``(B, 3, H, W)`` (an expanded
    view of one ``(B, 1, H, W)`` plane)."""
    return _gray(images).expand_as(images)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each image with its own Gaussian, separably, with reflect padding.

    Args:
        images: ``(B, C, H, W)`` float (``H, W > kernel_size // 2``).
        sigma: ``(B,)`` positive standard deviations in pixels.
        kernel_size: odd side of the kernel; taps ``exp(-x^2 / (2 sigma^2))`` at
            ``x = -(k-1)/2 .. (k-1)/2``, normalised (torchvision's kernel).

    Returns:
        ``(B, C, H, W)``: ``v2.functional.gaussian_blur(image, [k, k], [sigma, sigma])`` per
        image (a 2-D conv with the outer-product kernel equals the two 1-D passes).
    """
    n, c, height, width = images.shape
    half = (kernel_size - 1) / 2.0
    x = torch.linspace(-half, half, kernel_size, dtype=images.dtype, device=images.device)
    taps = torch.exp(-0.5 * (x[None, :] / sigma.to(images.dtype)[:, None]) ** 2)
    taps = (taps / taps.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, k)
    pad = kernel_size // 2
    flat = F.pad(images.reshape(1, n * c, height, width), [pad, pad, pad, pad], mode="reflect")
    flat = F.conv2d(flat, taps[:, None, None, :], groups=n * c)   # along W
    flat = F.conv2d(flat, taps[:, None, :, None], groups=n * c)   # along H
    return flat.reshape(n, c, height, width)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(images - mean) / std`` per channel of ``(B, 3, H, W)``."""
    m = _constant(tuple(mean), images.dtype, images.device).reshape(1, -1, 1, 1)
    s = _constant(tuple(std), images.dtype, images.device).reshape(1, -1, 1, 1)
    return (images - m) / s


# ------------------------------------------------------------------------------------------
# The whole pipeline
# ------------------------------------------------------------------------------------------


def _check_batch(images: Tensor) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"BatchAugment takes a (B, 3, H, W) uint8 batch, got "
                         f"{tuple(images.shape)} {images.dtype}")


def apply_params(images: Tensor, params: AugmentParams, spec: DatasetSpec,
                 sync_free: Optional[bool] = None) -> Tensor:
    """Augment ``images`` with fixed ``params``, before normalisation.

    Args:
        images: ``(B, 3, H, W)`` uint8.
        params: per-image parameters (:func:`sample_params`), on the images' device.
        spec: gives the output side ``S = spec.image_size`` (and the blur kernel).
        sync_free: masks instead of indexed subsets (:func:`color_jitter`); default
            :func:`sync_free_by_default` of the images' device. Same images either way.

    Returns:
        ``(B, 3, S, S)`` float32 in [0, 1] (blurred values may leave it by rounding only).
    """
    _check_batch(images)
    if sync_free is None:
        sync_free = sync_free_by_default(images.device)
    x = resized_crop(images, params.boxes, spec.image_size, params.flip, gain=1.0 / 255.0)
    x = x.clamp_(0.0, 1.0)
    x = color_jitter(x, params.factors, params.order, params.jitter, sync_free)
    x = _apply_to(x, params.gray, lambda im, _: rgb_to_grayscale(im), params.sigma, sync_free)
    if spec.blur:  # else no image is blurred (``params.blur`` is all False)
        kernel = blur_kernel_size(spec.image_size)
        x = _apply_to(x, params.blur, lambda im, sigma: gaussian_blur(im, sigma, kernel),
                      params.sigma, sync_free)
    return x


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` name one device: ``cuda`` without an index is the current CUDA
    device (``torch.Generator(device="cuda").device`` says ``cuda``, a tensor's says
    ``cuda:0``)."""
    def resolved(d: torch.device) -> tuple[str, Optional[int]]:
        if d.type == "cuda" and d.index is None:
            return d.type, torch.cuda.current_device()
        return d.type, d.index
    return resolved(a) == resolved(b)


class BatchAugment:
    """The pretraining augmentation of ``spec`` on whole batches (see the module docstring).

    ``aug(images, generator)``: ``(B, 3, H, W)`` uint8 (any ``H, W``; one size per batch) ->
    ``(B, 3, S, S)`` float32, normalised with ``spec.mean, spec.std``; every draw from
    ``generator``, which must live on the images' device.
    """

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def sample(self, n: int, height: int, width: int,
               generator: torch.Generator) -> AugmentParams:
        """Per-image parameters of ``n`` images of ``height x width`` (:func:`sample_params`)."""
        return sample_params(self.spec, n, height, width, generator)

    def apply(self, images: Tensor, params: AugmentParams, normalise: bool = True,
              sync_free: Optional[bool] = None) -> Tensor:
        """``images`` augmented with ``params`` (:func:`apply_params`, its ``sync_free``), then
        normalised."""
        x = apply_params(images, params, self.spec, sync_free)
        return normalize(x, self.spec.mean, self.spec.std) if normalise else x

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(images)
        if not same_device(generator.device, images.device):
            raise ValueError(f"the generator is on {generator.device}, the images on "
                             f"{images.device}: pass a generator on the images' device")
        n, _, height, width = images.shape
        return self.apply(images, self.sample(n, height, width, generator))

    def __repr__(self) -> str:
        return f"BatchAugment({self.spec.name}, size={self.spec.image_size})"


# ------------------------------------------------------------------------------------------
# Raw uint8 images for the batch path
# ------------------------------------------------------------------------------------------


def _array_rows(dataset: Dataset) -> tuple[Optional[ArrayDataset], Optional[np.ndarray]]:
    """The :class:`ArrayDataset` under ``dataset`` (itself, or under ``Subset`` wrappers) and
    the row of each of ``dataset``'s items in it; ``(None, None)`` for any other dataset."""
    rows: Optional[np.ndarray] = None
    while isinstance(dataset, Subset):
        idx = np.asarray(dataset.indices, dtype=np.int64)
        rows = idx if rows is None else idx[rows]
        dataset = dataset.dataset
    if isinstance(dataset, ArrayDataset):
        return dataset, rows
    return None, None


class RawImageDataset(Dataset):
    """The images of ``base`` as uint8 tensors, for :class:`BatchAugment`.

    ``dataset[i]`` is ``{"index": i, "image": (3, H, W) uint8, "label": y}``; batches (with
    :func:`collate_raw`) give ``image`` as ``(B, 3, H, W)`` uint8. An :class:`ArrayDataset`
    (also under ``Subset``) is read from its array directly; other datasets' PIL images are
    converted to RGB tensors.
    """

    def __init__(self, base: Dataset):
        self.base = base
        self._array, self._rows = _array_rows(base)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._array is not None:
            row = int(index if self._rows is None else self._rows[index])
            image = torch.from_numpy(self._array.images[row].transpose(2, 0, 1).copy())
            label = int(self._array.targets[row])
        else:
            from torchvision.transforms.functional import pil_to_tensor

            pil, label = self.base[index]
            image = pil_to_tensor(pil.convert("RGB"))
        return {"index": index, "image": image, "label": int(label)}


def collate_raw(items: list[dict[str, Any]]) -> dict[str, Tensor]:
    """Batch :class:`RawImageDataset` items: ``index (B,)``, ``image (B, 3, H, W)`` uint8,
    ``label (B,)``. Images of different sizes raise ``ValueError`` (the batch path needs one
    size per batch; ``pretrain.augment: pil`` takes any)."""
    sizes = sorted({tuple(item["image"].shape) for item in items})
    if len(sizes) > 1:
        shown = ", ".join("x".join(map(str, s[1:])) for s in sizes[:4])
        raise ValueError(f"pretrain.augment: batch needs images of one size per batch, got "
                         f"{len(sizes)} sizes ({shown}{', ...' if len(sizes) > 4 else ''}); "
                         f"use pretrain.augment: pil for datasets of mixed image sizes")
    return {"index": torch.tensor([item["index"] for item in items], dtype=torch.long),
            "image": torch.stack([item["image"] for item in items]),
            "label": torch.tensor([item["label"] for item in items], dtype=torch.long)}
