"""Tables and figures from result records (repro.report) and the report rules."""

import math
from pathlib import Path

import pandas as pd
import pytest

from repro.report import make_figures, make_tables
from repro.report.__main__ import main as report_main
from repro.report.figures import (LOSS_CAVEAT, _ring_rows, load_loss_logs,
                                  plot_anneal_schedules, plot_loss_curves, plot_ring_bounds,
                                  ring_bound_panels, sampler_colors, schedule_sweep)
from repro.report.reported import REPORTED_COLUMNS, load_reported
from repro.report.stats import Summary, format_delta, format_summary, summarize, t_ci95
from repro.report.tables import (TABLES, compact_cells, comparison_frame, idle_paper_cells,
                                 render_latex, wide_frame)
from repro.results import load_records, make_record, write_record

ROOT = Path(__file__).resolve().parent.parent
REPORTED = ROOT / "tables" / "reported"


def _write(root, stage, model, sampler, dataset, seed, metrics, *, scale="default",
           eval_dataset=None, ci95=None, params=None, extra=None, config=None):
    where = (extra or {}).get("task") or eval_dataset or dataset  # detection: per task
    folder = root / stage / where / f"{model}-{sampler}-{scale}" / f"seed{seed}"
    if params is not None:
        folder = folder.with_name(folder.name + "-" + "-".join(f"{v}" for v in params.values()))
    record = make_record(stage=stage, model=model, sampler=sampler, dataset=dataset, seed=seed,
                         metrics=metrics, scale=scale, config={"seed": seed, **(config or {})},
                         wall_time_s=1.0,
                         sampler_params=params or {"name": sampler}, eval_dataset=eval_dataset,
                         ci95=ci95, extra=extra)
    write_record(folder / "result.json", record)
    return folder


def _detection(root, task, sampler, metrics, *, data="generated", scale="default", seed=0,
               pretrained_on="shapes"):
    """A detection record as transfer.detection.train.run writes it: the evaluation data in
    ``eval_dataset`` and the task in ``extra.task``."""
    eval_dataset = {"generated": "shapes_coco", "coco": "coco2017_val",
                    "voc": "voc2007_test"}[data]
    extra = {"task": task, "data": data, "backend": "torchvision", "iterations": 20,
             "architecture": "torchvision Mask R-CNN R50"}
    return _write(root, "detection", "moco", sampler, pretrained_on, seed, metrics, scale=scale,
                  eval_dataset=eval_dataset, extra=extra)


# one transcribed paper cell (IR, NCE, CIFAR10 top-1) as a reported CSV row
IR_CIFAR10_PAPER = ["ir", "uniform", "cifar10", "top1", 79.0, "Table 1", "arXiv:2010.02037v1", ""]


def _reported(tmp_path, rows):
    path = tmp_path / "reported.csv"
    frame = pd.DataFrame(rows, columns=list(REPORTED_COLUMNS))
    frame.to_csv(path, index=False)
    return load_reported(path)


# ---- statistics ----------------------------------------------------------------------------


def test_t_ci95_matches_the_student_t_closed_form():
    mean, half, n = t_ci95([1.0, 2.0, 3.0])
    # s = 1, t_{0.975, 2} = 4.302652729749464
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302652729749464 / math.sqrt(3), rel=1e-9)


def test_single_seed_cell_shows_protocol_ci_or_n1_and_missing_cell_says_not_run():
    assert format_summary(summarize([70.0], [0.8])) == "70.00 ± 0.80 (n=1, protocol CI)"
    assert format_summary(summarize([70.0])) == "70.00 (n=1)"
    assert format_summary(None) == "not run"
    assert format_summary(summarize([1.0, 3.0]), pm="+-").startswith("2.00 +- ")


def test_delta_is_ours_minus_paper_and_na_without_paper_number():
    s = summarize([80.0, 82.0])
    assert format_delta(s, 79.5) == "+1.50"
    assert format_delta(s, None) == "n/a"
    assert format_delta(None, 79.5) == "—"


def test_t_ci95_scales_with_the_sample_standard_deviation():
    # s = 4 (not 1, where s and 1 / s coincide); t_{0.975, 2} = 0.95 / sqrt(2 * 0.975 * 0.025),
    # the closed form of Student's t quantile at 2 degrees of freedom
    mean, half, n = t_ci95([2.0, 6.0, 10.0])
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert (mean, n) == (6.0, 3)
    assert half == pytest.approx(t * 4.0 / math.sqrt(3), rel=1e-9)
    # two seeds: 1 degree of freedom, Cauchy's quantile tan(pi (0.975 - 1/2)) = 12.706...
    mean, half, n = t_ci95([1.0, 5.0])
    assert (mean, n) == (3.0, 2)
    assert half == pytest.approx(math.tan(math.pi * 0.475) * math.sqrt(8.0) / math.sqrt(2),
                                 rel=1e-9)


def test_summary_names_where_its_interval_comes_from():
    t_half = t_ci95([2.0, 6.0, 10.0])[1]
    assert summarize([2.0, 6.0, 10.0], [0.8]) == Summary(6.0, t_half, 3, "t")
    # one seed: the first of the runs' own intervals that is a number (None and NaN skipped)
    assert summarize([70.0], [None, float("nan"), 0.8]) == Summary(70.0, 0.8, 1, "protocol")
    assert summarize([70.0], [None, float("nan")]) == Summary(70.0, None, 1, None)
    # an across-seed interval says only n; a protocol one says so
    assert format_summary(Summary(1.0, 0.5, 2, "t")) == "1.00 ± 0.50 (n=2)"
    assert format_summary(Summary(1.0, 0.5, 1, "protocol")) == "1.00 ± 0.50 (n=1, protocol CI)"


def test_delta_without_a_paper_number_says_na_also_for_nan():
    assert format_delta(summarize([80.0, 82.0]), float("nan")) == "n/a"


def test_t_ci95_refuses_empty_and_non_finite_values():
    with pytest.raises(ValueError, match="^t_ci95 needs at least one value$"):
        t_ci95([])
    with pytest.raises(ValueError, match="not finite"):
        t_ci95([1.0, float("nan")])


# ---- reported numbers ----------------------------------------------------------------------


def test_committed_reported_csvs_load_and_every_number_names_its_source():
    for spec in TABLES.values():
        frame = load_reported(REPORTED / spec.reported_csv)
        with_value = frame[frame["value"].notna()]
        assert (with_value["source"].str.strip() != "").all(), spec.reported_csv
        assert (with_value["version"].str.strip() != "").all(), spec.reported_csv


def test_reported_csv_with_a_non_numeric_value_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(REPORTED_COLUMNS) + "\nir,ring,cifar10,top1,8l.2,Table 1,v1,\n")
    with pytest.raises(ValueError, match="line"):
        load_reported(path)


def test_reported_csv_listing_a_cell_twice_is_refused(tmp_path):
    row = "ir,ring,cifar10,top1,80.0,Table 1,v1,"
    path = tmp_path / "dup.csv"
    path.write_text(",".join(REPORTED_COLUMNS) + f"\n{row}\n{row}\n")
    with pytest.raises(ValueError, match="twice"):
        load_reported(path)


