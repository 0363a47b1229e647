"""A stale or mixed result never reaches a table: records whose run this config names with
other settings are found (repro.stale), warned about and left out of tables and figures."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repro.config import load_config, run_identity, run_spec, untrained_spec
from repro.results import config_hash, load_records, make_record, write_record
from repro.stale import (drop_stale, expected_runs, record_run, run_key, stale_note,
                         stale_paths)

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.fixture()
def default():
    return copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))


def test_expected_runs_are_every_pretraining_run_and_untrained_baseline(default):
    expected = expected_runs(default)
    assert len(expected) == 42 + 21  # Table 1's trained cells x seeds, and untrained ones
    spec = run_spec(default, "moco", "ring", "digits", 2)
    assert expected["digits/moco-ring/seed2"] == config_hash(run_identity(spec))
    assert "shapes/cmc-untrained/seed0" in expected and "digits/cmc-ring/seed0" not in expected


def test_every_stage_of_a_run_points_back_to_the_same_run_and_settings(default):
    spec = run_spec(default, "ir", "uniform", "shapes", 1)
    pretrain = record_run("pretrain", run_identity(spec))
    linear = record_run("linear_eval", {"pretrain": spec, "linear_eval": {"epochs": 30}})
    assert pretrain == linear == ("shapes/ir-uniform/seed1", config_hash(run_identity(spec)))
    untrained = untrained_spec(default, "ir", "shapes", 1)
    assert record_run("linear_eval", {"pretrain": untrained})[0] == run_key(untrained)
    assert record_run("toy", {"dim": 4}) is None


def test_a_record_of_other_settings_is_stale_and_other_experiments_are_not(default):
    expected = expected_runs(default)
    hotter = copy.deepcopy(default)
    hotter["pretrain"]["temperature"] = 0.2
    old = run_spec(hotter, "ir", "uniform", "shapes", 0)
    same = run_spec(default, "ir", "uniform", "shapes", 1)
    other = {**run_spec(default, "ir", "uniform", "shapes", 0), "sampler_label": "hcl"}
    found = stale_paths([("a", "pretrain", run_identity(old)),
                         ("b", "linear_eval", {"pretrain": same}),
                         ("c", "linear_eval", {"pretrain": other}),
                         ("d", "linear_eval", {"pretrain": old})], expected)
    assert found == [("a", "shapes/ir-uniform/seed0"), ("d", "shapes/ir-uniform/seed0")]


def _linear_record(root, spec, value):
    record = make_record(stage="linear_eval", model=spec["model"],
                         sampler=spec["sampler_label"], dataset=spec["dataset"],
                         seed=spec["seed"], metrics={"top1": value}, scale="default",
                         config={"pretrain": spec, "linear_eval": {}}, wall_time_s=1.0,
                         sampler_params=spec["sampler"])
    write_record(root / "linear_eval" / run_key(spec) / "result.json", record)


def test_tables_leave_stale_records_out_and_say_which(default, tmp_path):
    from repro.report import make_tables

    hotter = copy.deepcopy(default)
    hotter["pretrain"]["temperature"] = 0.2
    _linear_record(tmp_path, run_spec(default, "ir", "uniform", "shapes", 0), 50.0)
    _linear_record(tmp_path, run_spec(hotter, "ir", "uniform", "shapes", 1), 90.0)
    records, stale = drop_stale(load_records(tmp_path), expected_runs(default))
    assert list(records["value"]) == [50.0] and [k for _, k in stale] == [
        "shapes/ir-uniform/seed1"]
    assert "shapes/ir-uniform/seed1" in stale_note(stale) and "-R" in stale_note(stale)
    make_tables(tmp_path, tmp_path / "tables", only=["table1"],
                expected=expected_runs(default))
    table = (tmp_path / "tables" / "table1_linear_eval.md").read_text()
    assert "50.00 (n=1)" in table and "90.00" not in table
    assert "Left out: 1 record(s) of 1 run(s)" in table


@pytest.mark.slow
def test_copied_results_after_a_config_change_are_named_and_kept_out_of_the_table(tmp_path):
    """The issue's case: results rsynced elsewhere (no Snakemake metadata for them), then the
    temperature changed. Snakemake alone would say "Nothing to be done" over the old runs."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    config.update(seeds=[0], results_dir=str(tmp_path / "made"),
                  models={"simclr": {}}, samplers={"uniform": {"name": "uniform"}})
    config["pretrain"].update(datasets=["digits"], epochs=1, subset=64, batch_size=32,
                              per_model={},
                              per_dataset={})
    config["linear_eval"].update(epochs=1, untrained=False)
    config["detection"]["runs"] = None
    config["report"] = {"tables_dir": str(tmp_path / "tables"),
                        "figures_dir": str(tmp_path / "figures")}
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump(config))
    target = str(tmp_path / "tables" / "table1_linear_eval.md")
    run = [SNAKEMAKE, "--cores", "2", target, "--configfile"]
    subprocess.run(run + [str(first)], cwd=ROOT, check=True, capture_output=True)
    shutil.copytree(tmp_path / "made", tmp_path / "copied")  # rsync: no metadata comes along
    config.update(results_dir=str(tmp_path / "copied"))
    config["pretrain"]["temperature"] = 0.2
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(config))
    proc = subprocess.run(run + [str(second), "-R", "table1_linear_eval"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stale = str(tmp_path / "copied" / "pretrain" / "digits" / "simclr-uniform" / "seed0" /
                "result.json")
    assert "made with other settings than this config's" in proc.stderr
    assert f"snakemake --cores all -R {stale}" in proc.stderr
    table = Path(target).read_text()
    # its pretraining and linear-eval records; no cell of the old run is left in the table
    assert "Left out: 2 record(s) of 1 run(s)" in table
    assert "SimCLR" not in table.split("\n- ")[0]
    expected = json.loads((tmp_path / "copied" / "expected_runs.json").read_text())
    assert list(expected) == ["digits/simclr-uniform/seed0"]


@pytest.mark.parametrize("text", ["{not json", '{"digits/ir-ring/seed0": 3}', "[]"])
def test_a_corrupt_expected_runs_file_is_one_error_naming_it(tmp_path, text, capsys):
    from repro.report.__main__ import main

    bad = tmp_path / "expected_runs.json"
    bad.write_text(text)
    (tmp_path / "results").mkdir()
    code = main(["tables", "--results", str(tmp_path / "results"), "--out",
                 str(tmp_path / "t"), "--expected", str(bad), "--only", "table1"])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {bad}:" in err and "Traceback" not in err
