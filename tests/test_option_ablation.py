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


def _config(params, label, queue, seed, epochs=40, dataset="digits", key_momentum=0.99):
    return {"pretrain": {"model": "moco", "model_options": {"queue_size": queue,
                                                            "key_momentum": key_momentum},
                         "sampler": params, "sampler_label": label, "dataset": dataset,
                         "seed": seed, "scale": "default", "pretrain": {"epochs": epochs}},
            "linear_eval": {"epochs": 30}}


def _write(root, params, label, queue, seed, value, epochs=40, dataset="digits",
           key_momentum=0.99):
    # top-5 beside top-1, as linear evaluation writes both: only top-1 enters the grid
    record = make_record(stage="linear_eval", model="moco", sampler=label, dataset=dataset,
                         eval_dataset=dataset, seed=seed,
                         metrics={"top1": value, "top5": value - 20.0}, scale="default",
                         config=_config(params, label, queue, seed, epochs, dataset,
                                        key_momentum),
                         wall_time_s=1.0, sampler_params=params)
    write_record(root / "linear_eval" / dataset / f"moco-{label}-{epochs}-{key_momentum}" /
                 f"seed{seed}" / "result.json", record)


def _write_arms(root, dataset="digits", shift=0.0):
    """The ARMS grid as records (uniform and ring at queues 256 and 1024, seeds 0-2), each
    top-1 moved by ``shift``."""
    for (kind, queue), values in ARMS.items():
        label = kind if queue == 256 else f"{kind}_q{queue}"
        for seed, value in enumerate(values):
            _write(root, RING if kind == "ring" else UNIFORM, label, queue, seed,
                   value + shift, dataset=dataset)


@pytest.fixture()
def records(tmp_path):
    _write_arms(tmp_path)
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


# ---- the grid's edges, the table's text and the figure's data ------------------------------

TIDY_COLUMNS = ["scale", "dataset", "model", "kind", "comparison", "method", "level", "n",
                "mean", "ci95", "low", "high", "seeds", "verdict"]


def test_an_effect_reads_signed_mean_interval_and_n_beside_its_direction(records):
    tidy = option_frame(records, QUEUE)
    diffs = _diffs(("uniform", 256), ("uniform", 1024))  # 2.0, 2.5, 1.5: above 0
    mean, half, _ = t_ci95(diffs)
    effect = _effect(tidy, "queue 1024 − 256, uniform")
    assert (effect["low"], effect["high"]) == (pytest.approx(mean - half),
                                               pytest.approx(mean + half))
    assert effect["seeds"] == "0 1 2" and effect["method"] == "InfoNCE, uniform"
    wide = option_wide(tidy, digits=1)
    assert list(wide.columns) == ["scale", "pretrained on", "model", "what", "top-1 / Δ",
                                  "Δ's 95% CI"]
    row = wide[wide["what"] == "queue 1024 − 256, uniform"].iloc[0]
    assert row["top-1 / Δ"] == f"{mean:+.1f} [{mean - half:+.1f}, {mean + half:+.1f}] (n=3)"
    assert (row["scale"], row["pretrained on"], row["model"], row["Δ's 95% CI"]) == (
        "default", "digits", "MoCo", "above 0")
    cell_mean, cell_half, _ = t_ci95(ARMS[("uniform", 256)])
    cell = wide.iloc[0]  # the baseline at the smallest queue; a cell has no direction
    assert (cell["top-1 / Δ"], cell["Δ's 95% CI"]) == (
        f"{cell_mean:.1f} ± {cell_half:.1f} (n=3)", "")
    cells = tidy[tidy["kind"] == "cell"]
    assert set(cells["seeds"]) == {"0 1 2"}
    sampler = tidy[tidy["kind"] == "sampler"]
    assert list(sampler["level"]) == [256, 1024]  # a sampler effect names its queue
    # a model added without a display label keeps its registry name
    assert set(option_wide(tidy.assign(model="mymodel"))["model"]) == {"mymodel"}


