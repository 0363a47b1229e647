"""Tables 1-3 of the paper from result records, beside the paper's reported numbers.

Each table is a pure function of the records (:func:`repro.results.load_records`) and of the
paper's numbers (:mod:`repro.report.reported`):

* :func:`comparison_frame` gives the tidy comparison: one row per (task, pretraining dataset,
  model, sampler, metric[, backend], scale) with ``n_seeds, mean, ci95, ci_kind, paper,
  paper_status, delta``. Records of different ``scale`` labels never share a row.
* :func:`wide_frame` lays it out for reading: one row per cell of the paper, the paper's
  number, then an ``ours (scale=...)`` and a delta column per scale.
* :func:`write_table` writes ``<name>.md`` and ``<name>.tex`` (via ``tabulate``) and the tidy
  ``<name>.csv``. Paper cells with neither a transcribed number nor a run are not rows of the
  Markdown / LaTeX tables but one footnote (:func:`idle_paper_cells`, :func:`compact_cells`);
  the CSV keeps them.

Detection records (stage ``detection``) name the data they were evaluated on in
``eval_dataset`` (``shapes_coco``, ``coco2017_val``, ...) and the task in ``extra.task``
(``voc_det``, ``coco_mask``, ``coco_kpt``), as :func:`transfer.detection.train.run` writes them:
Table 3 groups by the task (the key of the paper's numbers) and shows the data in an
``evaluated on`` column. Older records that put the task in ``eval_dataset`` still land in
their task's row.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from repro.report.stats import Summary, format_delta, format_summary, summarize

__all__ = [
    "TableSpec",
    "TABLES",
    "MODEL_LABELS",
    "MODEL_ORDER",
    "method_label",
    "model_rank",
    "comparison_frame",
    "split_by_setup",
    "config_split_notes",
    "learning_notes",
    "LEARNS_MARGIN",
    "idle_paper_cells",
    "has_paper_numbers",
    "compact_cells",
    "wide_frame",
    "render_markdown",
    "latex_caption",
    "render_latex",
    "write_files",
    "write_table",
]

MODEL_LABELS = {"ir": "IR", "cmc": "CMC", "moco": "MoCo", "simclr": "SimCLR"}
MODEL_ORDER = ("ir", "cmc", "moco", "simclr")
SAMPLER_ORDER = ("uniform", "ring")
DATASET_LABELS = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "stl10": "STL10",
                  "imagenet": "ImageNet", "voc_det": "VOC detection",
                  "coco_mask": "COCO instance seg.", "coco_kpt": "COCO keypoints"}
# Meta-Dataset's ten sources (Triantafillou et al., 2020), in its usual order.
META_DATASET_SOURCES = ("ilsvrc_2012", "omniglot", "aircraft", "cu_birds", "dtd", "quickdraw",
                        "fungi", "vgg_flower", "traffic_sign", "mscoco")
DETECTION_METRIC_ORDER = ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50",
                          "segm_AP75", "keypoints_AP", "keypoints_AP50", "keypoints_AP75")
NO_PAPER = "n/a (no paper number)"
NOT_TRANSCRIBED = "not transcribed"
CSV_DECIMALS = 4  # the tidy CSV's numbers are rounded to this many places (no float noise)
# Few-shot rows whose source is the pretraining dataset (said after the source's name).
IN_DOMAIN_NOTE = ("the source is the encoder's own pretraining data (its test split, the same "
                  "classes), so these rows measure in-domain few-shot classification, not "
                  "transfer")


@dataclass(frozen=True)
class TableSpec:
    """What one table shows.

    Args:
        name: file stem under the tables folder (``table1_linear_eval``).
        stage: records of this stage feed the table.
        title: the table's caption.
        task_header: column header of ``eval_dataset`` (dataset / source / task).
        metrics: metrics to show (``None``: every metric of the stage, in ``metric_order``).
        paper_tasks: the eval datasets the paper reports on, in display order; other tasks
            (our offline datasets) have no paper number.
        metric_order: display order of metrics.
        extra_keys: ``record["extra"]`` fields that split cells and get a column (backend).
        show_metric: whether the metric gets a column.
        task_field: ``record["extra"]`` field naming the task, for stages whose
            ``eval_dataset`` names the evaluation data instead (detection: ``task``). The task
            then keys the rows and the paper's numbers, and ``eval_dataset`` gets its own
            ``evaluated on`` column. A record without the field keeps ``eval_dataset`` as its
            task (records written before the field existed).
        paper_data: task -> the data the paper measured it on (``eval_dataset`` value). Where
            given, a run of that task on other data (our generated stand-ins) shows the
            paper's number but gets no delta: the two numbers measure different things.
        paper_pretrained: the pretraining dataset behind every paper number of the table
            (transfer tables: ``imagenet``). Runs pretrained on anything else have no paper
            number (our offline default transfers encoders pretrained on shapes).
    """

    name: str
    stage: str
    title: str
    task_header: str
    metrics: Optional[tuple[str, ...]]
    paper_tasks: tuple[str, ...]
    metric_order: tuple[str, ...] = ()
    extra_keys: tuple[str, ...] = ()
    show_metric: bool = False
    reported_file: str = field(default="")
    task_field: Optional[str] = None
    paper_data: Mapping[str, str] = field(default_factory=dict)
    paper_pretrained: Optional[str] = None

    @property
    def reported_csv(self) -> str:
        return self.reported_file or f"{self.name}.csv"


TABLES: dict[str, TableSpec] = {
    "table1": TableSpec(
        name="table1_linear_eval", stage="linear_eval",
        title="Table 1: linear evaluation, top-1 accuracy (%) on frozen features",
        task_header="dataset", metrics=("top1",),
        paper_tasks=("cifar10", "cifar100", "stl10", "imagenet")),
    "table2": TableSpec(
        name="table2_fewshot", stage="fewshot",
        title="Table 2: Meta-Dataset few-shot transfer, accuracy (%) per source",
        task_header="source", metrics=("accuracy",), paper_tasks=META_DATASET_SOURCES,
        paper_pretrained="imagenet"),
    "table3": TableSpec(
        name="table3_detection", stage="detection",
        title="Table 3: detection, instance segmentation and keypoints (AP)",
        task_header="task", metrics=None, paper_tasks=("voc_det", "coco_mask", "coco_kpt"),
        metric_order=DETECTION_METRIC_ORDER, extra_keys=("backend",), show_metric=True,
        task_field="task",
        paper_data={"voc_det": "voc2007_test", "coco_mask": "coco2017_val",
                    "coco_kpt": "coco2017_val"},
        paper_pretrained="imagenet"),
}

_VARIANT_KEYS = ("w_l", "w_u", "schedule", "w_l_start", "anneal_fraction")
EVALUATED_ON = "evaluated_on"
_COLUMN_HEADERS = {EVALUATED_ON: "evaluated on"}


def method_label(model: str, sampler: str) -> str:
    """Paper-style label: ``uniform`` -> ``"IR"`` (NCE), ``ring`` -> ``"IR + Ring"``,
    ``untrained`` -> ``"IR, untrained"`` (random-init baseline), any other sampler label ``s``
    -> ``"IR + s"``."""
    split = _CONFIG_SUFFIX.search(sampler)
    if split:  # a cell split by configuration keeps its sampler's label
        return method_label(model, sampler[:split.start()]) + split.group(0)
    name = MODEL_LABELS.get(model, model)
    if sampler == "uniform":
        return name
    if sampler == "untrained":
        return f"{name}, untrained"
    if sampler == "ring":
        return f"{name} + Ring"
    return f"{name} + {sampler}"


def _rank(value: Any, order: Sequence[Any]) -> tuple[int, str]:
    return (order.index(value), "") if value in order else (len(order), str(value))


def model_rank(model: str) -> tuple[int, str]:
    """Sort key of a model in the paper's table order (:data:`MODEL_ORDER`), others after it
    alphabetically."""
    return _rank(model, MODEL_ORDER)


def _split_keys(spec: TableSpec) -> list[str]:
    """The columns besides task, pretraining data, method and metric that split cells."""
    return [*([EVALUATED_ON] if spec.task_field else []), *spec.extra_keys]


def _extra_field(extra: Any, key: str) -> str:
    return str(extra.get(key) or "") if isinstance(extra, Mapping) else ""


def _task_and_data(eval_dataset: Any, dataset: Any, extra: Any,
                   task_field: Optional[str]) -> tuple[str, str]:
    """``(task, evaluated_on)`` of one record: the task from ``extra[task_field]`` with the
    evaluation data from ``eval_dataset``, or, without a task field (or a record lacking it),
    ``eval_dataset`` (else the pretraining dataset) as the task and no separate data."""
    data = eval_dataset if isinstance(eval_dataset, str) and eval_dataset else ""
    task = _extra_field(extra, task_field) if task_field else ""
    if task:
        return task, data
    return data or str(dataset), ""


def _params_key(params: Any) -> str:
    if not isinstance(params, Mapping):
        return ""
    return json.dumps({k: params[k] for k in _VARIANT_KEYS if k in params}, sort_keys=True)


def _variant_suffix(key: str) -> str:
    params = json.loads(key) if key else {}
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _select(records, spec: TableSpec):
    """The stage's rows, with ``task``, ``pretrained_on``, extra keys and the sampler label
    split by parameters where one label covers several sampler configurations."""
    frame = records[records["stage"] == spec.stage].copy()
    if spec.metrics is not None:
        frame = frame[frame["metric"].isin(spec.metrics)]
    if frame.empty:
        return frame
    extras = frame["extra"] if "extra" in frame else [None] * len(frame)
    pairs = [_task_and_data(e, d, x, spec.task_field)
             for e, d, x in zip(frame["eval_dataset"], frame["dataset"], extras)]
    frame["task"] = [task for task, _ in pairs]
    if spec.task_field:
        frame[EVALUATED_ON] = [data for _, data in pairs]
    frame["pretrained_on"] = frame["dataset"]
    for key in spec.extra_keys:
        frame[key] = [_extra_field(e, key) for e in extras]
    params = frame["sampler_params"] if "sampler_params" in frame else [None] * len(frame)
    frame["_pkey"] = [_params_key(p) for p in params]
    variants = frame.groupby(["model", "sampler"])["_pkey"].nunique()
    split = {k for k, n in variants.items() if n > 1}
    frame["sampler"] = [
        f"{s} [{_variant_suffix(pk)}]" if (m, s) in split else s
        for m, s, pk in zip(frame["model"], frame["sampler"], frame["_pkey"])
    ]
    frame["_setup"] = _setups(frame)
    frame["sampler"] = split_by_setup(
        frame, ["task", "pretrained_on", "model", "sampler", "metric", *_split_keys(spec),
                "scale"])
    return frame


def _setups(frame) -> list[str]:
    """Each row's setup hash, ``""`` where the record has none."""
    hashes = frame["setup_hash"] if "setup_hash" in frame else [None] * len(frame)
    return [h if isinstance(h, str) else "" for h in hashes]


