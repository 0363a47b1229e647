"""Performance benchmarks: ratios measured in one run, printed as a table.

    python bench/run.py                 # paper-like sizes (GPU if there is one)
    python bench/run.py --quick         # tiny sizes: a smoke test, seconds on a CPU
    python bench/run.py --json out.json # also save the measured numbers
    python bench/run.py --markdown out.md  # also save the table (both rewritten per group)
    python bench/run.py --threads 1     # torch intra-op threads (default: one per CPU core)

How a ratio is measured: after warm-up, every function of a benchmark group is timed once per
round, in a fresh random order each round (seeded), so drift, warm-up and cache effects hit
every side alike and no model's warm-up biases another. Each row's ratio is the median of the
per-round ratios ``a_i / b_i`` (``a`` and ``b`` timed in the same round); the IQR column gives
their interquartile range. The verdict ``ok`` is ``yes`` / ``NO`` only when the whole IQR is on
one side of the goal (``unclear`` otherwise, or when the IQR reaches physically impossible
values), and ``invalid (noisy machine?)`` when the median is physically impossible (a part of a
step taking longer than the whole step). Run on an idle machine: the header warns when the
1-minute load average is at least the CPU count. Torch's intra-op threads are set explicitly
(``--threads``, default the CPU count) and printed.

Rows:

* ring selection vs a full ``torch.sort`` of the pool, at the paper's sizes: a MoCo queue of
  65,536 keys (whole ring kept), an IR memory bank of 50,000 entries (K = 4,096 drawn from
  the ring), batch 256, D = 128. Ratio < 1 means the top-k based ring beats sorting.
* uniform negatives from a memory bank: the dense ``(B, N)`` product path of
  ``repro.models.base.negatives_from_pool`` vs its gathered ``(B, K, D)`` rows path (forward
  and backward; the threshold ``FULL_PRODUCT_RATIO`` is forced each way), at N = 50,000 and at
  the switch-over N = FULL_PRODUCT_RATIO * K. Ratio < 1 means the dense product is faster.
* augmentation throughput: images/s of the pretraining transform
  (``repro.data.pretrain_transform(get_spec(name))``) on one CPU process, on random-noise
  images (ImageNet: 403x358 noise arrays standing in for ~400x360 photos).
* batched augmentation throughput: images/s of ``pretrain.augment: batch``
  (``repro.data.batch_augment.BatchAugment``) on a whole uint8 batch (256; 16 with ``--quick``)
  of the same noise images, on the benchmark's device (the training device); compare with the
  row above for the speed-up over the PIL path.
* per base model: ring step time / uniform step time at several points of the ``w_l``
  annealing schedule (goal <= 1.05; wide early rings take a costlier mask path than the final
  narrow one), and backbone-only forward+backward time / training step time (goal >= 0.9:
  the contrastive machinery, pools and sampler included, costs at most ~10% on top of the
  backbone; above 1 is impossible).
* per base model, beyond the paper: the step time of each hard-negative method of
  ``METHODS`` (top-k, DCL, HCL; MoCHi at the paper's (1024, 512, 256) where the model has a
  pool of embeddings) / the uniform step time, at the end of training (goal <= 1.05, as Ring's).

* paper shapes (default on CUDA and with ``--quick``; ``--paper-shapes`` elsewhere): ResNet-18
  at full width with the CIFAR stem, batch 256, 32 and 96 px, K = 4,096 of a 50,000-entry
  bank, a 65,536-key queue (tiny with ``--quick``, width 1/16 and batch 16 on the CPU): each
  model's step in images/s (fp32 and bf16 uniform, bf16 ring), ring / uniform and backbone /
  step in bf16 (goals <= 1.05, >= 0.85), the bf16 speed-up (fp32 step / bf16 step), peak
  CUDA memory, paper.yaml's DataLoader (PIL views, its workers) against the fastest step
  (goal >= 1.5), BatchAugment's images/s at the same batch (and its sync-free path / its
  indexed path, goal < 1 on an accelerator), and the projected hours of the
  paper's CIFAR10/100 + STL10 grid from the measured images/s, once per augmentation path
  (``pil``: the slower of step and loader; ``batch``: the step and its two on-device views in
  series; per model, sampler and size; goal <= 12).
* ``--peers``: our uniform MoCo v2 / SimCLR step over the same step written with lightly's
  modules (heads, ``NTXentLoss``, ``update_momentum``) on the same backbone and batch (goal
  <= 1.0; ``pip install -e .[bench]``).

Nothing is skipped: a benchmark that cannot run raises, and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import repro.models.base as model_base  # noqa: E402
from repro.data import get_spec, pretrain_transform  # noqa: E402
from repro.data.batch_augment import BatchAugment, sync_free_by_default  # noqa: E402
from repro.models import build_model  # noqa: E402
from repro.samplers import UniformSampler, ring_indices  # noqa: E402

MODELS = ("ir", "cmc", "moco", "simclr")
# Ring sampler of the step-time rows; w_l anneals linearly from 0 over the first half of
# training, so progress 0.125 / 0.25 / 1.0 give w_l = 0.225 / 0.45 / 0.9.
RING = {"name": "ring", "w_l": 0.9, "w_u": 0.99, "schedule": "linear", "w_l_start": 0.0,
        "anneal_fraction": 0.5}
PROGRESS_POINTS = (0.125, 0.25, 1.0)
# Beyond the paper (config/hardneg.yaml's methods at the paper's MoCHi setting): each one's
# training step / the uniform step, at the end of training (the top-k ring fully annealed).
METHODS = {
    "top-k": {"name": "ring", "w_l": 0.9, "w_u": 1.0, "schedule": "linear", "w_l_start": 0.0,
              "anneal_fraction": 0.5},
    "DCL": {"name": "uniform", "estimator": {"name": "debiased", "tau_plus": 0.1}},
    "HCL": {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}},
    "MoCHi": {"name": "mochi", "n_hard": 1024, "s": 512, "s_prime": 256},
}
SEED = 0

Goal = tuple[str, float]  # ("<", 1.0), ("<=", 1.05), (">=", 0.9)


# ------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def interleaved_times(fns: dict[Hashable, Callable[[], Any]], device: torch.device,
                      repeats: int, warmup: int,
                      rng: random.Random) -> dict[Hashable, list[float]]:
    """Wall times in seconds of every function in ``fns``, ``repeats`` each.

    ``warmup`` untimed calls of each first; then each round times every function once, in an
    order shuffled afresh by ``rng``. Entry ``i`` of every list comes from round ``i``.
    """
    keys = list(fns)
    for _ in range(warmup):
        for key in keys:
            fns[key]()
    times: dict[Hashable, list[float]] = {key: [] for key in keys}
    for _ in range(repeats):
        rng.shuffle(keys)
        for key in keys:
            times[key].append(_time_once(fns[key], device))
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` of ``values`` (inclusive method; one value gives it thrice)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, med, q3


def ratio_stats(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` of the paired per-round ratios ``num[i] / den[i]``."""
    if len(num) != len(den) or not num:
        raise ValueError(f"paired timings need equal non-empty lists, got {len(num)}, "
                         f"{len(den)}")
    return quartiles([a / b for a, b in zip(num, den)])


