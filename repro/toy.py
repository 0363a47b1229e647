"""Toys with a known mutual information: NCE, Ring, DCL and HCL estimates against the truth.

``X ~ N(0, I_d)`` and ``Y = rho X + sqrt(1 - rho^2) E`` with ``E ~ N(0, I_d)`` have

    I(X; Y) = -d/2 log(1 - rho^2)   nats.

With the optimal critic ``f(x, y) = log p(y | x) / p(y)`` no training is needed: the estimates
differ only through the negatives. For a dataset of ``n`` pairs, each anchor ``x_i`` scores its
own ``y_i`` (positive) and draws ``K`` negatives from the other ``n - 1`` ``y``'s, uniformly
(NCE) or from its ring (CNCE). Both are lower bounds on ``I(X; Y)``; Ring is looser and, once
the hardest candidates are left out (``w_u < 1``), varies much less from one draw to the next.

The Gaussian critic is an unbounded log density ratio (at d = 4, rho = 0.9 most negatives
score below -10), so it cannot feed DCL or HCL: both assume cosine similarities, ``s >= -1``,
and floor their negative term at ``K exp(-1 / t)`` (:mod:`repro.estimators`). Their toy is the
**sphere** family, Gaussian's analogue on the unit sphere ``S^{d-1}``: ``X`` uniform and
``Y | X ~ vMF(X, kappa)`` (von Mises-Fisher). Its optimal critic is exactly a cosine at a
temperature, ``log p(y | x) / p(y) = kappa x.y + const`` with ``t = 1 / kappa``, so every
estimator sees what it sees in training (cosines in ``[-1, 1]`` over ``t``), and

    I(X; Y) = log |S^{d-1}| - h(vMF(kappa))   nats

(``h`` the vMF's differential entropy). Its negatives come from the marginal, so none shares
the anchor's "class": DCL's ``tau_plus`` correction has nothing to remove and shows as bias.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from repro.estimators import ESTIMATORS, build_estimator, mi_lower_bound
from repro.samplers import ring_indices, uniform_indices

__all__ = ["true_mi", "gaussian_pairs", "optimal_critic", "true_mi_sphere", "sphere_pairs",
           "cosine_critic", "method_label", "estimate_mi", "run_sweep", "parse_rings", "format_rings",
           "parse_estimators", "DEFAULT_RINGS", "FAMILIES", "main"]

FAMILIES = ("gaussian", "sphere")
"""The toys: correlated Gaussians (optimal critic unbounded) and vMF pairs on the sphere
(optimal critic a cosine at temperature ``1 / kappa``)."""

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


def true_mi_sphere(dim: int, kappa: float) -> float:
    """``I(X; Y)`` in nats for ``X`` uniform on ``S^{dim-1}`` and ``Y | X ~ vMF(X, kappa)``:
    ``log |S^{dim-1}| - h(vMF)``, ``|S^{d-1}| = 2 pi^{d/2} / Gamma(d/2)``."""
    import numpy as np
    from scipy.special import gammaln
    from scipy.stats import vonmises_fisher

    if dim < 2 or kappa <= 0:
        raise ValueError(f"the sphere toy needs dim >= 2 and kappa > 0, got {dim}, {kappa}")
    log_area = math.log(2.0) + 0.5 * dim * math.log(math.pi) - float(gammaln(0.5 * dim))
    pole = np.zeros(dim)
    pole[-1] = 1.0
    return log_area - float(vonmises_fisher(pole, kappa).entropy())


def sphere_pairs(n: int, dim: int, kappa: float, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` pairs on ``S^{dim-1}``: ``x`` uniform, ``y ~ vMF(x, kappa)``; each ``(n, dim)``.

    ``y`` is drawn around the pole ``e_d`` (scipy's sampler) and carried to ``x`` by the
    Householder reflection that swaps ``e_d`` and ``x``, which preserves the vMF's law."""
    import numpy as np
    from scipy.stats import vonmises_fisher

    true_mi_sphere(dim, kappa)  # validates dim and kappa
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64),
                                      dim=1)
    pole = np.zeros(dim)
    pole[-1] = 1.0
    around_pole = torch.from_numpy(np.asarray(vonmises_fisher(pole, kappa).rvs(
        n, random_state=np.random.default_rng(seed)), dtype=np.float64)).reshape(n, dim)
    u = torch.zeros(n, dim, dtype=torch.float64)
    u[:, -1] = 1.0
    u = u - x  # the reflection I - 2 u u^T / |u|^2 maps e_d to x (identity where x = e_d)
    norm2 = (u * u).sum(1, keepdim=True)
    coef = torch.where(norm2 > 1e-24, 2.0 * (around_pole * u).sum(1, keepdim=True) / norm2,
                       torch.zeros_like(norm2))
    return x, around_pole - coef * u