def split_by_setup(frame, cell: Sequence[str], column: str = "sampler") -> list[str]:
    """``frame[column]`` with `` (config <setup hash>)`` appended on the rows of every cell
    (rows equal on the ``cell`` columns) that holds records of more than one experiment.

    Records of different experiments (setup hashes: :func:`repro.results.setup_hash`, the
    config without seeds) never share a cell, in a table, the methods table or the
    false-negatives table: a cell that would mix them is split, each part labelled with its
    setup. Rows without a setup hash count as one setup, ``unknown``."""
    import pandas as pd

    setup = pd.Series(_setups(frame), index=frame.index)
    setups = setup.groupby([frame[c] for c in cell], dropna=False).transform("nunique")
    return [f"{s} (config {h[:6] or 'unknown'})" if n > 1 else s
            for s, h, n in zip(frame[column], setup, setups)]


_CONFIG_SUFFIX = re.compile(r" \(config [0-9a-z]+\)$")


def _base_sampler(label: str) -> str:
    """The sampler label without a config split's suffix (the paper's cell it belongs to)."""
    return _CONFIG_SUFFIX.sub("", label)


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, Mapping):
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def _budget_notes(frame, spec: TableSpec) -> list[str]:
    """What a reader needs to weigh the cells, from the records: few-shot rows whose source
    is the pretraining data (in-domain, not transfer); detection's fine-tuning budget."""
    notes = []
    if spec.stage == "fewshot":
        same = sorted({t for t, d in zip(frame["task"], frame["pretrained_on"]) if t == d})
        if same:
            notes.append(f"{', '.join(same)}: {IN_DOMAIN_NOTE}.")
    if spec.stage == "detection":
        budgets: dict[tuple, set] = {}
        for _, row in frame.iterrows():
            extra = row["extra"] if isinstance(row.get("extra"), Mapping) else {}
            if not extra.get("iterations"):
                continue
            key = (row["task"], row.get(EVALUATED_ON, ""), row["scale"])
            budgets.setdefault(key, set()).add(
                (str(extra.get("architecture", "")), int(extra["iterations"]),
                 extra.get("batch_size"), extra.get("train_images")))
        for (task, data, scale), found in budgets.items():
            parts = [f"{arch + ' ' if arch else ''}fine-tuned {it} iterations"
                     f"{f', batch {b}' if b else ''}"
                     f"{f', {n} training images' if n else ''}"
                     for arch, it, b, n in sorted(found, key=str)]
            notes.append(f"{DATASET_LABELS.get(task, task)} on {data or task} "
                         f"(scale={scale}): {'; '.join(parts)}.")
    return notes


