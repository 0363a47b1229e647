"""Tables and figures of the paper from result records (no training).

    python -m repro.report tables  --results results --out tables
    python -m repro.report figures --results results --out figures
"""

from repro.report.figures import FIGURES, make_figures
from repro.report.reported import load_reported
from repro.report.stats import Summary, format_delta, format_summary, summarize, t_ci95
from repro.report.tables import TABLES, TableSpec, comparison_frame, wide_frame, write_table

__all__ = [
    "FIGURES",
    "TABLES",
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


def make_tables(results, out_dir, reported_dir="tables/reported", only=None):
    """Write Tables 1-3 (or those named in ``only``: ``table1``, ``table2``, ``table3``) from
    the records under ``results``; returns the written paths."""
    from pathlib import Path

    from repro.results import load_records

    names = list(only or TABLES)
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; choose from {list(TABLES)}")
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder at {results}: run the workflow first "
                                f"(`snakemake --cores all`) or pass --results PATH")
    records = load_records(results)
    paths = []
    for name in names:
        spec = TABLES[name]
        reported = load_reported(Path(reported_dir) / spec.reported_csv)
        paths += write_table(records, reported, spec, out_dir)
    return paths