# ---- tables --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for seed, (nce, ring) in enumerate([(80.0, 83.0), (82.0, 84.0), (81.0, 85.0)]):
        _write(root, "linear_eval", "ir", "uniform", "cifar10", seed, {"top1": nce})
        _write(root, "linear_eval", "ir", "ring", "cifar10", seed, {"top1": ring})
    _write(root, "linear_eval", "ir", "ring", "cifar10", 0, {"top1": 90.0}, scale="paper")
    # float32 noise, as a linear probe's accuracy comes out of torch
    _write(root, "linear_eval", "moco", "uniform", "shapes", 0, {"top1": 55.099998474121094})
    _write(root, "fewshot", "ir", "ring", "shapes", 0, {"accuracy": 61.0}, eval_dataset="omniglot",
           ci95={"accuracy": 0.9})
    # two tasks on the same generated data, and one record of the older layout (task in
    # eval_dataset, no extra.task)
    _detection(root, "voc_det", "ring", {"bbox_AP": 2.0, "bbox_AP50": 6.0})
    _detection(root, "coco_mask", "ring", {"bbox_AP": 30.0, "segm_AP": 25.0})
    _write(root, "detection", "moco", "ring", "shapes", 0, {"keypoints_AP": 5.0},
           eval_dataset="coco_kpt", extra={"backend": "torchvision"})
    for seed in (0, 1):
        for w_l, w_u, v in [(0.5, 0.99, 60.0), (0.9, 0.99, 64.0), (0.8, 0.95, 62.0)]:
            _write(root, "linear_eval", "simclr", "ring", "digits", seed, {"top1": v + seed},
                   params={"name": "ring", "w_l": w_l, "w_u": w_u, "schedule": "linear"})
    for sampler in ("uniform", "ring"):
        folder = _write(root, "pretrain", "ir", sampler, "shapes", 0, {"final_loss": 5.0})
        w_l = "0.4500" if sampler == "ring" else ""
        (folder / "log.csv").write_text("epoch,step,loss,w_l,lr,time_s\n"
                                        f"0,0,6.0,{w_l},0.1,1.0\n0,1,5.5,{w_l},0.1,2.0\n"
                                        f"1,2,5.0,{w_l},0.1,3.0\n")
    return root


@pytest.fixture(scope="module")
def records(results):
    return load_records(results)


def _cell(tidy, **match):
    rows = tidy
    for key, value in match.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_table1_cell_is_mean_and_t_ci_over_seeds_beside_the_paper_number(records, tmp_path):
    reported = _reported(tmp_path, [IR_CIFAR10_PAPER])
    tidy = comparison_frame(records, reported, TABLES["table1"])
    cell = _cell(tidy, task="cifar10", model="ir", sampler="uniform", scale="default")
    assert cell["n_seeds"] == 3 and cell["mean"] == pytest.approx(81.0)
    assert cell["ci95"] == pytest.approx(4.302652729749464 / math.sqrt(3))
    assert cell["paper"] == 79.0 and cell["delta"] == pytest.approx(2.0)
    wide = wide_frame(tidy, TABLES["table1"])
    row = wide[(wide["dataset"] == "CIFAR10") & (wide["method"] == "IR")].iloc[0]
    assert row["paper (reported)"] == "79.00"
    assert row["ours (scale=default)"] == "81.00 ± 2.48 (n=3)"
    assert row["Δ ours − paper (scale=default)"] == "+2.00"


def test_scales_are_never_mixed_in_one_cell(records):
    tidy = comparison_frame(records, load_reported(REPORTED / "table1_linear_eval.csv"),
                            TABLES["table1"])
    default = _cell(tidy, task="cifar10", model="ir", sampler="ring", scale="default")
    paper = _cell(tidy, task="cifar10", model="ir", sampler="ring", scale="paper")
    assert (default["n_seeds"], default["mean"]) == (3, pytest.approx(84.0))
    assert (paper["n_seeds"], paper["mean"]) == (1, 90.0)
    wide = wide_frame(tidy, TABLES["table1"])
    assert {"ours (scale=default)", "ours (scale=paper)"} <= set(wide.columns)
    row = wide[(wide["dataset"] == "CIFAR10") & (wide["method"] == "IR + Ring")].iloc[0]
    assert row["ours (scale=paper)"] == "90.00 (n=1)"


def test_missing_runs_say_not_run_and_offline_datasets_have_no_paper_number(records,
                                                                            tmp_path):
    reported = _reported(tmp_path, [["cmc", "uniform", "stl10", "top1", 80.0, "Table 1",
                                     "arXiv:2010.02037v1", ""]])
    wide = wide_frame(comparison_frame(records, reported, TABLES["table1"]), TABLES["table1"])
    cmc = wide[(wide["dataset"] == "STL10") & (wide["method"] == "CMC")].iloc[0]
    assert (cmc["paper (reported)"], cmc["ours (scale=default)"]) == ("80.00", "not run")
    shapes = wide[(wide["dataset"] == "shapes") & (wide["method"] == "MoCo")].iloc[0]
    assert shapes["paper (reported)"] == "n/a (no paper number)"
    assert shapes["ours (scale=default)"] == "55.10 (n=1)"
    assert shapes["Δ ours − paper (scale=default)"] == "n/a"


def test_records_of_two_configurations_are_shown_apart_never_averaged_as_seeds(tmp_path):
    for seed, epochs, top1 in [(0, 12, 40.0), (1, 1, 20.0), (2, 12, 42.0)]:
        record = make_record(stage="linear_eval", model="ir", sampler="ring", dataset="shapes",
                             seed=seed, metrics={"top1": top1}, scale="default",
                             config={"pretrain": {"seed": seed, "epochs": epochs,
                                                  "threads": seed + 1}},
                             wall_time_s=1.0, sampler_params={"name": "ring"})
        write_record(tmp_path / f"s{seed}" / "result.json", record)
    records = load_records(tmp_path)
    spec = TABLES["table1"]
    tidy = comparison_frame(records, load_reported(REPORTED / "table1_linear_eval.csv"), spec)
    ours = tidy[tidy["n_seeds"] > 0]
    assert len(ours) == 2 and all(ours["sampler"].str.startswith("ring (config "))
    assert sorted(zip(ours["n_seeds"], ours["mean"])) == [(1, 20.0), (2, 41.0)]
    path = make_tables(tmp_path, tmp_path / "tables", REPORTED, only=["table1"])[0]
    text = path.read_text()
    assert "records of 2 configurations, shown apart rather than averaged" in text
    assert "pretrain.epochs=1" in text and "pretrain.epochs=12" in text
    assert "threads" not in text.split("shown apart")[1].split("\n")[0]  # run-local: not a difference


def test_fewshot_on_the_pretraining_data_is_labelled_in_domain_and_detection_states_its_budget(
        tmp_path):
    _write(tmp_path, "fewshot", "ir", "ring", "shapes", 0, {"accuracy": 70.0},
           eval_dataset="shapes")
    _detection(tmp_path, "voc_det", "ring", {"bbox_AP": 2.0})
    paths = make_tables(tmp_path, tmp_path / "tables", REPORTED, only=["table2", "table3"])
    fewshot, detection = (p.read_text() for p in paths if p.suffix == ".md")
    assert "in-domain few-shot classification, not transfer" in fewshot
    assert "fine-tuned 20 iterations" in detection


def test_one_sampler_label_with_several_ring_bounds_gets_one_row_per_bounds(records):
    tidy = comparison_frame(records, load_reported(REPORTED / "table1_linear_eval.csv"),
                            TABLES["table1"])
    digits = tidy[tidy["task"] == "digits"]
    assert len(digits) == 3 and (digits["n_seeds"] == 2).all()
    assert any("w_l=0.9" in s and "w_u=0.99" in s for s in digits["sampler"])