def test_arms_sharing_one_seed_or_none_say_so_instead_of_an_interval(tmp_path):
    for seed, value in ((0, 90.0), (1, 91.0)):
        _write(tmp_path, UNIFORM, "uniform", 256, seed, value)
    _write(tmp_path, UNIFORM, "uniform_q1024", 1024, 0, 93.0)
    _write(tmp_path, RING, "ring", 256, 5, 92.0)  # a seed the baseline never ran
    tidy = option_frame(load_records(tmp_path), QUEUE)
    one = _effect(tidy, "queue 1024 − 256, uniform")
    assert (one["n"], one["mean"], one["verdict"]) == (1, pytest.approx(3.0),
                                                       "n=1: no interval")
    none = _effect(tidy, "ring [0.9, 0.99] − uniform, queue 256")
    assert none["n"] == 0 and none["verdict"] == "n=0: no interval"
    # the ring has no queue-1024 cell: no comparison that needs it
    assert not tidy["comparison"].str.contains("1024.*ring|ring.*1024").any()
    wide = option_wide(tidy).set_index("what")
    assert wide.loc["queue 1024 − 256, uniform", "top-1 / Δ"] == "+3.00 (n=1)"
    assert wide.loc["ring [0.9, 0.99] − uniform, queue 256"].to_dict() == {
        "scale": "default", "pretrained on": "digits", "model": "MoCo",
        "top-1 / Δ": "no paired seeds", "Δ's 95% CI": "n=0: no interval"}
    assert wide.loc["uniform, queue 1024", "top-1 / Δ"] == "93.00 (n=1)"
    assert _effect(tidy, "uniform, queue 256")["seeds"] == "0 1"


def test_a_uniform_sampler_with_another_estimator_is_a_treatment_named_with_its_estimator(
        tmp_path):
    debiased = {"name": "uniform", "estimator": {"name": "debiased", "tau_plus": 0.1}}
    for seed in range(2):
        for queue, suffix in ((256, ""), (1024, "_q1024")):
            _write(tmp_path, UNIFORM, f"uniform{suffix}", queue, seed, 90.0 + seed)
            _write(tmp_path, debiased, f"dcl{suffix}", queue, seed, 91.0 + 2 * seed)
    tidy = option_frame(load_records(tmp_path), QUEUE)
    assert list(tidy.loc[tidy["kind"] == "cell", "comparison"]) == [
        "uniform, queue 256", "uniform, queue 1024",
        "DCL (tau_plus 0.1), uniform, queue 256", "DCL (tau_plus 0.1), uniform, queue 1024"]
    effect = _effect(tidy, "DCL (tau_plus 0.1), uniform − uniform, queue 256")
    assert effect["mean"] == pytest.approx(1.5)


def test_with_three_values_each_is_compared_to_the_smallest_and_both_at_once_to_the_largest(
        tmp_path):
    big = 2 ** 20  # named in full, not as 1.04858e+06
    value = {("uniform", 256): 90.0, ("uniform", 512): 91.0, ("uniform", big): 93.0,
             ("ring", 256): 92.0, ("ring", 512): 92.5, ("ring", big): 97.0}
    for (kind, queue), top1 in value.items():
        for seed in range(2):
            _write(tmp_path, RING if kind == "ring" else UNIFORM, f"{kind}_q{queue}", queue,
                   seed, top1 + seed * (1 + (kind == "ring")))
    tidy = option_frame(load_records(tmp_path), QUEUE)
    option = tidy[tidy["kind"] == "option"]
    assert list(option["comparison"]) == [
        "queue 512 − 256, uniform", "queue 1048576 − 256, uniform",
        "queue 512 − 256, ring [0.9, 0.99]", "queue 1048576 − 256, ring [0.9, 0.99]"]
    assert list(option["mean"]) == pytest.approx([1.0, 3.0, 0.5, 5.0])
    both = _effect(tidy, "ring [0.9, 0.99] at queue 1048576 − uniform at 256 (both at once")
    assert both["mean"] == pytest.approx(98.0 - 90.5)  # seed means: 97, 99 and 90, 91
    assert list(tidy.loc[tidy["kind"] == "sampler", "mean"]) == pytest.approx([2.5, 2.0, 4.5])


