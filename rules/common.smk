# Helpers of the rule files (rules/*.smk hold rules only, as the Snakemake catalog asks),
# output folders, the target lists each rule family adds to `all`, and the values rules pass
# to their commands through params. Reads `config`, RESULTS and EXPECTED_PATH (the Snakefile
# sets them first); nothing here runs at include time except constants.

import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path

from repro.config import (UNTRAINED, excluded_run, fewshot_pairs, label_options, pretrain_grid,
                          run_identity, run_spec, sampler_labels, transfer_runs, untrained_spec)

# Every rule runs with the interpreter that runs Snakemake (the project's venv), or, with
# --software-deployment-method conda, with the `python` of envs/repro.yaml (CONDA_ENV), which
# Snakemake creates once and activates per job; `python -m repro...` then imports this checkout.
CONDA_ENV = str(Path(workflow.current_basedir).parent / "envs" / "repro.yaml")
_CONDA = any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
PY = "python" if _CONDA else sys.executable

PRETRAIN_DIR = f"{RESULTS}/pretrain/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
LINEAR_DIR = f"{RESULTS}/linear_eval/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
UNTRAINED_DIR = f"{RESULTS}/linear_eval/{{dataset}}/{{model}}-{UNTRAINED}/seed{{seed}}"
FEWSHOT_DIR = f"{RESULTS}/fewshot/{{source}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
DETECTION_DIR = f"{RESULTS}/detection/{{task}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
DETECTION_DATA = f"{RESULTS}/detection/data/shapes_coco"
DETECTION_TASKS = ("voc_det", "coco_mask", "coco_kpt")
# per-job time and memory (Snakemake's benchmark: directive; repro.report.cost reads them)
BENCHMARKS = f"{RESULTS}/benchmarks"

LINEAR_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "protocol")

_REPORT = config.get("report") or {}
TABLES_DIR = _REPORT.get("tables_dir", "tables")
FIGURES_DIR = _REPORT.get("figures_dir", "figures")
REPORTED_DIR = _REPORT.get("reported_dir", f"{TABLES_DIR}/reported")
ANNEAL = _REPORT.get("anneal", {})
CLAIMS = _REPORT.get("claims") or {}
# the report's captions (snakemake --report): one .rst per table / figure family
CAPTIONS = Path(workflow.current_basedir).parent / "report"


# --- pretraining -----------------------------------------------------------------------------


def pretrain_targets():
    """result.json of every (dataset, model, sampler, seed) the config asks for: the
    (dataset, model) pairs of repro.config.pretrain_grid with every sampler and seed."""
    record = f"{PRETRAIN_DIR}/result.json"
    return [record.format(dataset=dataset, model=model, sampler=sampler, seed=seed)
            for dataset, model in pretrain_grid(config)
            for sampler in sampler_labels(config, model)
            for seed in config["seeds"]]


def missing_datasets():
    """Why each pretraining dataset that is not on disk cannot be read (repro.data.missing_data)."""
    from repro.data.registry import missing_data

    root = config["pretrain"].get("data_root")
    return [m for m in (missing_data(d, root) for d in config["pretrain"]["datasets"]) if m]


def refuse_excluded(wildcards):
    """Stop with a WorkflowError when a target asks for a run the config excludes
    (repro.config.excluded_run), e.g. CMC on digits through a few-shot path: Snakemake would
    otherwise train it, since the wildcards alone match. The untrained baseline's rules have no
    sampler wildcard: for them only the (dataset, model) pair counts."""
    sampler = getattr(wildcards, "sampler", None)
    label = sampler or UNTRAINED
    why = excluded_run(config, wildcards.dataset, wildcards.model, sampler)
    if why:
        raise WorkflowError(
            f"{why}.\n  A target asked for {wildcards.dataset}/{wildcards.model}-{label} "
            f"seed {wildcards.seed}. `snakemake -n` without targets lists "
            "the runs this config makes; to make this one, add it to the config.")


def pretrain_identity(wildcards):
    """The run's identity (repro.config.run_identity) as JSON: rule pretrain's one re-run
    trigger. Refuses a run the config excludes (refuse_excluded)."""
    refuse_excluded(wildcards)
    spec = run_spec(config, wildcards.model, wildcards.sampler, wildcards.dataset,
                    int(wildcards.seed))
    return json.dumps(run_identity(spec), sort_keys=True)


