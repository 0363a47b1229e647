"""Pretrain one (base model, sampler, dataset, seed) run.

    python -m repro.pretrain --config config/default.yaml --model ir --sampler ring \\
        --dataset shapes --seed 0 --out results/pretrain/shapes/ir-ring/seed0

    torchrun --nproc_per_node=4 -m repro.pretrain ...     # DDP, one process per GPU (or CPU)

Writes into ``--out``:

- ``last.pt``        resumable state, rewritten atomically after every epoch (not a workflow output,
                     so an interrupted Snakemake job keeps it), with ``last.log.csv``, the step
                     log of its epochs (Snakemake deletes ``log.csv`` of a job it re-runs);
- ``log.csv``        one row per step: ``epoch, step, loss, w_l, lr, time_s``;
- ``checkpoint.pt``  the final model (``encoder``: the query backbone with torchvision key names,
                     ``backbone``: its architecture, ``model``: the whole base model, ``config``);
- ``result.json``    the result record (stage ``pretrain``, metric ``final_loss``).

With ``--resume`` (the workflow always passes it) a run restarts from ``last.pt`` at the last
finished epoch; a finished run re-run this way rewrites its outputs without training. Without
``--resume`` the CLI refuses to overwrite an existing ``last.pt``. Every epoch seeds its own RNGs from ``(seed, epoch)``, so a resumed run reaches
exactly the result of an uninterrupted one on CPU.

``pretrain.augment`` picks where the two views are made: ``pil`` (absent = ``pil``) augments each
image in the data loader with torchvision's PIL transforms (:func:`repro.data.pretrain_transform`);
``batch`` loads raw uint8 images and augments the whole batch on the training device
(:class:`repro.data.batch_augment.BatchAugment`) from a per-epoch generator.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from repro.config import load_config, run_identity, run_spec, spec_problem, untrained_spec
from repro.gpus import claim
from repro.io import RunLocked, atomic_torch_save, atomic_write_text, run_lock
from repro.precision import autocast, grad_scaler, precision_of, uses_channels_last
from repro.results import config_hash, make_record, write_record
from repro.steplog import DEFAULT_LOG_EVERY, NonFiniteLoss, StepLog

__all__ = ["run_spec", "model_from_spec", "pick_device", "train", "save_untrained", "main",
           "augment_mode", "LOG_COLUMNS", "DEVICES", "AUGMENT_MODES"]

LOG_COLUMNS = ("epoch", "step", "loss", "w_l", "lr", "time_s")
LAST_LOG = "last.log.csv"  # the step log of the epochs in last.pt (not a workflow output)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK).
# --------------------------------------------------------------------------------------------


def _init_distributed(device_kind: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


DEVICES = ("auto", "cpu", "cuda")


def pick_device(requested: str, gpus: Optional[int] = None) -> torch.device:
    """The torch device a ``--device`` value (one of :data:`DEVICES`) stands for.

    Args:
        requested: ``cpu``; ``cuda`` (this process's ``LOCAL_RANK`` GPU, an error when none is
            visible); or ``auto``: CUDA when a CUDA device is visible and the job was given GPUs,
            else the CPU.
        gpus: GPUs the job was given (``pretrain.gpus``); ``None`` when the caller has no such
            setting (linear evaluation, few-shot): then any visible CUDA device counts.

    Raises:
        ValueError: an unknown value, or ``cuda`` without a visible CUDA device.

    Before CUDA starts, a job that may use GPUs claims free ones (:func:`repro.gpus.claim`),
    so concurrent jobs on one multi-GPU machine do not all land on GPU 0.
    """
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; choose one of {list(DEVICES)}")
    if requested != "cpu" and gpus != 0 and not torch.cuda.is_initialized():
        claim(gpus or 1)  # this job's own GPU(s) on a shared machine; no-op under SLURM / CPU
    cuda = torch.cuda.is_available()
    if requested == "cpu" or (requested == "auto" and (not cuda or gpus == 0)):
        return torch.device("cpu")
    if not cuda:
        raise ValueError("--device cuda was asked for but no CUDA device is visible")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def _last_good_epoch(last: Path, epoch: int) -> str:
    """Where a run that diverged in ``epoch`` (0-based) keeps its last good state: ``last``
    when an earlier epoch finished and was saved there, else that there is none."""
    if epoch == 0:
        return "no epoch completed, so there is nothing to resume from"
    if not last.exists():
        return f"no {last.name} was saved, so there is nothing to resume from"
    return f"the last good epoch ({epoch}) is in {last}"


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31)


# Added to the epoch seed for the batch augmentation's generator: a stream of its own, apart
# from the sampler's (no epoch or rank offset of _epoch_seed reaches it within 2,000 epochs and
# 1,024 ranks). Kept below 2**32: the CPU generator keeps only a seed's low 32 bits.
_AUGMENT_SEED_OFFSET = 1_073_741_827


def _augment_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of the generator ``pretrain.augment: batch`` draws an epoch's views from."""
    return (_epoch_seed(seed, epoch, rank) + _AUGMENT_SEED_OFFSET) % (2**31)


