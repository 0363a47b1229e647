"""Numeric precision of a run (``pretrain.precision``): autocast, loss scaling, fp32 regions.

``fp32`` (the default) runs everything in float32, as before this setting existed: no
autocast, no scaler, and a run's identity without the key (:func:`repro.config.run_identity`).
``bf16`` and ``fp16`` autocast the forward pass (convolutions, linear layers) while the weights,
the optimiser state, banks and queues stay float32 (master weights); ``fp16`` also scales the
loss (:class:`torch.amp.GradScaler`) and needs CUDA. The contrastive part of every step
(similarities to the pool, the ring's percentile selection, the estimator) runs in float32
inside :func:`fp32_region`, so bf16 rounding never creates ties that would move the ring.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager, Iterator, Mapping, Optional

import torch

from repro.config import DEFAULT_PRECISION, PRECISIONS

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "precision_of", "autocast", "fp32_region",
           "grad_scaler", "uses_channels_last", "inference_precision"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision_of(settings: Mapping[str, Any]) -> str:
    """``settings["precision"]`` (a pretrain block or a run spec's ``pretrain``), absent =
    :data:`DEFAULT_PRECISION`; an unknown value raises ``ValueError``."""
    precision = settings.get("precision") or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    return precision


def _check_device(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device (loss scaling with GradScaler); "
                         "use bf16 or fp32 on the CPU")


def autocast(precision: str, device: torch.device) -> ContextManager[Any]:
    """The context a forward pass runs in: nothing for ``fp32``, else ``torch.autocast`` to
    bf16 / fp16 on ``device``'s type. ``fp16`` off CUDA raises ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    if precision == DEFAULT_PRECISION:
        return nullcontext()
    _check_device(precision, device)
    return torch.autocast(device.type, dtype=_DTYPES[precision])


@contextmanager
def fp32_region(device_type: str) -> Iterator[None]:
    """Turn autocast off for ``device_type`` within the block (a no-op when it is off), so
    matrix products of float32 inputs stay float32. Callers cast their inputs with
    ``.float()`` (a no-op on float32 tensors): fp32 runs compute exactly what they did."""
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):
            yield
    else:
        yield


def grad_scaler(precision: str, device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A loss scaler for ``fp16`` (CUDA), ``None`` otherwise (bf16 has fp32's exponent range)."""
    if precision != "fp16":
        return None
    _check_device(precision, device)
    return torch.amp.GradScaler(device.type)


def inference_precision(run_spec: Mapping[str, Any], device: torch.device) -> str:
    """The precision frozen features of a pretrained run are computed in (linear evaluation,
    few-shot): the run's own ``pretrain.precision`` on CUDA, ``fp32`` elsewhere (CPU features
    stay exactly as they were)."""
    if device.type != "cuda":
        return DEFAULT_PRECISION
    return precision_of((run_spec or {}).get("pretrain") or {})


def uses_channels_last(precision: str, device: torch.device) -> bool:
    """Whether a run keeps its images and convolution weights channels-last: on CUDA with a
    reduced precision, where tensor-core convolutions prefer NHWC. fp32 keeps the default
    layout, so its numbers do not move."""
    return device.type == "cuda" and precision != DEFAULT_PRECISION
