"""torchvision detection models around a pretrained ring-repro ResNet (the CPU / no-detectron2
backend).

- ``c4`` (VOC, as detectron2's R50-C4): the trunk ``stem .. layer3`` feeds the RPN and a 14x14
  RoIAlign; ``layer4`` + average pooling is the box head (``Res5ROIHeads``).
- ``fpn`` (COCO): ``layer1 .. layer4`` -> FPN (+ max-pooled P6), torchvision's Mask / Keypoint
  R-CNN heads.

The backbone's BN layers are fine-tuned (``norm="bn"``, the MoCo recipe; a single process has
no cross-GPU sync, so SyncBN reduces to BN) or frozen at the pretrained statistics
(``norm="frozen"``, torchvision's default for supervised weights). All stages are trained.
``head_width`` shrinks the heads (mask / keypoint conv widths, box MLP) for tiny CPU runs; ``None``
keeps torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Optional

from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

__all__ = ["ResNetPyramid", "FPNBackbone", "C4Trunk", "freeze_batchnorm", "anchor_sizes",
           "build_detector"]


class ResNetPyramid(nn.Module):
    """The outputs of ``layer1 .. layer4`` of a ring-repro / torchvision ResNet:
    ``(B, 3, H, W)`` -> ``{"0": C2, "1": C3, "2": C4, "3": C5}``."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layers = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        self.channels = [_out_channels(layer) for layer in self.layers]

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        x = self.stem(x)
        out = OrderedDict()
        for i, layer in enumerate(self.layers):
            x = layer(x)
            out[str(i)] = x
        return out


class FPNBackbone(nn.Module):
    """ResNet + FPN: ``(B, 3, H, W)`` -> 5 maps of ``out_channels`` (P2-P5 and pooled P6)."""

    def __init__(self, resnet: nn.Module, out_channels: int = 256) -> None:
        super().__init__()
        self.body = ResNetPyramid(resnet)
        self.fpn = FeaturePyramidNetwork(self.body.channels, out_channels,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        return self.fpn(self.body(x))


class C4Trunk(nn.Module):
    """Stem + ``layer1 .. layer3``: ``(B, 3, H, W)`` -> ``(B, C4, H/16, W/16)`` (ImageNet stem)."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                  resnet.layer1, resnet.layer2, resnet.layer3)
        self.out_channels = _out_channels(resnet.layer3)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    conv = getattr(last, "conv3", None) or last.conv2
    return int(conv.out_channels)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` (recursively) by a ``FrozenBatchNorm2d`` with its
    statistics and affine parameters."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def anchor_sizes(min_size: int, levels: int) -> tuple[tuple[int, ...], ...]:
    """detectron2's anchors (32 .. 512 px for 800 px images), scaled to ``min_size`` (at most
    4x smaller), one size per level."""
    scale = max(0.25, min(1.0, min_size / 800))
    base = [32, 64, 128, 256, 512][:levels]
    return tuple((max(4, int(round(s * scale))),) for s in base)


def build_detector(task_head: str, arch: str, encoder_state: Mapping[str, Tensor],
                   backbone: Mapping[str, Any], num_classes: int, *, num_keypoints: int = 17,
                   min_size: int = 800, max_size: int = 1333, norm: str = "bn",
                   fpn_channels: int = 256, head_width: Optional[int] = None) -> nn.Module:
    """A torchvision detector whose backbone holds the pretrained encoder weights.

    Args:
        task_head: ``box`` (Faster R-CNN), ``mask`` (Mask R-CNN), ``keypoints`` (Keypoint R-CNN).
        arch: ``c4`` or ``fpn``; ``c4`` supports ``box`` only.
        encoder_state: the query encoder's state dict (torchvision ResNet names, no ``fc``).
        backbone: its description (``arch``, ``cifar_stem``, ``width``, ``in_channels``).
        num_classes: foreground classes (background is added).
    """
    from repro.models.backbones import build_backbone

    if norm not in ("bn", "frozen"):
        raise ValueError(f"norm must be 'bn' (fine-tuned) or 'frozen', got {norm!r}")
    if int(backbone.get("in_channels", 3)) != 3:
        raise ValueError(f"detection fine-tunes RGB encoders; this one takes "
                         f"{backbone.get('in_channels')} input channels (CMC's L encoder): leave "
                         f"it out of detection.runs")
    resnet = build_backbone(**backbone)
    missing, unexpected = resnet.load_state_dict(dict(encoder_state), strict=False)
    if missing or [k for k in unexpected if not k.startswith("fc.")]:
        raise ValueError(f"encoder weights do not fit a {backbone}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    if norm == "frozen":
        freeze_batchnorm(resnet)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # torchvision ImageNet, RGB 0-1
    common = dict(min_size=min_size, max_size=max_size, image_mean=mean, image_std=std)
    if head_width is not None:
        common.update(rpn_batch_size_per_image=64, box_batch_size_per_image=128)
    classes = num_classes + 1

    if arch == "c4":
        if task_head != "box":
            raise ValueError("the C4 architecture is built for box detection only")
        trunk = C4Trunk(resnet)
        res5 = nn.Sequential(resnet.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        res5_channels = _out_channels(resnet.layer4)
        anchors = AnchorGenerator((tuple(s[0] for s in anchor_sizes(min_size, 5)),),
                                  ((0.5, 1.0, 2.0),))
        return FasterRCNN(trunk, rpn_anchor_generator=anchors,
                          box_roi_pool=MultiScaleRoIAlign(["0"], output_size=14,
                                                          sampling_ratio=0),
                          box_head=res5, box_predictor=FastRCNNPredictor(res5_channels, classes),
                          **common)
    if arch != "fpn":
        raise ValueError(f"arch must be 'c4' or 'fpn', got {arch!r}")

    body = FPNBackbone(resnet, fpn_channels)
    anchors = AnchorGenerator(anchor_sizes(min_size, 5), ((0.5, 1.0, 2.0),) * 5)
    representation = 1024 if head_width is None else 4 * head_width
    box_head = TwoMLPHead(fpn_channels * 7 * 7, representation)
    box_predictor = FastRCNNPredictor(representation, classes)
    kwargs = dict(rpn_anchor_generator=anchors, box_head=box_head, box_predictor=box_predictor,
                  **common)
    if task_head == "box":
        return FasterRCNN(body, **kwargs)
    if task_head == "mask":
        width = 256 if head_width is None else head_width
        return MaskRCNN(body, mask_head=MaskRCNNHeads(fpn_channels, [width] * 4, 1),
                        mask_predictor=MaskRCNNPredictor(width, width, classes), **kwargs)
    if task_head == "keypoints":
        width = 512 if head_width is None else head_width
        layers = 8 if head_width is None else 4
        return KeypointRCNN(body, keypoint_head=KeypointRCNNHeads(fpn_channels, [width] * layers),
                            keypoint_predictor=KeypointRCNNPredictor(width, num_keypoints),
                            **kwargs)
    raise ValueError(f"unknown task head {task_head!r}; box, mask or keypoints")
