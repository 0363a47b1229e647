"""CLI: ``python -m repro.report {tables,figures} --results results --out DIR [--only ...]``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from repro.report import FIGURES, TABLE_NAMES, make_figures, make_tables


def _subcommand(sub, name: str, choices, description: str) -> argparse.ArgumentParser:
    """A subcommand with the options both share: --results, --out (default: its name), --only,
    --expected, and the claims table's and figure's --reported, --baseline, --treatment."""
    parser = sub.add_parser(name, description=description, help=f"{name} into --out",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--results", default="results", help="folder of result.json records")
    parser.add_argument("--out", default=name, help=f"where the {name} are written")
    parser.add_argument("--only", nargs="+", choices=list(choices), help=f"just these {name}")
    parser.add_argument("--expected", default=None, metavar="FILE",
                        help="the expected_runs.json a workflow run writes under the results "
                             "folder: records of those runs made with other settings are left "
                             "out, and the notes say which (default: none left out)")
    parser.add_argument("--reported", default="tables/reported",
                        help="folder of the paper's numbers (table*.csv) and claims (claims.csv)")
    parser.add_argument("--baseline", default="uniform",
                        help="sampler label of the claims' baseline")
    parser.add_argument("--treatment", default="ring",
                        help="sampler label of the claims' treatment")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repro.report",
        description="Tables (Markdown, LaTeX, CSV) and figures (PNG, PDF) from the result "
                    "records under --results, beside the paper's reported numbers. Never "
                    "trains anything.")
    sub = parser.add_subparsers(dest="what", required=True, metavar="{tables,figures}")
    tables = _subcommand(
        sub, "tables", TABLE_NAMES,
        "Table 1 (linear evaluation), 2 (few-shot) and 3 (detection) as .md, .tex and .csv: "
        "our runs as mean +- 95% CI over seeds per config scale, beside the paper's reported "
        "numbers and their difference; and the claims table (claims.*): each of the paper's "
        "claims (claims.csv) against the paired seed differences treatment - baseline, with a "
        "verdict; Table 4 (every method), the model-option ablations (MoCo's queue size, "
        "IR's and CMC's bank momentum, each crossed with the sampler), the cost per stage "
        "(cost.*, from Snakemake's benchmark files) and the false negatives (the share of "
        "each similarity band's negatives of the anchor's own class).")
    tables.add_argument("--benchmarks", default=None, metavar="DIR",
                        help="Snakemake's benchmark files, for the cost table (default: "
                             "<results>/benchmarks)")
    figures = _subcommand(
        sub, "figures", FIGURES,
        "Loss curves, annealing schedules and their effect, the Gaussian toy's bias and "
        "variance, accuracy against the ring bounds, the methods, the model-option ablations, the "
        "false negatives per similarity band, the claims as a forest plot (treatment - "
        "baseline per comparison, 95% CI, the claimed size shaded); PNG and PDF. A figure "
        "without the records it needs says what to run.")
    figures.add_argument("--w-l", type=float, default=0.9,
                         help="final w_l drawn in the schedule figure")
    figures.add_argument("--w-l-start", type=float, default=0.0,
                         help="w_l at the start of training, in the schedule figure")
    figures.add_argument("--anneal-fraction", type=float, default=0.5,
                         help="fraction of training over which w_l is annealed, in the figure")
    args = parser.parse_args(argv)
    try:
        expected = None
        if args.expected is not None:
            from repro.stale import load_expected

            expected = load_expected(args.expected)
        if args.what == "tables":
            paths = make_tables(args.results, args.out, args.reported, args.only,
                                baseline=args.baseline, treatment=args.treatment,
                                expected=expected, benchmarks=args.benchmarks)
        else:
            paths = make_figures(args.results, args.out, args.only,
                                 anneal={"w_l": args.w_l, "w_l_start": args.w_l_start,
                                         "anneal_fraction": args.anneal_fraction},
                                 expected=expected, reported_dir=args.reported,
                                 baseline=args.baseline, treatment=args.treatment)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}\n(Run by Snakemake, this job's previous {args.what} were removed "
              f"when it started, as Snakemake does before every job: fix the above and run the "
              f"same command again to make them.)", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
