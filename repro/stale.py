"""Stale results: records made by a run whose settings differ from the config now being run.

Snakemake re-runs a job whose params changed only while it has its metadata (``.snakemake/``).
Results copied to another machine, or kept after ``.snakemake/`` was deleted, have none, and
after a config change Snakemake says "Nothing to be done" over records of the old settings.
Every record knows the run it came from (its pretraining spec), so the workflow compares:

* :func:`expected_runs`: for the config being run, each pretraining run's key
  (``<dataset>/<model>-<sampler>/seed<seed>``, the layout of ``results/pretrain/``) -> the hash
  of its identity (:func:`repro.config.run_identity`), untrained baselines included;
* :func:`record_run`: the same key and hash of a record of any stage (a pretraining record's
  config is the identity; the later stages keep the pretraining spec under ``pretrain``);
* :func:`stale_paths`: the records whose run the config names with another hash.

The Snakefile warns about stale records when it parses, with the command that re-runs them,
and writes :data:`EXPECTED_FILE` when a run starts; ``python -m repro.report --expected`` leaves
stale records out of every table and figure and says so in the notes. Light: no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from repro.config import (pretrain_grid, run_identity, run_spec, sampler_labels,
                          untrained_spec)
from repro.results import config_hash, read_record

__all__ = ["EXPECTED_FILE", "run_key", "expected_runs", "record_run", "stale_paths",
           "existing_records", "load_expected", "drop_stale", "stale_note", "usable_records"]

EXPECTED_FILE = "expected_runs.json"
"""Where, under the results folder, a workflow run leaves :func:`expected_runs` of its config."""


def run_key(spec: Mapping[str, Any]) -> str:
    """``<dataset>/<model>-<sampler label>/seed<seed>`` of a pretraining spec."""
    return f"{spec['dataset']}/{spec['model']}-{spec['sampler_label']}/seed{int(spec['seed'])}"


def expected_runs(config: Mapping[str, Any]) -> dict[str, str]:
    """Every pretraining run (and untrained baseline) ``config`` asks for: key -> the hash of
    its identity."""
    specs = [run_spec(config, model, sampler, dataset, seed)
             for dataset, model in pretrain_grid(config)
             for sampler in sampler_labels(config, model)
             for seed in config["seeds"]]
    if (config.get("linear_eval") or {}).get("untrained"):
        specs += [untrained_spec(config, model, dataset, seed)
                  for dataset, model in pretrain_grid(config) for seed in config["seeds"]]
    return {run_key(spec): config_hash(run_identity(spec)) for spec in specs}


def record_run(stage: str, config: Any) -> Optional[tuple[str, str]]:
    """``(key, identity hash)`` of the pretraining run behind a record, ``None`` when its
    config does not say (the toy; records older than the spec)."""
    if not isinstance(config, Mapping):
        return None
    spec = config if stage == "pretrain" else config.get("pretrain")
    if not isinstance(spec, Mapping):
        return None
    try:
        return run_key(spec), config_hash(run_identity(spec))
    except (KeyError, TypeError, ValueError):
        return None


def stale_paths(records: Iterable[tuple[str, str, Any]],
                expected: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(path, key)`` of each record ``(path, stage, config)`` whose run ``expected`` names
    with another identity hash, in the given order. Runs ``expected`` does not name are other
    experiments sharing the results folder, never stale."""
    found = []
    for path, stage, config in records:
        run = record_run(stage, config)
        if run is not None and run[0] in expected and expected[run[0]] != run[1]:
            found.append((str(path), run[0]))
    return found


def existing_records(results: str | Path,
                     expected: Mapping[str, str]) -> list[tuple[str, str, Any]]:
    """``(path, stage, config)`` of the records on disk of the runs ``expected`` names: each
    pretraining record, and each untrained baseline's linear-eval record (its run has no
    pretraining folder). Unreadable files are skipped (the stage that reads them says why)."""
    found = []
    for key in expected:
        stage = "linear_eval" if "-untrained/" in key else "pretrain"
        path = Path(results) / stage / key / "result.json"
        if not path.exists():
            continue
        try:
            record = read_record(path)
        except (OSError, ValueError):
            continue
        found.append((str(path), str(record["stage"]), record.get("config")))
    return found


def load_expected(path: str | Path) -> dict[str, str]:
    """The :data:`EXPECTED_FILE` a workflow run wrote; ``ValueError`` for a file that is not
    such a mapping."""
    with open(path) as fh:
        try:
            found = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err.msg})") from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise ValueError(f"{path}: not a mapping of run -> identity hash")
    return found


def drop_stale(records, expected: Optional[Mapping[str, str]]):
    """``(records without the stale ones, [(path, key), ...] left out)`` for a
    :func:`repro.results.load_records` frame; unchanged without ``expected``."""
    if not expected or records.empty or "config" not in records:
        return records, []
    rows = records.drop_duplicates("path")
    stale = stale_paths(zip(rows["path"], rows["stage"], rows["config"]), expected)
    left_out = {path for path, _ in stale}
    return records[~records["path"].isin(left_out)], stale


def stale_note(stale: list[tuple[str, str]], limit: int = 5) -> Optional[str]:
    """One note line naming the records left out and how to re-run them; ``None`` if none."""
    if not stale:
        return None
    runs = sorted({key for _, key in stale})
    shown = ", ".join(runs[:limit]) + (f" and {len(runs) - limit} more" if len(runs) > limit
                                       else "")
    return (f"Left out: {len(stale)} record(s) of {len(runs)} run(s) made with other settings "
            f"than this config's ({shown}). Re-run them with `snakemake --cores all -R "
            f"<their result.json> --configfile YOUR.yaml`, or point results_dir elsewhere.")


def usable_records(results: str | Path, expected: Optional[Mapping[str, str]] = None):
    """The records under ``results`` that tables and figures may show: without the stale ones
    (:func:`drop_stale`) and without non-finite metric values
    (:func:`repro.results.drop_non_finite`). Returns ``(records, notes)``, one note line per
    kind left out, each also printed to stderr as a warning."""
    import sys

    from repro.results import drop_non_finite, load_records, non_finite_note

    records, stale = drop_stale(load_records(results), expected)
    records, diverged = drop_non_finite(records)
    notes = [n for n in (stale_note(stale), non_finite_note(diverged)) if n]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return records, notes
