"""Meta-Dataset episodes: variable way, variable shot, class-imbalanced support sets.

The sampler follows Triantafillou et al., "Meta-Dataset" (ICLR 2020), Sec. 3.2, in a
simplified form:

1. **Way.** ``N ~ U{min_way, ..., min(max_way, C)}`` over the ``C`` classes that have at least
   two examples (Meta-Dataset: ``U[5, min(50, C)]``). Classes are then drawn uniformly without
   replacement. *Simplified:* no ImageNet-hierarchy or Omniglot-alphabet structured class
   sampling, and no Meta-Dataset train/valid/test class split: every class of the loaded split is
   a candidate (a pretrained encoder has seen none of them).
2. **Query size** per class: ``q = min(max_query, min_c floor(|Im(c)| / 2))`` (``max_query=10``).
3. **Support size**: ``|S| = min(max_support, sum_c ceil(beta * min(max_support_per_class,
   |Im(c)| - q)))`` with ``beta ~ U(0, 1]`` (``max_support=500``, ``max_support_per_class=100``).
4. **Shots**: class proportions ``R_c ∝ exp(alpha_c) |Im(c)|`` with
   ``alpha_c ~ U[log 0.5, log 2)``, and ``k_c = min(floor(R_c (|S| - N)) + 1, |Im(c)| - q)``:
   every class gets at least one shot, shots are imbalanced.

``way`` / ``shot`` / ``query`` fix the respective quantity instead (e.g. the classic 5-way
5-shot 15-query protocol), each capped by what the sampled classes can provide.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

__all__ = [
    "EpisodeConfig",
    "Episode",
    "eligible_classes",
    "sample_way",
    "query_size",
    "support_size",
    "shots_per_class",
    "sample_episode",
]


@dataclass(frozen=True)
class EpisodeConfig:
    """Episode sampler settings (Meta-Dataset defaults; ``None`` = variable, as sampled)."""

    min_way: int = 5
    max_way: int = 50
    max_query: int = 10
    max_support: int = 500
    max_support_per_class: int = 100
    way: Optional[int] = None
    shot: Optional[int] = None
    query: Optional[int] = None

    def __post_init__(self) -> None:
        if self.min_way < 2 or self.max_way < self.min_way:
            raise ValueError(f"need 2 <= min_way <= max_way, got min_way={self.min_way}, "
                             f"max_way={self.max_way}")
        for name in ("max_query", "max_support", "max_support_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("way", "shot", "query"):
            value = getattr(self, name)
            if value is not None and value < (2 if name == "way" else 1):
                raise ValueError(f"{name} must be at least {2 if name == 'way' else 1} "
                                 f"(or None for variable), got {value}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Episode:
    """One episode: indices into the source's example pool and episode-local labels.

    Attributes:
        classes: ``(N,)`` the source labels of the episode's classes; episode label ``i`` is
            ``classes[i]``.
        support: ``(S,)`` pool indices of the support set.
        support_labels: ``(S,)`` episode labels in ``[0, N)``.
        query: ``(Q,)`` pool indices of the query set (``q`` per class).
        query_labels: ``(Q,)`` episode labels in ``[0, N)``.
    """

    classes: np.ndarray
    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray

    @property
    def way(self) -> int:
        return len(self.classes)


def eligible_classes(labels: np.ndarray, shot: Optional[int] = None) -> np.ndarray:
    """Sorted labels with at least two examples (one support, one query), or ``shot + 1`` for
    fixed-shot episodes (every support set full, one query left)."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return values[counts >= (2 if shot is None else shot + 1)]


