"""The toys with known MI: bias and variance of NCE vs Ring on correlated Gaussians, and of
NCE, Ring, DCL and HCL on vMF pairs on the sphere (:func:`plot_toy`, :mod:`repro.toy`)."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from repro.report.figures.common import FOOTER_PREFIX, _add_footer, empty_figure

# ------------------------------------------------------------------------------------------
# Gaussian toy: bias and variance of NCE vs Ring
# ------------------------------------------------------------------------------------------

_TOY_DATASET = re.compile(r"gaussian_d(?P<dim>\d+)_rho(?P<rho>[0-9.eE+-]+)$")
_SPHERE_DATASET = re.compile(r"sphere_d(?P<dim>\d+)_kappa(?P<kappa>[0-9.eE+-]+)$")
TOY_MODELS = {"gaussian": "gaussian_optimal_critic", "sphere": "sphere_cosine_critic"}
"""The ``model`` of each toy family's result record (:func:`repro.toy.main`)."""


def load_toy_estimates(path: str | os.PathLike):
    """The toy's estimates CSV (:func:`repro.toy.run_sweep`), or ``None`` when absent."""
    import pandas as pd

    path = Path(path)
    return pd.read_csv(path) if path.exists() else None


def toy_settings(estimates, toy_records=None) -> dict[str, Any]:
    """What a toy was run with: ``family, dim, rho, kappa, n, K, draws, true_mi, log_k1,
    scale``.

    ``family`` (``gaussian`` for CSVs older than the column), ``true_mi``, ``log_k1``, ``K``
    (from ``log(K + 1)``) and ``draws`` come from the estimates; ``dim, rho, kappa, n`` from the
    toy's result record (``extra`` when it lists them, else from its dataset name
    ``gaussian_d<dim>_rho<rho>`` / ``sphere_d<dim>_kappa<kappa>``); ``None`` when unknown."""
    log_k1 = float(estimates["log_k1"].iloc[0])
    family = str(estimates["family"].iloc[0]) if "family" in estimates else "gaussian"
    found: dict[str, Any] = {"family": family, "dim": None, "rho": None, "kappa": None,
                             "n": None, "scale": None,
                             "true_mi": float(estimates["true_mi"].iloc[0]), "log_k1": log_k1,
                             "K": int(round(math.exp(log_k1) - 1)),
                             "draws": int(estimates["seed"].nunique())}
    if toy_records is None or toy_records.empty:
        return found
    if "model" in toy_records:  # the record of this family (both toys write stage "toy")
        mine = toy_records[toy_records["model"].isin([TOY_MODELS[family], None])]
        toy_records = mine if not mine.empty else toy_records.iloc[0:0]
        if toy_records.empty:
            return found
    rec = toy_records.iloc[0]
    extra = rec.get("extra") if isinstance(rec.get("extra"), Mapping) else {}
    match = _TOY_DATASET.match(str(rec.get("dataset", "")))
    if match:
        found.update(dim=int(match["dim"]), rho=float(match["rho"]))
    match = _SPHERE_DATASET.match(str(rec.get("dataset", "")))
    if match:
        found.update(dim=int(match["dim"]), kappa=float(match["kappa"]))
    found.update({k: extra[k] for k in ("dim", "rho", "kappa", "n") if extra.get(k) is not None})
    found["scale"] = rec.get("scale")
    return found


def _toy_settings_text(s: Mapping[str, Any]) -> str:
    """``"d=4, rho=0.9, n=512 pairs, K=16 negatives, 20 draws"`` (Gaussian) or ``"d=16, kappa=10
    (t=0.1), ..."`` (sphere); ``?`` for the unknown."""
    def show(v: Any) -> str:
        return "?" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    n = f"n={show(s['n'])} pairs" if s["n"] is not None else "n not recorded"
    if s.get("family") == "sphere":
        t = f" (t={1.0 / s['kappa']:g})" if s.get("kappa") else ""
        shape = f"d={show(s['dim'])}, kappa={show(s.get('kappa'))}{t}"
    else:
        shape = f"d={show(s['dim'])}, rho={show(s['rho'])}"
    return f"{shape}, {n}, K={s['K']} negatives, {s['draws']} draws of negatives"


