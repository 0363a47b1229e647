"""Datasets and augmentations: the registry (:mod:`repro.data.registry`), real-format readers
(:mod:`repro.data.real`), the offline default datasets (:mod:`repro.data.offline`) and the
paper's augmentations (:mod:`repro.data.augment`)."""

from repro.data.augment import TwoViewDataset, eval_transform, pretrain_transform, seed_worker
from repro.data.registry import (DATASETS, DatasetNotFoundError, DatasetSpec, build_dataset,
                                 get_spec)

__all__ = ["DATASETS", "DatasetNotFoundError", "DatasetSpec", "build_dataset", "get_spec",
           "pretrain_transform", "eval_transform", "TwoViewDataset", "seed_worker"]
