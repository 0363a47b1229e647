"""Result records and atomic writes."""

import json
import os
import stat

import pytest

from repro.io import atomic_write, atomic_write_json
from repro.results import config_hash, load_records, make_record, read_record, write_record


def _record(**over):
    base = dict(stage="linear_eval", model="ir", sampler="ring", dataset="digits", seed=0,
                metrics={"top1": 90.0}, scale="default", config={"a": 1}, wall_time_s=1.0)
    base.update(over)
    return make_record(**base)


def test_record_carries_provenance():
    rec = _record()
    for field in ("config_hash", "code_version", "packages", "hardware", "wall_time_s",
                  "peak_memory_mb", "schema_version"):
        assert field in rec
    assert rec["packages"]["torch"]
    assert rec["eval_dataset"] == "digits"


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        _record(stage="pretraining")


def test_write_then_load_records_gives_one_row_per_metric(tmp_path):
    write_record(tmp_path / "a" / "result.json", _record(metrics={"top1": 1.0, "top5": 2.0}))
    write_record(tmp_path / "b" / "result.json", _record(sampler="uniform", ci95={"top1": 0.5}))
    frame = load_records(tmp_path)
    assert len(frame) == 3
    assert set(frame["metric"]) == {"top1", "top5"}
    assert frame.loc[frame["sampler"] == "uniform", "ci95"].item() == 0.5


def test_load_records_of_empty_folder_is_empty_with_columns(tmp_path):
    frame = load_records(tmp_path)
    assert frame.empty and "metric" in frame.columns


def test_corrupt_record_names_the_file(tmp_path):
    bad = tmp_path / "result.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=str(bad)):
        read_record(bad)
    bad.write_text(json.dumps({"stage": "x"}))
    with pytest.raises(ValueError, match="lacks"):
        read_record(bad)


def test_a_record_whose_metric_is_not_a_number_is_refused_naming_file_and_metric(tmp_path):
    record = make_record(stage="linear_eval", model="ir", sampler="uniform", dataset="shapes",
                         seed=0, metrics={"top1": 50.0}, scale="default", config={},
                         wall_time_s=1.0)
    path = tmp_path / "result.json"
    for bad in ("93.1", True, None):
        path.write_text(json.dumps({**record, "metrics": {"top1": bad}}))
        with pytest.raises(ValueError, match=rf"{path}: metrics must be numbers.*top1"):
            read_record(path)
    path.write_text(json.dumps(record))
    assert read_record(path)["metrics"] == {"top1": 50.0}


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"v": 1})

    def explode(tmp):
        tmp.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left


def test_atomic_write_creates_parent_folders(tmp_path):
    atomic_write_json(tmp_path / "x" / "y" / "z.json", [1])
    assert os.path.exists(tmp_path / "x" / "y" / "z.json")


def test_atomic_write_gives_the_permissions_of_a_plain_open_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "record.json", {"v": 1})
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "record.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o644


def test_a_broken_record_names_the_full_command_that_remakes_it(tmp_path):
    import pytest

    from repro.results import read_record

    path = tmp_path / "my runs" / "result.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError) as err:
        read_record(path)
    # pasteable: cores given, the path quoted, the target before --configfile
    assert f"`snakemake --cores all '{path}' --configfile YOUR.yaml`" in str(err.value)
