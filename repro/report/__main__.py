"""CLI: ``python -m repro.report {tables,figures} --results results --out DIR [--only ...]``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from repro.report import FIGURES, TABLES, make_figures, make_tables


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repro.report",
        description="Tables (Markdown, LaTeX, CSV) and figures (PNG, PDF) from the result "
                    "records under --results, beside the paper's reported numbers. Never "
                    "trains anything.")
    sub = parser.add_subparsers(dest="what", required=True)
    tables = sub.add_parser("tables", help="Tables 1-3 into --out")
    tables.add_argument("--results", default="results", help="folder of result.json records")
    tables.add_argument("--out", default="tables")
    tables.add_argument("--reported", default="tables/reported",
                        help="folder of the paper's numbers (table*.csv)")
    tables.add_argument("--only", nargs="+", choices=list(TABLES), help="just these tables")
    figures = sub.add_parser("figures", help="figures into --out")
    figures.add_argument("--results", default="results")
    figures.add_argument("--out", default="figures")
    figures.add_argument("--only", nargs="+", choices=list(FIGURES), help="just these figures")
    figures.add_argument("--w-l", type=float, default=0.9,
                         help="final w_l drawn in the schedule figure")
    figures.add_argument("--w-l-start", type=float, default=0.0)
    figures.add_argument("--anneal-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    try:
        if args.what == "tables":
            paths = make_tables(args.results, args.out, args.reported, args.only)
        else:
            paths = make_figures(args.results, args.out, args.only,
                                 anneal={"w_l": args.w_l, "w_l_start": args.w_l_start,
                                         "anneal_fraction": args.anneal_fraction})
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
