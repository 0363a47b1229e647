"""ring-repro workflow: pretraining x sampler -> evaluation -> tables and figures.

    snakemake --cores all                                 # the embedded default (offline, CPU)
    snakemake --cores all --configfile config/paper.yaml  # paper scale (datasets + GPUs)
    snakemake --profile profiles/slurm --configfile config/paper.yaml   # on a SLURM cluster
    snakemake -n                                          # list what would run
    snakemake tables/table1_linear_eval.md                # regenerate one table from records
"""

import copy
import json
import sys

from snakemake.exceptions import WorkflowError

from repro.config import validate_config

# What --configfile / --config gave, before the default is merged under it. Snakemake merges
# nested dicts key by key, so a config naming its own `models` or `samplers` would otherwise
# inherit the default's extra ones, and one naming its own pretrain.per_model / per_dataset the
# default's CPU-sized overrides (e.g. batch 32 for IR); those blocks are replaced instead.
_USER_CONFIG = copy.deepcopy(config)


configfile: "config/default.yaml"


for _grid in ("models", "samplers"):
    if _grid in _USER_CONFIG:
        config[_grid] = _USER_CONFIG[_grid]
for _overrides in ("per_model", "per_dataset"):
    if _overrides in (_USER_CONFIG.get("pretrain") or {}):
        config["pretrain"][_overrides] = _USER_CONFIG["pretrain"][_overrides]
if "sphere" in (_USER_CONFIG.get("toy") or {}):  # its estimators are a grid too (null: no toy)
    config["toy"]["sphere"] = _USER_CONFIG["toy"]["sphere"]


try:
    validate_config(config)  # fills the schema's defaults; short messages naming the key
except ValueError as _err:
    raise WorkflowError(f"{_err}\n(config/schema.yaml documents every key)") from None

PY = sys.executable  # the interpreter running Snakemake (the project's venv)
RESULTS = config["results_dir"]


wildcard_constraints:
    model="|".join(config["models"]),
    sampler="|".join(config["samplers"]),
    dataset=r"[A-Za-z0-9_]+",
    seed=r"\d+",


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
