"""Figures from result records (matplotlib + seaborn, Agg backend; PNG and PDF).

Each ``plot_*`` function builds a :class:`matplotlib.figure.Figure` from records (a
:func:`repro.results.load_records` DataFrame) and returns it; :func:`make_figures` reads the
records and saves the figures (:func:`save_figure`).

* :func:`plot_loss_curves`: pretraining loss per step, one panel per (dataset, scale, model),
  one line per sampler (mean over seeds, band = min..max where a sampler has several seeds),
  the ring's ``w_l`` on a twin axis, one legend for the figure.
* :func:`plot_anneal_schedules`: ``w_l`` over training for every schedule of
  :data:`repro.samplers.SCHEDULES` (those no run used dashed grey, "not run"), and, for each of
  linear-evaluation accuracy and final pretraining loss that has records of a schedule sweep,
  that metric per schedule, one panel per model, with ``n`` on every bar and the model's
  uniform (NCE) and untrained (random-init) accuracy as reference lines.
* :func:`plot_toy`: NCE vs Ring estimates of a known mutual information (Gaussian toy):
  bias and spread per sampler and ring, with lines at the true MI and at the ``log(K + 1)``
  ceiling of the InfoNCE bound; the title gives the toy's ``d, rho, n, K``.
* :func:`plot_ring_bounds`: linear-eval top-1 against the ring bounds ``(w_l, w_u)``, one
  dot plot per set of ring runs that differ only in their bounds (mean, per-seed dots, 95%
  t-interval when ``n > 1``, ``n`` on every point), with the same model's uniform (NCE) and
  untrained (random-init) accuracy as reference lines.

Every figure carries a footer (:func:`config_footer`) with the config it was made from: the
``scale``, the pretraining settings read from the records (epochs, backbone and width, batch
size; from the run spec in each ``checkpoint.pt`` when :func:`load_run_specs` can read it) and
the seeds. With no suitable records a figure still gets written, saying what is missing and how
to produce it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from repro.report.tables import MODEL_LABELS, model_rank  # noqa: E402

__all__ = [
    "FIGURES",
    "FOOTER_PREFIX",
    "save_figure",
    "sampler_colors",
    "empty_figure",
    "load_loss_logs",
    "load_run_specs",
    "load_toy_estimates",
    "run_settings",
    "config_footer",
    "reference_rows",
    "schedules_run",
    "toy_settings",
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
UNTRAINED = "untrained"  # sampler label of the random-init baseline (repro.config.UNTRAINED)
# reference lines: (kind, legend name, colour, line style)
REFERENCE_STYLES = {"uniform": ("uniform (NCE)", "tab:blue", "-"),
                    UNTRAINED: ("untrained (random init)", "0.35", "--")}
FOOTER_PREFIX = "made from: "


def sampler_colors(samplers: Sequence[str]) -> dict[str, str]:
    """One distinct colour per sampler label: ``uniform`` blue and ``ring`` red as everywhere,
    the other labels (ablations) in sorted order from the remaining tab10 colours (cycling)."""
    others = sorted(set(samplers) - set(SAMPLER_COLORS))
    colors = {s: _OTHER_COLORS[i % len(_OTHER_COLORS)] for i, s in enumerate(others)}
    return {**colors, **{s: c for s, c in SAMPLER_COLORS.items() if s in set(samplers)}}


def save_figure(fig: Figure, out_dir: str | os.PathLike, stem: str,
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


def empty_figure(title: str, message: str, footer: Optional[str] = None) -> Figure:
    """A figure that says why it is empty (and how to fill it)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10,
            transform=ax.transAxes)
    if footer:
        _add_footer(fig, footer)
    return fig


def _scale_text(scales: Iterable[Any]) -> str:
    found = sorted({str(s) for s in scales if isinstance(s, str) and s})
    return "scale=" + (", ".join(found) if found else "?")


# ------------------------------------------------------------------------------------------
# The config a figure was made from (footer)
# ------------------------------------------------------------------------------------------

SETTING_COLUMNS = ("scale", "dataset", "model", "sampler", "seed", "epochs", "batch_size",
                   "arch", "width")


