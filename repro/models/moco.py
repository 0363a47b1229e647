"""MoCo v2 (He et al., 2020; Chen et al., 2020): a momentum key encoder and a queue of keys.

The query encoder and a 2-layer MLP head embed view 1 into ``q``; a momentum copy of both
(no gradient) embeds view 2 into the key ``k``. ``pos = q . k``; the pool is the FIFO
:class:`~repro.memory.Queue` of earlier keys, and the sampler takes the whole queue (uniform,
plain MoCo) or each anchor's ring of it (Ring). After the optimiser step, :meth:`update_state`

1. moves the key encoder towards the query encoder, ``theta_k <- m theta_k + (1 - m) theta_q``
   (parameters only; the key encoder's batch-norm statistics come from its own forward passes);
2. enqueues this step's keys (all processes' keys under DDP).

MoCo's code does step 1 at the start of the next forward; both orders give the same key
encoder at every forward (and keep ``forward`` free of side effects).

Shuffle-BN (He et al. 2020, Sec. 3.3; ``shuffle_bn``, on by default): under DDP the key
encoder's batch-norm would otherwise normalise each process's keys with the statistics of the
very batch its queries come from, a signal that leaks which key is the positive. The keys'
inputs of all processes are gathered, permuted at random (one permutation, rank 0's), each
process embeds its slice of the shuffled batch, and the keys are gathered and put back in
order (:meth:`MoCo.shuffled_keys`). In one process there is nothing to shuffle across (the
released code's shuffle is a no-op there too).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Optional

import torch
import torch.distributed as dist
from torch import Tensor

from repro.memory import Queue
from repro.models.backbones import build_backbone
from repro.models.base import ContrastiveModel, two_views, unit
from repro.models.heads import mlp_head
from repro.samplers import NegativeSampler

__all__ = ["MoCo", "momentum_update_", "shuffle_slice", "unshuffle"]


def shuffle_slice(perm: Tensor, world_size: int, rank: int) -> Tensor:
    """Shuffle-BN: the rows of the gathered batch that process ``rank`` embeds, its block of the
    permutation, ``perm[rank B:(rank + 1) B]`` with ``B = len(perm) / world_size``."""
    return perm.view(world_size, -1)[rank]


def unshuffle(keys: Tensor, perm: Tensor) -> Tensor:
    """Shuffle-BN: ``keys`` ``(N, D)`` with ``keys[j]`` the key of row ``perm[j]`` -> the keys in
    row order (``out[perm[j]] = keys[j]``)."""
    out = torch.empty_like(keys)
    out[perm] = keys
    return out


@torch.no_grad()
def momentum_update_(target: torch.nn.Module, source: torch.nn.Module, momentum: float) -> None:
    """In place, for every parameter: ``target <- m * target + (1 - m) * source``."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)


class MoCo(ContrastiveModel):
    """MoCo v2 with any negative sampler over its queue.

    Args:
        sampler: picks negatives from the queue (built with ``num_negatives=None``).
        temperature: ``tau`` (0.07 in the paper, 0.2 in MoCo v2).
        backbone: :func:`~repro.models.backbones.build_backbone` options.
        embedding_dim: ``D`` (128).
        queue_size: ``N`` keys (65536 in MoCo and in the authors' released Ring config;
            their plain MoCo config has 4096).
        key_momentum: ``m`` of the key encoder (0.999).
        shuffle_bn: shuffle the keys' batch across processes under DDP (MoCo's shuffle-BN);
            no effect in one process.
    """

    # the config options (models.<name>) this model takes; others are refused
    OPTIONS: tuple[str, ...] = ("queue_size", "key_momentum", "shuffle_bn")

    def __init__(self, sampler: NegativeSampler, temperature: float, *,
                 backbone: Mapping[str, Any], embedding_dim: int = 128, queue_size: int = 4096,
                 key_momentum: float = 0.999, shuffle_bn: bool = True) -> None:
        super().__init__(sampler, temperature)
        self.shuffle_bn = bool(shuffle_bn)
        if not 0.0 <= key_momentum <= 1.0:
            raise ValueError(f"key_momentum must be in [0, 1], got {key_momentum}")
        self.key_momentum = key_momentum
        self.backbone_config = {**backbone, "in_channels": 3}
        self.encoder = build_backbone(**self.backbone_config)
        self.feature_dim = self.encoder.feature_dim
        self.head = mlp_head(self.feature_dim, embedding_dim)
        self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        self.queue = Queue(queue_size, embedding_dim)

    def embed(self, x: Tensor) -> Tensor:
        """Queries: ``(B, 3, H, W)`` -> ``(B, D)`` L2-normalised."""
        return unit(self.head(self.encoder(x)))

    @torch.no_grad()
    def embed_keys(self, x: Tensor) -> Tensor:
        """Keys from the momentum encoder: ``(B, 3, H, W)`` -> ``(B, D)``, no gradient."""
        return unit(self.key_head(self.key_encoder(x)))

    @torch.no_grad()
    def shuffled_keys(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Keys of this process's ``x`` ``(B, 3, H, W)`` -> ``(B, D)``, each embedded in a random
        sub-batch of the global batch (shuffle-BN; ``B`` equal on every process).

        The ``W * B`` inputs of the ``W`` processes are gathered (rank order) and permuted by
        ``perm`` (drawn from ``generator`` on every process, rank 0's broadcast so all agree);
        process ``r`` embeds ``x_all[perm[r B:(r + 1) B]]`` with :meth:`embed_keys` (its
        batch-norm statistics are that sub-batch's), and the gathered keys are un-permuted, so
        row ``i`` of the result is still the key of ``x[i]``. In one process, or with
        ``shuffle_bn`` off, :meth:`embed_keys` of ``x``."""
        if self.world_size == 1 or not self.shuffle_bn:
            return self.embed_keys(x)
        x_all = self.gather(x)
        n = x_all.shape[0]
        where = generator.device if generator is not None else x.device
        perm = torch.randperm(n, generator=generator, device=where).to(x.device)
        src = 0 if self.process_group is None else dist.get_global_rank(self.process_group, 0)
        dist.broadcast(perm, src=src, group=self.process_group)
        keys = self.gather(self.embed_keys(x_all[shuffle_slice(perm, self.world_size,
                                                                self.rank)]))
        return unshuffle(keys, perm).view(self.world_size, x.shape[0], -1)[self.rank]

    def pool_embeddings(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Queries as anchors, momentum-encoder keys as the queue's entries."""
        return self.embed(x), self.embed_keys(x)

    def forward(self, batch: Mapping[str, Any], progress: float = 1.0,
                generator: Optional[torch.Generator] = None) -> dict[str, Any]:
        x1, x2 = two_views(batch)
        q = self.embed(x1)
        k = self.shuffled_keys(x2, generator)
        pos = (q * k).sum(1)
        loss, logs = self.contrast(q, pos, self.queue.all(), progress, generator)
        self.stash(lambda: self._step_state(k))
        return {"loss": loss, **logs}

    def _step_state(self, k: Tensor) -> None:
        momentum_update_(self.key_encoder, self.encoder, self.key_momentum)
        momentum_update_(self.key_head, self.head, self.key_momentum)
        self.queue.enqueue(self.gather(k))

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)