def config_split_notes(frame) -> list[str]:
    """One note per cell split by :func:`_select` because its records come from different
    configurations: the settings in which they differ (seeds and run-local keys aside)."""
    from repro.results import RUN_LOCAL_KEYS

    split = frame[[bool(_CONFIG_SUFFIX.search(str(x))) for x in frame["sampler"]]]
    notes = []
    group_keys = ["task", "pretrained_on", "model", "scale"]
    for key, part in split.groupby(group_keys, sort=False, dropna=False):
        g = dict(zip(group_keys, key))
        for base in dict.fromkeys(_base_sampler(x) for x in part["sampler"]):
            rows = part[[_base_sampler(x) == base for x in part["sampler"]]]
            configs: dict[str, dict[str, Any]] = {}
            for h, cfg in zip(rows["_setup"], rows.get("config", [None] * len(rows))):
                if isinstance(cfg, Mapping):
                    configs.setdefault(h, {k: v for k, v in _flatten(cfg).items()
                                           if k.split(".")[-1] not in RUN_LOCAL_KEYS})
            differ = sorted({k for c in configs.values() for k in c
                             if len({json.dumps(d.get(k), default=str)
                                     for d in configs.values()}) > 1})
            detail = "; ".join(
                f"config {h[:6]}: " + ", ".join(f"{k}={c.get(k)}" for k in differ[:6])
                for h, c in configs.items()) if differ else "configurations not recorded"
            notes.append(f"{method_label(g['model'], base)} on "
                         f"{DATASET_LABELS.get(g['task'], g['task'])} (scale={g['scale']}): "
                         f"records of {rows['_setup'].nunique()} configurations, shown apart "
                         f"rather than averaged ({detail}).")
    return notes


