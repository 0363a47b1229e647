"""Figures from result records (matplotlib + seaborn, Agg backend; PNG and PDF).

* :func:`plot_loss_curves`: pretraining loss per step, one panel per (dataset, scale, model),
  one line per sampler (mean over seeds, band = min..max where a sampler has several seeds),
  the ring's ``w_l`` on a twin axis, one legend for the figure.
* :func:`plot_anneal_schedules`: ``w_l`` over training for every schedule of
  :data:`repro.samplers.SCHEDULES`, and, for each of linear-evaluation accuracy and final
  pretraining loss that has records of a schedule sweep, that metric per schedule.
* :func:`plot_toy`: NCE vs Ring estimates of a known mutual information (Gaussian toy):
  bias and spread per sampler and ring, with lines at the true MI and at ``log(K + 1)``.
* :func:`plot_ring_bounds`: linear evaluation accuracy against the ring bounds ``(w_l, w_u)``
  (heatmap, one colour scale for all panels), one panel per set of ring runs that differ only
  in their bounds, in the tables' model order.

Every figure names the ``scale`` of the records it shows; with no suitable records a figure
still gets written, saying what is missing and how to produce it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from repro.report.tables import MODEL_LABELS, model_rank  # noqa: E402

__all__ = [
    "FIGURES",
    "save_figure",
    "sampler_colors",
    "empty_figure",
    "load_loss_logs",
    "plot_loss_curves",
    "plot_anneal_schedules",
    "plot_toy",
    "plot_ring_bounds",
    "schedule_sweep",
    "ring_bound_panels",
    "make_figures",
]

FORMATS = ("png", "pdf")
SAMPLER_COLORS = {"uniform": "tab:blue", "ring": "tab:red"}
_OTHER_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
                 "tab:cyan", "tab:gray")


def sampler_colors(samplers: Sequence[str]) -> dict[str, str]:
    """One distinct colour per sampler label: ``uniform`` blue and ``ring`` red as everywhere,
    the other labels (ablations) in sorted order from the remaining tab10 colours (cycling)."""
    others = sorted(set(samplers) - set(SAMPLER_COLORS))
    colors = {s: _OTHER_COLORS[i % len(_OTHER_COLORS)] for i, s in enumerate(others)}
    return {**colors, **{s: c for s, c in SAMPLER_COLORS.items() if s in set(samplers)}}


def save_figure(fig, out_dir: str | os.PathLike, stem: str,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<stem>.<fmt>`` for each format (atomically); close it."""
    from repro.io import atomic_write

    out_dir = Path(out_dir)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=150,
                                                            bbox_inches="tight"))
        paths.append(path)
    plt.close(fig)
    return paths