def _two_lines(name: str) -> str:
    """``"HCL (tau_plus=0.1, beta=1)"`` -> the label and its options on two lines (ticks)."""
    label, sep, options = name.partition(" (")
    return f"{label}\n({options}" if sep else name


TOY_TITLES = {
    "gaussian": "NCE vs Ring on correlated Gaussians (known MI)",
    "sphere": "NCE, Ring and the reweighting estimators on vMF pairs on the sphere (known MI)",
}


def plot_toy(estimates, toy_records=None, source: str = "results/toy/estimates.csv",
             family: str = "gaussian") -> Figure:
    """Violins and points of the MI estimates per method (NCE, each ring, each estimator such
    as DCL and HCL), lines at the true MI and at the ``log(K + 1)`` ceiling of the InfoNCE
    bound (no estimate with ``K`` negatives can exceed it); the title gives the toy's settings
    (:func:`toy_settings`).

    Args:
        estimates: the toy's estimates (:func:`load_toy_estimates`), or ``None``.
        toy_records: the toys' result record rows (stage ``toy``), for ``d, rho, kappa, n``.
        source: where the estimates live (named when there are none).
        family: the toy the figure is about when there are no estimates (its title).
    """
    import seaborn as sns

    if estimates is not None and not estimates.empty and "family" in estimates:
        family = str(estimates["family"].iloc[0])
    title = TOY_TITLES.get(family, TOY_TITLES["gaussian"])
    if estimates is None:
        return empty_figure(title, f"No toy estimates at {source}.\nRun `snakemake "
                                   f"{source}` (or python -m repro.toy --csv {source} ...).")
    if estimates.empty:
        return empty_figure(title, f"{source} holds no estimates.")
    if "method" in estimates:
        frame = estimates.assign(estimator=estimates["method"])
    else:  # CSVs written before the method column: NCE and rings only
        frame = estimates.assign(estimator=[
            "NCE (uniform)" if s == "uniform" else f"Ring [{wl:g}, {wu:g}]"
            for s, wl, wu in zip(estimates["sampler"], estimates["w_l"], estimates["w_u"])])
    nce = frame["estimator"] == "NCE (uniform)"
    rings = frame[frame["sampler"] != "uniform"].sort_values(["w_l", "w_u"])
    others = frame[(frame["sampler"] == "uniform") & ~nce]
    order = (["NCE (uniform)"] if nce.any() else []) + list(
        dict.fromkeys(rings["estimator"])) + list(dict.fromkeys(others["estimator"]))
    settings = toy_settings(estimates, toy_records)
    fig, ax = plt.subplots(figsize=(max(6.5, 1.8 + 1.5 * len(order)), 4.2))
    # density_norm="width": every violin equally wide, so a tight spread reads as short, not
    # as a wide flat bar (the default "area" widens the narrowest distributions most)
    sns.violinplot(data=frame, x="estimator", y="estimate", order=order, ax=ax, inner=None,
                   color="0.85", cut=0, density_norm="width")
    sns.stripplot(data=frame, x="estimator", y="estimate", order=order, ax=ax, size=3,
                  color="black", alpha=0.6)
    true_mi, log_k1 = settings["true_mi"], settings["log_k1"]
    ax.axhline(true_mi, color="tab:green", lw=1.2, label=f"true MI = {true_mi:.3f} nats")
    ax.axhline(log_k1, color="tab:purple", ls="--", lw=1.0,
               label=f"log(K+1) = {log_k1:.3f} nats: ceiling of the InfoNCE bound")
    stats = frame.groupby("estimator")["estimate"].agg(["mean", "std"])
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{_two_lines(name)}\nbias {stats.loc[name, 'mean'] - true_mi:+.3f}\n"
                        f"sd {stats.loc[name, 'std']:.3f}" for name in order], fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("MI estimate (nats)")
    ax.set_title(f"{title}\n{_toy_settings_text(settings)}; true MI = {true_mi:.3f} nats",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    scale = f"scale={settings['scale']}" if settings["scale"] else "scale=?"
    which = ("sphere toy (X uniform, Y | X ~ vMF), optimal critic = cosine / t"
             if settings["family"] == "sphere" else "Gaussian toy, optimal critic")
    _add_footer(fig, f"{FOOTER_PREFIX}{scale} | {which} (no training): "
                     f"{_toy_settings_text(settings)}")
    return fig