def _meets(value: float, goal: Goal) -> bool:
    op, threshold = goal
    return {"<": value < threshold, "<=": value <= threshold,
            ">=": value >= threshold, ">": value > threshold}[op]


def verdict(q1: float, median: float, q3: float, goal: Goal,
            impossible_above: Optional[float] = None) -> str:
    """``yes`` / ``NO`` when the whole IQR ``[q1, q3]`` meets / misses ``goal``, ``unclear``
    when it straddles it (or reaches above ``impossible_above``), ``invalid (noisy
    machine?)`` when the median exceeds the physically possible ``impossible_above``."""
    if impossible_above is not None and median > impossible_above:
        return "invalid (noisy machine?)"
    if impossible_above is not None and q3 > impossible_above:
        return "unclear (IQR reaches impossible values)"
    if _meets(q1, goal) and _meets(q3, goal):
        return "yes"
    if not _meets(q1, goal) and not _meets(q3, goal):
        return "NO"
    return "unclear (IQR spans goal)"


def ratio_row(name: str, a: tuple[str, list[float]], b: tuple[str, list[float]], goal: Goal,
              impossible_above: Optional[float] = None, note: str = "") -> dict[str, Any]:
    """A table row for the ratio of ``a = (label, times)`` over ``b``, timed in pairs."""
    q1, med, q3 = ratio_stats(a[1], b[1])
    return {"benchmark": name,
            "measured": f"{a[0]} {statistics.median(a[1]) * 1e3:.2f} ms",
            "baseline": f"{b[0]} {statistics.median(b[1]) * 1e3:.2f} ms",
            "ratio": round(med, 4), "q1": round(q1, 4), "q3": round(q3, 4),
            "goal": f"{goal[0]} {goal[1]:g}",
            "ok": verdict(q1, med, q3, goal, impossible_above), "note": note}


def throughput_row(name: str, items: int, times: list[float], baseline: str,
                   note: str = "") -> dict[str, Any]:
    """A table row for ``items`` processed per call, from the per-call ``times``."""
    q1, med, q3 = quartiles([items / t for t in times])
    return {"benchmark": name, "measured": f"{med:.0f} img/s (IQR {q1:.0f}-{q3:.0f})",
            "baseline": baseline, "ratio": None, "q1": None, "q3": None,
            "value": round(med, 1), "unit": "img/s", "goal": "", "ok": "", "note": note}