def comparison_frame(records, reported, spec: TableSpec):
    """Tidy comparison of our runs with the paper for one table.

    Args:
        records: long DataFrame from :func:`repro.results.load_records`.
        reported: DataFrame from :func:`repro.report.reported.load_reported`.
        spec: which table.

    Returns:
        One row per (task, pretrained_on, model, sampler, metric[, evaluated_on], *extra_keys,
        scale), plus one row (``scale`` empty, ``n_seeds`` 0) per paper cell with no run in
        any scale. Columns: those keys,
        ``method, n_seeds, mean, ci95, ci_kind, paper, paper_status, paper_source, delta``.
        ``paper_status`` is ``reported`` / ``not transcribed`` / ``n/a (no paper number)``.
    """
    import pandas as pd

    keys = ["task", "pretrained_on", "model", "sampler", "metric", *_split_keys(spec)]
    frame = _select(records, spec)
    paper_index: dict[tuple, Mapping[str, Any]] = {}
    for row in reported.to_dict("records"):
        paper_index[(row["eval_dataset"], row["model"], row["sampler"], row["metric"])] = row

    def paper_of(task: str, model: str, sampler: str, metric: str):
        row = paper_index.get((task, model, sampler, metric))
        if row is not None and not math.isnan(row["value"]):
            return row["value"], "reported", _source(row)
        if row is not None or task in spec.paper_tasks:
            return None, NOT_TRANSCRIBED, _source(row) if row is not None else ""
        return None, NO_PAPER, ""

    rows, seen = [], set()
    if not frame.empty:
        for group, part in frame.groupby(keys + ["scale"], sort=False, dropna=False):
            g = dict(zip(keys + ["scale"], group))
            per_seed = part.groupby("seed")
            values = per_seed["value"].mean()
            cis = per_seed["ci95"].first() if "ci95" in part else []
            s = summarize(values.tolist(), list(cis))
            if spec.paper_pretrained in (None, g["pretrained_on"]):
                base = _base_sampler(g["sampler"])
                paper, status, source = paper_of(g["task"], g["model"], base, g["metric"])
                seen.add((g["task"], g["model"], base, g["metric"]))
            else:  # the paper's cell is about another pretraining: listed on its own
                paper, status, source = None, NO_PAPER, ""
            comparable = paper is not None and _on_paper_data(spec, g["task"],
                                                               g.get(EVALUATED_ON, ""))
            rows.append({**g, "n_seeds": s.n, "mean": s.mean, "ci95": s.ci95,
                         "ci_kind": s.ci_kind, "paper": paper, "paper_status": status,
                         "paper_source": source,
                         "delta": s.mean - paper if comparable else None})
    for (task, model, sampler, metric), row in paper_index.items():
        if (task, model, sampler, metric) in seen:
            continue
        if spec.metrics is not None and metric not in spec.metrics:
            continue
        paper, status, source = paper_of(task, model, sampler, metric)
        rows.append({"task": task, "pretrained_on": "", "model": model, "sampler": sampler,
                     "metric": metric, **{k: "" for k in _split_keys(spec)}, "scale": "",
                     "n_seeds": 0, "mean": None, "ci95": None, "ci_kind": None,
                     "paper": paper, "paper_status": status, "paper_source": source,
                     "delta": None})
    columns = keys + ["scale", "method", "n_seeds", "mean", "ci95", "ci_kind", "paper",
                      "paper_status", "paper_source", "delta"]
    out = pd.DataFrame(rows, columns=[c for c in columns if c != "method"])
    if out.empty:
        return pd.DataFrame(columns=columns)
    out["method"] = [method_label(m, s) for m, s in zip(out["model"], out["sampler"])]
    order = sorted(range(len(out)), key=lambda i: _sort_key(out.iloc[i], spec))
    return out.iloc[order].reset_index(drop=True)[columns]