def method_label(sampler: str, w_l: float, w_u: float,
                 estimator: Optional[Mapping[str, Any]] = None) -> str:
    """How the figure names a method: ``NCE (uniform)``, ``Ring [0.9, 0.99]``, or the
    estimator's registry label with its options, ``HCL (tau_plus=0.1, beta=1)``."""
    if estimator is not None and estimator.get("name", "nce") != "nce":
        options = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                            for k, v in estimator.items() if k != "name")
        label = ESTIMATORS[estimator["name"]].label
        return f"{label} ({options})" if options else label
    return "NCE (uniform)" if sampler == "uniform" else f"Ring [{w_l:g}, {w_u:g}]"


def cosine_critic(x: Tensor, y: Tensor) -> Tensor:
    """``(n, n)`` cosine similarities ``x_i . y_j`` of unit vectors (positives on the diagonal);
    over ``t = 1 / kappa`` the sphere toy's optimal critic, up to a constant."""
    return x @ y.T


def estimate_mi(
    scores: Tensor,
    sampler: str,
    num_negatives: int,
    seed: int,
    w_l: float = 0.0,
    w_u: float = 1.0,
    temperature: float = 1.0,
    estimator: Optional[Mapping[str, Any]] = None,
) -> float:
    """One estimate of ``I(X; Y)``: ``log(K + 1) - loss`` over the ``n`` anchors.

    Args:
        scores: ``(n, n)`` scores, positives on the diagonal; the critic is ``scores /
            temperature`` (log density ratios with ``temperature = 1`` for the Gaussian toy,
            cosines with ``temperature = 1 / kappa`` for the sphere).
        sampler: ``"uniform"`` (NCE) or ``"ring"`` (CNCE).
        num_negatives: ``K`` per anchor.
        seed: seeds the draw of negatives.
        w_l, w_u: the ring, for ``sampler="ring"``.
        estimator: a registry block (:func:`repro.estimators.build_estimator`), e.g.
            ``{"name": "hard", "tau_plus": 0.1, "beta": 1.0}``; ``None`` is InfoNCE, whose
            estimate is the bound of :func:`repro.estimators.mi_lower_bound`. The block's loss
            takes the scores as cosines, so ``scores`` must lie in ``[-1, 1]``.
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
    neg = pool.gather(1, idx)
    if estimator is None or estimator.get("name", "nce") == "nce":
        return float(mi_lower_bound(pos, neg, temperature))
    name = estimator["name"]
    if name in ESTIMATORS and ESTIMATORS[name].uniform_negatives and sampler != "uniform":
        raise ValueError(f"estimator {name!r} reweights uniform draws; it takes sampler "
                         f"'uniform', not {sampler!r}")
    if scores.abs().max() > 1.0 + 1e-9:
        raise ValueError(f"estimator {name!r} takes cosine similarities in [-1, 1] (its floor "
                         f"is K exp(-1 / t)); these scores reach {float(scores.abs().max()):.3g}")
    loss = build_estimator(estimator)(pos, neg, temperature)
    return math.log(num_negatives + 1) - float(loss)


def run_sweep(
    dim: int = 4,
    rho: float = 0.9,
    n: int = 512,
    num_negatives: int = 16,
    rings: tuple[tuple[float, float], ...] = DEFAULT_RINGS,
    seeds: int = 20,
    data_seed: int = 0,
    family: str = "gaussian",
    kappa: float = 10.0,
    estimators: Optional[Mapping[str, Mapping[str, Any]]] = None,
):
    """NCE, Ring and estimator estimates over ``seeds`` draws of negatives: a long DataFrame
    with columns ``family, sampler, w_l, w_u, estimator, method, seed, estimate, true_mi,
    log_k1`` (``method``: :func:`method_label`).

    Args:
        family: ``"gaussian"`` (``dim`` pairs of correlation ``rho``) or ``"sphere"`` (vMF pairs
            on ``S^{dim-1}`` of concentration ``kappa``, critic = cosine at ``t = 1 / kappa``).
        estimators: label -> registry block, each estimated on uniform draws beside NCE and the
            rings (``estimator`` column = label; ``"nce"`` for NCE and the rings). Sphere only:
            the Gaussian critic is no cosine.
    """
    import pandas as pd

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    estimators = dict(estimators or {})
    if estimators and family != "sphere":
        raise ValueError("estimators other than NCE take cosine similarities (s >= -1, floor "
                         "K exp(-1/t)); the Gaussian toy's critic is an unbounded log density "
                         "ratio: use family 'sphere'")
    if "nce" in estimators:
        raise ValueError("'nce' names NCE itself (always estimated); give the estimator "
                         "another label")
    for block in estimators.values():
        build_estimator(block)  # unknown names and options fail before any work
    if num_negatives > n - 1:
        raise ValueError(f"num_negatives ({num_negatives}) must be below n ({n}): each anchor "
                         f"draws its negatives from the other n - 1 pairs")
    if family == "gaussian":
        x, y = gaussian_pairs(n, dim, rho, data_seed)
        scores, temperature, mi = optimal_critic(x, y, rho), 1.0, true_mi(dim, rho)
    else:
        x, y = sphere_pairs(n, dim, kappa, data_seed)
        scores, temperature = cosine_critic(x, y).clamp(-1.0, 1.0), 1.0 / kappa
        mi = true_mi_sphere(dim, kappa)
    rows = []
    for seed in range(seeds):
        rows.append(("uniform", 0.0, 1.0, "nce", seed,
                     estimate_mi(scores, "uniform", num_negatives, seed,
                                 temperature=temperature)))
        for w_l, w_u in rings:
            rows.append(("ring", w_l, w_u, "nce", seed,
                         estimate_mi(scores, "ring", num_negatives, seed, w_l, w_u,
                                     temperature=temperature)))
        for label, block in estimators.items():
            rows.append(("uniform", 0.0, 1.0, label, seed,
                         estimate_mi(scores, "uniform", num_negatives, seed,
                                     temperature=temperature, estimator=block)))
    frame = pd.DataFrame(rows, columns=["sampler", "w_l", "w_u", "estimator", "seed",
                                        "estimate"])
    frame.insert(0, "family", family)
    frame.insert(5, "method", [method_label(sa, wl, wu, estimators.get(e)) for sa, wl, wu, e in
                               zip(frame["sampler"], frame["w_l"], frame["w_u"],
                                   frame["estimator"])])
    frame["true_mi"] = mi
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


def parse_estimators(text: str) -> dict[str, dict[str, Any]]:
    """``'{"dcl": {"name": "debiased", "tau_plus": 0.1}}'`` -> that mapping (label -> registry
    block, :func:`repro.estimators.build_estimator`); ``""`` -> ``{}``. Raises ``ValueError``
    for text that is not such a JSON object or a block the registry refuses."""
    if not text.strip():
        return {}
    try:
        found = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(found, dict) or not all(isinstance(b, dict) for b in found.values()):
        raise ValueError('give a JSON object of label -> estimator block, e.g. '
                         '{"dcl": {"name": "debiased", "tau_plus": 0.1}}')
    for label, block in found.items():
        try:
            build_estimator(block)
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from None
    return found


_SETTINGS = {  # run_sweep() keyword -> (type, --help); the option's default is run_sweep()'s
    "family": (str, "which toy: gaussian (correlated pairs, NCE and Ring) or sphere (vMF pairs "
                    "on the unit sphere, critic a cosine at t = 1/kappa: NCE, Ring and "
                    "--estimators)"),
    "dim": (int, "gaussian: coordinate pairs of X and Y; sphere: dimension of the space of "
                 "S^(dim-1)"),
    "rho": (float, "gaussian: correlation of each pair, in [0, 1)"),
    "kappa": (float, "sphere: vMF concentration of Y around X; the critic's temperature is "
                     "1/kappa"),
    "n": (int, "pairs in the dataset"),
    "num_negatives": (int, "negatives K per anchor"),
    "seeds": (int, "draws of negatives"),
}


def _tag(sampler: str, w_l: float, w_u: float, estimator: str) -> str:
    """A row's metric prefix: ``nce``, ``ring_<w_l>_<w_u>`` or the estimator's label."""
    if estimator != "nce":
        return estimator
    return "nce" if sampler == "uniform" else f"ring_{w_l:g}_{w_u:g}"


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
        description="Estimates of a known mutual information over many draws of negatives: "
                    "NCE (uniform negatives) and Ring at each of --rings on correlated "
                    "Gaussians (--family gaussian, optimal critic), and also DCL / HCL or any "
                    "registered estimator (--estimators) on vMF pairs on the sphere (--family "
                    "sphere, critic a cosine at temperature 1/kappa). Writes a CSV of every "
                    "estimate and a result record with the mean and spread of each method.",
    )
    defaults = inspect.signature(run_sweep).parameters
    for name, (kind, text) in _SETTINGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind,
                            default=defaults[name].default, help=f"{text} (default %(default)s)",
                            **({"choices": FAMILIES} if name == "family" else {}))
    parser.add_argument("--rings", default=format_rings(DEFAULT_RINGS),
                        help="rings evaluated besides NCE, as W_L:W_U percentiles separated by "
                             "commas (default %(default)s)")
    parser.add_argument("--estimators", default="",
                        help='sphere only: JSON object of label -> estimator block, each '
                             'estimated on uniform negatives, e.g. \'{"dcl": {"name": '
                             '"debiased", "tau_plus": 0.1}}\' (names: repro.estimators.'
                             'ESTIMATORS; default none)')
    parser.add_argument("--csv", required=True, help="where to write every estimate")
    parser.add_argument("--record", required=True, help="where to write the result.json")
    parser.add_argument("--scale", default="default",
                        help="scale label written into the record (the workflow passes the "
                             "config's `scale`; default %(default)s)")
    parser.add_argument("--recipe", default=None,
                        help="recipe label written into the record (the workflow passes the "
                             "config's `recipe`; default: repro.results.DEFAULT_RECIPE)")
    args = parser.parse_args(argv)
    try:
        rings = parse_rings(args.rings)
    except ValueError as err:
        parser.error(f"--rings: {err}")
    try:
        estimators = parse_estimators(args.estimators)
    except ValueError as err:
        parser.error(f"--estimators: {err}")

    start = time.time()
    try:
        frame = run_sweep(rings=rings, estimators=estimators,
                          **{name: getattr(args, name) for name in _SETTINGS})
    except ValueError as err:  # e.g. rho outside [0, 1), more negatives than pairs
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write(args.csv, lambda tmp: frame.to_csv(tmp, index=False))
    stats = frame.groupby(["sampler", "w_l", "w_u", "estimator"], sort=False)[
        "estimate"].agg(["mean", "std"])
    metrics = {"true_mi": float(frame["true_mi"].iloc[0])}
    for key, row in stats.iterrows():
        metrics[f"{_tag(*key)}_mean"] = row["mean"]
        metrics[f"{_tag(*key)}_std"] = row["std"]
    common = {"n": args.n, "num_negatives": args.num_negatives, "seeds": args.seeds}
    if args.family == "gaussian":
        model, dataset = "gaussian_optimal_critic", f"gaussian_d{args.dim}_rho{args.rho:g}"
        extra = {"dim": args.dim, "rho": args.rho, **common}
        config = {k: getattr(args, k) for k in ("dim", "rho", "n", "num_negatives", "seeds")}
    else:
        model, dataset = "sphere_cosine_critic", f"sphere_d{args.dim}_kappa{args.kappa:g}"
        extra = {"family": "sphere", "dim": args.dim, "kappa": args.kappa, **common,
                 "estimators": estimators}
        config = {"family": "sphere", "dim": args.dim, "kappa": args.kappa, **common,
                  "estimators": estimators}
    write_record(args.record, make_record(
        stage="toy", model=model, sampler="uniform+ring",
        dataset=dataset, seed=0, metrics=metrics, scale=args.scale, recipe=args.recipe,
        config={**config, "rings": [list(r) for r in rings]},
        wall_time_s=time.time() - start,
        protocol="optimal critic, estimates over draws of negatives",
        extra=extra,
    ))
    print(stats.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