def empty_figure(title: str, message: str):
    """A figure that says why it is empty (and how to fill it)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10,
            transform=ax.transAxes)
    return fig


def _scale_text(scales) -> str:
    found = sorted({str(s) for s in scales if isinstance(s, str) and s})
    return "scale=" + (", ".join(found) if found else "?")


# ------------------------------------------------------------------------------------------
# Training loss curves
# ------------------------------------------------------------------------------------------


def load_loss_logs(records):
    """Per-step pretraining logs of every ``pretrain`` record (``log.csv`` beside its
    ``result.json``), with the record's ``dataset, model, sampler, seed, scale``.

    Returns:
        DataFrame with columns ``epoch, step, loss, w_l, lr, time_s, progress, dataset,
        model, sampler, seed, scale``; records without a log are skipped.
    """
    import pandas as pd

    frames = []
    pre = records[records["stage"] == "pretrain"].drop_duplicates("path")
    for rec in pre.to_dict("records"):
        log = Path(rec["path"]).parent / "log.csv"
        if not log.exists():
            continue
        frame = pd.read_csv(log)
        if frame.empty:
            continue
        frame["w_l"] = pd.to_numeric(frame["w_l"], errors="coerce")
        frame["progress"] = frame["step"] / max(int(frame["step"].max()), 1)
        for key in ("dataset", "model", "sampler", "seed", "scale"):
            frame[key] = rec[key]
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["epoch", "step", "loss", "w_l", "lr", "time_s",
                                     "progress", "dataset", "model", "sampler", "seed",
                                     "scale"])
    return pd.concat(frames, ignore_index=True)


def _smooth(values, window: int):
    return values.rolling(window, min_periods=1).mean()


LOSS_CAVEAT = ("Loss levels are not comparable across samplers: harder negatives (ring) raise "
               "the loss by design. Read accuracy from the tables, not from these curves.")


def _seeds_text(counts: Sequence[int]) -> str:
    """``"n=1 seed per line"`` / ``"n=2-3 seeds per line"`` for the lines of one panel."""
    low, high = min(counts), max(counts)
    span = f"{low}" if low == high else f"{low}-{high}"
    return f"n={span} seed{'s' if high > 1 else ''} per line"


def _loss_legend_handles(colors: Mapping[str, str], with_w_l: bool) -> list:
    """One legend entry per sampler (its colour), uniform and ring first, and one for the
    dashed ring ``w_l`` lines."""
    from matplotlib.lines import Line2D

    order = sorted(colors, key=lambda s: (s not in SAMPLER_COLORS,
                                          list(SAMPLER_COLORS).index(s)
                                          if s in SAMPLER_COLORS else 0, s))
    handles = [Line2D([], [], color=colors[s], lw=1.2, label=s) for s in order]
    if with_w_l:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=0.8,
                              label="ring w_l (right axis)"))
    return handles


def plot_loss_curves(records):
    """Figure of pretraining loss against step per (dataset, scale) x model, hue = sampler.

    One legend for the whole figure (below the panels); each panel's title gives the seeds per
    line; the title mentions the min..max band only when some line has several seeds; a
    subtitle warns that loss levels of different samplers are not comparable."""
    logs = load_loss_logs(records)
    title = "Pretraining loss"
    if logs.empty:
        return empty_figure(title, "No pretraining logs found (results/pretrain/**/log.csv).\n"
                                   "Run `snakemake --cores all` (or python -m repro.pretrain) "
                                   "first.")
    panels = sorted({(d, s) for d, s in zip(logs["dataset"], logs["scale"])})
    models = sorted(set(logs["model"]), key=model_rank)
    colors = sampler_colors(list(logs["sampler"]))
    height = 2.8 * len(panels) + 1.1
    fig, axes = plt.subplots(len(panels), len(models), squeeze=False,
                             figsize=(3.6 * len(models), height))
    banded = False
    for r, (dataset, scale) in enumerate(panels):
        for c, model in enumerate(models):
            ax = axes[r][c]
            part = logs[(logs["dataset"] == dataset) & (logs["scale"] == scale)
                        & (logs["model"] == model)]
            name = f"{MODEL_LABELS.get(model, model)} on {dataset} (scale={scale})"
            if part.empty:
                ax.set_title(name, fontsize=9)
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
                continue
            twin, counts = None, []
            for sampler, runs in part.groupby("sampler"):
                color = colors[sampler]
                window = max(1, int(runs["step"].max()) // 50)
                runs = runs.sort_values("step").copy()
                runs["smooth"] = runs.groupby("seed")["loss"].transform(
                    lambda v: _smooth(v, window))
                stats = runs.groupby("step")["smooth"].agg(["mean", "min", "max"])
                counts.append(runs["seed"].nunique())
                ax.plot(stats.index, stats["mean"], color=color, lw=1.2, label=sampler)
                if counts[-1] > 1:
                    banded = True
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=color,
                                    alpha=0.2, lw=0)
                w_l = runs.groupby("step")["w_l"].mean().dropna()
                if not w_l.empty:
                    twin = twin or ax.twinx()
                    twin.plot(w_l.index, w_l.values, color=color, ls="--", lw=0.8)
                    twin.set_ylim(0, 1.02)
                    twin.set_ylabel("ring w_l (dashed)", fontsize=8)
            ax.set_title(f"{name}\n{_seeds_text(counts)}", fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel("loss (running mean)")
    band = "; band = min..max over seeds" if banded else ""
    fig.suptitle(f"{title} ({_scale_text(logs['scale'])}{band})", y=1 - 0.12 / height,
                 va="top")
    fig.text(0.5, 1 - 0.4 / height, LOSS_CAVEAT, ha="center", va="top", fontsize=8,
             style="italic")
    handles = _loss_legend_handles(colors, logs["w_l"].notna().any())
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1 - 0.5 / height), pad=0.4)
    return fig


# ------------------------------------------------------------------------------------------
# Annealing schedules and their effect
# ------------------------------------------------------------------------------------------


def _is_ring(params) -> bool:
    """Whether ``sampler_params`` describe a ring sampler: evaluation records name it in
    ``name``, pretraining records in ``sampler``."""
    return isinstance(params, Mapping) and params.get("name", params.get("sampler")) == "ring"


def _ring_rows(records, stage: str, metric: str):
    """The ``stage`` / ``metric`` rows of ring runs, with their ``schedule, w_l, w_u``."""
    import pandas as pd

    part = records[(records["stage"] == stage) & (records["metric"] == metric)]
    if part.empty or "sampler_params" not in part:
        return pd.DataFrame(columns=list(records.columns) + ["schedule", "w_l", "w_u"])
    is_ring = [_is_ring(p) for p in part["sampler_params"]]
    part = part[is_ring].copy()
    for key in ("schedule", "w_l", "w_u"):
        part[key] = [p.get(key) for p in part["sampler_params"]]
    return part


def _params_except(params: Mapping, keys: Sequence[str]) -> str:
    """The sampler options other than ``keys``, as one sortable label ("k=v, ...")."""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in keys and k != "name")


def schedule_sweep(ring_rows):
    """The ring rows whose ``(w_l, w_u)`` were run with more than one schedule, for the same
    model, evaluation dataset and scale: the only rows where a difference between schedules is
    not also a difference between bounds."""
    keys = ["model", "eval_dataset", "scale", "w_l", "w_u"]
    if ring_rows.empty:
        return ring_rows
    schedules = ring_rows.groupby(keys, dropna=False)["schedule"].transform("nunique")
    return ring_rows[schedules > 1]


def ring_bound_panels(ring_rows):
    """``[((model, eval_dataset, scale, others), rows)]``: one panel per set of runs that
    differ only in their ring bounds ``(w_l, w_u)`` (``others`` labels the sampler options they
    share, e.g. the schedule), kept when at least two bounds were run, in the tables' model
    order (:func:`model_rank`). Runs with another schedule are never averaged into the same
    cell."""
    if ring_rows.empty:
        return []
    ring_rows = ring_rows.assign(others=[_params_except(p, ("w_l", "w_u"))
                                         for p in ring_rows["sampler_params"]])
    panels = [(key, part) for key, part in
              ring_rows.groupby(["model", "eval_dataset", "scale", "others"])
              if part[["w_l", "w_u"]].drop_duplicates().shape[0] > 1]
    return sorted(panels, key=lambda panel: (model_rank(panel[0][0]), panel[0][1:]))


SWEEP_METRICS = (("linear_eval", "top1", "linear-eval top-1 (%)"),
                 ("pretrain", "final_loss", "final pretraining loss"))


def plot_anneal_schedules(records, w_l: float = 0.9, w_l_start: float = 0.0,
                          anneal_fraction: float = 0.5):
    """Left: ``w_l`` against training progress for every schedule (:func:`anneal`). Then one
    panel per metric of :data:`SWEEP_METRICS` (linear-eval top-1, final pretraining loss) that
    has a schedule sweep in the records (ring runs with the same bounds and more than one
    schedule, :func:`schedule_sweep`): that metric per schedule. Without any sweep, a note
    saying how to get one."""
    import numpy as np

    from repro.samplers import SCHEDULES, anneal

    sweeps = [(frame, label) for frame, label in
              ((schedule_sweep(_ring_rows(records, stage, metric)), label)
               for stage, metric, label in SWEEP_METRICS) if not frame.empty]
    fig, axes = plt.subplots(1, 1 + max(1, len(sweeps)), squeeze=False,
                             figsize=(5.5 * (1 + max(1, len(sweeps))), 3.8))
    left, rights = axes[0][0], axes[0][1:]
    progress = np.linspace(0.0, 1.0, 401)
    for name in SCHEDULES:
        left.plot(progress, [anneal(name, w_l_start, w_l, float(p), anneal_fraction)
                             for p in progress], label=name)
    left.axvline(anneal_fraction, color="grey", ls=":", lw=0.8)
    left.set_xlabel("fraction of training")
    left.set_ylabel("ring lower percentile w_l")
    left.set_title(f"w_l schedules ({w_l_start:g} -> {w_l:g} over the first "
                   f"{anneal_fraction:.0%} of training)", fontsize=9)
    left.legend(fontsize=8)

    if not sweeps:
        right = rights[0]
        right.axis("off")
        right.text(0.5, 0.5, "No schedule sweep in the records: ring runs with the same\n"
                             "(w_l, w_u) and more than one schedule are needed (add samplers\n"
                             "such as ring_step: {name: ring, schedule: step, ...} to the config).",
                   ha="center", va="center", fontsize=9, transform=right.transAxes)
        right.set_title("effect of the schedule", fontsize=9)
    for right, (frame, label) in zip(rights, sweeps):
        _bar_by(right, frame, "schedule", label)
        right.set_title(f"effect of the schedule on the {label.split(' (')[0]} "
                        f"({_scale_text(frame['scale'])})", fontsize=9)
    fig.tight_layout()
    return fig


def _bar_by(ax, frame, key: str, label: str) -> None:
    """Mean (bar) and per-seed values (dots) of ``value`` per ``key`` and ``model`` (hues in
    the tables' model order)."""
    import seaborn as sns

    frame = frame.sort_values("model", key=lambda col: [model_rank(m) for m in col])
    method = [f"{MODEL_LABELS.get(m, m)} / {d} ({s})" for m, d, s in
              zip(frame["model"], frame["eval_dataset"], frame["scale"])]
    if key == "schedule":  # say which ring the schedules were compared on
        method = [f"{m}, ring [{wl:g}, {wu:g}]" for m, wl, wu in
                  zip(method, frame["w_l"], frame["w_u"])]
    frame = frame.assign(method=method)
    frame[key] = frame[key].astype(str)
    hues = list(dict.fromkeys(frame["method"]))
    sns.barplot(data=frame, x=key, y="value", hue="method", hue_order=hues, ax=ax,
                errorbar=None, alpha=0.6)
    sns.stripplot(data=frame, x=key, y="value", hue="method", hue_order=hues, ax=ax,
                  dodge=True, legend=False, size=4, palette={h: "black" for h in hues})
    ax.set_ylabel(label)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              frameon=False)


