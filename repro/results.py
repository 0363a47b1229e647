"""The result record: one JSON per evaluated run, and their aggregation into a DataFrame.

Every stage (pretraining, linear evaluation, few-shot transfer, detection) writes one record with
:func:`write_record`. Tables and figures are pure functions of these records
(:func:`load_records`): regenerating a table never re-trains anything.

A record (``SCHEMA_VERSION`` 1)::

    {
      "schema_version": 1,
      "stage": "linear_eval",            # pretrain | linear_eval | fewshot | detection | toy
      "model": "ir",                     # base model
      "sampler": "ring",                 # negative sampler name
      "sampler_params": {"w_l": 0.9, ...},
      "dataset": "cifar10",              # pretraining dataset
      "eval_dataset": "cifar10",         # what the metric was measured on (may differ)
      "seed": 0,
      "metrics": {"top1": 81.3, ...},    # name -> value (percent for accuracies)
      "ci95": {"top1": 0.4},             # name -> half-width of a 95% CI, where the protocol has one
      "protocol": "linear",              # how the metric was measured
      "scale": "default",                # default (tiny, CPU) | paper | a label of the user's
      "recipe": "paper",                 # paper (our reading) | released (the authors' code) | own
      "config_hash": "3f2a...",          # sha256 of the canonical config JSON, 12 hex
      "setup_hash": "9c1e...",           # the same without seeds and where/how it ran: records
                                         # of one experiment (seeds of it) share it
      "config": {...},                   # the config itself (what the hashes are of)
      "code_version": "0.1.0+git.abc1234",
      "packages": {"torch": "2.14.1", ...},
      "hardware": {"device": "cpu", "cpu": "...", "gpus": []},
      "wall_time_s": 12.3,
      "peak_memory_mb": 512.0,
      "extra": {...}                     # stage-specific details (backend, epochs, ...)
    }
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from repro import __version__
from repro.io import atomic_write_json, snakemake_hint

__all__ = [
    "SCHEMA_VERSION",
    "REQUIRED_FIELDS",
    "config_hash",
    "setup_hash",
    "RUN_LOCAL_KEYS",
    "code_version",
    "package_versions",
    "hardware_info",
    "peak_memory_mb",
    "make_record",
    "write_record",
    "read_record",
    "load_records",
    "DEFAULT_RECIPE",
    "scale_label",
    "drop_non_finite",
    "non_finite_note",
]

DEFAULT_RECIPE = "paper"
"""The recipe of a record that names none: our reading of the paper with modern defaults
(every config before ``recipe`` existed, and ``config/schema.yaml``'s default)."""


def scale_label(scale: Any, recipe: Any) -> str:
    """How tables and figures name a record's scale: the scale, with ``, recipe <recipe>``
    for any recipe but :data:`DEFAULT_RECIPE` (``"default, recipe released"``), so that no
    cell, column or panel ever pools two recipes."""
    if not isinstance(recipe, str) or not recipe or recipe == DEFAULT_RECIPE:
        return str(scale)
    return f"{scale}, recipe {recipe}"

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("stage", "model", "sampler", "dataset", "seed", "metrics", "scale")
_PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "snakemake",
             "tensorflow-datasets", "detectron2")
STAGES = ("pretrain", "linear_eval", "fewshot", "detection", "toy")


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of the sha256 of the config as canonical JSON (sorted keys)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Keys that say which seed, or where and how a run executed, not which experiment it is.
RUN_LOCAL_KEYS = frozenset({"seed", "threads", "num_workers", "gpus", "num_gpus", "data_root",
                            "data_dir", "folder_root", "device"})


def _without(config: Any, keys: frozenset) -> Any:
    if isinstance(config, Mapping):
        return {k: _without(v, keys) for k, v in config.items() if k not in keys}
    if isinstance(config, (list, tuple)):
        return [_without(v, keys) for v in config]
    return config


def setup_hash(config: Mapping[str, Any]) -> str:
    """:func:`config_hash` of the config without :data:`RUN_LOCAL_KEYS` (at any depth): the
    experiment a record belongs to. Seeds of one experiment share it; tables never average
    records whose setup hashes differ."""
    return config_hash(_without(config, RUN_LOCAL_KEYS))


def code_version() -> str:
    """Package version, plus the git commit (and ``.dirty``) when run from a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{__version__}+git.{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [],
        "device": "cpu",
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["device"] = "cuda"
    except ImportError:
        pass
    return info


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and the GPU's, when used), in MiB."""
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = rss_kb / 1024.0 if sys.platform != "darwin" else rss_kb / 1024.0**2
    try:
        import torch

        if torch.cuda.is_available():
            peak = max(peak, torch.cuda.max_memory_allocated() / 1024.0**2)
    except ImportError:
        pass
    return round(peak, 1)