def _on_paper_data(spec: TableSpec, task: str, data: str) -> bool:
    """Whether a run of ``task`` evaluated on ``data`` measures what the paper's number does
    (always, for a table whose spec names no :attr:`TableSpec.paper_data`)."""
    return task not in spec.paper_data or spec.paper_data[task] == data


def _source(row: Optional[Mapping[str, Any]]) -> str:
    if row is None:
        return ""
    return " ".join(str(row.get(k) or "") for k in ("source", "version")).strip()


def _sort_key(row, spec: TableSpec) -> tuple:
    base_sampler = _base_sampler(str(row["sampler"])).split(" [")[0]
    data = str(row[EVALUATED_ON]) if spec.task_field else ""
    return (_rank(row["task"], spec.paper_tasks), data, model_rank(row["model"]),
            _rank(base_sampler, SAMPLER_ORDER), str(row["sampler"]),
            _rank(row["metric"], spec.metric_order), str(row["pretrained_on"]),
            *(str(row[k]) for k in spec.extra_keys), str(row["scale"]))


OTHER_DATA = "n/a (not the paper's data)"


def _delta_text(row, ours: Summary, digits: int) -> str:
    """Δ of one run row: signed, ``n/a`` without a paper number, :data:`OTHER_DATA` when the
    paper's number was measured on other data than the run (no delta in ``row``)."""
    if row["paper_status"] != "reported":
        return format_delta(ours, None, digits)
    if row["delta"] is None or math.isnan(row["delta"]):
        return OTHER_DATA
    return format_delta(ours, row["paper"], digits)


def _paper_text(row, digits: int) -> str:
    if row["paper_status"] == "reported":
        return f"{row['paper']:.{digits}f}"
    return row["paper_status"]


def idle_paper_cells(tidy):
    """The rows of ``tidy`` (:func:`comparison_frame`) that are paper cells with neither a
    transcribed number nor a run in any scale: they say nothing but "not transcribed, not
    run", so the reading tables fold them into one footnote (:func:`compact_cells`)."""
    return tidy[(tidy["n_seeds"] == 0) & (tidy["paper_status"] != "reported")]


def compact_cells(cells: Sequence[tuple[str, ...]]) -> str:
    """Name a set of cells (equal-length tuples of labels) compactly: ``"{a, b} × {x, y}"``
    when they are exactly the product of the labels found in each position; otherwise they
    are grouped by their last label (groups with the same other labels merged), each group
    named the same way, joined by ``"; "``. Labels keep their first-seen order."""
    return "; ".join(_products(list(dict.fromkeys(tuple(c) for c in cells))))


