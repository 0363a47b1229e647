"""What the figures show (repro.report.figures), read off the matplotlib objects that the
``plot_*`` functions return, from small record sets built here (no training, no files unless a
test needs them)."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from matplotlib.container import ErrorbarContainer

from repro.report.figures import (FOOTER_PREFIX, config_footer, load_run_specs, make_figures,
                                  plot_anneal_schedules, plot_loss_curves, plot_ring_bounds,
                                  plot_toy, reference_rows, run_settings, schedules_run,
                                  toy_settings)
from repro.report.figures.anneal import PANELS_PER_ROW
from repro.results import load_records, make_record, write_record

LINEAR = {"name": "ring", "schedule": "linear", "w_l_start": 0.0, "anneal_fraction": 0.5}
SPEC = {"model": "ir", "pretrain": {"epochs": 12, "batch_size": 128,
                                    "backbone": {"arch": "resnet18", "width": 0.125}}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _row(stage, model, sampler, value, *, seed=0, metric=None, params=None, scale="default",
         dataset="shapes", extra=None, path=None):
    """One record row as :func:`repro.results.load_records` gives it."""
    metric = metric or {"linear_eval": "top1", "pretrain": "final_loss"}[stage]
    params = params or {"name": "uniform" if sampler in ("uniform", "untrained") else sampler}
    path = path or f"results/{stage}/{dataset}/{model}-{sampler}-{scale}/seed{seed}/result.json"
    return {"stage": stage, "model": model, "sampler": sampler, "sampler_params": params,
            "dataset": dataset, "eval_dataset": dataset, "seed": seed, "metric": metric,
            "value": value, "ci95": None, "scale": scale, "protocol": None,
            "extra": extra if extra is not None else {"epochs": 30 if stage == "linear_eval"
                                                      else 12},
            "path": path}


def _ring_sweep(model="ir", values=((0.5, 41.4), (0.9, 40.2)), seeds=(0,)):
    """Linear-eval rows of two linearly annealed rings of ``model`` that differ in ``w_l``."""
    return [_row("linear_eval", model, f"ring_{w_l:g}", value + seed, seed=seed,
                 params={**LINEAR, "w_l": w_l, "w_u": 0.99})
            for w_l, value in values for seed in seeds]


def _references(model="ir", uniform=62.0, untrained=57.0):
    return [_row("linear_eval", model, "uniform", uniform),
            _row("linear_eval", model, "untrained", untrained)]


def _frame(rows):
    return pd.DataFrame(rows)


def _panels(fig):
    return [ax for ax in fig.axes if ax.axison and ax.get_title()]


def _line_labels(ax):
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def _footer(fig):
    found = [t.get_text() for t in fig.texts if t.get_text().startswith(FOOTER_PREFIX)]
    assert len(found) == 1, [t.get_text() for t in fig.texts]
    return found[0]


# ---- ring bounds ---------------------------------------------------------------------------


def test_ring_bounds_draws_uniform_and_untrained_reference_lines_at_their_means():
    fig = plot_ring_bounds(_frame(_ring_sweep() + _references()))
    (ax,) = _panels(fig)
    labels = _line_labels(ax)
    assert "uniform (NCE): 62.0 (n=1)" in labels
    assert "untrained (random init): 57.0 (n=1)" in labels
    heights = {line.get_label().split(":")[0]: line.get_ydata()[0] for line in ax.get_lines()
               if not line.get_label().startswith("_")}
    assert heights == {"uniform (NCE)": 62.0, "untrained (random init)": 57.0}
    assert ax.get_legend() is not None


def test_ring_bounds_annotates_mean_and_n_on_every_point_on_a_readable_axis():
    fig = plot_ring_bounds(_frame(_ring_sweep() + _references()))
    (ax,) = _panels(fig)
    assert {"41.4\nn=1", "40.2\nn=1"} <= set(_texts(ax))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(0.5, 0.99)\nring_0.5",
                                                            "(0.9, 0.99)\nring_0.9"]
    low, high = ax.get_ylim()
    assert low < 40.2 and high > 62.0 and high - low < 40  # not a 0-100 or shared scale


def test_ring_bounds_error_bars_only_with_several_seeds():
    one = _panels(plot_ring_bounds(_frame(_ring_sweep())))[0]
    assert not any(c.has_yerr for c in one.containers if isinstance(c, ErrorbarContainer))
    two = _panels(plot_ring_bounds(_frame(_ring_sweep(seeds=(0, 1)))))[0]
    bars = [c for c in two.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2 and all(c.has_yerr for c in bars)
    assert "41.9\nn=2" in _texts(two)


def test_ring_bounds_says_which_reference_runs_are_missing_and_never_borrows_another_models():
    rows = _ring_sweep() + _references(model="moco")  # references of another model only
    (ax,) = _panels(plot_ring_bounds(_frame(rows)))
    assert _line_labels(ax) == []
    assert "no uniform / untrained run in the records" in _texts(ax)


def test_untrained_runs_are_the_random_init_baseline_not_uniform_references():
    refs = reference_rows(_frame(_ring_sweep() + _references()))
    assert dict(zip(refs["sampler"], refs["reference"])) == {"uniform": "uniform",
                                                            "untrained": "untrained"}


# ---- annealing schedules -------------------------------------------------------------------


def _schedule_sweep(model="ir", dataset="shapes"):
    const = {"name": "ring", "schedule": "constant", "w_l": 0.9, "w_u": 0.99}
    rows = [_row("linear_eval", model, "ring", 40.0, dataset=dataset,
                 params={**LINEAR, "w_l": 0.9, "w_u": 0.99}),
            _row("linear_eval", model, "ring_const", 22.0, params=const, dataset=dataset)]
    rows += [_row("pretrain", model, s, loss, params={**p, "sampler": "ring"}, dataset=dataset)
             for s, loss, p in (("ring", 4.0, {**LINEAR, "w_l": 0.9, "w_u": 0.99}),
                                ("ring_const", 3.5, const))]
    return rows + [{**r, "dataset": dataset, "eval_dataset": dataset}
                   for r in _references(model)]


def test_anneal_panels_of_many_models_wrap_each_metric_onto_rows_of_its_own():
    """The study's 7 (model, data) pairs: each metric's 7 panels wrap after PANELS_PER_ROW,
    the accuracy rows above the loss rows, and no panel is drawn twice or dropped."""
    pairs = [(m, d) for d in ("digits", "shapes") for m in ("ir", "cmc", "moco", "simclr")
             if (m, d) != ("cmc", "digits")]
    fig = plot_anneal_schedules(_frame([r for m, d in pairs for r in _schedule_sweep(m, d)]))
    grid = fig.axes[0].get_subplotspec().get_gridspec()
    assert grid.ncols == 1 + PANELS_PER_ROW and grid.nrows == 2 * 2  # ceil(7 / 4) per metric
    rows = {}
    for label in ("linear-eval top-1 (%)", "final pretraining loss"):
        axes = [ax for ax in fig.axes if ax.get_ylabel() == label and ax.axison]
        assert len(axes) == 7 and len({ax.get_title() for ax in axes}) == 7
        assert all(ax.get_subplotspec().colspan.start >= 1 for ax in axes)
        rows[label] = {ax.get_subplotspec().rowspan.start for ax in axes}
    assert rows == {"linear-eval top-1 (%)": {0, 1}, "final pretraining loss": {2, 3}}
    assert sum(ax.axison for ax in fig.axes) == 1 + 14  # the schedules and 14 panels


@pytest.mark.parametrize("pairs", [1, 7])
def test_anneal_suptitle_overlaps_no_panel_title(pairs):
    """The figure's title sits above the top row's panel titles, for one row and for four."""
    chosen = [(m, d) for d in ("digits", "shapes") for m in ("ir", "cmc", "moco", "simclr")
              if (m, d) != ("cmc", "digits")][:pairs]
    fig = plot_anneal_schedules(_frame([r for m, d in chosen for r in _schedule_sweep(m, d)]))
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes
              if ax.axison and ax.get_title()]
    assert titles and all(top.y0 >= t.y1 for t in titles)


def test_anneal_figure_draws_the_schedules_not_run_dashed_grey_and_says_so():
    records = _frame(_schedule_sweep())
    assert schedules_run(records) == ["constant", "linear"]
    fig = plot_anneal_schedules(records)
    left = fig.axes[0]
    styles = {line.get_label(): line.get_linestyle() for line in left.get_lines()
              if not line.get_label().startswith("_")}
    assert styles == {"constant (run)": "-", "linear (run)": "-", "step (not run)": "--",
                      "exponential (not run)": "--"}


def test_anneal_accuracy_bars_carry_n_and_the_models_reference_lines():
    fig = plot_anneal_schedules(_frame(_schedule_sweep()))
    accuracy = [ax for ax in fig.axes if ax.get_ylabel() == "linear-eval top-1 (%)"]
    loss = [ax for ax in fig.axes if ax.get_ylabel() == "final pretraining loss"]
    assert len(accuracy) == len(loss) == 1
    (acc,), (pre,) = accuracy, loss
    assert {"40.0\nn=1", "22.0\nn=1"} <= set(_texts(acc))
    # each schedule with the sampler labels that ran it
    assert [t.get_text() for t in acc.get_xticklabels()] == ["linear\nring",
                                                             "constant\nring_const"]
    assert _line_labels(acc) == ["uniform (NCE): 62.0 (n=1)",
                                 "untrained (random init): 57.0 (n=1)"]
    assert {"4.000\nn=1", "3.500\nn=1"} <= set(_texts(pre))
    assert _line_labels(pre) == []  # loss levels of other samplers are not comparable


# ---- Gaussian toy --------------------------------------------------------------------------


def _toy_estimates(dim=4, rho=0.9, K=16, draws=3):
    true_mi = -0.5 * dim * math.log(1 - rho**2)
    rows = [(s, wl, wu, seed, 2.0 + 0.01 * seed) for seed in range(draws)
            for s, wl, wu in (("uniform", 0.0, 1.0), ("ring", 0.9, 0.99))]
    frame = pd.DataFrame(rows, columns=["sampler", "w_l", "w_u", "seed", "estimate"])
    return frame.assign(true_mi=true_mi, log_k1=math.log(K + 1))


def _toy_record(extra=None):
    return pd.DataFrame([{"stage": "toy", "dataset": "gaussian_d4_rho0.9", "scale": "default",
                          "extra": extra or {}}])


def test_toy_title_states_d_rho_k_and_the_true_mi_and_draws_the_log_k1_ceiling():
    fig = plot_toy(_toy_estimates(), _toy_record())
    (ax,) = fig.axes
    title = ax.get_title()
    for part in ("d=4", "rho=0.9", "K=16 negatives", "3 draws", "true MI = 3.321 nats",
                 "n not recorded"):
        assert part in title, title
    ceiling = [line for line in ax.get_lines() if line.get_label().startswith("log(K+1)")]
    assert len(ceiling) == 1 and ceiling[0].get_ydata()[0] == pytest.approx(math.log(17))
    assert "ceiling of the InfoNCE bound" in ceiling[0].get_label()
    assert "scale=default" in _footer(fig)


def test_toy_settings_take_n_from_the_record_when_it_lists_it():
    settings = toy_settings(_toy_estimates(K=8), _toy_record({"n": 512}))
    assert (settings["dim"], settings["rho"], settings["n"], settings["K"]) == (4, 0.9, 512, 8)
    assert "n=512 pairs" in plot_toy(_toy_estimates(), _toy_record({"n": 512})).axes[0].get_title()


def _sphere_estimates():
    from repro.toy import run_sweep

    return run_sweep(n=48, seeds=3, dim=8, family="sphere", kappa=5.0, rings=((0.5, 0.99),),
                     estimators={"hcl": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}})


def test_sphere_toy_figure_names_each_method_from_the_registry_and_reads_its_own_record():
    # both toys write stage "toy" records: the sphere figure must take kappa from its own
    records = pd.concat([_toy_record({"n": 512}).assign(model="gaussian_optimal_critic"),
                         pd.DataFrame([{"stage": "toy", "model": "sphere_cosine_critic",
                                        "dataset": "sphere_d8_kappa5", "scale": "default",
                                        "extra": {"n": 48}}])])
    fig = plot_toy(_sphere_estimates(), records)
    (ax,) = fig.axes
    title = ax.get_title()
    for part in ("vMF", "d=8", "kappa=5 (t=0.2)", "n=48 pairs", "K=16 negatives", "3 draws"):
        assert part in title, title
    ticks = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    assert ticks == ["NCE", "Ring [0.5, 0.99]", "HCL"]
    assert "(tau_plus=0.1, beta=1)" in ax.get_xticklabels()[2].get_text()
    assert toy_settings(_toy_estimates(), records)["n"] == 512  # the Gaussian one keeps its own


# ---- the config footer ---------------------------------------------------------------------


def test_footer_gives_scale_pretraining_settings_seeds_and_linear_eval_epochs():
    records = _frame(_schedule_sweep())
    settings = run_settings(records, {p: SPEC for p in records["path"]})
    footer = config_footer(records, settings)
    assert footer == (f"{FOOTER_PREFIX}scale=default | pretrain on shapes: resnet18 width "
                      "0.125, 12 epochs, batch 128 | seeds 0 (n=1 per run) | linear eval 30 "
                      "epochs")
    # without the run specs, what the records say (epochs), never made-up settings
    assert "pretrain on shapes: 12 epochs |" in config_footer(records, run_settings(records))


def test_footer_has_one_line_per_scale_and_spans_settings_that_differ():
    rows = [_row("pretrain", "ir", "uniform", 5.0, scale="paper", extra={"epochs": e},
                 path=f"p{e}") for e in (100, 200)]
    rows += [_row("pretrain", "ir", "uniform", 5.0, seed=s) for s in (0, 1)]
    footer = config_footer(_frame(rows), run_settings(_frame(rows)))
    assert footer.splitlines()[0] == (f"{FOOTER_PREFIX}scale=default | pretrain on shapes: "
                                      "12 epochs | seeds 0,1 (n=2 per run)")
    assert "scale=paper | pretrain on shapes: 100-200 epochs" in footer.splitlines()[1]


def test_every_figure_has_a_footer():
    records = _frame(_schedule_sweep() + _ring_sweep())
    figures = [plot_ring_bounds(records), plot_anneal_schedules(records),
               plot_loss_curves(records), plot_toy(_toy_estimates(), _toy_record()),
               plot_ring_bounds(records.iloc[0:0])]
    for fig in figures:
        assert "scale=default" in _footer(fig) or _footer(fig).endswith("no records")


def test_run_specs_come_from_the_checkpoint_beside_each_pretrain_record(tmp_path):
    record = make_record(stage="pretrain", model="ir", sampler="uniform", dataset="shapes",
                         seed=0, metrics={"final_loss": 5.0}, scale="default", config={},
                         wall_time_s=1.0, extra={"epochs": 12})
    for name in ("a", "b"):
        write_record(tmp_path / name / "result.json", record)
    torch.save({"config": SPEC, "model": {}}, tmp_path / "a" / "checkpoint.pt")
    (tmp_path / "b" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    records = load_records(tmp_path)
    specs = load_run_specs(records)
    assert list(specs) == [str(tmp_path / "a" / "result.json")]
    settings = run_settings(records, specs)
    assert sorted(settings["batch_size"].dropna()) == [128]
    assert "resnet18 width 0.125, 12 epochs, batch 128" in config_footer(records, settings)
    fig = plot_loss_curves(records, settings)  # the figure make_figures saves, as an object
    assert "resnet18 width 0.125, 12 epochs, batch 128" in _footer(fig)
    paths = make_figures(tmp_path, tmp_path / "out", only=["loss_curves"])
    assert sorted(p.name for p in paths) == ["loss_curves.pdf", "loss_curves.png"]
    png = plt.imread(next(p for p in paths if p.suffix == ".png"))
    assert png[..., :3].std() > 0.01  # the saved figure is not a blank page


def test_run_settings_come_from_the_record_config_when_there_is_no_checkpoint(tmp_path):
    from repro.report.figures import load_run_specs
    from repro.results import load_records, make_record, write_record

    spec = {"model": "ir", "seed": 0,
            "pretrain": {"backbone": {"arch": "resnet18", "width": 0.25}, "epochs": 3,
                         "batch_size": 32}}
    path = tmp_path / "pretrain" / "result.json"
    write_record(path, make_record(stage="pretrain", model="ir", sampler="uniform",
                                   dataset="shapes", seed=0, metrics={"final_loss": 1.0},
                                   scale="default", config=spec, wall_time_s=1.0))
    assert not (path.parent / "checkpoint.pt").exists()
    assert load_run_specs(load_records(tmp_path)) == {str(path): spec}


@pytest.mark.parametrize("text", ["epoch,step,loss\n1,\"2,3\n", "", "a,b\n1,2\n"])
def test_a_malformed_log_is_named_and_only_its_curve_left_out(tmp_path, capsys, text):
    from repro.report.figures import load_loss_logs
    from repro.results import load_records, make_record, write_record

    for seed in range(2):
        record = make_record(stage="pretrain", model="ir", sampler="ring", dataset="digits",
                             seed=seed, metrics={"final_loss": 1.0}, scale="default",
                             config={"seed": seed}, wall_time_s=1.0)
        write_record(tmp_path / f"seed{seed}" / "result.json", record)
    (tmp_path / "seed0" / "log.csv").write_text("epoch,step,loss,w_l,lr,time_s\n"
                                                "0,1,5.0,0.0,0.1,1.0\n0,2,4.0,0.1,0.1,2.0\n")
    (tmp_path / "seed1" / "log.csv").write_text(text)
    logs = load_loss_logs(load_records(tmp_path))
    assert list(logs["loss"]) == [5.0, 4.0] and set(logs["seed"]) == {0}
    err = capsys.readouterr().err
    assert "seed1/log.csv" in err and "its curve is left out" in err
