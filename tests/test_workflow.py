"""The Snakemake workflow: config validation and the DAG, with the real Snakemake."""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _run_shrunk(tmp_path, config, name):
    """Run the whole workflow (2 cores) on ``config`` with its tables and figures under
    ``tmp_path``; returns the config file written."""
    import yaml

    config["report"].update(tables_dir=str(tmp_path / "tables"),
                            figures_dir=str(tmp_path / "figures"))
    configfile = tmp_path / name
    configfile.write_text(yaml.safe_dump(config))
    # a whole (shrunken) workflow: generous, so a loaded machine is slow rather than red
    _snakemake("--cores", "2", "--configfile", str(configfile), timeout=1200)
    return configfile


def _snakemake(*args, cwd=ROOT, check=True, timeout=300):
    proc = subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


@pytest.mark.slow
def test_default_dry_run_lists_the_whole_dag_of_182_jobs(tmp_path):
    proc = _snakemake("-n", "--config", f"results_dir={tmp_path}")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    # (dataset, model) pairs: 4 models on shapes + 3 on digits (CMC needs colour) = 7;
    # x 2 samplers x 3 seeds pretrained and linear-evaluated; 7 x 3 untrained networks, each
    # built and evaluated in one job; few-shot of every pretrained run on the other dataset;
    # detection: 2 runs x 3 tasks x 3 seeds on shapes encoders; the claims table and the
    # methods table (Table 4) and figure; the Gaussian and the sphere toy and their figures;
    # the cost table (benchmark files); the false negatives' table and figure
    assert {k: int(counts.get(k, 0)) for k in (
        "pretrain", "untrained", "linear_eval", "linear_eval_untrained", "fewshot",
        "detection", "toy", "toy_sphere", "figure_toy_sphere", "claims", "table4_methods",
        "figure_methods", "cost", "false_negatives", "total")} == {
        "pretrain": 42, "untrained": 0, "linear_eval": 42, "linear_eval_untrained": 21,
        "fewshot": 42, "detection": 18, "toy": 1, "toy_sphere": 1, "figure_toy_sphere": 1,
        "claims": 1, "table4_methods": 1, "figure_methods": 1, "cost": 1,
        "false_negatives": 1, "total": 182}


