"""The cost table (repro.report.cost): Snakemake's benchmark files joined to the records."""

import math
from pathlib import Path

import pytest
from scipy import stats

from repro.report import make_tables
from repro.report.cost import cost_frame, read_benchmarks
from repro.results import load_records, make_record, write_record

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def _run(results: Path, stage: str, folder: str, *, model="moco", sampler="ring", seed=0,
         dataset="digits", metrics=None, wall=None, rss=None, cpu=None, eval_dataset=None,
         extra=None) -> Path:
    """A record at results/<stage>/<folder>/seed<seed>/result.json and, when ``wall`` is
    given, its benchmark file as Snakemake writes it (results/benchmarks/<stage>/...tsv)."""
    record = results / stage / folder / f"seed{seed}" / "result.json"
    write_record(record, make_record(
        stage=stage, model=model, sampler=sampler, dataset=dataset, seed=seed,
        metrics=metrics or {"loss": 1.0}, scale="default", config={"seed": seed},
        wall_time_s=1.0, sampler_params={"name": sampler}, eval_dataset=eval_dataset,
        extra=extra))
    if wall is not None:
        tsv = results / "benchmarks" / stage / folder / f"seed{seed}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        row = [wall, "0:00:00", rss, 0, 0, 0, 0, 0, 0, cpu]
        tsv.write_text(HEADER + "\n" + "\t".join(str(v) for v in row) + "\n")
    return record


def _grid(results: Path) -> None:
    """MoCo + Ring on digits, three seeds: pretraining and linear-eval jobs with benchmarks."""
    for seed, (wall, rss, top1) in enumerate([(10.0, 300.0, 70.0), (12.0, 320.0, 74.0),
                                              (17.0, 310.0, 75.0)]):
        _run(results, "pretrain", "digits/moco-ring", seed=seed, wall=wall, rss=rss, cpu=2 * wall)
        _run(results, "linear_eval", "digits/moco-ring", seed=seed, metrics={"top1": top1},
             wall=wall / 10, rss=rss / 2, cpu=wall / 5)


def test_cost_rows_are_the_mean_ci_and_peak_of_the_jobs_benchmarks(tmp_path):
    _grid(tmp_path)
    tidy = cost_frame(load_records(tmp_path), read_benchmarks(tmp_path / "benchmarks", tmp_path))
    pre = tidy[tidy["stage"] == "pretrain"].iloc[0]
    walls = [10.0, 12.0, 17.0]
    mean = sum(walls) / 3
    sd = math.sqrt(sum((w - mean) ** 2 for w in walls) / 2)
    assert pre["jobs"] == 3
    assert pre["wall_s"] == pytest.approx(mean)
    assert pre["wall_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * sd / math.sqrt(3))
    assert pre["cpu_s"] == pytest.approx(2 * mean)
    assert pre["peak_rss_mb"] == 320.0  # the largest job's, not the mean
    # pretraining's accuracy is the linear-eval top-1 of the same runs
    assert (pre["metric"], pre["acc_n"]) == ("top1", 3)
    assert pre["acc_mean"] == pytest.approx((70.0 + 74.0 + 75.0) / 3)
    ev = tidy[tidy["stage"] == "linear_eval"].iloc[0]
    assert ev["wall_s"] == pytest.approx(mean / 10) and ev["peak_rss_mb"] == 160.0
    assert list(tidy["stage"]) == ["pretrain", "linear_eval"]  # pipeline order


def test_cost_leaves_out_benchmarks_without_a_shown_record_and_reads_dashes_as_missing(tmp_path):
    _grid(tmp_path)
    orphan = tmp_path / "benchmarks" / "pretrain" / "digits" / "ir-ring" / "seed0.tsv"
    orphan.parent.mkdir(parents=True)
    orphan.write_text(HEADER + "\n99\t0:01:39\t1\t1\t1\t1\t1\t1\t1\t1\n")  # no record of it
    dash = _run(tmp_path, "pretrain", "digits/cmc-ring", model="cmc", wall=5.0, rss="-", cpu="-")
    bench = read_benchmarks(tmp_path / "benchmarks", tmp_path)
    assert len(bench) == 8 and str(dash) in set(bench["path"])
    tidy = cost_frame(load_records(tmp_path), bench)
    assert set(tidy["model"]) == {"moco", "cmc"}  # the orphan benchmark has no row
    cmc = tidy[tidy["model"] == "cmc"].iloc[0]
    assert cmc["wall_s"] == 5.0 and math.isnan(cmc["peak_rss_mb"]) and cmc["acc_n"] == 0


def test_cost_table_is_written_with_a_note_on_what_the_numbers_are(tmp_path):
    _grid(tmp_path)
    paths = make_tables(tmp_path, tmp_path / "tables", only=["cost"])
    md = (tmp_path / "tables" / "cost.md").read_text()
    assert [p.name for p in paths] == ["cost.md", "cost.tex", "cost.csv"]
    assert "13.0 ± " in md  # mean wall time of the pretraining jobs, 10, 12 and 17 s
    assert "top1 73.00 ± " in md and "max_rss" in md