def test_runs_that_differ_in_another_model_option_are_another_setup(tmp_path):
    for seed in range(2):
        _write(tmp_path, UNIFORM, "uniform", 256, seed, 90.0 + seed)
        _write(tmp_path, RING, "ring_q1024", 1024, seed, 95.0 + seed, key_momentum=0.999)
    assert option_frame(load_records(tmp_path), QUEUE).empty
    for seed in range(2):  # the same ring at the baseline's key momentum is compared
        _write(tmp_path, RING, "ring_q1024", 1024, seed, 93.0 + seed)
    tidy = option_frame(load_records(tmp_path), QUEUE)
    assert list(tidy["kind"]) == ["cell", "cell", "both"]
    assert tidy.iloc[2]["mean"] == pytest.approx(3.0)


def test_records_without_the_option_or_a_finite_top1_give_an_empty_table_with_its_columns(
        records, tmp_path):
    empty = option_frame(records, BANK)  # MoCo's records: no bank momentum
    assert empty.empty and list(empty.columns) == TIDY_COLUMNS
    (ax,) = plot_option_ablation(records, BANK).axes  # says what it asks and what to run
    assert ax.get_title().startswith("Is it the bank's momentum? Top-1 against bank momentum")
    assert "config/bank_momentum.yaml" in ax.texts[0].get_text()
    assert option_frame(records.drop(columns="config"), QUEUE).empty
    assert list(option_wide(empty).columns) == ["scale", "pretrained on", "model", "what",
                                                "top-1 / Δ", "Δ's 95% CI"]
    # a diverged run (NaN top-1) is left out, and the runs after it are still read
    _write(tmp_path, UNIFORM, "uniform", 256, 3, float("nan"))
    _write(tmp_path, RING, "ring", 256, 3, float("nan"))
    # a run whose config does not state the queue is not a level, even in the same setup
    record = make_record(stage="linear_eval", model="moco", sampler="ring_unstated",
                         dataset="digits", eval_dataset="digits", seed=0,
                         metrics={"top1": 10.0}, scale="default",
                         config=_config(RING, "ring_unstated", 256, 0), wall_time_s=1.0,
                         sampler_params=RING)
    del record["config"]["pretrain"]["model_options"]["queue_size"]
    write_record(tmp_path / "linear_eval" / "digits" / "moco-ring_unstated" / "seed0" /
                 "result.json", record)
    tidy = option_frame(load_records(tmp_path), QUEUE)
    assert list(tidy.loc[tidy["kind"] == "cell", "n"]) == [3, 3, 3, 3]
    assert 10.0 not in set(tidy["mean"])


def test_setups_are_listed_in_order_whatever_the_records_order(records, tmp_path):
    _write_arms(tmp_path, "shapes", -50.0)
    shuffled = load_records(tmp_path).iloc[::-1]
    tidy = option_frame(shuffled, QUEUE)
    assert list(dict.fromkeys(tidy["dataset"])) == ["digits", "shapes"]
    assert set(tidy["scale"]) == {"default"}
    shapes = tidy[(tidy["dataset"] == "shapes") & (tidy["kind"] == "cell")]
    assert shapes.iloc[0]["mean"] == pytest.approx(sum(ARMS[("uniform", 256)]) / 3 - 50.0)


