"""False negatives: how many of the negatives a similarity band offers share the anchor's class.

Beyond the paper. Training never sees labels, so the ring's "hard" negatives may be images of
the anchor's own class. Each linear-evaluation record counts them on its training split
(``extra.same_class``, :mod:`repro.false_negatives`): per similarity-percentile band of each
anchor's pool of the other images, under the model's own pool embeddings. From those records
evaluated on their pretraining data, per (scale, dataset, model, method), over seeds:

* the table: the same-class share (%) of the whole pool (what uniform negatives give), of the
  ring ``[0.9, 0.99]`` and of the top 1% ``[0.99, 1]`` that the ring leaves out, mean ± 95% CI
  (Student t over seeds), with each ring's share over the whole pool's (``x uniform``);
* the figure: the share per band, one panel per (scale, dataset, model), a line per method.

Methods are the records' sampler labels (the untrained network's included), so a new sampler
shows up without a change here; a label that two experiments' records share in one results
folder is split by setup hash, as in the tables (:func:`repro.report.tables.split_by_setup`).
"""

from __future__ import annotations

from typing import Any, Iterator

from repro.false_negatives import MAX_ANCHORS, PERCENTILE_EDGES, SameClassCounts
from repro.report.stats import Summary, format_summary, summarize

__all__ = ["FALSE_NEGATIVES", "FALSE_NEGATIVES_STEM", "FALSE_NEGATIVES_TITLE", "PROBES",
           "same_class_records", "false_negatives_frame", "false_negatives_wide",
           "false_negatives_notes", "plot_false_negatives"]

FALSE_NEGATIVES = "false_negatives"  # --only name of the table and of the figure
FALSE_NEGATIVES_STEM = "false_negatives"
FALSE_NEGATIVES_TITLE = ("False negatives: share (%) of each band's negatives that are of the "
                         "anchor's own class")
PROBES: dict[str, tuple[float, float]] = {
    "whole pool (uniform)": (0.0, 1.0),
    "ring [0.9, 0.99]": (0.9, 0.99),
    "top 1% [0.99, 1]": (0.99, 1.0),
}
"""The table's columns: name -> percentile band ``[w_l, w_u]`` (each a union of
:data:`repro.false_negatives.PERCENTILE_EDGES` bands)."""
_COLUMNS = ["scale", "dataset", "model", "method", "seed", "band", "w_l", "w_u", "rate"]


def _method_rank(method: str) -> tuple[int, str]:
    """The untrained network first, then the samplers in the tables' order, others after."""
    from repro.report.tables import SAMPLER_ORDER, _rank

    return _rank(method, ("untrained", *SAMPLER_ORDER))


def same_class_records(records):
    """Long frame: one row per (linear-eval record on its own pretraining data, band), columns
    ``scale, dataset, model, method, seed, band, w_l, w_u, rate`` (``rate`` in %; ``band`` the
    index into the record's edges). Records without ``extra.same_class`` are skipped."""
    import pandas as pd

    out = [{**key, "band": k, "w_l": counts.edges[k], "w_u": counts.edges[k + 1],
            "rate": 100.0 * rate}
           for key, counts in _counts(records) for k, rate in enumerate(counts.rates())
           if rate is not None]
    return pd.DataFrame(out, columns=_COLUMNS)


def _counts(records) -> Iterator[tuple[dict[str, Any], SameClassCounts]]:
    """``(scale, dataset, model, method, seed)`` and the counts of each linear-eval record on
    its own pretraining data that has them."""
    if records.empty or "extra" not in records:
        return
    from repro.report.tables import split_by_setup

    rows = records[(records["stage"] == "linear_eval")
                   & (records["eval_dataset"] == records["dataset"])].drop_duplicates("path")
    has = [isinstance(e, dict) and isinstance(e.get("same_class"), dict) for e in rows["extra"]]
    rows = rows[has]
    if rows.empty:
        return
    methods = split_by_setup(rows, ["scale", "dataset", "model", "sampler"])
    for method, (_, row) in zip(methods, rows.iterrows()):
        yield ({"scale": row["scale"], "dataset": row["dataset"], "model": row["model"],
                "method": method, "seed": int(row["seed"])},
               SameClassCounts.from_dict(row["extra"]["same_class"]))


