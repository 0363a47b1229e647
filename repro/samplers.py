"""Negative samplers: which candidates of a pool become each anchor's negatives.

A pool holds ``N`` candidate embeddings (a memory bank over the dataset for IR and CMC, a FIFO
queue for MoCo, the other items of the batch for SimCLR). For a batch of ``B`` anchors, a sampler
returns a ``LongTensor`` of shape ``(B, M)``: for each anchor, the pool indices of its ``M``
negatives. The base model gathers the matching similarities and hands them to an estimator
(:mod:`repro.estimators`). Samplers never see the model; the model never knows which sampler
it has.

Percentile convention (used everywhere in this project)
------------------------------------------------------
Percentiles ``w`` are fractions in ``[0, 1]`` of each anchor's *ascending* similarity
distribution over the pool: ``w = 0`` is the least similar candidate, ``w = 1`` the most
similar. The ring ``[w_l, w_u]`` (paper, Sec. 3, the set ``S_B(x_i)``) keeps the candidates
whose similarity lies between the ``w_l``-th and the ``w_u``-th percentile. In whole
candidates: sort the pool by *descending* similarity (rank 0 = most similar) and keep the ranks

    [n_above(w_u), n_above(w_l))      with   n_above(w) = floor((1 - w) * N + 1e-6)

so ``(w_l, w_u) = (0, 1)`` is the whole pool (plain NCE), and ``(0.9, 1.0)`` the 10% most
similar. This is the authors' released convention written in percentiles: their ``thres_outer``
(fraction of the pool kept from the top) is ``1 - w_l``, and with ``dynamic_inner`` their
``thres_inner`` (fraction of the kept set dropped from the very top) gives
``w_u = 1 - thres_outer * thres_inner``. Ties are broken by ``torch.topk``.

``w_l`` can be annealed from ``w_l_start`` (0: everything below ``w_u``, which with ``w_u = 1``
is the whole pool, i.e. NCE) to its final value, so that early training, when embeddings are
random, does not draw meaningless "hard" negatives; ``w_u`` stays fixed. (The authors' code,
when it anneals, shrinks the excluded top fraction with the ring: ``w_u = 1 - 0.1 (1 - w_l)``;
their released configs do not anneal.) The annealing schedules are at the bottom of this module.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import Tensor

__all__ = [
    "NegativeSampler",
    "UniformSampler",
    "RingSampler",
    "ring_bounds",
    "n_above",
    "ring_indices",
    "uniform_indices",
    "anneal",
    "SCHEDULES",
    "W_U_RULES",
    "SAMPLERS",
    "register_sampler",
    "build_sampler",
]

_EPS = 1e-6


def _check_percentiles(w_l: float, w_u: float) -> None:
    for name, w in (("w_l", w_l), ("w_u", w_u)):
        if not isinstance(w, (int, float)) or math.isnan(w) or not 0.0 <= w <= 1.0:
            raise ValueError(f"ring percentile {name}={w!r} must be a number in [0, 1]")
    if w_l >= w_u:
        raise ValueError(
            f"ring needs w_l < w_u (the lower percentile below the upper one), "
            f"got w_l={w_l} and w_u={w_u}"
        )


def n_above(w: float, pool_size: int) -> int:
    """Number of candidates ranked above the ``w``-th percentile of a pool of ``pool_size``
    (``floor((1 - w) * N + 1e-6)``): descending-similarity ranks ``0 .. n_above - 1``."""
    return int(math.floor((1.0 - w) * pool_size + _EPS))


def ring_bounds(w_l: float, w_u: float, pool_size: int) -> tuple[int, int]:
    """Descending-similarity rank range ``[lo, hi)`` of the ring ``[w_l, w_u]``.

    Args:
        w_l: lower percentile in ``[0, 1)``.
        w_u: upper percentile in ``(0, 1]``, ``w_u > w_l``.
        pool_size: ``N``, the number of candidates.

    Returns:
        ``(lo, hi)`` with ``0 <= lo < hi <= N``: ranks ``lo .. hi-1`` (rank 0 = most similar)
        form the ring.

    Raises:
        ValueError: bad percentiles, or a ring that holds no candidate for this pool size.
    """
    _check_percentiles(w_l, w_u)
    if pool_size <= 0:
        raise ValueError(f"the candidate pool is empty (pool_size={pool_size})")
    lo, hi = n_above(w_u, pool_size), n_above(w_l, pool_size)
    if hi <= lo:
        raise ValueError(
            f"the ring [w_l={w_l}, w_u={w_u}] holds no candidate of a pool of {pool_size}: "
            f"widen the ring or enlarge the pool (it needs (w_u - w_l) * N >= 1)"
        )
    return lo, hi


def uniform_indices(
    batch_size: int,
    pool_size: int,
    num_negatives: Optional[int],
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``num_negatives`` pool indices per anchor, uniformly at random with replacement.

    This is the baseline NCE / InfoNCE proposal distribution ``p(y)``.

    Returns:
        ``(B, K)`` indices; with ``num_negatives=None`` the whole pool, ``(B, N)``, in order.
    """
    if pool_size <= 0:
        raise ValueError(f"the candidate pool is empty (pool_size={pool_size})")
    if num_negatives is None:
        return torch.arange(pool_size, device=device).expand(batch_size, pool_size)
    if num_negatives <= 0:
        raise ValueError(f"num_negatives must be positive, got {num_negatives}")
    return torch.randint(
        0, pool_size, (batch_size, num_negatives), generator=generator, device=device
    )


