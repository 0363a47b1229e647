"""Meta-Dataset few-shot transfer: episode sampler, classifiers, sources (real TFDS code path with
mocked examples, never a download), and the CLI end to end on a tiny checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from transfer.fewshot.classifiers import (l2_normalise, logistic_regression_predict, mean_ci95,
                                          nearest_centroid_predict)
from transfer.fewshot.episodes import (EpisodeConfig, sample_episode, shots_per_class,
                                       support_size)
from transfer.fewshot.evaluate import domain_linear_eval, main, run_episodes


def _labels(counts: list[int]) -> np.ndarray:
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def _clusters(num_classes: int, per_class: int, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * 5
    labels = np.repeat(np.arange(num_classes), per_class)
    return l2_normalise(centres[labels] + rng.normal(size=(len(labels), dim))), labels


# ---------------------------------------------------------------------------------------------
# Episodes
# ---------------------------------------------------------------------------------------------


def test_variable_episodes_respect_meta_dataset_bounds():
    rng = np.random.default_rng(0)
    counts = list(rng.integers(2, 300, size=80))
    labels = _labels(counts)
    ways = set()
    for _ in range(200):
        ep = sample_episode(labels, rng)
        ways.add(ep.way)
        assert 5 <= ep.way <= 50
        assert len(ep.support) <= 500
        assert set(ep.support).isdisjoint(ep.query)
        per_class_query = np.bincount(ep.query_labels, minlength=ep.way)
        q = per_class_query[0]
        assert (per_class_query == q).all() and 1 <= q <= 10
        shots = np.bincount(ep.support_labels, minlength=ep.way)
        class_sizes = np.array([counts[c] for c in ep.classes])
        assert (shots >= 1).all() and (shots <= class_sizes - q).all()
        # episode labels point at the right source classes
        assert (labels[ep.support] == ep.classes[ep.support_labels]).all()
        assert (labels[ep.query] == ep.classes[ep.query_labels]).all()
    assert len(ways) > 10  # the way really varies


def test_fixed_way_shot_query_give_exact_episode_sizes():
    labels = _labels([30] * 12)
    ep = sample_episode(labels, np.random.default_rng(1), EpisodeConfig(way=5, shot=3, query=15))
    assert ep.way == 5
    assert np.bincount(ep.support_labels).tolist() == [3] * 5
    assert np.bincount(ep.query_labels).tolist() == [15] * 5


def test_fixed_shot_is_kept_and_queries_get_what_the_smallest_class_has_left():
    """Meta-Dataset's rule (compute_num_query): a fixed support size comes before the queries,
    and classes too small for it are not drawn."""
    labels = _labels([8, 8, 8, 4])
    for seed in range(20):
        ep = sample_episode(labels, np.random.default_rng(seed), EpisodeConfig(shot=5))
        assert 3 not in ep.classes.tolist()
        assert set(np.bincount(ep.support_labels).tolist()) == {5}
        assert set(np.bincount(ep.query_labels).tolist()) == {3}
    with pytest.raises(ValueError, match="need classes with at least 9 examples"):
        sample_episode(labels, np.random.default_rng(0), EpisodeConfig(shot=8))


def test_source_with_fewer_classes_than_min_way_uses_every_class():
    labels = _labels([10, 10, 10])
    ep = sample_episode(labels, np.random.default_rng(0))
    assert ep.way == 3 and ep.classes.tolist() == [0, 1, 2]


def test_singleton_classes_are_never_sampled_and_one_usable_class_is_refused():
    labels = np.array([0, 0, 0, 1, 2, 3])  # only class 0 has 2+ examples
    with pytest.raises(ValueError, match="at least 2 classes"):
        sample_episode(labels, np.random.default_rng(0))


def test_shots_total_stays_within_support_size_and_every_class_gets_one():
    rng = np.random.default_rng(3)
    for _ in range(100):
        counts = rng.integers(3, 400, size=rng.integers(5, 50))
        q = 1
        total = support_size(counts, q, rng)
        shots = shots_per_class(counts, q, total, rng)
        assert (shots >= 1).all()
        assert shots.sum() <= total
        assert total <= 500


def test_episode_config_rejects_impossible_settings():
    with pytest.raises(ValueError, match="min_way"):
        EpisodeConfig(min_way=10, max_way=5)
    with pytest.raises(ValueError, match="shot"):
        EpisodeConfig(shot=0)


# ---------------------------------------------------------------------------------------------
# Classifiers and statistics
# ---------------------------------------------------------------------------------------------


def test_both_classifiers_are_perfect_on_well_separated_clusters():
    x, y = _clusters(6, 20)
    support = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(6)])
    query = np.setdiff1d(np.arange(len(y)), support)
    for predict in (nearest_centroid_predict, logistic_regression_predict):
        assert (predict(x[support], y[support], x[query]) == y[query]).all()


def test_nearest_centroid_uses_cosine_similarity():
    support = np.array([[1.0, 0.0], [0.0, 10.0]])  # class 1 is far in Euclidean distance
    query = np.array([[0.1, 1.0]])
    assert nearest_centroid_predict(support, np.array([0, 1]), query).tolist() == [1]


def test_mean_ci95_is_normal_interval_of_the_mean():
    values = np.array([50.0, 60.0, 70.0, 80.0])
    mean, half = mean_ci95(values)
    assert mean == pytest.approx(65.0)
    assert half == pytest.approx(1.96 * np.std(values, ddof=1) / 2.0)
    assert mean_ci95(np.array([42.0])) == (42.0, 0.0)


def test_run_episodes_scores_every_classifier_on_the_same_episodes():
    x, y = _clusters(8, 15)
    out = run_episodes(x, y, 12, seed=0)
    assert set(out["accuracy"]) == {"logreg", "centroid"}
    assert out["accuracy"]["centroid"].shape == (12,)
    assert out["accuracy"]["centroid"].min() > 90.0
    again = run_episodes(x, y, 12, seed=0, classifiers=("centroid",))
    np.testing.assert_array_equal(again["accuracy"]["centroid"], out["accuracy"]["centroid"])
    with pytest.raises(ValueError, match="unknown classifiers"):
        run_episodes(x, y, 2, classifiers=("svm",))


def test_domain_linear_eval_holds_out_part_of_every_class():
    x, y = _clusters(5, 10)
    out = domain_linear_eval(x, y, holdout=0.2)
    assert out["test"] == 5 * 2 and out["train"] == 5 * 8
    assert out["accuracy"] == pytest.approx(100.0)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_download(monkeypatch):
    """Make any TFDS download or preparation attempt fail the test."""
    tfds = pytest.importorskip("tensorflow_datasets")

    def refuse(*args, **kwargs):
        raise AssertionError("a download / preparation was attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", refuse)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", refuse)
    return tfds


def _write_tfds_metadata(tfds, name: str, data_dir, split: str, n: int) -> None:
    """The metadata files a prepared dataset has (dataset_info.json, features.json), no data."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.info.set_splits(tfds.core.SplitDict(
        [tfds.core.SplitInfo(name=split, shard_lengths=[n], num_bytes=0)]))
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)


