"""Linear evaluation: a linear classifier on frozen features of a pretrained base model.

    python -m repro.linear_eval --checkpoint results/pretrain/shapes/ir-ring/seed0/checkpoint.pt \\
        --dataset shapes --out results/linear_eval/shapes/ir-ring/seed0

The frozen features (``model.features``: the query backbone's pooled output; for CMC both colour
encoders, concatenated) of the train and test splits are computed once, with the evaluation
transform, and cached in ``OUT/features.pt`` (keyed by the checkpoint's config hash). A linear
layer on standardised features is trained with Adam on the train split; the record holds test
top-1 accuracy (percent) in ``OUT/result.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from repro.io import atomic_torch_save
from repro.results import make_record, write_record

__all__ = ["extract_features", "fit_linear", "accuracy", "evaluate", "main"]


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
                     desc: str = "features") -> tuple[Tensor, Tensor]:
    """``(N, F)`` frozen features and ``(N,)`` labels of a dataset of transformed images."""
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, y in tqdm(loader, desc=desc, leave=False, file=sys.stderr, mininterval=1.0):
        feats.append(model.features(x).float())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels).long()


def fit_linear(train_x: Tensor, train_y: Tensor, num_classes: int, *, epochs: int = 30,
               lr: float = 0.01, weight_decay: float = 0.0, batch_size: int = 256,
               seed: int = 0) -> nn.Module:
    """Train ``Linear(F, num_classes)`` on standardised features ``(N, F)``; returns a module
    that standardises its input with the train statistics and applies the linear layer."""
    gen = torch.Generator().manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    torch.manual_seed(seed)
    linear = nn.Linear(train_x.shape[1], num_classes)
    optimizer = torch.optim.Adam(linear.parameters(), lr=lr, weight_decay=weight_decay)
    z = (train_x - mean) / std
    n = z.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(linear(z[idx]), train_y[idx])
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


@torch.no_grad()
def accuracy(classifier: nn.Module, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * (classifier(x).argmax(1) == y).float().mean().item()


def evaluate(checkpoint: Path, dataset: str, out: Path, *, data_root: Optional[str] = None,
             epochs: int = 30, lr: float = 0.01, weight_decay: float = 0.0,
             batch_size: int = 256, seed: int = 0) -> dict[str, Any]:
    """Linear-evaluate one checkpoint on one dataset; writes and returns the record."""
    from repro.checkpoint import load_checkpoint, load_model
    from repro.data import build_dataset, eval_transform, get_spec

    start = time.time()
    state = load_checkpoint(checkpoint)
    spec = state["config"]
    cache = Path(out) / "features.pt"
    key = {"checkpoint_hash": state.get("spec_hash"), "dataset": dataset}
    cached = torch.load(cache, weights_only=False) if cache.exists() else None
    if cached is not None and cached.get("key") == key:
        train_x, train_y, test_x, test_y = (cached[k] for k in ("train_x", "train_y",
                                                                 "test_x", "test_y"))
    else:
        model = load_model(checkpoint)
        ds_spec = get_spec(dataset)
        transform = eval_transform(ds_spec)
        train_x, train_y = extract_features(
            model, _Transformed(build_dataset(dataset, data_root, "train"), transform),
            batch_size, "train features")
        test_x, test_y = extract_features(
            model, _Transformed(build_dataset(dataset, data_root, "test"), transform),
            batch_size, "test features")
        atomic_torch_save({"key": key, "train_x": train_x, "train_y": train_y,
                           "test_x": test_x, "test_y": test_y}, cache)
    num_classes = get_spec(dataset).num_classes
    classifier = fit_linear(train_x, train_y, num_classes, epochs=epochs, lr=lr,
                            weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    settings = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay,
                "batch_size": batch_size, "seed": seed}
    record = make_record(
        stage="linear_eval", model=spec["model"], sampler=spec["sampler_label"],
        sampler_params=spec["sampler"], dataset=spec["dataset"], eval_dataset=dataset,
        seed=spec["seed"],
        metrics={"top1": accuracy(classifier, test_x, test_y),
                 "train_top1": accuracy(classifier, train_x, train_y)},
        scale=spec["scale"], config={"pretrain": spec, "linear_eval": settings},
        wall_time_s=time.time() - start,
        protocol=f"linear on frozen features (Adam, {epochs} epochs)",
        extra={"feature_dim": int(train_x.shape[1]), "train_size": int(train_x.shape[0]),
               "test_size": int(test_x.shape[0]), "checkpoint": str(checkpoint), **settings},
    )
    write_record(Path(out) / "result.json", record)
    return record


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repro.linear_eval",
        description="Train a linear classifier on frozen features of a pretrained checkpoint and "
                    "write the test top-1 accuracy as a result record (OUT/result.json).",
    )
    parser.add_argument("--checkpoint", required=True, help="a pretraining checkpoint.pt")
    parser.add_argument("--dataset", required=True, help="evaluation dataset (registry name)")
    parser.add_argument("--data-root", default=None, help="folder holding real datasets")
    parser.add_argument("--out", required=True, help="output folder (features cache + record)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        record = evaluate(Path(args.checkpoint), args.dataset, Path(args.out),
                          data_root=args.data_root, epochs=args.epochs, lr=args.lr,
                          weight_decay=args.weight_decay, batch_size=args.batch_size,
                          seed=args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"top1 {record['metrics']['top1']:.2f}% ({record['model']}-{record['sampler']} on "
          f"{record['eval_dataset']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