@torch.no_grad()
def _ring_band(sims: Tensor, lo: int, hi: int) -> Tensor:
    """``(B, hi - lo)`` pool indices of descending-similarity ranks ``lo .. hi-1``.

    Narrow top rings take ``topk(hi)`` and drop the first ``lo``. Wide rings instead remove the
    ``lo`` most and the ``N - hi`` least similar candidates (two small ``topk`` calls and a
    mask), so no call ever sorts the whole pool. Indices come out in descending order in the
    first case and in pool order in the second; samplers treat a ring as a set.
    """
    batch_size, pool_size = sims.shape
    if hi <= pool_size // 2:
        return torch.topk(sims, hi, dim=1, largest=True, sorted=True).indices[:, lo:]
    keep = torch.ones_like(sims, dtype=torch.bool)
    if lo > 0:
        top = torch.topk(sims, lo, dim=1, largest=True, sorted=False).indices
        keep.scatter_(1, top, False)
        # Ties must not let one candidate be removed twice: hide the removed ones.
        sims = sims.scatter(1, top, float("inf"))
    if hi < pool_size:
        bottom = torch.topk(sims, pool_size - hi, dim=1, largest=False, sorted=False).indices
        keep.scatter_(1, bottom, False)
    pool = torch.arange(pool_size, device=sims.device).expand(batch_size, pool_size)
    return pool[keep].view(batch_size, hi - lo)