def load_run_specs(records) -> dict[str, dict[str, Any]]:
    """The run spec (:func:`repro.config.run_spec`) of every ``pretrain`` record, keyed by the
    record's path: the record's own ``config`` where it has one (records since it was added),
    else read from the ``checkpoint.pt`` beside its ``result.json`` (memory-mapped: no weights
    are read). Records with neither are left out."""
    import torch

    specs: dict[str, dict[str, Any]] = {}
    if records.empty:
        return specs
    pretrain = records[records["stage"] == "pretrain"].drop_duplicates("path")
    configs = pretrain["config"] if "config" in pretrain else [None] * len(pretrain)
    for path, config in zip(pretrain["path"], configs):
        if isinstance(config, Mapping) and "pretrain" in config:
            specs[str(path)] = dict(config)
            continue
        checkpoint = Path(path).parent / "checkpoint.pt"
        try:
            state = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)
            specs[str(path)] = dict(state["config"])
        except Exception:  # missing, truncated or foreign: the footer says less, nothing fails
            continue
    return specs


def _setting(spec: Mapping[str, Any], extra: Mapping[str, Any], key: str) -> Any:
    """One pretraining setting of a run: from its spec when known, else from the record."""
    pretrain = spec.get("pretrain") or {}
    backbone = pretrain.get("backbone") or {}
    if key in ("arch", "width"):
        return backbone.get(key)
    if key in ("epochs", "batch_size"):
        return pretrain.get(key, extra.get(key))
    return None


def run_settings(records, specs: Optional[Mapping[str, Mapping[str, Any]]] = None):
    """One row per ``pretrain`` record: ``scale, dataset, model, sampler, seed, epochs,
    batch_size, arch, width``. ``epochs`` comes from the record itself; the others from
    ``specs`` (:func:`load_run_specs`, keyed by record path) and are ``None`` without it."""
    import pandas as pd

    if records.empty:
        return pd.DataFrame(columns=list(SETTING_COLUMNS))
    pre = records[records["stage"] == "pretrain"].drop_duplicates("path")
    rows = []
    for rec in pre.to_dict("records"):
        spec = (specs or {}).get(str(rec["path"])) or {}
        extra = rec.get("extra") if isinstance(rec.get("extra"), Mapping) else {}
        rows.append({**{k: rec[k] for k in ("scale", "dataset", "model", "sampler", "seed")},
                     **{k: _setting(spec, extra, k) for k in SETTING_COLUMNS[5:]}})
    return pd.DataFrame(rows, columns=list(SETTING_COLUMNS))


def _span(values: Iterable[Any], unit: str = "") -> Optional[str]:
    """``"12"`` for one distinct value, ``"12-200"`` for numbers, ``"a/b"`` otherwise;
    ``None`` when no value is known."""
    found = sorted({v for v in values if v is not None and not (isinstance(v, float)
                                                                   and math.isnan(v))},
                   key=str)
    if not found:
        return None
    if len(found) == 1:
        text = f"{found[0]:g}" if isinstance(found[0], float) else str(found[0])
    elif all(isinstance(v, (int, float)) for v in found):
        text = f"{min(found):g}-{max(found):g}"
    else:
        text = "/".join(str(v) for v in found)
    return f"{text}{unit}"


def _seed_text(shown) -> Optional[str]:
    """``"seeds 0,1 (n=2 per run)"`` for the rows a figure draws (one run = stage, model,
    sampler, evaluation data, scale)."""
    if shown.empty or "seed" not in shown:
        return None
    seeds = sorted({int(s) for s in shown["seed"].dropna()})
    keys = [k for k in ("stage", "model", "sampler", "eval_dataset", "scale") if k in shown]
    per_run = shown.groupby(keys, dropna=False)["seed"].nunique()
    n = _span([int(per_run.min()), int(per_run.max())])
    return f"seeds {','.join(map(str, seeds))} (n={n} per run)"


def _pretrain_text(settings) -> str:
    """``"pretrain on shapes: resnet18 width 0.125, 12 epochs, batch 128"`` (what is known)."""
    if settings.empty:
        return "pretraining settings: no pretrain records"
    parts = [" ".join(p for p in (_span(settings["arch"]),
                                  (f"width {_span(settings['width'])}"
                                   if _span(settings["width"]) else None)) if p),
             _span(settings["epochs"], " epochs"),
             (f"batch {_span(settings['batch_size'])}" if _span(settings["batch_size"])
              else None)]
    known = ", ".join(p for p in parts if p)
    return f"pretrain on {_span(settings['dataset'])}: {known or 'settings not recorded'}"