# ------------------------------------------------------------------------------------------
# Gaussian toy: bias and variance of NCE vs Ring
# ------------------------------------------------------------------------------------------


def plot_toy(estimates_csv: str | os.PathLike, scale: Optional[str] = None):
    """Violins and points of the MI estimates per sampler / ring, lines at the true MI and at
    ``log(K + 1)`` (the ceiling of an estimate with ``K`` negatives)."""
    import pandas as pd
    import seaborn as sns

    title = "NCE vs Ring on correlated Gaussians (known MI)"
    path = Path(estimates_csv)
    if not path.exists():
        return empty_figure(title, f"No toy estimates at {path}.\nRun `snakemake "
                                   f"{path}` (or python -m repro.toy --csv {path} ...).")
    frame = pd.read_csv(path)
    if frame.empty:
        return empty_figure(title, f"{path} holds no estimates.")
    frame["estimator"] = [
        "NCE (uniform)" if s == "uniform" else f"Ring [{wl:g}, {wu:g}]"
        for s, wl, wu in zip(frame["sampler"], frame["w_l"], frame["w_u"])
    ]
    rings = frame[frame["sampler"] != "uniform"].sort_values(["w_l", "w_u"])
    order = (["NCE (uniform)"] if (frame["sampler"] == "uniform").any() else []) + list(
        dict.fromkeys(rings["estimator"]))
    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * len(order), 4))
    # density_norm="width": every violin equally wide, so a tight spread reads as short, not
    # as a wide flat bar (the default "area" widens the narrowest distributions most)
    sns.violinplot(data=frame, x="estimator", y="estimate", order=order, ax=ax, inner=None,
                   color="0.85", cut=0, density_norm="width")
    sns.stripplot(data=frame, x="estimator", y="estimate", order=order, ax=ax, size=3,
                  color="black", alpha=0.6)
    true_mi, log_k1 = float(frame["true_mi"].iloc[0]), float(frame["log_k1"].iloc[0])
    ax.axhline(true_mi, color="tab:green", lw=1.2, label=f"true MI = {true_mi:.3f} nats")
    ax.axhline(log_k1, color="tab:purple", ls="--", lw=1.0,
               label=f"log(K+1) = {log_k1:.3f} nats")
    stats = frame.groupby("estimator")["estimate"].agg(["mean", "std"])
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{name}\nbias {stats.loc[name, 'mean'] - true_mi:+.3f}\n"
                        f"sd {stats.loc[name, 'std']:.3f}" for name in order], fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("MI estimate (nats)")
    n_draws = frame["seed"].nunique()
    ax.set_title(f"{title}: {n_draws} draws of negatives"
                 + (f" (scale={scale})" if scale else ""), fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# Accuracy against the ring bounds
# ------------------------------------------------------------------------------------------


def _bound_grid(part):
    """``(mean top-1 per (w_l, w_u) as a w_l x w_u table, cell labels "mean\\n(n=seeds)")``."""
    grid = part.groupby(["w_l", "w_u"])["value"].mean().unstack("w_u")
    counts = (part.groupby(["w_l", "w_u"])["seed"].nunique().unstack("w_u")
              .reindex_like(grid).fillna(0))
    labels = [[("" if math.isnan(x) else f"{x:.1f}\n(n={int(k)})")
               for x, k in zip(grid_row, count_row)]
              for grid_row, count_row in zip(grid.values, counts.values)]
    return grid, labels


def plot_ring_bounds(records):
    """Heatmap of linear-eval top-1 (mean over seeds, annotated in each cell) over
    ``(w_l, w_u)``, one panel per (model, eval dataset, scale, other options) in the tables'
    model order, all panels on one colour scale (one colour bar), so that equal colour steps
    mean equal accuracy steps in every panel."""
    import seaborn as sns

    title = "Linear-eval accuracy vs ring bounds (w_l, w_u)"
    panels = ring_bound_panels(
        _ring_rows(records, "linear_eval", "top1").dropna(subset=["w_l", "w_u"]))
    if not panels:
        return empty_figure(title, "No ring-bound sweep in the records: this needs "
                                   "linear_eval records of ring runs\nwith at least two "
                                   "different (w_l, w_u), e.g. samplers ring_50_99 / ring_90_99 "
                                   "in the config.")
    grids = [_bound_grid(part) for _, part in panels]
    vmin = min(float(grid.min().min()) for grid, _ in grids)
    vmax = max(float(grid.max().max()) for grid, _ in grids)
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(4.0 * cols + 1.0, 3.6 * rows))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, ((model, dataset, scale, others), _), (grid, labels) in zip(axes.flat, panels,
                                                                          grids):
        sns.heatmap(grid, annot=labels, fmt="", cmap="viridis", vmin=vmin, vmax=vmax, ax=ax,
                    cbar=False, annot_kws={"fontsize": 7})
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {dataset} (scale={scale})"
                     + (f"\n{others}" if others else ""), fontsize=9)
        ax.set_xlabel("w_u (upper percentile)")
        ax.set_ylabel("w_l (lower percentile)")
    fig.suptitle(f"{title}; one colour scale for all panels")
    fig.tight_layout(rect=(0, 0, 1 - 1.0 / (4.0 * cols + 1.0), 1))
    cax = fig.add_axes((1 - 0.8 / (4.0 * cols + 1.0), 0.15, 0.15 / (4.0 * cols + 1.0), 0.7))
    fig.colorbar(axes.flat[0].collections[0], cax=cax, label="top-1 (%)")
    return fig