# ------------------------------------------------------------------------------------------
# Machine
# ------------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device, load_at_start: float) -> dict[str, Any]:
    """CPU model, core count, load average at start, torch threads, GPU name (if used)."""
    info = {"cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "load_avg_1min_at_start": round(load_at_start, 2),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_warning(load: float, cpus: int) -> Optional[str]:
    """A warning line when the 1-minute load average shows other work on the machine."""
    if load >= cpus:
        return (f"WARNING: load average {load:.2f} >= {cpus} CPU cores at start: other work "
                f"is running, timings and verdicts are unreliable")
    return None


# ------------------------------------------------------------------------------------------
# Ring selection vs a full sort
# ------------------------------------------------------------------------------------------


def _unit_rows(n: int, dim: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1).to(device)


def _selection_fns(sims: torch.Tensor, k: Optional[int], w_l: float, w_u: float,
                   device: torch.device) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(ring, full_sort)``: the ring's indices by ``ring_indices`` and by sorting."""
    batch, pool_size = sims.shape
    lo, hi = int((1 - w_u) * pool_size + 1e-6), int((1 - w_l) * pool_size + 1e-6)
    draw = torch.Generator(device=device).manual_seed(1)

    def ring() -> torch.Tensor:
        return ring_indices(sims, w_l, w_u, k, draw)

    def full_sort() -> torch.Tensor:
        band = torch.sort(sims, dim=1, descending=True).indices[:, lo:hi]
        if k is None:
            return band
        pick = torch.randint(0, hi - lo, (batch, k), generator=draw, device=device)
        return band.gather(1, pick)
    return ring, full_sort


def bench_selection(device: torch.device, quick: bool, repeats: int, warmup: int,
                    rng: random.Random) -> list[dict[str, Any]]:
    """Ring negatives (top-k based) vs sorting every anchor's whole pool."""
    batch, dim = (32, 128) if quick else (256, 128)
    cases = [  # name, pool size, K (None = whole ring), w_l, w_u
        ("MoCo queue", 4096 if quick else 65536, None, 0.9, 0.99),
        ("IR bank", 5000 if quick else 50000, 64 if quick else 4096, 0.9, 0.99),
        ("IR bank, wide ring", 5000 if quick else 50000, 64 if quick else 4096, 0.3, 0.99),
    ]
    gen = torch.Generator(device="cpu").manual_seed(SEED)
    q = _unit_rows(batch, dim, gen, device)
    fns, labels = {}, {}
    for name, pool_size, k, w_l, w_u in cases:
        sims = q @ _unit_rows(pool_size, dim, gen, device).t()
        fns[(name, "ring")], fns[(name, "sort")] = _selection_fns(sims, k, w_l, w_u, device)
        labels[name] = (f"ring selection / full sort, {name} (B={batch}, N={pool_size}, "
                        f"{'whole ring' if k is None else f'K={k}'}, ring [{w_l}, {w_u}])")
    times = interleaved_times(fns, device, repeats, warmup, rng)
    return [ratio_row(labels[name], ("ring", times[(name, "ring")]),
                      ("sort", times[(name, "sort")]), ("<", 1.0))
            for name, *_ in cases]


# ------------------------------------------------------------------------------------------
# Uniform negatives: dense (B, N) product vs gathered (B, K, D) rows
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def full_product_ratio(value: float) -> Iterator[None]:
    """Temporarily set ``repro.models.base.FULL_PRODUCT_RATIO`` (inf: always the dense
    product; 0: always gathered rows)."""
    saved = model_base.FULL_PRODUCT_RATIO
    model_base.FULL_PRODUCT_RATIO = value
    try:
        yield
    finally:
        model_base.FULL_PRODUCT_RATIO = saved


def _uniform_negatives_fn(anchors: torch.Tensor, pool: torch.Tensor, k: int, ratio: float,
                          device: torch.device) -> Callable[[], torch.Tensor]:
    """Forward + backward of ``negatives_from_pool`` with uniform negatives, the path forced
    by ``ratio``; the same draws on every call."""
    sampler = UniformSampler(k)

    def run() -> torch.Tensor:
        anchors.grad = None
        draw = torch.Generator(device=device).manual_seed(2)
        with full_product_ratio(ratio):
            neg = model_base.negatives_from_pool(sampler, anchors, pool, progress=1.0,
                                                 generator=draw)
        neg.sum().backward()
        return neg.detach()
    return run


def bench_dense_vs_gathered(device: torch.device, quick: bool, repeats: int, warmup: int,
                            rng: random.Random) -> list[dict[str, Any]]:
    """Uniform bank negatives: one ``(B, N)`` product vs ``K`` gathered rows per anchor."""
    batch, dim, k = (32, 128, 64) if quick else (256, 128, 4096)
    switch = int(model_base.FULL_PRODUCT_RATIO * k)
    sizes = (800 if quick else 50000, switch)
    gen = torch.Generator(device="cpu").manual_seed(SEED)
    anchors = _unit_rows(batch, dim, gen, device).requires_grad_()
    fns = {}
    for n in sizes:
        pool = _unit_rows(n, dim, gen, device)
        fns[(n, "dense")] = _uniform_negatives_fn(anchors, pool, k, math.inf, device)
        fns[(n, "gathered")] = _uniform_negatives_fn(anchors, pool, k, 0.0, device)
        if not torch.allclose(fns[(n, "dense")](), fns[(n, "gathered")](), atol=1e-5):
            raise RuntimeError(f"dense and gathered negatives differ at N={n}")
    times = interleaved_times(fns, device, repeats, warmup, rng)
    rows = []
    for n in sizes:
        where = ("=" if n == switch else "<" if n < switch else ">") + " FULL_PRODUCT_RATIO x K"
        chosen = "dense" if n <= switch else "gathered"
        rows.append(ratio_row(
            f"uniform negatives, dense (B, N) product / gathered (B, K, D) rows, fwd+bwd "
            f"(B={batch}, N={n}, K={k}, D={dim})",
            ("dense", times[(n, "dense")]), ("gathered", times[(n, "gathered")]), ("<", 1.0),
            note=f"N {where}: the model uses the {chosen} path"))
    return rows


# ------------------------------------------------------------------------------------------
# Augmentation throughput
# ------------------------------------------------------------------------------------------


def _noise_images(width: int, height: int, count: int) -> list[Image.Image]:
    rng = np.random.default_rng(SEED)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
            for _ in range(count)]


def _augment_datasets(quick: bool) -> tuple[str, ...]:
    return ("cifar10",) if quick else ("cifar10", "stl10", "imagenet")


def _source_size(size: int) -> tuple[int, int]:
    """``(width, height)`` of the noise images standing in for a dataset's photos:
    image-sized for CIFAR / STL10; ImageNet crops come from larger photos, here 1.8 x 1.6 the
    crop side (403x358 for 224)."""
    return (size, size) if size <= 96 else (int(size * 1.8), int(size * 1.6))


def bench_augment(quick: bool, repeats: int, warmup: int,
                  rng: random.Random) -> list[dict[str, Any]]:
    """Images per second of the pretraining transform, per dataset spec, on one process."""
    rows = []
    for name in _augment_datasets(quick):
        spec = get_spec(name)
        transform = pretrain_transform(spec)
        width, height = _source_size(spec.image_size)
        images = _noise_images(width, height, 8)
        n = 16 if quick else 256

        def run() -> None:
            for i in range(n):
                transform(images[i % len(images)])

        times = interleaved_times({name: run}, torch.device("cpu"), repeats, warmup, rng)
        rows.append(throughput_row(f"augmentation throughput, {name} pretrain transform", n,
                                   times[name], f"{width}x{height} random-noise source",
                                   "one process; DataLoader workers scale it"))
    return rows


def bench_batch_augment(device: torch.device, quick: bool, repeats: int, warmup: int,
                        rng: random.Random) -> list[dict[str, Any]]:
    """Images per second of ``BatchAugment`` on one uint8 batch, per dataset spec, on
    ``device``."""
    rows = []
    n = 16 if quick else 256
    for name in _augment_datasets(quick):
        spec = get_spec(name)
        width, height = _source_size(spec.image_size)
        arrays = [np.asarray(im) for im in _noise_images(width, height, 8)]
        batch = torch.from_numpy(np.stack([arrays[i % len(arrays)] for i in range(n)]))
        batch = batch.permute(0, 3, 1, 2).contiguous().to(device)
        augment = BatchAugment(spec)
        gen = torch.Generator(device=device).manual_seed(SEED)

        def run() -> None:
            augment(batch, gen)

        times = interleaved_times({name: run}, device, repeats, warmup, rng)
        rows.append(throughput_row(
            f"batched augmentation throughput, {name} BatchAugment (B={n})", n, times[name],
            f"{width}x{height} random-noise source, uint8 batch on {device}",
            "pretrain.augment: batch; compare with the PIL row"))
    return rows


