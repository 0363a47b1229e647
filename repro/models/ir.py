"""Instance discrimination with a memory bank: InstDisc / IR (Wu et al., 2018).

One encoder and a linear head embed view 1 into ``q`` ``(B, D)`` (L2-normalised). A
:class:`~repro.memory.MemoryBank` holds one embedding per dataset item. As in the authors' code,
the positive of item ``i`` is its own bank entry, ``pos_i = q_i . bank[i]``, and the negatives
are ``K`` entries of the whole bank chosen by the sampler (uniform: ``K`` random entries, the
paper's IR baseline; ring: ``K`` draws from each anchor's ring). The pool is the whole bank, the
anchor's own entry included (the uniform draw hits it with probability ``K / N``; the ring
excludes it once ``w_u < 1``, as it is the most similar). After the optimiser step the bank
entries of the batch move towards ``q``: ``bank[i] <- normalize(m bank[i] + (1 - m) q_i)``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from repro.memory import MemoryBank
from repro.models.backbones import build_backbone
from repro.models.base import ContrastiveModel, two_views, unit
from repro.models.heads import build_head
from repro.samplers import NegativeSampler

__all__ = ["InstanceDiscrimination", "batch_indices"]


def batch_indices(batch: Mapping[str, Any], dataset_size: int) -> Tensor:
    """The batch's dataset indices ``(B,)``, checked against the bank size."""
    index = batch.get("index")
    if index is None:
        raise ValueError("memory-bank models need batch['index'], the (B,) dataset indices")
    if index.numel() and not 0 <= int(index.min()) <= int(index.max()) < dataset_size:
        raise ValueError(f"batch['index'] holds indices outside [0, {dataset_size}): build the "
                         f"model with dataset_size = len(dataset)")
    return index.long()


class InstanceDiscrimination(ContrastiveModel):
    """IR: one encoder, a linear head and a memory bank over the dataset.

    Args:
        sampler: picks ``K`` negatives per anchor from the bank (built with
            ``num_negatives=K``; 4096 in the paper).
        temperature: ``tau`` (0.07 in the paper).
        backbone: :func:`~repro.models.backbones.build_backbone` options.
        dataset_size: ``N``, the number of bank entries.
        embedding_dim: ``D`` (128).
        bank_momentum: ``m`` of the bank update (0.5).
        head: ``"linear"`` (InstDisc) or ``"mlp"`` (the authors' released head).
    """

    # the config options (models.<name>) this model takes; others are refused
    OPTIONS: tuple[str, ...] = ("num_negatives", "bank_momentum", "head")

    def __init__(self, sampler: NegativeSampler, temperature: float, *,
                 backbone: Mapping[str, Any], dataset_size: int, embedding_dim: int = 128,
                 bank_momentum: float = 0.5, head: str = "linear") -> None:
        super().__init__(sampler, temperature)
        self.backbone_config = {**backbone, "in_channels": 3}
        self.encoder = build_backbone(**self.backbone_config)
        self.feature_dim = self.encoder.feature_dim
        self.head = build_head(head, self.feature_dim, embedding_dim)
        self.bank = MemoryBank(dataset_size, embedding_dim, momentum=bank_momentum)

    def embed(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, D)`` L2-normalised embeddings."""
        return unit(self.head(self.encoder(x)))

    def forward(self, batch: Mapping[str, Any], progress: float = 1.0,
                generator: Optional[torch.Generator] = None) -> dict[str, Any]:
        x1, _ = two_views(batch)
        index = batch_indices(batch, self.bank.size)
        q = self.embed(x1)
        pos = (q * self.bank.get(index)).sum(1)
        loss, logs = self.contrast(q, pos, self.bank.all(), progress, generator)
        q = q.detach()
        self.stash(lambda: self.bank.update(self.gather(index), self.gather(q)))
        return {"loss": loss, **logs}

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)