# ------------------------------------------------------------------------------------------
# All figures
# ------------------------------------------------------------------------------------------

FIGURES = ("loss_curves", "anneal_schedules", "toy_bias_variance", "ring_bounds")


def make_figures(results: str | os.PathLike, out_dir: str | os.PathLike,
                 only: Optional[Sequence[str]] = None,
                 anneal: Optional[Mapping[str, float]] = None) -> list[Path]:
    """Write every figure (or those named in ``only``) from the records under ``results``.

    Args:
        results: the results folder (``result.json`` files, ``toy/estimates.csv``).
        out_dir: where ``<name>.png`` / ``<name>.pdf`` go.
        only: a subset of :data:`FIGURES`.
        anneal: ``w_l``, ``w_l_start``, ``anneal_fraction`` for the schedule figure.
    """
    from repro.results import load_records

    names = list(only or FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    results = Path(results)
    records = load_records(results) if results.is_dir() else load_records([])
    paths: list[Path] = []
    for name in names:
        if name == "loss_curves":
            fig = plot_loss_curves(records)
        elif name == "anneal_schedules":
            fig = plot_anneal_schedules(records, **dict(anneal or {}))
        elif name == "toy_bias_variance":
            toy = records[records["stage"] == "toy"] if not records.empty else records
            scale = str(toy["scale"].iloc[0]) if len(toy) else None
            fig = plot_toy(results / "toy" / "estimates.csv", scale)
        else:
            fig = plot_ring_bounds(records)
        paths += save_figure(fig, out_dir, name)
    return paths