# ------------------------------------------------------------------------------------------
# Base models: ring vs uniform step, step vs backbone-only
# ------------------------------------------------------------------------------------------


def _model_settings(device: torch.device, quick: bool) -> dict[str, Any]:
    if quick:
        return dict(batch=16, image=32, backbone={"arch": "resnet18", "cifar_stem": True,
                                                  "width": 0.125},
                    dataset_size=512, num_negatives=64, queue_size=512)
    width = 1.0 if device.type == "cuda" else 0.25
    return dict(batch=256 if device.type == "cuda" else 64, image=32,
                backbone={"arch": "resnet18", "cifar_stem": True, "width": width},
                dataset_size=50000, num_negatives=4096, queue_size=65536)


def _backbone_work(name: str, model: torch.nn.Module, x1: torch.Tensor,
                   x2: torch.Tensor) -> Callable[[], None]:
    """Forward+backward of just the backbones a training step of ``name`` runs, on the same
    images (MoCo's key encoder forward only, without gradient)."""
    if name == "ir":
        return lambda: model.encoder(x1).sum().backward()
    if name == "cmc":
        def cmc() -> None:
            l, ab = model.lab_views(x1)
            (model.encoder_l(l).sum() + model.encoder_ab(ab).sum()).backward()
        return cmc
    if name == "moco":
        def moco() -> None:
            with torch.no_grad():
                model.key_encoder(x2)
            model.encoder(x1).sum().backward()
        return moco
    if name == "simclr":
        return lambda: model.encoder(torch.cat([x1, x2])).sum().backward()
    raise ValueError(f"no backbone-only baseline for model {name!r}")


def _build(name: str, sampler: dict[str, Any], s: dict[str, Any], device: torch.device
           ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(SEED)
    model = build_model(name, sampler_config=sampler, dataset_size=s["dataset_size"],
                        backbone=s["backbone"], num_negatives=s["num_negatives"],
                        queue_size=s["queue_size"]).to(device).train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, Any],
             progress: float, device: torch.device) -> Callable[[], None]:
    """One full training step (forward, backward, optimiser, pool update) at ``progress``."""
    draw = torch.Generator(device=device).manual_seed(SEED)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        model(batch, progress=progress, generator=draw)["loss"].backward()
        opt.step()
        model.update_state()
    return run


def _model_fns(name: str, s: dict[str, Any], batch: dict[str, Any], device: torch.device
               ) -> tuple[dict[Hashable, Callable[[], None]], dict[float, float]]:
    """Timed functions of one model (uniform step, ring step per progress point, backbone
    only) keyed ``(name, variant)``, and the ring's ``w_l`` at each progress point."""
    uniform, uniform_opt = _build(name, {"name": "uniform"}, s, device)
    ring, ring_opt = _build(name, RING, s, device)
    fns: dict[Hashable, Callable[[], None]] = {
        (name, "uniform"): _step_fn(uniform, uniform_opt, batch, 1.0, device)}
    for p in PROGRESS_POINTS:
        fns[(name, p)] = _step_fn(ring, ring_opt, batch, p, device)
    for label, sampler in methods(name).items():
        model, opt = _build(name, sampler, s, device)
        fns[(name, label)] = _step_fn(model, opt, batch, 1.0, device)
    backbone = _backbone_work(name, uniform, *batch["views"])

    def backbone_only() -> None:
        uniform.zero_grad(set_to_none=True)
        backbone()
    fns[(name, "backbone")] = backbone_only
    return fns, {p: ring.sampler.current_w_l(p) for p in PROGRESS_POINTS}


def methods(name: str) -> dict[str, dict[str, Any]]:
    """The :data:`METHODS` that base model ``name`` takes (MoCHi needs a pool of embeddings)."""
    from repro.models import sampler_problem

    return {label: sampler for label, sampler in METHODS.items()
            if sampler_problem(name, sampler["name"]) is None}


def _fake_batch(s: dict[str, Any], device: torch.device) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(SEED)
    shape = (s["batch"], 3, s["image"], s["image"])
    views = (torch.randn(shape, generator=gen).to(device),
             torch.randn(shape, generator=gen).to(device))
    return {"index": torch.randperm(s["dataset_size"], generator=gen)[:s["batch"]].to(device),
            "views": views, "label": torch.zeros(s["batch"], dtype=torch.long, device=device)}


def bench_models(device: torch.device, quick: bool, repeats: int, warmup: int,
                 rng: random.Random, models: tuple[str, ...] = MODELS) -> list[dict[str, Any]]:
    """Per base model: ring / uniform step time at several ``w_l``, and backbone-only / step
    time; every model's functions are timed interleaved in one shuffled schedule."""
    s = _model_settings(device, quick)
    batch = _fake_batch(s, device)
    fns: dict[Hashable, Callable[[], None]] = {}
    w_ls = {}
    for name in models:
        model_fns, w_ls[name] = _model_fns(name, s, batch, device)
        fns.update(model_fns)
    times = interleaved_times(fns, device, repeats, warmup, rng)
    rows = []
    for name in models:
        step = ("uniform", times[(name, "uniform")])
        for p in PROGRESS_POINTS:
            rows.append(ratio_row(
                f"{name}: ring step / uniform step, w_l = {w_ls[name][p]:g} (progress {p:g})",
                ("ring", times[(name, p)]), step, ("<=", 1.05),
                note=f"ring [{w_ls[name][p]:g}, {RING['w_u']}]"))
        for label in methods(name):
            rows.append(ratio_row(f"{name}: {label} step / uniform step",
                                  (label, times[(name, label)]), step, ("<=", 1.05),
                                  note="end of training"))
        rows.append(ratio_row(f"{name}: backbone fwd+bwd / training step (uniform)",
                              ("backbone", times[(name, "backbone")]), step, (">=", 0.9),
                              impossible_above=1.0, note="> 1 is impossible"))
    return rows


# ------------------------------------------------------------------------------------------
# Paper shapes: images/s per model and precision, the loader against the step, the grid's cost
# ------------------------------------------------------------------------------------------

