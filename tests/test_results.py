"""Result records and atomic writes."""

import json
import os
import stat
import subprocess
from pathlib import Path

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


def test_write_then_load_records_gives_one_row_per_metric(tmp_path):
    write_record(tmp_path / "a" / "result.json", _record(metrics={"top1": 1.0, "top5": 2.0}))
    write_record(tmp_path / "b" / "result.json", _record(sampler="uniform", ci95={"top1": 0.5}))
    frame = load_records(tmp_path)
    assert len(frame) == 3
    assert set(frame["metric"]) == {"top1", "top5"}
    assert frame.loc[frame["sampler"] == "uniform", "ci95"].item() == 0.5


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


# --- every field of a record and of the long table, against values derived here (#16) --------


def _raw(path, **over):
    """A record as an older version or another tool may have written it: plain JSON, only the
    required fields plus ``over`` (no recipe, no ci95 unless given)."""
    record = dict(stage="linear_eval", model="ir", sampler="ring", dataset="digits", seed=0,
                  metrics={"top1": 90.0}, scale="default")
    record.update(over)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_scale_label_names_every_recipe_but_the_default_and_ignores_a_missing_one():
    from repro.results import DEFAULT_RECIPE, scale_label

    assert DEFAULT_RECIPE == "paper"
    assert scale_label("default", "paper") == "default"
    assert scale_label("default", None) == "default"
    assert scale_label("default", "") == "default"
    assert scale_label("default", float("nan")) == "default"  # a pandas gap
    assert scale_label("paper", "released") == "paper, recipe released"
    assert scale_label(3, None) == "3"
    assert scale_label("tiny", "mine") == "tiny, recipe mine"


def test_load_records_columns_are_the_record_fields_with_one_row_per_metric(tmp_path):
    path = tmp_path / "a" / "result.json"
    write_record(path, _record(metrics={"top1": 81.5, "top5": 97.0}, ci95={"top1": 0.4},
                               protocol="linear", recipe="released"))
    frame = load_records(tmp_path)
    assert "metrics" not in frame.columns  # the metrics dict is spread over rows
    assert frame["metric"].tolist() == ["top1", "top5"]
    assert frame["value"].tolist() == [81.5, 97.0]
    assert frame["ci95"].tolist()[0] == 0.4 and frame["ci95"].isna().tolist() == [False, True]
    assert frame["path"].tolist() == [str(path)] * 2
    assert frame["recipe"].tolist() == ["released"] * 2
    assert frame["raw_scale"].tolist() == ["default"] * 2
    assert frame["scale"].tolist() == ["default, recipe released"] * 2
    assert frame["protocol"].tolist() == ["linear"] * 2
    assert frame["seed"].tolist() == [0, 0]


def test_load_records_reads_one_file_or_a_list_of_files_in_the_order_given(tmp_path):
    a = _raw(tmp_path / "a" / "result.json", seed=1)
    b = _raw(tmp_path / "b" / "result.json", seed=2)
    assert load_records(a)["seed"].tolist() == [1]
    assert load_records(str(b))["seed"].tolist() == [2]
    frame = load_records([str(b), a])
    assert frame["seed"].tolist() == [2, 1]
    assert frame["path"].tolist() == [str(b), str(a)]
    assert load_records(tmp_path)["seed"].tolist() == [1, 2]  # a folder: sorted paths


