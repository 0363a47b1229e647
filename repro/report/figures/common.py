"""What every figure shares: colours, saving, empty figures, the config footer and the
reference lines (uniform / untrained) of accuracy panels."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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
    specs: dict[str, dict[str, Any]] = {}
    if records.empty:
        return specs
    pretrain = records[records["stage"] == "pretrain"].drop_duplicates("path")
    configs = pretrain["config"] if "config" in pretrain else [None] * len(pretrain)
    for path, config in zip(pretrain["path"], configs):
        if isinstance(config, Mapping) and "pretrain" in config:
            specs[str(path)] = dict(config)
            continue
        import torch  # only for records older than their config (seconds to import)

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


def pair_keys(frame) -> list[str]:
    """Each row's experiment apart from its sampler (:func:`repro.report.claims.pair_key` of
    its ``config``; ``""`` without one): rows with different keys differ in more than the
    sampler (e.g. a label's ``model_options: {queue_size: ...}``) and are never pooled."""
    from repro.report.claims import pair_key

    return [pair_key(c) for c in frame.get("config", [None] * len(frame))]


def experiment_suffixes(keys: Sequence[tuple]) -> list[str]:
    """For panel keys whose last item is a pair key (:func:`pair_keys`): ``""`` for a panel
    that is the only one of its other items, else ``"experiment <first 6 of the key>"``, so
    that two panels of one model and data (experiments that differ outside the sampler,
    e.g. in queue size) never carry the same title."""
    bases = [tuple(key[:-1]) for key in keys]
    return [f"experiment {key[-1][:6] or '?'}" if bases.count(base) > 1 else ""
            for key, base in zip(keys, bases)]


def reference_rows(records, metric: str = "top1"):
    """The ``linear_eval`` / ``metric`` rows of each model's reference runs, with a column
    ``reference``: ``"untrained"`` (sampler label ``untrained``: the random-init baseline) or
    ``"uniform"`` (any other run of the uniform sampler: NCE), and ``pair``
    (:func:`pair_keys`)."""
    part = records[(records["stage"] == "linear_eval") & (records["metric"] == metric)]
    if part.empty:
        return part.assign(reference=[], pair=[])
    kind = [UNTRAINED if s == UNTRAINED else "uniform" if _sampler_name(p) == "uniform" else None
            for s, p in zip(part["sampler"], part.get("sampler_params", [None] * len(part)))]
    part = part.assign(reference=kind)
    part = part[part["reference"].notna()]
    return part.assign(pair=pair_keys(part))


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


def _refs_for(refs, model: str, eval_dataset: str, scale: str, pair: Optional[str] = None):
    """The reference rows of one model, evaluation data and scale; given ``pair``
    (:func:`pair_keys` of the runs drawn), only the uniform runs of that experiment (the
    untrained network does not depend on training settings, so it is kept whatever its key)."""
    if refs.empty:
        return refs
    keep = ((refs["model"] == model) & (refs["eval_dataset"] == eval_dataset)
            & (refs["scale"] == scale))
    if pair is not None:
        keep &= (refs["reference"] == UNTRAINED) | (refs["pair"] == pair)
    return refs[keep]


def _missing_refs_text(refs) -> str:
    """``"(no untrained run)"``-style note for the reference kinds absent from ``refs``."""
    kinds = set(refs["reference"]) if not refs.empty else set()
    missing = [k for k in REFERENCE_STYLES if k not in kinds]
    return f"no {' / '.join(missing)} run in the records" if missing else ""