def _probe_rates(records) -> list[dict[str, Any]]:
    """Per record and probe of :data:`PROBES`: the probe's same-class share in %."""
    out = []
    for key, counts in _counts(records):
        for probe, (w_l, w_u) in PROBES.items():
            try:
                rate = counts.rate(w_l, w_u)
            except ValueError:  # edges of another version: not this probe
                rate = None
            if rate is not None:
                out.append({**key, "probe": probe, "rate": 100.0 * rate})
    return out


def false_negatives_frame(records):
    """Tidy frame: per (scale, dataset, model, method, probe), ``n, mean, ci95, seeds`` of the
    same-class share in %, and ``ratio``: its mean over the whole pool's mean (``None`` for the
    whole pool itself)."""
    import pandas as pd

    from repro.report.tables import model_rank

    columns = ["scale", "dataset", "model", "method", "probe", "n", "mean", "ci95", "seeds",
               "ratio"]
    if records.empty or "extra" not in records:
        return pd.DataFrame(columns=columns)
    data = pd.DataFrame(_probe_rates(records),
                        columns=["scale", "dataset", "model", "method", "seed", "probe", "rate"])
    rows: list[dict[str, Any]] = []
    groups = sorted(data.groupby(["scale", "dataset", "model", "method"]),
                    key=lambda kv: (kv[0][0], kv[0][1], model_rank(kv[0][2]),
                                    _method_rank(kv[0][3])))
    for (scale, dataset, model, method), part in groups:
        cells = {probe: summarize(cell.groupby("seed")["rate"].mean())
                 for probe, cell in part.groupby("probe")}
        whole = next((cells[p].mean for p, band in PROBES.items()
                      if band == (0.0, 1.0) and p in cells), None)
        for probe, band in PROBES.items():
            if probe not in cells:
                continue
            s = cells[probe]
            seeds = sorted(part.loc[part["probe"] == probe, "seed"].unique())
            rows.append({"scale": scale, "dataset": dataset, "model": model, "method": method,
                         "probe": probe, "n": s.n, "mean": s.mean, "ci95": s.ci95,
                         "seeds": " ".join(map(str, seeds)),
                         "ratio": s.mean / whole if whole and band != (0.0, 1.0) else None})
    return pd.DataFrame(rows, columns=columns)


def false_negatives_wide(tidy, digits: int = 1):
    """One row per (scale, pretrained on, model, method), a column per probe: ``mean ± ci``
    and, for the rings, ``(x r)`` times the whole pool's share."""
    import pandas as pd

    from repro.report.tables import MODEL_LABELS

    header = ["scale", "pretrained on", "model", "method", *PROBES]
    rows: dict[tuple, dict[str, Any]] = {}
    for _, r in tidy.iterrows():
        key = (r["scale"], r["dataset"], r["model"], r["method"])
        row = rows.setdefault(key, {"scale": r["scale"], "pretrained on": r["dataset"],
                                    "model": MODEL_LABELS.get(r["model"], r["model"]),
                                    "method": r["method"], **{p: "" for p in PROBES}})
        ci = None if pd.isna(r["ci95"]) else float(r["ci95"])
        text = format_summary(Summary(float(r["mean"]), ci, int(r["n"]),
                                      "t" if ci is not None else None), digits)
        if r["ratio"] is not None and not pd.isna(r["ratio"]):
            text += f" (x{float(r['ratio']):.1f})"
        row[r["probe"]] = text
    return pd.DataFrame(list(rows.values()), columns=header)