def test_records_without_recipe_or_ci95_load_as_the_paper_recipe_without_intervals(tmp_path):
    _raw(tmp_path / "old" / "result.json")
    only_old = load_records(tmp_path)
    assert only_old["recipe"].tolist() == ["paper"]
    assert only_old["ci95"].tolist() == [None]
    assert only_old["scale"].tolist() == ["default"]
    _raw(tmp_path / "released" / "result.json", recipe="released", scale="paper")
    _raw(tmp_path / "unnamed" / "result.json", recipe="")
    frame = load_records(tmp_path).set_index("path")
    recipes = {os.path.basename(os.path.dirname(p)): r for p, r in frame["recipe"].items()}
    assert recipes == {"old": "paper", "released": "released", "unnamed": "paper"}
    scales = {os.path.basename(os.path.dirname(p)): s for p, s in frame["scale"].items()}
    assert scales == {"old": "default", "released": "paper, recipe released",
                      "unnamed": "default"}
    raw = {os.path.basename(os.path.dirname(p)): s for p, s in frame["raw_scale"].items()}
    assert raw == {"old": "default", "released": "paper", "unnamed": "default"}


def test_load_records_of_nothing_has_exactly_the_documented_columns(tmp_path):
    frame = load_records(tmp_path)
    assert frame.empty
    assert frame.columns.tolist() == ["stage", "model", "sampler", "dataset", "eval_dataset",
                                      "seed", "metric", "value", "ci95", "scale", "protocol",
                                      "path", "recipe", "raw_scale"]
    assert load_records([]).columns.tolist() == frame.columns.tolist()


def test_non_finite_values_are_left_out_and_named_by_path_and_metric(tmp_path):
    from repro.results import drop_non_finite, non_finite_note

    good = _raw(tmp_path / "good" / "result.json", metrics={"top1": 80.0, "top5": 95.0})
    bad = tmp_path / "bad" / "result.json"
    bad.parent.mkdir()
    bad.write_text('{"stage": "linear_eval", "model": "ir", "sampler": "ring", "dataset": '
                   '"digits", "seed": 1, "metrics": {"top1": NaN, "top5": Infinity}, '
                   '"scale": "default"}')
    kept, left_out = drop_non_finite(load_records(tmp_path))
    assert kept["path"].tolist() == [str(good)] * 2 and kept["value"].tolist() == [80.0, 95.0]
    assert left_out == [(str(bad), "top1"), (str(bad), "top5")]
    empty = load_records([])
    same, none = drop_non_finite(empty)
    assert same is empty and none == []
    assert non_finite_note([]) is None
    assert non_finite_note(left_out) == (
        f"Left out: 2 metric value(s) that are not finite (a diverged run): {bad} (top1); "
        f"{bad} (top5). Re-run those runs (see their stderr.txt).")
    many = [(f"r{i}", "top1") for i in range(5)]
    assert non_finite_note(many) == (
        "Left out: 5 metric value(s) that are not finite (a diverged run): r0 (top1); r1 (top1); "
        "r2 (top1) and 2 more. Re-run those runs (see their stderr.txt).")
    assert non_finite_note(many[:3]).endswith("r2 (top1). Re-run those runs (see their "
                                              "stderr.txt).")
    assert "r0 (top1); r1 (top1) and 3 more." in non_finite_note(many, limit=2)