def test_missing_tfds_dataset_names_builder_data_dir_and_fix_without_downloading(
        tmp_path, no_download):
    from transfer.fewshot.sources import SourceNotPrepared, load_source

    with pytest.raises(SourceNotPrepared) as err:
        load_source("dtd", image_size=16, data_dir=str(tmp_path))
    message = str(err.value)
    assert "'dtd'" in message and str(tmp_path) in message and "tfds build dtd" in message
    assert not any(tmp_path.rglob("*.tfrecord*"))


def test_tfds_source_reads_prepared_split_through_tfds_without_downloading(tmp_path,
                                                                            no_download):
    from transfer.fewshot.sources import load_source

    tfds = no_download
    _write_tfds_metadata(tfds, "dtd", tmp_path, "test", 120)
    with tfds.testing.mock_data(num_examples=120, data_dir=str(tmp_path)):
        pool = load_source("dtd", image_size=20, data_dir=str(tmp_path), max_per_class=2)
    assert pool.images.shape[1:] == (20, 20, 3) and pool.images.dtype == np.uint8
    assert pool.labels.max() < 47 and np.bincount(pool.labels).max() <= 2
    assert pool.info["builder"] == "dtd" and pool.info["split"] == "test"


def test_mscoco_source_crops_the_largest_object():
    from transfer.fewshot.sources import _largest_object_crop

    image = np.zeros((100, 200, 3), dtype=np.uint8)
    example = {"image": image,
               "objects": {"bbox": np.array([[0.0, 0.0, 0.1, 0.1], [0.5, 0.5, 1.0, 1.0]]),
                           "label": np.array([3, 7])}}
    crop, label = _largest_object_crop(example)
    assert label == 7 and crop.shape == (50, 100, 3)


