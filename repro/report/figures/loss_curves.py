"""Pretraining loss curves (:func:`plot_loss_curves`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from repro.report.figures.common import (
    SAMPLER_COLORS,
    _add_footer,
    _scale_text,
    _settings_for,
    config_footer,
    empty_figure,
    sampler_colors,
)
from repro.report.tables import MODEL_LABELS, model_rank

# ------------------------------------------------------------------------------------------
# Training loss curves
# ------------------------------------------------------------------------------------------


LOG_COLUMNS = ("epoch", "step", "loss", "w_l")
"""The ``log.csv`` columns the loss curves read (repro.pretrain writes them every epoch)."""


def _skip(log: Path, why: str) -> None:
    """Say that one run's curve is left out, and how to get it back."""
    import sys

    print(f"warning: {log}: {why}; its curve is left out (re-run that pretraining to rewrite "
          f"it)", file=sys.stderr)


def load_loss_logs(records):
    """Per-step pretraining logs of every ``pretrain`` record (``log.csv`` beside its
    ``result.json``), with the record's ``dataset, model, sampler, seed, scale``.

    Returns:
        DataFrame with columns ``epoch, step, loss, w_l, lr, time_s, progress, dataset,
        model, sampler, seed, scale``; records without a log are skipped, and so is a log
        that is not a readable CSV with :data:`LOG_COLUMNS` (a warning names it).
    """
    import pandas as pd

    frames = []
    pre = records[records["stage"] == "pretrain"].drop_duplicates("path")
    for rec in pre.to_dict("records"):
        log = Path(rec["path"]).parent / "log.csv"
        if not log.exists():
            continue
        try:
            frame = pd.read_csv(log)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            _skip(log, f"not a readable CSV ({str(err).strip().splitlines()[0]})")
            continue
        lacks = [c for c in LOG_COLUMNS if c not in frame.columns]
        if lacks:
            _skip(log, f"lacks the columns {lacks}")
            continue
        if frame.empty:
            continue
        for column in ("step", "loss"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame = frame.dropna(subset=["step", "loss"])
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
    """Running mean over ``window`` steps."""
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


def plot_loss_curves(records, settings=None, logs=None) -> Figure:
    """Figure of pretraining loss against step per (dataset, scale) x model, hue = sampler.

    One legend for the whole figure (below the panels); each panel's title gives the seeds per
    line; the title mentions the min..max band only when some line has several seeds; a
    subtitle warns that loss levels of different samplers are not comparable; a footer gives
    the config (:func:`config_footer`).

    Args:
        records: result records (:func:`repro.results.load_records`).
        settings: :func:`run_settings` of the records (default: from the records alone).
        logs: :func:`load_loss_logs` of the records (default: read them).
    """
    logs = load_loss_logs(records) if logs is None else logs
    title = "Pretraining loss"
    footer = config_footer(records[records["stage"] == "pretrain"],
                           _settings_for(records, settings))
    if logs.empty:
        return empty_figure(title, "No pretraining logs found (results/pretrain/**/log.csv).\n"
                                   "Run `snakemake --cores all` (or python -m repro.pretrain) "
                                   "first.", footer)
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
    _add_footer(fig, footer)
    return fig
