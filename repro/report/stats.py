"""Across-seed statistics and the text of one table cell.

A cell summarises the runs of one (model, sampler, dataset, scale) over seeds: the mean and the
half-width of a two-sided 95% confidence interval from Student's t distribution,

    mean +- t_{0.975, n-1} * s / sqrt(n),        s = sample standard deviation (ddof = 1),

or, for a single seed, the interval the evaluation protocol itself reports (few-shot episodes),
if any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

__all__ = ["Summary", "t_ci95", "sample_sd", "seeds_for_half_width", "summarize",
           "format_summary", "format_delta"]


def t_ci95(values: Iterable[float]) -> tuple[float, Optional[float], int]:
    """Mean, t-based 95% CI half-width (``None`` for fewer than 2 values) and count.

    Raises:
        ValueError: no values, or a value that is not finite.
    """
    from scipy.special import stdtrit  # Student t's quantile: stats.t.ppf(p, df) calls it;
    # scipy.stats itself costs every report job about 1.5 s to import

    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_ci95 needs at least one value")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"t_ci95 got a value that is not finite: {xs}")
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, None, n
    return mean, float(stdtrit(n - 1, 0.975) * sample_sd(xs) / math.sqrt(n)), n


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof 1) of at least two values."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))


def seeds_for_half_width(sd: float, half_width: float, cap: int = 100_000) -> Optional[int]:
    """The fewest values n (at least 2) whose t-based 95% CI is narrower than ``half_width``
    if their standard deviation is ``sd``: the smallest n with

        t_{0.975, n-1} * sd / sqrt(n) < half_width,

    or ``None`` when even ``cap`` values are not enough. A planning number: it holds only as
    far as ``sd`` (itself estimated from few seeds) does. The half-width falls with n, so the
    smallest n is found by bisection.

    Raises:
        ValueError: ``sd`` negative or not finite, ``half_width`` not positive.
    """
    from scipy.special import stdtrit

    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")

    def narrow(n: int) -> bool:
        return float(stdtrit(n - 1, 0.975)) * sd / math.sqrt(n) < half_width

    if not narrow(cap):
        return None
    lo, hi = 2, cap  # narrow(hi) holds
    if narrow(lo):
        return lo
    while hi - lo > 1:  # invariant: not narrow(lo), narrow(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if narrow(mid) else (mid, hi)
    return hi


@dataclass(frozen=True)
class Summary:
    """One cell's numbers: ``mean``, ``ci95`` half-width (or ``None``), ``n`` seeds and where
    the interval comes from (``"t"``: across seeds; ``"protocol"``: the single run's own)."""

    mean: float
    ci95: Optional[float]
    n: int
    ci_kind: Optional[str]


def summarize(values: Iterable[float], protocol_ci95: Iterable[Optional[float]] = ()) -> Summary:
    """Summarise one cell's per-seed values (``protocol_ci95``: the runs' own intervals)."""
    mean, half, n = t_ci95(values)
    if n >= 2:
        return Summary(mean, half, n, "t")
    own = [c for c in protocol_ci95 if c is not None and not _isnan(c)]
    if own:
        return Summary(mean, float(own[0]), n, "protocol")
    return Summary(mean, None, n, None)


def _isnan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


def format_summary(s: Optional[Summary], digits: int = 2, pm: str = "±") -> str:
    """``"81.23 ± 0.45 (n=3)"``; one seed: ``"81.23 ± 0.40 (n=1, protocol CI)"`` or
    ``"81.23 (n=1)"``; no runs (``None``): ``"not run"``."""
    if s is None:
        return "not run"
    if s.ci95 is None:
        return f"{s.mean:.{digits}f} (n={s.n})"
    tag = f"n={s.n}" if s.ci_kind == "t" else f"n={s.n}, protocol CI"
    return f"{s.mean:.{digits}f} {pm} {s.ci95:.{digits}f} ({tag})"


def format_delta(ours: Optional[Summary], paper: Optional[float], digits: int = 2) -> str:
    """Signed ``ours - paper`` (``"+1.20"``), ``"n/a"`` without a paper number, ``"—"`` when
    not run."""
    if ours is None:
        return "—"
    if paper is None or _isnan(paper):
        return "n/a"
    return f"{ours.mean - paper:+.{digits}f}"
