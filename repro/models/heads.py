"""Projection heads: backbone features ``(B, F)`` -> embeddings ``(B, D)`` (before L2 norm)."""

from __future__ import annotations

from typing import Optional

from torch import nn

__all__ = ["linear_head", "mlp_head"]


def linear_head(in_dim: int, out_dim: int) -> nn.Linear:
    """One linear layer (InstDisc / IR, CMC)."""
    return nn.Linear(in_dim, out_dim)


def mlp_head(in_dim: int, out_dim: int, hidden_dim: Optional[int] = None) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` (MoCo v2, SimCLR); ``hidden_dim`` defaults to ``in_dim``."""
    hidden_dim = in_dim if hidden_dim is None else hidden_dim
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))