def _linear_eval_text(shown) -> Optional[str]:
    """``"linear eval 30 epochs"`` from the ``extra`` of the linear_eval rows shown."""
    if shown.empty or "extra" not in shown:
        return None
    rows = shown[shown["stage"] == "linear_eval"]
    epochs = _span(e.get("epochs") for e in rows["extra"] if isinstance(e, Mapping))
    return f"linear eval {epochs} epochs" if epochs else None


def config_footer(shown, settings) -> str:
    """One short line per scale of the rows a figure draws (``shown``): the scale, the
    pretraining settings of that scale (``settings``: :func:`run_settings`), the seeds and
    (for accuracy figures) the linear-evaluation epochs, e.g.
    ``made from: scale=default | pretrain on shapes: resnet18 width 0.125, 12 epochs,
    batch 128 | seeds 0 (n=1 per run) | linear eval 30 epochs``."""
    if shown.empty:
        return FOOTER_PREFIX + "no records"
    lines = []
    for scale in sorted({str(s) for s in shown["scale"].dropna()}):
        rows = shown[shown["scale"] == scale]
        pre = settings[settings["scale"] == scale]
        parts = [f"scale={scale}", _pretrain_text(pre), _seed_text(rows),
                 _linear_eval_text(rows)]
        lines.append(" | ".join(p for p in parts if p))
    return FOOTER_PREFIX + "\n".join(lines)


def _add_footer(fig: Figure, text: str) -> None:
    """The config footer, small, below the panels (``bbox_inches="tight"`` keeps it)."""
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=7, color="0.3")


def _settings_for(records, settings):
    """``settings`` or, when not given, what the records alone say (:func:`run_settings`)."""
    return run_settings(records) if settings is None else settings


# ------------------------------------------------------------------------------------------
# Reference runs: the uniform sampler and the untrained network, per model
# ------------------------------------------------------------------------------------------


def _sampler_name(params: Any) -> Optional[str]:
    """The sampler a record's ``sampler_params`` name (``name``; pretraining records written
    before every stage recorded the config block name it ``sampler``)."""
    return params.get("name", params.get("sampler")) if isinstance(params, Mapping) else None


def reference_rows(records, metric: str = "top1"):
    """The ``linear_eval`` / ``metric`` rows of each model's reference runs, with a column
    ``reference``: ``"untrained"`` (sampler label ``untrained``: the random-init baseline) or
    ``"uniform"`` (any other run of the uniform sampler: NCE)."""
    part = records[(records["stage"] == "linear_eval") & (records["metric"] == metric)]
    if part.empty:
        return part.assign(reference=[])
    kind = [UNTRAINED if s == UNTRAINED else "uniform" if _sampler_name(p) == "uniform" else None
            for s, p in zip(part["sampler"], part.get("sampler_params", [None] * len(part)))]
    part = part.assign(reference=kind)
    return part[part["reference"].notna()]


def _summary(values: Iterable[float]) -> tuple[float, Optional[float], int]:
    """Mean, 95% t-interval half-width (``None`` for one value) and ``n``."""
    from repro.report.stats import t_ci95

    return t_ci95(values)


def _draw_references(ax, refs) -> list:
    """Horizontal line (and 95% t band when ``n > 1``) at the mean of each reference kind in
    ``refs`` (:func:`reference_rows` of one model, evaluation data and scale); the legend
    label gives its value and ``n``. Returns the lines."""
    lines = []
    for kind, (name, color, style) in REFERENCE_STYLES.items():
        values = refs.loc[refs["reference"] == kind, "value"] if not refs.empty else []
        if len(values) == 0:
            continue
        mean, half, n = _summary(values)
        lines.append(ax.axhline(mean, color=color, ls=style, lw=1.2, zorder=2.5,
                                label=f"{name}: {mean:.1f} (n={n})"))
        if half is not None:
            ax.axhspan(mean - half, mean + half, color=color, alpha=0.12, lw=0, zorder=0)
    return lines


