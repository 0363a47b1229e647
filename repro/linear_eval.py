"""Linear evaluation: a linear classifier on frozen features of a pretrained base model.

    python -m repro.linear_eval --checkpoint results/pretrain/shapes/ir-ring/seed0/checkpoint.pt \\
        --dataset shapes --out results/linear_eval/shapes/ir-ring/seed0

With ``--untrained-spec JSON`` instead of ``--checkpoint``, the model is built as its seed
initialises it (:func:`repro.pretrain.save_untrained`, saved as ``OUT/checkpoint.pt``) and
evaluated in the same process: the random-init baseline of ``linear_eval.untrained``.

The frozen features (``model.features``: the query backbone's pooled output; for CMC both colour
encoders, concatenated) of the train and test splits are computed once, with the evaluation
transform, and cached in ``OUT/features.pt`` (keyed by the checkpoint's config hash). A linear
layer on standardised features is trained with Adam on the train split; the record holds test
top-1 accuracy (percent) in ``OUT/result.json``. ``--protocol augmented`` trains the layer as the
authors' released code does instead: SGD on features of training images augmented afresh each
epoch (:func:`fit_linear_augmented`); test (and train) accuracy still use the cached features.

The same job counts false negatives: how many of the negatives each similarity-percentile band of
the training images offers an anchor share its class, under the model's own pool embeddings
(:mod:`repro.false_negatives`; in the cache, and in the record's ``extra.same_class``). The
train split's features and pool embeddings come from one pass over its images.

Features and the linear layer live on ``--device`` (``auto``: CUDA when visible, else the CPU;
:func:`repro.pretrain.pick_device`); the cache and the record stay device-independent, the
record's ``extra.device`` says which was used.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from repro.cli import non_negative_float, positive_float, positive_int
from repro.false_negatives import SameClassCounts, same_class_counts
from repro.io import atomic_torch_save
from repro.precision import autocast, inference_precision
from repro.pretrain import DEVICES, pick_device
from repro.results import make_record, write_record

__all__ = ["PROTOCOLS", "extract_features", "same_class_of", "fit_linear", "fit_linear_augmented",
           "accuracy", "evaluate", "build_parser", "main"]


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, base, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        img, label = self.base[i]
        return self.transform(img), label


@torch.no_grad()
def extract_features(model: nn.Module, dataset, batch_size: int = 256,
                     desc: str = "features",
                     device: str | torch.device = "cpu",
                     precision: str = "fp32") -> tuple[Tensor, Tensor]:
    """``(N, F)`` float32 frozen features and ``(N,)`` labels of a dataset of transformed
    images.

    ``model`` must already be on ``device``; each batch is moved there and its features back
    to the CPU. ``precision``: autocast of the forward (:func:`repro.precision.autocast`;
    ``bf16`` on CUDA for a bf16 run, :func:`repro.precision.inference_precision`).
    """
    (feats,), labels = _batched(lambda x: (model.features(x).float().cpu(),), dataset,
                                batch_size, desc, device, precision)
    return feats, labels


@torch.no_grad()
def same_class_of(model: nn.Module, dataset, batch_size: int = 256,
                  device: str | torch.device = "cpu",
                  precision: str = "fp32") -> SameClassCounts:
    """Same-class negatives per similarity-percentile band
    (:func:`repro.false_negatives.same_class_counts`) of a dataset of transformed images,
    embedded by ``model.pool_embeddings`` (``model`` on ``device``, in eval mode). The
    embeddings stay on ``device``, where the ranking runs."""
    (anchors, candidates), labels = _batched(lambda x: _pool_fp32(model, x), dataset,
                                             batch_size, "pool embeddings", device, precision)
    return same_class_counts(anchors, candidates, labels.to(anchors.device))


def _pool_fp32(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``model.pool_embeddings(x)`` (anchors, candidates) in float32, on ``x``'s device."""
    return tuple(z.float() for z in model.pool_embeddings(x))


def _batched(forward, dataset, batch_size: int, desc: str, device: str | torch.device,
             precision: str) -> tuple[list[Tensor], Tensor]:
    """``forward`` (a batch on ``device`` -> a tuple of tensors, under ``precision``'s
    autocast) over ``dataset`` in order: each output concatenated over the batches, and the
    ``(N,)`` labels on the CPU."""
    device = torch.device(device)
    outputs, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        pin_memory=device.type == "cuda")
    for x, y in tqdm(loader, desc=desc, leave=False, file=sys.stderr, mininterval=1.0):
        with autocast(precision, device):
            outputs.append(forward(x.to(device, non_blocking=True)))
        labels.append(torch.as_tensor(y))
    return [torch.cat(parts) for parts in zip(*outputs)], torch.cat(labels).long()


