"""Is it the ring or the queue? Label-level model options and the 2 x 2 ablation's effects."""

import copy
from pathlib import Path

import pytest

from repro.config import load_config, run_spec, validate_config
from repro.report.queue import plot_queue, queue_frame, queue_wide
from repro.report.stats import t_ci95
from repro.results import load_records, make_record, write_record

ROOT = Path(__file__).resolve().parent.parent
RING = {"name": "ring", "w_l": 0.9, "w_u": 0.99, "schedule": "linear"}
UNIFORM = {"name": "uniform"}
# seed -> top-1 per arm; the ring adds 0.5-1.5 at queue 256 and ~0 at 1024, the queue adds ~2
ARMS = {("uniform", 256): (90.0, 91.0, 92.5), ("ring", 256): (91.0, 91.5, 94.0),
        ("uniform", 1024): (92.0, 93.5, 94.0), ("ring", 1024): (92.5, 93.0, 94.5)}


def _config(params, label, queue, seed, epochs=40):
    return {"pretrain": {"model": "moco", "model_options": {"queue_size": queue,
                                                            "key_momentum": 0.99},
                         "sampler": params, "sampler_label": label, "dataset": "digits",
                         "seed": seed, "scale": "default", "pretrain": {"epochs": epochs}},
            "linear_eval": {"epochs": 30}}


def _write(root, params, label, queue, seed, value, epochs=40):
    record = make_record(stage="linear_eval", model="moco", sampler=label, dataset="digits",
                         eval_dataset="digits", seed=seed, metrics={"top1": value},
                         scale="default", config=_config(params, label, queue, seed, epochs),
                         wall_time_s=1.0, sampler_params=params)
    write_record(root / "linear_eval" / "digits" / f"moco-{label}-{epochs}" / f"seed{seed}" /
                 "result.json", record)


@pytest.fixture()
def records(tmp_path):
    for (kind, queue), values in ARMS.items():
        label = kind if queue == 256 else f"{kind}_q{queue}"
        for seed, value in enumerate(values):
            _write(tmp_path, RING if kind == "ring" else UNIFORM, label, queue, seed, value)
    return load_records(tmp_path)


def _effect(tidy, comparison_start):
    rows = tidy[tidy["comparison"].str.startswith(comparison_start)]
    assert len(rows) == 1, list(tidy["comparison"])
    return rows.iloc[0]


def _diffs(a, b):
    return [y - x for x, y in zip(ARMS[a], ARMS[b])]


def test_each_factor_is_a_paired_by_seed_difference_with_its_t_interval(records):
    tidy = queue_frame(records)
    expected = {
        "ring [0.9, 0.99] − uniform, queue 256":
            _diffs(("uniform", 256), ("ring", 256)),
        "ring [0.9, 0.99] − uniform, queue 1024":
            _diffs(("uniform", 1024), ("ring", 1024)),
        "queue 1024 − 256, uniform": _diffs(("uniform", 256), ("uniform", 1024)),
        "queue 1024 − 256, ring": _diffs(("ring", 256), ("ring", 1024)),
        # the released configs' comparison: both factors at once
        "ring [0.9, 0.99] at queue 1024 − uniform at 256 (both at once":
            _diffs(("uniform", 256), ("ring", 1024)),
    }
    for start, diffs in expected.items():
        row = _effect(tidy, start)
        mean, half, n = t_ci95(diffs)
        assert (row["n"], row["mean"], row["ci95"]) == (n, pytest.approx(mean),
                                                        pytest.approx(half))
    # the queue's effect on NCE excludes 0 here; the ring's at the large queue does not
    assert _effect(tidy, "queue 1024 − 256, uniform")["verdict"] == "above 0"
    assert _effect(tidy, "ring [0.9, 0.99] − uniform, queue 1024")["verdict"] == "includes 0"


def test_cells_are_the_mean_and_t_interval_of_each_method_at_each_queue(records):
    cells = queue_frame(records).query("kind == 'cell'")
    assert len(cells) == 4
    ring_large = cells[(cells["method"] == "InfoNCE, ring [0.9, 0.99]")
                       & (cells["queue_size"] == 1024)].iloc[0]
    mean, half, _ = t_ci95(ARMS[("ring", 1024)])
    assert ring_large["mean"] == pytest.approx(mean) and ring_large["ci95"] == pytest.approx(half)
    wide = queue_wide(queue_frame(records))
    assert wide.iloc[0]["what"] == "uniform, queue 256"  # the baseline first