def test_fewshot_single_run_shows_the_protocol_ci(records, tmp_path):
    reported = _reported(tmp_path, [["ir", "ring", "omniglot", "accuracy", 70.0, "Table 2",
                                     "arXiv:2010.02037v1", ""]])
    tidy = comparison_frame(records, reported, TABLES["table2"])
    cell = _cell(tidy, task="omniglot", model="ir", sampler="ring", pretrained_on="shapes")
    assert (cell["ci_kind"], cell["ci95"], cell["pretrained_on"]) == ("protocol", 0.9, "shapes")
    # the paper transfers ImageNet encoders: a shapes encoder has no paper number, and the
    # paper's own cell for this source is listed apart
    assert cell["paper_status"] == "n/a (no paper number)"
    paper_cell = _cell(tidy, task="omniglot", model="ir", sampler="ring", pretrained_on="")
    assert (paper_cell["paper"], paper_cell["n_seeds"]) == (70.0, 0)


def test_detection_table_has_a_row_per_metric_with_its_backend(records):
    tidy = comparison_frame(records, load_reported(REPORTED / "table3_detection.csv"),
                            TABLES["table3"])
    ran = tidy[tidy["n_seeds"] > 0]
    assert list(zip(ran["task"], ran["metric"])) == [
        ("voc_det", "bbox_AP"), ("voc_det", "bbox_AP50"), ("coco_mask", "bbox_AP"),
        ("coco_mask", "segm_AP"), ("coco_kpt", "keypoints_AP")]
    assert set(ran["backend"]) == {"torchvision"}
    wide = wide_frame(tidy, TABLES["table3"])
    assert {"metric", "backend"} <= set(wide.columns)


def test_detection_rows_are_split_by_task_never_averaging_two_tasks_on_the_same_data(records):
    tidy = comparison_frame(records, load_reported(REPORTED / "table3_detection.csv"),
                            TABLES["table3"])
    voc = _cell(tidy, task="voc_det", metric="bbox_AP", scale="default")
    mask = _cell(tidy, task="coco_mask", metric="bbox_AP", scale="default")
    assert (voc["n_seeds"], voc["mean"]) == (1, 2.0)
    assert (mask["n_seeds"], mask["mean"]) == (1, 30.0)
    assert "shapes_coco" not in set(tidy["task"])


def test_detection_table_shows_the_evaluation_data_in_its_own_column(records):
    tidy = comparison_frame(records, load_reported(REPORTED / "table3_detection.csv"),
                            TABLES["table3"])
    wide = wide_frame(tidy, TABLES["table3"])
    data = dict(zip(wide["task"], wide["evaluated on"]))
    assert data["VOC detection"] == data["COCO instance seg."] == "shapes_coco"
    assert data["COCO keypoints"] == "—"  # an older record: task in eval_dataset, data unknown


def test_detection_paper_number_keyed_by_task_lands_in_its_task_row(records, tmp_path):
    reported = _reported(tmp_path, [["moco", "ring", "coco_mask", "bbox_AP", 40.0, "Table 3",
                                     "arXiv:2010.02037v1", ""]])
    _detection(tmp_path / "paper", "coco_mask", "ring", {"bbox_AP": 38.5}, data="coco",
               scale="paper", pretrained_on="imagenet")
    _detection(tmp_path / "paper", "coco_mask", "ring", {"bbox_AP": 20.0}, data="generated",
               scale="small", pretrained_on="imagenet")
    both = pd.concat([records, load_records(tmp_path / "paper")], ignore_index=True)
    tidy = comparison_frame(both, reported, TABLES["table3"])
    coco = _cell(tidy, task="coco_mask", metric="bbox_AP", scale="paper")
    generated = _cell(tidy, task="coco_mask", metric="bbox_AP", scale="small")
    shapes = _cell(tidy, task="coco_mask", metric="bbox_AP", scale="default")
    assert coco["paper"] == generated["paper"] == 40.0
    assert coco["delta"] == pytest.approx(-1.5)
    assert pd.isna(generated["delta"])  # shapes_coco is not the data the paper measured on
    assert shapes["paper_status"] == "n/a (no paper number)"  # pretrained on shapes
    wide = wide_frame(tidy, TABLES["table3"])
    rows = wide[(wide["task"] == "COCO instance seg.") & (wide["metric"] == "bbox_AP")
                & (wide["pretrained on"] == "ImageNet")]
    by_data = {r["evaluated on"]: r for _, r in rows.iterrows()}
    assert by_data["coco2017_val"]["Δ ours − paper (scale=paper)"] == "-1.50"
    assert by_data["shapes_coco"]["Δ ours − paper (scale=small)"] == \
        "n/a (not the paper's data)"
    assert by_data["shapes_coco"]["paper (reported)"] == "40.00"


def test_paper_cells_neither_transcribed_nor_run_fold_into_one_footnote(results, tmp_path):
    reported = load_reported(REPORTED / "table1_linear_eval.csv")
    records = load_records(results)
    tidy = comparison_frame(records, reported, TABLES["table1"])
    idle = idle_paper_cells(tidy)
    assert len(idle) == len(reported) - 2  # IR and IR + Ring on CIFAR10 were run
    wide = wide_frame(tidy, TABLES["table1"])
    runs = [c for c in wide.columns if c.startswith("ours (")]
    assert "paper (reported)" not in wide.columns  # nothing transcribed: no paper column
    assert not (wide[runs] == "not run").all(1).any()
    assert {"IR", "IR + Ring"} <= set(wide[wide["dataset"] == "CIFAR10"]["method"])
    make_tables(results, tmp_path, REPORTED, only=["table1"])
    md = (tmp_path / "table1_linear_eval.md").read_text()
    assert f"Not shown: {len(idle)} paper cell(s)" in md
    assert "{IR, CMC, MoCo} × {uniform, ring} × {CIFAR100, STL10, ImageNet}" in md
    assert "| not transcribed       | not run" not in md


def test_compact_cells_name_a_full_grid_as_one_product_and_split_the_rest_by_last_label():
    grid = [(m, s, d) for d in ("C10", "C100") for m in ("IR", "CMC") for s in ("u", "r")]
    assert compact_cells(grid) == "{IR, CMC} × {u, r} × {C10, C100}"
    ragged = [c for c in grid if c != ("IR", "u", "C10")]
    assert compact_cells(ragged) == ("{IR, CMC} × {r} × {C10}; {CMC} × {u} × {C10}; "
                                     "{IR, CMC} × {u, r} × {C100}")
    assert compact_cells([]) == ""


def test_latex_caption_does_not_repeat_the_table_number(records):
    spec = TABLES["table1"]
    wide = wide_frame(comparison_frame(records, load_reported(REPORTED / spec.reported_csv),
                                       spec), spec)
    tex = render_latex(wide, spec.title, [])
    assert "\\caption{linear evaluation" in tex and "Table 1" not in tex


def test_csv_numbers_are_rounded_to_four_decimals(results, tmp_path):
    make_tables(results, tmp_path, REPORTED, only=["table1"])
    text = (tmp_path / "table1_linear_eval.csv").read_text()
    assert "55.1," in text and "55.099998" not in text
    for value in pd.read_csv(tmp_path / "table1_linear_eval.csv")[["mean", "ci95"]].stack().dropna():
        assert value == round(value, 4)


