"""Table 4 (beyond the paper): every negative-sampling method of the records, side by side.

One row per (stage, pretraining dataset, evaluation data, base model); one column per method,
i.e. per sampler label of the config (NCE = ``uniform``, Ring, top-k, DCL, HCL, ...), each cell
the mean ± 95% CI over seeds (Student t) with ``n``. Methods are described from the sampler and
estimator registries (:func:`method_description`), never from hard-coded names, so a method
added as one file and a config entry shows up here as it is.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from repro.report.stats import Summary, format_summary, summarize

__all__ = ["METHODS_STEM", "METHODS_TITLE", "METHOD_STAGES", "method_description",
           "methods_frame", "methods_wide", "methods_notes"]

METHODS_STEM = "table4_methods"
METHODS_TITLE = ("Table 4 (beyond the paper): negative-sampling methods under one harness, "
                 "linear-eval top-1 (%) and few-shot accuracy (%)")
METHOD_STAGES = {"linear_eval": "top1", "fewshot": "accuracy"}  # stage -> headline metric
UNTRAINED = "untrained"


def method_description(block: Optional[Mapping[str, Any]]) -> str:
    """A sampler block (``{"name": "ring", "w_l": 0.9, ..., "estimator": {...}}``) in words:
    the estimator's registry label with its options, then the sampler's own description
    (:meth:`repro.samplers.NegativeSampler.describe`)."""
    from repro.estimators import ESTIMATORS
    from repro.samplers import SAMPLERS

    block = dict(block or {})
    estimator = dict(block.pop("estimator", None) or {"name": "nce"})
    name = estimator.pop("name", "nce")
    entry = ESTIMATORS.get(name)
    words = entry.label if entry else str(name)
    if estimator:
        words += " (" + ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                  for k, v in sorted(estimator.items())) + ")"
    sampler = block.pop("name", None)
    block.pop("per_model", None)
    described = (SAMPLERS[sampler].describe(block) if sampler in SAMPLERS
                 else str(sampler or "?"))
    return f"{words}, {described}"


def _headline_rows(records):
    """The linear-eval and few-shot rows of the records, each stage's headline metric only."""
    return records[records["stage"].isin(list(METHOD_STAGES))
                   & (records["metric"] == records["stage"].map(METHOD_STAGES))]


def methods_frame(records) -> Any:
    """Tidy frame: one row per (scale, stage, dataset, eval_dataset, model, sampler) with the
    headline metric's ``n``, ``mean``, ``ci95``, ``seeds`` and the ``method`` description.
    A sampler label that records of two experiments share is split by setup hash
    (:func:`repro.report.tables.split_by_setup`), as in the tables."""
    import pandas as pd

    from repro.report.tables import _base_sampler, split_by_setup

    columns = ["scale", "stage", "dataset", "eval_dataset", "model", "sampler", "method",
               "metric", "n", "mean", "ci95", "seeds"]
    if records is None or len(records) == 0:
        return pd.DataFrame(columns=columns)
    keep = _headline_rows(records).copy()
    rows = []
    keys = ["scale", "stage", "dataset", "eval_dataset", "model", "sampler"]
    if len(keep):
        keep["sampler"] = split_by_setup(keep, keys)
    for key, group in keep.groupby(keys, sort=False, dropna=False):
        summary = summarize(group["value"].astype(float))
        sampler = key[-1]
        method = ("untrained (random init)" if _base_sampler(sampler) == UNTRAINED
                  else method_description(group["sampler_params"].iloc[0]))
        rows.append({**dict(zip(keys, key)), "method": method,
                     "metric": METHOD_STAGES[key[1]], "n": summary.n, "mean": summary.mean,
                     "ci95": summary.ci95,
                     "seeds": " ".join(str(s) for s in sorted(group["seed"].unique()))})
    return pd.DataFrame(rows, columns=columns)


def _method_order(tidy) -> list[str]:
    """Untrained, NCE (``uniform``), ``ring``, then the other labels alphabetically."""
    first = [s for s in (UNTRAINED, "uniform", "ring") if s in set(tidy["sampler"])]
    return first + sorted(set(tidy["sampler"]) - set(first))


