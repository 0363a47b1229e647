"""How many of the negatives a similarity-percentile band offers share the anchor's class.

Ring draws each anchor's negatives from the ring ``[w_l, w_u]`` of its similarity distribution
over the pool (:mod:`repro.samplers`). Training never sees labels, so a "hard" negative can be
an image of the anchor's own class: a *false negative*, which the loss pushes away although a
classifier would want it close. With labels, this module measures how often that happens in
each percentile band of the pool, under a trained (or untrained) embedding.

For ``N`` images with labels ``y``, embedded as anchors ``a_i`` and as pool entries ``c_j``
(:meth:`repro.models.base.ContrastiveModel.pool_embeddings`: the pool of IR, CMC and MoCo holds
other embeddings than the anchors'), each anchor's pool is the other ``N - 1`` images
(``j != i``: the image itself is the positive, not a negative), ranked by ``a_i . c_j``. The band
``[e_k, e_{k+1}]`` of percentile edges ``e`` is the ranks ``[n_above(e_{k+1}), n_above(e_k))``
of :func:`repro.samplers.n_above`: the ring ``[e_k, e_{k+1}]`` exactly as the ring sampler
cuts it, and consecutive bands partition the pool. Per band, over the anchors,

    same[k]  = sum_i |{j in band k of i : y_j = y_i}|,     total[k] = sum_i |band k of i|,

so the band's same-class rate is ``same[k] / total[k]`` and a ring made of whole bands has
rate ``sum same / sum total`` over its bands (:meth:`SameClassCounts.rate`). A uniform
sampler's negatives share the anchor's class at the *base rate* ``sum_c n_c (n_c - 1) /
(N (N - 1))`` over all bands (10% for ten balanced classes, minus a little).

This is a diagnostic of the final embedding on un-augmented images, not of the pool during
training: IR's bank holds momentum averages of augmented views, MoCo's queue keys of recent
batches. Pure functions of tensors; :mod:`repro.linear_eval` calls it on the training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

if TYPE_CHECKING:  # torch is imported where it computes: the report reads counts without it
    from torch import Tensor

__all__ = ["PERCENTILE_EDGES", "MAX_ANCHORS", "SameClassCounts", "same_class_counts",
           "base_rate"]

PERCENTILE_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99,
                                       1.0)
"""Band edges: the deciles, with the top decile split at 0.99, so the paper's ring
``[0.9, 0.99]`` and the excluded top 1% ``[0.99, 1]`` are bands, and ``[0.5, 0.99]`` is a union
of bands."""

MAX_ANCHORS = 2000
"""Anchors drawn (without replacement, seeded) where the training set is larger; the pool is
always every image. 2,000 anchors give each band's rate to within about a point."""


