"""Tables and figures of the paper from result records (no training).

    python -m repro.report tables  --results results --out tables
    python -m repro.report tables  --results results --out tables --only claims
    python -m repro.report figures --results results --out figures
"""

import sys

from repro.report.figures import FIGURES, make_figures
from repro.report.option_ablation import (OPTION_ABLATIONS, option_frame, option_notes,
                                          option_wide, title_of)
from repro.report.reported import load_reported
from repro.report.stats import Summary, format_delta, format_summary, summarize, t_ci95
from repro.report.tables import (TABLES, TableSpec, comparison_frame, unknown_reported_rows,
                                 wide_frame, write_table)

CLAIMS = "claims"  # --only name of the claims table (repro.report.claims)
METHODS = "table4"  # --only name of the methods table (repro.report.methods)
COST = "cost"  # --only name of the cost table (repro.report.cost)
FALSE_NEGATIVES = "false_negatives"  # --only name of repro.report.false_negatives' table
# `tables --only`; the model-option ablations (queue, bank_momentum) by their registry names
TABLE_NAMES = (*TABLES, METHODS, CLAIMS, *OPTION_ABLATIONS, COST, FALSE_NEGATIVES)

__all__ = [
    "FIGURES",
    "TABLES",
    "TABLE_NAMES",
    "Summary",
    "TableSpec",
    "comparison_frame",
    "format_delta",
    "format_summary",
    "load_reported",
    "make_figures",
    "make_tables",
    "summarize",
    "t_ci95",
    "wide_frame",
    "write_table",
]


def make_tables(results, out_dir, reported_dir="tables/reported", only=None, *,
                baseline="uniform", treatment="ring", expected=None, benchmarks=None):
    """Write Tables 1-4, the claims table, the model-option ablations, the cost table and
    the false negatives (or those named in ``only``: ``table1``, ``table2``, ``table3``,
    ``table4``, ``claims``, each ablation of :data:`OPTION_ABLATIONS` (``queue``,
    ``bank_momentum``), ``cost``, ``false_negatives``) from the records under ``results``;
    returns the written paths. ``baseline`` /
    ``treatment``: the sampler labels the claims table compares. ``benchmarks``: the folder of
    Snakemake's benchmark files the cost table reads (default ``<results>/benchmarks``).
    ``expected``: :func:`repro.stale.expected_runs` of the config being run; records of those
    runs made with other settings are left out of every table, and a note says which."""
    from pathlib import Path

    from repro.report.claims import (CLAIMS_STEM, CLAIMS_TITLE, claims_frame, claims_notes,
                                     claims_wide)
    from repro.report.reported import CLAIMS_CSV, load_claims
    from repro.report.tables import write_files

    names = list(only or TABLE_NAMES)
    unknown = [n for n in names if n not in TABLE_NAMES]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; choose from {list(TABLE_NAMES)}")
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder at {results}: run the workflow first "
                                f"(`snakemake --cores all`) or pass --results PATH")
    from repro.stale import usable_records

    records, extra = usable_records(results, expected)
    paths = []
    for name in names:
        if name == METHODS:
            from repro.report.methods import (METHODS_STEM, METHODS_TITLE, methods_frame,
                                              methods_notes, methods_wide)

            tidy = methods_frame(records)
            paths += write_files(tidy, methods_wide(tidy), METHODS_TITLE,
                                 methods_notes(tidy) + extra, out_dir, METHODS_STEM)
            continue
        if name in OPTION_ABLATIONS:
            ablation = OPTION_ABLATIONS[name]
            tidy = option_frame(records, ablation)
            paths += write_files(tidy, option_wide(tidy), title_of(ablation),
                                 option_notes(tidy, ablation) + extra, out_dir, ablation.stem)
            continue
        if name == FALSE_NEGATIVES:
            from repro.report.false_negatives import (FALSE_NEGATIVES_STEM,
                                                      FALSE_NEGATIVES_TITLE,
                                                      false_negatives_frame,
                                                      false_negatives_notes,
                                                      false_negatives_wide)

            tidy = false_negatives_frame(records)
            paths += write_files(tidy, false_negatives_wide(tidy), FALSE_NEGATIVES_TITLE,
                                 false_negatives_notes(tidy) + extra, out_dir,
                                 FALSE_NEGATIVES_STEM)
            continue
        if name == COST:
            from repro.report.cost import (COST_STEM, COST_TITLE, cost_frame, cost_notes,
                                           cost_wide, read_benchmarks)

            where = Path(benchmarks) if benchmarks else results / "benchmarks"
            tidy = cost_frame(records, read_benchmarks(where, results))
            paths += write_files(tidy, cost_wide(tidy), COST_TITLE,
                                 cost_notes(tidy, records, str(where)) + extra, out_dir,
                                 COST_STEM)
            continue
        if name == CLAIMS:
            claims_file = Path(reported_dir) / CLAIMS_CSV
            claims = load_claims(claims_file)
            tidy = claims_frame(records, claims, baseline, treatment)
            notes = claims_notes(tidy, claims, baseline, treatment, records, str(claims_file))
            paths += write_files(tidy, claims_wide(tidy), CLAIMS_TITLE, notes + extra, out_dir,
                                 CLAIMS_STEM)
            continue
        spec = TABLES[name]
        reported = load_reported(Path(reported_dir) / spec.reported_csv)
        unknown = unknown_reported_rows(reported, spec)
        for line in unknown:
            print(f"warning: {line}", file=sys.stderr)
        paths += write_table(records, reported, spec, out_dir, extra_notes=extra + unknown)
    return paths
