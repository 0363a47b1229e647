"""Table 4: every sampler label side by side, described from the registries."""

from pathlib import Path

import pandas as pd
import pytest

from repro.report import make_tables
from repro.report.methods import method_description, methods_frame, methods_wide
from repro.report.stats import t_ci95
from repro.results import load_records, make_record, write_record

HCL = {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}
DCL = {"name": "uniform", "estimator": {"name": "debiased", "tau_plus": 0.1}}
RING = {"name": "ring", "w_l": 0.9, "w_u": 0.99, "schedule": "linear"}
TOPK = {"name": "ring", "w_l": 0.9, "w_u": 1.0, "schedule": "linear"}


def _write(root: Path, stage, model, sampler, params, seed, value, *, dataset="digits",
           eval_dataset=None, scale="default", config=None):
    metric = {"linear_eval": "top1", "fewshot": "accuracy"}[stage]
    record = make_record(stage=stage, model=model, sampler=sampler, dataset=dataset, seed=seed,
                         metrics={metric: value}, scale=scale,
                         config={"seed": seed, **(config or {})}, wall_time_s=1.0,
                         sampler_params=params, eval_dataset=eval_dataset)
    folder = f"{model}-{sampler}-{scale}" + "".join(f"-{k}{v}" for k, v in (config or {}).items())
    write_record(root / stage / (eval_dataset or dataset) / folder / f"seed{seed}" /
                 "result.json", record)


@pytest.fixture()
def results(tmp_path):
    root = tmp_path / "results"
    values = {"uniform": (90.0, 92.0, 91.0), "ring": (93.0, 94.0, 95.0),
              "hcl": (96.0, 95.0, 97.0), "untrained": (80.0, 81.0, 82.0)}
    params = {"uniform": {"name": "uniform"}, "ring": RING, "hcl": HCL, "untrained": {}}
    for sampler, seeds in values.items():
        for seed, value in enumerate(seeds):
            _write(root, "linear_eval", "moco", sampler, params[sampler], seed, value)
    _write(root, "fewshot", "moco", "uniform", {"name": "uniform"}, 0, 40.0,
           eval_dataset="shapes")
    return root


def test_methods_are_described_from_the_sampler_and_estimator_registries():
    assert method_description({"name": "uniform"}) == "InfoNCE, uniform"
    assert method_description(RING) == "InfoNCE, ring [0.9, 0.99]"
    assert method_description(TOPK) == "InfoNCE, top-k [0.9, 1]"
    assert method_description({**RING, "schedule": "constant"}) == (
        "InfoNCE, ring [0.9, 0.99], constant")
    assert method_description(HCL) == "HCL (beta 1, tau_plus 0.1), uniform"
    assert method_description(DCL) == "DCL (tau_plus 0.1), uniform"


def test_table4_cell_is_the_t_interval_over_seeds_of_each_method(results):
    tidy = methods_frame(load_records(results))
    hcl = tidy[(tidy["sampler"] == "hcl") & (tidy["stage"] == "linear_eval")].iloc[0]
    mean, half, n = t_ci95([96.0, 95.0, 97.0])
    assert (hcl["n"], hcl["mean"]) == (3, pytest.approx(mean))
    assert hcl["ci95"] == pytest.approx(half)
    assert hcl["method"] == "HCL (beta 1, tau_plus 0.1), uniform"


def test_a_label_that_two_experiments_share_is_two_columns_never_one_pooled_mean(tmp_path):
    """One label ("ring") of two configs in one results folder (the ring [0.9, 0.99] and, in an
    older config, [0.5, 0.99]): two cells, each its own mean and its own description."""
    wide_ring = {**RING, "w_l": 0.5}
    for seed, (a, b) in enumerate([(90.0, 70.0), (92.0, 72.0)]):
        _write(tmp_path, "linear_eval", "moco", "ring", RING, seed, a, config={"epochs": 10})
        _write(tmp_path, "linear_eval", "moco", "ring", wide_ring, seed, b,
               config={"epochs": 20})
    tidy = methods_frame(load_records(tmp_path))
    assert len(tidy) == 2 and all(s.startswith("ring (config ") for s in tidy["sampler"])
    assert sorted(tidy["mean"]) == [71.0, 91.0] and list(tidy["n"]) == [2, 2]
    by_mean = dict(zip(tidy["mean"], tidy["method"]))
    assert by_mean[91.0] == "InfoNCE, ring [0.9, 0.99]"
    assert by_mean[71.0] == "InfoNCE, ring [0.5, 0.99]"


def test_table4_puts_methods_side_by_side_untrained_and_nce_first(results):
    wide = methods_wide(methods_frame(load_records(results)))
    assert list(wide.columns)[5:] == ["untrained", "uniform", "ring", "hcl"]
    row = wide[wide["stage"] == "linear_eval"].iloc[0]
    assert row["model"] == "MoCo" and row["hcl"].startswith("96.0 ± ")
    fewshot = wide[wide["stage"] == "fewshot"].iloc[0]
    assert fewshot["evaluated on"] == "shapes" and fewshot["uniform"] == "40.0 (n=1)"
    assert fewshot["hcl"] == ""  # not run: empty, never a number


def test_table4_files_name_every_method_in_their_notes(results, tmp_path):
    paths = make_tables(results, tmp_path, only=["table4"])
    assert sorted(p.name for p in paths) == ["table4_methods.csv", "table4_methods.md",
                                             "table4_methods.tex"]
    md = (tmp_path / "table4_methods.md").read_text()
    assert "hcl: HCL (beta 1, tau_plus 0.1), uniform" in md
    assert "ring: InfoNCE, ring [0.9, 0.99]" in md
    csv = pd.read_csv(tmp_path / "table4_methods.csv")
    assert set(csv["sampler"]) == {"untrained", "uniform", "ring", "hcl"}


def test_methods_figure_draws_each_methods_mean_and_interval_per_panel(results):
    from repro.report.methods import plot_methods

    fig = plot_methods(load_records(results))
    panels = [ax for ax in fig.axes if ax.get_title()]
    titles = [ax.get_title() for ax in panels]
    assert titles == ["MoCo, digits\nlinear_eval (top1, %)",
                      "MoCo, digits -> shapes\nfewshot (accuracy, %)"]
    linear = panels[0]
    assert [t.get_text() for t in linear.get_xticklabels()] == ["uniform", "ring", "hcl"]
    # the mean of each method is drawn at its x (errorbar markers), untrained as a line
    means = sorted(round(float(line.get_ydata()[0]), 3) for line in linear.lines
                   if line.get_marker() == "o")
    assert means == [91.0, 94.0, 96.0]
    assert any(line.get_linestyle() == ":" and line.get_ydata()[0] == pytest.approx(81.0)
               for line in linear.lines)