AUGMENT_MODES = ("pil", "batch")


def augment_mode(pretrain: Mapping[str, Any]) -> str:
    """``pretrain.augment`` (absent = ``pil``); an unknown value raises ``ValueError``."""
    mode = pretrain.get("augment", "pil")
    if mode not in AUGMENT_MODES:
        raise ValueError(f"unknown pretrain.augment {mode!r}; choose one of {list(AUGMENT_MODES)}")
    return mode


LR_MILESTONES = (0.68, 0.83)  # the authors' released step schedule: epochs 136, 166 of 200


def lr_at(base_lr: float, progress: float, schedule: str = "cosine",
          milestones: Sequence[float] = LR_MILESTONES) -> float:
    """Learning rate at ``progress`` in [0, 1] of training (``pretrain.lr_schedule``):
    ``cosine`` decays to zero (MoCo v2), ``step`` drops 10x at each milestone (a fraction of
    training; the authors' released code for IR / CMC / MoCo), ``constant`` keeps ``base_lr``
    (their SimCLR)."""
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return base_lr * 0.1 ** sum(progress >= m for m in milestones)
    if schedule == "constant":
        return base_lr
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose cosine, step or constant")


# --------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------


def _read_log(path: Path, before_epoch: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [row for row in csv.DictReader(fh) if int(row["epoch"]) < before_epoch]


def _read_last(last: Path, device: torch.device, rank: int) -> Optional[dict[str, Any]]:
    """The resumable state in ``last``, or None when there is none. An unreadable file (cut
    short by a full disk, say) is moved aside to ``last.pt.corrupt``, never deleted, and the
    run starts afresh: a retry must not fail the same way every time."""
    if not last.exists():
        return None
    try:
        return torch.load(last, map_location=device, weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        if rank == 0:
            aside = last.with_name(last.name + ".corrupt")
            os.replace(last, aside)
            print(f"warning: {last} cannot be read ({type(err).__name__}: "
                  f"{str(err).splitlines()[0] if str(err) else 'no detail'}); moved to "
                  f"{aside.name}, starting afresh", file=sys.stderr)
        return None


def _write_log(path: Path, rows: list[Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def model_from_spec(spec: Mapping[str, Any], dataset_size: int):
    """The base model a run spec describes (untrained), with its sampler."""
    from repro.data import get_spec
    from repro.models import build_model

    p = spec["pretrain"]
    ds_spec = get_spec(spec["dataset"])
    return build_model(
        spec["model"],
        sampler_config=spec["sampler"],
        dataset_size=dataset_size,
        backbone=p["backbone"],
        embedding_dim=p.get("embedding_dim", 128),
        temperature=p.get("temperature", 0.07),
        mean=ds_spec.mean,
        std=ds_spec.std,
        **spec["model_options"],
    )


def _build(spec: Mapping[str, Any], device: torch.device):
    """The training dataset and the model. ``pretrain.augment: pil``: a
    :class:`~repro.data.TwoViewDataset` (items hold both views); ``batch``: a
    :class:`~repro.data.batch_augment.RawImageDataset` (items hold one uint8 image; the
    training loop makes the views, see :func:`_views`)."""
    from repro.data import TwoViewDataset, build_dataset, input_spec, pretrain_transform
    from repro.data.batch_augment import RawImageDataset

    mode = augment_mode(spec["pretrain"])
    base = build_dataset(spec["dataset"], spec["pretrain"].get("data_root"), "train")
    subset = spec["pretrain"].get("subset")
    if subset is not None and subset < len(base):
        keep = torch.randperm(len(base), generator=torch.Generator().manual_seed(0))[:subset]
        base = torch.utils.data.Subset(base, keep.tolist())
    if mode == "batch":
        dataset = RawImageDataset(base)
    else:
        dataset = TwoViewDataset(base, pretrain_transform(input_spec(spec["dataset"],
                                                                     spec["pretrain"])))
    return dataset, model_from_spec(spec, len(dataset)).to(device)


def _views(batch: Mapping[str, Any], device: torch.device,
           augment: Optional[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = None,
           generator: Optional[torch.Generator] = None,
           memory_format: torch.memory_format = torch.contiguous_format,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two ``(B, 3, S, S)`` views of a loader batch on ``device``: the loader's (``pil``),
    or two draws of ``augment`` (a :class:`~repro.data.batch_augment.BatchAugment`) from
    ``generator`` on the batch's uint8 ``image`` (``batch``); in ``memory_format``
    (channels-last for reduced precision on CUDA, :func:`repro.precision.uses_channels_last`)."""
    if augment is None:
        views = tuple(v.to(device, non_blocking=True) for v in batch["views"])
    else:
        images = batch["image"].to(device, non_blocking=True)
        views = augment(images, generator), augment(images, generator)
    if memory_format == torch.contiguous_format:
        return views
    return tuple(v.contiguous(memory_format=memory_format) for v in views)


def loader_options(num_workers: int, device: torch.device) -> dict[str, Any]:
    """DataLoader options beyond batch and order: ``pin_memory`` on CUDA (asynchronous
    host-to-device copies), and with workers ``prefetch_factor`` 4 (two steps' worth queued
    per worker beyond torch's default). Workers are not kept between epochs
    (``persistent_workers``): each epoch's loader seeds its workers from the epoch's own
    generator, which is what makes a resumed run equal an uninterrupted one."""
    options: dict[str, Any] = {"num_workers": num_workers, "pin_memory": device.type == "cuda"}
    if num_workers > 0:
        options["prefetch_factor"] = 4
    return options


def _checked(read: Callable[..., Optional[list[dict[str, Any]]]], *args: Any,
             spec: Mapping[str, Any], last: Path) -> Optional[list[dict[str, Any]]]:
    """``read(*args)`` (:meth:`StepLog.add` or :meth:`StepLog.flush`), with a non-finite loss
    turned into :class:`TrainingDiverged` naming its own step, learning rate and where the last
    good state is."""
    try:
        return read(*args)
    except NonFiniteLoss as err:
        m, p = err.meta, spec["pretrain"]
        raise TrainingDiverged(
            f"loss became {err.value} at epoch {m['epoch'] + 1}, step {m['step']} "
            f"({spec['model']}-{spec['sampler_label']} on {spec['dataset']}, lr={m['lr']:.4g}, "
            f"temperature={p.get('temperature')}). Lower pretrain.lr or raise the "
            f"temperature; {_last_good_epoch(last, m['epoch'])}.") from None


def _save_checkpoint(model, spec: Mapping[str, Any], dataset_size: int, path: Path) -> Path:
    """Write ``checkpoint.pt`` (the format :mod:`repro.checkpoint` reads)."""
    return atomic_torch_save({
        "encoder": model.encoder.state_dict(),
        "backbone": dict(model.backbone_config),  # build_backbone(**backbone) rebuilds encoder
        "model": model.state_dict(),
        "config": dict(spec),
        "spec_hash": config_hash(run_identity(spec)),
        "epoch": int(spec["pretrain"]["epochs"]),
        "feature_dim": model.feature_dim,
        "dataset_size": dataset_size,
    }, path)


def save_untrained(spec: Mapping[str, Any], out: Path) -> Path:
    """``out/checkpoint.pt`` of the model as :func:`train` initialises it for this spec's seed,
    before any step: the random-init baseline of linear evaluation (no log, no record)."""
    torch.set_num_threads(int(spec["pretrain"].get("threads", 1)))
    _seed_everything(spec["seed"])  # as in train(): the same initial weights
    dataset, model = _build(spec, torch.device("cpu"))
    return _save_checkpoint(model, spec, len(dataset), Path(out) / "checkpoint.pt")


def train(spec: Mapping[str, Any], out: Path, *, resume: bool = True, device: str = "auto",
          progress_bar: bool = True, stop_after_epoch: Optional[int] = None) -> dict[str, Any]:
    """Run (or resume) one pretraining run; returns the result record (rank 0) or ``{}``.

    Args:
        spec: a :func:`run_spec`.
        out: the run folder.
        resume: continue from ``out/last.pt`` when it exists and was written by this spec.
        device: ``auto`` (CUDA when ``pretrain.gpus > 0`` and available), ``cpu`` or ``cuda``
            (see :func:`pick_device`).
        progress_bar: show tqdm bars (rank 0 only).
        stop_after_epoch: stop (as if killed) once this many epochs are done; for tests.
    """
    p = spec["pretrain"]
    torch.set_num_threads(int(p.get("threads", 1)))
    dev = pick_device(device, int(p.get("gpus", 0)))
    rank, world = _init_distributed(dev.type)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_hash = config_hash(run_identity(spec))  # threads, GPUs, data path: same run
    last = out / "last.pt"

    _seed_everything(spec["seed"])  # model initialisation
    dataset, model = _build(spec, dev)
    precision = precision_of(p)
    autocast(precision, dev)  # fp16 off CUDA fails here, before any step
    scaler = grad_scaler(precision, dev)
    memory_format = (torch.channels_last if uses_channels_last(precision, dev)
                     else torch.contiguous_format)
    if memory_format == torch.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_log = StepLog(int(p.get("log_every", DEFAULT_LOG_EVERY)))
    batch_augment, collate = None, None
    if augment_mode(p) == "batch":
        from repro.data import input_spec
        from repro.data.batch_augment import BatchAugment, collate_raw

        batch_augment = BatchAugment(input_spec(spec["dataset"], p))
        collate = collate_raw
    if world > 1:
        model.set_process_group()  # models all-gather what their bank/queue/batch needs
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None,
            broadcast_buffers=False)
    else:
        ddp = model
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p.get("momentum", 0.9),
                                weight_decay=p.get("weight_decay", 0.0))
    lr_at(p["lr"], 0.0, p.get("lr_schedule", "cosine"))  # an unknown schedule fails here
    epochs, batch_size = int(p["epochs"]), int(p["batch_size"])
    per_rank_batch = max(batch_size // world, 1)
    if len(dataset) < per_rank_batch * world:
        raise ValueError(f"dataset {spec['dataset']!r} has {len(dataset)} items, fewer than one "
                         f"batch of {per_rank_batch * world}: lower pretrain.batch_size")
    steps_per_epoch = len(dataset) // (per_rank_batch * world)
    total_steps = epochs * steps_per_epoch

    start_epoch, rows, elapsed = 0, [], 0.0
    # The step log of the epochs in last.pt lives beside it (last.log.csv): Snakemake deletes
    # the declared outputs (log.csv too) of a job it re-runs, last.pt and its log survive.
    last_log = out / LAST_LOG
    state = _read_last(last, dev, rank) if resume else None
    if state is not None:
        if state.get("spec_hash") == spec_hash:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scaler is not None and state.get("scaler") is not None:
                scaler.load_state_dict(state["scaler"])
            start_epoch, elapsed = int(state["epoch"]), float(state.get("elapsed", 0.0))
            rows = _read_log(last_log if last_log.exists() else out / "log.csv", start_epoch)
            if rank == 0:
                print(f"resuming {out} after epoch {start_epoch}/{epochs}", file=sys.stderr)
                if len(rows) < start_epoch * steps_per_epoch:
                    print(f"warning: the step log of the first {start_epoch} epochs is "
                          f"incomplete ({len(rows)} of {start_epoch * steps_per_epoch} rows); "
                          f"log.csv will miss them", file=sys.stderr)
        elif rank == 0:
            stale = last.with_name(f"last.{state.get('spec_hash', 'unknown')}.pt")
            os.replace(last, stale)
            print(f"{last} was written by another configuration: kept as {stale.name}, "
                  f"starting afresh", file=sys.stderr)

    sampler_name = spec["sampler"]["name"]
    loss_value = float("nan")
    for epoch in range(start_epoch, epochs):
        epoch_start = time.time()
        seed = _epoch_seed(spec["seed"], epoch, rank)
        _seed_everything(seed)  # augmentations drawn in this process
        loader_gen = torch.Generator().manual_seed(_epoch_seed(spec["seed"], epoch))
        sample_gen = torch.Generator(device=dev).manual_seed(seed)
        augment_gen = (torch.Generator(device=dev).manual_seed(
            _augment_seed(spec["seed"], epoch, rank)) if batch_augment is not None else None)
        if world > 1:
            part = torch.utils.data.distributed.DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=spec["seed"],
                drop_last=True)
            part.set_epoch(epoch)
            loader = DataLoader(dataset, batch_size=per_rank_batch, sampler=part, drop_last=True,
                                generator=loader_gen, collate_fn=collate,
                                **loader_options(int(p.get("num_workers", 0)), dev))
        else:
            loader = DataLoader(dataset, batch_size=per_rank_batch, shuffle=True, drop_last=True,
                                generator=loader_gen, collate_fn=collate,
                                **loader_options(int(p.get("num_workers", 0)), dev))
        model.train()
        bar = tqdm(loader, total=steps_per_epoch, desc=f"{spec['model']}-{spec['sampler_label']} "
                   f"epoch {epoch + 1}/{epochs}", disable=not progress_bar or rank != 0,
                   leave=False, file=sys.stderr, mininterval=1.0)
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            progress = step / max(total_steps, 1)
            lr = lr_at(p["lr"], progress, p.get("lr_schedule", "cosine"),
                       p.get("lr_milestones", LR_MILESTONES))
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = {"index": batch["index"].to(dev, non_blocking=True),
                     "label": batch["label"].to(dev, non_blocking=True),
                     "views": _views(batch, dev, batch_augment, augment_gen, memory_format)}
            with autocast(precision, dev):  # fp32: no autocast at all
                outputs = ddp(batch, progress=progress, generator=sample_gen)
            loss = outputs["loss"]
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:  # fp16: scaled loss; a step with inf / NaN gradients is skipped
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            model.update_state()
            w_l = model.sampler.params(progress).get("w_l_now", "")
            # held on the device; read back every log_every steps (no host sync per step)
            fresh = _checked(step_log.add, loss, {
                "epoch": epoch, "step": step, "w_l": w_l, "lr": lr,
                "time_s": elapsed + time.time() - epoch_start}, spec=spec, last=last)
            if fresh:
                rows.extend(fresh)
                loss_value = float(fresh[-1]["loss"])
                bar.set_postfix(loss=f"{loss_value:.3f}")
        bar.close()
        fresh = _checked(step_log.flush, spec=spec, last=last)  # the epoch's last steps
        if fresh:
            rows.extend(fresh)
            loss_value = float(fresh[-1]["loss"])
        elapsed += time.time() - epoch_start
        if rank == 0:
            _write_log(last_log, rows)  # before last.pt: the log never lags the state
            _write_log(out / "log.csv", rows)
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scaler": scaler.state_dict() if scaler is not None else None,
                               "epoch": epoch + 1, "elapsed": elapsed, "spec_hash": spec_hash,
                               "spec": dict(spec)}, last)
            print(f"epoch {epoch + 1}/{epochs} loss {loss_value:.4f} "
                  f"({time.time() - epoch_start:.1f}s)", file=sys.stderr)
        if world > 1:
            dist.barrier()
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < epochs:
            return {}

    if rank != 0:
        return {}
    last_epoch = [float(r["loss"]) for r in rows if int(r["epoch"]) == epochs - 1]
    final_loss = sum(last_epoch) / len(last_epoch) if last_epoch else loss_value
    _write_log(out / "log.csv", rows)  # also when a finished run is re-run from its last.pt
    _save_checkpoint(model, spec, len(dataset), out / "checkpoint.pt")
    record = make_record(
        stage="pretrain", model=spec["model"], sampler=spec["sampler_label"],
        # the sampler label's config block (estimator included), as every stage records it;
        # the built sampler's full parameters at the end of training go to extra
        sampler_params=spec["sampler"], dataset=spec["dataset"], seed=spec["seed"],
        metrics={"final_loss": final_loss}, scale=spec["scale"], config=run_identity(spec),
        recipe=spec.get("recipe"),
        wall_time_s=elapsed, protocol=f"{sampler_name} negatives",
        extra={"epochs": epochs, "steps": total_steps, "world_size": world,
               "device": str(dev), "dataset_size": len(dataset),
               "sampler_state": model.sampler.params(1.0)},
    )
    write_record(out / "result.json", record)
    return record


_EPILOG = f"""\
outputs (in --out):
  checkpoint.pt  the final model: the query encoder (torchvision key names), its
                 architecture, the whole base model and the run spec
  last.pt        resumable state, rewritten after every epoch; --resume continues from it
                 (an unreadable one is moved to last.pt.corrupt and the run starts afresh)
  last.log.csv   the step log of the epochs in last.pt
  log.csv        one row per step: {", ".join(LOG_COLUMNS)}
  result.json    the result record (stage pretrain, metric final_loss)

--device auto: CUDA when pretrain.gpus > 0 and a CUDA device is visible, else the CPU;
--device cuda: this process's GPU (LOCAL_RANK under torchrun, else GPU 0).

exit status: 0 done; 2 a mistake in the arguments, config or data (message on stderr);
3 the loss became NaN or infinite; 130 interrupted (Ctrl-C: rerun with --resume).

example:
  python -m repro.pretrain --config config/default.yaml --model moco --sampler ring \\
      --dataset shapes --seed 0 --out results/pretrain/shapes/moco-ring/seed0
  torchrun --nproc_per_node=4 -m repro.pretrain ...   # DDP, one process per GPU (or CPU)
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m repro.pretrain``."""
    from repro.data import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m repro.pretrain",
        description="Pretrain one base model with one negative sampler on one dataset.\n"
                    "Resumable (checkpoint every epoch), deterministic on CPU, DDP under "
                    "torchrun.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="workflow config YAML (e.g. config/default.yaml)")
    parser.add_argument("--spec-json", help="a run spec as JSON (what the Snakemake rule passes)")
    parser.add_argument("--model", help="base model: a key of the config's `models`")
    parser.add_argument("--sampler", help="sampler label: a key of the config's `samplers`")
    parser.add_argument("--dataset", help=f"pretraining dataset: one of {', '.join(DATASETS)}")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the real datasets (overrides pretrain.data_root; "
                             "not needed for the offline shapes and digits)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default %(default)s)")
    parser.add_argument("--out", required=True, help="run folder (see outputs below)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.pt if it was written by the same spec")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where to train (default %(default)s; see below)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--untrained", action="store_true",
                        help="only write OUT/checkpoint.pt of the model as the seed initialises "
                             "it, untrained (the random-init baseline; --sampler not needed)")
    return parser


def _spec_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The run spec the command line describes (``--spec-json``, or ``--config`` + names)."""
    if args.spec_json:
        try:
            spec = json.loads(args.spec_json)
        except json.JSONDecodeError as err:
            parser.error(f"--spec-json is not valid JSON: {err}")
        problem = spec_problem(spec, trained=not args.untrained)
        if problem:
            parser.error(f"--spec-json: {problem}")
    else:
        if args.untrained and args.sampler is not None:
            parser.error("--untrained takes no --sampler: the untrained network is the same "
                         "for every sampler")
        names = ("model", "dataset") if args.untrained else ("model", "sampler", "dataset")
        missing = [n for n in names if getattr(args, n) is None]
        if missing:
            parser.error(f"without --spec-json, give --{' --'.join(missing)}")
        if args.config is None:
            parser.error("give --config FILE (a workflow YAML) or --spec-json")
        if args.untrained:
            spec = untrained_spec(load_config(args.config), args.model, args.dataset, args.seed)
        else:
            spec = run_spec(load_config(args.config), args.model, args.sampler, args.dataset,
                            args.seed)
    if args.data_root is not None:
        spec["pretrain"]["data_root"] = args.data_root
    return spec


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; returns the exit status (2: a usage, config or data mistake; 3: NaN; 4:
    another process is training this run folder)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = _spec_from_args(parser, args)
        if args.untrained:
            save_untrained(spec, Path(args.out))
        else:
            last = Path(args.out) / "last.pt"
            if not args.resume and last.exists():
                parser.error(f"{last} exists (an interrupted or finished run): pass --resume to "
                             f"continue it, or delete it to start over")
            # one writer per run folder (rank 0 holds it for every process of a torchrun)
            lock = run_lock(args.out) if int(os.environ.get("RANK", "0")) == 0 else nullcontext()
            with lock:
                train(spec, Path(args.out), resume=args.resume, device=args.device,
                      progress_bar=not args.no_progress)
    except RunLocked as err:
        print(f"error: {err}", file=sys.stderr)
        return 4
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"interrupted: {Path(args.out) / 'last.pt'} holds the last finished epoch (if "
              f"any); run the same command with --resume to continue", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as err:  # unknown names, bad config, missing data
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