def test_cli_writes_markdown_latex_and_csv_for_every_table(results, tmp_path):
    assert report_main(["tables", "--results", str(results), "--out", str(tmp_path),
                        "--reported", str(REPORTED)]) == 0
    for spec in TABLES.values():
        md = (tmp_path / f"{spec.name}.md").read_text()
        tex = (tmp_path / f"{spec.name}.tex").read_text()
        # the committed reported CSVs hold no number yet: no wall of n/a columns, one note
        assert "ours (scale=default)" in md and "| paper (reported)" not in md
        assert "the paper (reported) and Δ columns are left out" in md
        assert "paper" in pd.read_csv(tmp_path / f"{spec.name}.csv").columns
        assert "\\begin{tabular}" in tex and "±" not in tex
        assert not pd.read_csv(tmp_path / f"{spec.name}.csv").empty
    assert "$\\pm$" in (tmp_path / "table1_linear_eval.tex").read_text()


def test_missing_results_folder_is_a_clear_error(tmp_path, capsys):
    assert report_main(["tables", "--results", str(tmp_path / "nope"),
                        "--out", str(tmp_path)]) == 2
    assert "no results folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown table"):
        make_tables(tmp_path, tmp_path, only=["table9"])


# ---- figures -------------------------------------------------------------------------------


def test_loss_logs_carry_the_run_identity_and_the_ring_w_l(records):
    logs = load_loss_logs(records)
    assert len(logs) == 6 and set(logs["sampler"]) == {"uniform", "ring"}
    ring = logs[logs["sampler"] == "ring"]
    assert (ring["w_l"] == 0.45).all() and logs[logs["sampler"] == "uniform"]["w_l"].isna().all()
    assert ring["progress"].max() == 1.0


def _suptitle(fig) -> str:
    return fig._suptitle.get_text() if fig._suptitle is not None else ""


def test_loss_curves_have_one_shared_legend_a_loss_caveat_and_a_band_only_with_seeds(results,
                                                                                    tmp_path):
    fig = plot_loss_curves(load_records(results))
    assert "band" not in _suptitle(fig)  # one seed per line
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert LOSS_CAVEAT in [t.get_text() for t in fig.texts]
    for seed in (0, 1):
        folder = _write(tmp_path, "pretrain", "ir", "uniform", "shapes", seed,
                        {"final_loss": 5.0})
        (folder / "log.csv").write_text("epoch,step,loss,w_l,lr,time_s\n"
                                        f"0,0,{6 + seed},,0.1,1.0\n0,1,5.0,,0.1,2.0\n")
    assert "band = min..max over seeds" in _suptitle(plot_loss_curves(load_records(tmp_path)))


def test_ring_bounds_panels_follow_the_table_model_order_each_on_its_own_axis(tmp_path):
    for model, (low, high) in {"cmc": (40.0, 42.0), "ir": (60.0, 64.0)}.items():
        for w_l, value in ((0.5, low), (0.9, high)):
            _write(tmp_path, "linear_eval", model, "ring", "shapes", 0, {"top1": value},
                   params={"name": "ring", "w_l": w_l, "w_u": 0.99, "schedule": "linear"})
    fig = plot_ring_bounds(load_records(tmp_path))
    panels = [ax for ax in fig.axes if ax.axison and ax.get_title()]
    assert [ax.get_title().split(" on ")[0] for ax in panels] == ["IR", "CMC"]
    assert panels[1].get_ylim()[1] < 60.0  # CMC's 40 vs 42 is not squeezed onto IR's scale
    assert "42.0\nn=1" in [t.get_text() for t in panels[1].texts]  # numbers stay annotated


def test_ring_bounds_figure_draws_points_only_when_bounds_vary(records):
    fig = plot_ring_bounds(records)
    titles = [ax.get_title() for ax in fig.axes]
    assert "SimCLR on digits (scale=default)\nschedule=linear" in titles
    empty = plot_ring_bounds(records[records["model"] != "simclr"])
    assert "No ring-bound sweep" in " ".join(t.get_text() for ax in empty.axes
                                            for t in ax.texts)


def test_every_sampler_gets_its_own_colour_and_uniform_ring_keep_theirs():
    colors = sampler_colors(["uniform", "ring", "ring_50_99", "ring_const", "ring"])
    assert colors["uniform"] == "tab:blue" and colors["ring"] == "tab:red"
    assert len(set(colors.values())) == len(colors) == 4
    assert set(sampler_colors(["ring_const"])) == {"ring_const"}


def _ring_ablation(tmp_path):
    """The default config's ring ablations: ring and ring_50_99 (linear annealing, two bounds)
    and ring_const (the bounds of ring, no annealing)."""
    linear = {"name": "ring", "schedule": "linear", "w_l_start": 0.0, "anneal_fraction": 0.5}
    runs = {"ring": ({**linear, "w_l": 0.9, "w_u": 0.99}, 40.0),
            "ring_50_99": ({**linear, "w_l": 0.5, "w_u": 0.99}, 41.0),
            "ring_const": ({"name": "ring", "schedule": "constant", "w_l": 0.9, "w_u": 0.99}, 20.0)}
    for sampler, (params, top1) in runs.items():
        _write(tmp_path, "linear_eval", "moco", sampler, "shapes", 0, {"top1": top1},
               params=params)
    return _ring_rows(load_records(tmp_path), "linear_eval", "top1")


def test_ring_bounds_panel_never_averages_runs_with_another_schedule(tmp_path):
    (key, part), = ring_bound_panels(_ring_ablation(tmp_path))
    assert key[3] == "anneal_fraction=0.5, schedule=linear, w_l_start=0.0"
    cells = part.groupby(["w_l", "w_u"])["value"].mean().to_dict()
    assert cells == {(0.5, 0.99): 41.0, (0.9, 0.99): 40.0}


def test_anneal_figure_draws_accuracy_and_final_loss_per_schedule(tmp_path):
    _ring_ablation(tmp_path)
    for sampler, schedule, loss in (("ring", "linear", 4.0), ("ring_const", "constant", 3.0)):
        # pretraining records name the sampler in "sampler", not "name"
        _write(tmp_path, "pretrain", "moco", sampler, "shapes", 0, {"final_loss": loss},
               params={"sampler": "ring", "schedule": schedule, "w_l": 0.9, "w_u": 0.99})
    fig = plot_anneal_schedules(load_records(tmp_path))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "linear-eval top-1 (%)" in labels and "final pretraining loss" in labels


def _queue_study(tmp_path):
    """config/study.yaml's MoCo runs on shapes: uniform, ring, ring_const and ring_50_99 at
    queue 256, uniform_q1024 and ring_q1024 at 1,024 (a label's model_options), two seeds each; the
    1,024-key runs are 30 points lower, so pooling them with the 256-key runs shows."""
    linear = {"name": "ring", "schedule": "linear", "w_l_start": 0.0, "anneal_fraction": 0.5,
              "w_l": 0.9, "w_u": 0.99}
    const = {"name": "ring", "schedule": "constant", "w_l": 0.9, "w_u": 0.99}
    runs = {"uniform": ({"name": "uniform"}, 256, 70.0), "ring": (linear, 256, 68.0),
            "ring_const": (const, 256, 20.0), "ring_50_99": ({**linear, "w_l": 0.5}, 256, 66.0),
            "uniform_q1024": ({"name": "uniform"}, 1024, 40.0),
            "ring_q1024": (linear, 1024, 38.0)}
    for sampler, (params, queue, top1) in runs.items():
        for seed in (0, 1):
            config = {"pretrain": {"model_options": {"queue_size": queue},
                                   "sampler": params, "sampler_label": sampler}}
            _write(tmp_path, "linear_eval", "moco", sampler, "shapes", seed,
                   {"top1": top1 + seed}, params=params, config=config)
    return load_records(tmp_path)


