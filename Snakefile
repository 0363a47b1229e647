"""ring-repro workflow: pretraining x sampler -> evaluation -> tables and figures.

    snakemake --cores all                                 # the embedded default (offline, CPU)
    snakemake --cores all --configfile config/paper.yaml  # paper scale (datasets + GPUs)
    snakemake --profile profiles/slurm --configfile config/paper.yaml   # on a SLURM cluster
    snakemake -n                                          # list what would run
    snakemake tables/table1_linear_eval.md                # regenerate one table from records
    snakemake --report report.html                        # every table and figure, one page
"""

import copy
import os
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version

from repro.config import apply_cli_overrides, fit_inherited_runs, validate_config
from repro.io import atomic_write_json
from repro.stale import EXPECTED_FILE, existing_records, expected_runs, stale_paths

# What --configfile / --config gave, before the default is merged under it. Snakemake merges
# nested dicts key by key, so a config naming its own `models` or `samplers` would otherwise
# inherit the default's extra ones, and one naming its own pretrain.per_model / per_dataset the
# default's CPU-sized overrides (e.g. batch 32 for IR); those blocks are replaced instead.
_USER_CONFIG = copy.deepcopy(config)

min_version("9.0")


configfile: "config/default.yaml"


report: "report/workflow.rst"


for _grid in ("models", "samplers"):
    if _grid in _USER_CONFIG:
        config[_grid] = _USER_CONFIG[_grid]
for _overrides in ("per_model", "per_dataset"):
    if _overrides in (_USER_CONFIG.get("pretrain") or {}):
        config["pretrain"][_overrides] = _USER_CONFIG["pretrain"][_overrides]
if "sphere" in (_USER_CONFIG.get("toy") or {}):  # its estimators are a grid too (null: no toy)
    config["toy"]["sphere"] = _USER_CONFIG["toy"]["sphere"]
# --config 'pretrain={"epochs": 6}' sets the number 6 (Snakemake types top-level values only)
apply_cli_overrides(config, workflow.config_settings.overwrite_config or {})
for _line in fit_inherited_runs(config, _USER_CONFIG):
    logger.warning(f"NOTE: {_line}")


try:
    validate_config(config)  # fills the schema's defaults; short messages naming the key
except ValueError as _err:
    raise WorkflowError(f"{_err}\n(config/schema.yaml documents every key)") from None

# "results/" and "./results" name the same folder as "results": one spelling, so that targets
# typed either way match the rules' outputs (os.path.normpath)
RESULTS = os.path.normpath(config["results_dir"])
for _key in ("tables_dir", "figures_dir", "reported_dir"):
    if (config.get("report") or {}).get(_key):
        config["report"][_key] = os.path.normpath(config["report"][_key])


wildcard_constraints:
    model="|".join(config["models"]),
    sampler="|".join(config["samplers"]),
    dataset=r"[A-Za-z0-9_]+",
    seed=r"\d+",


# Stale results (repro.stale): each run this config asks for -> the hash of its settings. A
# record of one of these runs with another hash was made with other settings (results copied
# without .snakemake/, or kept after it was deleted, never re-run by Snakemake): say so now,
# and keep it out of every table and figure (the report rules pass --expected).
EXPECTED_RUNS = expected_runs(config)
EXPECTED_PATH = f"{RESULTS}/{EXPECTED_FILE}"
_stale = stale_paths(existing_records(RESULTS, EXPECTED_RUNS), EXPECTED_RUNS)
if _stale:
    logger.warning(
        f"WARNING: {len(_stale)} result(s) in {RESULTS} were made with other settings than "
        f"this config's, and Snakemake has no record of it (no .snakemake/ metadata): "
        + ", ".join(path for path, _ in _stale[:5]) + (" ..." if len(_stale) > 5 else "")
        + "\n  Tables and figures leave them out. To re-run them (and what depends on them): "
        f"snakemake --cores all -R {' '.join(shlex.quote(p) for p, _ in _stale)}"
        " --configfile YOUR.yaml")


onstart:
    # what the report rules compare records with (python -m repro.report --expected)
    atomic_write_json(EXPECTED_PATH, EXPECTED_RUNS)


# helpers first (PY, CONDA_ENV, output folders, target lists), then rules only
include: "rules/common.smk"


# Said before any job starts (dry runs included), not only in the failing job's stderr.txt.
# Warnings, not errors: tables can still be regenerated from records made elsewhere.
for _message in missing_datasets():
    logger.warning(f"WARNING: {_message}\n  Jobs that need this dataset will fail "
                   "(exit 2, message in their stderr.txt); existing records are still used.")
if fewshot_skips_everything():
    logger.warning("WARNING: fewshot.in_domain is false and every fewshot source is the "
                   "pretraining dataset of the encoders evaluated: no few-shot job (add a "
                   "source, or set fewshot.in_domain: true for in-domain rows).")
for _message in missing_fewshot_sources():
    logger.warning(f"WARNING: {_message}\n  Its few-shot jobs will fail (message in their "
                   "stderr.txt); existing records are still used.")
for _message in missing_detection_data():
    logger.warning(f"WARNING: {_message}\n  Those detection jobs will fail (message in their "
                   "stderr.txt); existing records are still used.")


include: "rules/toy.smk"
include: "rules/pretrain.smk"
include: "rules/linear_eval.smk"
include: "rules/fewshot.smk"
include: "rules/detection.smk"
include: "rules/report.smk"


rule all:
    input:
        rules.toy.output,
        rules.toy_sphere.output if config["toy"].get("sphere") else [],
        pretrain_targets(),
        linear_eval_targets(),
        fewshot_targets(),
        detection_targets(),
        rules.report.input,
