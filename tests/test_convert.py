"""transfer.detection.convert beyond the name mapping (tests/test_detection.py): the settings it
writes at every width and stem, what it loads and refuses, the files and the CLI's words."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from repro.models.backbones import build_backbone
from transfer.detection.convert import (convert_checkpoint, detectron2_settings,
                                        load_encoder_state, main)

TINY = {"arch": "resnet18", "cifar_stem": True, "width": 0.125, "in_channels": 3}


def _encoder(backbone: dict) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_backbone(**backbone).state_dict()


def _torchvision_state(arch: str) -> dict[str, torch.Tensor]:
    import torchvision

    return getattr(torchvision.models, arch)(weights=None).state_dict()


def _settings(weights, depth, base, res2, stem):
    return {"MODEL": {"WEIGHTS": weights, "PIXEL_MEAN": [123.675, 116.28, 103.53],
                      "PIXEL_STD": [58.395, 57.12, 57.375],
                      "RESNETS": {"DEPTH": depth, "STRIDE_IN_1X1": False,
                                  "STEM_OUT_CHANNELS": base, "RES2_OUT_CHANNELS": res2,
                                  "WIDTH_PER_GROUP": base, "NUM_GROUPS": 1, "STEM_TYPE": stem}},
            "INPUT": {"FORMAT": "RGB"}, "VERSION": 2}


@pytest.mark.parametrize("backbone,expected", [
    ({"arch": "resnet18", "cifar_stem": True, "width": 0.125}, (18, 8, 8, "cifar")),
    ({"arch": "resnet50", "cifar_stem": False, "width": 1.0}, (50, 64, 256, "imagenet")),
    ({"arch": "resnet50"}, (50, 64, 256, "imagenet")),  # width 1, ImageNet stem by default
    ({"arch": "resnet18", "width": 1 / 64}, (18, 1, 1, "imagenet")),
    ({"arch": "resnet18", "width": 0.001}, (18, 1, 1, "imagenet")),  # never below one channel
    ({"arch": "resnet50", "width": 0.5, "cifar_stem": True}, (50, 32, 128, "cifar")),
])
def test_detectron2_settings_give_the_encoders_depth_width_and_stem(backbone, expected):
    depth, base, res2, stem = expected
    assert detectron2_settings(backbone, "/w.pkl") == _settings("/w.pkl", depth, base, res2,
                                                                stem)


def test_load_encoder_state_reads_checkpoints_and_bare_state_dicts(tmp_path):
    encoder = _encoder(TINY)
    named = {"arch": "resnet18", "cifar_stem": True, "width": 0.125, "in_channels": 3,
             "note": "as written by pretraining"}
    torch.save({"encoder": encoder, "backbone": named, "rng": np.random.default_rng(0),
                "extra": np.arange(3)}, tmp_path / "ckpt.pt")  # not weights-only: numpy inside
    state, backbone = load_encoder_state(tmp_path / "ckpt.pt")
    assert backbone == named and list(state) == list(encoder)
    assert all(torch.equal(state[k], encoder[k]) for k in encoder)
    torch.save({"encoder": encoder, "backbone": None}, tmp_path / "nameless.pt")
    assert load_encoder_state(str(tmp_path / "nameless.pt"))[1] == TINY  # inferred
    torch.save(encoder, tmp_path / "bare.pt")
    state, backbone = load_encoder_state(tmp_path / "bare.pt")
    assert backbone == TINY and set(state) == set(encoder)


@pytest.mark.parametrize("content", [["encoder"], ["conv1.weight"], {"model": {}}, 3])
def test_load_encoder_state_refuses_anything_else_by_path(tmp_path, content):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(ValueError) as caught:
        load_encoder_state(path)
    assert str(caught.value) == (f"{path} holds neither a ring-repro checkpoint ('encoder' "
                                 f"key) nor a torchvision ResNet state dict")


def test_a_missing_checkpoint_says_to_run_the_pretraining(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_encoder_state(tmp_path / "none.pt")
    assert str(caught.value) == f"no checkpoint at {tmp_path / 'none.pt'}: run the pretraining first"


def test_convert_checkpoint_writes_a_protocol_4_pickle_and_settings_where_asked(tmp_path):
    torch.save({"encoder": _encoder(TINY), "backbone": TINY}, tmp_path / "c.pt")
    out, where = tmp_path / "w.pkl", tmp_path / "cfg" / "s.yaml"
    info = convert_checkpoint(tmp_path / "c.pt", out, where)
    raw = out.read_bytes()
    assert raw[:2] == b"\x80\x04"  # pickle protocol 4: readable by detectron2's Python 3.6+
    assert set(pickle.loads(raw)) == {"model", "__author__", "matching_heuristics"}
    assert not out.with_suffix(".yaml").exists()
    text = where.read_text()
    assert text.startswith(f"# detectron2 settings for w.pkl (converted from {tmp_path / 'c.pt'}"
                           f" by transfer.detection.convert);\n")
    assert "WARNING" not in text
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line for line in body if not line.startswith(" ")] == [
        "MODEL:", "INPUT:", "VERSION: 2"]  # the settings' own order, not sorted
    assert yaml.safe_load(text) == _settings(str(out.resolve()), 18, 8, 8, "cifar")
    assert info["warnings"] == [] and info["backbone"] == TINY
    assert info["num_tensors"] == len(pickle.loads(raw)["model"])
    assert {k: info[k] for k in ("MODEL", "INPUT", "VERSION")} == yaml.safe_load(text)


def test_a_one_channel_encoder_gets_a_warning_line_in_its_settings(tmp_path):
    gray = {**TINY, "in_channels": 1}
    torch.save({"encoder": _encoder(gray), "backbone": gray}, tmp_path / "c.pt")
    info = convert_checkpoint(tmp_path / "c.pt", tmp_path / "w.pkl")
    assert info["warnings"] == ["the encoder does not take 3-channel RGB input"]
    text = (tmp_path / "w.yaml").read_text()
    assert "# WARNING: the encoder does not take 3-channel RGB input\nMODEL:" in text
    no_channels = {k: v for k, v in TINY.items() if k != "in_channels"}
    torch.save({"encoder": _encoder(TINY), "backbone": no_channels}, tmp_path / "d.pt")
    assert convert_checkpoint(tmp_path / "d.pt", tmp_path / "d.pkl")["warnings"] == []


def test_convert_cli_reports_what_it_wrote_and_passes_the_settings_path(tmp_path, capsys):
    torch.save({"encoder": _encoder(TINY), "backbone": TINY}, tmp_path / "c.pt")
    out, where = tmp_path / "w.pkl", tmp_path / "s.yaml"
    assert main([str(tmp_path / "c.pt"), str(out), "--settings", str(where)]) == 0
    captured = capsys.readouterr()
    count = len(pickle.loads(out.read_bytes())["model"])
    assert captured.out == f"wrote {out} ({count} tensors, resnet18)\n"
    assert captured.err == ""
    assert where.exists() and not out.with_suffix(".yaml").exists()


def test_convert_cli_prints_one_error_line_and_exits_2(tmp_path, capsys):
    missing = tmp_path / "missing.pt"
    assert main([str(missing), str(tmp_path / "x.pkl")]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: no checkpoint at {missing}: run the pretraining first\n")
    assert captured.out == ""


def test_convert_help_names_the_command_and_every_argument(capsys):
    with pytest.raises(SystemExit) as code:
        main(["--help"])
    assert code.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: python -m transfer.detection.convert [-h] [--settings "
                           "SETTINGS] checkpoint out")
    for words in ("Convert a pretraining checkpoint's query encoder (torchvision ResNet names) "
                  "to a detectron2 weights .pkl, and write the matching config settings (RGB "
                  "input, torchvision pixel mean/std, STRIDE_IN_1X1 False) as YAML.",
                  "checkpoint checkpoint.pt (or a torchvision ResNet state dict)",
                  "out output .pkl",
                  "--settings SETTINGS where to write the YAML settings (default: OUT with "
                  ".yaml)"):
        assert words in text


def test_unsupported_or_foreign_state_dicts_are_refused_with_what_they_hold():
    from transfer.detection.convert import (convert_state_dict, detectron2_to_torchvision_name,
                                            infer_backbone)

    resnet34 = _torchvision_state("resnet34")
    with pytest.raises(ValueError) as caught:
        infer_backbone(resnet34)
    assert str(caught.value) == ("unsupported ResNet depth (basic blocks, 6 in layer3): "
                                 "ResNet-18 and ResNet-50 are supported")
    resnet101 = _torchvision_state("resnet101")
    with pytest.raises(ValueError) as caught:
        infer_backbone(resnet101)
    assert str(caught.value) == ("unsupported ResNet depth (bottleneck blocks, 23 in layer3): "
                                 "ResNet-18 and ResNet-50 are supported")
    with pytest.raises(ValueError) as caught:
        convert_state_dict({"layer1.0.conv1.weight": torch.zeros(1)})
    assert str(caught.value) == "the state dict has no conv1.weight: not a ResNet backbone"
    with pytest.raises(KeyError) as caught:
        detectron2_to_torchvision_name("roi_heads.box_predictor.weight")
    assert caught.value.args == ("'roi_heads.box_predictor.weight' is not a detectron2 ResNet "
                                 "backbone key (stem.*, resN.*)",)


def test_infer_backbone_tells_the_stem_by_the_first_convs_kernel_width():
    from transfer.detection.convert import infer_backbone

    state = {k: v for k, v in _encoder(TINY).items()}
    assert infer_backbone(state)["cifar_stem"] is True
    state["conv1.weight"] = torch.zeros(8, 3, 7, 7)
    assert infer_backbone(state)["cifar_stem"] is False
    state["conv1.weight"] = torch.zeros(8, 3, 3, 7)  # only the last dimension decides
    assert infer_backbone(state)["cifar_stem"] is False
