"""Backbones: pooled-feature shapes, CIFAR stem, width, input channels, torchvision key names."""

from pathlib import Path

import pytest
import torch
import torchvision

from repro.models.backbones import (ARCHS, BasicBlock, Bottleneck, ResNet, base_channels,
                                    build_backbone)


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


def test_convolutions_start_from_kaiming_normal_over_fan_out_and_batch_norm_from_identity():
    torch.manual_seed(0)
    net = build_backbone("resnet18", cifar_stem=True, width=1.0)
    for name, fan_out in (("layer2.0.conv1", 128 * 9), ("conv1", 64 * 9),
                          ("layer3.0.downsample.0", 256)):
        weight = net.get_submodule(name).weight.detach()
        expected = (2.0 / fan_out) ** 0.5  # gain sqrt(2) for ReLU, fan_out = C_out k k
        assert float(weight.std()) == pytest.approx(expected, rel=0.05), name
        assert abs(float(weight.mean())) < 0.1 * expected
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert bool((module.weight == 1).all()) and bool((module.bias == 0).all())


def test_base_channels_is_64_times_width_rounded_and_never_zero():
    assert [base_channels(w) for w in (1.0, 0.5, 0.0625, 1 / 64, 0.001, 2.0, 0.3)] == [
        64, 32, 4, 1, 1, 128, 19]
    for width in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError) as caught:
            base_channels(width)
        assert str(caught.value) == f"backbone width must be positive, got {width}"


def test_bad_backbone_options_are_refused_with_the_whole_message():
    with pytest.raises(ValueError) as caught:
        build_backbone("vgg16")
    assert str(caught.value) == ("unknown backbone arch 'vgg16'; choose one of "
                                 "['resnet18', 'resnet50']")
    with pytest.raises(ValueError) as caught:
        build_backbone("resnet18", depth=3, stem="x")
    assert str(caught.value) == ("unknown backbone options ['depth', 'stem']; the options are "
                                 "arch, cifar_stem, width, in_channels")
    with pytest.raises(ValueError) as caught:
        build_backbone("resnet18", in_channels=0)
    assert str(caught.value) == "in_channels must be at least 1, got 0"
    assert build_backbone("resnet18", width=0.0625, in_channels="1").conv1.in_channels == 1


def test_defaults_are_an_imagenet_stem_at_full_width_on_rgb():
    net = build_backbone("resnet50")
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2)
    assert net.conv1.in_channels == 3 and net.conv1.out_channels == 64
    assert isinstance(net.maxpool, torch.nn.MaxPool2d)
    plain = ResNet(*ARCHS["resnet18"])
    assert plain.conv1.kernel_size == (7, 7) and plain.conv1.in_channels == 3
    assert plain.feature_dim == 512


def test_the_cifar_stem_has_the_same_parameters_as_the_imagenet_stem_but_conv1s_kernel():
    cifar = build_backbone("resnet18", cifar_stem=True, width=0.125).state_dict()
    imagenet = build_backbone("resnet18", cifar_stem=False, width=0.125).state_dict()
    assert list(cifar) == list(imagenet)  # no conv1.bias: the BN that follows has the bias
    assert {k for k in cifar if cifar[k].shape != imagenet[k].shape} == {"conv1.weight"}


@pytest.mark.parametrize("arch, ours, theirs", [
    ("resnet18", BasicBlock, torchvision.models.resnet.BasicBlock),
    ("resnet50", Bottleneck, torchvision.models.resnet.Bottleneck),
])
@pytest.mark.parametrize("cifar_stem", [True, False])
def test_our_blocks_are_torchvisions_in_weights_from_one_seed_and_in_outputs(arch, ours, theirs,
                                                                            cifar_stem):
    """Our blocks spare every process torchvision's import; with one seed they build the very
    weights torchvision's blocks build (same modules, created in the same order), and map
    inputs to the same features, in training mode (batch statistics) and in eval mode."""
    layers = ARCHS[arch][1]
    nets = []
    for block in (ours, theirs):
        torch.manual_seed(3)
        nets.append(ResNet(block, layers, width=0.25, cifar_stem=cifar_stem, in_channels=2))
    mine, reference = nets
    assert ARCHS[arch][0] is ours
    expected = reference.state_dict()
    assert list(mine.state_dict()) == list(expected)
    for key, value in mine.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    with torch.no_grad():  # BN statistics differ from identity, so eval mode tests them
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    mine.load_state_dict(reference.state_dict())
    x = torch.randn(3, 2, 32, 32)
    for train in (True, False):
        mine.train(train)
        reference.train(train)
        with torch.no_grad():
            torch.testing.assert_close(mine(x), reference(x))
    block = mine.layer2[0]
    assert block.stride == 2 and block.downsample is not None
    assert mine.layer2[1].stride == 1 and mine.layer2[1].downsample is None


@pytest.mark.slow
def test_building_and_validating_configs_does_not_import_torchvision():
    """The Snakefile validates the config against every registry while it parses, and every
    job builds a backbone: neither pays torchvision's ~2.5 s import (only augmentation,
    image folders and detection do)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from pathlib import Path\n"
            "from repro.config import load_config, load_schema\n"
            "from repro.models import build_backbone\n"
            "load_schema()\n"
            "load_config(Path('config/default.yaml'))\n"
            "build_backbone('resnet50', width=0.125)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