# The paper's CIFAR10/100 + STL10 grid: 4 models x 2 samplers x 3 datasets x 3 seeds x 200
# epochs; dataset -> (pretraining images per epoch as repro.pretrain reads them, image side).
# STL10 pretrains on its 5,000-image train split here (repro.data: split "train").
PAPER_GRID = {"models": MODELS, "samplers": ("uniform", "ring"), "seeds": 3, "epochs": 200,
              "datasets": {"cifar10": (50_000, 32), "cifar100": (50_000, 32),
                           "stl10": (5_000, 96)}}
GRID_GOAL_HOURS = 12.0
PAPER_PRECISION = "bf16"  # config/paper.yaml's pretrain.precision


def paper_shapes(device: torch.device, quick: bool) -> dict[str, Any]:
    """Sizes of the paper-shape rows: ResNet-18 at full width (CIFAR stem), batch 256, 32 and
    96 px, K = 4,096 of a 50,000-entry bank, a 65,536-key queue, paper.yaml's loader workers
    on CUDA; the same path at small sizes on the CPU (``quick``: tiny)."""
    workers = int(_paper_pretrain().get("num_workers", 0))
    if quick:
        return dict(batch=8, images=(16, 24), backbone={"arch": "resnet18", "cifar_stem": True,
                                                        "width": 0.0625},
                    dataset_size=256, num_negatives=32, queue_size=256, workers=min(workers, 1),
                    loader_batches=3)
    if device.type == "cuda":
        return dict(batch=256, images=(32, 96), backbone={"arch": "resnet18",
                                                          "cifar_stem": True, "width": 1.0},
                    dataset_size=50_000, num_negatives=4096, queue_size=65_536,
                    workers=workers, loader_batches=20)
    # the CPU: the same pools and image sizes, a backbone of 1/16 width and batch 16, so that
    # the 20 timed functions per size finish in minutes on 2 cores (bf16 autocast runs about
    # 10x slower than fp32 there: 2 images/s at 96 px, width 1/8)
    return dict(batch=16, images=(32, 96), backbone={"arch": "resnet18", "cifar_stem": True,
                                                     "width": 0.0625},
                dataset_size=50_000, num_negatives=4096, queue_size=65_536,
                workers=min(workers, os.cpu_count() or 1), loader_batches=5)


def _paper_pretrain() -> dict[str, Any]:
    from repro.config import load_config

    return load_config(ROOT / "config" / "paper.yaml")["pretrain"]


def _precise_step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer,
                     batch: dict[str, Any], precision: str, device: torch.device
                     ) -> Callable[[], None]:
    """One training step as :func:`repro.pretrain.train` runs it in ``precision`` (autocast
    forward, fp32 master weights; the step's loss stays on the device), end of training."""
    from repro.precision import autocast

    draw = torch.Generator(device=device).manual_seed(SEED)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(precision, device):
            loss = model(batch, progress=1.0, generator=draw)["loss"]
        loss.backward()
        opt.step()
        model.update_state()
    return run


def _precise_backbone_fn(name: str, model: torch.nn.Module, batch: dict[str, Any],
                         precision: str, device: torch.device) -> Callable[[], None]:
    from repro.precision import autocast

    work = _backbone_work(name, model, *batch["views"])

    def run() -> None:
        model.zero_grad(set_to_none=True)
        with autocast(precision, device):
            work()
    return run


def _shaped_batch(s: dict[str, Any], image: int, precision: str,
                  device: torch.device) -> dict[str, Any]:
    from repro.precision import uses_channels_last

    batch = _fake_batch({**s, "image": image}, device)
    if uses_channels_last(precision, device):
        batch["views"] = tuple(v.contiguous(memory_format=torch.channels_last)
                               for v in batch["views"])
    return batch