def _errorbars(ax):
    """(x, y, half-widths) per method line, in drawing order."""
    out = []
    for container in ax.containers:
        line, _, (bars,) = container.lines
        x, y = (list(v) for v in line.get_data())
        halves = [(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
        out.append((x, y, halves))
    return out


def test_the_figure_draws_each_cells_mean_interval_and_seeds_per_method(records, tmp_path):
    figure = plot_option_ablation(records, QUEUE)
    (ax,) = [a for a in figure.axes if a.get_legend() is not None]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["uniform",
                                                                   "ring [0.9, 0.99]"]
    (ux, uy, uh), (rx, ry, rh) = _errorbars(ax)
    assert ux == pytest.approx([-0.03, 0.97]) and rx == pytest.approx([0.03, 1.03])
    for (ys, halves), kind in (((uy, uh), "uniform"), ((ry, rh), "ring")):
        for y, half, queue in zip(ys, halves, (256, 1024)):
            mean, ci, _ = t_ci95(ARMS[(kind, queue)])
            assert (y, half) == (pytest.approx(mean), pytest.approx(ci))
    dots = sorted(tuple(map(float, p)) for c in ax.collections if c.get_offsets().shape[1] == 2
                  and len(c.get_offsets()) == 3 for p in c.get_offsets())
    expected = sorted((j + 0.06 * (i - 0.5), v) for i, kind in enumerate(("uniform", "ring"))
                      for j, queue in enumerate((256, 1024)) for v in ARMS[(kind, queue)])
    assert dots == [pytest.approx(p) for p in expected]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["256", "1024"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        QUEUE.axis, "linear-eval top-1 (%)", "MoCo on digits (default)")
    assert figure._suptitle.get_text().replace("\n", " ").startswith(
        "Is it the ring or the queue? Top-1 against queue size (mean, 95% CI")
    # the released pairing: each method drawn only where it ran
    released = tmp_path / "released"
    for seed, (low, high) in enumerate([(90.0, 92.0), (91.0, 91.5)]):
        _write(released, UNIFORM, "uniform", 256, seed, low)
        _write(released, RING, "ring", 1024, seed, high)
    (ax,) = plot_option_ablation(load_records(released), QUEUE).axes[:1]
    (ux, uy, _), (rx, ry, _) = _errorbars(ax)
    assert (ux, uy) == (pytest.approx([-0.03]), pytest.approx([90.5]))
    assert (rx, ry) == (pytest.approx([1.03]), pytest.approx([91.75]))


def test_the_figure_has_a_panel_per_setup_in_order_and_a_footer_of_what_it_draws(records,
                                                                                   tmp_path):
    from repro.report.figures.common import config_footer, run_settings

    _write_arms(tmp_path, "shapes", -50.0)  # the same grid pretrained on shapes
    # runs the figure does not draw: another model, another stage, a dataset without the grid
    extra = (("linear_eval", "ir", "digits", 7), ("pretrain", "moco", "digits", 8),
             ("linear_eval", "moco", "cifar10", 9))
    for stage, model, dataset, seed in extra:
        write_record(tmp_path / stage / dataset / f"{model}-x" / f"seed{seed}" / "result.json",
                     make_record(stage=stage, model=model, sampler="uniform", dataset=dataset,
                                 eval_dataset=dataset, seed=seed, metrics={"top1": 50.0},
                                 scale="default", config={}, wall_time_s=1.0,
                                 sampler_params=UNIFORM))
    loaded = load_records(tmp_path)
    figure = plot_option_ablation(loaded.iloc[::-1], QUEUE)
    assert [a.get_title() for a in figure.axes] == ["MoCo on digits (default)",
                                                    "MoCo on shapes (default)"]
    shown = loaded[(loaded["stage"] == "linear_eval") & (loaded["model"] == "moco")
                   & loaded["dataset"].isin(["digits", "shapes"])]
    footer = figure.texts[-1].get_text()
    assert footer == config_footer(shown.iloc[::-1], run_settings(loaded))
    assert "seeds 0,1,2 (n=3 per run)" in footer
    given = run_settings(loaded).assign(epochs=77)  # settings passed in are the ones shown
    assert "77 epochs" in plot_option_ablation(loaded, QUEUE, given).texts[-1].get_text()
    unlabelled = plot_option_ablation(loaded.assign(model="mymodel"), QUEUE)
    assert unlabelled.axes[0].get_title() == "mymodel on digits (default)"


def test_a_cell_with_one_seed_is_drawn_without_a_bar(tmp_path):
    for seed, value in ((0, 90.0), (1, 91.0)):
        _write(tmp_path, UNIFORM, "uniform", 256, seed, value)
    _write(tmp_path, UNIFORM, "uniform_q1024", 1024, 0, 93.0)
    _write(tmp_path, RING, "ring", 256, 0, 92.0)
    (ax,) = plot_option_ablation(load_records(tmp_path), QUEUE).axes
    (_, uy, uh), (rx, ry, rh) = _errorbars(ax)
    assert uy == pytest.approx([90.5, 93.0]) and uh == pytest.approx([t_ci95([90, 91])[1], 0.0])
    assert (rx, ry, rh) == (pytest.approx([0.03]), pytest.approx([92.0]), pytest.approx([0.0]))
