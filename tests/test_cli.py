"""Linear evaluation's command line and device handling, and the detection CLI's help."""

import json

import pytest
import torch

from repro.config import run_spec
from repro.linear_eval import accuracy, build_parser, fit_linear, main
from repro.pretrain import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A one-epoch IR checkpoint on 32 shapes (a tiny backbone)."""
    out = tmp_path_factory.mktemp("pretrain")
    config = {"scale": "test", "seeds": [0], "models": {"ir": {"num_negatives": 8}},
              "samplers": {"uniform": {"name": "uniform"}},
              "pretrain": {"datasets": ["shapes"], "data_root": None,
                           "backbone": {"arch": "resnet18", "cifar_stem": True, "width": 0.0625},
                           "embedding_dim": 8, "temperature": 0.2, "epochs": 1,
                           "batch_size": 16, "lr": 0.05, "num_workers": 0, "threads": 1,
                           "subset": 32}}
    train(run_spec(config, "ir", "uniform", "shapes", 0), out, progress_bar=False)
    return out / "checkpoint.pt"


def test_linear_eval_records_the_device_it_computed_on(tmp_path, checkpoint, capsys):
    code = main(["--checkpoint", str(checkpoint), "--dataset", "shapes", "--out", str(tmp_path),
                 "--epochs", "1", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["extra"]["device"] == "cpu"
    assert torch.load(tmp_path / "features.pt", weights_only=False)["train_x"].device.type == "cpu"


def test_linear_eval_reports_cuda_without_a_gpu_as_an_error_with_exit_2(tmp_path, checkpoint,
                                                                        capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["--checkpoint", str(checkpoint), "--dataset", "shapes", "--out", str(tmp_path),
                 "--device", "cuda"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --device cuda was asked for")


def test_fit_linear_leaves_the_classifier_on_the_requested_device():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=gen), torch.arange(40) % 3
    classifier = fit_linear(x, y, 3, epochs=2, batch_size=8, device="cpu")
    assert {t.device.type for t in classifier.state_dict().values()} == {"cpu"}


def test_accuracy_in_batches_equals_accuracy_over_the_whole_set():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=gen), torch.randint(0, 3, (50,), generator=gen)
    classifier = torch.nn.Linear(4, 3)
    whole = 100.0 * (classifier(x).argmax(1) == y).float().mean().item()
    assert accuracy(classifier, x, y, batch_size=7) == pytest.approx(whole)
    assert accuracy(classifier, x, y, batch_size=1000) == pytest.approx(whole)


def test_linear_eval_help_lists_the_datasets_the_defaults_and_the_device():
    text = build_parser().format_help()
    assert "shapes" in text and "cifar10" in text and "imagenet" in text
    assert "(default 30)" in text and "(default 0.01)" in text
    assert "--device" in text and "CUDA when a CUDA device is visible" in text


def test_detection_opts_help_says_what_the_pairs_are_and_that_it_goes_last():
    from transfer.detection.train import build_parser as detection_parser

    text = " ".join(detection_parser().format_help().split())
    assert "KEY VALUE pairs" in text and "Put it last" in text


def test_cached_features_are_not_reused_for_a_rebuilt_checkpoint_of_the_same_run(tmp_path,
                                                                                 checkpoint):
    """Same spec hash, new weights (a re-run after a code change): features are recomputed."""
    args = ["--dataset", "shapes", "--out", str(tmp_path / "eval"), "--epochs", "1"]
    rebuilt = tmp_path / "checkpoint.pt"
    rebuilt.write_bytes(checkpoint.read_bytes())
    assert main(["--checkpoint", str(rebuilt), *args]) == 0
    before = torch.load(tmp_path / "eval" / "features.pt", weights_only=False)["train_x"]
    state = torch.load(rebuilt, weights_only=False)
    state["model"] = {k: torch.zeros_like(v) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, rebuilt)
    assert main(["--checkpoint", str(rebuilt), *args]) == 0
    after = torch.load(tmp_path / "eval" / "features.pt", weights_only=False)["train_x"]
    assert not torch.equal(before, after)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["--epochs", "-5"], "--epochs: must be at least 1, got -5"),
    (["--lr", "0"], "--lr: must be above 0"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--weight-decay", "-1"], "--weight-decay: must be 0 or more"),
])
def test_linear_eval_refuses_settings_that_would_mean_something_else(argv, message, capsys,
                                                                      tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", "x.pt", "--dataset", "shapes", "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["--iterations", "0"], "--iterations: must be at least 1, got 0"),
    (["--iterations", "-5"], "--iterations: must be at least 1, got -5"),
    (["--lr", "-0.1"], "--lr: must be above 0"),
])
def test_detection_refuses_iterations_that_would_mean_the_paper_schedule_or_nothing(
        argv, message, capsys):
    from transfer.detection.train import build_parser as detection_parser

    with pytest.raises(SystemExit) as exit_info:
        detection_parser().parse_args(["--checkpoint", "x.pt", "--task", "voc_det",
                                       "--out", "r.json", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_fewshot_refuses_a_fixed_way_above_the_sources_classes():
    import numpy as np

    from transfer.fewshot.episodes import EpisodeConfig, sample_episode

    labels = np.repeat(np.arange(10), 6)
    with pytest.raises(ValueError, match="50-way episodes need 50 classes"):
        sample_episode(labels, np.random.default_rng(0), EpisodeConfig(way=50))
    episode = sample_episode(labels, np.random.default_rng(0), EpisodeConfig(way=10))
    assert len(episode.classes) == 10  # exactly the way asked for


def test_report_figures_on_a_missing_results_folder_is_an_error_like_tables(tmp_path, capsys):
    from repro.report.__main__ import main as report_main

    missing = str(tmp_path / "nonexistent")
    for what in ("figures", "tables"):
        assert report_main([what, "--results", missing, "--out", str(tmp_path / what)]) == 2
        assert "no results folder at" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()


def test_linear_eval_counts_same_class_negatives_and_fills_them_into_an_older_cache(tmp_path,
                                                                                  checkpoint):
    """extra.same_class: every anchor of the train split, each band of its pool of the others,
    the count recomputed from the model's pool embeddings; a cache written before the count
    existed keeps its features (the record's accuracy does not change) and gains the count."""
    from repro.checkpoint import load_model
    from repro.data import build_dataset, eval_transform, input_spec
    from repro.false_negatives import SameClassCounts
    from repro.linear_eval import _Transformed, same_class_of

    out = tmp_path / "eval"
    args = ["--checkpoint", str(checkpoint), "--dataset", "shapes", "--out", str(out),
            "--epochs", "1"]
    assert main(args) == 0
    record = json.loads((out / "result.json").read_text())
    counts = SameClassCounts.from_dict(record["extra"]["same_class"])
    n = record["extra"]["train_size"]
    assert counts.anchors == n and sum(counts.total) == n * (n - 1)
    spec = torch.load(checkpoint, weights_only=False)["config"]
    train = _Transformed(build_dataset("shapes", None, "train"),
                         eval_transform(input_spec("shapes", spec.get("pretrain"))))
    assert counts == same_class_of(load_model(checkpoint), train)

    cache = torch.load(out / "features.pt", weights_only=False)
    del cache["same_class"]
    cache["train_x"] = cache["train_x"] + 1.0  # marks the cached features
    torch.save(cache, out / "features.pt")
    assert main(args) == 0
    again = torch.load(out / "features.pt", weights_only=False)
    torch.testing.assert_close(again["train_x"], cache["train_x"])  # features kept
    assert SameClassCounts.from_dict(again["same_class"]) == counts
    assert json.loads((out / "result.json").read_text())["extra"]["same_class"] == counts.to_dict()


def test_a_linear_eval_without_a_cache_reads_each_image_once(tmp_path, checkpoint, monkeypatch):
    """Features and the same-class count's pool embeddings come from one pass over the train
    split (a second pass would double the cost at ImageNet size); the test split is read once."""
    from repro.linear_eval import _Transformed

    reads = []
    original = _Transformed.__getitem__
    monkeypatch.setattr(_Transformed, "__getitem__",
                        lambda self, i: reads.append(i) or original(self, i))
    assert main(["--checkpoint", str(checkpoint), "--dataset", "shapes", "--out",
                 str(tmp_path), "--epochs", "1"]) == 0
    extra = json.loads((tmp_path / "result.json").read_text())["extra"]
    assert len(reads) == extra["train_size"] + extra["test_size"]
    assert extra["same_class"]["anchors"] == extra["train_size"]