def test_make_record_normalises_every_field_it_is_given():
    import platform

    from repro.results import SCHEMA_VERSION, setup_hash

    rec = make_record(stage="fewshot", model="moco", sampler="ring", dataset="shapes", seed=3.0,
                      metrics={"acc": 7}, scale="tiny",
                      config={"p": (1, 2), "x": 0.5, "d": Path("/data")},
                      wall_time_s=1.23456, sampler_params={"w_l": 0.6}, eval_dataset="digits",
                      ci95={"acc": 1}, protocol="episodes", extra={"k": "v"},
                      recipe="released")
    assert SCHEMA_VERSION == 1 and rec["schema_version"] == 1
    assert (rec["stage"], rec["model"], rec["sampler"], rec["dataset"]) == (
        "fewshot", "moco", "ring", "shapes")
    assert rec["eval_dataset"] == "digits" and rec["protocol"] == "episodes"
    assert rec["seed"] == 3 and type(rec["seed"]) is int
    assert rec["metrics"] == {"acc": 7.0} and type(rec["metrics"]["acc"]) is float
    assert rec["ci95"] == {"acc": 1.0} and type(rec["ci95"]["acc"]) is float
    assert rec["sampler_params"] == {"w_l": 0.6} and rec["extra"] == {"k": "v"}
    assert rec["scale"] == "tiny" and rec["recipe"] == "released"
    # as JSON will read it back: tuples as lists, anything else (a path) as its text
    assert rec["config"] == {"p": [1, 2], "x": 0.5, "d": "/data"}
    assert rec["config_hash"] == config_hash({"p": (1, 2), "x": 0.5, "d": "/data"})
    assert rec["setup_hash"] == setup_hash({"p": (1, 2), "x": 0.5, "d": "/data"})
    assert rec["wall_time_s"] == 1.235
    assert rec["packages"]["python"] == platform.python_version()
    plain = make_record(stage="toy", model="m", sampler="s", dataset="d", seed=0,
                        metrics={}, scale="default", config={}, wall_time_s=0)
    assert plain["eval_dataset"] == "d" and plain["recipe"] == "paper"
    assert plain["ci95"] == {} and plain["sampler_params"] == {} and plain["extra"] == {}
    assert plain["protocol"] is None
    assert set(plain) == {"schema_version", "stage", "model", "sampler", "sampler_params",
                          "dataset", "eval_dataset", "seed", "metrics", "ci95", "protocol",
                          "scale", "recipe", "config_hash", "setup_hash", "config",
                          "code_version", "packages", "hardware", "wall_time_s",
                          "peak_memory_mb", "extra"}
    with pytest.raises(ValueError) as caught:
        make_record(stage="eval", model="m", sampler="s", dataset="d", seed=0, metrics={},
                    scale="default", config={}, wall_time_s=0)
    assert str(caught.value) == ("unknown stage 'eval'; one of ('pretrain', 'linear_eval', "
                                 "'fewshot', 'detection', 'toy')")


def test_config_hash_is_twelve_hex_of_the_sha256_of_the_sorted_compact_json():
    import hashlib

    config = {"b": [1, {"c": None}], "a": "x"}
    blob = '{"a":"x","b":[1,{"c":null}]}'
    assert config_hash(config) == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert config_hash({"p": __import__("pathlib").Path("/d")}) == hashlib.sha256(
        b'{"p":"/d"}').hexdigest()[:12]


def test_setup_hash_drops_seeds_and_run_local_keys_at_every_depth_lists_included():
    from repro.results import RUN_LOCAL_KEYS, setup_hash

    assert RUN_LOCAL_KEYS == {"seed", "threads", "num_workers", "gpus", "num_gpus", "data_root",
                              "data_dir", "folder_root", "device"}
    config = {"seed": 1, "lr": 0.1, "stages": [{"device": "cuda", "epochs": 2}, 3],
              "data": {"data_root": "/x", "name": "digits", "threads": 4}}
    assert setup_hash(config) == config_hash({"lr": 0.1, "stages": [{"epochs": 2}, 3],
                                              "data": {"name": "digits"}})
    assert setup_hash(config) != config_hash(config)
    assert setup_hash({**config, "seed": 2}) == setup_hash(config)
    assert setup_hash({**config, "lr": 0.2}) != setup_hash(config)


def test_code_version_is_the_package_version_plus_this_checkouts_commit(monkeypatch):
    import subprocess
    from pathlib import Path

    import repro
    from repro import results

    root = Path(results.__file__).resolve().parent.parent
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                         capture_output=True, text=True)
    if git.returncode == 0:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
        expected = f"{repro.__version__}+git.{git.stdout.strip()}{'.dirty' if dirty else ''}"
    else:
        expected = repro.__version__
    assert results.code_version() == expected

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(results.subprocess, "run", no_git)
    assert results.code_version() == repro.__version__


