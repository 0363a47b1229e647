"""SimCLR (Chen et al., 2020): in-batch negatives.

An encoder and a 2-layer MLP head embed both views of the batch into ``z`` ``(2B, D)`` (rows
``i`` and ``i + B`` are the two views of item ``i``). Every row is an anchor; its positive is the
other view of its item, and its pool is the other ``2B - 2`` rows (itself and its positive
removed), so the similarities form a ``(2B, 2B - 2)`` matrix with a different pool per anchor.
The sampler picks from each anchor's pool (uniform: all of it, i.e. NT-Xent; ring: its ring);
the loss is the mean over all ``2B`` anchors, and gradients flow through the pool embeddings
as well. Under DDP the pool is the global batch (``2B * world - 2`` rows). No state.

``loss: released`` is the authors' released variant (``SimCLR`` / ``SimCLRRing`` of
mhw32/contrastive-ring-public before commit 4f5d45d): only the ``B`` view-1 rows are anchors,
and each one's pool is all ``2B`` rows, itself and its positive included. The uniform baseline's
normaliser is then the log-sum-exp over the ``2B`` rows (the positive once); the ring ranks all
``2B`` (self and positive are the most similar, so its top exclusion drops them) and the
positive is added to the normaliser (:func:`released_similarities`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from repro.models.backbones import build_backbone
from repro.models.base import ContrastiveModel, negatives_from_similarities, similarity_logs, \
    two_views, unit
from repro.models.heads import mlp_head
from repro.precision import fp32_region
from repro.samplers import NegativeSampler

__all__ = ["SimCLR", "LOSSES", "in_batch_similarities", "released_similarities"]

LOSSES = ("nt_xent", "released")
"""SimCLR's ``loss`` option: NT-Xent (every view an anchor, self and positive out of the pool)
or the authors' released variant."""


def in_batch_similarities(z: Tensor, z_all: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
    """Positive and pool similarities of the two-view batch ``z``.

    Args:
        z: ``(2B, D)`` L2-normalised embeddings, rows ``i`` and ``i + B`` views of one item.
        z_all: ``(M, D)`` every candidate, ``z`` itself at rows ``offset .. offset + 2B - 1``
            (``z_all = z`` in one process; the gathered global batch under DDP).
        offset: where ``z`` sits in ``z_all``.

    Returns:
        ``pos`` ``(2B,)`` and ``pool`` ``(2B, M - 2)``: each row's similarities to every row of
        ``z_all`` except itself and its positive, in ``z_all`` order.
    """
    n = z.shape[0]
    if n % 2 or n < 2:
        raise ValueError(f"z must stack two views of B items, (2B, D); got {n} rows")
    rows = torch.arange(n, device=z.device)
    self_col = offset + rows
    pos_col = offset + (rows + n // 2) % n
    sims = z @ z_all.t()
    keep = torch.ones_like(sims, dtype=torch.bool)
    keep[rows, self_col] = False
    keep[rows, pos_col] = False
    return sims[rows, pos_col], sims[keep].view(n, sims.shape[1] - 2)


def released_similarities(z: Tensor, z_all: Tensor, offset: int = 0,
                          keep_positive: bool = True) -> tuple[Tensor, Tensor]:
    """The released SimCLR's positives and pools: view-1 anchors against every row.

    Args:
        z, z_all, offset: as :func:`in_batch_similarities`.
        keep_positive: keep each anchor's positive in its pool (the ring ranks it with the
            rest); ``False`` drops that one column (the uniform baseline, whose normaliser
            then holds the positive exactly once, as the released log-sum-exp over ``2B``).

    Returns:
        ``pos`` ``(B,)`` and ``pool`` ``(B, M)`` (``(B, M - 1)`` without the positive), self
        included, in ``z_all`` order.
    """
    n = z.shape[0]
    if n % 2 or n < 2:
        raise ValueError(f"z must stack two views of B items, (2B, D); got {n} rows")
    b = n // 2
    rows = torch.arange(b, device=z.device)
    pos_col = offset + b + rows
    sims = z[:b] @ z_all.t()
    pos = sims[rows, pos_col]
    if keep_positive:
        return pos, sims
    keep = torch.ones_like(sims, dtype=torch.bool)
    keep[rows, pos_col] = False
    return pos, sims[keep].view(b, sims.shape[1] - 1)


class SimCLR(ContrastiveModel):
    """SimCLR with any negative sampler over the in-batch pool.

    Args:
        sampler: picks from each anchor's ``2B - 2`` candidates (built with
            ``num_negatives=None``).
        temperature: ``tau``.
        backbone: :func:`~repro.models.backbones.build_backbone` options.
        embedding_dim: ``D`` (128).
        loss: ``"nt_xent"`` or ``"released"`` (:data:`LOSSES`, module docstring).
    """

    pool_of_embeddings = False  # each anchor's pool is a row of in-batch similarities

    # the config options (models.<name>) this model takes; others are refused
    OPTIONS: tuple[str, ...] = ("loss",)

    def __init__(self, sampler: NegativeSampler, temperature: float, *,
                 backbone: Mapping[str, Any], embedding_dim: int = 128,
                 loss: str = "nt_xent") -> None:
        super().__init__(sampler, temperature)
        if loss not in LOSSES:
            raise ValueError(f"unknown SimCLR loss {loss!r}; choose one of {LOSSES}")
        self.loss_variant = loss
        self.backbone_config = {**backbone, "in_channels": 3}
        self.encoder = build_backbone(**self.backbone_config)
        self.feature_dim = self.encoder.feature_dim
        self.head = mlp_head(self.feature_dim, embedding_dim)

    def embed(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, D)`` L2-normalised."""
        return unit(self.head(self.encoder(x)))

    def forward(self, batch: Mapping[str, Any], progress: float = 1.0,
                generator: Optional[torch.Generator] = None) -> dict[str, Any]:
        x1, x2 = two_views(batch)
        z = self.embed(torch.cat([x1, x2]))  # one pass: batch norm over both views
        z_all = self.gather_with_grad(z)
        with fp32_region(z.device.type):  # float32 similarities, selection and loss
            if self.loss_variant == "released":
                pos, pool = released_similarities(z, z_all, offset=self.rank * z.shape[0],
                                                  keep_positive=self.sampler.needs_similarities)
            else:
                pos, pool = in_batch_similarities(z, z_all, offset=self.rank * z.shape[0])
            neg = negatives_from_similarities(self.sampler, pool, progress=progress,
                                              generator=generator)
            loss = self.estimator(pos, neg, self.temperature)
        return {"loss": loss, **similarity_logs(pos, neg)}

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)