def sample_way(num_classes: int, rng: np.random.Generator, config: EpisodeConfig) -> int:
    """``N ~ U{min_way, ..., min(max_way, C)}``, or ``config.way`` (refused when above ``C``:
    the record would name a way it did not run).

    When the source has fewer than ``min_way`` classes, every class is used (``N = C``).
    """
    if num_classes < 2:
        raise ValueError(f"a few-shot episode needs at least 2 classes with 2+ examples each, "
                         f"the source has {num_classes}")
    if config.way is not None:
        if config.way > num_classes:  # a record saying "50-way" must be 50-way
            raise ValueError(f"{config.way}-way episodes need {config.way} classes with 2+ "
                             f"examples each; the source has {num_classes}: lower --way")
        return config.way
    high = min(config.max_way, num_classes)
    low = min(config.min_way, high)
    return int(rng.integers(low, high + 1))


def query_size(class_counts: np.ndarray, max_query: int) -> int:
    """``q = min(max_query, min_c floor(|Im(c)| / 2))``, at least 1 (counts are >= 2)."""
    return max(1, min(max_query, int(np.min(class_counts)) // 2))


def support_size(class_counts: np.ndarray, q: int, rng: np.random.Generator,
                 max_support: int = 500, max_support_per_class: int = 100) -> int:
    """``|S| = min(max_support, sum_c ceil(beta * min(max_support_per_class, |Im(c)| - q)))``,
    ``beta ~ U(0, 1]``; at least one per class."""
    beta = 1.0 - rng.random()  # U(0, 1]
    available = np.minimum(max_support_per_class, np.asarray(class_counts) - q)
    total = int(np.sum(np.ceil(beta * available)))
    return max(len(class_counts), min(max_support, total))


def shots_per_class(class_counts: np.ndarray, q: int, total_support: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``k_c = min(floor(R_c (|S| - N)) + 1, |Im(c)| - q)``, ``R_c ∝ exp(alpha_c) |Im(c)|``,
    ``alpha_c ~ U[log 0.5, log 2)``. Returns ``(N,)`` shots, each >= 1."""
    counts = np.asarray(class_counts, dtype=np.float64)
    alpha = rng.uniform(math.log(0.5), math.log(2.0), size=len(counts))
    weights = np.exp(alpha) * counts
    proportions = weights / weights.sum()
    shots = np.floor(proportions * (total_support - len(counts))).astype(np.int64) + 1
    return np.minimum(shots, (counts - q).astype(np.int64))


def sample_episode(labels: np.ndarray, rng: np.random.Generator,
                   config: EpisodeConfig = EpisodeConfig()) -> Episode:
    """Sample one episode from a pool with ``(P,)`` integer ``labels`` (see the module doc).

    Support and query sets of a class are disjoint.
    """
    labels = np.asarray(labels)
    candidates = eligible_classes(labels, config.shot)
    if config.shot is not None and len(candidates) < 2:
        raise ValueError(f"{config.shot}-shot episodes need classes with at least "
                         f"{config.shot + 1} examples; the source has {len(candidates)}")
    way = sample_way(len(candidates), rng, config)
    classes = np.sort(rng.choice(candidates, size=way, replace=False))
    members = [np.flatnonzero(labels == c) for c in classes]
    counts = np.array([len(m) for m in members])
    if config.shot is not None:
        # The fixed support size comes first (Meta-Dataset's compute_num_query): the queries
        # get what the smallest class has left, so a "5-shot" record is 5-shot.
        q = min(config.query or config.max_query, int(counts.min()) - config.shot)
        shots = np.full(way, config.shot)
    elif config.query is not None:
        q = max(1, min(config.query, int(counts.min()) - 1))
    else:
        q = query_size(counts, config.max_query)
    if config.shot is None:
        total = support_size(counts, q, rng, config.max_support, config.max_support_per_class)
        shots = shots_per_class(counts, q, total, rng)
    support, support_labels, query, query_labels = [], [], [], []
    for i, (idx, k) in enumerate(zip(members, shots)):
        order = rng.permutation(idx)
        query.append(order[:q])
        support.append(order[q:q + int(k)])
        query_labels.append(np.full(q, i))
        support_labels.append(np.full(int(k), i))
    return Episode(classes=classes, support=np.concatenate(support),
                   support_labels=np.concatenate(support_labels), query=np.concatenate(query),
                   query_labels=np.concatenate(query_labels))
