"""Records know their recipe (paper, released, or a user's), and no table pools two recipes."""

import copy
from pathlib import Path

import yaml

from repro.config import load_config, run_identity, run_spec
from repro.report.methods import methods_frame
from repro.report.reported import load_reported
from repro.report.tables import TABLES, comparison_frame, wide_frame
from repro.results import (DEFAULT_RECIPE, load_records, make_record, read_record,
                           write_record)

ROOT = Path(__file__).resolve().parent.parent


def _write(root, seed, value, recipe):
    record = make_record(stage="linear_eval", model="moco", sampler="ring", dataset="digits",
                         seed=seed, metrics={"top1": value}, scale="default",
                         config={"seed": seed}, wall_time_s=1.0,
                         sampler_params={"name": "ring", "w_l": 0.9, "w_u": 0.99},
                         recipe=recipe)
    if recipe is None:  # a record written before the recipe existed
        record.pop("recipe")
    write_record(root / f"{recipe}" / f"seed{seed}" / "result.json", record)


def test_the_schema_default_is_the_one_declared_recipe():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    assert schema["properties"]["recipe"]["default"] == DEFAULT_RECIPE == "paper"


def test_a_record_carries_its_recipe_and_an_old_record_reads_as_the_paper_recipe(tmp_path):
    _write(tmp_path, 0, 90.0, "released")
    _write(tmp_path, 1, 91.0, None)
    assert read_record(tmp_path / "released" / "seed0" / "result.json")["recipe"] == "released"
    frame = load_records(tmp_path)
    assert sorted(frame["recipe"]) == ["paper", "released"]
    assert sorted(frame["scale"]) == ["default", "default, recipe released"]
    assert sorted(frame["raw_scale"]) == ["default", "default"]


def test_table1_and_table4_keep_two_recipes_of_one_cell_apart_and_name_them(tmp_path):
    for seed in range(2):
        _write(tmp_path, seed, 90.0 + seed, "paper")
        _write(tmp_path, seed, 70.0 + seed, "released")
    records = load_records(tmp_path)
    spec = TABLES["table1"]
    tidy = comparison_frame(records, load_reported(ROOT / "tables" / "reported" /
                                                   spec.reported_csv), spec)
    ours = tidy[tidy["n_seeds"] > 0].set_index("scale")["mean"]
    assert dict(ours) == {"default": 90.5, "default, recipe released": 70.5}
    assert "ours (scale=default, recipe released)" in wide_frame(tidy, spec).columns
    methods = methods_frame(records)
    assert sorted(methods["scale"]) == ["default", "default, recipe released"]


def test_the_recipe_is_a_label_it_never_changes_a_runs_identity():
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    paper = run_spec(config, "moco", "ring", "digits", 0)
    config["recipe"] = "released"
    released = run_spec(config, "moco", "ring", "digits", 0)
    assert (paper["recipe"], released["recipe"]) == ("paper", "released")
    assert run_identity(paper) == run_identity(released)


def test_the_released_configs_name_their_recipe_and_their_own_folders():
    for name in ("released.yaml", "released_default.yaml"):
        config = yaml.safe_load((ROOT / "config" / name).read_text())
        assert config["recipe"] == "released"
        assert config["results_dir"] not in ("results", None)
        assert config["report"]["tables_dir"] != "tables"