def ring_indices(
    sims: Tensor,
    w_l: float,
    w_u: float,
    num_negatives: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Pool indices of each anchor's ring negatives (the conditional proposal ``q(y | x)``).

    Args:
        sims: ``(B, N)`` similarities between each anchor and every candidate of the pool.
        w_l, w_u: ring percentiles (see the module docstring for the convention).
        num_negatives: ``K`` negatives drawn uniformly with replacement from each ring (IR,
            CMC); ``None`` keeps the whole ring (MoCo, SimCLR).
        generator: RNG for the draw.

    Returns:
        ``(B, K)`` or, with ``num_negatives=None``, ``(B, hi - lo)`` pool indices.

    The ring is found with ``torch.topk`` calls, never a full sort of the pool. A ring that is the whole pool
    (``w_l = 0``, ``w_u = 1``) skips the ranking: it is then exactly :func:`uniform_indices`,
    draw for draw, so Ring reduces to NCE exactly.
    """
    if sims.dim() != 2:
        raise ValueError(f"sims must be (B, N), got shape {tuple(sims.shape)}")
    batch_size, pool_size = sims.shape
    lo, hi = ring_bounds(w_l, w_u, pool_size)
    if lo == 0 and hi == pool_size:
        return uniform_indices(batch_size, pool_size, num_negatives, generator, sims.device)
    band = _ring_band(sims.detach(), lo, hi)
    if num_negatives is None:
        return band
    pick = uniform_indices(batch_size, hi - lo, num_negatives, generator, sims.device)
    return band.gather(1, pick)


# --------------------------------------------------------------------------------------------
# Annealing schedules for w_l: pure functions of training progress in [0, 1].
# --------------------------------------------------------------------------------------------


def _constant(start: float, end: float, t: float, **_: Any) -> float:
    return end


def _linear(start: float, end: float, t: float, **_: Any) -> float:
    return start + (end - start) * t


def _step(start: float, end: float, t: float, *, num_steps: int = 10, **_: Any) -> float:
    # num_steps plateaus of equal length, evenly spaced from start to end, the last one (end)
    # held over the final 1/num_steps of the annealing window, as in the authors' released
    # step policy (w_l = 0, 0.1, ..., 0.9 for end = 0.9).
    level = min(math.floor(t * num_steps), num_steps - 1) / (num_steps - 1)
    return start + (end - start) * level


def _exponential(start: float, end: float, t: float, *, rate: float = 5.0, **_: Any) -> float:
    # Moves from start towards end with exp(-rate * t), renormalised to reach end at t = 1.
    frac = (1.0 - math.exp(-rate * t)) / (1.0 - math.exp(-rate))
    return start + (end - start) * frac


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": _constant,
    "linear": _linear,
    "step": _step,
    "exponential": _exponential,
}


def anneal(
    schedule: str,
    start: float,
    end: float,
    progress: float,
    anneal_fraction: float = 1.0,
    **kwargs: Any,
) -> float:
    """Value of an annealed parameter at a point of training.

    Args:
        schedule: one of :data:`SCHEDULES` (``constant``, ``linear``, ``step``, ``exponential``).
        start: value at ``progress = 0`` (``w_l = 0``: the whole pool, plain NCE).
        end: value once annealing is over (the ring's final ``w_l``).
        progress: fraction of training done, in ``[0, 1]``.
        anneal_fraction: fraction of training over which to anneal (the paper anneals over
            the first half: 100 of 200 epochs); afterwards the value stays at ``end``.
        **kwargs: schedule options (``num_steps`` for ``step``, ``rate`` for ``exponential``).

    ``constant`` returns ``end`` throughout (no annealing).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    if not 0.0 < anneal_fraction <= 1.0:
        raise ValueError(f"anneal_fraction must be in (0, 1], got {anneal_fraction}")
    t = min(max(progress / anneal_fraction, 0.0), 1.0)
    return SCHEDULES[schedule](start, end, t, **kwargs)


# --------------------------------------------------------------------------------------------
# Sampler objects: what a base model holds. Stateless apart from their configuration.
# --------------------------------------------------------------------------------------------


class NegativeSampler(ABC):
    """Chooses each anchor's negatives from a candidate pool.

    ``needs_similarities`` tells the base model whether it must compute the ``(B, N)``
    similarities to the whole pool before calling :meth:`select` (the uniform sampler does not,
    which keeps the IR baseline at ``K`` dot products per anchor).
    """

    needs_similarities: bool = True
    # True for samplers that also make synthetic negatives from the pool's embeddings
    # (:meth:`synthesize`, e.g. MoCHi); the model appends their similarities to the drawn ones
    synthesizes: bool = False
    name: str = "sampler"

    @abstractmethod
    def select(
        self,
        sims: Optional[Tensor],
        *,
        batch_size: int,
        pool_size: int,
        progress: float = 1.0,
        generator: Optional[torch.Generator] = None,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """Return ``(B, M)`` pool indices of each anchor's negatives."""

    def params(self, progress: float = 1.0) -> dict[str, Any]:
        """The sampler's parameters at this point of training (logged, and in result records)."""
        return {"sampler": self.name}

    def synthesize(self, anchors: Tensor, pool: Tensor, *, progress: float = 1.0,
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """``(B, S)`` similarities of anchors ``(B, D)`` to ``S`` synthetic negatives made from
        the pool ``(P, D)``; only samplers with ``synthesizes = True`` implement it."""
        raise NotImplementedError(f"sampler {self.name!r} makes no synthetic negatives")

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        """The sampler with these config options in a few words, for tables and figures."""
        return cls.name


@dataclass(frozen=True)
class UniformSampler(NegativeSampler):
    """Random negatives: plain NCE / InfoNCE (the paper's baseline).

    Args:
        num_negatives: ``K`` per anchor; ``None`` uses the whole pool (MoCo queue, SimCLR batch).
    """

    num_negatives: Optional[int] = None
    needs_similarities = False
    name = "uniform"

    def select(self, sims, *, batch_size, pool_size, progress=1.0, generator=None, device="cpu"):
        return uniform_indices(batch_size, pool_size, self.num_negatives, generator, device)

    def params(self, progress: float = 1.0) -> dict[str, Any]:
        return {"sampler": self.name, "num_negatives": self.num_negatives}


W_U_RULES = ("fixed", "scaled")
"""How the ring's ``w_u`` moves while ``w_l`` anneals (:class:`RingSampler`)."""


@dataclass(frozen=True)
class RingSampler(NegativeSampler):
    """Ring negatives (conditional NCE): candidates between the ``w_l``-th and ``w_u``-th
    similarity percentiles of each anchor, with ``w_l`` annealed from ``w_l_start``.

    Args:
        w_l: final lower percentile.
        w_u: upper percentile (fixed).
        num_negatives: ``K`` drawn per anchor from the ring; ``None`` keeps the whole ring.
        schedule: annealing schedule for ``w_l`` (see :func:`anneal`).
        w_l_start: ``w_l`` at the start of training (0 = the whole pool below ``w_u``).
        anneal_fraction: fraction of training over which ``w_l`` is annealed.
        w_u_rule: ``"fixed"``: ``w_u`` stays put while ``w_l`` anneals. ``"scaled"``: the
            excluded top stays the same fraction of the candidates above ``w_l``, i.e.
            ``1 - w_u_now = (1 - w_u) (1 - w_l_now) / (1 - w_l)``. That is the authors' released
            ring (``thres_outer`` annealed, ``thres_inner`` a constant fraction of it with
            ``dynamic_inner``). For ``[0.9, 0.99]`` it gives ``w_u = 1 - 0.1 (1 - w_l_now)``:
            0.9 at ``w_l = 0``, 0.99 at the end. The two agree once annealing is over, and
            always without annealing.
    """

    w_l: float = 0.9
    w_u: float = 1.0
    num_negatives: Optional[int] = None
    schedule: str = "linear"
    w_l_start: float = 0.0
    anneal_fraction: float = 0.5
    w_u_rule: str = "fixed"
    name = "ring"

    def __post_init__(self) -> None:
        _check_percentiles(self.w_l, self.w_u)
        _check_percentiles(self.w_l_start, self.w_u)  # every annealed w_l lies between the two
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {self.schedule!r}; choose one of {sorted(SCHEDULES)}"
            )
        if self.num_negatives is not None and self.num_negatives <= 0:
            raise ValueError(f"num_negatives must be positive, got {self.num_negatives}")
        if self.w_u_rule not in W_U_RULES:
            raise ValueError(f"unknown w_u_rule {self.w_u_rule!r}; choose one of {W_U_RULES}")

    def current_w_l(self, progress: float) -> float:
        """``w_l`` at a point of training (``progress`` in ``[0, 1]``)."""
        return anneal(self.schedule, self.w_l_start, self.w_l, progress, self.anneal_fraction)

    def current_w_u(self, progress: float) -> float:
        """``w_u`` at a point of training: ``w_u`` itself (``w_u_rule="fixed"``) or scaled
        with the annealed ``w_l`` (``"scaled"``, see the class docstring)."""
        if self.w_u_rule == "fixed" or self.w_l >= 1.0:
            return self.w_u
        return 1.0 - (1.0 - self.w_u) * (1.0 - self.current_w_l(progress)) / (1.0 - self.w_l)

    def select(self, sims, *, batch_size, pool_size, progress=1.0, generator=None, device="cpu"):
        if sims is None:
            raise ValueError("the ring sampler needs the (B, N) similarities to the pool")
        return ring_indices(sims, self.current_w_l(progress), self.current_w_u(progress),
                            self.num_negatives, generator)

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        """``ring [w_l, w_u]`` (``top-k [w_l, 1]`` when nothing is excluded at the top), then
        ``, constant`` without annealing, or ``, w_u scaled`` with ``w_u_rule: scaled`` while
        annealing; the dataclass defaults fill absent options."""
        w_l, w_u = options.get("w_l", cls.w_l), options.get("w_u", cls.w_u)
        words = f"top-k [{w_l:g}, 1]" if w_u >= 1.0 else f"ring [{w_l:g}, {w_u:g}]"
        if options.get("schedule", cls.schedule) == "constant":
            return words + ", constant"
        scaled = options.get("w_u_rule", cls.w_u_rule) == "scaled" and w_u < 1.0
        return words + (", w_u scaled" if scaled else "")  # the rule matters while annealing

    def params(self, progress: float = 1.0) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "w_l": self.w_l,
            "w_u": self.w_u,
            "w_l_now": self.current_w_l(progress),
            "w_u_now": self.current_w_u(progress),
            "num_negatives": self.num_negatives,
            "schedule": self.schedule,
            "w_l_start": self.w_l_start,
            "anneal_fraction": self.anneal_fraction,
        }


SAMPLERS: dict[str, type[NegativeSampler]] = {"uniform": UniformSampler, "ring": RingSampler}


def register_sampler(cls: type[NegativeSampler]) -> type[NegativeSampler]:
    """Class decorator: add a sampler to :data:`SAMPLERS` under its ``name`` (the modules of
    :mod:`repro.negatives` register theirs this way). A second sampler of one name is refused."""
    if cls.name in SAMPLERS and SAMPLERS[cls.name] is not cls:
        raise ValueError(f"a sampler named {cls.name!r} is already registered: "
                         f"{SAMPLERS[cls.name].__qualname__}")
    SAMPLERS[cls.name] = cls
    return cls


def build_sampler(config: Mapping[str, Any]) -> NegativeSampler:
    """Build a sampler from a config mapping such as ``{"name": "ring", "w_l": 0.9}``."""
    options = dict(config)
    name = options.pop("name", None)
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    try:
        return SAMPLERS[name](**options)
    except TypeError as err:
        raise ValueError(f"bad options for sampler {name!r}: {err}") from None


# The samplers that live in a module of their own (repro/negatives/*.py) register themselves.
import repro.negatives  # noqa: E402,F401  (after SAMPLERS and register_sampler exist)
