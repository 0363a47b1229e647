"""Fine-tune a pretrained encoder for detection, instance segmentation or keypoints; one record.

    python -m transfer.detection.train --checkpoint results/pretrain/shapes/moco-ring/seed0/checkpoint.pt \\
        --task coco_mask --data generated --data-root results/detection/data/shapes_coco \\
        --iterations 20 --out results/detection/coco_mask/shapes/moco-ring/seed0/result.json

Backends (``--backend auto`` picks the first available):

- ``detectron2``: converts the checkpoint (:mod:`transfer.detection.convert`), merges the shipped
  config of the task (``transfer/detection/configs/``) with the conversion settings and
  ``--opts``, trains with ``DefaultTrainer`` (``--num-gpus`` processes) and evaluates with
  detectron2's COCO / VOC evaluators. This is the paper protocol.
- ``torchvision``: the same task with ``torchvision.models.detection`` (Faster R-CNN C4 for
  ``voc_det``, Mask / Keypoint R-CNN with FPN for the COCO tasks; see
  :mod:`transfer.detection.models`), one process, SGD with warm-up and the paper schedule's two
  LR steps scaled to ``--iterations`` (18k/22k of 24k for VOC, 60k/80k of 90k for COCO),
  COCO-style AP with pycocotools.

The record (stage ``detection``) carries ``bbox_AP``, ``bbox_AP50``, ``bbox_AP75`` and, for the
mask / keypoint tasks, ``segm_*`` / ``keypoints_*`` (percent), and ``extra.backend``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from repro.cli import non_negative_float, positive_float, positive_int
from transfer.detection.data import TASKS, VOC_CLASSES, Task

__all__ = ["CONFIG_DIR", "detectron2_available", "pick_backend", "lr_steps", "default_warmup",
           "learning_rate", "detectron2_size_options", "train_torchvision", "train_detectron2",
           "run", "main"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def detectron2_available() -> bool:
    return importlib.util.find_spec("detectron2") is not None


def pick_backend(requested: str) -> str:
    """``auto`` -> ``detectron2`` when importable, else ``torchvision``."""
    if requested == "auto":
        return "detectron2" if detectron2_available() else "torchvision"
    if requested == "detectron2" and not detectron2_available():
        raise ImportError("--backend detectron2 asked for, but detectron2 is not installed: "
                          "`make install` installs it (python -m "
                          "transfer.detection.install_detectron2), or build it from "
                          "github.com/facebookresearch/detectron2; or use --backend torchvision")
    if requested not in ("detectron2", "torchvision"):
        raise ValueError(f"unknown backend {requested!r}; auto, detectron2 or torchvision")
    return requested


def lr_steps(max_iter: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """The iterations at which the learning rate drops: each fraction of ``max_iter``, as
    distinct iterations inside ``(0, max_iter)`` (a short run keeps fewer drops, since
    detectron2's scheduler refuses repeated or out-of-range milestones)."""
    return tuple(sorted({step for step in (int(f * max_iter) for f in fractions)
                         if 0 < step < max_iter}))


def default_warmup(iterations: int) -> int:
    """Warm-up iterations of a run without ``--warmup``: 10% of it, at least 1, at most 100."""
    return max(1, min(100, iterations // 10))


def detectron2_size_options(arch: str, min_size: Optional[int] = None,
                            max_size: Optional[int] = None, fpn_channels: Optional[int] = None,
                            head_width: Optional[int] = None) -> list[str]:
    """detectron2 ``KEY VALUE`` overrides for the size options the torchvision backend takes
    (each only where given): image sides, anchors scaled to ``min_size`` as the torchvision
    backend scales them (:func:`transfer.detection.models.anchor_sizes`: one size per FPN level,
    all five on the single C4 level), FPN width, and head widths with torchvision's smaller
    sampling batches (``head_width``: the box head's convs and its FC at 4x, the mask head's
    convs, four keypoint convs)."""
    from transfer.detection.models import anchor_sizes

    opts: list[str] = []
    if min_size is not None:
        sizes = [list(s) for s in anchor_sizes(min_size, 5)]
        anchors = sizes if arch == "fpn" else [[s[0] for s in sizes]]
        opts += ["INPUT.MIN_SIZE_TRAIN", f"({min_size},)", "INPUT.MIN_SIZE_TEST", str(min_size),
                 "MODEL.ANCHOR_GENERATOR.SIZES", str(anchors)]
    if max_size is not None:
        opts += ["INPUT.MAX_SIZE_TRAIN", str(max_size), "INPUT.MAX_SIZE_TEST", str(max_size)]
    if fpn_channels is not None and arch == "fpn":
        opts += ["MODEL.FPN.OUT_CHANNELS", str(fpn_channels)]
    if head_width is not None:
        opts += ["MODEL.ROI_BOX_HEAD.CONV_DIM", str(head_width),
                 "MODEL.ROI_BOX_HEAD.FC_DIM", str(4 * head_width),
                 "MODEL.ROI_MASK_HEAD.CONV_DIM", str(head_width),
                 "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", str((head_width,) * 4),
                 "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
                 "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "128"]
    return opts


def learning_rate(iteration: int, base_lr: float, max_iter: int, warmup: int,
                  steps: Sequence[float] = TASKS["voc_det"].step_fractions,
                  gamma: float = 0.1) -> float:
    """Linear warm-up from ``base_lr / 1000`` over ``warmup`` iterations, then ``gamma`` at each
    of :func:`lr_steps` of the ``steps`` fractions (detectron2's WarmupMultiStepLR)."""
    factor = gamma ** sum(iteration >= step for step in lr_steps(max_iter, steps))
    if iteration < warmup:
        alpha = iteration / warmup
        factor *= 0.001 * (1 - alpha) + alpha
    return base_lr * factor


def _cycle(loader):
    while True:
        yield from loader


def train_torchvision(encoder_state, backbone, task: Task, out_dir: Path, *, data: str,
                      data_root: str, iterations: int, batch_size: int, lr: float,
                      weight_decay: float, warmup: int, min_size: int, max_size: int,
                      norm: str, fpn_channels: int, head_width: Optional[int],
                      max_train_images: Optional[int], max_test_images: Optional[int],
                      seed: int, device: str, progress: bool) -> tuple[dict, dict]:
    """Fine-tune and evaluate with torchvision; returns ``(metrics, extra)``."""
    from torch.utils.data import DataLoader

    from transfer.detection.coco_eval import evaluate_detector
    from transfer.detection.data import collate, task_datasets
    from transfer.detection.models import build_detector

    torch.manual_seed(seed)
    train_set, test_set = task_datasets(task, data, data_root, cache=out_dir, seed=seed,
                                        max_train_images=max_train_images,
                                        max_test_images=max_test_images)
    model = build_detector(task.head, task.arch, encoder_state, backbone, test_set.num_classes,
                           num_keypoints=test_set.num_keypoints or 17, min_size=min_size,
                           max_size=max_size, norm=norm, fpn_channels=fpn_channels,
                           head_width=head_width).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed), drop_last=False)
    batches = _cycle(loader)
    steps: Any = range(iterations)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"{task.name} fine-tune", file=sys.stderr, mininterval=1.0)
    log_rows = []
    model.train()
    for it in steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(it, lr, iterations, warmup, task.step_fractions)
        images, targets = next(batches)
        images = [im.to(device) for im in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        losses = model(images, targets)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at iteration {it}: lower --lr")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log_rows.append({"iteration": it, "loss": loss.item(),
                         "lr": optimizer.param_groups[0]["lr"],
                         **{k: v.item() for k, v in losses.items()}})
    if log_rows:
        with open(out_dir / "log.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(log_rows[0]))
            writer.writeheader()
            writer.writerows(log_rows)
    metrics = evaluate_detector(model, test_set, task.iou_types, device=device,
                                batch_size=batch_size, progress=progress)
    kind = {"box": "Faster", "mask": "Mask", "keypoints": "Keypoint"}[task.head]
    extra = {"architecture": f"torchvision {kind} R-CNN {task.arch.upper()}",
             "train_images": len(train_set), "test_images": len(test_set),
             "final_loss": log_rows[-1]["loss"] if log_rows else None,
             "norm": norm, "min_size": min_size, "max_size": max_size,
             "fpn_channels": fpn_channels, "head_width": head_width}
    return metrics, extra


def train_detectron2(checkpoint: Path, task: Task, out_dir: Path, *, data: str, data_root: str,
                     iterations: Optional[int], batch_size: Optional[int], lr: Optional[float],
                     warmup: Optional[int], num_gpus: int, opts: Sequence[str], seed: int,
                     device: str, min_size: Optional[int] = None,
                     max_size: Optional[int] = None, fpn_channels: Optional[int] = None,
                     head_width: Optional[int] = None) -> tuple[dict, dict]:
    """Fine-tune and evaluate with detectron2 (the paper protocol); returns ``(metrics, extra)``.

    The datasets are registered from ``data_root`` under this project's names (``generated``
    and ``coco``: the COCO 2017 layout; ``voc``: a VOCdevkit folder), so no
    ``DETECTRON2_DATASETS`` variable is needed. With ``num_gpus > 1`` the workers are spawned by
    ``detectron2.engine.launch`` and rank 0 writes the metrics. VOC is scored by detectron2's
    VOC07 evaluator, COCO-format data by pycocotools' own ``COCOeval`` (detectron2's fast
    reimplementation off, as the torchvision backend scores); a task with no detection at all
    scores 0 AP (detectron2 reports NaN) and is named in ``extra.no_detections``. The size
    options, where given, become config overrides (:func:`detectron2_size_options`) applied
    before ``opts``.
    """
    import json

    from transfer.detection import d2compat

    d2compat.prepare()
    from detectron2.engine import launch

    from transfer.detection.convert import convert_checkpoint

    if num_gpus > 1 and device == "cpu":
        raise ValueError(f"--num-gpus {num_gpus} needs --device cuda")
    weights = out_dir / "backbone_d2.pkl"
    convert_checkpoint(checkpoint, weights, out_dir / "backbone_d2.yaml")
    job = {"task": task.name, "out_dir": str(out_dir), "data": data, "data_root": str(data_root),
           "iterations": iterations, "batch_size": batch_size, "lr": lr,
           "warmup": warmup, "num_gpus": num_gpus, "seed": seed, "device": device,
           "opts": detectron2_size_options(task.arch, min_size, max_size, fpn_channels,
                                           head_width) + list(opts)}
    metrics_file = out_dir / "detectron2_metrics.json"
    metrics_file.unlink(missing_ok=True)
    if num_gpus > 1:
        launch(_detectron2_worker, num_gpus, dist_url="auto", args=(job,))
    else:
        _detectron2_worker(job)
    written = json.loads(metrics_file.read_text())
    metrics, empty = {}, []
    for iou in task.iou_types:
        values = {name: float(written["results"][iou][name]) for name in ("AP", "AP50", "AP75")}
        if all(math.isnan(v) for v in values.values()):
            empty.append(iou)
            values = dict.fromkeys(values, 0.0)
        metrics.update({f"{iou}_{name}": value for name, value in values.items()})
    return metrics, {"architecture": f"detectron2 {task.detectron2_config}",
                     "detectron2_config": task.detectron2_config, "weights": str(weights),
                     "opts": job["opts"],
                     "num_gpus": num_gpus, "no_detections": empty, "solver": written["solver"]}


def _detectron2_cfg(job: dict[str, Any]):
    from detectron2.config import get_cfg

    from transfer.detection.d2backbone import add_ring_config, fpn_level_names

    task, out_dir = TASKS[job["task"]], Path(job["out_dir"])
    cfg = add_ring_config(get_cfg())
    cfg.merge_from_file(str(CONFIG_DIR / task.detectron2_config))
    cfg.merge_from_file(str(out_dir / "backbone_d2.yaml"))
    stem = cfg.MODEL.RESNETS.STEM_TYPE  # the CIFAR stem's FPN levels are p0..p4, not p2..p6
    cfg.MODEL.RPN.IN_FEATURES = fpn_level_names(cfg.MODEL.RPN.IN_FEATURES, stem)
    cfg.MODEL.ROI_HEADS.IN_FEATURES = fpn_level_names(cfg.MODEL.ROI_HEADS.IN_FEATURES, stem)
    _register_datasets(task, job["data"], Path(job["data_root"]), cfg)
    if job["num_gpus"] <= 1:  # synchronised BN needs a process group: one GPU is plain BN
        for node in (cfg.MODEL.RESNETS, cfg.MODEL.FPN, cfg.MODEL.ROI_BOX_HEAD,
                     cfg.MODEL.ROI_MASK_HEAD):
            if node.get("NORM") in ("SyncBN", "naiveSyncBN"):
                node.NORM = "BN"
    if job["iterations"]:
        iterations = job["iterations"]
        fractions = [step / cfg.SOLVER.MAX_ITER for step in cfg.SOLVER.STEPS]
        cfg.SOLVER.STEPS = lr_steps(iterations, fractions)
        cfg.SOLVER.MAX_ITER = iterations
        # the config's warm-up (1000 COCO, 100 VOC) is for the paper schedule: a shorter run
        # warms up over at most 10% of its iterations, as the torchvision backend does
        cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, default_warmup(iterations))
        # PreciseBN re-estimates the BN statistics over 200 batches, for the 90k-iteration
        # schedule; a shorter run re-estimates them over at most as many batches as it trained
        cfg.TEST.PRECISE_BN.NUM_ITER = min(cfg.TEST.PRECISE_BN.NUM_ITER, iterations)
    if job["warmup"] is not None:
        cfg.SOLVER.WARMUP_ITERS = job["warmup"]
    if job["batch_size"]:
        cfg.SOLVER.IMS_PER_BATCH = job["batch_size"]
    if job["lr"]:
        cfg.SOLVER.BASE_LR = job["lr"]
    cfg.MODEL.DEVICE = job["device"]
    if job["device"] == "cpu":  # load in-process, as the torchvision backend: the same record
        cfg.DATALOADER.NUM_WORKERS = 0  # on every run, and no 4 workers on a few CPU cores
    cfg.SEED = job["seed"]
    cfg.OUTPUT_DIR = str(out_dir / "detectron2")
    cfg.merge_from_list(job["opts"])
    cfg.freeze()
    return cfg