def _refs_for(refs, model: str, eval_dataset: str, scale: str):
    """The reference rows of one model, evaluation data and scale."""
    if refs.empty:
        return refs
    return refs[(refs["model"] == model) & (refs["eval_dataset"] == eval_dataset)
                & (refs["scale"] == scale)]


def _missing_refs_text(refs) -> str:
    """``"(no untrained run)"``-style note for the reference kinds absent from ``refs``."""
    kinds = set(refs["reference"]) if not refs.empty else set()
    missing = [k for k in REFERENCE_STYLES if k not in kinds]
    return f"no {' / '.join(missing)} run in the records" if missing else ""


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



# ------------------------------------------------------------------------------------------
# Annealing schedules and their effect
# ------------------------------------------------------------------------------------------


def _is_ring(params: Any) -> bool:
    """Whether ``sampler_params`` describe a ring sampler (:func:`_sampler_name`)."""
    return _sampler_name(params) == "ring"


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


def schedules_run(records) -> list[str]:
    """The ``w_l`` schedules that some ring run in the records (pretraining or linear
    evaluation) used, sorted; a ring without a ``schedule`` option ran the default
    (``linear``, :class:`repro.samplers.RingSampler`)."""
    found = set()
    for stage, metric in SWEEP_METRICS_KEYS:
        rows = _ring_rows(records, stage, metric)
        found |= {s if isinstance(s, str) else "linear" for s in rows["schedule"]}
    return sorted(found)


SWEEP_METRICS = (("linear_eval", "top1", "linear-eval top-1 (%)"),
                 ("pretrain", "final_loss", "final pretraining loss"))
SWEEP_METRICS_KEYS = tuple((stage, metric) for stage, metric, _ in SWEEP_METRICS)


SCHEDULE_COLORS = {"linear": "tab:red", "constant": "tab:purple", "step": "tab:green",
                   "exponential": "tab:olive"}  # never blue or grey: those are the references


def _schedule_color(name: str) -> str:
    """The colour of a schedule, the same in the curves and the bars."""
    return SCHEDULE_COLORS.get(name, "tab:brown")


def _draw_schedules(ax, run: Sequence[str], w_l: float, w_l_start: float,
                    anneal_fraction: float) -> None:
    """``w_l`` against training progress for every schedule of
    :data:`repro.samplers.SCHEDULES`: the ones in ``run`` solid and coloured, the others
    dashed grey and labelled "not run"."""
    import numpy as np

    from repro.samplers import SCHEDULES, anneal

    progress = np.linspace(0.0, 1.0, 401)
    for name in SCHEDULES:
        values = [anneal(name, w_l_start, w_l, float(p), anneal_fraction) for p in progress]
        if name in run:
            ax.plot(progress, values, color=_schedule_color(name), lw=1.8, label=f"{name} (run)")
        else:
            ax.plot(progress, values, color="0.65", ls="--", lw=1.0,
                    label=f"{name} (not run)")
    ax.axvline(anneal_fraction, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("fraction of training")
    ax.set_ylabel("ring lower percentile w_l")
    ax.set_title(f"w_l schedules ({w_l_start:g} -> {w_l:g} over the first "
                 f"{anneal_fraction:.0%} of training)\nsolid: trained in these records; "
                 f"dashed grey: not run", fontsize=9)
    ax.legend(fontsize=7)


def _schedule_groups(frame) -> list[tuple[tuple, Any]]:
    """``[((model, eval_dataset, scale, w_l, w_u), rows)]`` of a schedule sweep, in the
    tables' model order."""
    groups = list(frame.groupby(["model", "eval_dataset", "scale", "w_l", "w_u"]))
    return sorted(groups, key=lambda g: (model_rank(g[0][0]), g[0][1:]))


def _annotate_n(ax, x: float, y: float, mean: float, n: int, digits: int) -> None:
    """``"41.4\\nn=1"`` just above ``y`` at ``x``."""
    ax.annotate(f"{mean:.{digits}f}\nn={n}", (x, y), xytext=(0, 4), textcoords="offset points",
                ha="center", va="bottom", fontsize=7, zorder=5,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 0.5})


