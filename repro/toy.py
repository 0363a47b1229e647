"""Gaussian toy: NCE vs Ring estimates of a known mutual information.

``X ~ N(0, I_d)`` and ``Y = rho X + sqrt(1 - rho^2) E`` with ``E ~ N(0, I_d)`` have

    I(X; Y) = -d/2 log(1 - rho^2)   nats.

With the optimal critic ``f(x, y) = log p(y | x) / p(y)`` no training is needed: the estimates
differ only through the negatives. For a dataset of ``n`` pairs, each anchor ``x_i`` scores its
own ``y_i`` (positive) and draws ``K`` negatives from the other ``n - 1`` ``y``'s, uniformly
(NCE) or from its ring (CNCE). Both are lower bounds on ``I(X; Y)``; Ring is looser and, once
the hardest candidates are left out (``w_u < 1``), varies much less from one draw to the next.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repro.estimators import mi_lower_bound
from repro.samplers import ring_indices, uniform_indices

__all__ = ["true_mi", "gaussian_pairs", "optimal_critic", "estimate_mi", "run_sweep",
           "parse_rings", "format_rings", "DEFAULT_RINGS", "main"]

DEFAULT_RINGS: tuple[tuple[float, float], ...] = ((0.5, 0.99), (0.8, 0.95), (0.9, 0.99))
"""The rings ``(w_l, w_u)`` the sweep evaluates unless told otherwise."""


def true_mi(dim: int, rho: float) -> float:
    """``I(X; Y)`` in nats for ``dim`` independent coordinate pairs of correlation ``rho``."""
    return -0.5 * dim * math.log(1.0 - rho**2)


def gaussian_pairs(n: int, dim: int, rho: float, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` correlated pairs: ``(x, y)``, each ``(n, dim)``."""
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    noise = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return x, rho * x + math.sqrt(1.0 - rho**2) * noise


