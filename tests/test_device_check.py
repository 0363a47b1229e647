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


@pytest.mark.slow
def test_device_check_runs_every_piece_at_tiny_size_on_the_cpu(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "DEVICE_CHECK_TINY": "1", "PYTHON": sys.executable,
           "SNAKEMAKE": str(snakemake), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "device_check.sh"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {k: v["exit"] for k, v in summary["pieces"].items()} == {
        "pytest_gpu": 0, "bench": 0, "make_data": 0, "paper_epochs": 0}
    assert sorted(summary["epochs"]) == ["cmc", "ir", "moco", "simclr"]
    for model, epoch in summary["epochs"].items():
        assert epoch["precision"] == "bf16" and epoch["device"] == "cpu"  # paper.yaml's
        assert epoch["images_per_s"] > 0 and np.isfinite(epoch["final_loss"])
        record = json.loads((tmp_path / "results" / "pretrain" / "cifar10" / f"{model}-ring" /
                             "seed0" / "result.json").read_text())
        assert record["extra"]["dataset_size"] == 500  # the generated train split, read back
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert any(r["benchmark"].startswith("projected GPU-hours") for r in rows)
