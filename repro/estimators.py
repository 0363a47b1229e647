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

Beyond the paper, two estimators that reweight the negatives instead of choosing them:

- Debiased contrastive learning, DCL (Chuang, Robinson, Lin, Torralba, Jegelka, NeurIPS 2020,
  Eq. 6): with class prior ``tau_plus`` (the chance that a "negative" shares the anchor's
  latent class), the negative term ``sum_j exp(s_ij / tau)`` becomes

      Ng_i = max( (sum_j exp(s_ij / tau) - tau_plus K exp(s_i+ / tau)) / (1 - tau_plus),
                  K exp(-1 / tau) )

  (the floor is the value every term takes at the least similarity, -1).
- Hard-negative reweighting, HCL (Robinson, Chuang, Sra, Jegelka, ICLR 2021, Eq. 3 and its
  released criterion): each negative term is weighted by ``exp(beta s_ij / tau)`` normalised by
  the weights' mean over the anchor's negatives before the debiasing above (``beta = 0`` is DCL).

Both return ``mean_i -log(exp(s_i+ / tau) / (exp(s_i+ / tau) + Ng_i))``; with ``tau_plus = 0``
and ``beta = 0`` the floor never binds and this is :func:`info_nce_loss`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import Tensor

from repro.samplers import ring_indices

__all__ = [
    "contrastive_logits",
    "info_nce_loss",
    "ring_nce_loss",
    "debiased_nce_loss",
    "hard_nce_loss",
    "mi_lower_bound",
    "Estimator",
    "ESTIMATORS",
    "build_estimator",
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


def hard_nce_loss(pos: Tensor, neg: Tensor, temperature: float, tau_plus: float,
                  beta: float) -> Tensor:
    """HCL: hard-negative reweighted, debiased InfoNCE (Robinson et al., ICLR 2021, Eq. 3).

    Args:
        pos: ``(B,)`` anchor-positive similarities.
        neg: ``(B, K)`` anchor-negative similarities (uniformly drawn, as in HCL).
        temperature: ``tau > 0``.
        tau_plus: class prior in ``[0, 1)``: the probability that a negative is a positive.
        beta: concentration ``>= 0`` of the weights ``exp(beta s_ij / tau)`` (0: uniform).

    Returns:
        The mean over anchors of ``-log(P_i / (P_i + Ng_i))`` with ``P_i = exp(s_i+ / tau)``,

            R_i  = sum_j w_ij exp(s_ij / tau),
            w_ij = exp(beta s_ij / tau) / mean_j exp(beta s_ij / tau),
            Ng_i = max((R_i - tau_plus K P_i) / (1 - tau_plus), K exp(-1 / tau)).

    Computed with every exponential shifted by the anchor's largest logit, so small
    temperatures do not overflow; gradients flow through the weights, as in the released code.
    """
    _check(pos, neg, temperature)
    if not 0.0 <= tau_plus < 1.0:
        raise ValueError(f"tau_plus must be in [0, 1), got {tau_plus}")
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    k = neg.shape[1]
    pos_logit, neg_logit = pos / temperature, neg / temperature
    shift = torch.maximum(pos_logit, neg_logit.max(dim=1).values).detach()  # (B,)
    weights = torch.softmax(beta * neg_logit, dim=1) * k  # exp(beta s / tau) / their mean
    reweighted = (weights * torch.exp(neg_logit - shift[:, None])).sum(dim=1)
    positive = torch.exp(pos_logit - shift)
    negative = (reweighted - tau_plus * k * positive) / (1.0 - tau_plus)
    floor = torch.exp(math.log(k) - 1.0 / temperature - shift)
    negative = torch.maximum(negative, floor)
    return (torch.log(positive + negative) - (pos_logit - shift)).mean()


def debiased_nce_loss(pos: Tensor, neg: Tensor, temperature: float, tau_plus: float) -> Tensor:
    """DCL: debiased InfoNCE (Chuang et al., NeurIPS 2020, Eq. 6 with the released floor).

    Args:
        pos: ``(B,)`` anchor-positive similarities.
        neg: ``(B, K)`` anchor-negative similarities.
        temperature: ``tau > 0``.
        tau_plus: class prior in ``[0, 1)``.

    Returns:
        The mean over anchors of ``-log(P_i / (P_i + Ng_i))``, ``P_i = exp(s_i+ / tau)`` and
        ``Ng_i = max((sum_j exp(s_ij / tau) - tau_plus K P_i) / (1 - tau_plus), K exp(-1 / tau))``:
        :func:`hard_nce_loss` with uniform weights (``beta = 0``).
    """
    return hard_nce_loss(pos, neg, temperature, tau_plus, beta=0.0)


def mi_lower_bound(pos: Tensor, neg: Tensor, temperature: float = 1.0) -> Tensor:
    """InfoNCE / CNCE estimate of ``I(X; Y)`` in nats: ``log(K + 1) - mean loss``.

    With a critic ``f(x, y) = s / tau`` this is the bound of Oord et al. (2018) and, for ring
    negatives, the CNCE bound of the paper (Eq. 3, Theorem 1). Never above ``log(K + 1)``.
    """
    k = neg.shape[1]
    return math.log(k + 1) - info_nce_loss(pos, neg, temperature)



# --------------------------------------------------------------------------------------------
# Registry: a sampler label's ``estimator: {name: ..., <options>}`` block (absent = nce)

Loss = Callable[[Tensor, Tensor, float], Tensor]


@dataclass(frozen=True)
class Estimator:
    """A registered estimator.

    Attributes:
        loss: ``loss(pos (B,), neg (B, K), temperature, **options) -> scalar``.
        options: the keyword options a config must give (no hidden defaults).
        uniform_negatives: derived for negatives drawn from the data distribution (DCL and
            HCL debias and reweight *uniform* draws); refused with a conditional sampler (one
            that chooses by similarity, such as the ring).
        label: how tables and figures name it.
    """

    loss: Callable[..., Tensor]
    options: tuple[str, ...]
    uniform_negatives: bool
    label: str


ESTIMATORS: dict[str, Estimator] = {
    "nce": Estimator(info_nce_loss, (), False, "InfoNCE"),
    "debiased": Estimator(debiased_nce_loss, ("tau_plus",), True, "DCL"),
    "hard": Estimator(hard_nce_loss, ("tau_plus", "beta"), True, "HCL"),
}


def build_estimator(config: Optional[Mapping[str, Any]] = None) -> Loss:
    """``loss(pos, neg, temperature)`` from a config block such as ``{"name": "hard",
    "tau_plus": 0.1, "beta": 1.0}``; ``None`` is InfoNCE. Unknown names and missing or extra
    options raise ``ValueError``."""
    options = dict(config or {})
    name = options.pop("name", "nce")
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    wanted = ESTIMATORS[name].options
    missing, extra = sorted(set(wanted) - set(options)), sorted(set(options) - set(wanted))
    if missing or extra:
        raise ValueError(f"estimator {name!r} takes exactly the options {list(wanted)}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; unknown {extra}" if extra else ""))
    loss = ESTIMATORS[name].loss
    return functools.partial(loss, **options) if options else loss
