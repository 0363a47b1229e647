"""Model-option ablations: a sampler crossed with one base-model option (issue #15 and after).

A sampler label may change one of its base model's options for its own runs (``model_options:
{queue_size: ...}``). Runs that differ only in their sampler and that option form a
method x value grid; from their linear-evaluation records this module gives, per (scale,
pretraining dataset, model):

* each cell, method x option value: top-1 mean ± 95% CI over seeds (Student t);
* the paired (by seed) differences, each with its 95% CI and direction:
  - the sampler's effect at each value (``Ring − NCE, queue q``);
  - the option's effect for each method (``queue Q − q, <method>``: every value against the
    smallest);
  - where the ablation asks for it, both factors at once (``Ring at Q − NCE at q``: the
    authors' released MoCo configs change the sampler and a 16x queue together).

The ablations are declared once, in :data:`OPTION_ABLATIONS` (one :class:`OptionAblation` per
option); the tables' ``--only`` names, the figures and the workflow's rules follow it. The
baseline method is the one drawing uniform negatives with InfoNCE; every other method of the
same setup is a treatment. Methods are described from the registries
(:func:`repro.report.methods.method_description`). Only an option value written in a run's
config counts (``config.pretrain.model_options``): the configs state the options they ablate.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from repro.report.claims import _per_seed, direction_verdict, paired_differences
from repro.report.stats import Summary, format_summary, summarize

__all__ = ["OptionAblation", "OPTION_ABLATIONS", "option_value", "option_records",
           "option_frame", "option_wide", "option_notes", "title_of",
           "plot_option_ablation"]

METRIC = "top1"


@dataclass(frozen=True)
class OptionAblation:
    """One base-model option crossed with the sampler.

    ``option``: the key in ``model_options``; ``name``: the ``tables --only`` name; ``stem``:
    the file stem of its table and figure (and the figure's ``--only`` name and the workflow
    rule's); ``factor``: how a row names the option (``"queue"``); ``axis``: the figure's
    x label; ``title``: the question the table answers; ``run``: the command that makes the
    grid's records, and ``runs``: what it runs; ``both_at_once``: where not ``None``, add each
    treatment at the largest value − the baseline at the smallest, named so (the queue's
    "released pairing"); ``notes``: how to read its effects, after the common notes."""

    option: str
    name: str
    stem: str
    factor: str
    axis: str
    title: str
    run: str
    runs: str
    both_at_once: Optional[str] = None
    notes: tuple[str, ...] = ()


OPTION_ABLATIONS: dict[str, OptionAblation] = {a.name: a for a in (
    OptionAblation(
        option="queue_size", name="queue", stem="queue_ablation", factor="queue",
        axis="queue size (keys)", title="Is it the ring or the queue?",
        run="snakemake --cores all queue_ablation --configfile config/queue_ablation.yaml",
        runs="the default's MoCo at its 256-key queue and at 1,024",
        both_at_once="the released pairing",
        notes=("Ring − NCE at one queue size is the ring's own effect; queue Q − q is the "
               "queue's; the last row changes both, as the authors' released MoCo configs do "
               "(baseline queue 4,096, Ring 65,536).",)),
    OptionAblation(
        option="bank_momentum", name="bank_momentum", stem="bank_momentum_ablation",
        factor="bank momentum", axis="bank momentum (0: each visit overwrites the entry)",
        title="Is it the bank's momentum?",
        run="snakemake --cores all bank_momentum_ablation --configfile config/study.yaml "
            "config/bank_momentum.yaml",
        runs="the study's IR and CMC with NCE and the two rings, at bank momentum 0.9 and 0",
        notes=("Ring − NCE at one momentum is the ring's own effect there; bank momentum "
               "m − m0 is the momentum's effect for one method (m = 0: each visit overwrites "
               "an item's bank entry; 0.9 keeps 0.9^e of its random start after e visits).",)),
)}
"""The model-option ablations, by ``tables --only`` name."""


def option_value(config: Any, option: str) -> Optional[float]:
    """The value of ``option`` a record's run was pretrained with
    (``config.pretrain.model_options``), or ``None`` (a model without that option, or no
    config)."""
    try:
        value = config["pretrain"]["model_options"][option]
    except (KeyError, TypeError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _value_text(value: float) -> str:
    """``256``, ``1048576``, ``0.9``, ``0``: as the config wrote it, an integral float without
    its ``.0`` (``format(v, "g")`` would round 2**20 to ``1.04858e+06``)."""
    return str(int(value)) if float(value).is_integer() else str(float(value))


def _setup_without_sampler_and(config: Any, option: str) -> str:
    """The setup hash of a record's config without its sampler, sampler label and ``option``:
    runs with equal keys differ only in those (:func:`repro.results.setup_hash`)."""
    from repro.report.claims import _SAMPLER_KEYS, _strip
    from repro.results import setup_hash

    stripped = _strip(config, _SAMPLER_KEYS)
    options = dict(stripped["pretrain"].get("model_options") or {})
    options.pop(option, None)
    stripped["pretrain"] = {**stripped["pretrain"], "model_options": options}
    return setup_hash(stripped)


def _is_baseline(params: Any) -> bool:
    """Uniform negatives with InfoNCE (no estimator block, or ``nce``)."""
    params = params if isinstance(params, Mapping) else {}
    estimator = (params.get("estimator") or {}).get("name", "nce")
    return params.get("name") == "uniform" and estimator == "nce"


def option_records(records, ablation: OptionAblation):
    """The linear-eval top-1 rows with a value of the ablation's option: columns ``scale,
    dataset, model, method, baseline, level, seed, value, setup`` (``level``: the
    option's value; ``setup``: what they share apart from sampler and option; only rows of a
    setup holding two values or more are kept)."""
    import pandas as pd

    from repro.report.methods import method_description

    columns = ["scale", "dataset", "model", "method", "baseline", "level", "seed",
               "value", "setup"]
    if records.empty or "config" not in records:
        return pd.DataFrame(columns=columns)
    rows = records[(records["stage"] == "linear_eval") & (records["metric"] == METRIC)]
    out = []
    for _, row in rows.iterrows():
        level = option_value(row["config"], ablation.option)
        value = row["value"]
        if level is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        params = row.get("sampler_params")
        out.append({"scale": row["scale"], "dataset": row["dataset"], "model": row["model"],
                    "method": method_description(params), "baseline": _is_baseline(params),
                    "level": level, "seed": int(row["seed"]), "value": float(value),
                    "setup": _setup_without_sampler_and(row["config"], ablation.option)})
    frame = pd.DataFrame(out, columns=columns)
    if frame.empty:
        return frame
    levels = frame.groupby(["scale", "dataset", "model", "setup"])["level"].transform(
        "nunique")
    return frame[levels >= 2].reset_index(drop=True)


def _effect(kind: str, comparison: str, base, treat) -> dict[str, Any]:
    paired = paired_differences(_per_seed(base), _per_seed(treat))
    if paired.interval is None:
        verdict = f"n={paired.n}: no interval"
    else:
        verdict = {"supported": "above 0", "contradicted": "below 0"}.get(
            direction_verdict(paired.interval)[0], "includes 0")
    low, high = paired.interval if paired.interval else (None, None)
    return {"kind": kind, "comparison": comparison, "n": paired.n, "mean": paired.mean,
            "ci95": paired.ci95, "low": low, "high": high,
            "seeds": " ".join(map(str, paired.seeds)), "verdict": verdict}


def _short(method: str) -> str:
    """A method's description without the default estimator's name: ``"InfoNCE, ring [0.9,
    0.99]"`` -> ``"ring [0.9, 0.99]"``; other estimators keep theirs."""
    return method[len("InfoNCE, "):] if method.startswith("InfoNCE, ") else method