def test_anneal_and_ring_figures_never_pool_runs_of_another_queue_size(tmp_path):
    from repro.report.figures import plot_anneal_schedules

    records = _queue_study(tmp_path)
    sweep = schedule_sweep(_ring_rows(records, "linear_eval", "top1"))
    # ring_q1024 has the linear schedule at the same bounds, but another queue: no sweep
    assert sorted(sweep["sampler"]) == ["ring", "ring", "ring_const", "ring_const"]
    fig = plot_anneal_schedules(records)
    (panel,) = [ax for ax in fig.axes if ax.get_ylabel() == "linear-eval top-1 (%)"]
    texts = [t.get_text() for t in panel.texts]
    assert "68.5\nn=2" in texts and "20.5\nn=2" in texts  # ring alone (not 53.5, n=4)
    assert [t.get_text() for t in panel.get_xticklabels()] == ["linear\nring",
                                                               "constant\nring_const"]
    # the NCE line is the 256-key uniform runs' (70.5), not pooled with uniform_q1024's
    legend = [t.get_text() for t in panel.get_legend().get_texts()]
    assert "uniform (NCE): 70.5 (n=2)" in legend
    # ring bounds: ring and ring_50_99 at 256 keys, one panel; ring_q1024 is not in it
    (key, part), = ring_bound_panels(_ring_rows(records, "linear_eval", "top1"))
    assert sorted(set(part["sampler"])) == ["ring", "ring_50_99"]
    assert part.groupby("w_l")["value"].mean().to_dict() == {0.5: 66.5, 0.9: 68.5}


def test_two_experiments_of_one_model_get_two_panels_with_different_titles(tmp_path):
    from repro.report.figures import plot_anneal_schedules, plot_ring_bounds

    _queue_study(tmp_path)
    # the 1,024-key experiment gets its own fixed ring and wider ring: a sweep of its own
    const = {"name": "ring", "schedule": "constant", "w_l": 0.9, "w_u": 0.99}
    wide = {"name": "ring", "schedule": "linear", "w_l_start": 0.0, "anneal_fraction": 0.5,
            "w_l": 0.5, "w_u": 0.99}
    for sampler, params, top1 in (("ring_const_q1024", const, 10.0),
                                  ("ring_50_99_q1024", wide, 36.0)):
        config = {"pretrain": {"model_options": {"queue_size": 1024}, "sampler": params,
                               "sampler_label": sampler}}
        _write(tmp_path, "linear_eval", "moco", sampler, "shapes", 0, {"top1": top1},
               params=params, config=config)
    records = load_records(tmp_path)
    for fig in (plot_anneal_schedules(records), plot_ring_bounds(records)):
        titles = [ax.get_title() for ax in fig.axes if "MoCo" in ax.get_title()]
        assert len(titles) == len(set(titles)) == 2, titles
        assert all("experiment " in t for t in titles)
    # one experiment per (model, data): no suffix
    assert "experiment" not in " ".join(
        ax.get_title() for ax in plot_ring_bounds(_queue_study(tmp_path / "one")).axes)


def test_schedule_sweep_compares_schedules_only_at_the_same_bounds(tmp_path):
    sweep = schedule_sweep(_ring_ablation(tmp_path))
    assert sorted(sweep["sampler"]) == ["ring", "ring_const"]
    assert set(zip(sweep["w_l"], sweep["w_u"])) == {(0.9, 0.99)}


@pytest.mark.slow
def test_every_figure_is_written_as_png_and_pdf_even_without_records(results, tmp_path):
    paths = make_figures(results, tmp_path / "full")
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{ext}" for n in ("loss_curves", "anneal_schedules", "toy_bias_variance",
                               "toy_sphere", "ring_bounds", "methods", "queue_ablation",
                               "bank_momentum_ablation", "false_negatives", "claims")
        for ext in ("png", "pdf"))
    empty_root = tmp_path / "empty"
    empty_root.mkdir()
    import matplotlib.image

    for path in paths + make_figures(empty_root, tmp_path / "empty_out"):
        if path.suffix == ".pdf":
            head = path.read_bytes()
            assert head.startswith(b"%PDF-") and b"/Type /Page" in head, path
            continue
        pixels = matplotlib.image.imread(path)  # decodes: a real PNG, not an empty file
        assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 100, (path, pixels.shape)
        # not blank: something is drawn (at least the panels' axes and their labels)
        assert (pixels[..., :3].reshape(-1, 3).std(axis=0) > 0.01).any(), path


# ---- the report rules ----------------------------------------------------------------------


@pytest.mark.slow
def test_report_rule_regenerates_one_table_from_records_alone(results, tmp_path,
                                                              run_report_rule):
    proc = run_report_rule(results, tmp_path, "tables/table1_linear_eval.md")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "tables" / "table1_linear_eval.md").read_text()
    assert "81.00 ± 2.48 (n=3)" in md
    assert (tmp_path / "tables" / "table1_linear_eval.tex").exists()


@pytest.mark.parametrize("what", ["tables", "figures"])
def test_report_subcommand_help_describes_it_and_every_option(what, capsys):
    with pytest.raises(SystemExit):
        report_main([what, "--help"])
    out = capsys.readouterr().out
    assert "%%" not in out and "(default: results)" in out
    assert "where the" in out and "written" in out  # --out says what it is


def test_table1_notes_each_trained_cell_against_its_models_untrained_row(tmp_path):
    from repro.report.tables import LEARNS_MARGIN, learning_notes

    # IR on digits: untrained 80, 82 (mean 81); uniform 88, 90 (+8); ring 83, 85 (+3)
    for seed, (u, nce, ring) in enumerate([(80.0, 88.0, 83.0), (82.0, 90.0, 85.0)]):
        _write(tmp_path, "linear_eval", "ir", "untrained", "digits", seed, {"top1": u})
        _write(tmp_path, "linear_eval", "ir", "uniform", "digits", seed, {"top1": nce})
        _write(tmp_path, "linear_eval", "ir", "ring", "digits", seed, {"top1": ring})
    _write(tmp_path, "linear_eval", "moco", "uniform", "digits", 0, {"top1": 50.0})  # no floor
    tidy = comparison_frame(load_records(tmp_path), load_reported(
        REPORTED / "table1_linear_eval.csv"), TABLES["table1"])
    notes = learning_notes(tidy)
    assert LEARNS_MARGIN == 5.0 and len(notes) == 1  # MoCo has no untrained row: no note
    assert "untrained 81.00; IR +8.00, IR + Ring +3.00" in notes[0]
    assert notes[0].endswith("(below +5: IR + Ring).")


def test_a_diverged_runs_nan_metric_is_left_out_of_the_cell_and_named(tmp_path):
    for seed, value in enumerate([90.0, float("nan"), 91.0]):
        _write(tmp_path, "linear_eval", "ir", "ring", "digits", seed, {"top1": value})
    table = make_tables(tmp_path, tmp_path / "tables", REPORTED, only=["table1"])[0].read_text()
    mean, half, _ = t_ci95([90.0, 91.0])
    assert f"{mean:.2f} ± {half:.2f} (n=2)" in table
    assert "Left out: 1 metric value(s) that are not finite" in table and "seed1" in table


@pytest.mark.parametrize("text", ["", 'model,sampler,eval_dataset,metric,value,source,version,'
                                      'note\nir,ring,"cifar10,top1,81,Table 1,v1,\n'])
def test_an_empty_or_unterminated_reported_csv_is_one_error_naming_the_file(tmp_path, text):
    path = tmp_path / "table1_linear_eval.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{path}: not a readable CSV .*it needs the header "
                                         r"model,sampler,eval_dataset"):
        load_reported(path)


