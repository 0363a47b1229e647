"""bench/device_check.sh and its generated CIFAR-10: the script's pieces run on the CPU at tiny
sizes (DEVICE_CHECK_TINY=1), and the generated folder is read by the real CIFAR-10 reader."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repro.data import build_dataset

from test_bench import _bench_module, _measured

ROOT = Path(__file__).resolve().parent.parent


def _cifar_shaped():
    spec = importlib.util.spec_from_file_location("cifar_shaped", ROOT / "bench" / "cifar_shaped.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_cifar10_is_read_by_the_real_reader_pixel_for_pixel(tmp_path):
    gen = _cifar_shaped()
    gen.write_cifar10(tmp_path, train=20, test=5, seed=3)
    images, labels = gen.cifar_images(25, seed=3)
    train = build_dataset("cifar10", tmp_path, "train")
    test = build_dataset("cifar10", tmp_path, "test")
    assert (len(train), len(test)) == (20, 5)
    for i in (0, 7, 19):  # batch files in order: item i is generated image i
        image, label = train[i]
        assert image.size == (32, 32) and label == labels[i]
        assert np.array_equal(np.asarray(image), images[i])
    image, label = test[4]
    assert label == labels[24] and np.array_equal(np.asarray(image), images[24])


def test_generated_cifar10_refuses_a_train_size_that_does_not_split_into_five(tmp_path):
    with pytest.raises(ValueError, match="multiple of 5"):
        _cifar_shaped().write_cifar10(tmp_path, train=12)


@pytest.fixture(scope="module")
def tiny_check(tmp_path_factory):
    """``(out, process)``: bench/device_check.sh run once at tiny size on the CPU (the module's
    tests share it: conftest.ONE_WORKER_MODULES keeps them on one worker)."""
    out = tmp_path_factory.mktemp("device_check")
    snakemake = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "DEVICE_CHECK_TINY": "1", "PYTHON": sys.executable,
           "SNAKEMAKE": str(snakemake), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "device_check.sh"), str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    return out, proc


@pytest.mark.slow
def test_device_check_runs_every_piece_at_tiny_size_on_the_cpu(tiny_check):
    out, proc = tiny_check
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v["exit"] for k, v in summary["pieces"].items()} == {
        "pytest_gpu": 0, "bench": 0, "make_data": 0, "paper_epochs": 0, "batch_epochs": 0}
    for key, results, augment in (("epochs", "results", "pil"),
                                  ("epochs_batch", "results_batch", "batch")):
        assert sorted(summary[key]) == ["cmc", "ir", "moco", "simclr"]
        for model, epoch in summary[key].items():
            assert epoch["precision"] == "bf16" and epoch["device"] == "cpu"  # paper.yaml's
            assert epoch["augment"] == augment
            assert epoch["images_per_s"] > 0 and np.isfinite(epoch["final_loss"])
            record = json.loads((out / results / "pretrain" / "cifar10" / f"{model}-ring" /
                                 "seed0" / "result.json").read_text())
            assert record["extra"]["dataset_size"] == 500  # the generated split, read back
            assert record["config"]["pretrain"].get("augment", "pil") == augment
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert any(r["benchmark"].startswith("projected GPU-hours") for r in rows)


@pytest.mark.slow
def test_the_checks_quick_bench_measures_every_row_for_every_model(tiny_check):
    """bench/run.py --quick (the check's bench piece on the CPU): every benchmark and model runs
    end to end and every row carries a measurement."""
    out, _ = tiny_check
    bench = _bench_module()
    text = (out / "bench.md").read_text()  # the bench's own output
    assert "machine: " in text and "device cpu" in text
    assert "torch intra-op threads 1" in text
    result = json.loads((out / "bench.json").read_text())
    assert result["machine"]["torch_threads"] == 1
    rows = result["rows"]
    names = [r["benchmark"] for r in rows]
    assert len(names) == len(set(names))
    bad = [r for r in rows if not _measured(r)]
    assert not bad, bad
    assert all(r["benchmark"] in text for r in rows)
    assert sum(n.startswith("ring selection / full sort") for n in names) == 3
    assert sum(n.startswith("uniform negatives, dense (B, N) product") for n in names) == 2
    assert sum(n.startswith("augmentation throughput") for n in names) == 1
    assert sum(n.startswith("batched augmentation throughput") for n in names) == 1
    for model in bench.MODELS:
        for w_l in ("0.225", "0.45", "0.9"):
            assert any(n.startswith(f"{model}: ring step / uniform step, w_l = {w_l} (")
                       for n in names), (model, w_l)
        assert f"{model}: backbone fwd+bwd / training step (uniform)" in names
        for label in ("top-k", "DCL", "HCL"):
            assert f"{model}: {label} step / uniform step" in names
        assert (f"{model}: MoCHi step / uniform step" in names) == (model != "simclr")
    # the paper-shape rows run the same code at tiny sizes in --quick
    sizes = result["settings"]["paper_shapes"]["images"]
    for model in bench.MODELS:
        for image in sizes:
            for what in ("fp32 (uniform)", "bf16 (uniform)", "bf16 (ring)"):
                assert f"{model}: step images/s, {image}px {what}" in names
            assert f"{model}: ring step / uniform step, {image}px bf16" in names
            assert f"{model}: backbone fwd+bwd / training step, {image}px bf16" in names
            assert f"{model}: bf16 speed-up (fp32 step / bf16 step), {image}px" in names
    assert sum(n.startswith("DataLoader images/s") for n in names) == 2
    assert sum(n.startswith("DataLoader throughput / fastest bf16 step") for n in names) == 2
    for image, dataset in zip(sizes, ("cifar10", "stl10")):
        assert f"BatchAugment images/s (one view), {dataset}, {image}px" in names
        assert f"BatchAugment sync-free / indexed path, {dataset}, {image}px" in names
    grids = {r["benchmark"].rsplit(", ", 1)[1]: r for r in rows
             if r["benchmark"].startswith("projected GPU-hours")}
    assert sorted(grids) == ["augment: batch", "augment: pil"]
    for grid in grids.values():
        assert grid["value"] > 0 and grid["ok"] == "n/a (not paper shapes)"
