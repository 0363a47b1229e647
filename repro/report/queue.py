"""Is it the ring or the queue? The MoCo queue confound as a 2 x 2 ablation (issue #15).

The authors' released configs run the MoCo baseline with a queue of 4,096 keys and MoCo + Ring
with 65,536: the headline MoCo comparison changes the sampler and a 16x queue at once. Crossing
the two factors separates them. From the linear-evaluation records of runs that differ only in
their sampler and their ``queue_size`` (everything else in their config equal), this module
gives, per (scale, pretraining dataset, model):

* each cell, method x queue size: top-1 mean ± 95% CI over seeds (Student t);
* the paired (by seed) differences, each with its 95% CI and direction:
  - the ring's effect at each queue size (``Ring − NCE, queue q``);
  - the queue's effect for each method (``queue Q − q, <method>``);
  - the released configs' comparison, both factors at once (``Ring at Q − NCE at q``).

The baseline method is the one drawing uniform negatives with InfoNCE; every other method of
the same setup is a treatment. Methods are described from the registries
(:func:`repro.report.methods.method_description`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from repro.report.claims import _per_seed, direction_verdict, paired_differences
from repro.report.stats import Summary, format_summary, summarize

__all__ = ["QUEUE", "QUEUE_STEM", "QUEUE_TITLE", "queue_size_of", "queue_records",
           "queue_frame", "queue_wide", "queue_notes", "plot_queue"]

QUEUE = "queue"  # --only name of the table
QUEUE_STEM = "queue_ablation"
QUEUE_TITLE = ("Is it the ring or the queue? Linear-eval top-1 (%) per method x queue size, "
               "and paired effects")
METRIC = "top1"


def queue_size_of(config: Any) -> Optional[int]:
    """The ``queue_size`` a record's run was pretrained with (``config.pretrain.model_options``),
    or ``None`` (a model without a queue, or no config)."""
    try:
        size = config["pretrain"]["model_options"]["queue_size"]
    except (KeyError, TypeError):
        return None
    return int(size) if size is not None else None


def _setup_without_sampler_and_queue(config: Any) -> str:
    """The setup hash of a record's config without its sampler, sampler label and queue size:
    runs with equal keys differ only in those (:func:`repro.results.setup_hash`)."""
    from repro.report.claims import _SAMPLER_KEYS, _strip
    from repro.results import setup_hash

    stripped = _strip(config, _SAMPLER_KEYS)
    options = dict(stripped["pretrain"].get("model_options") or {})
    options.pop("queue_size", None)
    stripped["pretrain"] = {**stripped["pretrain"], "model_options": options}
    return setup_hash(stripped)


def _is_baseline(params: Any) -> bool:
    """Uniform negatives with InfoNCE (no estimator block, or ``nce``)."""
    params = params if isinstance(params, Mapping) else {}
    estimator = (params.get("estimator") or {}).get("name", "nce")
    return params.get("name") == "uniform" and estimator == "nce"


def queue_records(records):
    """The linear-eval top-1 rows with a queue size: columns ``scale, dataset, model, method,
    baseline, queue_size, seed, value, setup`` (``setup``: what they share apart from sampler
    and queue; only rows of a setup holding two queue sizes or more are kept)."""
    import pandas as pd

    from repro.report.methods import method_description

    columns = ["scale", "dataset", "model", "method", "baseline", "queue_size", "seed",
               "value", "setup"]
    if records.empty or "config" not in records:
        return pd.DataFrame(columns=columns)
    rows = records[(records["stage"] == "linear_eval") & (records["metric"] == METRIC)]
    out = []
    for _, row in rows.iterrows():
        size = queue_size_of(row["config"])
        value = row["value"]
        if size is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        params = row.get("sampler_params")
        out.append({"scale": row["scale"], "dataset": row["dataset"], "model": row["model"],
                    "method": method_description(params), "baseline": _is_baseline(params),
                    "queue_size": size, "seed": int(row["seed"]), "value": float(value),
                    "setup": _setup_without_sampler_and_queue(row["config"])})
    frame = pd.DataFrame(out, columns=columns)
    if frame.empty:
        return frame
    sizes = frame.groupby(["scale", "dataset", "model", "setup"])["queue_size"].transform(
        "nunique")
    return frame[sizes >= 2].reset_index(drop=True)


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


def queue_frame(records):
    """Tidy frame: per (scale, dataset, model, setup), the cells (``kind == "cell"``, one per
    method x queue size) then the paired effects (``kind`` ``ring`` / ``queue`` /
    ``released``), with ``n, mean, ci95, low, high, seeds, verdict``."""
    import pandas as pd

    columns = ["scale", "dataset", "model", "kind", "comparison", "method", "queue_size", "n",
               "mean", "ci95", "low", "high", "seeds", "verdict"]
    data = queue_records(records)
    rows: list[dict[str, Any]] = []
    for (scale, dataset, model, _), part in data.groupby(["scale", "dataset", "model", "setup"],
                                                        sort=True):
        key = {"scale": scale, "dataset": dataset, "model": model}
        sizes = sorted(part["queue_size"].unique())
        small, large = sizes[0], sizes[-1]
        baselines = sorted(part.loc[part["baseline"], "method"].unique())
        methods = baselines + sorted(part.loc[~part["baseline"], "method"].unique())
        for method in methods:
            for size in sizes:
                cell = part[(part["method"] == method) & (part["queue_size"] == size)]
                if cell.empty:
                    continue
                s = summarize(cell.groupby("seed")["value"].mean())
                rows.append({**key, "kind": "cell", "comparison": f"{_short(method)}, queue "
                             f"{size}", "method": method, "queue_size": size, "n": s.n,
                             "mean": s.mean, "ci95": s.ci95, "seeds": " ".join(
                                 map(str, sorted(cell["seed"].unique())))})
        arm = {(m, q): part[(part["method"] == m) & (part["queue_size"] == q)]
               for m in methods for q in sizes}
        effects = []  # (kind, comparison, baseline arm, treatment arm, extra columns)
        for base in baselines:
            for treat in methods[len(baselines):]:
                for size in sizes:
                    effects.append(("ring", f"{_short(treat)} − {_short(base)}, queue {size}",
                                    (base, size), (treat, size), {"queue_size": size}))
        for method in methods:
            effects.append(("queue", f"queue {large} − {small}, {_short(method)}",
                            (method, small), (method, large), {"method": method}))
        for base in baselines:
            for treat in methods[len(baselines):]:
                effects.append(("released", f"{_short(treat)} at queue {large} − "
                                f"{_short(base)} at {small} (both at once: the released "
                                f"pairing)", (base, small), (treat, large), {}))
        for kind, comparison, a, b, more in effects:
            if arm[a].empty or arm[b].empty:  # a cell not run (e.g. the released recipe's
                continue                      # two cells only): no comparison to show
            rows.append({**key, **_effect(kind, comparison, arm[a], arm[b]), **more})
    return pd.DataFrame(rows, columns=columns)


def queue_wide(tidy, digits: int = 2):
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


def queue_notes(tidy) -> list[str]:
    """How to read the table, and what to run when it is empty."""
    if tidy.empty:
        return ["No runs that differ only in sampler and queue size. Run `snakemake --cores "
                "all queue_ablation --configfile config/queue_ablation.yaml` (the default's "
                "MoCo at its 256-key queue and at 1,024) or give sampler labels "
                "`model_options: {queue_size: ...}`."]
    return ["Cells: linear-eval top-1 mean ± 95% CI over seeds (Student t). Δ: paired by seed, "
            "mean [95% CI] (t over the seed differences); 'above 0' / 'below 0' when the CI "
            "excludes 0.",
            "Rows compare only runs whose configs are equal apart from sampler and queue size.",
            "Ring − NCE at one queue size is the ring's own effect; queue Q − q is the queue's; "
            "the last row changes both, as the authors' released MoCo configs do (baseline "
            "queue 4,096, Ring 65,536)."]


def plot_queue(records, settings=None):
    """The 2 x 2 as an interaction plot: one panel per (scale, dataset, model), top-1 against
    queue size, a line per method (mean, 95% CI bars, seeds as dots); parallel lines mean the
    ring's effect does not depend on the queue."""
    import matplotlib.pyplot as plt

    from repro.report.figures.common import (_add_footer, _settings_for, config_footer,
                                             empty_figure)
    from repro.report.tables import MODEL_LABELS

    title = "Is it the ring or the queue? MoCo top-1 against queue size"
    data = queue_records(records)
    if data.empty:
        return empty_figure(title, "No runs that differ only in sampler and queue size.\n"
                                   "Run `snakemake --cores all queue_ablation --configfile "
                                   "config/queue_ablation.yaml`.")
    panels = list(data.groupby(["scale", "dataset", "model", "setup"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, ((scale, dataset, model, _), part) in zip(axes[0], panels):
        sizes = sorted(part["queue_size"].unique())
        for i, (method, rows) in enumerate(sorted(part.groupby("method"),
                                                  key=lambda kv: not kv[1]["baseline"].iloc[0])):
            stats = [summarize(rows[rows["queue_size"] == q].groupby("seed")["value"].mean())
                     if (rows["queue_size"] == q).any() else None for q in sizes]
            xs = [j + 0.06 * (i - 0.5) for j, s in enumerate(stats) if s is not None]
            kept = [s for s in stats if s is not None]
            ax.errorbar(xs, [s.mean for s in kept], yerr=[s.ci95 or 0.0 for s in kept],
                        marker="o", capsize=3, label=_short(method))
            for j, q in enumerate(sizes):
                seeds = rows[rows["queue_size"] == q]["value"]
                ax.scatter([j + 0.06 * (i - 0.5)] * len(seeds), seeds, s=8, color="black",
                           alpha=0.5, zorder=3)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([str(q) for q in sizes])
        ax.set_xlabel("queue size (keys)")
        ax.set_ylabel("linear-eval top-1 (%)")
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {dataset} ({scale})", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title + " (mean, 95% CI over seeds; dots: seeds)", fontsize=10)
    fig.tight_layout()
    shown = records[(records["stage"] == "linear_eval") & records["model"].isin(set(data["model"]))
                    & records["dataset"].isin(set(data["dataset"]))]
    _add_footer(fig, config_footer(shown, _settings_for(records, settings)))
    return fig
