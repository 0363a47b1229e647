"""Convert a pretraining checkpoint's query encoder to detectron2 weights (``.pkl``).

    python -m transfer.detection.convert results/pretrain/imagenet/moco-ring/seed0/checkpoint.pt \\
        r50_moco_ring.pkl          # also writes r50_moco_ring.yaml (the matching config settings)

Names (torchvision -> detectron2)::

    conv1.weight                     stem.conv1.weight
    bn1.{weight,bias,running_*}      stem.conv1.norm.{...}
    layer{N}.{b}.conv{k}.weight      res{N+1}.{b}.conv{k}.weight
    layer{N}.{b}.bn{k}.{...}         res{N+1}.{b}.conv{k}.norm.{...}
    layer{N}.{b}.downsample.0.weight res{N+1}.{b}.shortcut.weight
    layer{N}.{b}.downsample.1.{...}  res{N+1}.{b}.shortcut.norm.{...}

``num_batches_tracked`` and any ``fc.*`` (classifier) entries are dropped. ``res5.*`` is what a C4
model's ROI head holds (``roi_heads.res5.*``): ``matching_heuristics`` lets detectron2's
checkpointer match it by suffix. The backbones of :mod:`transfer.detection.d2backbone` take
the encoder's width and stem (``MODEL.RESNETS.STEM_TYPE``), so every tensor loads.

A torchvision-style backbone expects RGB input in [0, 1] normalised with ImageNet statistics;
detectron2's defaults (MSRA weights) expect BGR in [0, 255] and put the stride in the 1x1 conv.
The written settings therefore are ``INPUT.FORMAT: RGB``, ``MODEL.PIXEL_MEAN: [123.675, 116.28,
103.53]``, ``MODEL.PIXEL_STD: [58.395, 57.12, 57.375]`` and ``MODEL.RESNETS.STRIDE_IN_1X1: False``.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

__all__ = [
    "PIXEL_MEAN",
    "PIXEL_STD",
    "torchvision_to_detectron2_name",
    "detectron2_to_torchvision_name",
    "convert_state_dict",
    "infer_backbone",
    "detectron2_settings",
    "load_encoder_state",
    "convert_checkpoint",
    "main",
]

PIXEL_MEAN = [123.675, 116.28, 103.53]  # torchvision's ImageNet mean, RGB, 0-255
PIXEL_STD = [58.395, 57.12, 57.375]

_NORM = r"(weight|bias|running_mean|running_var)"
_TV_RULES = [
    (re.compile(r"^conv1\.weight$"), "stem.conv1.weight"),
    (re.compile(rf"^bn1\.{_NORM}$"), r"stem.conv1.norm.\1"),
    (re.compile(r"^layer([1-4])\.(\d+)\.conv(\d)\.weight$"), r"res{\1}.\2.conv\3.weight"),
    (re.compile(rf"^layer([1-4])\.(\d+)\.bn(\d)\.{_NORM}$"), r"res{\1}.\2.conv\3.norm.\4"),
    (re.compile(r"^layer([1-4])\.(\d+)\.downsample\.0\.weight$"), r"res{\1}.\2.shortcut.weight"),
    (re.compile(rf"^layer([1-4])\.(\d+)\.downsample\.1\.{_NORM}$"),
     r"res{\1}.\2.shortcut.norm.\3"),
]
_D2_RULES = [
    (re.compile(r"^stem\.conv1\.weight$"), "conv1.weight"),
    (re.compile(rf"^stem\.conv1\.norm\.{_NORM}$"), r"bn1.\1"),
    (re.compile(r"^res([2-5])\.(\d+)\.conv(\d)\.weight$"), r"layer{\1}.\2.conv\3.weight"),
    (re.compile(rf"^res([2-5])\.(\d+)\.conv(\d)\.norm\.{_NORM}$"), r"layer{\1}.\2.bn\3.\4"),
    (re.compile(r"^res([2-5])\.(\d+)\.shortcut\.weight$"), r"layer{\1}.\2.downsample.0.weight"),
    (re.compile(rf"^res([2-5])\.(\d+)\.shortcut\.norm\.{_NORM}$"),
     r"layer{\1}.\2.downsample.1.\3"),
]
_DROPPED = re.compile(r"(^fc\.|num_batches_tracked$)")


def _apply(rules, name: str, stage_offset: int) -> Optional[str]:
    for pattern, template in rules:
        match = pattern.match(name)
        if match:
            out = match.expand(template)
            # "{N}" marks the stage number, shifted between layerN and res(N+1)
            return re.sub(r"\{(\d)\}", lambda m: str(int(m.group(1)) + stage_offset), out)
    return None


def torchvision_to_detectron2_name(name: str) -> Optional[str]:
    """detectron2 name of a torchvision ResNet parameter / buffer; ``None`` for the dropped
    ``fc.*`` and ``num_batches_tracked``. Raises ``KeyError`` for a name no rule covers."""
    if _DROPPED.search(name):
        return None
    out = _apply(_TV_RULES, name, +1)
    if out is None:
        raise KeyError(f"{name!r} is not a torchvision ResNet backbone key (conv1, bn1, "
                       f"layerN.*); is this a ResNet encoder state dict?")
    return out


def detectron2_to_torchvision_name(name: str) -> str:
    """Inverse of :func:`torchvision_to_detectron2_name` (for the backbone keys)."""
    out = _apply(_D2_RULES, name, -1)
    if out is None:
        raise KeyError(f"{name!r} is not a detectron2 ResNet backbone key (stem.*, resN.*)")
    return out


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """torchvision-named ResNet state dict -> ``{detectron2 name: numpy array}`` (same shapes)."""
    converted = {}
    for name, value in state_dict.items():
        new = torchvision_to_detectron2_name(name)
        if new is not None:
            converted[new] = value.detach().cpu().numpy()
    if "stem.conv1.weight" not in converted:
        raise ValueError("the state dict has no conv1.weight: not a ResNet backbone")
    return converted


def infer_backbone(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"arch", "cifar_stem", "width", "in_channels"}`` of a torchvision-named ResNet."""
    bottleneck = "layer1.0.conv3.weight" in state_dict
    blocks = len({k.split(".")[1] for k in state_dict if k.startswith("layer3.")})
    arch = {(True, 6): "resnet50", (False, 2): "resnet18"}.get((bottleneck, blocks))
    if arch is None:
        raise ValueError(f"unsupported ResNet depth ({'bottleneck' if bottleneck else 'basic'} "
                         f"blocks, {blocks} in layer3): ResNet-18 and ResNet-50 are supported")
    conv1 = state_dict["conv1.weight"]
    return {"arch": arch, "cifar_stem": conv1.shape[-1] == 3, "width": conv1.shape[0] / 64,
            "in_channels": int(conv1.shape[1])}