def pretrain_spec(wildcards):
    """The full run spec as JSON: the identity plus where and how to run (threads, GPUs, data
    path; repro.config.EXECUTION_KEYS)."""
    spec = run_spec(config, wildcards.model, wildcards.sampler, wildcards.dataset,
                    int(wildcards.seed))
    return json.dumps(spec, sort_keys=True)


def pretrain_gpus(wildcards):
    """GPUs of one run (pretrain.gpus, or its pretrain.per_dataset override)."""
    spec = run_spec(config, wildcards.model, wildcards.sampler, wildcards.dataset,
                    int(wildcards.seed))
    return int(spec["pretrain"].get("gpus", 0))


def pretrain_launcher(wildcards):
    """What runs `-m repro.pretrain`: python, or torchrun with one process per GPU; a job with
    GPUs first claims its own (repro.gpus: on one multi-GPU machine, concurrent jobs get
    different GPUs; under SLURM, which sets CUDA_VISIBLE_DEVICES, it changes nothing)."""
    gpus = pretrain_gpus(wildcards)
    if gpus == 0:
        return PY
    runner = (f"{Path(PY).with_name('torchrun')} --standalone --nproc_per_node={gpus}"
              if gpus > 1 else PY)
    return f"{PY} -m repro.gpus {gpus} -- {runner}"


# --- linear evaluation -----------------------------------------------------------------------


def linear_eval_samplers(model):
    """Sampler labels of ``model`` evaluated: those it is pretrained with, plus the untrained
    baseline when asked for."""
    untrained = [UNTRAINED] if config["linear_eval"].get("untrained") else []
    return [*sampler_labels(config, model), *untrained]


def linear_eval_targets():
    """Linear evaluation of every pretrained run, on its pretraining dataset (as in the paper)."""
    record = f"{LINEAR_DIR}/result.json"
    return [record.format(dataset=dataset, model=model, sampler=sampler, seed=seed)
            for dataset, model in pretrain_grid(config)
            for sampler in linear_eval_samplers(model)
            for seed in config["seeds"]]


def linear_eval_settings():
    """The linear-eval settings that make a record what it is (re-run triggers)."""
    return {k: v for k, v in config["linear_eval"].items() if k in LINEAR_SETTINGS}


def linear_eval_flags(wildcards):
    """The command-line options both linear-eval rules share (the settings, data and device;
    linear_eval.gpus 0 or 1 picks cpu or cuda, as for pretraining)."""
    le = config["linear_eval"]
    root = config["pretrain"].get("data_root")
    return " ".join([
        f"--dataset {wildcards.dataset}",
        *([f"--data-root {shlex.quote(str(root))}"] if root else []),
        *(f"--{k.replace('_', '-')} {le[k]}" for k in LINEAR_SETTINGS if k in le),
        f"--seed {wildcards.seed}",
        f"--device {'cuda' if le.get('gpus') else 'cpu'}"])


def untrained_identity(wildcards):
    """The untrained baseline's identity as JSON (its re-run trigger; see pretrain_identity)."""
    refuse_excluded(wildcards)
    spec = untrained_spec(config, wildcards.model, wildcards.dataset, int(wildcards.seed))
    return json.dumps(run_identity(spec), sort_keys=True)


def untrained_spec_json(wildcards):
    """The untrained baseline's full spec as JSON (a function of output in the rule: changing
    where it runs does not re-run it)."""
    spec = untrained_spec(config, wildcards.model, wildcards.dataset, int(wildcards.seed))
    return json.dumps(spec, sort_keys=True)


# --- few-shot --------------------------------------------------------------------------------


def fewshot_targets():
    """result.json of every (source, pretraining dataset, model, sampler, seed) asked for:
    the (source, dataset) pairs of repro.config.fewshot_pairs (fewshot.in_domain: false drops
    a source that is the encoder's own pretraining dataset), each with fewshot.runs and seeds."""
    fs = config.get("fewshot") or {}
    runs, grid = transfer_runs(config, fs), set(pretrain_grid(config))
    return [f"{RESULTS}/fewshot/{source}/{dataset}/{model}-{sampler}/seed{seed}/result.json"
            for source, dataset in fewshot_pairs(config)
            for model, sampler in runs
            if (dataset, model) in grid
            for seed in config["seeds"]]