def test_image_folder_source_reads_class_subfolders(tmp_path):
    from transfer.fewshot.sources import SourceNotPrepared, load_source

    for c, colour in enumerate(["red", "blue"]):
        (tmp_path / "fungi" / f"class{c}").mkdir(parents=True)
        for i in range(3):
            Image.new("L" if i else "RGB", (30, 40), colour if not i else 100).save(
                tmp_path / "fungi" / f"class{c}" / f"{i}.png")
    pool = load_source("fungi", image_size=8, folder_root=str(tmp_path))
    assert pool.images.shape == (6, 8, 8, 3) and pool.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(SourceNotPrepared, match="ilsvrc_2012"):
        load_source("ilsvrc_2012", image_size=8, folder_root=str(tmp_path))
    with pytest.raises(ValueError, match="unknown few-shot source"):
        load_source("nope", image_size=8)


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------


def _checkpoint(path, dataset: str = "shapes"):
    from repro.models.backbones import build_backbone

    backbone = {"arch": "resnet18", "cifar_stem": True, "width": 0.125, "in_channels": 3}
    torch.manual_seed(0)
    encoder = build_backbone(**backbone)
    config = {"model": "moco", "sampler_label": "ring",
              "sampler": {"name": "ring", "w_l": 0.9, "w_u": 0.99}, "dataset": dataset,
              "seed": 0, "scale": "default"}
    torch.save({"encoder": encoder.state_dict(), "backbone": backbone, "model": {},
                "config": config, "epoch": 1}, path)
    return path


def test_cli_writes_a_fewshot_record_with_accuracy_and_ci(tmp_path, no_download, capsys):
    from repro.results import read_record

    tfds = no_download
    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    _write_tfds_metadata(tfds, "visual_domain_decathlon/gtsrb", tmp_path, "validation", 200)
    out = tmp_path / "result.json"
    with tfds.testing.mock_data(num_examples=200, data_dir=str(tmp_path)):
        rc = main(["--checkpoint", str(ckpt), "--source", "traffic_sign", "--data-dir",
                   str(tmp_path), "--episodes", "4", "--image-size", "16", "--out", str(out),
                   "--no-progress", "--max-way", "8"])
    assert rc == 0, capsys.readouterr().err
    record = read_record(out)
    assert record["stage"] == "fewshot" and record["eval_dataset"] == "traffic_sign"
    assert (record["model"], record["sampler"], record["dataset"]) == ("moco", "ring", "shapes")
    for name in ("accuracy", "accuracy_logreg", "accuracy_centroid"):
        assert 0.0 <= record["metrics"][name] <= 100.0 and name in record["ci95"]
    # the headline accuracy is the default classifier's (logreg), with its interval
    assert record["metrics"]["accuracy"] == record["metrics"]["accuracy_logreg"]
    assert record["ci95"]["accuracy"] == record["ci95"]["accuracy_logreg"]
    assert "domain_linear_accuracy" in record["metrics"]
    assert "meta-dataset episodes" in record["protocol"] and "logreg" in record["protocol"]
    assert record["extra"]["episodes"] == 4 and record["extra"]["data"]["backend"] == "tfds"
    assert 5 <= record["extra"]["way_range"][0] <= record["extra"]["way_range"][1] <= 8
    json.dumps(record)