def test_reported_rows_that_can_match_no_run_are_named_with_their_line(tmp_path, capsys):
    reported = tmp_path / "reported"
    reported.mkdir()
    (reported / "table1_linear_eval.csv").write_text(
        ",".join(REPORTED_COLUMNS) + "\nir,ring,cifar10,top1,81.2,Table 1,v1,\n"
        "byol,ring,cifar10,top1,80.0,Table 1,v1,\nir,ring,cifar-10,top1,79.0,Table 1,v1,\n")
    _write(tmp_path / "results", "linear_eval", "ir", "ring", "digits", 0, {"top1": 50.0})
    table = make_tables(tmp_path / "results", tmp_path / "tables", reported,
                        only=["table1"])[0].read_text()
    err = capsys.readouterr().err
    for line, what in ((3, "model 'byol'"), (4, "eval_dataset 'cifar-10'")):
        said = f"table1_linear_eval.csv line {line}: {what} is none of"
        assert said in err and said in table
    assert "line 2" not in err  # the good row is not flagged


def test_a_failing_report_says_that_its_previous_outputs_are_gone(tmp_path, capsys):
    reported = tmp_path / "reported"
    reported.mkdir()
    (reported / "table1_linear_eval.csv").write_text("")
    _write(tmp_path / "results", "linear_eval", "ir", "ring", "digits", 0, {"top1": 50.0})
    code = report_main(["tables", "--results", str(tmp_path / "results"), "--out",
                        str(tmp_path / "tables"), "--reported", str(reported), "--only",
                        "table1"])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable CSV" in err
    assert "previous tables were removed when it started" in err and "Traceback" not in err


# ---- the table's edges: learning notes, paper cells, columns, labels --------------------


def test_learning_notes_follow_the_table_order_and_a_gain_of_exactly_the_margin_clears(
        tmp_path):
    from repro.report.tables import learning_notes

    # IR on CIFAR10 has no untrained row and comes first in the table: no note, and the
    # digits notes still follow
    _write(tmp_path, "linear_eval", "ir", "uniform", "cifar10", 0, {"top1": 70.0})
    # IR on digits: one untrained seed at 80; NCE exactly +5, Ring +10: both clear
    _write(tmp_path, "linear_eval", "ir", "untrained", "digits", 0, {"top1": 80.0})
    _write(tmp_path, "linear_eval", "ir", "uniform", "digits", 0, {"top1": 85.0})
    _write(tmp_path, "linear_eval", "ir", "ring", "digits", 0, {"top1": 90.0})
    # CMC on CIFAR10: a labelled dataset, named as the table names it
    _write(tmp_path, "linear_eval", "cmc", "untrained", "cifar10", 0, {"top1": 40.0})
    _write(tmp_path, "linear_eval", "cmc", "uniform", "cifar10", 0, {"top1": 60.0})
    # CMC on digits: both trained cells short of the margin
    _write(tmp_path, "linear_eval", "cmc", "untrained", "digits", 0, {"top1": 70.0})
    _write(tmp_path, "linear_eval", "cmc", "uniform", "digits", 0, {"top1": 71.0})
    _write(tmp_path, "linear_eval", "cmc", "ring", "digits", 0, {"top1": 72.5})
    tidy = comparison_frame(load_records(tmp_path), _reported(tmp_path, []), TABLES["table1"])
    assert learning_notes(tidy) == [
        "vs untrained, CMC on CIFAR10 (scale=default): untrained 40.00; CMC +20.00 (all clear "
        "+5).",
        "vs untrained, IR on digits (scale=default): untrained 80.00; IR +5.00, IR + Ring "
        "+10.00 (all clear +5).",
        "vs untrained, CMC on digits (scale=default): untrained 70.00; CMC +1.00, CMC + Ring "
        "+2.50 (below +5: CMC, CMC + Ring)."]


def test_paper_cells_carry_their_source_and_a_table_keeps_only_its_metrics(records, tmp_path):
    reported = _reported(tmp_path, [
        ["ir", "uniform", "cifar100", "top5", 95.0, "Table 9", "v9", ""],  # not table 1's
        IR_CIFAR10_PAPER,
        ["cmc", "uniform", "stl10", "top1", 80.0, "Table 1", "arXiv:2010.02037v1", ""]])
    tidy = comparison_frame(records, reported, TABLES["table1"])
    assert "top5" not in set(tidy["metric"])
    ran = _cell(tidy, task="cifar10", model="ir", sampler="uniform", scale="default")
    assert ran["paper_source"] == "Table 1 arXiv:2010.02037v1"
    paper_only = _cell(tidy, task="stl10", model="cmc", sampler="uniform")
    assert (paper_only["metric"], paper_only["scale"], paper_only["n_seeds"],
            paper_only["paper"], paper_only["paper_source"]) == (
        "top1", "", 0, 80.0, "Table 1 arXiv:2010.02037v1")
    assert _cell(tidy, task="shapes", model="moco", sampler="uniform")["paper_source"] == ""


def test_wide_table_puts_the_paper_scale_last_and_fills_what_a_scale_did_not_run(records,
                                                                                 tmp_path):
    more = tmp_path / "more"
    _write(more, "linear_eval", "ir", "uniform", "cifar10", 0, {"top1": 81.0}, scale="study")
    both = pd.concat([records, load_records(more)], ignore_index=True)
    reported = _reported(tmp_path, [IR_CIFAR10_PAPER])
    wide = wide_frame(comparison_frame(both, reported, TABLES["table1"]), TABLES["table1"],
                      digits=1, pm="+/-")
    assert list(wide.columns)[4:] == [
        "ours (scale=default)", "Δ ours − paper (scale=default)", "ours (scale=study)",
        "Δ ours − paper (scale=study)", "ours (scale=paper)", "Δ ours − paper (scale=paper)"]
    row = wide[(wide["dataset"] == "CIFAR10") & (wide["method"] == "IR")].iloc[0]
    assert (row["pretrained on"], row["ours (scale=default)"],
            row["Δ ours − paper (scale=default)"], row["ours (scale=paper)"],
            row["Δ ours − paper (scale=paper)"]) == ("CIFAR10", "81.0 +/- 2.5 (n=3)", "+2.0",
                                                     "not run", "—")
    shapes = wide[(wide["dataset"] == "shapes") & (wide["method"] == "MoCo")].iloc[0]
    assert shapes["pretrained on"] == "shapes"  # a dataset without a display label


def test_a_table_without_runs_or_paper_numbers_says_so_in_its_columns(records, tmp_path):
    spec = TABLES["table1"]
    pretrain_only = records[records["stage"] == "pretrain"]  # nothing table 1 shows
    reported = _reported(tmp_path, [["cmc", "uniform", "stl10", "top1", 80.0, "Table 1",
                                     "arXiv:2010.02037v1", ""]])
    wide = wide_frame(comparison_frame(pretrain_only, reported, spec), spec)
    assert list(wide.columns) == ["dataset", "pretrained on", "method", "paper (reported)",
                                  "ours (no runs found)"]
    assert list(wide["ours (no runs found)"]) == ["not run"]
    without_numbers = wide_frame(comparison_frame(records, _reported(tmp_path, []), spec), spec)
    assert not any(c.startswith(("Δ", "paper")) for c in without_numbers.columns)
    assert "ours (scale=default)" in without_numbers.columns