def option_frame(records, ablation: OptionAblation):
    """Tidy frame: per (scale, dataset, model, setup), the cells (``kind == "cell"``, one per
    method x option value) then the paired effects (``kind`` ``sampler`` / ``option`` /
    ``both``), with ``n, mean, ci95, low, high, seeds, verdict``; ``level``: the option's
    value of a cell, or of a sampler effect."""
    import pandas as pd

    columns = ["scale", "dataset", "model", "kind", "comparison", "method", "level", "n",
               "mean", "ci95", "low", "high", "seeds", "verdict"]
    data = option_records(records, ablation)
    factor = ablation.factor
    rows: list[dict[str, Any]] = []
    for (scale, dataset, model, _), part in data.groupby(["scale", "dataset", "model", "setup"],
                                                        sort=True):
        key = {"scale": scale, "dataset": dataset, "model": model}
        levels = sorted(part["level"].unique())
        low_level, high_level = _value_text(levels[0]), _value_text(levels[-1])
        baselines = sorted(part.loc[part["baseline"], "method"].unique())
        methods = baselines + sorted(part.loc[~part["baseline"], "method"].unique())
        for method in methods:
            for level in levels:
                cell = part[(part["method"] == method) & (part["level"] == level)]
                if cell.empty:
                    continue
                s = summarize(cell.groupby("seed")["value"].mean())
                rows.append({**key, "kind": "cell", "comparison": f"{_short(method)}, {factor} "
                             f"{_value_text(level)}", "method": method, "level": level,
                             "n": s.n, "mean": s.mean, "ci95": s.ci95, "seeds": " ".join(
                                 map(str, sorted(cell["seed"].unique())))})
        arm = {(m, v): part[(part["method"] == m) & (part["level"] == v)]
               for m in methods for v in levels}
        treatments = methods[len(baselines):]
        effects = []  # (kind, comparison, baseline arm, treatment arm, extra columns)
        for base in baselines:
            for treat in treatments:
                for level in levels:
                    effects.append(("sampler", f"{_short(treat)} − {_short(base)}, {factor} "
                                    f"{_value_text(level)}", (base, level), (treat, level),
                                    {"level": level}))
        for method in methods:
            for level in levels[1:]:
                effects.append(("option", f"{factor} {_value_text(level)} − {low_level}, "
                                f"{_short(method)}", (method, levels[0]), (method, level),
                                {"method": method}))
        if ablation.both_at_once is not None:
            for base in baselines:
                for treat in treatments:
                    effects.append(("both", f"{_short(treat)} at {factor} {high_level} − "
                                    f"{_short(base)} at {low_level} (both at once: "
                                    f"{ablation.both_at_once})", (base, levels[0]),
                                    (treat, levels[-1]), {}))
        for kind, comparison, a, b, more in effects:
            if arm[a].empty or arm[b].empty:  # a cell not run (e.g. the released recipe's
                continue                      # two cells only): no comparison to show
            rows.append({**key, **_effect(kind, comparison, arm[a], arm[b]), **more})
    return pd.DataFrame(rows, columns=columns)