def make_record(
    *,
    stage: str,
    model: str,
    sampler: str,
    dataset: str,
    seed: int,
    metrics: Mapping[str, float],
    scale: str,
    config: Mapping[str, Any],
    wall_time_s: float,
    sampler_params: Optional[Mapping[str, Any]] = None,
    eval_dataset: Optional[str] = None,
    ci95: Optional[Mapping[str, float]] = None,
    protocol: Optional[str] = None,
    extra: Optional[Mapping[str, Any]] = None,
    recipe: Optional[str] = None,
) -> dict[str, Any]:
    """Build a result record with full provenance (see the module docstring); ``recipe``:
    the config's ``recipe`` (``None``: :data:`DEFAULT_RECIPE`)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
    return {
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "model": model,
        "sampler": sampler,
        "sampler_params": dict(sampler_params or {}),
        "dataset": dataset,
        "eval_dataset": eval_dataset or dataset,
        "seed": int(seed),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "ci95": {k: float(v) for k, v in (ci95 or {}).items()},
        "protocol": protocol,
        "scale": scale,
        "recipe": recipe or DEFAULT_RECIPE,
        "config_hash": config_hash(config),
        "setup_hash": setup_hash(config),
        "config": json.loads(json.dumps(config, default=str)),
        "code_version": code_version(),
        "packages": package_versions(),
        "hardware": hardware_info(),
        "wall_time_s": round(float(wall_time_s), 3),
        "peak_memory_mb": peak_memory_mb(),
        "extra": dict(extra or {}),
    }


def _validate(record: Mapping[str, Any], where: str) -> None:
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise ValueError(f"{where}: result record lacks {missing}")
    if not isinstance(record["metrics"], Mapping):
        raise ValueError(f"{where}: 'metrics' must be a mapping of name -> value")
    not_numbers = {k: v for k, v in record["metrics"].items()
                   if isinstance(v, bool) or not isinstance(v, (int, float))}
    if not_numbers:  # a string would otherwise surface as a pandas traceback in the report
        raise ValueError(f"{where}: metrics must be numbers, got {not_numbers}; delete the "
                         f"record and run its job again")


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Validate and write a record atomically."""
    _validate(record, str(path))
    return atomic_write_json(path, record)


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as fh:
        try:
            record = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a valid result record ({err}); delete it and run "
                             f"{snakemake_hint(path)} to make it again") from None
    _validate(record, str(path))
    return record


def load_records(paths_or_root: str | os.PathLike | Iterable[str | os.PathLike]):
    """Gather records into a long DataFrame: one row per (record, metric).

    Args:
        paths_or_root: a folder (searched recursively for ``result.json``) or an iterable of
            record paths.

    Columns: every top-level record field except ``metrics`` / ``ci95`` (``sampler_params``
    and ``extra`` stay dicts), plus ``metric``, ``value``, ``ci95`` and ``path``. ``recipe``
    is :data:`DEFAULT_RECIPE` where a record has none; ``scale`` is :func:`scale_label` of the
    record's scale and recipe (so every table and figure keeps recipes apart and names them),
    and ``raw_scale`` the record's own.
    """
    import pandas as pd

    if isinstance(paths_or_root, (str, os.PathLike)):
        root = Path(paths_or_root)
        paths = sorted(root.rglob("result.json")) if root.is_dir() else [root]
    else:
        paths = [Path(p) for p in paths_or_root]
    rows = []
    for path in paths:
        record = read_record(path)
        base = {k: v for k, v in record.items() if k not in ("metrics", "ci95")}
        for metric, value in record["metrics"].items():
            rows.append({**base, "metric": metric, "value": value,
                         "ci95": record.get("ci95", {}).get(metric), "path": str(path)})
    columns = ["stage", "model", "sampler", "dataset", "eval_dataset", "seed", "metric",
               "value", "ci95", "scale", "protocol", "path"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns + ["recipe", "raw_scale"])
    # records written before the recipe existed were all of the paper recipe
    recipes = frame["recipe"] if "recipe" in frame else [None] * len(frame)
    frame["recipe"] = [r if isinstance(r, str) and r else DEFAULT_RECIPE for r in recipes]
    frame["raw_scale"] = frame["scale"]
    frame["scale"] = [scale_label(s, r) for s, r in zip(frame["scale"], frame["recipe"])]
    return frame


def drop_non_finite(records):
    """``(records without non-finite metric values, [(path, metric), ...] left out)``: a NaN
    or infinite metric is a run that diverged, not a number to average (a table of it would be
    NaN, and its CI undefined)."""
    import math

    if records.empty:
        return records, []
    finite = [isinstance(v, (int, float)) and math.isfinite(v) for v in records["value"]]
    bad = records[[not f for f in finite]]
    return records[finite], list(zip(bad["path"], bad["metric"]))


def non_finite_note(left_out: list, limit: int = 3) -> str | None:
    """One note line naming the records whose metric was not finite; ``None`` if none."""
    if not left_out:
        return None
    shown = "; ".join(f"{path} ({metric})" for path, metric in left_out[:limit])
    more = f" and {len(left_out) - limit} more" if len(left_out) > limit else ""
    return (f"Left out: {len(left_out)} metric value(s) that are not finite (a diverged run): "
            f"{shown}{more}. Re-run those runs (see their stderr.txt).")