def fewshot_skips_everything():
    """Whether fewshot.in_domain: false leaves no pair although sources are asked for (every
    source is the only pretraining dataset): worth a warning, since Table 2 stays empty."""
    fs = config.get("fewshot") or {}
    return bool(fs.get("sources")) and not fewshot_pairs(config)


def missing_fewshot_sources():
    """Few-shot sources not on disk, each with where it was looked for and how to prepare it
    (a cheap folder check; transfer.fewshot.sources checks the data itself in the job)."""
    from transfer.fewshot.sources import FOLDER_SOURCES, TFDS_SOURCES

    fs = config.get("fewshot") or {}
    data_dir = Path(fs.get("data_dir") or os.environ.get("TFDS_DATA_DIR")
                    or "~/tensorflow_datasets").expanduser()
    missing = []
    for source in fs.get("sources", []):
        if source in FOLDER_SOURCES:
            folder = Path(fs.get("folder_root") or "data/meta_dataset") / source
            if not folder.is_dir():
                missing.append(f"few-shot source {source!r}: no image folder {folder} "
                               f"(<class>/<image>; see github.com/google-research/meta-dataset)")
        elif source in TFDS_SOURCES and not (data_dir / TFDS_SOURCES[source].builder).is_dir():
            name = TFDS_SOURCES[source].builder
            missing.append(f"few-shot source {source!r}: TFDS dataset {name!r} is not prepared "
                           f"in {data_dir} (nothing is downloaded during a run: `tfds build "
                           f"{name} --data_dir {data_dir}` once, where there is internet)")
    return missing


def fewshot_options():
    """The few-shot protocol's command-line options (re-run triggers)."""
    fs = config.get("fewshot") or {}
    flags = {"--episodes": fs.get("episodes", 600), "--classifier": fs.get("classifier"),
             "--data-dir": fs.get("data_dir"), "--folder-root": fs.get("folder_root"),
             "--image-size": fs.get("image_size"), "--max-per-class": fs.get("max_per_class"),
             "--min-way": fs.get("min_way"), "--max-way": fs.get("max_way"),
             "--way": fs.get("way"), "--shot": fs.get("shot"), "--query": fs.get("query")}
    return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in flags.items() if v is not None)


# --- detection -------------------------------------------------------------------------------


def detection_targets():
    """result.json of every (task, pretraining dataset, model, sampler, seed) asked for."""
    det = config.get("detection") or {}
    datasets = det.get("datasets") or config["pretrain"]["datasets"]
    runs, grid = transfer_runs(config, det), set(pretrain_grid(config))
    return [f"{RESULTS}/detection/{task}/{dataset}/{model}-{sampler}/seed{seed}/result.json"
            for task in det.get("tasks", [])
            for dataset in datasets
            for model, sampler in runs
            if (dataset, model) in grid
            for seed in config["seeds"]]


def detection_data(task):
    """(--data, --data-root) of a task: the generated shapes, or the real VOC / COCO folders."""
    det = config.get("detection") or {}
    if det.get("data", "generated") == "generated":
        return "generated", DETECTION_DATA
    if task == "voc_det":
        return "voc", det.get("voc_root", "data/VOCdevkit")
    return "coco", det.get("coco_root", "data/coco")


def missing_detection_data():
    """Real VOC / COCO folders the configured detection tasks need but that are not there."""
    det = config.get("detection") or {}
    if det.get("data", "generated") == "generated" or not transfer_runs(config, det):
        return []
    missing = {}
    for task in det.get("tasks", []):
        data, root = detection_data(task)
        if not Path(root).is_dir():
            missing.setdefault(root, []).append(task)
    where = {"voc": "VOC2007 + VOC2012 (host.robots.ox.ac.uk/pascal/VOC)",
             "coco": "COCO 2017 train/val images and annotations (cocodataset.org)"}
    return [f"detection data for {', '.join(tasks)}: no folder {root} "
            f"({where[detection_data(tasks[0])[0]]}; detection.voc_root / detection.coco_root)"
            for root, tasks in missing.items()]