def false_negatives_notes(tidy) -> list[str]:
    """How to read the table, and what to run when it is empty."""
    if tidy.empty:
        return ["No linear-evaluation record counts same-class negatives (extra.same_class): "
                "records of versions before the count existed do not. Re-run linear "
                "evaluation (`snakemake --cores all --forcerun linear_eval "
                "linear_eval_untrained`); it reuses the cached features."]
    return ["Share (%) of the negatives in a band of each anchor's similarity percentiles over "
            "the other training images that are of the anchor's own class (false negatives), "
            "under the final model's own embeddings of un-augmented images (IR, SimCLR: the "
            "anchors' embeddings; MoCo: the key encoder's; CMC: L anchors against ab "
            "embeddings); mean ± 95% CI over seeds (Student t). '(x r)': r times the whole "
            "pool's share, which is what uniform negatives draw.",
            "method: the run's sampler label (untrained: the network as its seed initialises "
            "it). The ring column is the band the default Ring draws from once w_l is "
            "annealed; the top 1% is what it leaves out.",
            f"Band edges: {', '.join(f'{e:g}' for e in PERCENTILE_EDGES)} "
            f"(repro.false_negatives); up to {MAX_ANCHORS:,} anchors per record, every image "
            "in the pool."]


def plot_false_negatives(records, settings=None):
    """Same-class share per similarity band: one panel per (scale, dataset, model), a line per
    method (mean over seeds, 95% CI bars; the untrained network dashed), the whole pool's
    share (what uniform negatives draw) dotted."""
    import matplotlib.pyplot as plt

    from repro.report.figures.common import (REFERENCE_STYLES, UNTRAINED, _add_footer,
                                             _settings_for, config_footer, empty_figure,
                                             sampler_colors)
    from repro.report.tables import MODEL_LABELS, model_rank

    title = "False negatives: same-class share of each similarity band of the pool"
    data = same_class_records(records)
    if data.empty:
        return empty_figure(title, "No linear-evaluation record counts same-class negatives.\n"
                                   "Re-run linear evaluation (`snakemake --cores all "
                                   "--forcerun linear_eval linear_eval_untrained`).")
    panels = sorted(data.groupby(["scale", "dataset", "model"]).groups,
                    key=lambda k: (k[0], k[1], model_rank(k[2])))
    cols = min(4, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    colors = {**sampler_colors(sorted(data["method"].unique())),
              UNTRAINED: REFERENCE_STYLES[UNTRAINED][1]}
    whole = [(key, 100.0 * counts.rate()) for key, counts in _counts(records)]
    for ax, (scale, dataset, model) in zip(axes.flat, panels):
        part = data[(data["scale"] == scale) & (data["dataset"] == dataset)
                    & (data["model"] == model)]
        bands = sorted(set(zip(part["w_l"], part["w_u"])))
        for method in sorted(part["method"].unique(), key=_method_rank):
            rows = part[part["method"] == method]
            stats = [summarize(rows[(rows["w_l"] == lo) & (rows["w_u"] == hi)]
                               .groupby("seed")["rate"].mean()) for lo, hi in bands]
            xs = [i for i, s in enumerate(stats) if s.n]
            kept = [s for s in stats if s.n]
            ax.errorbar(xs, [s.mean for s in kept], yerr=[s.ci95 or 0.0 for s in kept],
                        marker="o", markersize=3, capsize=2, label=method,
                        color=colors.get(method, "0.35"),
                        linestyle="--" if method == UNTRAINED else "-")
        pool = [rate for k, rate in whole
                if (k["scale"], k["dataset"], k["model"]) == (scale, dataset, model)]
        ax.axhline(sum(pool) / len(pool), color="0.6", linestyle=":", linewidth=1,
                   label="whole pool (uniform)")
        ax.set_xticks(range(len(bands)))
        ax.set_xticklabels([f"{lo:g}-{hi:g}" for lo, hi in bands], rotation=60, fontsize=6)
        ax.set_xlabel("similarity percentile band of the pool")
        ax.set_ylabel("same class as the anchor (%)")
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {dataset} ({scale})", fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title + " (mean, 95% CI over seeds)", fontsize=10)
    fig.tight_layout()
    shown = records[(records["stage"] == "linear_eval")
                    & records["model"].isin(set(data["model"]))
                    & records["dataset"].isin(set(data["dataset"]))]
    _add_footer(fig, config_footer(shown, _settings_for(records, settings)))
    return fig