def test_runs_that_differ_in_more_than_sampler_and_queue_are_never_compared(tmp_path):
    for seed in range(2):  # uniform at 256 and ring at 1024, but the ring trained longer
        _write(tmp_path, UNIFORM, "uniform", 256, seed, 90.0 + seed)
        _write(tmp_path, RING, "ring_q1024", 1024, seed, 95.0 + seed, epochs=80)
    assert queue_frame(load_records(tmp_path)).empty
    assert "No runs that differ only" in plot_queue(load_records(tmp_path)).axes[0].texts[0].get_text()


def test_a_labels_model_options_override_the_models_for_its_runs_only():
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["samplers"]["ring_q1024"] = {**config["samplers"]["ring"], "models": ["moco"],
                                        "model_options": {"queue_size": 1024}}
    validate_config(config)
    big = run_spec(config, "moco", "ring_q1024", "digits", 0)
    assert big["model_options"] == {"queue_size": 1024, "key_momentum": 0.99}
    assert "model_options" not in big["sampler"]  # not a sampler option, not in records' params
    plain = run_spec(config, "moco", "ring", "digits", 0)
    assert plain["model_options"]["queue_size"] == 256
    assert {k: v for k, v in big.items() if k not in ("model_options", "sampler_label")} == {
        k: v for k, v in plain.items() if k not in ("model_options", "sampler_label")}


def test_a_queue_size_for_a_model_without_a_queue_is_refused_naming_the_label():
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["samplers"]["uniform_q1024"] = {"name": "uniform",
                                           "model_options": {"queue_size": 1024}}
    with pytest.raises(ValueError, match=r"models\.ir x samplers\.uniform_q1024: model_options"
                                         r".*\['queue_size'\] do not apply to ir"):
        validate_config(config)


@pytest.mark.slow
def test_the_queue_ablation_config_adds_only_the_large_queue_runs_and_its_report(tmp_path):
    import re
    import subprocess
    import sys

    snakemake = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run([str(snakemake), "-n", "--configfile",
                           "config/queue_ablation.yaml", "--config",
                           f"results_dir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    # MoCo x (uniform, ring, and both at queue 1024) x 2 datasets x 3 seeds
    assert counts["pretrain"] == "24" and counts["queue_ablation"] == "1"
    assert "moco-ring_q1024/seed2" in proc.stdout
    default = subprocess.run([str(snakemake), "-n", "--config", f"results_dir={tmp_path}"],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    assert not re.search(r"^queue_ablation\s+\d+$", default.stdout, flags=re.M)
    assert re.search(r"^pretrain\s+42$", default.stdout, flags=re.M)


@pytest.mark.slow
def test_the_paper_queue_extension_adds_both_samplers_at_the_released_baseline_queue(tmp_path):
    import re
    import subprocess
    import sys

    snakemake = Path(sys.executable).parent / "snakemake"

    def plan(*configs):
        proc = subprocess.run([str(snakemake), "-n", "-p", "--configfile", *configs,
                               "--config", f"results_dir={tmp_path}"], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        return proc.stdout, dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))

    _, paper = plan("config/paper.yaml")
    out, both = plan("config/paper.yaml", "config/paper_queue.yaml")
    # MoCo x 2 labels x 4 datasets x 3 seeds, the 65,536-key runs of paper.yaml reused
    assert int(both["pretrain"]) - int(paper["pretrain"]) == 24
    assert "queue_ablation" not in paper and both["queue_ablation"] == "1"
    assert '"queue_size": 4096' in out and "imagenet/moco-ring_q4096/seed0" in out


def test_the_released_pairing_alone_gives_its_cells_and_only_its_comparison(tmp_path):
    # config/released*.yaml: the uniform label at the small queue, the ring at the large one
    for seed, (low, high) in enumerate([(90.0, 92.0), (91.0, 91.5)]):
        _write(tmp_path, UNIFORM, "uniform", 256, seed, low)
        _write(tmp_path, RING, "ring", 1024, seed, high)
    tidy = queue_frame(load_records(tmp_path))
    assert list(tidy["kind"]) == ["cell", "cell", "released"]
    mean, half, _ = t_ci95([2.0, 0.5])
    assert tidy.iloc[2]["mean"] == pytest.approx(mean)