def option_wide(tidy, digits: int = 2):
    """Rows (scale, pretrained on, model, what): ``top-1 / Δ`` as ``mean ± ci (n=...)`` for a
    cell and ``+mean [low, high] (n=...)`` for an effect, and the effect's direction."""
    import pandas as pd

    from repro.report.tables import MODEL_LABELS

    rows = []
    for _, r in tidy.iterrows():
        if r["kind"] == "cell":
            ci = None if pd.isna(r["ci95"]) else float(r["ci95"])
            text = format_summary(Summary(float(r["mean"]), ci, int(r["n"]),
                                          "t" if ci is not None else None), digits)
            verdict = ""
        elif r["mean"] is None or pd.isna(r["mean"]):
            text, verdict = "no paired seeds", r["verdict"]
        else:
            interval = ("" if pd.isna(r["low"]) else
                        f" [{r['low']:+.{digits}f}, {r['high']:+.{digits}f}]")
            text = f"{r['mean']:+.{digits}f}{interval} (n={int(r['n'])})"
            verdict = r["verdict"]
        rows.append({"scale": r["scale"], "pretrained on": r["dataset"],
                     "model": MODEL_LABELS.get(r["model"], r["model"]),
                     "what": r["comparison"], "top-1 / Δ": text, "Δ's 95% CI": verdict})
    return pd.DataFrame(rows, columns=["scale", "pretrained on", "model", "what", "top-1 / Δ",
                                       "Δ's 95% CI"])


