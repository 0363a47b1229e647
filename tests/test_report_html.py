"""Snakemake's own report (`snakemake --report`): every table and figure, with its caption."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from repro.report.figures import FIGURES
from repro.results import make_record, write_record

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _records(results: Path) -> None:
    for seed, top1 in enumerate([61.0, 64.0]):
        for stage, metrics in (("pretrain", {"loss": 2.0}), ("linear_eval", {"top1": top1})):
            folder = results / stage / "digits" / "moco-ring" / f"seed{seed}"
            write_record(folder / "result.json", make_record(
                stage=stage, model="moco", sampler="ring", dataset="digits", seed=seed,
                metrics=metrics, scale="default", config={"seed": seed}, wall_time_s=1.0,
                sampler_params={"name": "ring", "w_l": 0.9, "w_u": 1.0}))


@pytest.mark.slow
def test_snakemake_report_holds_every_table_and_figure_with_its_caption(tmp_path,
                                                                        run_report_rule):
    results = tmp_path / "results"
    _records(results)
    proc = run_report_rule(results, tmp_path, "report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = tmp_path / "report.zip"
    made = subprocess.run([SNAKEMAKE, "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path),
                           "report", "--report", str(report)],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                               "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert made.returncode == 0, made.stderr[-3000:]
    names = zipfile.ZipFile(report).namelist()
    inside = {Path(n).name for n in names}
    tables = {"table1_linear_eval", "table2_fewshot", "table3_detection", "claims",
              "table4_methods", "cost"}
    # the figures the report rule makes here (toy_sphere only where a config runs that toy)
    figures = {f for f in FIGURES if f not in ("toy_sphere", "queue_ablation")}
    assert {f"{t}.csv" for t in tables} <= inside, sorted(inside)
    assert {f"{f}.png" for f in figures} <= inside, sorted(inside)
    page = "".join(zipfile.ZipFile(report).read(n).decode("utf-8", "replace")
                   for n in names if n.endswith((".html", ".js", ".json")))
    # captions are rendered (the reST and its Jinja: the run's scale is filled in)
    assert "linear evaluation top-1" in page and "<strong>default</strong>" in page