def _products(cells: list[tuple[str, ...]]) -> list[str]:
    """The products (``"{a, b} × {x}"``) whose union is exactly ``cells`` (distinct tuples)."""
    if not cells:
        return []
    axes = [list(dict.fromkeys(c[i] for c in cells)) for i in range(len(cells[0]))]
    if len(cells) == math.prod(len(a) for a in axes):
        return [" × ".join("{" + ", ".join(a) + "}" for a in axes)]
    groups: dict[tuple, list[str]] = {}
    for last in axes[-1]:
        heads = tuple(c[:-1] for c in cells if c[-1] == last)
        groups.setdefault(heads, []).append(last)
    return [f"{head} × {{{', '.join(lasts)}}}"
            for heads, lasts in groups.items() for head in _products(list(heads))]


def _idle_note(tidy, spec: TableSpec) -> Optional[str]:
    """The footnote that stands for the rows of :func:`idle_paper_cells`, or ``None``."""
    idle = idle_paper_cells(tidy)
    if idle.empty:
        return None
    axes = ["model", "sampler", *(["metric"] if spec.show_metric else []), spec.task_header]
    cells = [(MODEL_LABELS.get(m, m), s, *([k] if spec.show_metric else []),
              DATASET_LABELS.get(t, t))
             for m, s, k, t in zip(idle["model"], idle["sampler"], idle["metric"],
                                   idle["task"])]
    return (f"Not shown: {len(idle)} paper cell(s) with neither a transcribed number nor a "
            f"run in any scale ({' × '.join(axes)}): {compact_cells(cells)}.")


def has_paper_numbers(tidy) -> bool:
    """Whether any cell of ``tidy`` (:func:`comparison_frame`) has a transcribed paper number:
    without one, the reading tables leave out the paper and Δ columns (every cell would say
    n/a or not transcribed); the CSV keeps them."""
    return bool((tidy["paper_status"] == "reported").any()) if len(tidy) else False


def wide_frame(tidy, spec: TableSpec, digits: int = 2, pm: str = "±"):
    """Reading layout: one row per (task[, evaluated on], pretrained on, method, metric,
    extras); columns ``paper (reported)`` then, per scale label found, ``ours (scale=S)`` and
    ``Δ ours − paper (scale=S)``. A paper cell with a number but no run says ``not run``; one
    with neither (:func:`idle_paper_cells`) is left out (the notes count it). Without any
    transcribed paper number (:func:`has_paper_numbers`) the paper and Δ columns are left out."""
    import pandas as pd

    scales = sorted({s for s in tidy["scale"] if s}, key=lambda s: (s == "paper", s))
    split = _split_keys(spec)
    keys = ["task", "pretrained_on", "model", "sampler", "metric", *split]
    shown = tidy.drop(index=idle_paper_cells(tidy).index)
    rows: dict[tuple, dict[str, str]] = {}
    for _, row in shown.iterrows():
        key = tuple(row[k] for k in keys)
        if key not in rows:
            # A paper-only row merges into a run row of the same cell, if there is one.
            rows[key] = {
                spec.task_header: DATASET_LABELS.get(row["task"], row["task"]),
                **({_COLUMN_HEADERS[EVALUATED_ON]: row[EVALUATED_ON] or "—"}
                   if spec.task_field else {}),
                "pretrained on": DATASET_LABELS.get(row["pretrained_on"],
                                                    row["pretrained_on"]) or "—",
                "method": row["method"],
                **({"metric": row["metric"]} if spec.show_metric else {}),
                **{k: row[k] or "—" for k in spec.extra_keys},
                "paper (reported)": _paper_text(row, digits),
            }
        if row["scale"]:
            s = Summary(row["mean"], None if pd.isna(row["ci95"]) else row["ci95"],
                        int(row["n_seeds"]), row["ci_kind"])
            rows[key][f"ours (scale={row['scale']})"] = format_summary(s, digits, pm)
            rows[key][f"Δ ours − paper (scale={row['scale']})"] = _delta_text(row, s, digits)
    header = [spec.task_header, *([_COLUMN_HEADERS[EVALUATED_ON]] if spec.task_field else []),
              "pretrained on", "method", *(["metric"] if spec.show_metric else []),
              *spec.extra_keys, "paper (reported)"]
    for s in scales:
        header += [f"ours (scale={s})", f"Δ ours − paper (scale={s})"]
    if not scales:
        header += ["ours (no runs found)"]
    wide = pd.DataFrame(list(rows.values()), columns=header)
    for s in scales:
        wide[f"ours (scale={s})"] = wide[f"ours (scale={s})"].fillna("not run")
        wide[f"Δ ours − paper (scale={s})"] = wide[f"Δ ours − paper (scale={s})"].fillna("—")
    if not scales:
        wide["ours (no runs found)"] = "not run"
    if not has_paper_numbers(tidy):
        wide = wide.drop(columns=[c for c in wide.columns
                                  if c == "paper (reported)" or c.startswith("Δ ours − paper")])
    return wide


