"""detectron2 backbones and the C4 box head for ring-repro's encoders: any width, either stem.

detectron2's stock ``build_resnet_backbone`` takes ResNet-18 only at width 1 and only with the
ImageNet stem (7x7/2 conv + max-pool). The encoders pretrained here are ResNet-18 or -50 at any
width (``width=1/8``: 8 base channels), often with the CIFAR stem (3x3/1 conv, no max-pool).
Importing this module (after :func:`transfer.detection.d2compat.prepare`) registers:

- ``build_ring_resnet_backbone`` (C4 configs) and ``build_ring_resnet_fpn_backbone`` (FPN
  configs) in ``BACKBONE_REGISTRY``: detectron2's own ``ResNet`` / ``FPN`` modules with the stem
  and stage widths of the encoder, so the converted weights (:mod:`transfer.detection.convert`:
  ``stem.conv1.*``, ``resN.b.convK.*``, ``resN.b.shortcut.*``) load by name;
- ``Res5ROIHeadsExtraNorm`` in ``ROI_HEADS_REGISTRY``: detectron2's C4 box head (res5 on pooled
  res4 features) with the encoder's own res5 (basic blocks for ResNet-18, bottlenecks for -50)
  and one more norm after it, as the MoCo detection recipe does.

The encoder's shape comes from the config: ``MODEL.RESNETS.DEPTH``, ``STEM_OUT_CHANNELS`` (the
base width) and ``MODEL.RESNETS.STEM_TYPE`` (``imagenet`` | ``cifar``, added by
:func:`add_ring_config`). Feature strides are the real ones: the CIFAR stem keeps full
resolution, so res2..res5 have strides 1, 2, 4, 8 and detectron2's FPN names its levels p0..p4
where the ImageNet stem gives p2..p6; :func:`fpn_level_names` maps a config's level names.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

from transfer.detection import d2compat

d2compat.prepare()

from detectron2.config import CfgNode  # noqa: E402  (after the compatibility shims)
from detectron2.layers import CNNBlockBase, Conv2d, ShapeSpec, get_norm  # noqa: E402
from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY  # noqa: E402
from detectron2.modeling.backbone import FPN, ResNet  # noqa: E402
from detectron2.modeling.backbone.fpn import LastLevelMaxPool  # noqa: E402
from detectron2.modeling.backbone.resnet import (BasicBlock, BasicStem,  # noqa: E402
                                                 BottleneckBlock)
from detectron2.modeling.roi_heads import Res5ROIHeads  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

__all__ = ["BLOCKS_PER_STAGE", "STEM_STRIDE", "CifarStem", "add_ring_config", "stage_channels",
           "build_stem", "build_ring_resnet", "build_ring_resnet_backbone",
           "build_ring_resnet_fpn_backbone", "fpn_level_names", "Res5ROIHeadsExtraNorm"]

BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}
STEM_STRIDE = {"imagenet": 4, "cifar": 1}


class CifarStem(CNNBlockBase):
    """The CIFAR stem: 3x3 stride-1 conv + norm + ReLU, no max-pool (stride 1)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm: str = "BN") -> None:
        super().__init__(in_channels, out_channels, 1)
        self.conv1 = Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                            bias=False, norm=get_norm(norm, out_channels))

    def forward(self, x):
        return F.relu_(self.conv1(x))


def add_ring_config(cfg: CfgNode) -> CfgNode:
    """Add ``MODEL.RESNETS.STEM_TYPE`` (default ``imagenet``) to a detectron2 config."""
    if "STEM_TYPE" not in cfg.MODEL.RESNETS:
        cfg.MODEL.RESNETS.STEM_TYPE = "imagenet"
    return cfg


def stage_channels(depth: int, base: int) -> list[tuple[int, int, int]]:
    """``(in, bottleneck, out)`` channels of res2..res5 of a ResNet-``depth`` with ``base``
    stem channels, as ring-repro's (torchvision's) ResNet lays them out."""
    expansion = 1 if depth == 18 else 4
    channels, in_channels = [], base
    for i in range(4):
        planes = base * 2 ** i
        channels.append((in_channels, planes, planes * expansion))
        in_channels = planes * expansion
    return channels


