"""Candidate pools with state: the memory bank (IR, CMC) and the FIFO queue (MoCo).

Both keep their contents in registered buffers, so they travel with ``state_dict`` (checkpoints,
resumption) and with ``.to(device)``. Both hold L2-normalised rows and are updated without
gradient; base models stash the update in ``forward`` and apply it in ``update_state``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MemoryBank", "Queue"]


def _check_size(size: int, dim: int, what: str) -> None:
    if size < 1 or dim < 1:
        raise ValueError(f"a {what} needs size >= 1 and dim >= 1, got size={size}, dim={dim}")


def _check_rows(rows: Tensor, dim: int, what: str) -> None:
    if rows.dim() != 2 or rows.shape[1] != dim:
        raise ValueError(f"{what} must be (B, {dim}), got shape {tuple(rows.shape)}")


class MemoryBank(nn.Module):
    """One L2-normalised embedding per dataset item (Wu et al., 2018: instance discrimination).

    Args:
        size: ``N``, the dataset size.
        dim: ``D``, the embedding dimension.
        momentum: default ``m`` of :meth:`update` (the paper and IR / CMC use 0.5).

    Buffer ``memory``: ``(N, D)``, initialised with random unit vectors.
    """

    def __init__(self, size: int, dim: int, momentum: float = 0.5) -> None:
        super().__init__()
        _check_size(size, dim, "memory bank")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"bank momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("memory", F.normalize(torch.randn(size, dim), dim=1))

    @property
    def size(self) -> int:
        return self.memory.shape[0]

    def all(self) -> Tensor:
        """``(N, D)``: the whole bank (no gradient)."""
        return self.memory

    def get(self, indices: Tensor) -> Tensor:
        """``(B, D)``: the entries of dataset items ``indices`` ``(B,)``."""
        return self.memory.index_select(0, indices)

    @torch.no_grad()
    def update(self, indices: Tensor, embeddings: Tensor,
               momentum: Optional[float] = None) -> None:
        """``bank[i] <- normalize(m * bank[i] + (1 - m) * v)`` for each ``(i, v)``.

        Args:
            indices: ``(B,)`` dataset indices, distinct (a batch drawn without replacement).
            embeddings: ``(B, D)`` new embeddings of those items.
            momentum: ``m``; ``None`` uses the bank's default. ``m = 0`` overwrites.
        """
        _check_rows(embeddings, self.memory.shape[1], "bank embeddings")
        m = self.momentum if momentum is None else momentum
        old = self.memory.index_select(0, indices)
        new = F.normalize(m * old + (1.0 - m) * embeddings.detach().to(old.dtype), dim=1)
        self.memory.index_copy_(0, indices, new)


class Queue(nn.Module):
    """A FIFO queue of ``N`` keys (MoCo, He et al. 2020): each batch replaces the oldest keys.

    Args:
        size: ``N``, the number of keys kept.
        dim: ``D``, the key dimension.

    Buffers: ``keys`` ``(N, D)`` (random unit vectors at first, as in MoCo) and ``ptr`` (the
    slot the next key goes to). Batch sizes need not divide ``N``: writes wrap around.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        _check_size(size, dim, "queue")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    def all(self) -> Tensor:
        """``(N, D)``: every key, in slot order (not age order; the pool is a set)."""
        return self.keys

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Push ``keys`` ``(B, D)``, dropping the ``B`` oldest. With ``B > N`` only the newest
        ``N`` are kept."""
        _check_rows(keys, self.keys.shape[1], "queue keys")
        size = self.size
        keys = keys.detach().to(self.keys.dtype)
        if keys.shape[0] > size:
            shift = keys.shape[0] - size
            keys = keys[shift:]
            self.ptr.add_(shift).remainder_(size)
        slots = (self.ptr + torch.arange(keys.shape[0], device=self.keys.device)) % size
        self.keys.index_copy_(0, slots, keys)
        self.ptr.add_(keys.shape[0]).remainder_(size)  # stays on the device: no host sync
