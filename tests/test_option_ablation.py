"""Model-option ablations (repro/report/option_ablation.py): label-level model options, the
queue's 2 x 2 (is it the ring or the queue?), the bank's momentum crossed with the sampler, and
the registry the tables, figures and workflow rules follow."""

import ast
import copy
import re
from pathlib import Path

import pytest

from repro.config import load_config, run_spec, validate_config
from repro.report import TABLE_NAMES, make_tables
from repro.report.figures import FIGURES
from repro.report.option_ablation import (OPTION_ABLATIONS, option_frame, option_notes,
                                          option_value, option_wide, plot_option_ablation)
from repro.report.stats import t_ci95
from repro.results import load_records, make_record, write_record

ROOT = Path(__file__).resolve().parent.parent
QUEUE = OPTION_ABLATIONS["queue"]
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


def _effect(tidy, comparison):
    """The one row named ``comparison``, or else the one whose name starts with it."""
    rows = tidy[tidy["comparison"] == comparison]
    if rows.empty:
        rows = tidy[tidy["comparison"].str.startswith(comparison)]
    assert len(rows) == 1, list(tidy["comparison"])
    return rows.iloc[0]


def _diffs(a, b, arms=ARMS):
    return [y - x for x, y in zip(arms[a], arms[b])]


def test_each_factor_is_a_paired_by_seed_difference_with_its_t_interval(records):
    tidy = option_frame(records, QUEUE)
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
    cells = option_frame(records, QUEUE).query("kind == 'cell'")
    assert len(cells) == 4
    ring_large = cells[(cells["method"] == "InfoNCE, ring [0.9, 0.99]")
                       & (cells["level"] == 1024)].iloc[0]
    mean, half, _ = t_ci95(ARMS[("ring", 1024)])
    assert ring_large["mean"] == pytest.approx(mean) and ring_large["ci95"] == pytest.approx(half)
    wide = option_wide(option_frame(records, QUEUE))
    assert wide.iloc[0]["what"] == "uniform, queue 256"  # the baseline first


def test_runs_that_differ_in_more_than_sampler_and_queue_are_never_compared(tmp_path):
    for seed in range(2):  # uniform at 256 and ring at 1024, but the ring trained longer
        _write(tmp_path, UNIFORM, "uniform", 256, seed, 90.0 + seed)
        _write(tmp_path, RING, "ring_q1024", 1024, seed, 95.0 + seed, epochs=80)
    assert option_frame(load_records(tmp_path), QUEUE).empty
    figure = plot_option_ablation(load_records(tmp_path), QUEUE)
    assert "No runs that differ only" in figure.axes[0].texts[0].get_text()


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
    tidy = option_frame(load_records(tmp_path), QUEUE)
    assert list(tidy["kind"]) == ["cell", "cell", "both"]
    mean, half, _ = t_ci95([2.0, 0.5])
    assert tidy.iloc[2]["mean"] == pytest.approx(mean)


# ---- the bank's momentum crossed with the sampler ------------------------------------------

BANK = OPTION_ABLATIONS["bank_momentum"]
BANK_METHODS = {"uniform": UNIFORM, "ring": RING,
                "ring_const": {**RING, "schedule": "constant"}}
# (sampler, momentum) -> top-1 per seed 0-2: at 0 the fixed ring drops ~6, NCE ~1
BANK_ARMS = {("uniform", 0.9): (95.0, 96.0, 94.0), ("ring", 0.9): (95.5, 96.5, 95.0),
             ("ring_const", 0.9): (96.0, 95.5, 96.5), ("uniform", 0.0): (94.0, 95.5, 92.5),
             ("ring", 0.0): (93.0, 93.5, 92.0), ("ring_const", 0.0): (90.0, 91.0, 88.5)}


def _write_bank(root, model, label, options, seed, value, lr=0.03):
    params = BANK_METHODS[label.removesuffix("_bm0")]
    config = {"pretrain": {"model": model, "model_options": options, "sampler": params,
                           "sampler_label": label, "dataset": "digits", "seed": seed,
                           "scale": "study", "pretrain": {"epochs": 80, "lr": lr}},
              "linear_eval": {"epochs": 30}}
    record = make_record(stage="linear_eval", model=model, sampler=label, dataset="digits",
                         eval_dataset="digits", seed=seed, metrics={"top1": value},
                         scale="study", config=config, wall_time_s=1.0, sampler_params=params)
    write_record(root / "linear_eval" / "digits" / f"{model}-{label}-{lr}" / f"seed{seed}" /
                 "result.json", record)