def test_package_versions_names_python_and_each_installed_package_only():
    import platform
    from importlib import metadata

    from repro.results import package_versions

    assert package_versions(["numpy", "surely-not-installed-pkg"]) == {
        "python": platform.python_version(), "numpy": metadata.version("numpy")}
    default = package_versions()
    assert default["torch"] == metadata.version("torch")
    assert default["snakemake"] == metadata.version("snakemake")
    assert set(default) <= {"python", "torch", "torchvision", "numpy", "scikit-learn",
                            "snakemake", "tensorflow-datasets", "detectron2"}


def test_hardware_info_describes_this_machine():
    import platform

    import torch

    from repro.results import hardware_info

    info = hardware_info()
    assert info["platform"] == platform.platform()
    assert info["cpu"] == (platform.processor() or platform.machine())
    assert info["cpu_count"] == os.cpu_count()
    cuda = torch.cuda.is_available()
    assert info["device"] == ("cuda" if cuda else "cpu")
    assert info["gpus"] == ([torch.cuda.get_device_name(i)
                             for i in range(torch.cuda.device_count())] if cuda else [])


def test_peak_memory_is_this_process_maximum_resident_size_in_mib():
    import resource

    from repro.results import peak_memory_mb

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    value = peak_memory_mb()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert before - 0.05 <= value <= after + 0.05
    assert value == round(value, 1) and value > 10  # a Python with torch loaded


@pytest.mark.parametrize("change,message", [
    ({"drop": "scale"}, "result record lacks ['scale']"),
    ({"drop": "stage"}, "result record lacks ['stage']"),
    ({"metrics": [1.0]}, "'metrics' must be a mapping of name -> value"),
    ({"metrics": {"top1": True, "top5": 1.0}},
     "metrics must be numbers, got {'top1': True}; delete the record and run its job again"),
])
def test_an_invalid_record_is_refused_naming_the_file_and_nothing_is_written(tmp_path, change,
                                                                            message):
    record = _record()
    if "drop" in change:
        record.pop(change["drop"])
    else:
        record.update(change)
    path = tmp_path / "r" / "result.json"
    with pytest.raises(ValueError) as caught:
        write_record(path, record)
    assert str(caught.value) == f"{path}: {message}"
    assert not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError) as caught:
        read_record(path)
    assert str(caught.value) == f"{path}: {message}"


def test_integer_metrics_are_numbers_and_a_written_record_reads_back_equal(tmp_path):
    record = _record(metrics={"top1": 90.0})
    record["metrics"] = {"top1": 90}
    path = write_record(tmp_path / "result.json", record)
    assert read_record(path) == json.loads(json.dumps(record))


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_code_version_marks_a_checkout_with_changed_tracked_files_dirty(tmp_path, monkeypatch):
    """The commit comes from the checkout the package lives in (``repro/..``), not from the
    working directory, and only tracked files count as changes."""
    import repro
    from repro import results

    repo = tmp_path / "checkout"
    (repo / "repro").mkdir(parents=True)
    (repo / "setup.txt").write_text("a")
    _git(repo, "init", "-q")
    _git(repo, "add", "setup.txt")
    _git(repo, "commit", "-q", "-m", "one")
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    monkeypatch.setattr(results, "__file__", str(repo / "repro" / "results.py"))
    (repo / "untracked.txt").write_text("new")
    assert results.code_version() == f"{repro.__version__}+git.{sha}"
    (repo / "setup.txt").write_text("b")
    assert results.code_version() == f"{repro.__version__}+git.{sha}.dirty"
    outside = tmp_path / "not-a-checkout"
    (outside / "repro").mkdir(parents=True)
    monkeypatch.setattr(results, "__file__", str(outside / "repro" / "results.py"))
    assert results.code_version() == repro.__version__


def test_peak_memory_reads_bytes_on_macos(monkeypatch):
    """``ru_maxrss`` is KiB on Linux and bytes on macOS."""
    import resource

    from repro import results

    monkeypatch.setattr(results.sys, "platform", "darwin")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    value = results.peak_memory_mb()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    assert before - 0.05 <= value <= after + 0.05