def _schedule_bars(ax, part, label: str, refs=None) -> None:
    """One bar per schedule (mean over seeds; black dots: the seeds; error bar: 95% t-interval
    when ``n > 1``) with its mean and ``n`` above it, and, given ``refs``
    (:func:`reference_rows` of the panel's model), the reference lines."""
    order = sorted({str(s) for s in part["schedule"]}, key=lambda s: (s != "linear", s))
    digits = 1 if "top-1" in label else 3
    for x, schedule in enumerate(order):
        values = part.loc[part["schedule"].astype(str) == schedule, "value"].astype(float)
        mean, half, n = _summary(values)
        ax.bar(x, mean, width=0.6, color=_schedule_color(schedule), alpha=0.6, zorder=2)
        ax.plot([x] * len(values), values, "o", color="black", ms=3, zorder=3)
        if half is not None:
            ax.errorbar(x, mean, yerr=half, color="black", capsize=4, lw=1, zorder=3)
        _annotate_n(ax, x, max(values.max(), mean + (half or 0.0)), mean, n, digits)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order)
    ax.set_xlabel("w_l schedule")
    ax.set_ylabel(label)
    if refs is not None:
        if _draw_references(ax, refs):
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                      frameon=False)
        note = _missing_refs_text(refs)
        if note:
            ax.text(0.01, 0.99, note, transform=ax.transAxes, ha="left", va="top", fontsize=7,
                    color="0.4")
    ax.margins(y=0.15)


def _sweep_panels(records) -> list[tuple[str, str, list]]:
    """``[(stage, axis label, groups)]`` for each metric of :data:`SWEEP_METRICS` that has a
    schedule sweep (:func:`schedule_sweep`, :func:`_schedule_groups`)."""
    panels = []
    for stage, metric, label in SWEEP_METRICS:
        frame = schedule_sweep(_ring_rows(records, stage, metric))
        if not frame.empty:
            panels.append((stage, label, _schedule_groups(frame)))
    return panels


def _group_title(key: tuple, stage: str) -> str:
    """``"IR on shapes (scale=default)\\nring [0.9, 0.99]"``."""
    model, dataset, scale, w_l, w_u = key
    where = "pretrained on" if stage == "pretrain" else "evaluated on"
    return (f"{MODEL_LABELS.get(model, model)}, {where} {dataset} (scale={scale})\n"
            f"ring [{w_l:g}, {w_u:g}]")


def plot_anneal_schedules(records, w_l: float = 0.9, w_l_start: float = 0.0,
                          anneal_fraction: float = 0.5, settings=None) -> Figure:
    """Top left: ``w_l`` against training progress for every schedule (:func:`anneal`), the
    schedules of the runs in the records solid, the others dashed grey ("not run"). Then one
    row per metric of :data:`SWEEP_METRICS` (linear-eval top-1, final pretraining loss) that
    has a schedule sweep in the records (ring runs with the same bounds and more than one
    schedule, :func:`schedule_sweep`), one panel per model: that metric per schedule, ``n``
    on each bar, and for accuracy the model's uniform and untrained runs as reference lines.
    Without any sweep, a note saying how to get one. A footer gives the config."""
    sweeps = _sweep_panels(records)
    cols = 1 + max([1] + [len(groups) for _, _, groups in sweeps])
    rows = max(1, len(sweeps))
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(3.9 * cols, 4.3 * rows))
    _draw_schedules(axes[0][0], schedules_run(records), w_l, w_l_start, anneal_fraction)
    for ax in axes[1:, 0]:
        ax.axis("off")
    refs = reference_rows(records)
    shown = []
    for r, (stage, label, groups) in enumerate(sweeps):
        for c, (key, part) in enumerate(groups, start=1):
            accuracy = stage == "linear_eval"
            _schedule_bars(axes[r][c], part, label,
                           _refs_for(refs, *key[:3]) if accuracy else None)
            axes[r][c].set_title(_group_title(key, stage), fontsize=9)
            shown.append(part)
            if accuracy:
                shown.append(_refs_for(refs, *key[:3]))
        for ax in axes[r][1 + len(groups):]:
            ax.axis("off")
    if not sweeps:
        _no_sweep_note(axes[0][1])
    _finish(fig, records, shown, settings, "Effect of the w_l annealing schedule; bars: mean "
            "over seeds, dots: seeds, error bars: 95% t-interval (n > 1)")
    return fig


