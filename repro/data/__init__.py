"""Datasets and augmentations: the registry (:mod:`repro.data.registry`), real-format readers
(:mod:`repro.data.real`), the offline default datasets (:mod:`repro.data.offline`), the
paper's augmentations (:mod:`repro.data.augment`) and their batched, on-device counterpart
(:mod:`repro.data.batch_augment`).

The augmentation names are imported on first use, so reading the registry (as the Snakefile
does while it parses) does not import torch.
"""

from repro.data.registry import (DATASETS, DatasetNotFoundError, DatasetSpec, build_dataset,
                                 get_spec, input_spec, missing_data)

__all__ = ["DATASETS", "DatasetNotFoundError", "DatasetSpec", "build_dataset", "get_spec",
           "input_spec", "missing_data", "pretrain_transform", "eval_transform", "TwoViewDataset",
           "seed_worker", "BatchAugment", "RawImageDataset"]

_AUGMENT = ("pretrain_transform", "eval_transform", "TwoViewDataset", "seed_worker")
_BATCH_AUGMENT = ("BatchAugment", "RawImageDataset")


def __getattr__(name: str):
    if name in _AUGMENT:
        from repro.data import augment

        return getattr(augment, name)
    if name in _BATCH_AUGMENT:
        from repro.data import batch_augment

        return getattr(batch_augment, name)
    raise AttributeError(f"module 'repro.data' has no attribute {name!r}")
