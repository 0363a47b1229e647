"""What each stage costs: time and peak memory per job, beside the accuracy it buys.

Snakemake's ``benchmark:`` directive (rules/*.smk) writes one TSV per job under
``results/benchmarks/<stage>/<the job's record folder>.tsv``: wall seconds ``s``, peak resident
memory ``max_rss`` (MB, the job's whole process tree) and ``cpu_time`` (s), measured from
outside the job, start-up included. A benchmark joins its result record by that path
(``results/<stage>/<folder>/result.json``), so only records the tables may show (not stale,
finite) get a row, and the record says the model, sampler, seed, scale and the metric.

One row per (scale, stage, pretraining dataset, task, model, sampler): the number of jobs, wall
time per job (mean ± 95% CI over jobs, Student t), CPU time per job, the largest peak memory,
and the stage's accuracy (its headline metric, mean ± 95% CI over seeds; for pretraining, the
linear-eval top-1 of the same runs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from repro.report.stats import format_summary, summarize

__all__ = ["COST_STEM", "COST_TITLE", "STAGES", "ACCURACY", "read_benchmarks",
           "cost_frame", "cost_wide", "cost_notes"]

COST_STEM = "cost"
COST_TITLE = "Cost per stage: wall time and peak memory per job, beside accuracy"
STAGES = ("pretrain", "linear_eval", "fewshot", "detection")  # rules with a benchmark:
# stage -> (the stage whose records give its accuracy, that stage's headline metric)
ACCURACY = {"pretrain": ("linear_eval", "top1"), "linear_eval": ("linear_eval", "top1"),
            "fewshot": ("fewshot", "accuracy"), "detection": ("detection", "bbox_AP")}
_BENCH_COLUMNS = {"s": "wall_s", "max_rss": "peak_rss_mb", "cpu_time": "cpu_s"}


def read_benchmarks(benchmarks: str | os.PathLike, results: str | os.PathLike):
    """Every benchmark TSV under ``benchmarks`` as one row: ``stage``, ``wall_s``,
    ``peak_rss_mb``, ``cpu_s`` (NaN where Snakemake wrote ``-``: a job too short to sample)
    and ``path``, the result.json the job wrote (under ``results``). Runs a job made more than
    once (``--benchmark-repeats``) are averaged."""
    import pandas as pd

    benchmarks, results = Path(benchmarks), Path(results)
    rows = []
    for tsv in sorted(benchmarks.rglob("*.tsv")) if benchmarks.is_dir() else []:
        rel = tsv.relative_to(benchmarks)
        if rel.parts[0] not in STAGES:
            continue
        table = pd.read_csv(tsv, sep="\t")
        values = {new: float(pd.to_numeric(table[old], errors="coerce").mean())
                  if old in table else float("nan") for old, new in _BENCH_COLUMNS.items()}
        record = results / rel.with_suffix("") / "result.json"
        rows.append({"stage": rel.parts[0], **values, "path": str(record)})
    return pd.DataFrame(rows, columns=["stage", *_BENCH_COLUMNS.values(), "path"])


def _task(row) -> str:
    """The task of a record: the few-shot source, the detection task, else nothing."""
    if row["stage"] == "fewshot":
        return str(row["eval_dataset"])
    if row["stage"] == "detection":
        extra = row.get("extra")
        return str((extra or {}).get("task", "")) if isinstance(extra, dict) else ""
    return ""


def _accuracy(records, stage: str, key: dict[str, Any]):
    """The accuracy summary for one cost row, or ``None`` without records of it."""
    source, metric = ACCURACY[stage]
    part = records[(records["stage"] == source) & (records["metric"] == metric)
                   & (records["dataset"] == key["dataset"]) & (records["model"] == key["model"])
                   & (records["sampler"] == key["sampler"]) & (records["scale"] == key["scale"])]
    if key["task"] and source == stage:
        part = part[[_task(r) == key["task"] for _, r in part.iterrows()]]
    if part.empty:
        return None
    return metric, summarize(part["value"].astype(float))


def cost_frame(records, benchmarks):
    """Tidy frame: one row per (scale, stage, dataset, task, model, sampler) with ``jobs``,
    ``wall_s`` and ``wall_ci95`` (mean and 95% CI over jobs), ``cpu_s`` (mean),
    ``peak_rss_mb`` (max), and the accuracy's ``metric``, ``acc_mean``, ``acc_ci95``,
    ``acc_n``. ``records``: :func:`repro.results.load_records`; ``benchmarks``:
    :func:`read_benchmarks`."""
    import pandas as pd

    columns = ["scale", "stage", "dataset", "task", "model", "sampler", "jobs", "wall_s",
               "wall_ci95", "cpu_s", "peak_rss_mb", "metric", "acc_mean", "acc_ci95", "acc_n"]
    if records is None or len(records) == 0 or len(benchmarks) == 0:
        return pd.DataFrame(columns=columns)
    runs = records.drop_duplicates("path").copy()
    runs["task"] = [_task(r) for _, r in runs.iterrows()]
    joined = benchmarks.drop(columns="stage").merge(
        runs[["path", "stage", "scale", "dataset", "task", "model", "sampler"]], on="path")
    keys = ["scale", "stage", "dataset", "task", "model", "sampler"]
    rows = []
    for key, group in joined.groupby(keys, sort=False, dropna=False):
        key = dict(zip(keys, key))
        wall = summarize(group["wall_s"].dropna())
        acc = _accuracy(records, key["stage"], key)
        rows.append({**key, "jobs": len(group), "wall_s": wall.mean, "wall_ci95": wall.ci95,
                     "cpu_s": float(group["cpu_s"].mean()),
                     "peak_rss_mb": float(group["peak_rss_mb"].max()),
                     "metric": acc[0] if acc else None,
                     "acc_mean": acc[1].mean if acc else None,
                     "acc_ci95": acc[1].ci95 if acc else None,
                     "acc_n": acc[1].n if acc else 0})
    order = {s: i for i, s in enumerate(STAGES)}
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(by=["scale", "stage", "dataset", "task", "model", "sampler"],
                             key=lambda c: c.map(order) if c.name == "stage" else c,
                             kind="stable").reset_index(drop=True)


def _summary(mean: float, ci95: Any, n: Any):
    """A :class:`~repro.report.stats.Summary` of a tidy row's numbers (CI across jobs or
    seeds, Student t, where there are two or more)."""
    import pandas as pd

    from repro.report.stats import Summary

    half = None if ci95 is None or pd.isna(ci95) else float(ci95)
    return Summary(float(mean), half, int(n), "t" if half is not None else None)


def cost_wide(tidy):
    """Reading layout of :func:`cost_frame`: one row per cost row, numbers as text."""
    import pandas as pd

    from repro.report.tables import DATASET_LABELS, method_label

    header = ["scale", "stage", "pretrained on", "task", "method", "jobs",
              "wall time / job (s)", "CPU time / job (s)", "peak memory (MB)", "accuracy"]
    rows = []
    for _, r in tidy.iterrows():
        wall = _summary(r["wall_s"], r["wall_ci95"], r["jobs"])
        acc = (f"{r['metric']} " + format_summary(_summary(r["acc_mean"], r["acc_ci95"],
                                                           r["acc_n"]))
               if r["acc_n"] else "—")
        rows.append([r["scale"], r["stage"], DATASET_LABELS.get(r["dataset"], r["dataset"]),
                     r["task"] or "—", method_label(r["model"], r["sampler"]),
                     str(int(r["jobs"])), format_summary(wall, 1).replace(f" (n={r['jobs']})", ""),
                     "—" if pd.isna(r["cpu_s"]) else f"{r['cpu_s']:.1f}",
                     "—" if pd.isna(r["peak_rss_mb"]) else f"{r['peak_rss_mb']:.0f}", acc])
    return pd.DataFrame(rows, columns=header)


def cost_notes(tidy, records=None, benchmarks_dir: Optional[str] = None) -> list[str]:
    """What the cost table's numbers are, and where they ran."""
    where = benchmarks_dir or "results/benchmarks"
    notes = [
        f"From Snakemake's benchmark files ({where}, one per job, written by the `benchmark:` "
        "directive of the pretrain, linear_eval, fewshot and detection rules): wall time "
        "includes the job's start-up; peak memory is the largest resident set (max_rss) of "
        "the job's process tree over its jobs; wall time is mean ± 95% CI over jobs (Student t).",
        "accuracy: the stage's headline metric (linear-eval top-1, few-shot accuracy, "
        "detection bbox AP), mean ± 95% CI over seeds; for pretraining, the linear-eval top-1 "
        "of the same runs.",
    ]
    if tidy.empty:
        notes.append("No benchmark file matches a record: run the workflow (the benchmark "
                     "files are written with the records), then `snakemake --cores all cost`.")
    if records is not None and len(records) and "hardware" in records:
        cpus = sorted({str((h or {}).get("cpu", "?")) for h in records["hardware"]
                       if isinstance(h, dict)})
        if cpus:
            notes.append("Hardware: " + "; ".join(cpus) + ".")
    return notes