def _no_sweep_note(ax) -> None:
    """What to run to get a schedule sweep."""
    ax.axis("off")
    ax.text(0.5, 0.5, "No schedule sweep in the records: ring runs with the same\n"
                      "(w_l, w_u) and more than one schedule are needed (add samplers\n"
                      "such as ring_step: {name: ring, schedule: step, ...} to the config).",
            ha="center", va="center", fontsize=9, transform=ax.transAxes)
    ax.set_title("effect of the schedule", fontsize=9)


def _finish(fig: Figure, records, shown: list, settings, title: str) -> None:
    """Suptitle, tight layout and the config footer of the rows drawn (``shown``; all the
    records' linear-eval rows when nothing was drawn)."""
    import pandas as pd

    drawn = pd.concat(shown, ignore_index=True) if shown else records.iloc[0:0]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _add_footer(fig, config_footer(drawn if not drawn.empty else records,
                                   _settings_for(records, settings)))


# ------------------------------------------------------------------------------------------
# Gaussian toy: bias and variance of NCE vs Ring
# ------------------------------------------------------------------------------------------

_TOY_DATASET = re.compile(r"gaussian_d(?P<dim>\d+)_rho(?P<rho>[0-9.eE+-]+)$")


def load_toy_estimates(path: str | os.PathLike):
    """The toy's estimates CSV (:func:`repro.toy.run_sweep`), or ``None`` when absent."""
    import pandas as pd

    path = Path(path)
    return pd.read_csv(path) if path.exists() else None


def toy_settings(estimates, toy_records=None) -> dict[str, Any]:
    """What the Gaussian toy was run with: ``dim, rho, n, K, draws, true_mi, log_k1, scale``.

    ``true_mi``, ``log_k1``, ``K`` (from ``log(K + 1)``) and ``draws`` come from the estimates;
    ``dim, rho, n`` from the toy's result record (``extra`` when it lists them, else ``dim``
    and ``rho`` from its dataset name ``gaussian_d<dim>_rho<rho>``); ``None`` when unknown."""
    log_k1 = float(estimates["log_k1"].iloc[0])
    found: dict[str, Any] = {"dim": None, "rho": None, "n": None, "scale": None,
                             "true_mi": float(estimates["true_mi"].iloc[0]), "log_k1": log_k1,
                             "K": int(round(math.exp(log_k1) - 1)),
                             "draws": int(estimates["seed"].nunique())}
    if toy_records is None or toy_records.empty:
        return found
    rec = toy_records.iloc[0]
    extra = rec.get("extra") if isinstance(rec.get("extra"), Mapping) else {}
    match = _TOY_DATASET.match(str(rec.get("dataset", "")))
    if match:
        found.update(dim=int(match["dim"]), rho=float(match["rho"]))
    found.update({k: extra[k] for k in ("dim", "rho", "n") if extra.get(k) is not None})
    found["scale"] = rec.get("scale")
    return found


def _toy_settings_text(s: Mapping[str, Any]) -> str:
    """``"d=4, rho=0.9, n=512 pairs, K=16 negatives, 20 draws"`` (``?`` for the unknown)."""
    def show(v: Any) -> str:
        return "?" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    n = f"n={show(s['n'])} pairs" if s["n"] is not None else "n not recorded"
    return (f"d={show(s['dim'])}, rho={show(s['rho'])}, {n}, K={s['K']} negatives, "
            f"{s['draws']} draws of negatives")


