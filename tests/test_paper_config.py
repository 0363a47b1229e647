"""The paper-scale config builds and steps every model at full size (on CPU, a tiny batch).

No GPU and no dataset are needed: this checks that config/paper.yaml's settings fit together
(ResNet-18 at full width, K = 4096 from a CIFAR-sized bank, a 65,536-entry queue, the ImageNet
stem override) before anyone spends GPU hours on them.
"""

from pathlib import Path

import pytest
import torch

from repro.config import load_config, run_spec
from repro.pretrain import model_from_spec

ROOT = Path(__file__).resolve().parent.parent
PAPER = load_config("config/paper.yaml")
DATASET_SIZE = {"cifar10": 50_000, "imagenet": 1_281_167}


def _batch(batch_size: int, image_size: int):
    g = torch.Generator().manual_seed(0)
    views = tuple(torch.randn(batch_size, 3, image_size, image_size, generator=g)
                  for _ in range(2))
    return {"index": torch.arange(batch_size), "views": views,
            "label": torch.zeros(batch_size, dtype=torch.long)}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(PAPER["models"]))
@pytest.mark.parametrize("sampler", sorted(PAPER["samplers"]))
def test_paper_models_take_a_training_step_at_full_size_on_cifar(model, sampler):
    spec = run_spec(PAPER, model, sampler, "cifar10", 0)
    torch.manual_seed(0)
    net = model_from_spec(spec, DATASET_SIZE["cifar10"])
    assert net.feature_dim == (1024 if model == "cmc" else 512)  # ResNet-18 (CMC: L + ab)
    # SimCLR's pool is the rest of the batch: its ring [0.5, 0.95] needs >= 20 candidates
    out = net(_batch(64 if model == "simclr" else 4, 32), progress=1.0)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    net.update_state()
    if model in ("ir", "cmc"):
        assert out["num_negatives"] == PAPER["models"][model]["num_negatives"] == 4096
    if model == "moco" and sampler == "uniform":
        assert out["num_negatives"] == PAPER["models"]["moco"]["queue_size"]


@pytest.mark.slow
def test_paper_imagenet_runs_use_the_standard_stem_and_take_a_step():
    spec = run_spec(PAPER, "moco", "ring", "imagenet", 0)
    assert spec["pretrain"]["backbone"]["cifar_stem"] is False
    torch.manual_seed(0)
    net = model_from_spec(spec, DATASET_SIZE["imagenet"])
    out = net(_batch(2, 224), progress=1.0)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()


def test_paper_config_inherits_nothing_cpu_sized_from_the_default():
    """The Snakefile merges config/default.yaml under config/paper.yaml key by key (except the
    model and sampler grids), so every default key paper.yaml leaves out reaches paper runs.
    Only these reviewed ones may."""
    import yaml

    default = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())

    replaced = ("models", "samplers", "pretrain.per_model", "pretrain.per_dataset")

    def inherited(low, high, path=""):
        for key, value in low.items():
            if path + key in replaced and key in high:  # the Snakefile replaces these blocks
                continue
            if key not in high:
                yield path + key
            elif isinstance(value, dict) and isinstance(high[key], dict):
                yield from inherited(value, high[key], f"{path}{key}.")

    # detection.generated: unused (the data is real); report.claims: which samplers the claims
    # table compares (paper.yaml has the same two labels)
    assert sorted(inherited(default, paper)) == ["detection.generated", "report.claims"]
    # config/released.yaml is as complete: only keys of stages it turns off (fewshot,
    # detection), the toy's CPU-free settings and the claims' labels come from the default
    released = yaml.safe_load((ROOT / "config" / "released.yaml").read_text())
    released_keys = sorted(inherited(default, released))
    assert all(k.split(".")[0] in ("fewshot", "detection", "report")
               for k in released_keys), released_keys
    assert "report.claims" in released_keys


@pytest.mark.slow
def test_paper_runs_get_none_of_the_defaults_per_model_overrides_through_the_snakefile(tmp_path):
    """What the Snakefile really hands a paper-scale job: the default's CPU-sized per-model
    overrides (IR's batch 32, MoCo's 40 epochs at temperature 0.2) are replaced, not merged."""
    import json
    import re
    import subprocess
    import sys

    snakemake = str(Path(sys.executable).with_name("snakemake"))
    specs = {}
    for model in ("ir", "moco"):
        target = f"{tmp_path}/pretrain/cifar10/{model}-ring/seed0/result.json"
        proc = subprocess.run([snakemake, "-n", "-p", target, "--configfile", "config/paper.yaml",
                               "--config", f"results_dir={tmp_path}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=True)
        found = re.search(r"--spec-json '(\{.*?\})'", proc.stdout)
        assert found, proc.stdout[-2000:]
        specs[model] = json.loads(found.group(1))["pretrain"]
    assert specs["ir"]["batch_size"] == PAPER["pretrain"]["batch_size"] == 256
    assert (specs["moco"]["epochs"], specs["moco"]["temperature"]) == (200, 0.07)
    assert "per_model" not in specs["ir"]


@pytest.mark.slow
def test_the_hard_negative_extension_adds_its_four_methods_to_the_paper_grid(tmp_path):
    """config/paper_hardneg.yaml after paper.yaml (one switch): top-k, DCL and HCL with every
    model, MoCHi with the three that have a pool of embeddings, on the paper's 4 datasets x 3
    seeds; paper.yaml's own uniform and ring runs stay as they are."""
    import re
    import subprocess
    import sys

    snakemake = str(Path(sys.executable).with_name("snakemake"))

    def pretrain_runs(*configfiles):
        proc = subprocess.run([snakemake, "-n", "--configfile", *configfiles, "--config",
                               f"results_dir={tmp_path}"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=True)
        return int(re.search(r"^pretrain\s+(\d+)$", proc.stdout, flags=re.M).group(1))

    paper = pretrain_runs("config/paper.yaml")
    extended = pretrain_runs("config/paper.yaml", "config/paper_hardneg.yaml")
    assert paper == 4 * 2 * 4 * 3  # models x (uniform, ring) x datasets x seeds
    assert extended - paper == (4 * 3 + 3) * 4 * 3
