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
from transfer.fewshot.episodes import (EpisodeConfig, eligible_classes, query_size,
                                       sample_episode, sample_way, shots_per_class,
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


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------
# Episodes: every bound at its edge, every formula against its own arithmetic (#16's survivors)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,message", [
    ({"min_way": 1}, "need 2 <= min_way <= max_way, got min_way=1, max_way=50"),
    ({"min_way": 6, "max_way": 5}, "need 2 <= min_way <= max_way, got min_way=6, max_way=5"),
    ({"max_query": 0}, "max_query must be at least 1, got 0"),
    ({"max_support": 0}, "max_support must be at least 1, got 0"),
    ({"max_support_per_class": 0}, "max_support_per_class must be at least 1, got 0"),
    ({"way": 1}, "way must be at least 2 (or None for variable), got 1"),
    ({"shot": 0}, "shot must be at least 1 (or None for variable), got 0"),
    ({"query": 0}, "query must be at least 1 (or None for variable), got 0"),
])
def test_episode_config_refuses_one_past_each_bound_with_its_whole_message(kwargs, message):
    with pytest.raises(ValueError) as caught:
        EpisodeConfig(**kwargs)
    assert str(caught.value) == message


def test_episode_config_accepts_every_bound_itself():
    edge = EpisodeConfig(min_way=2, max_way=2, max_query=1, max_support=1,
                         max_support_per_class=1, way=2, shot=1, query=1)
    assert edge.as_dict() == {"min_way": 2, "max_way": 2, "max_query": 1, "max_support": 1,
                              "max_support_per_class": 1, "way": 2, "shot": 1, "query": 1}
    assert EpisodeConfig().as_dict() == {"min_way": 5, "max_way": 50, "max_query": 10,
                                         "max_support": 500, "max_support_per_class": 100,
                                         "way": None, "shot": None, "query": None}


def test_eligible_classes_need_two_examples_or_one_more_than_the_fixed_shot():
    labels = _labels([1, 2, 3, 4, 5])  # class c has c + 1 examples
    assert eligible_classes(labels).tolist() == [1, 2, 3, 4]
    assert eligible_classes(labels, shot=3).tolist() == [3, 4]  # 4 examples: 3 shots + 1 query
    assert eligible_classes(labels, shot=1).tolist() == [1, 2, 3, 4]


def test_sample_way_is_uniform_over_its_whole_range_and_fixed_way_may_equal_the_classes():
    config = EpisodeConfig(min_way=3, max_way=6)
    rng = np.random.default_rng(0)
    draws = np.array([sample_way(10, rng, config) for _ in range(4000)])
    assert set(draws.tolist()) == {3, 4, 5, 6}
    assert np.abs(np.bincount(draws, minlength=7)[3:] / len(draws) - 0.25).max() < 0.03
    assert {sample_way(4, rng, config) for _ in range(200)} == {3, 4}  # capped by C
    assert {sample_way(2, rng, config) for _ in range(50)} == {2}  # fewer than min_way: all
    assert sample_way(5, rng, EpisodeConfig(way=5)) == 5
    with pytest.raises(ValueError) as caught:
        sample_way(4, rng, EpisodeConfig(way=5))
    assert str(caught.value) == ("5-way episodes need 5 classes with 2+ examples each; the "
                                 "source has 4: lower --way")
    with pytest.raises(ValueError) as caught:
        sample_way(1, rng, config)
    assert str(caught.value) == ("a few-shot episode needs at least 2 classes with 2+ examples "
                                 "each, the source has 1")


def test_query_size_is_half_the_smallest_class_capped_and_at_least_one():
    assert query_size(np.array([9, 30, 40]), 10) == 4
    assert query_size(np.array([60, 30, 40]), 10) == 10
    assert query_size(np.array([2, 3]), 10) == 1
    assert query_size(np.array([3, 3]), 10) == 1


def test_support_size_has_one_image_per_class_even_when_max_support_is_smaller():
    counts = np.array([50, 50, 50, 50])
    assert support_size(counts, 1, np.random.default_rng(0), max_support=2) == 4
    # per-class cap: beta * min(3, 49) summed over 4 classes, beta from the same draw
    beta = 1.0 - np.random.default_rng(5).random()
    assert support_size(counts, 1, np.random.default_rng(5), max_support_per_class=3) == (
        4 * math.ceil(beta * 3))
    assert support_size(counts, 1, np.random.default_rng(5), max_support=7,
                        max_support_per_class=100) == min(7, 4 * math.ceil(beta * 49))


def test_shots_fill_the_support_set_to_within_one_per_class_when_no_class_is_capped():
    rng = np.random.default_rng(4)
    for _ in range(200):
        counts = rng.integers(400, 600, size=int(rng.integers(2, 30)))
        total = int(rng.integers(len(counts), 500))
        shots = shots_per_class(counts, 10, total, rng)
        # sum_c floor(R_c (S - N)) lies in (S - 2N, S - N], plus one per class
        assert total - len(counts) < shots.sum() <= total
        assert (shots >= 1).all()


