"""Mutation score per module from mutmut's results (``make mutation``).

Reads the ``mutants/<path>.meta`` files mutmut 3 writes (one per mutated source file: every
mutant's exit code) and prints, per module, killed / total and the score, where killed counts
mutants the tests failed on (or that timed out) and total every mutant that was run. Mutants no
selected test reaches ("no tests") count as survivors. With module arguments (dotted names,
e.g. ``repro.samplers repro.models``) only those are shown.

    python tools/mutation_report.py [--survivors] [module ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 152, 255}  # test failure, pytest error, timeout (SIGXCPU)
SURVIVED = {0, 5, 33}  # tests passed, or no selected test reaches the mutant
NOT_RUN = {None, 2, 34}


def module_of(meta: Path, root: Path) -> str:
    rel = meta.relative_to(root).with_suffix("").with_suffix("")  # x/y.py.meta -> x/y
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def collect(root: Path) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[module_of(meta, root)] = codes
    return out


def selected(module: str, wanted: list[str]) -> bool:
    return not wanted or any(module == w or module.startswith(w + ".") for w in wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="dotted module names or packages")
    parser.add_argument("--survivors", action="store_true", help="list every survivor")
    parser.add_argument("--root", default="mutants", type=Path)
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"no {args.root}/: run `make mutation` first", file=sys.stderr)
        return 2
    rows, survivors = [], []
    totals = Counter()
    for module, codes in collect(args.root).items():
        if not selected(module, args.modules):
            continue
        killed = sum(c in KILLED for c in codes.values())
        survived = [k for k, c in codes.items() if c in SURVIVED]
        not_run = sum(c in NOT_RUN for c in codes.values())
        other = len(codes) - killed - len(survived) - not_run  # segfault, suspicious
        total = killed + len(survived) + other
        if total == 0:
            rows.append((module, "-", "-", f"not run ({not_run} mutants)"))
            continue
        rows.append((module, f"{killed}/{total}", f"{100 * killed / total:.1f}%",
                     f"{len(survived)} survived" + (f", {other} other" if other else "")
                     + (f", {not_run} not run" if not_run else "")))
        totals.update(killed=killed, total=total)
        survivors += [(module, k, codes[k]) for k in survived]
    if not rows:
        print("no mutation results for " + (" ".join(args.modules) or "any module"),
              file=sys.stderr)
        return 2
    width = max(len(r[0]) for r in rows)
    print(f"{'module':<{width}}  {'killed':>9}  {'score':>6}  notes")
    for module, ratio, score, note in rows:
        print(f"{module:<{width}}  {ratio:>9}  {score:>6}  {note}")
    if totals["total"]:
        print(f"{'all':<{width}}  {totals['killed']}/{totals['total']:<4}"
              f"  {100 * totals['killed'] / totals['total']:.1f}%")
    if args.survivors:
        for module, key, code in survivors:
            print(f"survived{' (no test reaches it)' if code in (5, 33) else ''}: {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
