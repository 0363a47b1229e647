"""Annealing schedules of ``w_l`` and their effect (:func:`plot_anneal_schedules`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from repro.report.figures.common import (
    _add_footer,
    _draw_references,
    _missing_refs_text,
    _refs_for,
    _sampler_name,
    _settings_for,
    _summary,
    config_footer,
    experiment_suffixes,
    pair_keys,
    reference_rows,
)
from repro.report.tables import MODEL_LABELS, model_rank

# ------------------------------------------------------------------------------------------
# Annealing schedules and their effect
# ------------------------------------------------------------------------------------------


def _is_ring(params: Any) -> bool:
    """Whether ``sampler_params`` describe a ring sampler (:func:`_sampler_name`)."""
    return _sampler_name(params) == "ring"


def _ring_rows(records, stage: str, metric: str):
    """The ``stage`` / ``metric`` rows of ring runs, with their ``schedule, w_l, w_u`` and
    ``pair`` (:func:`pair_keys`: the experiment apart from the sampler; the figures compare
    only runs of one experiment)."""
    import pandas as pd

    part = records[(records["stage"] == stage) & (records["metric"] == metric)]
    if part.empty or "sampler_params" not in part:
        return pd.DataFrame(columns=list(records.columns) + ["schedule", "w_l", "w_u", "pair"])
    is_ring = [_is_ring(p) for p in part["sampler_params"]]
    part = part[is_ring].copy()
    for key in ("schedule", "w_l", "w_u"):
        part[key] = [p.get(key) for p in part["sampler_params"]]
    part["pair"] = pair_keys(part)
    return part


def _params_except(params: Mapping, keys: Sequence[str]) -> str:
    """The sampler options other than ``keys``, as one sortable label ("k=v, ...")."""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in keys and k != "name")


def schedule_sweep(ring_rows):
    """The ring rows whose ``(w_l, w_u)`` were run with more than one schedule, for the same
    model, evaluation dataset, scale and experiment (``pair``): the only rows where a
    difference between schedules is not also a difference between bounds or other settings
    (e.g. the queue size a sampler label gives MoCo)."""
    keys = ["model", "eval_dataset", "scale", "w_l", "w_u", "pair"]
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


PANELS_PER_ROW = 4  # a metric's panels wrap onto further rows after this many

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
    """``[((model, eval_dataset, scale, w_l, w_u, pair), rows)]`` of a schedule sweep, in the
    tables' model order."""
    groups = list(frame.groupby(["model", "eval_dataset", "scale", "w_l", "w_u", "pair"]))
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
    # each schedule's sampler labels under it: two panels of one model (experiments that
    # differ outside the sampler, e.g. in queue size) say which runs they hold
    names = [", ".join(sorted(set(part.loc[part["schedule"].astype(str) == schedule,
                                           "sampler"]))) for schedule in order]
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{schedule}\n{name}" for schedule, name in zip(order, names)],
                       fontsize=8)
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


def _group_title(key: tuple, stage: str, suffix: str = "") -> str:
    """``"IR on shapes (scale=default)\\nring [0.9, 0.99]"``, and ``suffix``
    (:func:`experiment_suffixes`) after the ring when there is one."""
    model, dataset, scale, w_l, w_u, _ = key
    where = "pretrained on" if stage == "pretrain" else "evaluated on"
    return (f"{MODEL_LABELS.get(model, model)}, {where} {dataset} (scale={scale})\n"
            f"ring [{w_l:g}, {w_u:g}]" + (f", {suffix}" if suffix else ""))


def plot_anneal_schedules(records, w_l: float = 0.9, w_l_start: float = 0.0,
                          anneal_fraction: float = 0.5, settings=None) -> Figure:
    """Top left: ``w_l`` against training progress for every schedule (:func:`anneal`), the
    schedules of the runs in the records solid, the others dashed grey ("not run"). Then one
    row per metric of :data:`SWEEP_METRICS` (linear-eval top-1, final pretraining loss) that
    has a schedule sweep in the records (ring runs with the same bounds and more than one
    schedule, :func:`schedule_sweep`), one panel per model and data (wrapping onto further
    rows after :data:`PANELS_PER_ROW`): that metric per schedule, ``n``
    on each bar, and for accuracy the model's uniform and untrained runs as reference lines.
    Without any sweep, a note saying how to get one. A footer gives the config."""
    sweeps = _sweep_panels(records)
    per_row = min(PANELS_PER_ROW, max([1] + [len(groups) for _, _, groups in sweeps]))
    cols = 1 + per_row
    rows = max(1, sum(-(-len(groups) // per_row) for _, _, groups in sweeps))
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(3.9 * cols, 4.3 * rows))
    _draw_schedules(axes[0][0], schedules_run(records), w_l, w_l_start, anneal_fraction)
    for ax in axes[1:, 0]:
        ax.axis("off")
    refs = reference_rows(records)
    shown = []
    first = 0  # each metric starts a row; its panels wrap after PANELS_PER_ROW
    for stage, label, groups in sweeps:
        suffixes = experiment_suffixes([key for key, _ in groups])
        for i, ((key, part), suffix) in enumerate(zip(groups, suffixes)):
            ax = axes[first + i // per_row][1 + i % per_row]
            # accuracy panels: the same experiment's NCE and the untrained network as lines
            panel_refs = (_refs_for(refs, *key[:3], pair=key[5]) if stage == "linear_eval"
                          else None)
            _schedule_bars(ax, part, label, panel_refs)
            ax.set_title(_group_title(key, stage, suffix), fontsize=9)
            shown += [part] if panel_refs is None else [part, panel_refs]
        used = -(-len(groups) // per_row)
        for i in range(len(groups), used * per_row):  # the last row's empty places
            axes[first + i // per_row][1 + i % per_row].axis("off")
        first += used
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
    """Suptitle (above the panels' titles), tight layout and the config footer of the rows
    drawn (``shown``; all the records' linear-eval rows when nothing was drawn)."""
    import pandas as pd

    drawn = pd.concat(shown, ignore_index=True) if shown else records.iloc[0:0]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_size_inches()[1]))  # 0.3 in for the title
    _add_footer(fig, config_footer(drawn if not drawn.empty else records,
                                   _settings_for(records, settings)))
