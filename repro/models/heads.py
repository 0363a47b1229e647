"""Projection heads: backbone features ``(B, F)`` -> embeddings ``(B, D)`` (before L2 norm)."""

from __future__ import annotations

from typing import Optional

from torch import nn

__all__ = ["HEADS", "linear_head", "mlp_head", "build_head"]


def linear_head(in_dim: int, out_dim: int) -> nn.Linear:
    """One linear layer (InstDisc / IR, CMC)."""
    return nn.Linear(in_dim, out_dim)


def mlp_head(in_dim: int, out_dim: int, hidden_dim: Optional[int] = None) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` (MoCo v2, SimCLR); ``hidden_dim`` defaults to ``in_dim``."""
    hidden_dim = in_dim if hidden_dim is None else hidden_dim
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))


HEADS = ("linear", "mlp")
"""The heads a model with a ``head`` option (IR, CMC) can take."""


def build_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """``"linear"`` (:func:`linear_head`) or ``"mlp"`` (:func:`mlp_head`, hidden width
    ``in_dim``: 512-512-128 on ResNet-18, the authors' released head for every model)."""
    if kind == "linear":
        return linear_head(in_dim, out_dim)
    if kind == "mlp":
        return mlp_head(in_dim, out_dim)
    raise ValueError(f"unknown head {kind!r}; choose one of {HEADS}")