def option_notes(tidy, ablation: OptionAblation) -> list[str]:
    """How to read the table, and what to run when it is empty."""
    if tidy.empty:
        return [f"No runs that differ only in sampler and {ablation.factor}. Run "
                f"`{ablation.run}` ({ablation.runs}) or give sampler labels `model_options: "
                f"{{{ablation.option}: ...}}`."]
    return ["Cells: linear-eval top-1 mean ± 95% CI over seeds (Student t). Δ: paired by seed, "
            "mean [95% CI] (t over the seed differences); 'above 0' / 'below 0' when the CI "
            "excludes 0.",
            f"Rows compare only runs whose configs are equal apart from sampler and "
            f"{ablation.factor} (`model_options.{ablation.option}`, as the run's config "
            f"states it).",
            *ablation.notes]


def title_of(ablation: OptionAblation) -> str:
    """The table's title."""
    return (f"{ablation.title} Linear-eval top-1 (%) per method x {ablation.factor}, and paired "
            f"effects")


def plot_option_ablation(records, ablation: OptionAblation, settings=None):
    """The grid as an interaction plot: one panel per (scale, dataset, model), top-1 against
    the option's value, a line per method (mean, 95% CI bars, seeds as dots); parallel lines
    mean the sampler's effect does not depend on the option."""
    import matplotlib.pyplot as plt

    from repro.report.figures.common import (_add_footer, _settings_for, config_footer,
                                             empty_figure)
    from repro.report.tables import MODEL_LABELS

    title = f"{ablation.title} Top-1 against {ablation.axis.split(' (')[0]}"
    data = option_records(records, ablation)
    if data.empty:
        return empty_figure(title, f"No runs that differ only in sampler and {ablation.factor}."
                                   f"\nRun `{ablation.run}`.")
    panels = list(data.groupby(["scale", "dataset", "model", "setup"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, ((scale, dataset, model, _), part) in zip(axes[0], panels):
        levels = sorted(part["level"].unique())
        for i, (method, rows) in enumerate(sorted(part.groupby("method"),
                                                  key=lambda kv: not kv[1]["baseline"].iloc[0])):
            stats = [summarize(rows[rows["level"] == v].groupby("seed")["value"].mean())
                     if (rows["level"] == v).any() else None for v in levels]
            xs = [j + 0.06 * (i - 0.5) for j, s in enumerate(stats) if s is not None]
            kept = [s for s in stats if s is not None]
            ax.errorbar(xs, [s.mean for s in kept], yerr=[s.ci95 or 0.0 for s in kept],
                        marker="o", capsize=3, label=_short(method))
            for j, v in enumerate(levels):
                seeds = rows[rows["level"] == v]["value"]
                ax.scatter([j + 0.06 * (i - 0.5)] * len(seeds), seeds, s=8, color="black",
                           alpha=0.5, zorder=3)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([_value_text(v) for v in levels])
        ax.set_xlabel(ablation.axis)
        ax.set_ylabel("linear-eval top-1 (%)")
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {dataset} ({scale})", fontsize=9)
        ax.legend(fontsize=7)
    # wrapped to the figure's width (about 12 characters an inch at this size): one panel is
    # narrower than the title
    fig.suptitle(textwrap.fill(title + " (mean, 95% CI over seeds; dots: seeds)",
                               width=int(12 * fig.get_figwidth())), fontsize=10)
    fig.tight_layout()
    shown = records[(records["stage"] == "linear_eval") & records["model"].isin(set(data["model"]))
                    & records["dataset"].isin(set(data["dataset"]))]
    _add_footer(fig, config_footer(shown, _settings_for(records, settings)))
    return fig
