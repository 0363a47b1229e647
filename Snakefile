"""ring-repro workflow: pretraining x sampler -> evaluation -> tables and figures.

    snakemake --cores all                                 # the embedded default (offline, CPU)
    snakemake --cores all --configfile config/paper.yaml  # paper scale
    snakemake -n                                          # list what would run
"""

import sys

from snakemake.utils import validate


configfile: "config/default.yaml"


validate(config, "config/schema.yaml")

PY = sys.executable  # the interpreter running Snakemake (the project's venv)
RESULTS = config["results_dir"]


include: "rules/toy.smk"


rule all:
    input:
        rules.toy.output,