def build_stem(cfg: CfgNode, in_channels: int) -> CNNBlockBase:
    stem_type = cfg.MODEL.RESNETS.STEM_TYPE
    if stem_type not in STEM_STRIDE:
        raise ValueError(f"MODEL.RESNETS.STEM_TYPE must be one of {sorted(STEM_STRIDE)}, got "
                         f"{stem_type!r}")
    stem_class = CifarStem if stem_type == "cifar" else BasicStem
    return stem_class(in_channels=in_channels, out_channels=cfg.MODEL.RESNETS.STEM_OUT_CHANNELS,
                      norm=cfg.MODEL.RESNETS.NORM)


def _make_stage(depth: int, index: int, channels: tuple[int, int, int], norm: str):
    in_channels, bottleneck, out_channels = channels
    stride = [1 if index == 0 else 2] + [1] * (BLOCKS_PER_STAGE[depth][index] - 1)
    if depth == 18:
        return ResNet.make_stage(BasicBlock, len(stride), stride_per_block=stride,
                                 in_channels=in_channels, out_channels=out_channels, norm=norm)
    return ResNet.make_stage(BottleneckBlock, len(stride), stride_per_block=stride,
                             in_channels=in_channels, bottleneck_channels=bottleneck,
                             out_channels=out_channels, norm=norm, stride_in_1x1=False)


def build_ring_resnet(cfg: CfgNode, input_shape: ShapeSpec) -> ResNet:
    """detectron2 ``ResNet`` shaped like the encoder, up to the last stage in OUT_FEATURES."""
    resnets = cfg.MODEL.RESNETS
    depth = resnets.DEPTH
    if depth not in BLOCKS_PER_STAGE:
        raise ValueError(f"ring-repro encoders are ResNet-18 or -50; MODEL.RESNETS.DEPTH is "
                         f"{depth}")
    if resnets.NUM_GROUPS != 1 or any(resnets.DEFORM_ON_PER_STAGE):
        raise ValueError("ring-repro encoders have no groups and no deformable convs")
    stem = build_stem(cfg, input_shape.channels)
    last = max(int(name[3:]) for name in resnets.OUT_FEATURES)
    stages = [_make_stage(depth, i, ch, resnets.NORM)
              for i, ch in enumerate(stage_channels(depth, resnets.STEM_OUT_CHANNELS))
              if i + 2 <= last]
    return ResNet(stem, stages, out_features=resnets.OUT_FEATURES,
                  freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_ring_resnet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> ResNet:
    """The encoder as a detectron2 backbone (C4: OUT_FEATURES ``["res4"]``)."""
    return build_ring_resnet(cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_ring_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FPN:
    """The encoder + detectron2's FPN (and a max-pooled top level), as
    ``build_resnet_fpn_backbone``."""
    bottom_up = build_ring_resnet(cfg, input_shape)
    top_block = LastLevelMaxPool()  # pools the last FPN level, named by its real stride
    last_stride = bottom_up.output_shape()[cfg.MODEL.FPN.IN_FEATURES[-1]].stride
    top_block.in_feature = f"p{int(math.log2(last_stride))}"
    return FPN(bottom_up=bottom_up, in_features=cfg.MODEL.FPN.IN_FEATURES,
               out_channels=cfg.MODEL.FPN.OUT_CHANNELS, norm=cfg.MODEL.FPN.NORM,
               top_block=top_block, fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


def fpn_level_names(names: Sequence[str], stem_type: str) -> list[str]:
    """FPN level names (``p2``..``p6``, written for the ImageNet stem) for ``stem_type``: the
    CIFAR stem's strides are 4x smaller, so ``pN`` becomes ``p(N-2)``. Other names pass."""
    shift = {4: 0, 1: 2}[STEM_STRIDE[stem_type]]
    return [re.sub(r"^p(\d+)$", lambda m: f"p{int(m.group(1)) - shift}", n) for n in names]


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """C4 box head: the encoder's res5 (basic blocks for ResNet-18, bottlenecks for -50) on
    pooled res4 features, then one more norm of ``MODEL.RESNETS.NORM`` (MoCo's recipe)."""

    @classmethod
    def _build_res5_block(cls, cfg: CfgNode) -> tuple[nn.Module, int]:
        resnets = cfg.MODEL.RESNETS
        channels = stage_channels(resnets.DEPTH, resnets.STEM_OUT_CHANNELS)[3]
        res5 = _make_stage(resnets.DEPTH, 3, channels, resnets.NORM)
        res5 = nn.Sequential(*res5)
        res5.add_module("norm", get_norm(resnets.NORM, channels[2]))
        return res5, channels[2]