LEARNS_MARGIN = 5.0  # points above its own untrained network that count as "learns"


def learning_notes(tidy) -> list[str]:
    """One note per (task, pretraining data, model, scale) with an untrained row: each trained
    cell's mean minus the untrained mean, and whether it clears :data:`LEARNS_MARGIN` points
    (a model that does not has not been shown to learn anything a random network lacks)."""
    from repro.config import UNTRAINED

    if tidy.empty or "sampler" not in tidy:
        return []
    ran = tidy[tidy["n_seeds"] > 0]
    notes = []
    keys = ["task", "pretrained_on", "model", "scale"]
    for key, part in ran.groupby(keys, sort=False, dropna=False):
        g = dict(zip(keys, key))
        base = part[part["sampler"] == UNTRAINED]
        trained = part[part["sampler"] != UNTRAINED]
        if len(base) != 1 or trained.empty:
            continue
        floor = float(base["mean"].iloc[0])
        cells = [(method_label(g["model"], s), float(m) - floor)
                 for s, m in zip(trained["sampler"], trained["mean"])]
        short = [label for label, gain in cells if gain < LEARNS_MARGIN]
        verdict = (f"all clear +{LEARNS_MARGIN:g}" if not short else
                   f"below +{LEARNS_MARGIN:g}: {', '.join(short)}")
        notes.append(f"vs untrained, {MODEL_LABELS.get(g['model'], g['model'])} on "
                     f"{DATASET_LABELS.get(g['task'], g['task'])} (scale={g['scale']}): "
                     f"untrained {floor:.2f}; " + ", ".join(f"{label} {gain:+.2f}"
                                                           for label, gain in cells)
                     + f" ({verdict}).")
    return notes


def unknown_reported_rows(reported, spec: TableSpec) -> list[str]:
    """One line per row of the table's reported CSV that can match no run: a model or sampler
    the registries do not have, a task the paper does not report in this table, a metric the
    table does not show (``byol``, ``cifar-10``). Lines are numbered as in the file."""
    from repro.config import registry_names

    names = registry_names()
    allowed = {"model": set(names["models"]), "sampler": set(names["samplers"]),
               "eval_dataset": set(spec.paper_tasks),
               "metric": set(spec.metrics or spec.metric_order or ())}
    found = []
    for i, row in enumerate(reported.to_dict("records")):
        for column, known in allowed.items():
            if known and str(row.get(column)) not in known:
                found.append(f"tables/reported/{spec.reported_csv} line {i + 2}: {column} "
                             f"{row.get(column)!r} is none of {sorted(known)}, so the row "
                             f"matches no run")
    return found


