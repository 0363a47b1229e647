"""Performance benchmarks: ratios measured in one run, printed as a table.

    python bench/run.py                 # paper sizes (GPU if there is one)
    python bench/run.py --quick         # tiny sizes: a smoke test, seconds on a CPU
    python bench/run.py --json out.json # also save the measured numbers

Rows (each the median of repeated timings after warm-up; paired timings alternate so that
drift hits both sides alike):

* ring selection vs a full ``torch.sort`` of the pool, at the paper's sizes: a MoCo queue of
  65,536 keys (whole ring kept), an IR memory bank of 50,000 entries (K = 4,096 drawn from
  the ring), batch 256, D = 128. Ratio < 1 means the top-k based ring beats sorting.
* augmentation throughput: images/s of the pretraining transform
  (``repro.data.pretrain_transform(get_spec(name))``) on one CPU process.
* per base model: ring step time / uniform step time (goal <= 1.05), and backbone-only
  forward+backward time / training step time (goal >= 0.9: the contrastive machinery, pools
  and sampler included, costs at most ~10% on top of the backbone).

Benchmarks whose modules are missing are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

MODELS = ("ir", "cmc", "moco", "simclr")


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


def median_time(fn: Callable[[], Any], device: torch.device, repeats: int,
                warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(_time_once(fn, device) for _ in range(repeats))


def paired_median_times(fa: Callable[[], Any], fb: Callable[[], Any], device: torch.device,
                        repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median times of ``fa`` and ``fb``, measured alternately (a, b, a, b, ...)."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_time_once(fa, device))
        tb.append(_time_once(fb, device))
    return statistics.median(ta), statistics.median(tb)


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, core count, torch threads, GPU name (if used), torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _row(name: str, measured: str, baseline: str, ratio: Optional[float], goal: str = "",
         ok: Optional[bool] = None, note: str = "") -> dict[str, Any]:
    return {"benchmark": name, "measured": measured, "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 4), "goal": goal,
            "ok": "" if ok is None else ("yes" if ok else "NO"), "note": note}


def _skip(name: str, why: str) -> dict[str, Any]:
    return _row(name, "skipped", "", None, note=why)


# ------------------------------------------------------------------------------------------
# Ring selection vs a full sort
# ------------------------------------------------------------------------------------------


def bench_selection(device: torch.device, quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Ring negatives (top-k based) vs sorting every anchor's whole pool."""
    from repro.samplers import ring_indices

    batch, dim = (32, 128) if quick else (256, 128)
    cases = [  # name, pool size, K (None = whole ring), w_l, w_u
        ("MoCo queue", 4096 if quick else 65536, None, 0.9, 0.99),
        ("IR bank", 5000 if quick else 50000, 64 if quick else 4096, 0.9, 0.99),
        ("IR bank, wide ring", 5000 if quick else 50000, 64 if quick else 4096, 0.3, 0.99),
    ]
    gen = torch.Generator(device="cpu").manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(batch, dim, generator=gen), dim=1).to(device)
    rows = []
    for name, pool_size, k, w_l, w_u in cases:
        pool = torch.nn.functional.normalize(torch.randn(pool_size, dim, generator=gen),
                                             dim=1).to(device)
        sims = q @ pool.t()
        lo, hi = int((1 - w_u) * pool_size + 1e-6), int((1 - w_l) * pool_size + 1e-6)
        draw = torch.Generator(device=device).manual_seed(1)

        def ring():
            return ring_indices(sims, w_l, w_u, k, draw)

        def full_sort():
            band = torch.sort(sims, dim=1, descending=True).indices[:, lo:hi]
            if k is None:
                return band
            pick = torch.randint(0, hi - lo, (batch, k), generator=draw, device=device)
            return band.gather(1, pick)

        t_ring, t_sort = paired_median_times(ring, full_sort, device, repeats)
        label = f"ring selection, {name} (B={batch}, N={pool_size}, " \
                f"{'whole ring' if k is None else f'K={k}'}, [{w_l}, {w_u}])"
        rows.append(_row(label, f"{t_ring * 1e3:.2f} ms", f"sort {t_sort * 1e3:.2f} ms",
                         t_ring / t_sort, "< 1", t_ring < t_sort))
    return rows


# ------------------------------------------------------------------------------------------
# Augmentation throughput
# ------------------------------------------------------------------------------------------


def _spec_value(spec: Any, key: str, default: Any) -> Any:
    if isinstance(spec, dict):
        return spec.get(key, default)
    return getattr(spec, key, default)