def test_cli_reports_an_unprepared_source_as_a_clear_error(tmp_path, no_download, capsys):
    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    rc = main(["--checkpoint", str(ckpt), "--source", "omniglot", "--data-dir",
               str(tmp_path / "tfds"), "--out", str(tmp_path / "r.json"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "omniglot" in err and "tfds build omniglot" in err
    assert not (tmp_path / "r.json").exists()


def test_offline_source_runs_end_to_end(tmp_path):
    from repro.results import read_record

    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    out = tmp_path / "result.json"
    assert main(["--checkpoint", str(ckpt), "--source", "shapes", "--episodes", "3",
                 "--out", str(out), "--no-progress", "--max-per-class", "20"]) == 0
    record = read_record(out)
    assert record["extra"]["data"]["backend"] == "repro.data"


@pytest.mark.parametrize("pretrained, source, digits_size", [
    ("shapes", "digits", None), ("digits", "shapes", None),
    ("digits", "shapes", 16),  # the digits spec at another resolution: nothing assumes 32
])
def test_an_encoder_pretrained_on_one_offline_dataset_transfers_to_the_other(
        tmp_path, monkeypatch, pretrained, source, digits_size):
    """Cross-domain few-shot: the record names both datasets, and the source is read at the
    resolution (and normalised with the statistics) of the encoder's pretraining dataset."""
    import dataclasses

    from repro.data import get_spec, registry
    from repro.results import read_record

    if digits_size is not None:
        monkeypatch.setitem(registry.DATASETS, "digits",
                            dataclasses.replace(get_spec("digits"), image_size=digits_size))
    size = get_spec(pretrained).image_size
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", dataset=pretrained)
    out = tmp_path / "result.json"
    assert main(["--checkpoint", str(ckpt), "--source", source, "--episodes", "4", "--out",
                 str(out), "--no-progress", "--max-per-class", "20", "--device", "cpu"]) == 0
    record = read_record(out)
    assert (record["dataset"], record["eval_dataset"]) == (pretrained, source)
    extra = record["extra"]
    assert extra["source"] == source and extra["episodes"] == 4
    assert extra["data"] == {"source": source, "backend": "repro.data", "split": "test"}
    assert (extra["pool_size"], extra["pool_classes"]) == (200, 10)
    assert 5 <= extra["way_range"][0] <= extra["way_range"][1] <= 10
    assert extra["preprocessing"]["image_size"] == size == record["config"]["fewshot"][
        "image_size"]
    assert extra["preprocessing"]["stats_from"] == pretrained


def test_raw_pixels_of_the_other_offline_dataset_classify_far_above_chance(tmp_path):
    """The transfer path end to end with an encoder whose features are the (normalised) pixels:
    digits episodes for a shapes checkpoint, at shapes' resolution, well above chance (at most
    20%: every episode has 5 or more ways), so images and labels stay paired."""
    from repro.data import get_spec
    from transfer.fewshot.evaluate import evaluate

    ckpt = _checkpoint(tmp_path / "checkpoint.pt", dataset="shapes")
    record = evaluate(ckpt, "digits", tmp_path / "result.json", episodes=5, max_per_class=20,
                      device="cpu", encoder=lambda x: x.flatten(1), progress=False)
    assert record["extra"]["feature_dim"] == 3 * get_spec("shapes").image_size ** 2
    assert record["extra"]["way_range"][0] >= 5
    assert record["metrics"]["accuracy_centroid"] > 50.0
    assert record["metrics"]["accuracy_logreg"] > 50.0


def test_fewshot_record_names_the_device_its_features_were_computed_on(tmp_path):
    from repro.results import read_record

    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    out = tmp_path / "result.json"
    assert main(["--checkpoint", str(ckpt), "--source", "shapes", "--episodes", "2",
                 "--out", str(out), "--no-progress", "--max-per-class", "10",
                 "--device", "cpu"]) == 0
    assert read_record(out)["extra"]["device"] == "cpu"


def test_fewshot_cli_reports_cuda_without_a_gpu_as_an_error_with_exit_2(tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    assert main(["--checkpoint", str(ckpt), "--source", "shapes", "--out",
                 str(tmp_path / "r.json"), "--no-progress", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_fewshot_help_prints_a_plain_percent_sign_and_the_defaults():
    from transfer.fewshot.evaluate import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "95% CI" in text and "%%" not in text
    assert "(default 5)" in text and "(default 50)" in text and "default auto" in text


def test_support_size_is_the_meta_dataset_formula_with_the_queries_held_out():
    counts = np.array([12, 30, 7, 55])
    for q in (1, 5):
        rng = np.random.default_rng(11)
        beta = 1.0 - np.random.default_rng(11).random()  # the same U(0, 1] draw
        expected = max(4, min(500, int(sum(math.ceil(beta * min(100, c - q))
                                           for c in counts))))
        assert support_size(counts, q, rng) == expected
    # holding out more queries leaves fewer images for the support set
    assert support_size(counts, 5, np.random.default_rng(11)) < support_size(
        counts, 1, np.random.default_rng(11))
