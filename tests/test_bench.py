"""bench/run.py: the verdict logic, the no-silent-skip rule, the GPU-hours projection and the
peer ratio hold (the quick mode's every row, for every model, is checked on the device check's
own quick bench: tests/test_device_check.py). No timing asserts: speed is judged from the
bench's table, not here."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "run.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _measured(row: dict) -> bool:
    """A ratio row with a positive median inside its IQR, or a positive throughput."""
    if row["ratio"] is not None:
        return (math.isfinite(row["ratio"]) and 0 < row["q1"] <= row["ratio"] <= row["q3"]
                and row["ok"] != "")
    return isinstance(row.get("value"), (int, float)) and row["value"] > 0


def test_verdict_needs_the_whole_iqr_and_flags_impossible_ratios():
    bench = _bench_module()
    assert bench.verdict(0.5, 0.6, 0.7, ("<", 1.0)) == "yes"
    assert bench.verdict(1.1, 1.2, 1.3, ("<=", 1.05)) == "NO"
    assert bench.verdict(1.0, 1.04, 1.2, ("<=", 1.05)).startswith("unclear")
    assert bench.verdict(0.92, 0.95, 0.99, (">=", 0.9)) == "yes"
    assert bench.verdict(0.95, 1.02, 1.1, (">=", 0.9), impossible_above=1.0) == \
        "invalid (noisy machine?)"
    assert bench.verdict(0.95, 0.97, 1.1, (">=", 0.9), impossible_above=1.0).startswith(
        "unclear")
    assert bench.verdict(0.92, 0.95, 0.99, (">=", 0.9), impossible_above=1.0) == "yes"
    assert bench.ratio_stats([2.0, 3.0, 4.0], [1.0, 1.0, 2.0]) == (2.0, 2.0, 2.5)


def test_load_warning_only_when_the_machine_is_busy():
    bench = _bench_module()
    assert bench.load_warning(0.3, 2) is None
    assert "load average 2.50 >= 2" in bench.load_warning(2.5, 2)


def test_a_model_that_fails_to_build_is_an_error_not_a_skipped_row(monkeypatch):
    bench = _bench_module()

    def broken(*args, **kwargs):
        raise ValueError("broken on purpose")

    monkeypatch.setattr(bench, "build_model", broken)
    with pytest.raises(ValueError, match="broken on purpose"):
        bench.bench_models(bench.torch.device("cpu"), True, 1, 0, bench.random.Random(0),
                           ("ir",))


def test_a_bench_stopped_part_way_keeps_the_groups_it_finished(monkeypatch, tmp_path):
    """The JSON and markdown files are rewritten after each benchmark group: when a later
    group fails (or a device lease's limit kills the run), the finished rows stay, marked
    partial; a finished run's files say complete."""
    bench = _bench_module()

    def group(name):
        return lambda *args, **kwargs: [bench._value_row(name, 1.5, "x", "base")]

    def stopped(*args, **kwargs):
        raise RuntimeError("stopped on purpose")

    for fn in ("bench_selection", "bench_dense_vs_gathered", "bench_augment",
               "bench_batch_augment"):
        monkeypatch.setattr(bench, fn, group(fn))
    monkeypatch.setattr(bench, "bench_models", stopped)
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    args = ["--quick", "--device", "cpu", "--threads", "1", "--no-paper-shapes",
            "--json", str(out_json), "--markdown", str(out_md)]
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        bench.main(args)
    partial = json.loads(out_json.read_text())
    assert partial["complete"] is False
    assert [r["benchmark"] for r in partial["rows"]] == [
        "bench_selection", "bench_dense_vs_gathered", "bench_augment", "bench_batch_augment"]
    text = out_md.read_text()
    assert "PARTIAL" in text and "| bench_batch_augment" in text

    monkeypatch.setattr(bench, "bench_models", group("bench_models"))
    assert bench.main(args) == 0
    done = json.loads(out_json.read_text())
    assert done["complete"] is True and len(done["rows"]) == 5
    assert "PARTIAL" not in out_md.read_text() and "| bench_models" in out_md.read_text()


def test_grid_hours_are_seeds_epochs_and_images_over_throughput_summed_over_the_grid():
    bench = _bench_module()
    flat = {(m, smp, side): 1000.0 for m in bench.MODELS for smp in ("uniform", "ring")
            for side in (32, 96)}
    images = 50_000 + 50_000 + 5_000
    assert bench.grid_gpu_hours(flat) == pytest.approx(4 * 2 * 3 * 200 * images / 1000 / 3600)
    slow_stl = {**flat, **{(m, smp, 96): 500.0 for m in bench.MODELS
                           for smp in ("uniform", "ring")}}
    extra = 4 * 2 * 3 * 200 * 5_000 / 1000 / 3600  # STL10 takes twice as long
    assert bench.grid_gpu_hours(slow_stl) == pytest.approx(bench.grid_gpu_hours(flat) + extra)
    small = {(m, smp, side): 1000.0 for m in bench.MODELS for smp in ("uniform", "ring")
             for side in (16, 24)}
    assert bench.grid_gpu_hours(small, sides={32: 16, 96: 24}) == bench.grid_gpu_hours(flat)


def test_serial_throughput_adds_the_per_image_times_of_the_step_and_each_view():
    bench = _bench_module()
    # 1 ms per image for the step, 0.25 ms per view: 1.5 ms per image
    assert bench.serial_images_per_s(1000.0, 4000.0) == pytest.approx(1000 / 1.5)
    assert bench.serial_images_per_s(1000.0, 4000.0, views=1) == pytest.approx(1000 / 1.25)
    assert bench.serial_images_per_s(1000.0, math.inf) == pytest.approx(1000.0)


def test_paper_shapes_are_the_paper_sizes_on_cuda_and_paper_yaml_workers():
    bench = _bench_module()
    s = bench.paper_shapes(bench.torch.device("cuda"), quick=False)
    assert (s["batch"], s["images"], s["backbone"]["width"]) == (256, (32, 96), 1.0)
    assert (s["dataset_size"], s["num_negatives"], s["queue_size"]) == (50_000, 4096, 65_536)
    assert s["workers"] == bench._paper_pretrain()["num_workers"] == 8


def test_peer_ratio_times_our_step_against_lightly_on_the_same_backbone():
    pytest.importorskip("lightly", reason="bench-only extra: pip install -e .[bench]")
    bench = _bench_module()
    bench.torch.set_num_threads(1)
    rows = bench.bench_peers(bench.torch.device("cpu"), True, 2, 1, bench.random.Random(0))
    assert [r["benchmark"].split(":")[0] for r in rows] == ["moco", "simclr"]
    assert all(_measured(r) and "lightly" in r["benchmark"] for r in rows)