def _detectron2_worker(job: dict[str, Any]) -> None:
    """Train, then test once, in one detectron2 process; rank 0 writes
    ``detectron2_metrics.json``."""
    from transfer.detection import d2compat

    d2compat.prepare()  # again: a spawned worker (--num-gpus > 1) is a fresh process
    from detectron2.data import MetadataCatalog
    from detectron2.engine import DefaultTrainer, hooks
    from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
    from detectron2.utils import comm

    class Trainer(DefaultTrainer):
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            if MetadataCatalog.get(dataset_name).evaluator_type == "pascal_voc":
                return PascalVOCDetectionEvaluator(dataset_name)
            tasks = ("bbox",) + ("segm",) * cfg.MODEL.MASK_ON \
                + ("keypoints",) * cfg.MODEL.KEYPOINT_ON
            return COCOEvaluator(dataset_name, tasks=tasks, output_dir=cfg.OUTPUT_DIR,
                                 use_fast_impl=False,
                                 kpt_oks_sigmas=cfg.TEST.KEYPOINT_OKS_SIGMAS)

        def build_writers(self):
            # DefaultTrainer's writers without TensorBoard's (torch.utils.tensorboard needs the
            # tensorboard package): the console printer and metrics.json
            from detectron2.utils.events import CommonMetricPrinter, JSONWriter

            Path(self.cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
            return [CommonMetricPrinter(self.max_iter),
                    JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "metrics.json"))]

        def build_hooks(self):
            # DefaultTrainer's EvalHook tests after the last iteration; the one test is below
            return [h for h in super().build_hooks() if not isinstance(h, hooks.EvalHook)]

    import transfer.detection.d2backbone  # noqa: F401  (registers our backbones and C4 head)

    cfg = _detectron2_cfg(job)
    # cfg.SEED is applied by detectron2's default_setup only (not used here): seed Python,
    # NumPy and torch, which the training sampler's shuffling seed is drawn from
    from detectron2.utils.env import seed_all_rng

    seed_all_rng(cfg.SEED + comm.get_rank())
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=True)
    trainer.train()
    results = Trainer.test(cfg, trainer.model)
    if comm.is_main_process():
        from repro.io import atomic_write_json

        solver = cfg.SOLVER
        atomic_write_json(Path(job["out_dir"]) / "detectron2_metrics.json", {
            "results": {k: dict(v) for k, v in results.items()},
            "solver": {"iterations": solver.MAX_ITER, "batch_size": solver.IMS_PER_BATCH,
                       "lr": solver.BASE_LR, "warmup": solver.WARMUP_ITERS,
                       "steps": list(solver.STEPS)}})