@pytest.fixture()
def bank_records(tmp_path):
    for (label, momentum), values in BANK_ARMS.items():
        for seed, value in enumerate(values):
            _write_bank(tmp_path, "ir", label if momentum else f"{label}_bm0",
                        {"num_negatives": 256, "bank_momentum": momentum}, seed, value)
    return load_records(tmp_path)


def test_the_momentums_effect_and_the_rings_at_each_momentum_are_paired_by_seed(bank_records):
    tidy = option_frame(bank_records, BANK)
    expected = {
        "bank momentum 0.9 − 0, uniform": _diffs(("uniform", 0.0), ("uniform", 0.9), BANK_ARMS),
        "bank momentum 0.9 − 0, ring [0.9, 0.99], constant":
            _diffs(("ring_const", 0.0), ("ring_const", 0.9), BANK_ARMS),
        "ring [0.9, 0.99], constant − uniform, bank momentum 0":
            _diffs(("uniform", 0.0), ("ring_const", 0.0), BANK_ARMS),
        "ring [0.9, 0.99] − uniform, bank momentum 0.9":
            _diffs(("uniform", 0.9), ("ring", 0.9), BANK_ARMS),
    }
    for comparison, diffs in expected.items():
        row = _effect(tidy, comparison)
        mean, half, n = t_ci95(diffs)
        assert (row["n"], row["mean"], row["ci95"]) == (n, pytest.approx(mean),
                                                        pytest.approx(half)), comparison
    fixed = "ring [0.9, 0.99], constant − uniform, bank momentum"
    assert _effect(tidy, f"{fixed} 0")["verdict"] == "below 0"
    assert _effect(tidy, f"{fixed} 0.9")["verdict"] == "includes 0"
    # 3 methods x 2 momenta cells; 2 rings x 2 momenta sampler effects; 3 momentum effects;
    # no both-at-once row: that pairing is the queue's (the released MoCo configs)
    assert tidy["kind"].value_counts().to_dict() == {"cell": 6, "sampler": 4, "option": 3}


def test_cells_list_the_baseline_first_and_name_a_zero_momentum_without_decimals(bank_records):
    wide = option_wide(option_frame(bank_records, BANK))
    assert list(wide["what"][:2]) == ["uniform, bank momentum 0", "uniform, bank momentum 0.9"]
    mean, half, n = t_ci95(BANK_ARMS[("ring_const", 0.0)])
    cell = wide[wide["what"] == "ring [0.9, 0.99], constant, bank momentum 0"].iloc[0]
    assert cell["top-1 / Δ"] == f"{mean:.2f} ± {half:.2f} (n={n})"


def test_runs_without_the_option_or_in_another_setup_are_left_out(bank_records, tmp_path):
    for seed in range(3):  # MoCo has no bank; IR at another lr has one momentum only
        _write_bank(tmp_path, "moco", "uniform", {"queue_size": 256}, seed, 90.0)
        _write_bank(tmp_path, "ir", "uniform_bm0", {"bank_momentum": 0.0}, seed, 50.0, lr=0.3)
    tidy = option_frame(load_records(tmp_path), BANK)
    assert set(tidy["model"]) == {"ir"} and 50.0 not in set(tidy["mean"])
    assert tidy["kind"].value_counts()["cell"] == 6
    assert option_value({"pretrain": {"model_options": {"bank_momentum": True}}},
                        "bank_momentum") is None  # a flag is not a level


def test_make_tables_writes_the_bank_momentum_table_or_says_what_to_run(bank_records, tmp_path):
    out = tmp_path / "tables"
    paths = make_tables(tmp_path, out, only=["bank_momentum"])
    assert sorted(p.name for p in paths) == [f"bank_momentum_ablation.{e}"
                                             for e in ("csv", "md", "tex")]
    text = (out / "bank_momentum_ablation.md").read_text()
    assert "Is it the bank's momentum?" in text and "bank momentum 0.9 − 0, uniform" in text
    empty = option_notes(option_frame(bank_records.iloc[0:0], BANK), BANK)
    assert "config/bank_momentum.yaml" in empty[0] and "bank_momentum: ..." in empty[0]


def test_every_registered_ablation_has_a_table_a_figure_a_caption_and_a_workflow_rule():
    source = (ROOT / "rules" / "report.smk").read_text()
    declared = ast.literal_eval(re.search(r"^_OPTION_ABLATIONS = (\{.*?^\})", source,
                                          flags=re.M | re.S).group(1))
    assert declared == {a.stem: (a.name, a.option) for a in OPTION_ABLATIONS.values()}
    for name, ablation in OPTION_ABLATIONS.items():
        assert name == ablation.name and name in TABLE_NAMES and ablation.stem in FIGURES
        assert (ROOT / "report" / f"{ablation.stem}.rst").is_file()