def detectron2_settings(backbone: Mapping[str, Any], weights: str) -> dict[str, Any]:
    """The detectron2 config keys that make it read converted torchvision-style weights."""
    depth = {"resnet18": 18, "resnet50": 50}[backbone["arch"]]
    base = max(1, int(round(64 * float(backbone.get("width", 1.0)))))
    return {
        "MODEL": {
            "WEIGHTS": weights,
            "PIXEL_MEAN": list(PIXEL_MEAN),
            "PIXEL_STD": list(PIXEL_STD),
            "RESNETS": {
                "DEPTH": depth,
                "STRIDE_IN_1X1": False,  # torchvision puts the stride in the 3x3 conv
                "STEM_OUT_CHANNELS": base,
                "RES2_OUT_CHANNELS": base * (4 if depth == 50 else 1),
                "WIDTH_PER_GROUP": base,
                "NUM_GROUPS": 1,
                # read by transfer.detection.d2backbone (add_ring_config adds the key)
                "STEM_TYPE": "cifar" if backbone.get("cifar_stem") else "imagenet",
            },
        },
        "INPUT": {"FORMAT": "RGB"},
        "VERSION": 2,
    }


def _warnings(backbone: Mapping[str, Any]) -> list[str]:
    """What keeps the converted weights from a detectron2 model. Any width and either stem
    load through transfer.detection.d2backbone's backbones; a non-RGB encoder does not."""
    notes = []
    if int(backbone.get("in_channels", 3)) != 3:
        notes.append("the encoder does not take 3-channel RGB input")
    return notes


def load_encoder_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The query encoder's state dict and backbone description from a pretraining checkpoint
    (``encoder`` + ``backbone`` keys), or from a bare torchvision ResNet state dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: run the pretraining first")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, Mapping) and "encoder" in state:
        encoder = dict(state["encoder"])
        return encoder, dict(state.get("backbone") or infer_backbone(encoder))
    if isinstance(state, Mapping) and "conv1.weight" in state:
        encoder = dict(state)
        return encoder, infer_backbone(encoder)
    raise ValueError(f"{path} holds neither a ring-repro checkpoint ('encoder' key) nor a "
                     f"torchvision ResNet state dict")


def convert_checkpoint(checkpoint: str | Path, out: str | Path,
                       settings_path: Optional[str | Path] = None) -> dict[str, Any]:
    """Write the detectron2 ``.pkl`` of ``checkpoint``'s query encoder and, beside it (or at
    ``settings_path``), a YAML of the matching config settings. Returns the settings."""
    import yaml

    from repro.io import atomic_write, atomic_write_text

    encoder, backbone = load_encoder_state(checkpoint)
    weights = convert_state_dict(encoder)
    out = Path(out)
    blob = {"model": weights, "__author__": "ring-repro", "matching_heuristics": True}
    atomic_write(out, lambda tmp: tmp.write_bytes(pickle.dumps(blob, protocol=4)))
    settings = detectron2_settings(backbone, str(out.resolve()))
    notes = _warnings(backbone)
    header = (f"# detectron2 settings for {out.name} (converted from {checkpoint} by "
              f"transfer.detection.convert);\n# merge after a config from "
              f"transfer/detection/configs/, into a config that went through\n# "
              f"transfer.detection.d2backbone.add_ring_config (MODEL.RESNETS.STEM_TYPE).\n" + "".join(f"# WARNING: {n}\n" for n in notes))
    atomic_write_text(Path(settings_path) if settings_path else out.with_suffix(".yaml"),
                      header + yaml.safe_dump(settings, sort_keys=False))
    return {**settings, "warnings": notes, "backbone": backbone, "num_tensors": len(weights)}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection.convert",
        description="Convert a pretraining checkpoint's query encoder (torchvision ResNet names) "
                    "to a detectron2 weights .pkl, and write the matching config settings "
                    "(RGB input, torchvision pixel mean/std, STRIDE_IN_1X1 False) as YAML.")
    parser.add_argument("checkpoint", help="checkpoint.pt (or a torchvision ResNet state dict)")
    parser.add_argument("out", help="output .pkl")
    parser.add_argument("--settings", default=None,
                        help="where to write the YAML settings (default: OUT with .yaml)")
    args = parser.parse_args(argv)
    try:
        info = convert_checkpoint(args.checkpoint, args.out, args.settings)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in info["warnings"]:
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote {args.out} ({info['num_tensors']} tensors, {info['backbone']['arch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
