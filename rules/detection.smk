# Detection / segmentation / keypoint fine-tuning of pretrained query encoders
# (python -m transfer.detection.train). Uses PY, RESULTS and config from the Snakefile,
# PRETRAIN_DIR from rules/pretrain.smk.

import importlib.util
import shlex

from repro.config import pretrain_grid, transfer_runs

DETECTION_DIR = f"{RESULTS}/detection/{{task}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
DETECTION_DATA = f"{RESULTS}/detection/data/shapes_coco"
DETECTION_TASKS = ("voc_det", "coco_mask", "coco_kpt")


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


def _detection_data(task):
    """(--data, --data-root) of a task: the generated shapes, or the real VOC / COCO folders."""
    det = config.get("detection") or {}
    if det.get("data", "generated") == "generated":
        return "generated", DETECTION_DATA
    if task == "voc_det":
        return "voc", det.get("voc_root", "data/VOCdevkit")
    return "coco", det.get("coco_root", "data/coco")


def _missing_detection_data():
    """Real VOC / COCO folders the configured detection tasks need but that are not there."""
    det = config.get("detection") or {}
    if det.get("data", "generated") == "generated" or not transfer_runs(config, det):
        return []
    missing = {}
    for task in det.get("tasks", []):
        data, root = _detection_data(task)
        if not Path(root).is_dir():
            missing.setdefault(root, []).append(task)
    where = {"voc": "VOC2007 + VOC2012 (host.robots.ox.ac.uk/pascal/VOC)",
             "coco": "COCO 2017 train/val images and annotations (cocodataset.org)"}
    return [f"detection data for {', '.join(tasks)}: no folder {root} "
            f"({where[_detection_data(tasks[0])[0]]}; detection.voc_root / detection.coco_root)"
            for root, tasks in missing.items()]


for _message in _missing_detection_data():
    logger.warning(f"WARNING: {_message}\n  Those detection jobs will fail (message in their "
                   "stderr.txt); existing records are still used.")


def _detection_inputs(wildcards):
    inputs = {"checkpoint": f"{PRETRAIN_DIR}/checkpoint.pt".format(
        dataset=wildcards.dataset, model=wildcards.model, sampler=wildcards.sampler,
        seed=wildcards.seed)}
    if _detection_data(wildcards.task)[0] == "generated":
        inputs["data"] = f"{DETECTION_DATA}/annotations/instances_val2017.json"
    return inputs


def _detection_options(wildcards):
    det = config.get("detection") or {}
    data, root = _detection_data(wildcards.task)
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


def _detection_gpus():
    """GPUs a detection job holds: detection.gpus for detectron2 (one process per GPU); the
    torchvision backend (also what `auto` picks where detectron2 is not installed) trains on
    one device, so it holds at most one."""
    det = config.get("detection") or {}
    gpus, backend = int(det.get("gpus", 0)), det.get("backend", "auto")
    if backend == "torchvision" or (backend == "auto"
                                    and importlib.util.find_spec("detectron2") is None):
        return min(gpus, 1)
    return gpus


rule detection_data:
    """The generated COCO-format shapes dataset (boxes, masks, keypoints)."""
    conda:
        CONDA_ENV
    output:
        f"{DETECTION_DATA}/annotations/instances_val2017.json",
        f"{DETECTION_DATA}/annotations/person_keypoints_val2017.json",
    params:
        g={"train": 48, "val": 16, "size": 96,
           **((config.get("detection") or {}).get("generated") or {})},
        python=lambda w, output: PY,
        data=lambda w, output: DETECTION_DATA,
    log:
        f"{RESULTS}/detection/data/log.txt",
    shell:
        "{params.python} -m transfer.detection.synthetic {params.data:q}"
        " --train {params.g[train]} --val {params.g[val]} --size {params.g[size]} > {log:q} 2>&1"


rule detection:
    """Fine-tune one checkpoint on one detection task; COCO-style AP record."""
    input:
        unpack(_detection_inputs),
    conda:
        CONDA_ENV
    output:
        record=f"{DETECTION_DIR}/result.json",
    params:
        options=_detection_options,
        python=lambda w, output: PY,
    wildcard_constraints:
        task="|".join(DETECTION_TASKS),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=_detection_gpus(),
    log:
        f"{DETECTION_DIR}/stderr.txt",
    shell:
        "{params.python} -m transfer.detection.train --checkpoint {input.checkpoint:q} --task {wildcards.task}"
        " --out {output.record:q} --seed {wildcards.seed} --threads {threads} {params.options}"
        " --no-progress 2> {log:q}"
