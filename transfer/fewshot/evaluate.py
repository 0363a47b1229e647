"""Few-shot transfer of a frozen pretrained encoder to one Meta-Dataset source.

    python -m transfer.fewshot --checkpoint results/pretrain/shapes/ir-ring/seed0/checkpoint.pt \\
        --source omniglot --data-dir ~/tensorflow_datasets --episodes 600 --out result.json

Protocol (recorded in every result):

1. load the source's images (:mod:`transfer.fewshot.sources`), resized to the encoder's
   resolution, at most ``--max-per-class`` per class;
2. frozen features of the query encoder, L2-normalised (:mod:`transfer.fewshot.features`);
3. ``--episodes`` Meta-Dataset episodes (:mod:`transfer.fewshot.episodes`); in each, a
   logistic regression and a nearest-centroid classifier are fitted on the support set and
   scored on the query set; report the mean accuracy (percent) and its 95% CI over episodes;
4. whole-domain linear evaluation: a logistic regression on ``1 - holdout`` of every class,
   accuracy on the rest (one number, no CI).

Metrics: ``accuracy`` (the ``--classifier`` one, default ``logreg``) with ``ci95``,
``accuracy_logreg`` / ``accuracy_centroid`` with ``ci95``, ``domain_linear_accuracy``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from repro.cli import positive_int
from repro.pretrain import DEVICES, pick_device
from transfer.fewshot.classifiers import CLASSIFIERS, logistic_regression_predict, mean_ci95
from transfer.fewshot.episodes import EpisodeConfig, sample_episode

__all__ = ["run_episodes", "domain_linear_eval", "frozen_feature_extractor", "evaluate", "main"]


def run_episodes(features: np.ndarray, labels: np.ndarray, episodes: int,
                 config: EpisodeConfig = EpisodeConfig(), *,
                 classifiers: Sequence[str] = ("logreg", "centroid"), seed: int = 0,
                 progress: bool = False) -> dict[str, Any]:
    """Sample ``episodes`` episodes and score each classifier on each.

    Args:
        features: ``(P, F)`` L2-normalised features; labels: ``(P,)``.
    Returns:
        ``{"accuracy": {classifier: (E,) percent}, "way": (E,), "support": (E,), "query": (E,)}``;
        every classifier sees the same episodes.
    """
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown:
        raise ValueError(f"unknown classifiers {unknown}; choose from {sorted(CLASSIFIERS)}")
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    rng = np.random.default_rng(seed)
    accuracy = {name: np.empty(episodes) for name in classifiers}
    ways, supports, queries = (np.empty(episodes, dtype=np.int64) for _ in range(3))
    steps: Any = range(episodes)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="episodes", file=sys.stderr, mininterval=1.0)
    for e in steps:
        episode = sample_episode(labels, rng, config)
        support, query = features[episode.support], features[episode.query]
        for name in classifiers:
            predicted = CLASSIFIERS[name](support, episode.support_labels, query)
            accuracy[name][e] = 100.0 * np.mean(predicted == episode.query_labels)
        ways[e], supports[e], queries[e] = episode.way, len(episode.support), len(episode.query)
    return {"accuracy": accuracy, "way": ways, "support": supports, "query": queries}


def domain_linear_eval(features: np.ndarray, labels: np.ndarray, *, holdout: float = 0.2,
                       seed: int = 0) -> dict[str, float]:
    """Whole-domain linear evaluation: logistic regression on all classes of the source.

    Every class with at least two examples contributes ``ceil(holdout * n)`` (at least one)
    test examples and the rest to training.

    Returns:
        ``{"accuracy": percent, "train": n_train, "test": n_test, "classes": C}``.
    """
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    classes = [c for c in np.unique(labels) if np.sum(labels == c) >= 2]
    if len(classes) < 2:
        raise ValueError("domain linear evaluation needs 2+ classes with 2+ examples each")
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, int(np.ceil(holdout * len(idx))))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    remap = {c: i for i, c in enumerate(classes)}
    y = np.array([remap.get(int(c), -1) for c in labels])
    predicted = logistic_regression_predict(features[train_idx], y[train_idx],
                                            features[test_idx])
    return {"accuracy": float(100.0 * np.mean(predicted == y[test_idx])),
            "train": int(len(train_idx)), "test": int(len(test_idx)), "classes": len(classes)}


def frozen_feature_extractor(checkpoint: str | Path, state: dict[str, Any]):
    """The frozen encoder of a checkpoint, ``(B, 3, S, S)`` normalised RGB -> ``(B, F)``.

    The query backbone (``repro.checkpoint.load_encoder``) when it takes RGB; otherwise (CMC's
    1-channel L encoder) the whole model's ``features`` (its RGB -> Lab views, both encoders
    concatenated, as in CMC's own evaluation).
    """
    from repro.checkpoint import load_encoder, load_model

    if int((state.get("backbone") or {}).get("in_channels", 3)) == 3:
        return load_encoder(checkpoint)

    class Features(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.features(x)

    return Features(load_model(checkpoint)).eval()


def evaluate(checkpoint: str | Path, source: str, out: str | Path, *, episodes: int = 600,
             config: EpisodeConfig = EpisodeConfig(), classifier: str = "logreg",
             data_dir: Optional[str] = None, folder_root: Optional[str] = None,
             split: Optional[str] = None, image_size: Optional[int] = None,
             max_per_class: Optional[int] = 200, max_examples: Optional[int] = None,
             holdout: float = 0.2, seed: int = 0, batch_size: int = 256, device: str = "auto",
             encoder: Optional[Callable] = None, progress: bool = True) -> dict[str, Any]:
    """Few-shot evaluation of one checkpoint on one source; writes and returns the record.

    Args:
        device: where the features are computed: ``auto`` (CUDA when visible, else the CPU),
            ``cpu`` or ``cuda`` (:func:`repro.pretrain.pick_device`); recorded in
            ``extra.device``. Episodes and classifiers run on the CPU.
        encoder: the frozen feature extractor (``(B, 3, S, S)`` -> ``(B, F)``), already on
            ``device``; by default :func:`frozen_feature_extractor` of the checkpoint.
        Other arguments: see ``python -m transfer.fewshot --help``.
    """
    from repro.checkpoint import load_checkpoint
    from repro.results import make_record, write_record
    from transfer.fewshot.features import encode_images, preprocessing_for
    from transfer.fewshot.sources import load_source

    if classifier not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {classifier!r}; choose from {sorted(CLASSIFIERS)}")
    dev = pick_device(device)
    start = time.time()
    state = load_checkpoint(checkpoint)
    prep = preprocessing_for(state, image_size)
    pool = load_source(source, image_size=prep["image_size"], data_dir=data_dir,
                       folder_root=folder_root, split=split, max_per_class=max_per_class,
                       max_examples=max_examples, seed=seed, progress=progress)
    if encoder is None:
        encoder = frozen_feature_extractor(checkpoint, state).to(dev)
    from repro.precision import inference_precision

    precision = inference_precision(state.get("config") or {}, dev)  # bf16 run on CUDA: bf16
    features = encode_images(encoder, pool.images, prep["mean"], prep["std"],
                             batch_size=batch_size, device=dev, progress=progress,
                             precision=precision)
    names = [classifier] + [c for c in CLASSIFIERS if c != classifier]
    result = run_episodes(features, pool.labels, episodes, config, classifiers=names,
                          seed=seed, progress=progress)
    domain = domain_linear_eval(features, pool.labels, holdout=holdout, seed=seed)

    metrics, ci95 = {}, {}
    for name in names:
        metrics[f"accuracy_{name}"], ci95[f"accuracy_{name}"] = mean_ci95(result["accuracy"][name])
    metrics["accuracy"], ci95["accuracy"] = metrics[f"accuracy_{classifier}"], ci95[
        f"accuracy_{classifier}"]
    metrics["domain_linear_accuracy"] = domain["accuracy"]
    way_rule = (f"{config.way}-way" if config.way else
                f"variable way [{config.min_way}, {config.max_way}]")
    shot_rule = f"{config.shot}-shot" if config.shot else "variable shot (Meta-Dataset)"
    protocol = (f"meta-dataset episodes: {episodes} x {way_rule}, {shot_rule}, "
                f"{classifier} on frozen L2-normalised features")
    spec = state.get("config") or {}
    record = make_record(
        stage="fewshot", model=spec.get("model", "unknown"),
        sampler=spec.get("sampler_label", "unknown"), sampler_params=spec.get("sampler"),
        dataset=spec.get("dataset", "unknown"), eval_dataset=source,
        seed=int(spec.get("seed", seed)), metrics=metrics, ci95=ci95,
        scale=spec.get("scale", "default"), recipe=spec.get("recipe"),
        config={"pretrain": spec, "fewshot": {"episodes": episodes, **config.as_dict(),
                                              "classifier": classifier, "seed": seed,
                                              "max_per_class": max_per_class,
                                              "image_size": prep["image_size"]}},
        wall_time_s=time.time() - start, protocol=protocol,
        extra={
            "source": source, "episodes": episodes, "episode_config": config.as_dict(),
            "classifier": classifier,
            "protocols": {
                "accuracy": protocol,
                "accuracy_logreg": "per-episode multinomial logistic regression (sklearn, C=10)",
                "accuracy_centroid": "per-episode nearest centroid, cosine similarity",
                "domain_linear_accuracy": f"whole-domain logistic regression, {holdout:.0%} of "
                                          f"every class held out",
            },
            "way_mean": float(result["way"].mean()), "way_range": [int(result["way"].min()),
                                                                  int(result["way"].max())],
            "support_mean": float(result["support"].mean()),
            "query_mean": float(result["query"].mean()),
            "pool_size": len(pool), "pool_classes": pool.num_classes,
            "feature_dim": int(features.shape[1]), "domain_linear": domain,
            "data": pool.info, "preprocessing": prep, "checkpoint": str(checkpoint),
            "device": str(dev), "feature_precision": precision,
        },
    )
    write_record(out, record)
    return record


_EPISODE_BOUNDS = {  # EpisodeConfig field -> --help; the option's default is the field's
    "min_way": "fewest classes of a variable-way episode",
    "max_way": "most classes of a variable-way episode",
    "max_query": "most queries per class",
    "max_support": "most support examples per episode",
    "max_support_per_class": "most support examples per class",
}


def _episode_config(args: argparse.Namespace) -> EpisodeConfig:
    """The :class:`EpisodeConfig` of the command line (one option per field)."""
    return EpisodeConfig(**{f.name: getattr(args, f.name) for f in fields(EpisodeConfig)})


def build_parser() -> argparse.ArgumentParser:
    from transfer.fewshot.sources import (FOLDER_SOURCES, OFFLINE_SOURCES, TFDS_SOURCES)

    parser = argparse.ArgumentParser(
        prog="python -m transfer.fewshot",
        description=textwrap.fill(
            "Meta-Dataset-style few-shot evaluation of a frozen pretrained encoder on one "
            "source: variable-way variable-shot episodes, per-episode logistic regression and "
            "nearest-centroid classifiers on L2-normalised features, mean accuracy +- 95% CI, "
            "plus whole-domain linear evaluation. Writes one result record. Never downloads: "
            "TFDS sources must be prepared in --data-dir.", 79),
        epilog=textwrap.fill(
            f"sources: TFDS {sorted(TFDS_SOURCES)}; image folders {list(FOLDER_SOURCES)} "
            f"(FOLDER_ROOT/<name>/<class>/<image>); offline {list(OFFLINE_SOURCES)}; "
            f"'tfds:<builder>[:<split>]'; 'folder:<path>'.", 79, break_on_hyphens=False)
        + "\n\nexample:\n"
          "  python -m transfer.fewshot --source dtd --episodes 600 --out result.json \\\n"
          "      --checkpoint results/pretrain/shapes/ir-ring/seed0/checkpoint.pt \\\n"
          "      --data-dir ~/tensorflow_datasets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="pretraining checkpoint.pt")
    parser.add_argument("--source", required=True, help="few-shot source (see below)")
    parser.add_argument("--out", required=True, help="result record to write (result.json)")
    parser.add_argument("--episodes", type=positive_int, default=600, help="episodes (default %(default)s)")
    parser.add_argument("--classifier", choices=sorted(CLASSIFIERS), default="logreg",
                        help="classifier behind the headline 'accuracy' metric (both are run; "
                             "default %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--folder-root", default=None,
                        help="root of image-folder sources (default data/meta_dataset), or the "
                             "data root of the offline sources")
    parser.add_argument("--split", default=None, help="override the source's split")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="input resolution (default: from the checkpoint's pretraining data)")
    parser.add_argument("--max-per-class", type=int, default=200,
                        help="examples kept per class (0: all; default %(default)s)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="stop reading a TFDS split after this many examples")
    for name, text in _EPISODE_BOUNDS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=positive_int,
                            default=getattr(EpisodeConfig(), name),
                            help=f"{text} (default %(default)s)")
    parser.add_argument("--way", type=positive_int, default=None, help="fixed way (default: variable)")
    parser.add_argument("--shot", type=positive_int, default=None, help="fixed shot (default: variable)")
    parser.add_argument("--query", type=positive_int, default=None,
                        help="fixed queries per class (default: Meta-Dataset rule, <= 10)")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="held-out fraction per class for the whole-domain linear eval "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the pool subsample, the episodes and the held-out split "
                             "(default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="images per feature batch (default %(default)s)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the features are computed (default %(default)s: CUDA when "
                             "a CUDA device is visible, else the CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        record = evaluate(
            args.checkpoint, args.source, args.out, episodes=args.episodes,
            config=_episode_config(args), classifier=args.classifier, data_dir=args.data_dir,
            folder_root=args.folder_root, split=args.split, image_size=args.image_size,
            max_per_class=args.max_per_class or None, max_examples=args.max_examples,
            holdout=args.holdout, seed=args.seed, batch_size=args.batch_size,
            device=args.device, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    m, c = record["metrics"], record["ci95"]
    print(f"{args.source}: accuracy {m['accuracy']:.2f} +- {c['accuracy']:.2f}% "
          f"({args.classifier}; centroid {m['accuracy_centroid']:.2f}, logreg "
          f"{m['accuracy_logreg']:.2f}; domain linear {m['domain_linear_accuracy']:.2f}%)")
    return 0