def fit_linear(train_x: Tensor, train_y: Tensor, num_classes: int, *, epochs: int = 30,
               lr: float = 0.01, weight_decay: float = 0.0, batch_size: int = 256,
               seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
    """Train ``Linear(F, num_classes)`` on standardised features ``(N, F)``; returns a module
    that standardises its input with the train statistics and applies the linear layer.

    The layer is initialised and the batches are drawn on the CPU (the same for every
    ``device``); the layer, and each batch in turn, live on ``device``, where the returned
    module stays.
    """
    gen = torch.Generator().manual_seed(seed)
    mean, std = train_x.mean(0).to(device), train_x.std(0).clamp_min(1e-6).to(device)
    torch.manual_seed(seed)
    linear = nn.Linear(train_x.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(linear.parameters(), lr=lr, weight_decay=weight_decay)
    n = train_x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            z = (train_x[idx].to(device, non_blocking=True) - mean) / std
            loss = F.cross_entropy(linear(z), train_y[idx].to(device, non_blocking=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    class Standardised(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.linear = linear

        def forward(self, x: Tensor) -> Tensor:
            return self.linear((x - self.mean) / self.std)

    return Standardised().eval()


PROTOCOLS = ("features", "augmented")
"""``features``: Adam on cached, standardised frozen features of un-augmented images
(:func:`fit_linear`). ``augmented``: the authors' released protocol, SGD with momentum 0.9 on
the frozen encoder's features of training images augmented afresh every epoch, no
standardisation (:func:`fit_linear_augmented`)."""


def fit_linear_augmented(model: nn.Module, train_set, num_classes: int, feature_dim: int, *,
                         epochs: int = 100, lr: float = 0.01, weight_decay: float = 1e-5,
                         batch_size: int = 256, seed: int = 0, momentum: float = 0.9,
                         num_workers: int = 0, device: str | torch.device = "cpu",
                         precision: str = "fp32") -> nn.Module:
    """The released linear evaluation (``TransferSystem`` of mhw32/contrastive-ring-public):
    ``Linear(feature_dim, num_classes)`` trained with SGD (``momentum``, ``weight_decay``,
    constant ``lr``) on ``model.features`` of ``train_set``'s images as its transform (the
    pretraining augmentation) draws them each epoch; the encoder stays frozen in eval mode
    (batch-norm statistics fixed). Returns the layer, on ``device``, in eval mode.

    The layer is initialised first (``torch.manual_seed(seed)``), then each epoch visits
    ``train_set`` in the order of ``torch.randperm`` from a generator seeded with ``seed``; with
    ``num_workers=0`` the augmentations draw from the global RNG in that order.

    Args:
        model: the pretrained base model, already on ``device``.
        train_set: ``(image tensor, label)`` pairs, augmented by its own transform.
        feature_dim: width of ``model.features`` (CMC: both views').
        precision: autocast of the frozen forward (as :func:`extract_features`); the linear
            layer trains in float32.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    linear = nn.Linear(feature_dim, num_classes).to(device)
    optimizer = torch.optim.SGD(linear.parameters(), lr=lr, momentum=momentum,
                                weight_decay=weight_decay)
    model.eval()
    n = len(train_set)
    if n == 0:
        raise ValueError("fit_linear_augmented: the training set is empty")
    for epoch in tqdm(range(epochs), desc="linear (augmented)", leave=False, file=sys.stderr,
                      mininterval=1.0):
        order = torch.randperm(n, generator=gen).tolist()
        loader = DataLoader(train_set, batch_sampler=[order[i:i + batch_size]
                                                      for i in range(0, n, batch_size)],
                            num_workers=num_workers,
                            # its own generator: worker seeds never draw from the global RNG
                            generator=torch.Generator().manual_seed(seed + epoch),
                            pin_memory=torch.device(device).type == "cuda")
        for x, y in loader:
            with torch.no_grad(), autocast(precision, device):
                feats = model.features(x.to(device, non_blocking=True)).float()
            loss = F.cross_entropy(linear(feats), torch.as_tensor(y).long().to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return linear.eval()


@torch.no_grad()
def accuracy(classifier: nn.Module, x: Tensor, y: Tensor, batch_size: int = 4096) -> float:
    """Top-1 accuracy in percent, in batches on the classifier's device."""
    device = next(classifier.parameters()).device
    correct = sum(int((classifier(x[i:i + batch_size].to(device)).argmax(1)
                       == y[i:i + batch_size].to(device)).sum())
                  for i in range(0, len(x), batch_size))
    return 100.0 * correct / max(len(x), 1)


def evaluate(checkpoint: Path, dataset: str, out: Path, *, data_root: Optional[str] = None,
             epochs: int = 30, lr: float = 0.01, weight_decay: float = 0.0,
             batch_size: int = 256, seed: int = 0, protocol: str = "features",
             device: str = "auto") -> dict[str, Any]:
    """Linear-evaluate one checkpoint on one dataset; writes and returns the record.

    ``protocol``: one of :data:`PROTOCOLS`. ``device``: ``auto``, ``cpu`` or ``cuda``
    (:func:`repro.pretrain.pick_device`).
    """
    from repro.checkpoint import load_checkpoint, load_model
    from repro.data import build_dataset, eval_transform, get_spec, input_spec
    from repro.data.augment import pretrain_transform

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")

    dev = pick_device(device)
    start = time.time()
    state = load_checkpoint(checkpoint)
    spec = state["config"]
    cache = Path(out) / "features.pt"
    # The spec hash says which run; size and mtime say which write of it (a checkpoint rebuilt
    # by the same spec, e.g. after a code change, must not get the old features).
    stat = Path(checkpoint).stat()
    key = {"checkpoint_hash": state.get("spec_hash"), "dataset": dataset,
           "checkpoint_file": [stat.st_size, stat.st_mtime_ns]}
    precision = inference_precision(spec, dev)  # bf16 features on CUDA for a bf16 run
    if precision != "fp32":  # fp32 caches keep their key
        key["precision"] = precision
    cached = torch.load(cache, weights_only=False) if cache.exists() else None
    if cached is not None and cached.get("key") == key:
        train_x, train_y, test_x, test_y = (cached[k] for k in ("train_x", "train_y",
                                                                 "test_x", "test_y"))
        same_class = cached.get("same_class")  # absent from caches of older versions
    else:
        train_x = same_class = None
    if train_x is None or same_class is None:
        model = load_model(checkpoint).to(dev)
        transform = eval_transform(input_spec(dataset, spec.get("pretrain")))
        train_set = _Transformed(build_dataset(dataset, data_root, "train"), transform)
        if train_x is None:  # one pass over the train split: features and pool embeddings
            (train_x, anchors, candidates), train_y = _batched(
                lambda x: (model.features(x).float().cpu(), *_pool_fp32(model, x)),
                train_set, batch_size, "train features", dev, precision)
            same_class = same_class_counts(anchors, candidates,
                                           train_y.to(anchors.device)).to_dict()
            del anchors, candidates
            test_x, test_y = extract_features(
                model, _Transformed(build_dataset(dataset, data_root, "test"), transform),
                batch_size, "test features", dev, precision=precision)
        else:  # a cache from before the count: the pool embeddings alone
            same_class = same_class_of(model, train_set, batch_size, dev, precision).to_dict()
        atomic_torch_save({"key": key, "train_x": train_x, "train_y": train_y,
                           "test_x": test_x, "test_y": test_y, "same_class": same_class}, cache)
    num_classes = get_spec(dataset).num_classes
    if protocol == "augmented":
        train_set = _Transformed(build_dataset(dataset, data_root, "train"),
                                 pretrain_transform(input_spec(dataset, spec.get("pretrain"))))
        classifier = fit_linear_augmented(load_model(checkpoint).to(dev), train_set, num_classes,
                                          int(train_x.shape[1]), epochs=epochs, lr=lr,
                                          weight_decay=weight_decay, batch_size=batch_size,
                                          seed=seed, device=dev, precision=precision)
        how = f"linear on frozen features of augmented images (SGD, {epochs} epochs)"
    else:
        classifier = fit_linear(train_x, train_y, num_classes, epochs=epochs, lr=lr,
                                weight_decay=weight_decay, batch_size=batch_size, seed=seed,
                                device=dev)
        how = f"linear on frozen features (Adam, {epochs} epochs)"
    settings = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay,
                "batch_size": batch_size, "seed": seed}
    if protocol != "features":  # absent = features: records (and hashes) as before the option
        settings["protocol"] = protocol
    record = make_record(
        stage="linear_eval", model=spec["model"], sampler=spec["sampler_label"],
        sampler_params=spec["sampler"], dataset=spec["dataset"], eval_dataset=dataset,
        seed=spec["seed"],
        metrics={"top1": accuracy(classifier, test_x, test_y),
                 "train_top1": accuracy(classifier, train_x, train_y)},
        scale=spec["scale"], recipe=spec.get("recipe"),
        config={"pretrain": spec, "linear_eval": settings},
        wall_time_s=time.time() - start,
        protocol=how,
        extra={"feature_dim": int(train_x.shape[1]), "train_size": int(train_x.shape[0]),
               "test_size": int(test_x.shape[0]), "checkpoint": str(checkpoint),
               "device": str(dev), "feature_precision": precision,
               "same_class": same_class, **settings},
    )
    write_record(Path(out) / "result.json", record)
    return record


_SETTINGS = {  # evaluate() keyword -> (type, --help); the option's default is evaluate()'s
    "epochs": (positive_int, "epochs of the linear layer"),
    "lr": (positive_float, "Adam learning rate"),
    "weight_decay": (non_negative_float, "Adam weight decay"),
    "batch_size": (positive_int, "batch size of feature extraction and training"),
    "seed": (int, "seed of the layer's initialisation and batch order"),
    "protocol": (str, "features: Adam on cached, standardised features of un-augmented images; "
                      "augmented: the authors' released protocol, SGD (momentum 0.9) on "
                      "features of images augmented afresh each epoch"),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m repro.linear_eval``."""
    from repro.data import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m repro.linear_eval",
        description="Train a linear classifier on frozen features of a pretrained checkpoint\n"
                    "and write the test top-1 accuracy as a result record (OUT/result.json).\n"
                    "The features are cached in OUT/features.pt.",
        epilog="--device auto: CUDA when a CUDA device is visible, else the CPU.\n\n"
               "example:\n"
               "  python -m repro.linear_eval --dataset shapes \\\n"
               "      --checkpoint results/pretrain/shapes/ir-ring/seed0/checkpoint.pt \\\n"
               "      --out results/linear_eval/shapes/ir-ring/seed0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a pretraining checkpoint.pt")
    source.add_argument("--untrained-spec", metavar="JSON",
                        help="instead of --checkpoint: a run spec (repro.config.untrained_spec) "
                             "whose model is built as its seed initialises it, saved as "
                             "OUT/checkpoint.pt and evaluated (the random-init baseline, in one "
                             "process)")
    parser.add_argument("--dataset", required=True, choices=list(DATASETS), metavar="DATASET",
                        help=f"evaluation dataset: one of {', '.join(DATASETS)}")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the real datasets (not needed for the offline "
                             "shapes and digits)")
    parser.add_argument("--out", required=True, help="output folder (features cache + record)")
    defaults = inspect.signature(evaluate).parameters
    for name, (kind, text) in _SETTINGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind,
                            default=defaults[name].default, help=f"{text} (default %(default)s)",
                            **({"choices": PROTOCOLS} if name == "protocol" else {}))
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where features and the layer are computed (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default %(default)s)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; returns the exit status (2: a missing file or a bad value)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint
    if args.untrained_spec is not None:
        import json

        from repro.pretrain import save_untrained

        try:
            spec = json.loads(args.untrained_spec)
        except json.JSONDecodeError as err:
            parser.error(f"--untrained-spec is not valid JSON: {err}")
        from repro.config import spec_problem

        problem = spec_problem(spec, trained=False)
        if problem:
            parser.error(f"--untrained-spec: {problem}")
        checkpoint = save_untrained(spec, Path(args.out))
    try:
        record = evaluate(Path(checkpoint), args.dataset, Path(args.out),
                          data_root=args.data_root, device=args.device,
                          **{name: getattr(args, name) for name in _SETTINGS})
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"top1 {record['metrics']['top1']:.2f}% ({record['model']}-{record['sampler']} on "
          f"{record['eval_dataset']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