def test_method_labels_keep_a_configs_suffix_and_an_unlabelled_models_name():
    from repro.report.tables import method_label

    assert method_label("cmc", "ring (config 3fa9)") == "CMC + Ring (config 3fa9)"
    assert method_label("mymodel", "uniform") == "mymodel"
    assert method_label("ir", "untrained") == "IR, untrained"
    assert method_label("moco", "ring_const") == "MoCo + ring_const"


def test_table_notes_name_the_reported_file_the_sources_and_what_the_paper_measured(records,
                                                                                    tmp_path):
    from repro.report.tables import _notes

    spec = TABLES["table1"]
    reported = _reported(tmp_path, [IR_CIFAR10_PAPER])
    notes = _notes(comparison_frame(records, reported, spec), spec)
    assert notes[-1] == "Sources: Table 1 arXiv:2010.02037v1."
    assert sum("tables/reported/table1_linear_eval.csv; `not transcribed` = the paper reports"
               in n for n in notes) == 1
    empty = _reported(tmp_path, [])
    bare = _notes(comparison_frame(records, empty, spec), spec)
    assert sum(n.startswith("No paper number of these cells is in "
                            "tables/reported/table1_linear_eval.csv") for n in bare) == 1
    assert not any(n.startswith("Sources") or "pretrained on imagenet" in n for n in bare)
    detection = TABLES["table3"]
    det = _notes(comparison_frame(records, empty, detection), detection)
    assert sum("encoders pretrained on imagenet; runs pretrained on other data have none" in n
               for n in det) == 1
    assert sum(n.startswith("The paper measured voc_det on voc2007_test, coco_mask on "
                            "coco2017_val, coco_kpt on coco2017_val; a run on other data")
               for n in det) == 1
    assert sum(n.startswith("task: the paper's task (record `extra.task`)") for n in det) == 1


# ---- the notes' builders and the renderers, on hand-made frames ------------------------------


def test_markdown_document_keeps_cells_verbatim_in_a_pipe_table_and_lists_every_note():
    from repro.report.tables import render_markdown

    wide = pd.DataFrame([["0.50", "a_b"], ["1.0", "—"]], columns=["x_1", "ours ± Δ"])
    md = render_markdown(wide, "T", ["n1", "n2"])
    assert md.startswith("## T\n\n| x_1 ")
    assert md.endswith("|\n\n- n1\n- n2\n")
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 4  # header, rule, two rows: a pipe table
    assert set(table[1]) <= set("|:-")
    assert "| 0.50 " in table[2] and "| 1.0 " in table[3]  # numbers as given, not re-parsed


def test_latex_document_escapes_cells_headers_notes_and_caption_and_closes_the_table():
    wide = pd.DataFrame([["0.50", "a_b 5% {x}"], ["1.0", "—"]], columns=["x_1", "ours ± Δ"])
    tex = render_latex(wide, "Table 3: T_x & y", ["n_1 50%", "n2"])
    assert tex.startswith("% n\\_1 50\\%\n% n2\n\\begin{table}[t]\n")
    assert "\\caption{T\\_x \\& y}" in tex
    assert "a\\_b 5\\% \\{x\\}" in tex and "---" in tex and "—" not in tex
    assert "x\\_1" in tex and "ours $\\pm$ $\\Delta$" in tex
    assert "0.50" in tex and "1.0" in tex  # numbers as given, not re-parsed
    assert tex.endswith("\\end{tabular}\n\\end{table}\n")


def test_write_files_makes_missing_folders_and_a_csv_without_an_index_column(tmp_path):
    from repro.report.tables import write_files

    tidy = pd.DataFrame({"task": ["digits"], "mean": [55.123456]})
    wide = pd.DataFrame([["digits", "55.12"]], columns=["dataset", "ours"])
    paths = write_files(tidy, wide, "T", ["n"], tmp_path / "a" / "b", "stem")
    assert [p.name for p in paths] == ["stem.md", "stem.tex", "stem.csv"]
    assert all(p.is_file() for p in paths)
    assert paths[2].read_text().splitlines() == ["task,mean", "digits,55.1235"]


def _detection_rows(rows):
    return pd.DataFrame(rows, columns=["task", "evaluated_on", "scale", "extra", "pretrained_on"])


def test_detection_budget_notes_name_each_budget_once_per_task_data_and_scale():
    from repro.report.tables import _budget_notes

    full = {"iterations": 20, "architecture": "Mask R-CNN", "batch_size": 4,
            "train_images": 100}
    frame = _detection_rows([
        ("voc_det", "voc2007_test", "paper", {"backend": "torchvision"}, "imagenet"),  # no budget
        ("voc_det", "voc2007_test", "paper", float("nan"), "imagenet"),  # no extra at all
        ("voc_det", "voc2007_test", "paper", full, "imagenet"),
        ("voc_det", "voc2007_test", "paper", {**full, "batch_size": None}, "imagenet"),
        ("voc_det", "voc2007_test", "paper", full, "imagenet"),  # the same budget again
        ("my_task", "", "default", {"iterations": 10}, "shapes"),
    ])
    assert _budget_notes(frame, TABLES["table3"]) == [
        "VOC detection on voc2007_test (scale=paper): Mask R-CNN fine-tuned 20 iterations, "
        "batch 4, 100 training images; Mask R-CNN fine-tuned 20 iterations, 100 training "
        "images.",
        "my_task on my_task (scale=default): fine-tuned 10 iterations.",
    ]


def test_fewshot_in_domain_note_lists_every_source_that_is_its_own_pretraining_data():
    from repro.report.tables import IN_DOMAIN_NOTE, _budget_notes

    frame = pd.DataFrame({"task": ["shapes", "digits", "omniglot", "shapes"],
                          "pretrained_on": ["shapes", "digits", "shapes", "shapes"]})
    assert _budget_notes(frame, TABLES["table2"]) == [f"digits, shapes: {IN_DOMAIN_NOTE}."]
    assert _budget_notes(frame.iloc[2:3], TABLES["table2"]) == []


def _split_frame(rows, with_config=True):
    frame = pd.DataFrame(rows, columns=["task", "pretrained_on", "model", "scale", "sampler",
                                        "_setup", "config"])
    return frame if with_config else frame.drop(columns="config")


def test_config_split_notes_list_at_most_six_differing_settings_per_configuration():
    from repro.report.tables import config_split_notes

    base = {"seed": 0, "pretrain": {"threads": 1, "epochs": 1, "lr": 0.1},
            **{f"k{i}": 0 for i in range(7)}}
    other = {"seed": 1, "pretrain": {"threads": 8, "epochs": 2, "lr": 0.1},
             **{f"k{i}": 1 for i in range(7)}}
    frame = _split_frame([
        ("simclr_data", "shapes", "simclr", "default", "ring (config abcdef)", "abcdef12", base),
        ("simclr_data", "shapes", "simclr", "default", "ring (config 123456)", "12345678", other),
        ("cifar10", "cifar10", "ir", "paper", "uniform (config aaaaaa)", "aaaaaa99", base),
        ("cifar10", "cifar10", "ir", "paper", "uniform (config bbbbbb)", "bbbbbb99", base),
    ])
    notes = config_split_notes(frame)
    # the seed and run-local keys (threads) are not differences; equal settings (lr) neither;
    # of the seven that differ, the first six in sorted order
    assert notes == [
        "SimCLR + Ring on simclr_data (scale=default): records of 2 configurations, shown apart "
        "rather than averaged (config abcdef: k0=0, k1=0, k2=0, k3=0, k4=0, k5=0; "
        "config 123456: k0=1, k1=1, k2=1, k3=1, k4=1, k5=1).",
        "IR on CIFAR10 (scale=paper): records of 2 configurations, shown apart rather than "
        "averaged (configurations not recorded).",
    ]
    unrecorded = config_split_notes(_split_frame(frame.values.tolist(), with_config=False))
    assert [n.split(" (", 1)[0] for n in unrecorded] == ["SimCLR + Ring on simclr_data",
                                                         "IR on CIFAR10"]
    assert all(n.endswith("(configurations not recorded).") for n in unrecorded)


