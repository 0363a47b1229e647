"""ResNet backbones: ResNet-18 / ResNet-50 with a CIFAR stem, a width multiplier and any number
of input channels, returning pooled features.

The modules keep torchvision's parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ...) so that a checkpoint's encoder converts to detectron2 (and loads
into ``torchvision.models.resnet18``) by name. With ``width=1``, ``in_channels=3`` and the
ImageNet stem the state dict is exactly torchvision's minus ``fc.*``.

- ``cifar_stem=True``: ``conv1`` is a 3x3 stride-1 convolution and there is no max-pool
  (for 32x32 to 96x96 images, as in the CIFAR / STL-10 experiments of the paper).
- ``width``: multiplies every channel count; ``width=0.25`` gives 16 base channels instead of 64.
- ``in_channels``: 3 for RGB; CMC uses 1 (L) and 2 (ab).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "ARCHS", "build_backbone", "base_channels"]


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free ``kernel_size`` convolution padded to keep ``H / stride``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                     padding=kernel_size // 2, bias=False)


class BasicBlock(nn.Module):
    """ResNet-18's residual block: two 3x3 convolutions beside a shortcut,
    ``(B, inplanes, H, W)`` -> ``(B, planes, H / stride, W / stride)``.

    torchvision's ``BasicBlock`` in parameters, names, creation order (so one seed gives the
    same weights) and outputs; our own so that building a backbone does not import torchvision
    (about 2.5 s per process, paid by every Snakemake parse and job).
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet-50's residual block (v1.5: the stride on the 3x3): 1x1, 3x3, 1x1 convolutions
    beside a shortcut, ``(B, inplanes, H, W)`` -> ``(B, 4 planes, H / stride, W / stride)``.

    torchvision's ``Bottleneck`` (``groups=1``, ``base_width=64``) in the same sense as
    :class:`BasicBlock`.
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


# arch -> (block, number of blocks per stage)
ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def base_channels(width: float) -> int:
    """Channels of the stem and of ``layer1`` for a width multiplier (64 at ``width=1``)."""
    if not width > 0:
        raise ValueError(f"backbone width must be positive, got {width}")
    return max(1, int(round(64 * width)))


class ResNet(nn.Module):
    """A ResNet trunk without ``fc``: ``(B, C_in, H, W)`` -> ``(B, feature_dim)`` pooled features.

    Args:
        block: :class:`BasicBlock` (ResNet-18) or :class:`Bottleneck` (ResNet-50); torchvision's
            blocks fit too.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)``.
        width: channel multiplier (see :func:`base_channels`).
        cifar_stem: 3x3 stride-1 ``conv1`` and no max-pool.
        in_channels: input image channels.
    """

    def __init__(self, block: type[nn.Module], layers: tuple[int, ...], *, width: float = 1.0,
                 cifar_stem: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        base = base_channels(width)
        self.inplanes = base
        if cifar_stem:
            self.conv1 = _conv(in_channels, base, 3)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = _conv(in_channels, base, 7, stride=2)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, base, layers[0], stride=1)
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim: int = base * 8 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        out = planes * block.expansion
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(
                _conv(self.inplanes, out, 1, stride),
                nn.BatchNorm2d(out),
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, feature_dim)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def build_backbone(arch: str, cifar_stem: bool = False, width: float = 1.0,
                   in_channels: int = 3, **unknown: Any) -> ResNet:
    """Build a backbone from its description (``{"arch": "resnet18", "cifar_stem": True,
    "width": 0.25}``, as in the config's ``pretrain.backbone``).

    Returns:
        A :class:`ResNet` mapping ``(B, in_channels, H, W)`` to ``(B, feature_dim)``.
    """
    if unknown:
        raise ValueError(f"unknown backbone options {sorted(unknown)}; the options are "
                         f"arch, cifar_stem, width, in_channels")
    if arch not in ARCHS:
        raise ValueError(f"unknown backbone arch {arch!r}; choose one of {sorted(ARCHS)}")
    block, layers = ARCHS[arch]
    return ResNet(block, layers, width=width, cifar_stem=bool(cifar_stem),
                  in_channels=int(in_channels))