@dataclass(frozen=True)
class SameClassCounts:
    """Per band ``[edges[k], edges[k+1]]``: ``same[k]`` same-class negatives out of
    ``total[k]``, summed over ``anchors`` anchors."""

    edges: tuple[float, ...]
    same: tuple[int, ...]
    total: tuple[int, ...]
    anchors: int

    def __post_init__(self) -> None:
        if not len(self.same) == len(self.total) == len(self.edges) - 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) - 1} bands, got "
                             f"{len(self.same)} same-class and {len(self.total)} total counts")

    def rate(self, w_l: float = 0.0, w_u: float = 1.0) -> Optional[float]:
        """Same-class fraction of the ring ``[w_l, w_u]``, which must start and end on band
        edges; ``None`` where the ring holds no candidate."""
        if w_l not in self.edges or w_u not in self.edges or not w_l < w_u:
            raise ValueError(f"the ring [{w_l}, {w_u}] is not a union of the bands "
                             f"{list(self.edges)}")
        lo, hi = self.edges.index(w_l), self.edges.index(w_u)
        total = sum(self.total[lo:hi])
        return sum(self.same[lo:hi]) / total if total else None

    def rates(self) -> list[Optional[float]]:
        """Each band's same-class fraction (``None`` for an empty band)."""
        return [s / t if t else None for s, t in zip(self.same, self.total)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"edges", "same", "total", "anchors"}``."""
        return {"edges": list(self.edges), "same": list(self.same), "total": list(self.total),
                "anchors": self.anchors}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SameClassCounts":
        """The inverse of :meth:`to_dict`."""
        return cls(tuple(float(e) for e in data["edges"]), tuple(int(s) for s in data["same"]),
                   tuple(int(t) for t in data["total"]), int(data["anchors"]))


def base_rate(labels: Tensor) -> float:
    """Fraction of ordered pairs of distinct images that share a class:
    ``sum_c n_c (n_c - 1) / (N (N - 1))``, what uniform negatives give."""
    import torch

    n = labels.numel()
    if n < 2:
        raise ValueError(f"need at least 2 labelled images, got {n}")
    counts = torch.bincount(labels.long()).double()
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def same_class_counts(anchors: Tensor, candidates: Tensor, labels: Tensor,
                      edges: Sequence[float] = PERCENTILE_EDGES, *,
                      max_anchors: Optional[int] = MAX_ANCHORS, seed: int = 0,
                      chunk: int = 128) -> SameClassCounts:
    """Same-class negatives per similarity-percentile band (see the module docstring).

    Args:
        anchors: ``(N, D)`` image ``i`` embedded as an anchor.
        candidates: ``(N, D)`` image ``j`` embedded as a pool entry.
        labels: ``(N,)`` class indices.
        edges: increasing percentiles from 0 to 1.
        max_anchors: use this many anchors, drawn without replacement by a generator seeded
            with ``seed``, where ``N`` is larger; ``None``: every image.
        chunk: anchors ranked at a time (memory: ``chunk x N`` similarities).
    """
    import torch

    from repro.samplers import n_above

    n = candidates.shape[0]
    if anchors.shape[0] != n or labels.shape[0] != n or anchors.dim() != 2:
        raise ValueError(f"anchors {tuple(anchors.shape)}, candidates "
                         f"{tuple(candidates.shape)} and labels {tuple(labels.shape)} must "
                         f"describe the same N images")
    if n < 2:
        raise ValueError(f"need at least 2 images for a pool of negatives, got {n}")
    edges = tuple(float(e) for e in edges)
    if edges[0] != 0.0 or edges[-1] != 1.0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must increase from 0 to 1, got {list(edges)}")
    if max_anchors is not None and n > max_anchors:
        gen = torch.Generator().manual_seed(seed)
        rows = torch.randperm(n, generator=gen)[:max_anchors].sort().values
    else:
        rows = torch.arange(n)
    # descending-similarity rank where each band starts, over a pool of the n - 1 others
    starts = [n_above(e, n - 1) for e in edges]  # decreasing: band k is [starts[k+1], starts[k])
    anchors, candidates = anchors.detach().float(), candidates.detach().float()
    labels = labels.long().to(candidates.device)
    same = torch.zeros(len(edges) - 1, dtype=torch.long)
    for begin in range(0, len(rows), chunk):
        part = rows[begin:begin + chunk].to(candidates.device)
        sims = anchors[part] @ candidates.T  # (b, N)
        sims[torch.arange(len(part), device=sims.device), part] = float("-inf")  # self last
        order = sims.argsort(dim=1, descending=True)[:, :n - 1]
        hits = (labels[order] == labels[part].unsqueeze(1)).long()
        # same-class count among ranks [0, r) for every r: cum[:, r]
        cum = torch.nn.functional.pad(hits.cumsum(1), (1, 0))
        for k in range(len(edges) - 1):
            same[k] += int((cum[:, starts[k]] - cum[:, starts[k + 1]]).sum())
    total = tuple(len(rows) * (starts[k] - starts[k + 1]) for k in range(len(edges) - 1))
    return SameClassCounts(edges, tuple(int(s) for s in same), total, len(rows))
