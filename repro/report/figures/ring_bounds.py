"""Accuracy against the ring bounds (:func:`plot_ring_bounds`)."""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from repro.report.figures.anneal import _annotate_n, _finish, _params_except, _ring_rows
from repro.report.figures.common import (
    _draw_references,
    _missing_refs_text,
    _refs_for,
    _settings_for,
    _summary,
    config_footer,
    empty_figure,
    experiment_suffixes,
    reference_rows,
)
from repro.report.tables import MODEL_LABELS, model_rank

# ------------------------------------------------------------------------------------------
# Accuracy against the ring bounds
# ------------------------------------------------------------------------------------------


def ring_bound_panels(ring_rows) -> list[tuple[tuple, Any]]:
    """``[((model, eval_dataset, scale, others, pair), rows)]``: one panel per set of runs that
    differ only in their ring bounds ``(w_l, w_u)`` (``others`` labels the sampler options they
    share, e.g. the schedule; ``pair`` is the experiment apart from the sampler,
    :func:`repro.report.figures.common.pair_keys`), kept when at least two bounds were run, in
    the tables' model order (:func:`model_rank`). Runs with another schedule, or another
    setting outside the sampler (a label's queue size), are never averaged into one point."""
    if ring_rows.empty:
        return []
    ring_rows = ring_rows.assign(others=[_params_except(p, ("w_l", "w_u"))
                                         for p in ring_rows["sampler_params"]])
    panels = [(key, part) for key, part in
              ring_rows.groupby(["model", "eval_dataset", "scale", "others", "pair"])
              if part[["w_l", "w_u"]].drop_duplicates().shape[0] > 1]
    return sorted(panels, key=lambda panel: (model_rank(panel[0][0]), panel[0][1:]))


def _bound_points(ax, part) -> None:
    """One point per ``(w_l, w_u)`` (mean over seeds; small dots: the seeds; error bar: 95%
    t-interval when ``n > 1``), its mean and ``n`` above it; x ticks name the bounds and the
    sampler labels that ran them."""
    bounds = sorted({(float(a), float(b)) for a, b in zip(part["w_l"], part["w_u"])})
    for x, (w_l, w_u) in enumerate(bounds):
        values = part.loc[(part["w_l"] == w_l) & (part["w_u"] == w_u), "value"].astype(float)
        mean, half, n = _summary(values)
        if n > 1:
            ax.plot([x] * n, values, "o", color="tab:red", ms=3, alpha=0.5, zorder=3)
        ax.errorbar(x, mean, yerr=half, fmt="D", color="tab:red", ms=7, capsize=4, zorder=4)
        _annotate_n(ax, x, max(values.max(), mean + (half or 0.0)), mean, n, 1)
    labels = []
    for w_l, w_u in bounds:
        names = sorted(set(part.loc[(part["w_l"] == w_l) & (part["w_u"] == w_u), "sampler"]))
        labels.append(f"({w_l:g}, {w_u:g})\n{', '.join(names)}")
    ax.set_xticks(range(len(bounds)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.6, len(bounds) - 0.4)


def _ring_bound_panel(ax, key: tuple, part, refs, suffix: str = "") -> None:
    """One dot plot: the ring runs of ``part`` per bounds, and the reference lines; ``suffix``
    (:func:`experiment_suffixes`) ends the title."""
    model, dataset, scale, others, _ = key
    others = ", ".join(x for x in (others, suffix) if x)
    _bound_points(ax, part)
    if _draw_references(ax, refs):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    note = _missing_refs_text(refs)
    if note:
        ax.text(0.01, 0.99, note, transform=ax.transAxes, ha="left", va="top", fontsize=7,
                color="0.4")
    ax.margins(y=0.18)
    ax.set_title(f"{MODEL_LABELS.get(model, model)} on {dataset} (scale={scale})"
                 + (f"\n{others}" if others else ""), fontsize=9)
    ax.set_xlabel("ring bounds (w_l, w_u)")
    ax.set_ylabel("linear-eval top-1 (%)")


def plot_ring_bounds(records, settings=None) -> Figure:
    """Linear-eval top-1 against the ring bounds ``(w_l, w_u)``: one dot plot per (model, eval
    dataset, scale, other sampler options) in the tables' model order, each on its own y axis
    so that small differences stay visible, with the mean and ``n`` (seeds) on every point,
    error bars (95% t-interval) where ``n > 1``, and horizontal lines at the same model's
    uniform (NCE) and untrained (random-init) accuracy where those records exist. A footer
    gives the config."""
    title = "Linear-eval accuracy vs ring bounds (w_l, w_u)"
    panels = ring_bound_panels(
        _ring_rows(records, "linear_eval", "top1").dropna(subset=["w_l", "w_u"]))
    if not panels:
        return empty_figure(title, "No ring-bound sweep in the records: this needs "
                                   "linear_eval records of ring runs\nwith at least two "
                                   "different (w_l, w_u), e.g. samplers ring_50_99 / ring_90_99 "
                                   "in the config.",
                            config_footer(records, _settings_for(records, settings)))
    refs = reference_rows(records)
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(3.9 * cols, 4.4 * rows))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    shown = []
    suffixes = experiment_suffixes([key for key, _ in panels])
    for ax, (key, part), suffix in zip(axes.flat, panels, suffixes):
        panel_refs = _refs_for(refs, *key[:3], pair=key[4])
        _ring_bound_panel(ax, key, part, panel_refs, suffix)
        shown += [part, panel_refs]
    _finish(fig, records, shown, settings, f"{title}; points: mean over seeds, error bars: "
            "95% t-interval (n > 1); lines: the same model's reference runs")
    return fig