def _shaped_model(name: str, sampler: dict[str, Any], s: dict[str, Any], precision: str,
                  device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from repro.precision import uses_channels_last

    model, opt = _build(name, sampler, s, device)
    if uses_channels_last(precision, device):
        model = model.to(memory_format=torch.channels_last)
    return model, opt


def _variants(models: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(model, what, precision)`` timed per image size: uniform and ring steps and the
    backbone alone, each in fp32 and bf16 (the ring in the paper's precision only)."""
    out = []
    for name in models:
        for precision in ("fp32", PAPER_PRECISION):
            out += [(name, "uniform", precision), (name, "backbone", precision)]
        out.append((name, "ring", PAPER_PRECISION))
    return out


def step_throughputs(device: torch.device, quick: bool, repeats: int, warmup: int,
                     rng: random.Random, models: tuple[str, ...] = MODELS
                     ) -> tuple[dict[tuple[int, str, str, str], list[float]], dict[str, Any]]:
    """Per image size, every :func:`_variants` function timed interleaved; returns the times
    keyed ``(image, model, what, precision)`` and the shapes."""
    s = paper_shapes(device, quick)
    times: dict[tuple[int, str, str, str], list[float]] = {}
    for image in s["images"]:
        fns: dict[Hashable, Callable[[], None]] = {}
        for name, what, precision in _variants(models):
            batch = _shaped_batch(s, image, precision, device)
            sampler = RING if what == "ring" else {"name": "uniform"}
            model, opt = _shaped_model(name, sampler, s, precision, device)
            fns[(image, name, what, precision)] = (
                _precise_backbone_fn(name, model, batch, precision, device) if what == "backbone"
                else _precise_step_fn(model, opt, batch, precision, device))
        times.update(interleaved_times(fns, device, repeats, warmup, rng))
        del fns
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return times, s


def peak_memory_gib(name: str, s: dict[str, Any], image: int, precision: str,
                    device: torch.device) -> float:
    """Peak CUDA memory (GiB) of two ring training steps of ``name``, model built afresh."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    model, opt = _shaped_model(name, RING, s, precision, device)
    step = _precise_step_fn(model, opt, _shaped_batch(s, image, precision, device), precision,
                            device)
    step()
    step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    del model, opt, step
    torch.cuda.empty_cache()
    return peak


class _NoiseImages(torch.utils.data.Dataset):
    """``(PIL image, label)`` pairs of ``size`` x ``size`` noise, the CIFAR / STL readers'
    item format, built from one seeded uint8 array (no files)."""

    def __init__(self, count: int, size: int) -> None:
        rng = np.random.default_rng(SEED)
        self.arrays = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.arrays[i]), 0


def loader_times(dataset_name: str, s: dict[str, Any], device: torch.device,
                 repeats: int) -> list[float]:
    """Seconds per batch of paper.yaml's loader (PIL two-view pipeline of ``dataset_name``,
    ``s["workers"]`` workers, :func:`repro.pretrain.loader_options`), batches moved to
    ``device``: one value per pass of ``s["loader_batches"]`` batches, timed after the first
    batch (worker start-up is paid once per epoch)."""
    from torch.utils.data import DataLoader

    from repro.data import TwoViewDataset
    from repro.pretrain import loader_options

    spec = get_spec(dataset_name)
    n = s["loader_batches"]
    base = _NoiseImages(s["batch"] * (n + 1), spec.image_size)
    dataset = TwoViewDataset(base, pretrain_transform(spec))
    out = []
    for _ in range(repeats):
        loader = DataLoader(dataset, batch_size=s["batch"], shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(SEED),
                            **loader_options(s["workers"], device))
        batches = iter(loader)
        next(batches)
        _sync(device)
        start = time.perf_counter()
        for _ in range(n):
            views = next(batches)["views"]
            for v in views:
                v.to(device, non_blocking=True)
        _sync(device)
        out.append((time.perf_counter() - start) / n)
    return out


def grid_gpu_hours(images_per_s: dict[tuple[str, str, int], float],
                   grid: dict[str, Any] = PAPER_GRID,
                   sides: Optional[dict[int, int]] = None) -> float:
    """Hours to pretrain ``grid`` at ``images_per_s[(model, sampler, image side)]``: the sum
    over models, samplers and datasets of seeds x epochs x images / throughput. ``sides`` maps
    a dataset's side to the side measured in its place (small shapes; default: itself)."""
    sides = sides or {}
    seconds = sum(grid["seeds"] * grid["epochs"] * count
                  / images_per_s[(m, smp, sides.get(side, side))]
                  for m in grid["models"] for smp in grid["samplers"]
                  for count, side in grid["datasets"].values())
    return seconds / 3600


def serial_images_per_s(step_ips: float, augment_ips: float, views: int = 2) -> float:
    """Images/s of a step that first makes its ``views`` views on the same device
    (``pretrain.augment: batch``: two :class:`BatchAugment` draws, then the step, one after
    the other on one stream): ``1 / (1 / step_ips + views / augment_ips)``."""
    return 1.0 / (1.0 / step_ips + views / augment_ips)


def batch_augment_times(s: dict[str, Any], device: torch.device, repeats: int, warmup: int,
                        rng: random.Random) -> dict[tuple[int, str], list[float]]:
    """Seconds per call of :class:`BatchAugment` on one uint8 batch of ``s["batch"]`` noise
    images, per image side of ``s["images"]`` (CIFAR10's spec at the first, STL10's at the
    second), on ``device``, keyed ``(side, path)``: ``sync-free`` (masks; the default on an
    accelerator) and ``indexed`` (subsets; the default on the CPU), timed interleaved."""
    fns: dict[Hashable, Callable[[], Any]] = {}
    for image, dataset in zip(s["images"], ("cifar10", "stl10")):
        spec = get_spec(dataset)
        batch = torch.randint(0, 256, (s["batch"], 3, image, image), dtype=torch.uint8,
                              generator=torch.Generator().manual_seed(SEED)).to(device)
        augment = BatchAugment(spec)
        for path in ("sync-free", "indexed"):
            gen = torch.Generator(device=device).manual_seed(SEED)

            def call(a=augment, b=batch, g=gen, free=path == "sync-free") -> Any:
                return a.apply(b, a.sample(len(b), b.shape[2], b.shape[3], g), sync_free=free)
            fns[(image, path)] = call
    return interleaved_times(fns, device, repeats, warmup, rng)


def _value_row(name: str, value: float, unit: str, baseline: str, note: str = "",
               goal: str = "", ok: str = "") -> dict[str, Any]:
    return {"benchmark": name, "measured": f"{value:.2f} {unit}", "baseline": baseline,
            "ratio": None, "q1": None, "q3": None, "value": round(value, 3), "unit": unit,
            "goal": goal, "ok": ok, "note": note}


def bench_paper_shapes(device: torch.device, quick: bool, repeats: int, warmup: int,
                       rng: random.Random, models: tuple[str, ...] = MODELS
                       ) -> list[dict[str, Any]]:
    """Rows at the paper's shapes (:func:`paper_shapes`): images/s of each model's step per
    image size and precision, ring / uniform and backbone / step in bf16, the bf16 speed-up,
    peak CUDA memory, the loader against the step, and the projected hours of the paper's
    CIFAR10/100 + STL10 grid from the measured throughput (the slower of step and loader)."""
    times, s = step_throughputs(device, quick, repeats, warmup, rng, models)
    b, bf = s["batch"], PAPER_PRECISION
    rows = []
    for image in s["images"]:
        for name in models:
            t = {(what, p): times[(image, name, what, p)] for _, what, p in _variants((name,))}
            for p in ("fp32", bf):
                rows.append(throughput_row(f"{name}: step images/s, {image}px {p} (uniform)", b,
                                           t[("uniform", p)], f"batch {b}",
                                           "views per step: the batch"))
            rows.append(throughput_row(f"{name}: step images/s, {image}px {bf} (ring)", b,
                                       t[("ring", bf)], f"batch {b}", "end of training"))
            rows.append(ratio_row(f"{name}: ring step / uniform step, {image}px {bf}",
                                  ("ring", t[("ring", bf)]), ("uniform", t[("uniform", bf)]),
                                  ("<=", 1.05), note="end of training"))
            rows.append(ratio_row(f"{name}: backbone fwd+bwd / training step, {image}px {bf}",
                                  ("backbone", t[("backbone", bf)]),
                                  ("uniform", t[("uniform", bf)]), (">=", 0.85),
                                  impossible_above=1.0, note="> 1 is impossible"))
            rows.append(ratio_row(f"{name}: {bf} speed-up (fp32 step / {bf} step), {image}px",
                                  ("fp32", t[("uniform", "fp32")]), (bf, t[("uniform", bf)]),
                                  (">", 1.0), note="uniform step"))
            if device.type == "cuda":
                rows.append(_value_row(f"{name}: peak GPU memory, {image}px {bf} ring step",
                                       peak_memory_gib(name, s, image, bf, device), "GiB",
                                       f"batch {b}", "max_memory_allocated, model built afresh"))
    loader_ips = {}
    for image, dataset in zip(s["images"], ("cifar10", "stl10")):
        per_batch = loader_times(dataset, s, device, repeats)
        loader_ips[image] = b / statistics.median(per_batch)
        rows.append(throughput_row(f"DataLoader images/s, {dataset} PIL pipeline, "
                                   f"{s['workers']} workers", b, per_batch,
                                   f"batch {b}, {get_spec(dataset).image_size}px",
                                   "paper.yaml's augment: pil"))
        fastest = min(((name, w) for name in models for w in ("uniform", "ring")),
                      key=lambda k: statistics.median(times[(image, k[0], k[1], bf)]))
        step = times[(image, fastest[0], fastest[1], bf)]
        rows.append(ratio_row(f"DataLoader throughput / fastest {bf} step throughput, {image}px",
                              ("step", step), ("loader batch", per_batch), (">=", 1.5),
                              note=f"fastest step: {fastest[0]} {fastest[1]}; "
                                   f"{s['workers']} workers"))
    step_ips = {(name, what, image): b / statistics.median(times[(image, name, what, bf)])
                for image in s["images"] for name in models for what in ("uniform", "ring")}
    sides = dict(zip((32, 96), s["images"]))  # the sizes measured for the paper's 32 / 96 px
    paper = device.type == "cuda" and not quick and all(k == v for k, v in sides.items())
    augment_times = batch_augment_times(s, device, repeats, warmup, rng)
    default_path = "sync-free" if sync_free_by_default(device) else "indexed"  # what training runs
    augment_ips = {image: b / statistics.median(augment_times[(image, default_path)])
                   for image in s["images"]}
    for image, dataset in zip(s["images"], ("cifar10", "stl10")):
        rows.append(throughput_row(f"BatchAugment images/s (one view), {dataset}, {image}px", b,
                                   augment_times[(image, default_path)],
                                   f"batch {b}, uint8 on {device}",
                                   f"pretrain.augment: batch ({default_path} path, this "
                                   f"device's); a step draws two views"))
        rows.append(ratio_row(f"BatchAugment sync-free / indexed path, {dataset}, {image}px",
                              ("sync-free", augment_times[(image, "sync-free")]),
                              ("indexed", augment_times[(image, "indexed")]), ("<", 1.0),
                              note="goal on an accelerator; the CPU takes the indexed path"))
    if tuple(models) == MODELS:
        grid = "4 models x 2 samplers x 3 datasets x 3 seeds x 200 epochs"
        for label, effective, how in (
                ("augment: pil", {k: min(v, loader_ips[k[2]]) for k, v in step_ips.items()},
                 f"min(step, loader with {s['workers']} workers)"),
                ("augment: batch",
                 {k: serial_images_per_s(v, augment_ips[k[2]]) for k, v in step_ips.items()},
                 "step and two BatchAugment views in series")):
            hours = grid_gpu_hours(effective, sides=sides)
            rows.append(_value_row(
                f"projected GPU-hours, paper CIFAR10/100 + STL10 grid, {label}", hours, "h",
                grid, f"{bf}, {how} images/s per model, sampler and size; STL10 train split "
                f"5,000 images", f"<= {GRID_GOAL_HOURS:g} h",
                ("yes" if hours <= GRID_GOAL_HOURS else "NO") if paper
                else "n/a (not paper shapes)"))
    return rows


# ------------------------------------------------------------------------------------------
# Peers: our MoCo v2 and SimCLR step against the same step through lightly's modules
# ------------------------------------------------------------------------------------------

PEER_MODELS = ("moco", "simclr")


def _lightly_step_fn(name: str, ours: torch.nn.Module, s: dict[str, Any],
                     batch: dict[str, Any], device: torch.device) -> Callable[[], None]:
    """The training step of base model ``name`` written with lightly's modules (its
    projection heads, ``NTXentLoss`` (with a memory bank of the queue's size for MoCo v2),
    ``update_momentum``), on a copy of our backbone (same architecture and weights), the same
    batch, temperature, momentum and optimiser."""
    import copy

    from lightly.loss import NTXentLoss
    from lightly.models.modules.heads import MoCoProjectionHead, SimCLRProjectionHead
    from lightly.models.utils import deactivate_requires_grad, update_momentum

    backbone = copy.deepcopy(ours.encoder)
    feat, dim = ours.feature_dim, 128
    x1, x2 = batch["views"]
    if name == "simclr":
        head = SimCLRProjectionHead(feat, feat, dim, batch_norm=False).to(device)
        criterion = NTXentLoss(temperature=ours.temperature)
        params = list(backbone.parameters()) + list(head.parameters())
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

        def simclr() -> None:
            opt.zero_grad(set_to_none=True)
            z = head(backbone(torch.cat([x1, x2])).flatten(1))
            criterion(*z.chunk(2)).backward()
            opt.step()
        return simclr
    if name != "moco":
        raise ValueError(f"no lightly step for {name!r}; choose one of {PEER_MODELS}")
    head = MoCoProjectionHead(feat, feat, dim).to(device)
    backbone_m, head_m = copy.deepcopy(backbone), copy.deepcopy(head)
    deactivate_requires_grad(backbone_m)
    deactivate_requires_grad(head_m)
    criterion = NTXentLoss(temperature=ours.temperature,
                           memory_bank_size=(s["queue_size"], dim)).to(device)
    opt = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.01,
                          momentum=0.9)
    momentum = ours.key_momentum

    def moco() -> None:
        opt.zero_grad(set_to_none=True)
        q = head(backbone(x1).flatten(1))
        with torch.no_grad():
            k = head_m(backbone_m(x2).flatten(1))
        criterion(q, k).backward()
        opt.step()
        update_momentum(backbone, backbone_m, m=momentum)
        update_momentum(head, head_m, m=momentum)
    return moco


def bench_peers(device: torch.device, quick: bool, repeats: int, warmup: int,
                rng: random.Random) -> list[dict[str, Any]]:
    """Our uniform MoCo v2 / SimCLR training step / the same step through lightly's modules
    (goal <= 1.0), at :func:`_model_settings`' sizes, fp32, timed interleaved."""
    s = _model_settings(device, quick)
    batch = _fake_batch(s, device)
    fns: dict[Hashable, Callable[[], None]] = {}
    for name in PEER_MODELS:
        model, opt = _build(name, {"name": "uniform"}, s, device)
        fns[(name, "ours")] = _step_fn(model, opt, batch, 1.0, device)
        fns[(name, "lightly")] = _lightly_step_fn(name, model, s, batch, device)
    times = interleaved_times(fns, device, repeats, warmup, rng)
    import lightly

    return [ratio_row(f"{name}: our step / lightly {lightly.__version__} step (uniform)",
                      ("ours", times[(name, "ours")]), ("lightly", times[(name, "lightly")]),
                      ("<=", 1.0), note=f"same backbone, batch {s['batch']}, "
                                        f"{s['image']}px, fp32")
            for name in PEER_MODELS]


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run(quick: bool = False, device: str = "auto", repeats: Optional[int] = None,
        models: tuple[str, ...] = MODELS, threads: Optional[int] = None,
        paper_rows: Optional[bool] = None, peers: bool = False,
        on_group: Optional[Callable[[dict[str, Any]], None]] = None) -> dict[str, Any]:
    """Every benchmark; returns ``{"machine", "warning", "settings", "rows", "complete"}``.

    ``paper_rows``: the paper-shape rows (:func:`bench_paper_shapes`; default: on CUDA and with
    ``quick``); ``peers``: ours / lightly's step (:func:`bench_peers`, needs ``lightly``).
    ``on_group``: called with the result so far (``complete`` False until the last group)
    after each benchmark group, so that a run stopped part-way (a device lease's time limit)
    still leaves the groups it finished."""
    load = os.getloadavg()[0]  # before this script adds its own load
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    dev = _device(device)
    repeats = repeats or (3 if quick else 10)
    warmup = 1 if quick else 2
    rng = random.Random(SEED)
    groups: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: bench_selection(dev, quick, repeats, warmup, rng),
        lambda: bench_dense_vs_gathered(dev, quick, repeats, warmup, rng),
        lambda: bench_augment(quick, repeats, warmup, rng),
        lambda: bench_batch_augment(dev, quick, repeats, warmup, rng),
        lambda: bench_models(dev, quick, repeats, warmup, rng, models)]
    if paper_rows if paper_rows is not None else (quick or dev.type == "cuda"):
        groups.append(lambda: bench_paper_shapes(dev, quick, repeats, warmup, rng, models))
    if peers:
        groups.append(lambda: bench_peers(dev, quick, repeats, warmup, rng))
    result = {"machine": machine_info(dev, load),
              "warning": load_warning(load, os.cpu_count() or 1),
              "settings": {"quick": quick, "repeats": repeats, "warmup": warmup,
                           "torch_threads": threads, "ring": RING, "methods": METHODS,
                           "progress_points": list(PROGRESS_POINTS),
                           "models": _model_settings(dev, quick),
                           "paper_shapes": paper_shapes(dev, quick)},
              "rows": [], "complete": False}
    for i, group in enumerate(groups):
        result["rows"] += group()
        result["complete"] = i == len(groups) - 1
        if on_group is not None:
            on_group(result)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The header lines (warning, machine, settings) and the rows as a GitHub table."""
    from tabulate import tabulate

    m = result["machine"]
    head = (f"{result['warning']}\n" if result.get("warning") else "") + (
        f"machine: {m['cpu']} ({m['cpu_count']} cores, load average "
        f"{m['load_avg_1min_at_start']} at start); torch intra-op threads "
        f"{m['torch_threads']} (--threads); device {m['device']}"
        + (f" = {m['gpu']}" if "gpu" in m else "") + f"; torch {m['torch']}\n"
        f"settings: {json.dumps(result['settings'])}\n"
        "ratio = median of per-round paired ratios; IQR = their interquartile range\n"
        + ("" if result.get("complete", True) else
           "PARTIAL: the run stopped before its last benchmark group; these rows are the "
           "groups it finished\n"))
    columns = ["benchmark", "measured", "baseline", "ratio", "IQR", "goal", "ok", "note"]
    table = []
    for r in result["rows"]:
        iqr = "" if r["ratio"] is None else f"{r['q1']:.2f}-{r['q3']:.2f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        table.append([r["benchmark"], r["measured"], r["baseline"], ratio, iqr, r["goal"],
                      r["ok"], r["note"]])
    return head + tabulate(table, headers=columns, tablefmt="github")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per benchmark group (default 10; 3 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: the CPU count)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--markdown", default=None,
                        help="also write the table to this file (both files are rewritten after "
                             "each benchmark group: a stopped run keeps what it measured)")
    parser.add_argument("--paper-shapes", dest="paper_rows", action="store_true", default=None,
                        help="add the paper-shape rows (default: on CUDA and with --quick)")
    parser.add_argument("--no-paper-shapes", dest="paper_rows", action="store_false")
    parser.add_argument("--peers", action="store_true",
                        help="add ours / lightly's MoCo v2 and SimCLR step (pip install "
                             "-e .[bench])")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    from repro.io import atomic_write_json, atomic_write_text

    def on_group(partial: dict[str, Any]) -> None:
        # a run stopped part-way still leaves every group it finished: the JSON (``complete``
        # false) and the markdown table are rewritten after each group
        print(f"bench: {len(partial['rows'])} rows measured"
              + ("" if partial["complete"] else " so far"), file=sys.stderr, flush=True)
        if args.json:
            atomic_write_json(args.json, partial)
        if args.markdown:
            atomic_write_text(args.markdown, format_table(partial) + "\n")

    result = run(args.quick, args.device, args.repeats, tuple(args.models), args.threads,
                 args.paper_rows, args.peers, on_group=on_group)
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