def test_shot_imbalance_spans_the_factor_four_of_alpha_in_log_half_to_log_two():
    """With equal class sizes, R_c / R_c' = exp(alpha_c - alpha_c') lies in (1/4, 4): the ratio
    of two classes' shots (at a large support set) reaches close to 4 but never beyond."""
    rng = np.random.default_rng(7)
    counts = np.full(2, 100_000)  # no cap: |Im(c)| - q is far above any share of 20,000
    ratios = []
    for _ in range(3000):
        shots = shots_per_class(counts, 1, 20_002, rng)
        ratios.append(shots.max() / shots.min())
    ratios = np.array(ratios)
    assert ratios.max() < 4.0 and ratios.max() > 3.5
    assert ratios.min() < 1.01
    # class size weighs in: at equal alpha ranges the larger class gets more on average
    big_small = [shots_per_class(np.array([1000, 100]), 1, 1102, rng) for _ in range(500)]
    mean_ratio = np.mean([s[0] / s[1] for s in big_small])
    assert 8 < mean_ratio < 13  # E[exp(a - a')] * 10 = 10 * (1.5 / ln 4)^2 = 11.7


def test_shots_are_capped_at_what_the_queries_leave_in_each_class():
    rng = np.random.default_rng(2)
    counts = np.array([3, 500, 6])
    for _ in range(50):
        shots = shots_per_class(counts, 2, 5000, rng)  # shares of 4,997 far above the caps
        assert shots[0] == 1 and shots[2] == 4  # |Im(c)| - q
        assert shots[1] <= 498


def test_fixed_query_without_fixed_shot_is_capped_by_the_smallest_class_less_one():
    for counts, query, expected in (([10] * 6, 3, 3), ([10, 10, 3, 10, 10], 3, 2),
                                    ([10, 2, 10, 10, 10], 4, 1)):
        labels = _labels(counts)
        ep = sample_episode(labels, np.random.default_rng(0),
                            EpisodeConfig(way=len(counts), query=query))
        assert np.bincount(ep.query_labels).tolist() == [expected] * len(counts)
        shots = np.bincount(ep.support_labels, minlength=len(counts))
        assert (shots >= 1).all() and (shots <= np.array(counts) - expected).all()


def test_fixed_shot_takes_the_fixed_query_else_max_query_within_what_is_left():
    labels = _labels([20] * 5)
    for config, q in ((EpisodeConfig(way=5, shot=2, query=3), 3),
                      (EpisodeConfig(way=5, shot=2), 10),
                      (EpisodeConfig(way=5, shot=12), 8),
                      (EpisodeConfig(way=5, shot=2, max_query=4), 4)):
        ep = sample_episode(labels, np.random.default_rng(1), config)
        assert np.bincount(ep.query_labels).tolist() == [q] * 5
        assert np.bincount(ep.support_labels).tolist() == [config.shot] * 5


def test_fixed_shot_with_one_eligible_class_is_refused_by_name():
    labels = _labels([3, 9, 3])
    with pytest.raises(ValueError) as caught:
        sample_episode(labels, np.random.default_rng(0), EpisodeConfig(shot=5))
    assert str(caught.value) == ("5-shot episodes need classes with at least 6 examples; the "
                                 "source has 1")
    ep = sample_episode(_labels([3, 9, 3, 6]), np.random.default_rng(0), EpisodeConfig(shot=5))
    assert ep.classes.tolist() == [1, 3]  # exactly 2 eligible: allowed


def test_episode_classes_are_distinct_sorted_and_every_example_can_be_a_query_or_a_shot():
    labels = _labels([6] * 8)
    rng = np.random.default_rng(3)
    seen_query, seen_support = set(), set()
    for _ in range(300):
        ep = sample_episode(labels, rng, EpisodeConfig(way=3, shot=2, query=2))
        assert len(set(ep.classes.tolist())) == 3
        assert ep.classes.tolist() == sorted(ep.classes.tolist())
        assert (labels[ep.query] == ep.classes[ep.query_labels]).all()
        assert (labels[ep.support] == ep.classes[ep.support_labels]).all()
        assert set(ep.support).isdisjoint(ep.query)
        assert ep.query_labels.tolist() == [0, 0, 1, 1, 2, 2]
        assert ep.support_labels.tolist() == [0, 0, 1, 1, 2, 2]
        seen_query |= set(ep.query.tolist())
        seen_support |= set(ep.support.tolist())
    assert seen_query == seen_support == set(range(len(labels)))


def test_support_size_caps_each_class_at_100_by_default():
    counts = np.array([300] * 5)
    for seed in range(5):
        beta = 1.0 - np.random.default_rng(seed).random()
        assert support_size(counts, 1, np.random.default_rng(seed), max_support=10**6) == (
            5 * math.ceil(beta * 100))


def test_episode_config_caps_reach_the_support_set_per_class_and_in_all():
    labels = _labels([200] * 5)
    sizes = [len(sample_episode(labels, np.random.default_rng(seed),
                                EpisodeConfig(way=5, max_support=1000,
                                              max_support_per_class=3)).support)
             for seed in range(60)]
    # |S| <= 5 x 3; the shots' floors lose less than one per class
    assert max(sizes) <= 15 and max(sizes) >= 12 and min(sizes) >= 5
    capped = [len(sample_episode(labels, np.random.default_rng(seed),
                                 EpisodeConfig(way=5, max_support=30)).support)
              for seed in range(60)]
    assert max(capped) <= 30 and max(capped) >= 26 and min(capped) >= 5


def test_shots_are_integers():
    shots = shots_per_class(np.array([40, 7, 300]), 3, 60, np.random.default_rng(0))
    assert shots.dtype == np.int64 and (shots >= 1).all()