@pytest.mark.slow
def test_bad_config_is_refused_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("toy: {rho: 1.5}\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "rho" in (proc.stdout + proc.stderr)


@pytest.mark.slow
def test_misspelt_key_and_inverted_ring_stop_the_dry_run_in_a_few_lines(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1]\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "did you mean 'seeds'?" in output
    assert len(output.splitlines()) < 15  # no schema dump
    bad.write_text("samplers:\n  ring: {name: ring, w_l: 0.99, w_u: 0.9}\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0 and "samplers.ring: the ring needs w_l < w_u" in (
        proc.stdout + proc.stderr)


@pytest.mark.slow
def test_dry_run_names_a_missing_dataset_and_how_to_get_it_before_any_job(tmp_path):
    config = tmp_path / "cifar.yaml"
    config.write_text(f"pretrain: {{datasets: [cifar10], data_root: {tmp_path / 'data'}}}\n")
    proc = _snakemake("-n", "--configfile", str(config), "--config",
                      f"results_dir={tmp_path / 'results'}")
    output = proc.stdout + proc.stderr
    assert f"no folder {tmp_path / 'data' / 'cifar-10-batches-py'}" in output
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in output
    default = _snakemake("-n", "--config", f"results_dir={tmp_path / 'default'}")
    assert "WARNING: dataset" not in default.stdout + default.stderr


@pytest.mark.slow
@pytest.mark.parametrize("target, reason", [
    # CMC is pretrained on shapes only; this few-shot path is episodes of shapes from an
    # encoder pretrained on digits (fewshot/{episodes}/{pretrained on}/...)
    ("fewshot/shapes/digits/cmc-uniform/seed0/result.json", "models.cmc.datasets"),
    ("pretrain/digits/cmc-ring/seed0/result.json", "models.cmc.datasets"),
    ("linear_eval/digits/cmc-untrained/seed0/result.json", "models.cmc.datasets"),
    ("pretrain/cifar10/ir-uniform/seed0/result.json", "pretrain.datasets"),
])
def test_a_target_naming_a_run_the_config_excludes_is_refused_not_trained(tmp_path, target,
                                                                          reason):
    proc = _snakemake("-n", f"{tmp_path}/{target}", "--config", f"results_dir={tmp_path}",
                      check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert "the config does not pretrain" in output and reason in output
    assert "snakemake -n` without targets lists the runs" in output


@pytest.mark.slow
def test_dry_run_names_missing_few_shot_sources_and_detection_data(tmp_path):
    config = tmp_path / "transfer.yaml"
    config.write_text(
        f"fewshot: {{sources: [shapes, omniglot, fungi], data_dir: {tmp_path / 'tfds'}, "
        f"folder_root: {tmp_path / 'md'}}}\n"
        f"detection: {{data: real, coco_root: {tmp_path / 'coco'}, "
        f"voc_root: {tmp_path / 'voc'}, tasks: [coco_mask, coco_kpt]}}\n")
    (tmp_path / "md" / "fungi").mkdir(parents=True)
    proc = _snakemake("-n", "--configfile", str(config), "--config",
                      f"results_dir={tmp_path / 'results'}")
    output = proc.stdout + proc.stderr
    assert f"'omniglot' is not prepared in {tmp_path / 'tfds'}" in output
    assert "tfds build omniglot" in output
    assert "source 'fungi'" not in output and "source 'shapes'" not in output  # both there
    assert f"detection data for coco_mask, coco_kpt: no folder {tmp_path / 'coco'}" in output
    assert "voc_det" not in output.split("WARNING")[-1]  # not a configured task


def _fewshot_jobs(tmp_path, fewshot: str, datasets: str = "[shapes, digits]"):
    """``(source, pretraining dataset)`` of every few-shot job a dry run plans for a one-run
    grid (moco-uniform) with ``fewshot: {fewshot}``, and the dry run's output."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "fewshot.yaml"
    config.write_text(
        "models: {moco: {queue_size: 64}}\nsamplers: {uniform: {name: uniform}}\n"
        f"pretrain: {{datasets: {datasets}}}\nlinear_eval: {{untrained: false}}\n"
        "detection: {tasks: [], runs: null}\n"
        f"fewshot: {{runs: null, datasets: {datasets}, {fewshot}}}\n")
    results = tmp_path / "results"
    proc = _snakemake("-n", "--configfile", str(config), "--config", f"results_dir={results}")
    jobs = re.findall(rf"output: {re.escape(str(results))}/fewshot/(\w+)/(\w+)/moco-uniform/"
                      r"seed0/result\.json", proc.stdout)
    return sorted(jobs), proc.stdout + proc.stderr


@pytest.mark.slow
def test_fewshot_in_domain_false_plans_exactly_the_cross_dataset_pairs(tmp_path):
    cross, _ = _fewshot_jobs(tmp_path / "cross", "sources: [shapes, digits], in_domain: false")
    assert cross == [("digits", "shapes"), ("shapes", "digits")]  # (source, pretrained on)
    every, _ = _fewshot_jobs(tmp_path / "every", "sources: [shapes, digits], in_domain: true")
    assert every == [("digits", "digits"), ("digits", "shapes"), ("shapes", "digits"),
                     ("shapes", "shapes")]
    none, output = _fewshot_jobs(tmp_path / "none", "sources: [shapes], in_domain: false",
                                 datasets="[shapes]")
    assert none == [] and "fewshot.in_domain is false" in output


@pytest.mark.slow
def test_a_configfile_replaces_the_default_model_and_sampler_grids(tmp_path):
    """Snakemake merges --configfile into the default key by key; the model and sampler grids
    must be replaced instead, or the paper run would inherit the default's extra samplers."""
    proc = _snakemake("-n", "--configfile", "config/paper.yaml", "--config",
                      f"results_dir={tmp_path}")
    assert "ring_50_99" not in proc.stdout
    assert "cifar10/moco-ring/seed2/" in proc.stdout and "imagenet/cmc-uniform" in proc.stdout


@pytest.mark.slow
def test_toy_rules_run_and_write_records(tmp_path):
    import pandas as pd

    out = tmp_path / "toy"
    _snakemake("--cores", "1", "--config", f"results_dir={tmp_path}",
               "--", f"{tmp_path}/toy/result.json", f"{tmp_path}/toy/sphere/result.json")
    assert (out / "result.json").exists() and (out / "estimates.csv").exists()
    # the sphere toy estimates the default's DCL and HCL blocks beside NCE and the rings
    sphere = pd.read_csv(out / "sphere" / "estimates.csv")
    assert set(sphere["estimator"]) == {"nce", "dcl", "hcl"}


@pytest.mark.slow
def test_a_config_without_the_sphere_toy_plans_neither_it_nor_its_figure(tmp_path):
    config = tmp_path / "nosphere.yaml"
    config.write_text("toy: {sphere: null}\n")
    proc = _snakemake("-n", "--configfile", str(config), "--config", f"results_dir={tmp_path}")
    assert "toy_sphere" not in proc.stdout and "figure_toy_bias_variance" in proc.stdout


@pytest.mark.slow
def test_a_toy_estimator_the_registry_refuses_stops_the_dry_run_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("toy: {sphere: {dim: 8, kappa: 5, estimators: {hcl: {name: hard, "
                   "beta: 1.0}}}}\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "toy.sphere.estimators.hcl: estimator 'hard' takes exactly the options" in (
        proc.stdout + proc.stderr)


@pytest.mark.slow
def test_default_workflow_end_to_end_writes_every_table_and_figure(tmp_path):
    """`snakemake --cores all` on a shrunken default: every stage runs for real (pretraining,
    linear eval, few-shot, detection, report), and the tables hold our numbers."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    config["seeds"] = [0]
    config["models"] = {"moco": config["models"]["moco"], "ir": config["models"]["ir"]}
    config["samplers"] = {k: config["samplers"][k] for k in ("uniform", "ring")}
    config["pretrain"].update(epochs=1, batch_size=64, subset=256, per_dataset={})
    for options in config["pretrain"]["per_model"].values():
        options.pop("epochs", None)  # one epoch for every model (MoCo's default is 40)
    config["linear_eval"].update(epochs=3)
    config["fewshot"].update(episodes=3, max_per_class=10)
    config["detection"].update(tasks=["coco_mask"], iterations=2, runs=["moco-ring"],
                               generated={"train": 4, "val": 2, "size": 64})
    configfile = _run_shrunk(tmp_path, config, "tiny.yaml")

    results = tmp_path / "results"
    # 2 datasets x 2 models x 2 samplers, plus each model untrained (linear_eval.untrained:
    # built, saved beside its record and evaluated in one job)
    assert config["pretrain"]["datasets"] == ["shapes", "digits"]
    assert len(list((results / "pretrain").glob("*/*/seed0/checkpoint.pt"))) == 8
    assert len(list((results / "linear_eval").glob("*/*/seed0/result.json"))) == 12
    assert len(list((results / "linear_eval").glob("*/*-untrained/seed0/checkpoint.pt"))) == 4
    # few-shot: each pretrained encoder on the other dataset only (fewshot.in_domain: false)
    fewshot = sorted(p.relative_to(results / "fewshot").parts[:2]
                     for p in (results / "fewshot").rglob("result.json"))
    assert fewshot == [("digits", "shapes")] * 4 + [("shapes", "digits")] * 4
    assert len(list((results / "detection").rglob("result.json"))) == 1
    # detection.backend: auto fine-tunes with detectron2 where `make install` installed it
    from transfer.detection.train import detectron2_available

    detection = json.loads(next((results / "detection").rglob("result.json")).read_text())
    assert detection["extra"]["backend"] == ("detectron2" if detectron2_available()
                                             else "torchvision")
    table1 = (tmp_path / "tables" / "table1_linear_eval.md").read_text()
    assert "MoCo + Ring" in table1 and "IR" in table1 and "(n=1)" in table1
    assert "MoCo, untrained" in table1
    claims = (tmp_path / "tables" / "claims.md").read_text()
    assert "inconclusive" in claims and "n=1" in claims  # one seed: no interval, no verdict
    for stem in ("table2_fewshot", "table3_detection", "table4_methods"):
        for ext in ("md", "tex", "csv"):
            assert (tmp_path / "tables" / f"{stem}.{ext}").stat().st_size > 0
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"loss_curves.png", "toy_bias_variance.pdf", "toy_sphere.png",
            "anneal_schedules.png", "methods.png"} <= figures
    # the cost table: a row per stage and method from Snakemake's benchmark files
    cost = pd.read_csv(tmp_path / "tables" / "cost.csv")
    assert set(cost["stage"]) == {"pretrain", "linear_eval", "fewshot", "detection"}
    assert (cost["wall_s"] > 0).all() and (cost["peak_rss_mb"] > 0).all()
    # false negatives: every linear-eval run counted them; over the whole pool of the other
    # training images (every image an anchor below 2,000) the same-class share is the label
    # base rate, whatever the model, sampler or seed
    import torch

    from repro.data import build_dataset
    from repro.false_negatives import base_rate

    false_neg = pd.read_csv(tmp_path / "tables" / "false_negatives.csv")
    whole = false_neg[false_neg["probe"] == "whole pool (uniform)"]
    assert set(zip(whole["dataset"], whole["model"], whole["method"])) == {
        (d, m, s) for d in ("shapes", "digits") for m in ("moco", "ir")
        for s in ("uniform", "ring", "untrained")}
    for dataset, rows in whole.groupby("dataset"):
        labels = torch.as_tensor(build_dataset(dataset, None, "train").targets)
        assert rows["mean"].tolist() == pytest.approx([100 * base_rate(labels)] * len(rows),
                                                      abs=1e-3)
    assert (tmp_path / "figures" / "false_negatives.png").stat().st_size > 0
    # Snakemake's own report: one page with the workflow description and every table and
    # figure (the queue ablation's only where a config runs it), each with its caption
    from repro.report.figures import FIGURES

    report = tmp_path / "report.zip"
    _snakemake("--report", str(report), "--configfile", str(configfile))
    names = zipfile.ZipFile(report).namelist()
    inside = {Path(n).name for n in names}
    assert {f"{t}.csv" for t in ("table1_linear_eval", "table2_fewshot", "table3_detection",
                                 "claims", "table4_methods", "cost", "false_negatives")
            } <= inside, sorted(inside)
    assert {f"{f}.png" for f in FIGURES if not f.endswith("_ablation")} <= inside, sorted(inside)
    page = "".join(zipfile.ZipFile(report).read(n).decode("utf-8", "replace")
                   for n in names if n.endswith((".html", ".js", ".json")))
    # captions are rendered (the reST and its Jinja: the run's scale is filled in)
    assert "linear evaluation top-1" in page and "<strong>default</strong>" in page

    # Nothing left to do: a second run is a no-op (outputs are complete and up to date), also
    # after changing only where and how runs execute (threads, data loader workers).
    proc = _snakemake("-n", "--configfile", str(configfile))
    assert "Nothing to be done" in proc.stdout + proc.stderr
    config["pretrain"].update(threads=2, num_workers=1)
    configfile.write_text(yaml.safe_dump(config))
    proc = _snakemake("-n", "--configfile", str(configfile))
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_paper_evaluation_jobs_hold_a_gpu_resource_and_default_ones_none(tmp_path):
    def gpu_of(stdout, rule):
        blocks = [b for b in stdout.split("\nrule ") if b.startswith(f"{rule}:")]
        assert blocks, f"no {rule} job planned"
        return {line.split("gpu=")[1].split(",")[0] for b in blocks for line in b.splitlines()
                if "resources:" in line and "gpu=" in line} or {"0"}

    paper = _snakemake("-n", "--configfile", "config/paper.yaml", "--config",
                       f"results_dir={tmp_path / 'paper'}").stdout
    default = _snakemake("-n", "--config", f"results_dir={tmp_path / 'default'}").stdout
    for rule in ("linear_eval", "fewshot"):
        assert gpu_of(paper, rule) == {"1"} and gpu_of(default, rule) == {"0"}


@pytest.mark.parametrize("configfile, pretrain_runs, ablations", [
    # 4 samplers x 7 (dataset, model) pairs x 3 seeds: the default's 42 and 42 ablation runs
    ("config/ablations.yaml", 84, set()),
    # 4 samplers x 7 pairs x 5 seeds, and MoCo's 2 queue-ablation labels x 2 datasets x 5
    ("config/study.yaml", 160, {"queue_ablation"}),
    # (6 methods with MoCo + 5 with SimCLR: MoCHi needs a queue) x 2 datasets x 3 seeds: the
    # default's 24 and 42 new runs
    ("config/hardneg.yaml", 66, set()),
    # the study's 160 and 3 bank-momentum-0 labels x 3 memory-bank (dataset, model) pairs x 5
    ("config/study.yaml config/bank_momentum.yaml", 205,
     {"queue_ablation", "bank_momentum_ablation"}),
])
@pytest.mark.slow
def test_ablations_and_study_configs_extend_the_default_grid(tmp_path, configfile, pretrain_runs,
                                                             ablations):
    proc = _snakemake("-n", "--configfile", *configfile.split(), "--config",
                      f"results_dir={tmp_path}")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert int(counts["pretrain"]) == pretrain_runs
    # a model-option ablation's table is planned where a sampler label sets its option
    assert {rule for rule in counts if rule.endswith("_ablation")} == ablations


@pytest.mark.slow
def test_released_recipe_runs_end_to_end_on_the_offline_data(tmp_path):
    """config/released_default.yaml (the authors' recipe, CPU-sized), shrunk: every switch it
    sets reaches the runs, the records say `released`, and the tables name the recipe."""
    import json

    import torch
    import yaml

    config = yaml.safe_load((ROOT / "config" / "released_default.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    config["seeds"] = [0]
    # one dataset: the switches are per model and sampler (the augmented linear evaluation
    # encodes the whole train split each epoch, the suite's costliest jobs)
    config["pretrain"].update(datasets=["digits"], epochs=1, subset=64, batch_size=32,
                              per_dataset={})
    config["linear_eval"].update(epochs=1)
    _run_shrunk(tmp_path, config, "released_tiny.yaml")

    results = tmp_path / "results"
    evaluated = sorted((results / "linear_eval").rglob("result.json"))
    # (ir, moco, simclr) x (uniform, ring, untrained)
    assert len(evaluated) == 3 * 3
    for path in evaluated:
        record = json.loads(path.read_text())
        assert record["recipe"] == "released"
        assert record["extra"]["protocol"] == "augmented"
    ring = torch.load(results / "pretrain" / "digits" / "moco-ring" / "seed0" / "checkpoint.pt",
                      weights_only=False)["config"]
    assert ring["model_options"]["queue_size"] == 1024
    assert ring["sampler"]["w_u_rule"] == "scaled" and ring["pretrain"]["image_size"] == 64
    ir = torch.load(results / "pretrain" / "digits" / "ir-uniform" / "seed0" / "checkpoint.pt",
                    weights_only=False)
    assert any(k.startswith("head.2.") for k in ir["model"])  # the MLP head's second layer
    table1 = (tmp_path / "tables" / "table1_linear_eval.md").read_text()
    assert "recipe released" in table1
    queue = (tmp_path / "tables" / "queue_ablation.md").read_text()
    assert "ring [0.9, 0.99], constant at queue 1024 − uniform at 64" in queue


@pytest.mark.slow
def test_a_results_dir_with_a_space_and_a_trailing_slash_works_as_typed(tmp_path):
    results = tmp_path / "my runs"
    _snakemake("--cores", "1", f"{results}/toy/result.json", "--config",
               f"results_dir={results}/")
    assert (results / "toy" / "result.json").exists()
    # nothing stray where an unquoted path would have split ("my" beside "my runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my runs"]


@pytest.mark.slow
@pytest.mark.parametrize("value", ['""', '" "'])
def test_an_empty_results_dir_is_refused_before_planning_anything(tmp_path, value):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"results_dir: {value}\n")
    proc = _snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0 and "results_dir" in proc.stdout + proc.stderr
    assert "/pretrain/" not in proc.stdout


@pytest.mark.slow
def test_a_nested_config_override_on_the_command_line_keeps_its_numbers(tmp_path):
    proc = _snakemake("-n", "-p", "--config", 'pretrain={"temperature": 0.3, "lr": 0.05}',
                      f"results_dir={tmp_path}")
    specs = re.findall(r"--spec-json '(\{.*?\})'", proc.stdout)
    assert specs and all('"temperature": 0.3' in s and '"lr": 0.05' in s for s in specs
                         if '"model": "ir"' in s)
    assert all('"backbone": {"arch": "resnet18"' in s for s in specs)  # merged, not replaced


@pytest.mark.slow
def test_a_config_with_its_own_models_keeps_only_the_inherited_runs_it_has(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("models: {simclr: {}}\n")
    proc = _snakemake("-n", "--configfile", str(mine), "--config", f"results_dir={tmp_path}")
    out = proc.stdout + proc.stderr
    assert "detection.runs from config/default.yaml names ['moco-ring', 'moco-uniform']" in out
    assert not re.search(r"^detection\s+\d+$", proc.stdout, flags=re.M)
    assert re.search(r"^pretrain\s+12$", proc.stdout, flags=re.M)  # SimCLR x 2 x 2 x 3
    # a user's own runs are never touched: a pair it lacks is still an error naming the key
    mine.write_text("models: {simclr: {}}\ndetection: {runs: [moco-ring]}\n")
    proc = _snakemake("-n", "--configfile", str(mine), check=False)
    assert proc.returncode != 0 and "detection.runs" in proc.stdout + proc.stderr


def _reproduce_flags():
    """The flags `make reproduce` passes to Snakemake (read from the Makefile)."""
    text = (ROOT / "Makefile").read_text()
    line = re.search(r"^REPRODUCE_FLAGS = (.*)$", text, flags=re.M).group(1)
    return line.replace("$(CORES)", "2").split()


@pytest.mark.slow
def test_a_killed_make_reproduce_resumes_with_the_same_command(tmp_path):
    """SIGKILL the whole Snakemake process group mid-pretraining, then run the same command:
    no --unlock, no extra flag, and the run finishes from its last.pt."""
    import os
    import signal
    import time

    import yaml

    config = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    config.update(seeds=[0], results_dir=str(tmp_path / "results"), models={"simclr": {}},
                  samplers={"uniform": {"name": "uniform"}})
    config["pretrain"].update(datasets=["digits"], epochs=40, subset=256, batch_size=32,
                              per_model={}, per_dataset={})
    config["detection"]["runs"] = None
    configfile = tmp_path / "kill.yaml"
    configfile.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "results" / "pretrain" / "digits" / "simclr-uniform" / "seed0"
    target = str(run_dir / "result.json")
    cmd = [SNAKEMAKE, *_reproduce_flags(), target, "--configfile", str(configfile)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not (run_dir / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert (run_dir / "last.pt").exists(), "the run never wrote last.pt"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "result.json").exists()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in (run_dir / "stderr.txt").read_text()
    assert json.loads((run_dir / "result.json").read_text())["extra"]["epochs"] == 40


def test_make_reproduce_with_a_missing_config_is_one_line_listing_the_configs(tmp_path):
    # (the venv is installed: `make test` runs this, after `install`)
    proc = subprocess.run(["make", "-s", "reproduce", f"CONFIG={tmp_path}/nope.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert f"no config file at {tmp_path}/nope.yaml" in proc.stderr
    assert "config/hardneg.yaml" in proc.stderr and "schema.yaml" not in proc.stderr
