"""Load what pretraining wrote: the whole base model, or only its query encoder.

A ``checkpoint.pt`` (see :mod:`repro.pretrain`) holds ``encoder`` (the query backbone's state
dict, torchvision ResNet key names, no ``fc``), ``backbone`` (its architecture), ``model`` (the
whole base model), ``config`` (the run spec), ``dataset_size`` and ``feature_dim``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.io import snakemake_hint

__all__ = ["load_checkpoint", "load_encoder", "load_model"]

_KEYS = ("encoder", "backbone", "model", "config")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint on the CPU, with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}: run the pretraining first "
            f"({snakemake_hint(path)}, or `python -m repro.pretrain ... --out {path.parent}`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: RuntimeError, EOFError, ...
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"{path} cannot be read ({first}): delete it and run the pretraining again "
            f"({snakemake_hint(path)} resumes from last.pt beside it when that is intact)"
        ) from None
    missing = [k for k in _KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path} is not a ring-repro pretraining checkpoint (lacks {missing})")
    return state


def load_encoder(path: str | os.PathLike) -> nn.Module:
    """The frozen query backbone, in eval mode: ``(B, C, H, W)`` -> ``(B, F)`` features."""
    from repro.models.backbones import build_backbone

    state = load_checkpoint(path)
    backbone = build_backbone(**state["backbone"])
    backbone.load_state_dict(state["encoder"])
    backbone.eval().requires_grad_(False)
    return backbone


def load_model(path: str | os.PathLike) -> nn.Module:
    """The whole base model (all encoders, bank / queue), frozen, in eval mode.

    Linear evaluation uses its ``features`` (for CMC: both colour-channel encoders).
    """
    from repro.pretrain import model_from_spec

    state = load_checkpoint(path)
    model = model_from_spec(state["config"], state["dataset_size"])
    model.load_state_dict(state["model"])
    model.eval().requires_grad_(False)
    return model
