"""Frozen, L2-normalised features of an image pool, with the pretraining run's preprocessing."""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "preprocessing_for", "encode_images"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocessing_for(state: Mapping[str, Any],
                      image_size: Optional[int] = None) -> dict[str, Any]:
    """Input resolution and normalisation matching a pretraining checkpoint.

    Mean / std come from the pretraining dataset's spec (``repro.data.input_spec``, with the
    run's ``pretrain.image_size`` when it sets one), ImageNet's when that dataset is unknown.
    The resolution is ``image_size`` when given, else the spec's ``image_size`` (when it has
    one), else 32 for a CIFAR-stem backbone and 84 (Meta-Dataset's resolution) otherwise.

    Returns:
        ``{"image_size": int, "mean": (3,), "std": (3,), "stats_from": str}``.
    """
    dataset = (state.get("config") or {}).get("dataset")
    mean, std, spec_size, stats_from = IMAGENET_MEAN, IMAGENET_STD, None, "imagenet"
    try:
        from repro.data import input_spec

        # the run's own crop size when its pretrain settings override the dataset's
        spec = input_spec(dataset, (state.get("config") or {}).get("pretrain"))
        mean, std = tuple(map(float, spec.mean)), tuple(map(float, spec.std))
        spec_size, stats_from = getattr(spec, "image_size", None), str(dataset)
    except (ImportError, KeyError, ValueError, TypeError, AttributeError):
        pass
    if image_size is None:
        cifar_stem = bool((state.get("backbone") or {}).get("cifar_stem", False))
        image_size = int(spec_size) if spec_size else (32 if cifar_stem else 84)
    return {"image_size": int(image_size), "mean": tuple(mean), "std": tuple(std),
            "stats_from": stats_from}


@torch.no_grad()
def encode_images(encoder: Callable[[Tensor], Tensor], images: np.ndarray,
                  mean: Sequence[float], std: Sequence[float], *, batch_size: int = 256,
                  device: str | torch.device = "cpu", progress: bool = False,
                  precision: str = "fp32") -> np.ndarray:
    """Frozen features of ``(P, S, S, 3)`` uint8 images, L2-normalised.

    Each batch is scaled to [0, 1], normalised with ``mean`` / ``std`` and passed through
    ``encoder`` (``(B, 3, S, S)`` -> ``(B, F)``), under ``precision``'s autocast
    (:func:`repro.precision.autocast`: ``bf16`` on CUDA for a bf16 run; the features come back
    float32 either way).

    Returns:
        ``(P, F)`` float32, unit-norm rows.
    """
    from repro.precision import autocast

    device = torch.device(device)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="features", file=sys.stderr, mininterval=1.0, leave=False)
    out = []
    for start in starts:
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        x = batch.to(device).permute(0, 3, 1, 2).float().div_(255.0)
        with autocast(precision, device):
            feats = encoder((x - mean_t) / std_t).float()
        out.append(F.normalize(feats.flatten(1), dim=1).cpu())
    return torch.cat(out).numpy()
