"""The Snakemake workflow: config validation and the DAG, with the real Snakemake."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _snakemake(*args, cwd=ROOT, check=True):
    proc = subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def test_default_dry_run_lists_the_dag(tmp_path):
    proc = _snakemake("-n", "--config", f"results_dir={tmp_path}")
    assert "toy" in proc.stdout


def test_bad_config_is_refused_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("toy: {rho: 1.5}\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "rho" in (proc.stdout + proc.stderr)


def test_toy_rule_runs_and_writes_a_record(tmp_path):
    out = tmp_path / "toy"
    _snakemake("--cores", "1", "--config", f"results_dir={tmp_path}",
               "--", f"{tmp_path}/toy/result.json")
    assert (out / "result.json").exists() and (out / "estimates.csv").exists()