def _notes(tidy, spec: TableSpec, records=None) -> list[str]:
    notes = [
        "Cells: mean ± 95% CI across seeds (Student t), with the number of seeds n; a single "
        "seed shows the protocol's own 95% CI if it has one, else no interval.",
        "Scales are never mixed: each `ours (scale=S)` column holds only records of scale S; "
        "nor are configurations: records whose settings differ (beyond the seed and where "
        "they ran) get a row each, marked `(config <hash>)`.",
    ]
    if has_paper_numbers(tidy):
        notes.append(
            "paper (reported): transcribed from the paper into "
            f"tables/reported/{spec.reported_csv}; `{NOT_TRANSCRIBED}` = the paper reports this "
            f"cell but its number is not in that file yet; `{NO_PAPER}` = the paper has no such "
            "cell (our offline datasets, or runs beyond the paper's grid).")
    else:
        notes.append(
            f"No paper number of these cells is in tables/reported/{spec.reported_csv} (see "
            "tables/reported/README.md), so the paper (reported) and Δ columns are left out; "
            "the CSV keeps them.")
    if spec.task_field:
        notes.append(f"{spec.task_header}: the paper's task (record `extra.{spec.task_field}`), "
                     "which keys the paper's numbers; evaluated on: the data the metric was "
                     "measured on (record `eval_dataset`).")
    if spec.paper_pretrained:
        notes.append(f"The paper's numbers are for encoders pretrained on "
                     f"{spec.paper_pretrained}; runs pretrained on other data have none.")
    if spec.paper_data:
        on = ", ".join(f"{t} on {d}" for t, d in spec.paper_data.items())
        notes.append(f"The paper measured {on}; a run on other data (e.g. generated) shows the "
                     f"paper's number for reference only, its Δ says `{OTHER_DATA}`.")
    if records is not None:
        frame = _select(records, spec)
        if not frame.empty:
            notes += config_split_notes(frame)
            notes += _budget_notes(frame, spec)
    if spec.stage == "linear_eval":
        notes += learning_notes(tidy)
    idle = _idle_note(tidy, spec)
    if idle:
        notes.append(idle)
    sources = sorted({s for s in tidy.get("paper_source", []) if s})
    if sources:
        notes.append("Sources: " + "; ".join(sources) + ".")
    return notes


def render_markdown(wide, title: str, notes: Sequence[str]) -> str:
    """A Markdown document: title, pipe table, notes."""
    from tabulate import tabulate

    body = tabulate(wide.values.tolist(), headers=list(wide.columns), tablefmt="pipe",
                    disable_numparse=True)
    return f"## {title}\n\n{body}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "Δ": r"$\Delta$", "−": "$-$", "—": "---"}


def _latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for char, tex in _LATEX_UNICODE.items():
        out = out.replace(char, tex)
    return out


def latex_caption(title: str) -> str:
    """The title without a leading ``"Table N:"`` (LaTeX numbers its captions itself)."""
    return re.sub(r"^\s*Table\s+\d+\s*:\s*", "", title)


def render_latex(wide, title: str, notes: Sequence[str]) -> str:
    """A LaTeX ``table`` (booktabs-free ``tabular`` from ``tabulate``), caption (the title
    without its ``"Table N:"``, see :func:`latex_caption`) and notes."""
    from tabulate import tabulate

    cells = [[_latex_escape(c) for c in row] for row in wide.values.tolist()]
    body = tabulate(cells, headers=[_latex_escape(h) for h in wide.columns],
                    tablefmt="latex_raw", disable_numparse=True)
    comments = "\n".join(f"% {_latex_escape(n)}" for n in notes)
    return (f"{comments}\n\\begin{{table}}[t]\n\\centering\n\\small\n"
            f"\\caption{{{_latex_escape(latex_caption(title))}}}\n{body}\n"
            "\\end{table}\n")


def write_files(tidy, wide, title: str, notes: Sequence[str], out_dir: str | os.PathLike,
                stem: str) -> list[Path]:
    """Write ``<out_dir>/<stem>.md`` and ``.tex`` (``wide`` with ``title`` and ``notes``, see
    :func:`render_markdown`, :func:`render_latex`) and ``<stem>.csv`` (``tidy``, numbers
    rounded to :data:`CSV_DECIMALS` places); returns the three paths."""
    from repro.io import atomic_write, atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("md", "tex", "csv")]
    atomic_write_text(paths[0], render_markdown(wide, title, notes))
    atomic_write_text(paths[1], render_latex(wide, title, notes))
    atomic_write(paths[2], lambda tmp: tidy.round(CSV_DECIMALS).to_csv(tmp, index=False))
    return paths


def write_table(records, reported, spec: TableSpec, out_dir: str | os.PathLike,
                extra_notes: Sequence[str] = ()) -> list[Path]:
    """Write ``<out_dir>/<spec.name>.{md,tex,csv}`` (CSV numbers rounded to
    :data:`CSV_DECIMALS` places), ``extra_notes`` after the table's own; returns the paths."""
    tidy = comparison_frame(records, reported, spec)
    return write_files(tidy, wide_frame(tidy, spec), spec.title,
                       [*_notes(tidy, spec, records), *extra_notes], out_dir,
                       spec.name)