def plot_toy(estimates, toy_records=None, source: str = "results/toy/estimates.csv") -> Figure:
    """Violins and points of the MI estimates per sampler / ring, lines at the true MI and at
    the ``log(K + 1)`` ceiling of the InfoNCE bound (no estimate with ``K`` negatives can
    exceed it); the title gives the toy's settings (:func:`toy_settings`).

    Args:
        estimates: the toy's estimates (:func:`load_toy_estimates`), or ``None``.
        toy_records: the toy's result record rows (stage ``toy``), for ``d, rho, n``.
        source: where the estimates live (named when there are none).
    """
    import seaborn as sns

    title = "NCE vs Ring on correlated Gaussians (known MI)"
    if estimates is None:
        return empty_figure(title, f"No toy estimates at {source}.\nRun `snakemake "
                                   f"{source}` (or python -m repro.toy --csv {source} ...).")
    if estimates.empty:
        return empty_figure(title, f"{source} holds no estimates.")
    frame = estimates.assign(estimator=[
        "NCE (uniform)" if s == "uniform" else f"Ring [{wl:g}, {wu:g}]"
        for s, wl, wu in zip(estimates["sampler"], estimates["w_l"], estimates["w_u"])])
    rings = frame[frame["sampler"] != "uniform"].sort_values(["w_l", "w_u"])
    order = (["NCE (uniform)"] if (frame["sampler"] == "uniform").any() else []) + list(
        dict.fromkeys(rings["estimator"]))
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
    ax.set_xticklabels([f"{name}\nbias {stats.loc[name, 'mean'] - true_mi:+.3f}\n"
                        f"sd {stats.loc[name, 'std']:.3f}" for name in order], fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("MI estimate (nats)")
    ax.set_title(f"{title}\n{_toy_settings_text(settings)}; true MI = {true_mi:.3f} nats",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    scale = f"scale={settings['scale']}" if settings["scale"] else "scale=?"
    _add_footer(fig, f"{FOOTER_PREFIX}{scale} | Gaussian toy, optimal critic (no training): "
                     f"{_toy_settings_text(settings)}")
    return fig


# ------------------------------------------------------------------------------------------
# Accuracy against the ring bounds
# ------------------------------------------------------------------------------------------


def ring_bound_panels(ring_rows) -> list[tuple[tuple, Any]]:
    """``[((model, eval_dataset, scale, others), rows)]``: one panel per set of runs that
    differ only in their ring bounds ``(w_l, w_u)`` (``others`` labels the sampler options they
    share, e.g. the schedule), kept when at least two bounds were run, in the tables' model
    order (:func:`model_rank`). Runs with another schedule are never averaged into the same
    point."""
    if ring_rows.empty:
        return []
    ring_rows = ring_rows.assign(others=[_params_except(p, ("w_l", "w_u"))
                                         for p in ring_rows["sampler_params"]])
    panels = [(key, part) for key, part in
              ring_rows.groupby(["model", "eval_dataset", "scale", "others"])
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


def _ring_bound_panel(ax, key: tuple, part, refs) -> None:
    """One dot plot: the ring runs of ``part`` per bounds, and the reference lines."""
    model, dataset, scale, others = key
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
    for ax, (key, part) in zip(axes.flat, panels):
        panel_refs = _refs_for(refs, *key[:3])
        _ring_bound_panel(ax, key, part, panel_refs)
        shown += [part, panel_refs]
    _finish(fig, records, shown, settings, f"{title}; points: mean over seeds, error bars: "
            "95% t-interval (n > 1); lines: the same model's reference runs")
    return fig


# ------------------------------------------------------------------------------------------
# All figures
# ------------------------------------------------------------------------------------------

FIGURES = ("loss_curves", "anneal_schedules", "toy_bias_variance", "ring_bounds", "methods")


def _build(name: str, records, results: Path, settings,
           anneal: Optional[Mapping[str, float]]) -> Figure:
    """The figure ``name`` of :data:`FIGURES` from the records under ``results``."""
    if name == "loss_curves":
        return plot_loss_curves(records, settings)
    if name == "anneal_schedules":
        return plot_anneal_schedules(records, **dict(anneal or {}), settings=settings)
    if name == "toy_bias_variance":
        toy = records[records["stage"] == "toy"]
        csv = results / "toy" / "estimates.csv"
        return plot_toy(load_toy_estimates(csv), toy, str(csv))
    if name == "methods":
        from repro.report.methods import plot_methods

        return plot_methods(records, settings)
    return plot_ring_bounds(records, settings)


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
    settings = run_settings(records, load_run_specs(records))
    paths: list[Path] = []
    for name in names:
        paths += save_figure(_build(name, records, results, settings, anneal), out_dir, name)
    return paths
