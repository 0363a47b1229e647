"""The README's GPU table, from one device check's files (never typed in).

    python bench/gpu_table.py bench/measured/2026-12-04-h200   # prints markdown

Reads ``bench.json`` (``bench/run.py --json``) and ``summary.json`` (``bench/device_check.sh``)
of one folder and prints: per model and image side, the training step's images/s (fp32 and
bf16 uniform, bf16 ring), the bf16 speed-up, ring / uniform and backbone / step in bf16 and the
peak GPU memory; the loader, BatchAugment and projected-grid rows; the peer rows; and each
model's measured ``paper.yaml`` epoch through Snakemake (PIL loader and ``augment: batch``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

MODELS = ("ir", "cmc", "moco", "simclr")


def _rows(bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["benchmark"]: r for r in bench["rows"]}


def _ratio(row: Optional[dict[str, Any]]) -> str:
    """``median [q1-q3] verdict`` of a ratio row (``—`` when the row is absent)."""
    if row is None:
        return "—"
    return f"{row['ratio']:.2f} [{row['q1']:.2f}-{row['q3']:.2f}] {row['ok']}"


def _value(row: Optional[dict[str, Any]], digits: int = 0) -> str:
    return "—" if row is None else f"{row['value']:,.{digits}f}"


def step_table(bench: dict[str, Any]) -> list[str]:
    """One line per model and image side: images/s, bf16 speed-up, ratios, peak memory."""
    rows = _rows(bench)
    sides = bench["settings"]["paper_shapes"]["images"]
    out = ["| model | side | fp32 uniform img/s | bf16 uniform img/s | bf16 ring img/s "
           "| bf16 speed-up | ring / uniform (bf16) | backbone / step (bf16) | peak GiB |",
           "|---|---|---|---|---|---|---|---|---|"]
    for side in sides:
        for m in MODELS:
            get = rows.get
            out.append(
                f"| {m} | {side}px | {_value(get(f'{m}: step images/s, {side}px fp32 (uniform)'))} "
                f"| {_value(get(f'{m}: step images/s, {side}px bf16 (uniform)'))} "
                f"| {_value(get(f'{m}: step images/s, {side}px bf16 (ring)'))} "
                f"| {_ratio(get(f'{m}: bf16 speed-up (fp32 step / bf16 step), {side}px'))} "
                f"| {_ratio(get(f'{m}: ring step / uniform step, {side}px bf16'))} "
                f"| {_ratio(get(f'{m}: backbone fwd+bwd / training step, {side}px bf16'))} "
                f"| {_value(get(f'{m}: peak GPU memory, {side}px bf16 ring step'), 2)} |")
    return out


def pipeline_table(bench: dict[str, Any]) -> list[str]:
    """The loader, BatchAugment, grid-projection and peer rows, as the bench wrote them."""
    keep = ("DataLoader", "BatchAugment images/s", "projected GPU-hours", "ring selection")
    out = ["| benchmark | measured | ratio [IQR] | goal | ok |", "|---|---|---|---|---|"]
    for r in bench["rows"]:
        if r["benchmark"].startswith(keep) or "lightly" in r["benchmark"]:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f} [{r['q1']:.2f}-{r['q3']:.2f}]"
            out.append(f"| {r['benchmark']} | {r['measured']} | {ratio} | {r['goal']} "
                       f"| {r['ok']} |")
    return out


def epoch_table(summary: dict[str, Any]) -> list[str]:
    """Each model's one-epoch run through Snakemake: seconds and images/s per augment path."""
    out = ["| model | PIL loader: epoch s | img/s | augment: batch: epoch s | img/s |",
           "|---|---|---|---|---|"]
    pil, batch = summary.get("epochs", {}), summary.get("epochs_batch", {})
    for m in MODELS:
        cells = []
        for found in (pil, batch):
            e = found.get(m)
            cells += (["—", "—"] if e is None
                      else [f"{e['epoch_s']:.2f}", f"{e['images_per_s']:,.0f}"])
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out


def render(folder: Path) -> str:
    bench = json.loads((folder / "bench.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    m = bench["machine"]
    head = (f"{m.get('gpu', m['device'])}, torch {m['torch']}, {m['cpu_count']} CPU cores "
            f"({m['cpu']}); bench complete: {bench.get('complete', True)}; device check pieces: "
            + ", ".join(f"{k} exit {v['exit']} ({v['seconds']} s)"
                        for k, v in summary["pieces"].items()))
    return "\n".join([head, "", *step_table(bench), "", *pipeline_table(bench), "",
                      *epoch_table(summary)]) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path,
                        help="a device check's output folder (bench.json and summary.json)")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
