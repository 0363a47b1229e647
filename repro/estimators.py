"""Contrastive estimators: NCE / InfoNCE and the Ring (conditional NCE) bound.

Pure tensor functions. Inputs are *similarities* (dot products of L2-normalised embeddings, so
in ``[-1, 1]``); the temperature ``tau`` turns them into logits ``s / tau``.

For an anchor ``x_i`` with positive ``y_i`` and negatives ``y_{i,1..K}`` the InfoNCE objective
(paper, Eq. 1 with the positive kept in the normaliser, as in the authors' code) is

    L_i = -log( exp(s_i+ / tau) / (exp(s_i+ / tau) + sum_j exp(s_ij / tau)) )

and ``log(K + 1) - L_i`` is its lower bound on the mutual information ``I(X; Y)``. Ring / CNCE
(paper, Eq. 3) has the same form, but draws the negatives from the conditional distribution
``q(y | x_i)``: the candidates whose similarity to ``x_i`` lies in the ring ``[w_l, w_u]``.
Theorem 1 of the paper: ``I_CNCE <= I_NCE <= I(X; Y)``; harder negatives give a looser (more
biased) bound with lower variance.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from repro.samplers import ring_indices

__all__ = [
    "contrastive_logits",
    "info_nce_loss",
    "ring_nce_loss",
    "mi_lower_bound",
]


def _check(pos: Tensor, neg: Tensor, temperature: float) -> None:
    if pos.dim() != 1:
        raise ValueError(f"positive similarities must be (B,), got shape {tuple(pos.shape)}")
    if neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(
            f"negative similarities must be (B, K) with B={pos.shape[0]}, got {tuple(neg.shape)}"
        )
    if neg.shape[1] == 0:
        raise ValueError("no negatives: K must be at least 1")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def contrastive_logits(pos: Tensor, neg: Tensor, temperature: float) -> Tensor:
    """``(B, K + 1)`` logits with the positive in column 0.

    Args:
        pos: ``(B,)`` anchor-positive similarities.
        neg: ``(B, K)`` anchor-negative similarities.
        temperature: ``tau > 0``.
    """
    _check(pos, neg, temperature)
    return torch.cat([pos.unsqueeze(1), neg], dim=1) / temperature


def info_nce_loss(
    pos: Tensor, neg: Tensor, temperature: float = 0.07, reduction: str = "mean"
) -> Tensor:
    """InfoNCE loss (paper, Eq. 1), positive in the normaliser.

    Args:
        pos: ``(B,)`` anchor-positive similarities.
        neg: ``(B, K)`` anchor-negative similarities, whichever sampler chose them.
        temperature: ``tau > 0``.
        reduction: ``"mean"`` (scalar) or ``"none"`` (``(B,)``).

    Returns:
        The loss; equal to ``log(K + 1)`` when every similarity is the same.
    """
    logits = contrastive_logits(pos, neg, temperature)
    per_anchor = torch.logsumexp(logits, dim=1) - logits[:, 0]
    if reduction == "none":
        return per_anchor
    if reduction == "mean":
        return per_anchor.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def ring_nce_loss(
    pos: Tensor,
    pool_sims: Tensor,
    w_l: float,
    w_u: float,
    temperature: float = 0.07,
    num_negatives: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Tensor:
    """Ring / conditional NCE loss (paper, Eq. 3) from similarities to a whole pool.

    Args:
        pos: ``(B,)`` anchor-positive similarities.
        pool_sims: ``(B, N)`` similarities of each anchor to every candidate of the pool.
        w_l, w_u: ring percentiles (convention in :mod:`repro.samplers`).
        temperature: ``tau > 0``.
        num_negatives: ``K`` negatives drawn from each ring (IR, CMC), or ``None`` for the
            whole ring (MoCo, SimCLR).
        generator: RNG for the draw.
        reduction: ``"mean"`` or ``"none"``.

    With ``(w_l, w_u) = (0, 1)`` this is :func:`info_nce_loss` over uniformly drawn negatives,
    draw for draw. Gradients flow through the chosen similarities, not through the choice.
    """
    idx = ring_indices(pool_sims, w_l, w_u, num_negatives, generator)
    return info_nce_loss(pos, pool_sims.gather(1, idx), temperature, reduction)


def mi_lower_bound(pos: Tensor, neg: Tensor, temperature: float = 1.0) -> Tensor:
    """InfoNCE / CNCE estimate of ``I(X; Y)`` in nats: ``log(K + 1) - mean loss``.

    With a critic ``f(x, y) = s / tau`` this is the bound of Oord et al. (2018) and, for ring
    negatives, the CNCE bound of the paper (Eq. 3, Theorem 1). Never above ``log(K + 1)``.
    """
    k = neg.shape[1]
    return math.log(k + 1) - info_nce_loss(pos, neg, temperature)