def test_idle_note_names_the_axes_and_labels_the_cells_it_folds():
    from repro.report.tables import _idle_note

    tidy = pd.DataFrame({"model": ["ir", "mymodel", "moco"], "sampler": ["ring", "uniform", "ring"],
                         "metric": ["top1", "top1", "bbox_AP"],
                         "task": ["cifar10", "mydata", "voc_det"], "n_seeds": [0, 0, 2],
                         "paper_status": ["not transcribed"] * 3})
    assert _idle_note(tidy, TABLES["table1"]) == (
        "Not shown: 2 paper cell(s) with neither a transcribed number nor a run in any scale "
        "(model × sampler × dataset): {IR} × {ring} × {CIFAR10}; "
        "{mymodel} × {uniform} × {mydata}.")
    note = _idle_note(tidy, TABLES["table3"])
    assert "(model × sampler × metric × task): " in note
    assert "{IR} × {ring} × {top1} × {CIFAR10}" in note
    assert _idle_note(tidy[tidy["n_seeds"] > 0], TABLES["table1"]) is None


def test_only_linear_evaluation_tables_compare_with_the_untrained_network_and_sources_close():
    from repro.config import UNTRAINED
    from repro.report.tables import _notes

    tidy = pd.DataFrame({"task": ["cifar10"] * 2, "pretrained_on": ["cifar10"] * 2,
                         "model": ["ir"] * 2, "scale": ["default"] * 2,
                         "sampler": [UNTRAINED, "ring"], "metric": ["top1"] * 2,
                         "mean": [20.0, 30.0], "n_seeds": [1, 1],
                         "paper_status": ["no paper cell"] * 2,
                         "paper_source": ["Table 1, b", "Table 1, a"]})
    linear = _notes(tidy, TABLES["table1"])
    assert sum(n.startswith("vs untrained, IR on CIFAR10") for n in linear) == 1
    assert linear[-1] == "Sources: Table 1, a; Table 1, b."
    fewshot = _notes(tidy, TABLES["table2"])
    assert not any(n.startswith("vs untrained") for n in fewshot)
    no_sources = _notes(tidy.drop(columns="paper_source"), TABLES["table1"])
    assert not any(n.startswith("Sources:") for n in no_sources)


def test_reported_rows_that_match_no_run_are_named_with_their_file_line():
    from repro.report.tables import unknown_reported_rows

    table1 = _reported_frame([IR_CIFAR10_PAPER,
                              ["ir", "uniform", "cifar10", "top5", 90.0, "Table 1", "", ""],
                              ["byol", "uniform", "cifar-10", "top1", 1.0, "Table 1", "", ""]])
    found = unknown_reported_rows(table1, TABLES["table1"])
    assert [line.split(": ", 1)[0] for line in found] == [
        "tables/reported/table1_linear_eval.csv line 3",
        "tables/reported/table1_linear_eval.csv line 4",
        "tables/reported/table1_linear_eval.csv line 4"]
    assert "metric 'top5' is none of ['top1']" in found[0]
    assert "model 'byol'" in found[1] and "eval_dataset 'cifar-10'" in found[2]
    # a table without a metrics filter checks its metric order instead
    table3 = _reported_frame([["moco", "ring", "voc_det", "bbox_AP", 50.0, "Table 3", "", ""],
                              ["moco", "ring", "voc_det", "mAP", 50.0, "Table 3", "", ""]])
    found = unknown_reported_rows(table3, TABLES["table3"])
    assert len(found) == 1 and found[0].startswith(
        "tables/reported/table3_detection.csv line 3: metric 'mAP'")


def _reported_frame(rows):
    return pd.DataFrame(rows, columns=list(REPORTED_COLUMNS))


def test_rows_without_a_setup_hash_form_one_setup_named_unknown():
    from repro.report.tables import split_by_setup

    frame = pd.DataFrame({"sampler": ["ring", "ring", "ring", "uniform"],
                          "metric": ["top1", "top1", float("nan"), float("nan")],
                          "setup_hash": ["abcdef123", float("nan"), "abcdef123", "999999"]})
    assert split_by_setup(frame, ["metric"]) == [
        "ring (config abcdef)", "ring (config unknown)", "ring (config abcdef)",
        "uniform (config 999999)"]  # a NaN cell key is a cell too
    assert split_by_setup(frame.drop(columns="setup_hash"), ["metric"]) == list(frame["sampler"])


def test_records_without_extra_or_sampler_parameters_still_select_by_their_datasets():
    from repro.report.tables import _select

    records = pd.DataFrame({"stage": ["linear_eval"] * 2, "metric": ["top1"] * 2,
                            "eval_dataset": [None, "digits_test"], "dataset": ["digits"] * 2,
                            "model": ["ir"] * 2, "sampler": ["ring"] * 2,
                            "scale": ["default"] * 2, "setup_hash": ["abc123"] * 2})
    frame = _select(records, TABLES["table1"])
    assert list(frame["task"]) == ["digits", "digits_test"]
    assert list(frame["pretrained_on"]) == ["digits", "digits"]
    assert list(frame["sampler"]) == ["ring", "ring"]


def test_task_and_data_read_the_task_field_else_the_evaluation_else_the_pretraining_data():
    from repro.report.tables import _extra_field, _task_and_data

    assert _task_and_data("coco2017_val", "imagenet", {"task": "coco_mask"}, "task") == (
        "coco_mask", "coco2017_val")
    assert _task_and_data("", "imagenet", {"task": "voc_det"}, "task") == ("voc_det", "")
    assert _task_and_data("coco2017_val", "imagenet", {}, "task") == ("coco2017_val", "")
    assert _task_and_data(float("nan"), "imagenet", None, "task") == ("imagenet", "")
    assert _task_and_data(None, "imagenet", {"task": "voc_det"}, None) == ("imagenet", "")
    assert _extra_field(None, "task") == "" and _extra_field("task", "task") == ""
    assert _extra_field({"task": None}, "task") == ""


def test_sampler_variants_are_keyed_and_labelled_by_their_ring_parameters_in_sorted_order():
    from repro.report.tables import _params_key, _variant_suffix

    key = _params_key({"name": "ring", "w_u": 0.99, "w_l": 0.9, "schedule": "linear"})
    assert key == '{"schedule": "linear", "w_l": 0.9, "w_u": 0.99}'
    assert _variant_suffix(key) == "schedule=linear, w_l=0.9, w_u=0.99"
    assert _params_key(None) == "" and _variant_suffix("") == ""


def test_flattened_config_keys_are_dotted_paths_and_ranks_put_unknown_values_last():
    from repro.report.tables import _flatten, _rank

    assert _flatten({"pretrain": {"epochX": 1, "lr": {"base": 0.1}}, "seed": 0}) == {
        "pretrain.epochX": 1, "pretrain.lr.base": 0.1, "seed": 0}
    assert _flatten(3) == {"": 3}
    assert _rank("ring", ("uniform", "ring")) == (1, "")
    assert _rank("mochi", ("uniform", "ring")) == (2, "mochi")
