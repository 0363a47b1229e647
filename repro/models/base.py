"""The interface every contrastive base model implements, and the one place negatives are chosen.

A base model embeds a batch into L2-normalised anchors ``q`` ``(B, D)``, scores each anchor's
positive (``pos``, ``(B,)``) and hands its candidate pool to the sampler, which picks each
anchor's negatives; the estimator (:func:`repro.estimators.info_nce_loss` unless the sampler's
config names another) turns them into the loss (paper, Eq. 1 for uniform negatives, Eq. 3 for
ring negatives). Models never look at which
sampler they hold: they only ask ``sampler.needs_similarities``.

State (memory bank, queue, momentum encoder) changes in two steps: ``forward`` stashes the
update (only in training mode), ``update_state`` applies it once the optimiser has stepped.
So ``forward`` can be called any number of times without side effects on the pools (batch-norm
running statistics aside), and the loss of a step never sees its own batch in the pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from repro.estimators import Loss, info_nce_loss
from repro.precision import fp32_region
from repro.samplers import NegativeSampler

__all__ = [
    "ContrastiveModel",
    "negatives_from_pool",
    "negatives_from_similarities",
    "similarity_logs",
    "two_views",
    "unit",
]


def unit(x: Tensor) -> Tensor:
    """``(B, D)`` -> the rows L2-normalised, in float32 (embeddings leave autocast here: banks,
    queues, similarities and the ring's selection are float32; a no-op cast for fp32 runs)."""
    return F.normalize(x.float(), dim=1)


def negatives_from_similarities(
    sampler: NegativeSampler,
    sims: Tensor,
    *,
    progress: float,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """``(B, M)`` negative similarities chosen by ``sampler`` from per-anchor pools.

    Args:
        sims: ``(B, N)`` similarities of each anchor to its own ``N`` candidates (SimCLR: the
            other items of the batch, a different set per anchor).
        progress: fraction of training done (drives the ring's ``w_l`` annealing).
    """
    batch_size, pool_size = sims.shape
    sims = sims.float()  # the ring ranks float32 similarities (a no-op in fp32 runs)
    idx = sampler.select(sims if sampler.needs_similarities else None, batch_size=batch_size,
                         pool_size=pool_size, progress=progress, generator=generator,
                         device=sims.device)
    return sims.gather(1, idx)


FULL_PRODUCT_RATIO = 16  # see negatives_from_pool


def negatives_from_pool(
    sampler: NegativeSampler,
    anchors: Tensor,
    pool: Tensor,
    *,
    progress: float,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """``(B, M)`` negative similarities ``q_i . c_j`` chosen by ``sampler`` from a shared pool.

    Args:
        anchors: ``(B, D)`` L2-normalised anchors ``q``.
        pool: ``(N, D)`` candidates ``c`` (memory bank, queue).
        progress: fraction of training done (drives the ring's ``w_l`` annealing).

    A sampler that needs similarities gets the ``(B, N)`` matrix ``q C^T`` and the chosen
    entries are gathered from it. One that does not (uniform) chooses first; then the ``M``
    chosen dot products per anchor are computed from gathered ``(B, M, D)`` candidates when the
    pool is much larger than ``M`` (``N > FULL_PRODUCT_RATIO * M``: IR with ``K = 4096`` on
    ImageNet's 1.28M-entry bank), and otherwise gathered from one ``(B, N)`` matrix product,
    which is faster than materialising ``(B, M, D)`` (same values either way). A sampler that
    ``synthesizes`` (MoCHi) appends its synthetic negatives' similarities: ``(B, M + S)``.
    """
    if anchors.dim() != 2 or pool.dim() != 2 or anchors.shape[1] != pool.shape[1]:
        raise ValueError(f"anchors (B, D) and pool (N, D) must share D, got "
                         f"{tuple(anchors.shape)} and {tuple(pool.shape)}")
    with fp32_region(anchors.device.type):  # float32 products, even inside autocast
        return _negatives_fp32(sampler, anchors.float(), pool.float(), progress, generator)


def _negatives_fp32(sampler: NegativeSampler, anchors: Tensor, pool: Tensor, progress: float,
                    generator: Optional[torch.Generator]) -> Tensor:
    """:func:`negatives_from_pool` on float32 ``anchors`` ``(B, D)`` and ``pool`` ``(N, D)``
    with autocast off."""
    batch_size, pool_size = anchors.shape[0], pool.shape[0]
    sims = anchors @ pool.t() if sampler.needs_similarities else None
    idx = sampler.select(sims, batch_size=batch_size, pool_size=pool_size, progress=progress,
                         generator=generator, device=anchors.device)
    if sims is None and pool_size <= FULL_PRODUCT_RATIO * idx.shape[1]:
        sims = anchors @ pool.t()
    neg = (sims.gather(1, idx) if sims is not None
           else torch.einsum("bd,bkd->bk", anchors, pool[idx]))
    if sampler.synthesizes:  # e.g. MoCHi: synthetic negatives mixed from the pool, this step only
        neg = torch.cat([neg, sampler.synthesize(anchors, pool, progress=progress,
                                                 generator=generator)], dim=1)
    return neg


def similarity_logs(pos: Tensor, neg: Tensor) -> dict[str, Any]:
    """Logs of one contrast: mean positive / negative similarity (detached 0-d tensors on the
    step's device: reading them is the caller's choice, so a step never waits for the GPU) and
    ``M`` (a float)."""
    return {"pos_sim": pos.detach().mean(), "neg_sim": neg.detach().mean(),
            "num_negatives": float(neg.shape[1])}


def two_views(batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """The two augmented views ``(x1, x2)`` of a batch, each ``(B, C, H, W)``."""
    views = batch.get("views") if isinstance(batch, Mapping) else None
    if views is None or len(views) != 2:
        raise ValueError("a batch must be a dict with 'views': (x1, x2), two (B, 3, H, W) "
                         "tensors (repro.data.TwoViewDataset makes them), plus 'index' (B,)")
    return views[0], views[1]


class ContrastiveModel(nn.Module, ABC):
    """Base class of IR, CMC, MoCo and SimCLR.

    Args:
        sampler: chooses each anchor's negatives (:mod:`repro.samplers`).
        temperature: ``tau`` of the InfoNCE logits ``s / tau``.

    Subclasses set:
        encoder: the query backbone (torchvision ResNet key names), for transfer / detection.
        backbone_config: the :func:`repro.models.backbones.build_backbone` arguments that
            rebuild ``encoder`` (``in_channels`` included).
        feature_dim: ``F``, the width of :meth:`features`.
    """

    encoder: nn.Module
    backbone_config: dict[str, Any]
    feature_dim: int
    # whether negatives come from a pool of embeddings (bank, queue): samplers that synthesize
    # negatives from embeddings (MoCHi) need one; SimCLR's per-anchor pools are similarities
    pool_of_embeddings: bool = True
    # the config options (``models.<name>``) the model takes, e.g. ("queue_size", ...)
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, sampler: NegativeSampler, temperature: float) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.sampler = sampler
        self.temperature = float(temperature)
        # (pos, neg, temperature) -> loss; repro.estimators.build_estimator (set by build_model)
        self.estimator: Loss = info_nce_loss
        self.process_group: Optional[Any] = None
        self.world_size = 1
        self.rank = 0
        self._pending: list[Callable[[], None]] = []

    @abstractmethod
    def forward(self, batch: Mapping[str, Any], progress: float = 1.0,
                generator: Optional[torch.Generator] = None) -> dict[str, Any]:
        """One contrastive step on ``batch``.

        Args:
            batch: ``{"index": (B,) long, "views": (x1, x2) each (B, 3, H, W), "label": (B,)}``.
            progress: fraction of training done, in ``[0, 1]``.
            generator: RNG for the sampler's draws.

        Returns:
            ``{"loss": scalar tensor, "pos_sim": float, "neg_sim": float,
            "num_negatives": float, ...}``. State updates are stashed, not applied.
        """

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalised RGB -> ``(B, feature_dim)`` features for linear eval."""

    def pool_embeddings(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` normalised RGB -> ``(anchors, candidates)``, each ``(B, D)`` unit
        rows: the images embedded as anchors and as entries of the pool the sampler ranks for
        them (:mod:`repro.false_negatives`). Default: ``self.embed(x)`` for both (IR's bank and
        SimCLR's batch hold the anchors' own embedding); a model whose pool holds another
        embedding (MoCo's keys, CMC's other view) overrides this."""
        z = self.embed(x)  # type: ignore[attr-defined]
        return z, z

    def contrast(self, anchors: Tensor, pos: Tensor, pool: Tensor, progress: float,
                 generator: Optional[torch.Generator]) -> tuple[Tensor, dict[str, Any]]:
        """The estimator's loss (InfoNCE unless set) of anchors ``(B, D)`` with positives
        ``pos`` ``(B,)`` against negatives the sampler draws from ``pool`` ``(N, D)``; returns
        ``(loss, logs)``. Computed in float32 with autocast off (:mod:`repro.precision`)."""
        neg = negatives_from_pool(self.sampler, anchors, pool, progress=progress,
                                  generator=generator)
        pos = pos.float()
        with fp32_region(anchors.device.type):
            return self.estimator(pos, neg, self.temperature), similarity_logs(pos, neg)

    # ---- state updates -------------------------------------------------------------------

    def stash(self, update: Callable[[], None]) -> None:
        """Queue a state update for :meth:`update_state` (ignored outside training mode)."""
        if self.training:
            self._pending.append(update)

    @torch.no_grad()
    def update_state(self) -> None:
        """Apply the stashed updates (bank, queue, momentum encoder); call once after
        ``optimizer.step()``. Under DDP every process must call it (it all-gathers)."""
        pending, self._pending = self._pending, []
        for update in pending:
            update()

    # ---- distributed ---------------------------------------------------------------------

    def set_process_group(self, group: Optional[Any] = None) -> None:
        """Share banks, queues and batches across the processes of ``group`` (default: all).

        Bank and queue updates then all-gather every process's batch (so each process keeps an
        identical copy); SimCLR also draws negatives from the whole global batch.
        """
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("set_process_group needs torch.distributed to be initialised "
                               "first (torch.distributed.init_process_group, or torchrun)")
        self.process_group = group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)

    @torch.no_grad()
    def gather(self, x: Tensor) -> Tensor:
        """Concatenate ``x`` ``(B, ...)`` of every process along dim 0 (rank order); no grad."""
        if self.world_size == 1:
            return x
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.contiguous(), group=self.process_group)
        return torch.cat(parts)

    def gather_with_grad(self, x: Tensor) -> Tensor:
        """Like :meth:`gather`, with gradients flowing back to every process's ``x``."""
        if self.world_size == 1:
            return x
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x.contiguous(), group=self.process_group or
                                    dist.group.WORLD))