def optimal_critic(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """``(n, n)`` matrix ``f(x_i, y_j) = log p(y_j | x_i) - log p(y_j)``."""
    var = 1.0 - rho**2
    dim = x.shape[1]
    cond = -((y.unsqueeze(0) - rho * x.unsqueeze(1)) ** 2).sum(-1) / (2.0 * var)
    marg = -(y**2).sum(-1).unsqueeze(0) / 2.0
    return cond - marg - 0.5 * dim * math.log(var)


def estimate_mi(
    scores: Tensor,
    sampler: str,
    num_negatives: int,
    seed: int,
    w_l: float = 0.0,
    w_u: float = 1.0,
) -> float:
    """One NCE (``sampler="uniform"``) or Ring (``"ring"``) estimate of ``I(X; Y)``.

    Args:
        scores: ``(n, n)`` critic values, positives on the diagonal.
        sampler: ``"uniform"`` or ``"ring"``.
        num_negatives: ``K`` per anchor.
        seed: seeds the draw of negatives.
        w_l, w_u: the ring, for ``sampler="ring"``.
    """
    n = scores.shape[0]
    pos = scores.diagonal()
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    pool = scores[off_diagonal].view(n, n - 1)
    gen = torch.Generator().manual_seed(seed)
    if sampler == "uniform":
        idx = uniform_indices(n, n - 1, num_negatives, gen)
    elif sampler == "ring":
        idx = ring_indices(pool, w_l, w_u, num_negatives, gen)
    else:
        raise ValueError(f"sampler must be 'uniform' or 'ring', got {sampler!r}")
    return float(mi_lower_bound(pos, pool.gather(1, idx)))


def run_sweep(
    dim: int = 4,
    rho: float = 0.9,
    n: int = 512,
    num_negatives: int = 16,
    rings: tuple[tuple[float, float], ...] = DEFAULT_RINGS,
    seeds: int = 20,
    data_seed: int = 0,
):
    """NCE and Ring estimates over ``seeds`` draws of negatives: a long DataFrame with columns
    ``sampler, w_l, w_u, seed, estimate, true_mi, log_k1``."""
    import pandas as pd

    x, y = gaussian_pairs(n, dim, rho, data_seed)
    scores = optimal_critic(x, y, rho)
    rows = []
    for seed in range(seeds):
        rows.append(("uniform", 0.0, 1.0, seed, estimate_mi(scores, "uniform", num_negatives, seed)))
        for w_l, w_u in rings:
            rows.append(("ring", w_l, w_u, seed,
                         estimate_mi(scores, "ring", num_negatives, seed, w_l, w_u)))
    frame = pd.DataFrame(rows, columns=["sampler", "w_l", "w_u", "seed", "estimate"])
    frame["true_mi"] = true_mi(dim, rho)
    frame["log_k1"] = math.log(num_negatives + 1)
    return frame


def parse_rings(text: str) -> tuple[tuple[float, float], ...]:
    """``"0.5:0.99,0.9:0.99"`` -> ``((0.5, 0.99), (0.9, 0.99))``; raises ``ValueError`` unless
    every ring is ``w_l:w_u`` with ``0 <= w_l < w_u <= 1``."""
    rings = []
    for part in text.split(","):
        try:
            w_l, w_u = (float(v) for v in part.split(":"))
        except ValueError:
            raise ValueError(f"ring {part.strip()!r} is not W_L:W_U (e.g. 0.9:0.99)") from None
        if not 0.0 <= w_l < w_u <= 1.0:
            raise ValueError(f"ring {part.strip()!r} needs 0 <= w_l < w_u <= 1")
        rings.append((w_l, w_u))
    return tuple(rings)


def format_rings(rings: tuple[tuple[float, float], ...]) -> str:
    """The ``--rings`` text of ``rings`` (the inverse of :func:`parse_rings`)."""
    return ",".join(f"{w_l:g}:{w_u:g}" for w_l, w_u in rings)


_SETTINGS = {  # run_sweep() keyword -> (type, --help); the option's default is run_sweep()'s
    "dim": (int, "coordinate pairs of X and Y"),
    "rho": (float, "correlation of each pair, in [0, 1)"),
    "n": (int, "pairs in the dataset"),
    "num_negatives": (int, "negatives K per anchor"),
    "seeds": (int, "draws of negatives"),
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2: an impossible setting)."""
    import argparse
    import inspect
    import sys
    import time

    from repro.io import atomic_write
    from repro.results import make_record, write_record

    parser = argparse.ArgumentParser(
        prog="python -m repro.toy",
        description="NCE vs Ring estimates of the mutual information of correlated Gaussians "
                    "(known closed form), over many draws of negatives. Writes a CSV of every "
                    "estimate and a result record with the bias and spread of each sampler: "
                    "NCE (uniform negatives) and Ring at each of --rings.",
    )
    defaults = inspect.signature(run_sweep).parameters
    for name, (kind, text) in _SETTINGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind,
                            default=defaults[name].default, help=f"{text} (default %(default)s)")
    parser.add_argument("--rings", default=format_rings(DEFAULT_RINGS),
                        help="rings evaluated besides NCE, as W_L:W_U percentiles separated by "
                             "commas (default %(default)s)")
    parser.add_argument("--csv", required=True, help="where to write every estimate")
    parser.add_argument("--record", required=True, help="where to write the result.json")
    parser.add_argument("--scale", default="default",
                        help="scale label written into the record (the workflow passes the "
                             "config's `scale`; default %(default)s)")
    args = parser.parse_args(argv)
    try:
        rings = parse_rings(args.rings)
    except ValueError as err:
        parser.error(f"--rings: {err}")

    start = time.time()
    try:
        frame = run_sweep(rings=rings, **{name: getattr(args, name) for name in _SETTINGS})
    except ValueError as err:  # e.g. rho outside [0, 1), more negatives than pairs
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write(args.csv, lambda tmp: frame.to_csv(tmp, index=False))
    stats = frame.groupby(["sampler", "w_l", "w_u"])["estimate"].agg(["mean", "std"])
    metrics = {"true_mi": true_mi(args.dim, args.rho)}
    for (sampler, w_l, w_u), row in stats.iterrows():
        tag = "nce" if sampler == "uniform" else f"ring_{w_l:g}_{w_u:g}"
        metrics[f"{tag}_mean"] = row["mean"]
        metrics[f"{tag}_std"] = row["std"]
    write_record(args.record, make_record(
        stage="toy", model="gaussian_optimal_critic", sampler="uniform+ring",
        dataset=f"gaussian_d{args.dim}_rho{args.rho:g}", seed=0, metrics=metrics,
        scale=args.scale, config={**{k: v for k, v in vars(args).items()
                                      if k not in ("csv", "record", "scale")},
                                   "rings": [list(r) for r in rings]},
        wall_time_s=time.time() - start,
        protocol="optimal critic, estimates over draws of negatives",
        extra={"dim": args.dim, "rho": args.rho, "n": args.n,
               "num_negatives": args.num_negatives, "seeds": args.seeds},
    ))
    print(stats.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