def _forget(name: str) -> None:
    """Drop a dataset registered earlier in this process, so that a new root takes its place."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _register_datasets(task: Task, data: str, root: Path, cfg) -> None:
    """Register the task's train and test data found in ``root`` and set ``cfg.DATASETS``.

    ``voc``: VOC07+12 trainval -> VOC07 test from a VOCdevkit folder. ``coco`` / ``generated``:
    ``annotations/{instances,person_keypoints}_{train,val}2017.json`` with images in
    ``train2017/``, ``val2017/``; the classes come from the JSON, COCO's person keypoints get
    detectron2's names, flip map and skeleton, the generated shapes' keypoints their own names
    (and no flip).
    """
    from detectron2.data import MetadataCatalog

    if data == "voc":
        from detectron2.data.datasets.pascal_voc import register_pascal_voc

        splits = {"train": [("2007", "trainval"), ("2012", "trainval")],
                  "test": [("2007", "test")]}
        names = {role: [f"ring_voc_{year}_{split}" for year, split in parts]
                 for role, parts in splits.items()}
        for (year, split), name in zip(splits["train"] + splits["test"],
                                       names["train"] + names["test"]):
            _forget(name)
            register_pascal_voc(name, str(root / f"VOC{year}"), split, int(year), VOC_CLASSES)
            MetadataCatalog.get(name).evaluator_type = "pascal_voc"
        cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = tuple(names["train"]), tuple(names["test"])
        return

    import json

    from detectron2.data.datasets import register_coco_instances

    annotations = root / "annotations"
    if not (annotations / f"{task.annotations}_val2017.json").exists():
        raise FileNotFoundError(f"no {annotations / f'{task.annotations}_val2017.json'}: "
                                f"--data-root must hold the COCO 2017 layout (annotations/, "
                                f"train2017/, val2017/)")
    categories = json.loads((annotations / f"{task.annotations}_val2017.json")
                            .read_text())["categories"]
    keypoints: dict[str, Any] = {}
    if task.head == "keypoints" and data == "coco":  # COCO person: names, flip map, skeleton
        builtin = MetadataCatalog.get("keypoints_coco_2017_train")
        keypoints = {key: builtin.get(key) for key in
                     ("keypoint_names", "keypoint_flip_map", "keypoint_connection_rules")}
    elif task.head == "keypoints":
        keypoints = {"keypoint_names": categories[0]["keypoints"], "keypoint_flip_map": []}
    names = []
    for split in ("train2017", "val2017"):
        name = f"ring_{data}_{task.annotations}_{split}"
        _forget(name)
        register_coco_instances(name, keypoints, str(annotations / f"{task.annotations}_"
                                                      f"{split}.json"), str(root / split))
        names.append(name)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (names[0],), (names[1],)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(categories)
    if data == "coco":
        return
    # the circles' masks are RLE (not crowd), which detectron2's default polygon format
    # refuses; "bitmask" reads polygons and RLE alike
    cfg.INPUT.MASK_FORMAT = "bitmask"
    if task.head == "keypoints":
        cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = len(categories[0]["keypoints"])
        cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.05] * len(categories[0]["keypoints"])
        # a shape's keypoints swap differently under a flip for each shape: no flip map fits
        # them all, so keypoint training is not flipped (nor is the torchvision backend's)
        cfg.INPUT.RANDOM_FLIP = "none"


def run(checkpoint: str | Path, task_name: str, out: str | Path, *, data: str = "generated",
        data_root: Optional[str] = None, backend: str = "auto", iterations: Optional[int] = None,
        batch_size: Optional[int] = None, lr: Optional[float] = None,
        weight_decay: float = 1e-4, warmup: Optional[int] = None,
        min_size: Optional[int] = None, max_size: Optional[int] = None, norm: str = "bn",
        fpn_channels: Optional[int] = None,
        head_width: Optional[int] = None, max_train_images: Optional[int] = None,
        max_test_images: Optional[int] = None, num_gpus: int = 1, opts: Sequence[str] = (),
        seed: int = 0, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Fine-tune one checkpoint on one task and write the record to ``out``; returns it."""
    from repro.checkpoint import load_checkpoint
    from repro.results import make_record, write_record

    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}; one of {sorted(TASKS)}")
    task = TASKS[task_name]
    backend = pick_backend(backend)
    if device != "cpu":
        from repro.gpus import claim

        claim(num_gpus if backend == "detectron2" else 1)  # this job's GPUs on a shared machine
    start = time.time()
    out = Path(out)
    out_dir = out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(checkpoint)
    if data == "generated":
        root = Path(data_root or out_dir / "shapes_coco")
        if not (root / "annotations").exists():
            from transfer.detection.synthetic import make_shapes_coco

            make_shapes_coco(root, seed=0)
        data_root = str(root)
    if data_root is None:
        raise ValueError(f"--data {data} needs --data-root (the COCO 2017 folder, or VOCdevkit)")
    settings = {"task": task_name, "data": data, "backend": backend, "iterations": iterations,
                "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                "seed": seed}
    if backend == "torchvision":
        iterations = iterations or task.iterations
        batch_size, lr = batch_size or 2, lr or 0.02
        warmup = default_warmup(iterations) if warmup is None else warmup
        settings.update(iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup)
        min_size, max_size = min_size or 800, max_size or 1333
        fpn_channels = fpn_channels or 256
        metrics, extra = train_torchvision(
            state["encoder"], state["backbone"], task, out_dir, data=data, data_root=data_root,
            iterations=iterations, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            warmup=warmup, min_size=min_size, max_size=max_size, norm=norm,
            fpn_channels=fpn_channels, head_width=head_width,
            max_train_images=max_train_images, max_test_images=max_test_images, seed=seed,
            device=device, progress=progress)
        protocol = (f"{task_name}: {extra['architecture']} fine-tuned "
                    f"{iterations} iterations (batch {batch_size}, BN {norm}), "
                    f"COCO-style AP (pycocotools)")
    else:
        metrics, extra = train_detectron2(
            Path(checkpoint), task, out_dir, data=data, data_root=data_root,
            iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup,
            num_gpus=num_gpus, opts=opts, seed=seed, device=device, min_size=min_size,
            max_size=max_size, fpn_channels=fpn_channels, head_width=head_width)
        solver = extra["solver"]
        scoring = ("PASCAL VOC AP (detectron2's VOC07 11-point evaluator)" if data == "voc"
                   else "COCO-style AP (pycocotools)")
        protocol = (f"{task_name}: detectron2 {task.detectron2_config} fine-tuned "
                    f"{solver['iterations']} iterations (batch {solver['batch_size']}, "
                    f"lr {solver['lr']}), {scoring}")
    spec = state.get("config") or {}
    record = make_record(
        stage="detection", model=spec.get("model", "unknown"),
        sampler=spec.get("sampler_label", "unknown"), sampler_params=spec.get("sampler"),
        dataset=spec.get("dataset", "unknown"),
        eval_dataset={"generated": "shapes_coco", "coco": "coco2017_val",
                      "voc": "voc2007_test"}[data],
        seed=int(spec.get("seed", seed)), metrics=metrics, scale=spec.get("scale", "default"),
        recipe=spec.get("recipe"),
        config={"pretrain": spec, "detection": settings}, wall_time_s=time.time() - start,
        protocol=protocol,
        extra={**settings, **extra, "data_root": str(data_root), "checkpoint": str(checkpoint),
               "device": device if backend == "torchvision" or device == "cpu"
               else f"{num_gpus} gpu(s)"},
    )
    write_record(out, record)
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection.train",
        description="Fine-tune a pretrained encoder on a detection task (voc_det: Faster R-CNN "
                    "R50-C4; coco_mask: Mask R-CNN R50-FPN 1x; coco_kpt: Keypoint R-CNN R50-FPN "
                    "1x) with detectron2 when installed, else torchvision, and write a result "
                    "record with COCO-style AP / AP50 / AP75.")
    parser.add_argument("--checkpoint", required=True, help="pretraining checkpoint.pt")
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--out", required=True, help="result record to write (result.json)")
    parser.add_argument("--data", choices=("generated", "coco", "voc"), default="generated",
                        help="generated shapes (made in --data-root if missing), COCO 2017, or "
                             "a VOCdevkit folder")
    parser.add_argument("--data-root", default=None, help="dataset folder")
    parser.add_argument("--backend", choices=("auto", "detectron2", "torchvision"),
                        default="auto")
    parser.add_argument("--iterations", type=positive_int, default=None,
                        help="training iterations (default: the paper schedule, 24k VOC / "
                             "90k COCO; use e.g. 20 for a smoke run)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="images per iteration (default: detectron2 config's 16; "
                             "torchvision 2)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="base learning rate (default: the config's 0.02)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up iterations (default: 10%% of the iterations, at most 100)")
    parser.add_argument("--min-size", type=positive_int, default=None,
                        help="shorter image side (default: torchvision 800; detectron2 the "
                             "config's); anchors scale with it")
    parser.add_argument("--max-size", type=positive_int, default=None,
                        help="longer side cap (default: torchvision 1333; detectron2 the "
                             "config's)")
    parser.add_argument("--norm", choices=("bn", "frozen"), default="bn",
                        help="backbone BN: fine-tuned (MoCo recipe) or frozen (torchvision)")
    parser.add_argument("--fpn-channels", type=positive_int, default=None,
                        help="FPN width (default 256)")
    parser.add_argument("--head-width", type=positive_int, default=None,
                        help="shrink the heads to this width (tiny CPU runs)")
    parser.add_argument("--max-train-images", type=positive_int, default=None)
    parser.add_argument("--max-test-images", type=positive_int, default=None)
    parser.add_argument("--num-gpus", type=positive_int, default=1, help="detectron2 processes")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                        help="detectron2 config overrides as KEY VALUE pairs, e.g. --opts "
                             "SOLVER.CHECKPOINT_PERIOD 5000 TEST.EVAL_PERIOD 0; applied after "
                             "every other option. Put it last: it takes all the words after it. "
                             "The torchvision backend ignores it.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda (detectron2: its MODEL.DEVICE; --num-gpus > 1 needs "
                             "cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        record = run(args.checkpoint, args.task, args.out, data=args.data,
                     data_root=args.data_root, backend=args.backend, iterations=args.iterations,
                     batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                     warmup=args.warmup, min_size=args.min_size, max_size=args.max_size,
                     norm=args.norm, fpn_channels=args.fpn_channels, head_width=args.head_width,
                     max_train_images=args.max_train_images,
                     max_test_images=args.max_test_images, num_gpus=args.num_gpus,
                     opts=args.opts, seed=args.seed, device=args.device,
                     progress=not args.no_progress)
    except (FileNotFoundError, ValueError, ImportError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics = ", ".join(f"{k} {v:.1f}" for k, v in record["metrics"].items())
    print(f"{args.task} ({record['extra']['backend']}): {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
