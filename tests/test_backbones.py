"""Backbones: pooled-feature shapes, CIFAR stem, width, input channels, torchvision key names."""

import pytest
import torch
import torchvision

from repro.models.backbones import base_channels, build_backbone


@pytest.mark.parametrize("arch, width, expected_dim", [
    ("resnet18", 0.125, 64), ("resnet18", 0.25, 128), ("resnet50", 0.125, 256),
])
@pytest.mark.parametrize("cifar_stem", [True, False])
def test_backbone_returns_pooled_features_of_feature_dim(arch, width, expected_dim, cifar_stem):
    net = build_backbone(arch, cifar_stem=cifar_stem, width=width)
    assert net.feature_dim == expected_dim
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, expected_dim)


def test_width_multiplies_every_channel_count():
    quarter = build_backbone("resnet18", cifar_stem=True, width=0.25).state_dict()
    full = build_backbone("resnet18", cifar_stem=True, width=1.0).state_dict()
    assert base_channels(0.25) == 16
    convs = [k for k, w in full.items() if w.dim() == 4 and k != "conv1.weight"]
    assert len(convs) == 19  # 16 block convolutions + 3 downsample projections
    for key in convs:
        out_c, in_c = full[key].shape[:2]
        assert quarter[key].shape[:2] == (out_c // 4, in_c // 4), key
    assert quarter["conv1.weight"].shape == (16, 3, 3, 3)


def test_cifar_stem_keeps_full_resolution_into_layer1():
    sizes = {}
    for stem in (True, False):
        net = build_backbone("resnet18", cifar_stem=stem, width=0.125)
        net.layer1.register_forward_hook(
            lambda module, inputs, out, stem=stem: sizes.__setitem__(stem, out.shape))
        net(torch.randn(2, 3, 32, 32))
    assert sizes[True][-2:] == (32, 32)  # 3x3 stride-1 conv, no max-pool
    assert sizes[False][-2:] == (8, 8)   # 7x7 stride-2 conv + max-pool
    assert build_backbone("resnet18", cifar_stem=True).conv1.kernel_size == (3, 3)


@pytest.mark.parametrize("in_channels", [1, 2])
def test_in_channels_sets_the_first_convolution(in_channels):
    net = build_backbone("resnet18", cifar_stem=True, width=0.125, in_channels=in_channels)
    assert net.conv1.in_channels == in_channels
    assert net(torch.randn(2, in_channels, 16, 16)).shape == (2, net.feature_dim)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_state_dict_is_torchvision_resnet_without_fc(arch):
    ours = build_backbone(arch, cifar_stem=False, width=1.0).state_dict()
    theirs = getattr(torchvision.models, arch)(weights=None).state_dict()
    theirs = {k: v for k, v in theirs.items() if not k.startswith("fc.")}
    assert set(ours) == set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert build_backbone(arch, width=1.0).feature_dim == {"resnet18": 512, "resnet50": 2048}[arch]


def test_weights_load_into_torchvision_and_give_the_same_features():
    torch.manual_seed(0)
    ours = build_backbone("resnet18", cifar_stem=False, width=1.0).eval()
    theirs = torchvision.models.resnet18(weights=None)
    theirs.fc = torch.nn.Identity()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.eval()(x))


def test_bad_backbone_options_name_the_problem():
    with pytest.raises(ValueError, match="resnet18"):
        build_backbone("vgg16")
    with pytest.raises(ValueError, match="width"):
        build_backbone("resnet18", width=0.0)
    with pytest.raises(ValueError, match="depth"):
        build_backbone("resnet18", depth=3)