def detection_inputs(wildcards):
    """The checkpoint a detection job fine-tunes, and the generated data where it uses it."""
    inputs = {"checkpoint": f"{PRETRAIN_DIR}/checkpoint.pt".format(
        dataset=wildcards.dataset, model=wildcards.model, sampler=wildcards.sampler,
        seed=wildcards.seed)}
    if detection_data(wildcards.task)[0] == "generated":
        inputs["data"] = f"{DETECTION_DATA}/annotations/instances_val2017.json"
    return inputs


def detection_options(wildcards):
    """transfer.detection.train's options for one task (re-run triggers)."""
    det = config.get("detection") or {}
    data, root = detection_data(wildcards.task)
    iterations = det.get("iterations")
    if isinstance(iterations, dict):
        iterations = iterations.get(wildcards.task)
    gpus = int(det.get("gpus", 0))
    flags = {"--data": data, "--data-root": root, "--backend": det.get("backend", "auto"),
             "--iterations": iterations, "--batch-size": det.get("batch_size"),
             "--lr": det.get("lr"), "--min-size": det.get("min_size"),
             "--max-size": det.get("max_size"), "--norm": det.get("norm"),
             "--fpn-channels": det.get("fpn_channels"), "--head-width": det.get("head_width"),
             "--num-gpus": max(1, gpus), "--device": "cuda" if gpus else "cpu"}
    return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in flags.items() if v is not None)


def detection_gpus():
    """GPUs a detection job holds: detection.gpus for detectron2 (one process per GPU); the
    torchvision backend (also what `auto` picks where detectron2 is not installed) trains on
    one device, so it holds at most one."""
    det = config.get("detection") or {}
    gpus, backend = int(det.get("gpus", 0)), det.get("backend", "auto")
    if backend == "torchvision" or (backend == "auto"
                                    and importlib.util.find_spec("detectron2") is None):
        return min(gpus, 1)
    return gpus


def generated_detection_settings():
    """Size of the generated COCO-format shapes set (detection.generated over the defaults)."""
    return {"train": 48, "val": 16, "size": 96,
            **((config.get("detection") or {}).get("generated") or {})}


# --- tables and figures ----------------------------------------------------------------------

# the rule that makes each record list (a list whose rule is not defined counts as empty, so the
# report rules also work with rules/report.smk included alone, on records made elsewhere)
_TARGETS_OF_RULE = {"pretrain": pretrain_targets, "linear_eval": linear_eval_targets,
                    "fewshot": fewshot_targets, "detection": detection_targets}


def has_rule(name):
    """Whether an included rule file defined rule `name` (`rules.<name>` raises a WorkflowError,
    not an AttributeError, for an unknown rule, so hasattr() cannot tell)."""
    try:
        getattr(rules, name)
    except Exception:
        return False
    return True


def report_records(*stages):
    """The union of the record lists of the named stages (pretrain, linear_eval, fewshot,
    detection) whose rules this workflow defines."""
    return [str(t) for stage in stages if has_rule(stage) for t in _TARGETS_OF_RULE[stage]()]


def expected_flag():
    """--expected: leave records made with other settings than this config's out
    (repro.stale); only where the Snakefile says what it expects (EXPECTED_PATH)."""
    return f"--expected {shlex.quote(EXPECTED_PATH)}" if EXPECTED_PATH else ""


def option_ablation_planned(option):
    """Whether a run of the grid takes the model option `option` (queue_size, bank_momentum)
    from its sampler label (the label's options for that model, as
    repro.config.label_options merges them for run_spec)."""
    return any(option in (label_options(config, model, label).get("model_options") or {})
               for model in config.get("models") or {}
               for label in sampler_labels(config, model))


def toy_estimates(rule="toy"):
    """The estimates CSV of the toy rule `rule` (toy, toy_sphere), or none without that rule."""
    return getattr(rules, rule).output.csv if has_rule(rule) else []


def caption(name):
    """The report caption (report/<name>.rst) of a table or figure family."""
    return str(CAPTIONS / f"{name}.rst")