def bench_augment(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Images per second of the pretraining transform, per dataset spec, on one process."""
    try:
        from repro.data import get_spec, pretrain_transform
    except ImportError as err:
        return [_skip("augmentation throughput", f"repro.data not available ({err})")]
    import numpy as np
    from PIL import Image

    rows = []
    for name in (("cifar10",) if quick else ("cifar10", "stl10", "imagenet")):
        label = f"augmentation throughput, {name} pretrain transform"
        try:
            spec = get_spec(name)
            transform = pretrain_transform(spec)
        except (KeyError, ValueError) as err:
            rows.append(_skip(label, f"no spec ({err})"))
            continue
        size = int(_spec_value(spec, "image_size", 32))
        # ImageNet-sized crops come from larger photographs (typically ~400 x 350 pixels).
        source = (size, size) if size <= 96 else (int(size * 1.8), int(size * 1.6))
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 256, (*source[::-1], 3), dtype=np.uint8))
                  for _ in range(8)]
        n = 16 if quick else 256

        def run():
            for i in range(n):
                transform(images[i % len(images)])

        seconds = median_time(run, torch.device("cpu"), repeats)
        rows.append(_row(label, f"{n / seconds:.0f} img/s", f"{source[0]}x{source[1]} source",
                         None, note="one process; DataLoader workers scale it"))
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
        def cmc():
            l, ab = model.lab_views(x1)
            (model.encoder_l(l).sum() + model.encoder_ab(ab).sum()).backward()
        return cmc
    if name == "moco":
        def moco():
            with torch.no_grad():
                model.key_encoder(x2)
            model.encoder(x1).sum().backward()
        return moco
    if name == "simclr":
        return lambda: model.encoder(torch.cat([x1, x2])).sum().backward()
    raise ValueError(f"no backbone-only baseline for model {name!r}")


def bench_models(device: torch.device, quick: bool, repeats: int,
                 models: tuple[str, ...] = MODELS) -> list[dict[str, Any]]:
    """Per base model: ring / uniform step time, and backbone-only / step time."""
    try:
        from repro.models import build_model
    except ImportError as err:
        return [_skip("base-model step times", f"repro.models not available ({err})")]
    s = _model_settings(device, quick)
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(s["batch"], 3, s["image"], s["image"], generator=gen).to(device)
    x2 = torch.randn(s["batch"], 3, s["image"], s["image"], generator=gen).to(device)
    batch = {"index": torch.randperm(s["dataset_size"], generator=gen)[:s["batch"]].to(device),
             "views": (x1, x2), "label": torch.zeros(s["batch"], dtype=torch.long, device=device)}
    samplers = {"uniform": {"name": "uniform"},
                "ring": {"name": "ring", "w_l": 0.9, "w_u": 0.99, "schedule": "linear"}}
    rows = []
    for name in models:
        built = {}
        try:
            for label, sampler in samplers.items():
                torch.manual_seed(0)
                model = build_model(name, sampler_config=sampler,
                                    dataset_size=s["dataset_size"], backbone=s["backbone"],
                                    num_negatives=s["num_negatives"],
                                    queue_size=s["queue_size"]).to(device).train()
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                built[label] = (model, opt)
        except (ValueError, TypeError, KeyError) as err:
            rows.append(_skip(f"{name}: step times", f"build_model failed ({err})"))
            continue

        def step(label: str) -> Callable[[], None]:
            model, opt = built[label]
            draw = torch.Generator(device=device).manual_seed(0)

            def run():
                opt.zero_grad(set_to_none=True)
                model(batch, progress=1.0, generator=draw)["loss"].backward()
                opt.step()
                model.update_state()
            return run

        t_ring, t_uniform = paired_median_times(step("ring"), step("uniform"), device, repeats)
        rows.append(_row(f"{name}: ring step / uniform step", f"{t_ring * 1e3:.1f} ms",
                         f"{t_uniform * 1e3:.1f} ms", t_ring / t_uniform, "<= 1.05",
                         t_ring / t_uniform <= 1.05))
        model, opt = built["uniform"]
        backbone = _backbone_work(name, model, x1, x2)

        def backbone_only():
            model.zero_grad(set_to_none=True)
            backbone()
        t_backbone, t_step = paired_median_times(backbone_only, step("uniform"), device,
                                                 repeats)
        rows.append(_row(f"{name}: backbone fwd+bwd / training step (uniform)",
                         f"{t_backbone * 1e3:.1f} ms", f"step {t_step * 1e3:.1f} ms",
                         t_backbone / t_step, ">= 0.9", t_backbone / t_step >= 0.9))
    return rows


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def run(quick: bool = False, device: str = "auto", repeats: Optional[int] = None,
        models: tuple[str, ...] = MODELS) -> dict[str, Any]:
    """Every benchmark; returns ``{"machine", "settings", "rows"}``."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    repeats = repeats or (2 if quick else 10)
    rows = bench_selection(dev, quick, repeats)
    rows += bench_augment(quick, repeats)
    rows += bench_models(dev, quick, repeats, models)
    return {"machine": machine_info(dev),
            "settings": {"quick": quick, "repeats": repeats,
                         "models": _model_settings(dev, quick)},
            "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    from tabulate import tabulate

    m = result["machine"]
    head = (f"machine: {m['cpu']} ({m['cpu_count']} cores, torch threads "
            f"{m['torch_threads']}); device {m['device']}"
            + (f" = {m['gpu']}" if "gpu" in m else "") + f"; torch {m['torch']}\n"
            f"settings: {json.dumps(result['settings'])}\n")
    columns = ["benchmark", "measured", "baseline", "ratio", "goal", "ok", "note"]
    body = tabulate([[r[c] if r[c] is not None else "" for c in columns]
                     for r in result["rows"]], headers=columns, tablefmt="github")
    return head + body


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per measurement (default 10; 2 with --quick)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    result = run(args.quick, args.device, args.repeats, tuple(args.models))
    print(format_table(result))
    if args.json:
        from repro.io import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