def methods_wide(tidy, digits: int = 1) -> Any:
    """Rows (scale, stage, pretrained on, evaluated on, model); one column per sampler label,
    each cell ``mean ± ci (n)``; empty where a method did not run."""
    import pandas as pd

    from repro.report.tables import MODEL_LABELS, model_rank

    if len(tidy) == 0:
        return pd.DataFrame(columns=["scale", "stage", "pretrained on", "evaluated on",
                                     "model"])
    order = _method_order(tidy)
    rows = []
    index = ["scale", "stage", "dataset", "eval_dataset", "model"]
    groups = tidy.groupby(index, sort=False)
    for key in sorted(groups.groups, key=lambda k: (k[0], list(METHOD_STAGES).index(k[1]),
                                                     k[2], k[3], model_rank(k[4]))):
        group = groups.get_group(key).set_index("sampler")
        row = {"scale": key[0], "stage": key[1], "pretrained on": key[2],
               "evaluated on": key[3], "model": MODEL_LABELS.get(key[4], key[4])}
        for sampler in order:
            if sampler in group.index:
                cell = group.loc[sampler]
                n = int(cell["n"])
                ci = None if cell["ci95"] is None or n < 2 else float(cell["ci95"])
                row[sampler] = format_summary(
                    Summary(float(cell["mean"]), ci, n, "t" if ci is not None else None), digits)
            else:
                row[sampler] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def methods_notes(tidy) -> list[str]:
    """What each column label means (from the registries), and how to read the cells."""
    notes = ["Each cell: mean ± 95% CI over seeds (Student t), n seeds. linear_eval: top-1 on "
             "frozen features (the pretraining dataset's test split); fewshot: episode accuracy "
             "on the evaluation source. Differences between methods are compared paired by "
             "seed in tables/claims.* (Ring − NCE); here they sit side by side."]
    seen = tidy.drop_duplicates("sampler")
    for sampler in _method_order(tidy):
        method = seen.loc[seen["sampler"] == sampler, "method"].iloc[0]
        notes.append(f"{sampler}: {method}")
    scales = sorted(set(tidy["scale"]))
    if scales:
        notes.append(f"scale: {', '.join(map(str, scales))}; a result at one scale says "
                     f"nothing about another.")
    return notes


def plot_methods(records, settings=None) -> Any:
    """Table 4 as a figure: one panel per (stage, pretrained on, evaluated on, model), each
    method's mean with its 95% CI (Student t over seeds) and every seed's value as a dot; the
    untrained network as a dotted line where it was run."""
    import matplotlib.pyplot as plt

    from repro.report.figures.common import (_add_footer, _settings_for, config_footer,
                                             empty_figure, sampler_colors)
    from repro.report.tables import MODEL_LABELS, model_rank

    title = "Negative-sampling methods under one harness (Table 4)"
    tidy = methods_frame(records)
    if len(tidy) == 0:
        return empty_figure(title, "No linear-eval or few-shot records: run the workflow "
                                   "(`snakemake --cores all`, or with --configfile "
                                   "config/hardneg.yaml for every method).")
    keep = _headline_rows(records)
    keys = sorted({tuple(k) for k in tidy[["stage", "dataset", "eval_dataset", "model"]]
                   .itertuples(index=False)},
                  key=lambda k: (list(METHOD_STAGES).index(k[0]), k[1], k[2], model_rank(k[3])))
    methods = [m for m in _method_order(tidy) if m != UNTRAINED]
    colors = sampler_colors(methods)
    ncols = min(4, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (stage, dataset, eval_dataset, model) in zip(axes.flat, keys):
        cell = tidy[(tidy["stage"] == stage) & (tidy["dataset"] == dataset)
                    & (tidy["eval_dataset"] == eval_dataset) & (tidy["model"] == model)]
        runs = keep[(keep["stage"] == stage) & (keep["dataset"] == dataset)
                    & (keep["eval_dataset"] == eval_dataset) & (keep["model"] == model)]
        for x, method in enumerate(methods):
            row = cell[cell["sampler"] == method]
            if row.empty:
                continue
            mean, ci = float(row["mean"].iloc[0]), row["ci95"].iloc[0]
            ax.errorbar(x, mean, yerr=None if ci is None else float(ci), fmt="o",
                        color=colors[method], capsize=3, ms=6)
            seeds = runs[runs["sampler"] == method]["value"].astype(float)
            ax.plot([x] * len(seeds), seeds, ".", color=colors[method], alpha=0.4, ms=4)
        untrained = cell[cell["sampler"] == UNTRAINED]
        if not untrained.empty:
            ax.axhline(float(untrained["mean"].iloc[0]), color="0.4", ls=":", lw=1,
                       label="untrained")
            ax.legend(fontsize=6, loc="lower right")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=7)
        where = dataset if eval_dataset == dataset else f"{dataset} -> {eval_dataset}"
        ax.set_title(f"{MODEL_LABELS.get(model, model)}, {where}\n{stage} "
                     f"({METHOD_STAGES[stage]}, %)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title + ": mean ± 95% CI over seeds, dots = seeds", fontsize=10)
    fig.tight_layout()
    legend = "; ".join(f"{m}: {d}" for m, d in
                       tidy.drop_duplicates("sampler").set_index("sampler")["method"].items()
                       if m != UNTRAINED)
    _add_footer(fig, config_footer(keep, _settings_for(records, settings)) + "\n" + legend)
    return fig
