"""Contrastive Multiview Coding, colour-channel views (Tian et al., 2019).

An RGB crop is converted to CIE Lab; the L channel (1 channel) and the ab channels (2) are two
views of the same image, each with its own encoder, linear head and
:class:`~repro.memory.MemoryBank`. For item ``i`` with embeddings ``z_l`` and ``z_ab``:

    loss = NCE(z_l anchor, positive bank_ab[i], negatives from bank_ab)
         + NCE(z_ab anchor, positive bank_l[i], negatives from bank_l)

each with ``K`` negatives per anchor chosen by the sampler (as in the authors' code, the
positive is the other view's bank entry). After the optimiser step each bank moves towards its
own view's embeddings with momentum ``m``. Only view 1 of the batch is used (CMC's two views
are the colour groups of one crop). :meth:`CMC.features` concatenates both encoders' features;
``encoder`` (for transfer) is the L encoder (1-channel input; see ``backbone_config``).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import Tensor

from repro.memory import MemoryBank
from repro.models.backbones import build_backbone
from repro.models.base import ContrastiveModel, two_views, unit
from repro.models.heads import build_head
from repro.models.ir import batch_indices
from repro.samplers import NegativeSampler

__all__ = ["CMC", "rgb_to_lab", "normalize_lab", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# sRGB (D65) -> CIE XYZ. The reference white is the image of RGB (1, 1, 1): the row sums.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_EPSILON = 216.0 / 24389.0  # CIE: where the cube root meets the linear segment
_KAPPA = 24389.0 / 27.0

# Lab ranges of the sRGB gamut (as in CMC's code): each channel is scaled to about [-1, 1].
_LAB_CENTER = (50.0, (98.233 - 86.183) / 2, (94.478 - 107.857) / 2)
_LAB_HALF_RANGE = (50.0, (98.233 + 86.183) / 2, (94.478 + 107.857) / 2)


def _channel_vector(values: Sequence[float], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """CIE Lab (D65) of sRGB images.

    Args:
        rgb: ``(B, 3, H, W)`` sRGB values in ``[0, 1]`` (clamped).

    Returns:
        ``(B, 3, H, W)``: ``L`` in ``[0, 100]``, then ``a`` and ``b`` (white: ``(100, 0, 0)``).
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be (B, 3, H, W), got shape {tuple(rgb.shape)}")
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear) / matrix.sum(1).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1.0 / 3.0),
                    (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def normalize_lab(lab: Tensor) -> Tensor:
    """Scale ``(B, 3, H, W)`` Lab to about ``[-1, 1]`` per channel (the sRGB gamut's ranges)."""
    return (lab - _channel_vector(_LAB_CENTER, lab)) / _channel_vector(_LAB_HALF_RANGE, lab)


class CMC(ContrastiveModel):
    """CMC on L and ab, with a memory bank per view.

    Args:
        sampler: picks ``K`` negatives per anchor from the other view's bank
            (built with ``num_negatives=K``; 4096 in the paper).
        temperature: ``tau``.
        backbone: :func:`~repro.models.backbones.build_backbone` options, used for both
            encoders (with ``in_channels`` 1 and 2).
        dataset_size: ``N`` entries per bank.
        embedding_dim: ``D`` (128).
        bank_momentum: ``m`` of the bank updates (0.5).
        mean, std: the per-channel normalisation the data pipeline applied to RGB, undone
            before the Lab conversion.
        head: ``"linear"`` (CMC as published) or ``"mlp"``, one per view.
    """

    # the config options (models.<name>) this model takes; others are refused
    OPTIONS: tuple[str, ...] = ("num_negatives", "bank_momentum", "head")

    def __init__(self, sampler: NegativeSampler, temperature: float, *,
                 backbone: Mapping[str, Any], dataset_size: int, embedding_dim: int = 128,
                 bank_momentum: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, head: str = "linear") -> None:
        super().__init__(sampler, temperature)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std must be 3 RGB values (std > 0), got {mean}, {std}")
        self.backbone_config = {**backbone, "in_channels": 1}
        self.encoder_l = build_backbone(**self.backbone_config)
        self.encoder_ab = build_backbone(**{**backbone, "in_channels": 2})
        self.feature_dim = self.encoder_l.feature_dim + self.encoder_ab.feature_dim
        self.head_l = build_head(head, self.encoder_l.feature_dim, embedding_dim)
        self.head_ab = build_head(head, self.encoder_ab.feature_dim, embedding_dim)
        self.bank_l = MemoryBank(dataset_size, embedding_dim, momentum=bank_momentum)
        self.bank_ab = MemoryBank(dataset_size, embedding_dim, momentum=bank_momentum)
        self.register_buffer("rgb_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def encoder(self) -> torch.nn.Module:  # type: ignore[override]
        """The L encoder (1-channel input), the query backbone for transfer."""
        return self.encoder_l

    def lab_views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised RGB ``(B, 3, H, W)`` -> normalised ``L`` ``(B, 1, H, W)`` and ``ab``
        ``(B, 2, H, W)``."""
        lab = normalize_lab(rgb_to_lab(x * self.rgb_std + self.rgb_mean))
        return lab[:, :1], lab[:, 1:]

    def embed_views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` normalised RGB -> ``(z_l, z_ab)``, each ``(B, D)`` L2-normalised."""
        l, ab = self.lab_views(x)
        return unit(self.head_l(self.encoder_l(l))), unit(self.head_ab(self.encoder_ab(ab)))

    def pool_embeddings(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """L embeddings as anchors, ab embeddings as the entries of ``bank_ab`` they are ranked
        against (one of CMC's two directions)."""
        return self.embed_views(x)

    def forward(self, batch: Mapping[str, Any], progress: float = 1.0,
                generator: Optional[torch.Generator] = None) -> dict[str, Any]:
        x1, _ = two_views(batch)
        index = batch_indices(batch, self.bank_l.size)
        z_l, z_ab = self.embed_views(x1)
        pos_l = (z_l * self.bank_ab.get(index)).sum(1)
        loss_l, logs_l = self.contrast(z_l, pos_l, self.bank_ab.all(), progress, generator)
        pos_ab = (z_ab * self.bank_l.get(index)).sum(1)
        loss_ab, logs_ab = self.contrast(z_ab, pos_ab, self.bank_l.all(), progress, generator)
        z_l, z_ab = z_l.detach(), z_ab.detach()
        self.stash(lambda: self._update_banks(index, z_l, z_ab))
        logs = {k: (logs_l[k] + logs_ab[k]) / 2 for k in logs_l}
        return {"loss": loss_l + loss_ab, "loss_l": loss_l.detach(), "loss_ab": loss_ab.detach(),
                **logs}

    def _update_banks(self, index: Tensor, z_l: Tensor, z_ab: Tensor) -> None:
        index = self.gather(index)
        self.bank_l.update(index, self.gather(z_l))
        self.bank_ab.update(index, self.gather(z_ab))

    def features(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalised RGB -> ``(B, F_l + F_ab)``: both encoders' features."""
        l, ab = self.lab_views(x)
        return torch.cat([self.encoder_l(l), self.encoder_ab(ab)], dim=1)
