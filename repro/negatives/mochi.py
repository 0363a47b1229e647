"""MoCHi: hard negative mixing (Kalantidis, Sariyildiz, Pion, Weinzaepfel, Larlus, NeurIPS 2020).

For each anchor ``q`` (L2-normalised, ``(D,)``) and a pool of candidates ``c_1..c_P`` (MoCo's
queue, IR's / CMC's memory bank), let ``H(q)`` be the ``N`` candidates most similar to ``q``.
MoCHi keeps the pool's own negatives (drawn uniformly, as plain NCE) and adds, for that step
only,

- ``s`` mixes of two hard negatives: ``h = normalize(alpha c_a + (1 - alpha) c_b)`` with
  ``c_a, c_b`` drawn uniformly from ``H(q)`` and ``alpha ~ U(0, 1)``;
- ``s'`` mixes of the query with one hard negative: ``h' = normalize(beta q + (1 - beta) c_b)``
  with ``beta ~ U(0, 0.5)`` (the query's share stays below one half).

The synthetic points are constants in the loss, like the pool entries they are mixed from; the
gradient reaches ``q`` through ``q . h`` only. The paper's notation is ``(N, s, s')``: e.g.
``(1024, 512, 256)`` on ImageNet with a 65,536-key queue (config/paper.yaml's extension grid).

MoCHi needs the pool's *embeddings*: SimCLR's per-anchor pools of in-batch similarities do not
have them, so :func:`repro.models.build_model` refuses it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from repro.samplers import NegativeSampler, register_sampler, uniform_indices

__all__ = ["MochiSampler", "mix_hard_negatives"]

QUERY_SHARE_MAX = 0.5  # beta ~ U(0, 0.5): the query never dominates its synthetic negative


@torch.no_grad()
def mix_hard_negatives(anchors: Tensor, pool: Tensor, n_hard: int, s: int, s_prime: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """``(B, s + s', D)`` L2-normalised synthetic negatives, no gradient.

    Args:
        anchors: ``(B, D)`` L2-normalised queries ``q``.
        pool: ``(P, D)`` L2-normalised candidates.
        n_hard: ``N``, how many of each anchor's most similar candidates are mixed
            (``min(N, P)`` are).
        s: mixes of two hard candidates per anchor.
        s_prime: mixes of the anchor with one hard candidate per anchor.
        generator: RNG of the pairs and the mixing coefficients.
    """
    batch_size, device = anchors.shape[0], anchors.device
    n = min(int(n_hard), pool.shape[0])
    hard = torch.topk(anchors @ pool.t(), n, dim=1).indices  # (B, N)

    def pick(count: int) -> Tensor:  # (B, count) pool indices drawn from each anchor's H(q)
        slots = torch.randint(0, n, (batch_size, count), generator=generator, device=device)
        return hard.gather(1, slots)

    parts = []
    if s > 0:
        alpha = torch.rand(batch_size, s, 1, generator=generator, device=device)
        parts.append(alpha * pool[pick(s)] + (1.0 - alpha) * pool[pick(s)])
    if s_prime > 0:
        beta = QUERY_SHARE_MAX * torch.rand(batch_size, s_prime, 1, generator=generator,
                                            device=device)
        parts.append(beta * anchors[:, None, :] + (1.0 - beta) * pool[pick(s_prime)])
    return F.normalize(torch.cat(parts, dim=1), dim=2)


@register_sampler
@dataclass(frozen=True)
class MochiSampler(NegativeSampler):
    """Uniform negatives from the pool plus MoCHi's ``s + s'`` synthetic hard ones.

    Args:
        n_hard: ``N``, the hardest candidates mixed.
        s: synthetic mixes of two hard negatives per anchor.
        s_prime: synthetic mixes of the anchor with a hard negative per anchor.
        num_negatives: ``K`` pool negatives per anchor (IR, CMC); ``None`` = the whole pool.
    """

    n_hard: int = 1024
    s: int = 512
    s_prime: int = 256
    num_negatives: Optional[int] = None
    needs_similarities = False
    synthesizes = True
    name = "mochi"

    def __post_init__(self) -> None:
        if self.n_hard < 1:
            raise ValueError(f"n_hard (N) must be at least 1, got {self.n_hard}")
        if self.s < 0 or self.s_prime < 0 or self.s + self.s_prime == 0:
            raise ValueError(f"s and s_prime must be >= 0 and not both 0, got s={self.s}, "
                             f"s_prime={self.s_prime}")

    def select(self, sims, *, batch_size, pool_size, progress=1.0, generator=None, device="cpu"):
        return uniform_indices(batch_size, pool_size, self.num_negatives, generator, device)

    def synthesize(self, anchors: Tensor, pool: Tensor, *, progress: float = 1.0,
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """``(B, s + s')`` similarities of each anchor to its synthetic negatives (gradient
        through the anchors only)."""
        mixed = mix_hard_negatives(anchors.detach(), pool, self.n_hard, self.s, self.s_prime,
                                   generator)
        return torch.einsum("bd,bkd->bk", anchors, mixed)

    def params(self, progress: float = 1.0) -> dict[str, Any]:
        return {"sampler": self.name, "n_hard": self.n_hard, "s": self.s,
                "s_prime": self.s_prime, "num_negatives": self.num_negatives}

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        """``MoCHi (N, s, s')`` in the paper's notation."""
        return (f"MoCHi ({options.get('n_hard', cls.n_hard)}, {options.get('s', cls.s)}, "
                f"{options.get('s_prime', cls.s_prime)})")
