"""The false-negatives table and figure (repro.report.false_negatives) from records."""

from pathlib import Path

import pandas as pd
import pytest

from repro.false_negatives import SameClassCounts
from repro.report import make_figures, make_tables
from repro.report.false_negatives import (PROBES, false_negatives_frame, false_negatives_wide,
                                          plot_false_negatives, same_class_records)
from repro.report.stats import t_ci95
from repro.results import load_records, make_record, write_record

EDGES = (0.0, 0.5, 0.9, 0.99, 1.0)
TOTAL = (500, 400, 90, 10)  # one anchor's bands over a pool of 1,000, times 1 anchor


def _counts(same):
    return SameClassCounts(EDGES, tuple(same), TOTAL, 1).to_dict()


# (model, method) -> per seed, same-class counts per band
COUNTS = {
    ("simclr", "uniform"): [(10, 40, 45, 9), (12, 38, 40, 8), (8, 42, 50, 10)],
    ("simclr", "ring"): [(20, 40, 30, 5), (18, 42, 27, 6), (22, 38, 33, 4)],
    ("simclr", "untrained"): [(40, 40, 12, 2), (41, 39, 11, 1), (39, 41, 13, 3)],
}


def _write(root, model, method, seed, same_class, dataset="digits", eval_dataset="digits",
           epochs=None):
    extra = {"train_size": 1001} | ({"same_class": same_class} if same_class else {})
    pretrain = {"seed": seed} | ({"epochs": epochs} if epochs else {})
    record = make_record(stage="linear_eval", model=model, sampler=method, dataset=dataset,
                         eval_dataset=eval_dataset, seed=seed,
                         metrics={"top1": 90.0, "train_top1": 95.0}, scale="default",
                         config={"pretrain": pretrain}, wall_time_s=1.0, extra=extra)
    folder = f"{model}-{method}-{eval_dataset}" + (f"-e{epochs}" if epochs else "")
    write_record(root / "linear_eval" / dataset / folder / f"seed{seed}" / "result.json",
                 record)


@pytest.fixture()
def results(tmp_path):
    for (model, method), per_seed in COUNTS.items():
        for seed, same in enumerate(per_seed):
            _write(tmp_path, model, method, seed, _counts(same))
    # left out: a record without counts (an older version) and one on other data
    _write(tmp_path, "ir", "uniform", 0, None)
    _write(tmp_path, "simclr", "uniform", 0, _counts((0, 0, 90, 10)), eval_dataset="shapes")
    return tmp_path


def test_each_probe_is_its_bands_pooled_share_summarised_over_seeds(results):
    tidy = false_negatives_frame(load_records(results))
    assert set(tidy["method"]) == {"uniform", "ring", "untrained"}
    assert list(tidy["method"].drop_duplicates()) == ["untrained", "uniform", "ring"]
    for (model, method), per_seed in COUNTS.items():
        ring = [100.0 * s[2] / 90 for s in per_seed]  # [0.9, 0.99] is the third band
        whole = [100.0 * sum(s) / 1000 for s in per_seed]
        row = tidy[(tidy["method"] == method) & (tidy["probe"] == "ring [0.9, 0.99]")].iloc[0]
        mean, ci, n = t_ci95(ring)
        assert (row["n"], row["seeds"]) == (3, "0 1 2")
        assert row["mean"] == pytest.approx(mean) and row["ci95"] == pytest.approx(ci)
        assert row["ratio"] == pytest.approx(mean / t_ci95(whole)[0])
        whole_row = tidy[(tidy["method"] == method)
                         & (tidy["probe"] == "whole pool (uniform)")].iloc[0]
        assert whole_row["mean"] == pytest.approx(t_ci95(whole)[0])
        assert pd.isna(whole_row["ratio"])  # no ratio of the pool to itself
        top = tidy[(tidy["method"] == method) & (tidy["probe"] == "top 1% [0.99, 1]")].iloc[0]
        assert top["mean"] == pytest.approx(t_ci95([10.0 * s[3] for s in per_seed])[0])


def test_two_experiments_sharing_a_sampler_label_are_never_pooled(tmp_path):
    """A results folder holding one label's records of two configs (here 10 and 20 epochs)
    gives a row per experiment, each summarised over its own seeds, as the tables do."""
    shares = {10: [(0, 0, 9, 0), (0, 0, 18, 0)], 20: [(0, 0, 45, 0), (0, 0, 54, 0)]}
    for epochs, per_seed in shares.items():
        for seed, same in enumerate(per_seed):
            _write(tmp_path, "simclr", "ring", seed, _counts(same), epochs=epochs)
    tidy = false_negatives_frame(load_records(tmp_path))
    rows = tidy[tidy["probe"] == "ring [0.9, 0.99]"]
    assert len(rows) == 2 and all(m.startswith("ring (config ") for m in rows["method"])
    assert sorted(rows["mean"]) == pytest.approx([15.0, 55.0])  # 10, 20 and 50, 60 (% of 90)
    assert list(rows["n"]) == [2, 2]
    assert len(same_class_records(load_records(tmp_path))["method"].unique()) == 2


def test_the_wide_table_has_a_row_per_method_and_a_column_per_probe(results):
    wide = false_negatives_wide(false_negatives_frame(load_records(results)))
    assert list(wide.columns) == ["scale", "pretrained on", "model", "method", *PROBES]
    ring = wide[wide["method"] == "ring"].iloc[0]
    # seeds' ring shares 33.3, 30.0, 36.7: mean 33.3; whole pool 9.5, 9.3, 9.7 (mean 9.5)
    assert ring["ring [0.9, 0.99]"].startswith("33.3 ± ")
    assert ring["ring [0.9, 0.99]"].endswith("(x3.5)")


def test_tables_and_figure_are_written_and_an_empty_set_says_what_to_run(results, tmp_path):
    paths = make_tables(results, tmp_path / "tables", only=["false_negatives"])
    assert {Path(p).suffix for p in paths} == {".md", ".tex", ".csv"}
    text = (tmp_path / "tables" / "false_negatives.md").read_text()
    assert "ring [0.9, 0.99]" in text and "untrained" in text
    figures = make_figures(results, tmp_path / "figures", only=["false_negatives"])
    assert sorted(p.suffix for p in figures) == [".pdf", ".png"]
    records = load_records(results)
    shown = same_class_records(records)
    assert set(zip(shown["method"], shown["seed"])) == {(m, s) for (_, m) in COUNTS
                                                        for s in range(3)}
    assert len(shown) == 9 * len(TOTAL)
    fig = plot_false_negatives(records)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0-0.5", "0.5-0.9", "0.9-0.99",
                                                          "0.99-1"]
    empty = tmp_path / "empty"
    _write(empty, "ir", "uniform", 0, None)
    make_tables(empty, tmp_path / "t2", only=["false_negatives"])
    assert "--forcerun linear_eval" in (tmp_path / "t2" / "false_negatives.md").read_text()


@pytest.mark.slow
def test_the_table_and_figure_are_made_without_importing_torch(results, tmp_path):
    """The report job reads counts: importing torch would add seconds to it for nothing."""
    import subprocess
    import sys

    code = ("import sys; from repro.report import make_figures, make_tables; "
            f"make_tables({str(results)!r}, {str(tmp_path / 't')!r}, only=['false_negatives']); "
            f"make_figures({str(results)!r}, {str(tmp_path / 'f')!r}, only=['false_negatives']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    assert (tmp_path / "t" / "false_negatives.md").exists()
