"""Detection transfer: checkpoint -> detectron2 conversion, shipped configs, the generated COCO
dataset, COCO-style AP, and the torchvision fine-tuning backend end to end (CPU, tiny)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
import torch
import torchvision
import yaml

from transfer.detection.convert import (PIXEL_MEAN, PIXEL_STD, convert_state_dict,
                                        detectron2_to_torchvision_name, infer_backbone,
                                        main as convert_main, torchvision_to_detectron2_name)
from transfer.detection.train import (CONFIG_DIR, default_warmup, learning_rate, lr_steps,
                                      main as train_main, pick_backend)


def _checkpoint(path: Path, backbone: dict) -> Path:
    from repro.models.backbones import build_backbone

    torch.manual_seed(0)
    encoder = build_backbone(**backbone)
    config = {"model": "moco", "sampler_label": "ring", "sampler": {"name": "ring", "w_l": 0.9},
              "dataset": "shapes", "seed": 0, "scale": "default"}
    torch.save({"encoder": encoder.state_dict(), "backbone": backbone, "model": {},
                "config": config, "epoch": 1}, path)
    return path


TINY = {"arch": "resnet18", "cifar_stem": True, "width": 0.125, "in_channels": 3}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from transfer.detection.synthetic import make_shapes_coco

    return make_shapes_coco(tmp_path_factory.mktemp("shapes"), num_train=8, num_val=4,
                            image_size=64, seed=1)


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def test_resnet50_conversion_maps_every_key_keeps_shapes_and_drops_fc():
    state = torchvision.models.resnet50(weights=None).state_dict()
    converted = convert_state_dict(state)
    backbone_keys = [k for k in state if not k.startswith("fc.")
                     and not k.endswith("num_batches_tracked")]
    assert len(converted) == len(backbone_keys) == 265
    assert not any("fc" in k for k in converted)
    for key in backbone_keys:
        new = torchvision_to_detectron2_name(key)
        assert converted[new].shape == tuple(state[key].shape)
        np.testing.assert_array_equal(converted[new], state[key].numpy())
        assert detectron2_to_torchvision_name(new) == key  # round trip
    for name in ("stem.conv1.weight", "stem.conv1.norm.running_var", "res2.0.conv3.norm.bias",
                 "res2.0.shortcut.weight", "res2.0.shortcut.norm.weight", "res5.2.conv2.weight"):
        assert name in converted
    assert infer_backbone(state) == {"arch": "resnet50", "cifar_stem": False, "width": 1.0,
                                     "in_channels": 3}


def test_conversion_refuses_a_key_that_is_not_a_resnet_backbone_key():
    with pytest.raises(KeyError, match="not a torchvision ResNet backbone key"):
        torchvision_to_detectron2_name("head.0.weight")
    assert torchvision_to_detectron2_name("fc.weight") is None
    assert torchvision_to_detectron2_name("layer1.0.bn1.num_batches_tracked") is None


def test_convert_cli_writes_detectron2_pickle_and_matching_settings(tmp_path, capsys):
    backbone = {"arch": "resnet50", "cifar_stem": False, "width": 0.25, "in_channels": 3}
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", backbone)
    out = tmp_path / "model.pkl"
    assert convert_main([str(ckpt), str(out)]) == 0
    blob = pickle.loads(out.read_bytes())
    assert blob["__author__"] == "ring-repro" and blob["matching_heuristics"] is True
    encoder = torch.load(ckpt, weights_only=False)["encoder"]
    assert blob["model"]["res4.5.conv3.weight"].shape == tuple(encoder["layer3.5.conv3.weight"].shape)
    assert all(isinstance(v, np.ndarray) for v in blob["model"].values())
    settings = yaml.safe_load((tmp_path / "model.yaml").read_text())
    assert settings["INPUT"]["FORMAT"] == "RGB"
    assert settings["MODEL"]["PIXEL_MEAN"] == [123.675, 116.28, 103.53]
    assert settings["MODEL"]["PIXEL_STD"] == [58.395, 57.12, 57.375]
    resnets = settings["MODEL"]["RESNETS"]
    assert resnets["STRIDE_IN_1X1"] is False and resnets["DEPTH"] == 50
    assert resnets["RES2_OUT_CHANNELS"] == 64 and resnets["STEM_OUT_CHANNELS"] == 16
    assert settings["MODEL"]["WEIGHTS"] == str(out.resolve())


def test_converting_a_narrow_cifar_stem_resnet18_names_its_stem_and_width_without_warning(
        tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", TINY)
    assert convert_main([str(ckpt), str(tmp_path / "m.pkl")]) == 0
    assert "warning" not in capsys.readouterr().err
    settings = yaml.safe_load((tmp_path / "m.yaml").read_text())
    resnets = settings["MODEL"]["RESNETS"]
    assert resnets["STEM_TYPE"] == "cifar" and resnets["DEPTH"] == 18
    assert resnets["STEM_OUT_CHANNELS"] == 8 and resnets["RES2_OUT_CHANNELS"] == 8
    assert convert_main([str(tmp_path / "missing.pt"), str(tmp_path / "x.pkl")]) == 2


def test_converting_a_one_channel_encoder_warns_that_it_takes_no_rgb(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", {**TINY, "in_channels": 1})
    assert convert_main([str(ckpt), str(tmp_path / "m.pkl")]) == 0
    assert "3-channel RGB" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["voc_det_R_50_C4_24k.yaml", "coco_mask_R_50_FPN_1x.yaml",
                                  "coco_kpt_R_50_FPN_1x.yaml"])
def test_shipped_configs_resolve_their_base_and_match_the_conversion(name):
    config = yaml.safe_load((CONFIG_DIR / name).read_text())
    base = yaml.safe_load((CONFIG_DIR / config["_BASE_"]).read_text())
    model = base["MODEL"]
    assert model["PIXEL_MEAN"] == PIXEL_MEAN and model["PIXEL_STD"] == PIXEL_STD
    assert base["INPUT"]["FORMAT"] == "RGB"
    assert model["RESNETS"]["STRIDE_IN_1X1"] is False
    assert model["BACKBONE"]["FREEZE_AT"] == 0
    assert model["BACKBONE"]["NAME"] == ("build_ring_resnet_backbone" if "C4" in name
                                         else "build_ring_resnet_fpn_backbone")
    assert model["RESNETS"]["NORM"] in ("SyncBN", "naiveSyncBN")
    if "C4" in name:  # MoCo's C4 recipe: naiveSyncBN and a norm after the res5 head
        assert model["RESNETS"]["NORM"] == "naiveSyncBN"
        assert model["ROI_HEADS"]["NAME"] == "Res5ROIHeadsExtraNorm"
    assert config["DATASETS"]["TRAIN"] and config["SOLVER"]["MAX_ITER"] > 0


# ---------------------------------------------------------------------------------------------
# Data and evaluation
# ---------------------------------------------------------------------------------------------


def test_generated_dataset_is_valid_coco_with_masks_and_keypoints_inside_boxes(shapes):
    from pycocotools.coco import COCO

    instances = COCO(str(shapes / "annotations" / "instances_train2017.json"))
    assert len(instances.getImgIds()) == 8 and len(instances.getCatIds()) == 3
    for ann in instances.loadAnns(instances.getAnnIds()):
        mask = instances.annToMask(ann)
        assert abs(mask.sum() - ann["area"]) <= 0.2 * ann["area"]  # polygon vs raster
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1
    keypoints = COCO(str(shapes / "annotations" / "person_keypoints_val2017.json"))
    for ann in keypoints.loadAnns(keypoints.getAnnIds()):
        k = np.array(ann["keypoints"]).reshape(5, 3)
        visible = k[k[:, 2] > 0]
        x, y, w, h = ann["bbox"]
        assert ann["num_keypoints"] == len(visible) >= 4
        assert (visible[:, 0] >= x - 1).all() and (visible[:, 0] <= x + w + 1).all()
        assert (visible[:, 1] >= y - 1).all() and (visible[:, 1] <= y + h + 1).all()


def test_generated_dataset_is_deterministic_per_seed(tmp_path):
    from transfer.detection.synthetic import make_shapes_coco

    a = make_shapes_coco(tmp_path / "a", num_train=2, num_val=1, image_size=48, seed=3)
    b = make_shapes_coco(tmp_path / "b", num_train=2, num_val=1, image_size=48, seed=3)
    for rel in ("annotations/instances_train2017.json", "train2017/000000000002.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


@pytest.mark.parametrize("head,annotations,iou_types", [
    ("mask", "instances", ("bbox", "segm")),
    ("keypoints", "person_keypoints", ("bbox", "keypoints")),
])
def test_ground_truth_as_predictions_scores_100_ap(shapes, head, annotations, iou_types):
    from transfer.detection.coco_eval import coco_ap, to_coco_results
    from transfer.detection.data import CocoDetection

    dataset = CocoDetection(shapes / "annotations" / f"{annotations}_val2017.json",
                            shapes / "val2017", head)
    outputs, ids = [], []
    for i in range(len(dataset)):
        _, target = dataset[i]
        out = {"boxes": target["boxes"], "labels": target["labels"],
               "scores": torch.ones(len(target["labels"]))}
        if head == "mask":
            out["masks"] = target["masks"][:, None].float()
        else:
            out["keypoints"] = target["keypoints"]
        outputs.append(out)
        ids.append(int(target["image_id"]))
    results = to_coco_results(outputs, ids, dataset.category_ids, iou_types)
    for iou_type in iou_types:
        ap = coco_ap(dataset.coco, results[iou_type], iou_type, ids)
        assert ap["AP"] == pytest.approx(100.0) and ap["AP50"] == pytest.approx(100.0)
    assert coco_ap(dataset.coco, [], "bbox", ids) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_training_flip_moves_boxes_and_masks_together(shapes):
    from transfer.detection.data import CocoDetection, _hflip

    dataset = CocoDetection(shapes / "annotations" / "instances_train2017.json",
                            shapes / "train2017", "mask")
    x, target = dataset[0]
    fx, ft = _hflip(x, target)
    for box, mask in zip(ft["boxes"], ft["masks"]):
        ys, xs = np.nonzero(mask.numpy())
        assert abs(xs.min() - box[0].item()) <= 1 and abs(xs.max() + 1 - box[2].item()) <= 1
    assert torch.equal(fx.flip(-1), x)


def test_generated_voc_devkit_reads_back_as_the_same_shapes_as_the_coco_dataset(tmp_path):
    from pycocotools.coco import COCO

    from transfer.detection.data import VOC_CLASSES, voc_to_coco
    from transfer.detection.synthetic import VOC_NAMES, make_shapes_coco, make_shapes_voc

    coco_root = make_shapes_coco(tmp_path / "coco", num_train=6, num_val=3, image_size=64)
    voc_root = make_shapes_voc(tmp_path / "VOCdevkit", num_train=6, num_test=3, image_size=64)
    read = {(y, s): voc_to_coco(voc_root, y, s)
            for y, s in (("2007", "trainval"), ("2012", "trainval"), ("2007", "test"))}
    assert [len(c["images"]) for c in read.values()] == [3, 3, 3]
    for (year, split), voc in read.items():
        for image in voc["images"]:
            assert (voc_root / image["file_name"]).exists()
            assert Image.open(voc_root / image["file_name"]).format == "JPEG"
    coco = COCO(str(coco_root / "annotations" / "instances_val2017.json"))
    names = {c["id"]: VOC_NAMES[c["name"]] for c in coco.loadCats(coco.getCatIds())}
    expected = sorted((names[a["category_id"]], tuple(a["bbox"]))
                      for a in coco.loadAnns(coco.getAnnIds()))
    test = read[("2007", "test")]
    got = sorted((VOC_CLASSES[a["category_id"] - 1], tuple(a["bbox"]))
                 for a in test["annotations"])
    assert got == expected and not any(a["iscrowd"] for a in test["annotations"])


def test_voc_xml_becomes_coco_with_zero_based_boxes_and_difficult_as_crowd(tmp_path):
    from transfer.detection.data import voc_to_coco

    base = tmp_path / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    (base / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    (base / "Annotations" / "000001.xml").write_text(
        "<annotation><size><width>50</width><height>40</height></size>"
        "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>11</ymin>"
        "<xmax>21</xmax><ymax>31</ymax></bndbox></object>"
        "<object><name>cat</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>5</ymin>"
        "<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    coco = voc_to_coco(tmp_path, "2007", "test")
    dog, cat = coco["annotations"]
    assert dog["bbox"] == [0.0, 10.0, 21.0, 21.0] and dog["iscrowd"] == 0
    assert cat["iscrowd"] == 1 and len(coco["categories"]) == 20
    assert coco["images"][0]["file_name"] == "VOC2007/JPEGImages/000001.jpg"
    with pytest.raises(FileNotFoundError, match="VOC2012"):
        voc_to_coco(tmp_path, "2012", "trainval")


# ---------------------------------------------------------------------------------------------
# Models and training
# ---------------------------------------------------------------------------------------------


def test_learning_rate_warms_up_then_steps_down_tenfold():
    assert learning_rate(0, 0.02, 100, 10) == pytest.approx(0.02 * 0.001)
    assert learning_rate(10, 0.02, 100, 10) == pytest.approx(0.02)
    assert learning_rate(75, 0.02, 100, 10) == pytest.approx(0.002)
    assert learning_rate(99, 0.02, 100, 10) == pytest.approx(0.0002)


def test_lr_steps_keep_each_tasks_paper_schedule_and_stay_distinct_inside_short_runs():
    from transfer.detection.data import TASKS

    voc, coco = TASKS["voc_det"], TASKS["coco_mask"]
    assert lr_steps(24000, voc.step_fractions) == (18000, 22000)
    assert lr_steps(90000, coco.step_fractions) == (60000, 80000)
    assert lr_steps(100, coco.step_fractions) == (66, 88)
    assert learning_rate(66, 0.02, 100, 1, coco.step_fractions) == pytest.approx(0.002)
    assert learning_rate(65, 0.02, 100, 1, coco.step_fractions) == pytest.approx(0.02)
    # 4 iterations: both VOC drops land on iteration 3; detectron2 refuses repeated milestones
    assert lr_steps(4, voc.step_fractions) == (3,)
    assert learning_rate(3, 0.02, 4, 1) == pytest.approx(0.002)
    assert lr_steps(1, voc.step_fractions) == ()
    assert [default_warmup(n) for n in (1, 20, 500, 24000)] == [1, 2, 50, 100]


def test_detector_backbone_holds_the_pretrained_weights_and_can_freeze_bn():
    from repro.models.backbones import build_backbone
    from transfer.detection.models import build_detector

    torch.manual_seed(0)
    encoder = build_backbone(**TINY).state_dict()
    model = build_detector("mask", "fpn", encoder, TINY, 3, min_size=64, max_size=64,
                           fpn_channels=16, head_width=16)
    assert torch.equal(model.backbone.body.stem[0].weight, encoder["conv1.weight"])
    assert torch.equal(model.backbone.body.layers[3][1].conv2.weight,
                       encoder["layer4.1.conv2.weight"])
    frozen = build_detector("box", "c4", encoder, TINY, 3, min_size=64, max_size=64, norm="frozen")
    norms = [m for m in frozen.backbone.modules()
             if isinstance(m, (torch.nn.BatchNorm2d, torchvision.ops.FrozenBatchNorm2d))]
    assert norms and all(isinstance(m, torchvision.ops.FrozenBatchNorm2d) for m in norms)
    with pytest.raises(ValueError, match="box detection only"):
        build_detector("mask", "c4", encoder, TINY, 3)


@pytest.mark.parametrize("task,iou_types", [
    ("voc_det", ("bbox",)),
    ("coco_mask", ("bbox", "segm")),
    ("coco_kpt", ("bbox", "keypoints")),
])
def test_torchvision_backend_fine_tunes_and_writes_a_detection_record(tmp_path, shapes, task,
                                                                      iou_types):
    from repro.results import read_record

    ckpt = _checkpoint(tmp_path / "checkpoint.pt", TINY)
    out = tmp_path / task / "result.json"
    assert train_main(["--checkpoint", str(ckpt), "--task", task, "--data", "generated",
                       "--data-root", str(shapes), "--backend", "torchvision",
                       "--iterations", "2", "--min-size", "64", "--max-size", "64",
                       "--fpn-channels", "16", "--head-width", "16", "--out", str(out),
                       "--no-progress"]) == 0
    record = read_record(out)
    assert record["stage"] == "detection" and record["extra"]["backend"] == "torchvision"
    assert record["extra"]["task"] == task and record["eval_dataset"] == "shapes_coco"
    expected = {f"{t}_{m}" for t in iou_types for m in ("AP", "AP50", "AP75")}
    assert set(record["metrics"]) == expected
    assert all(0.0 <= v <= 100.0 for v in record["metrics"].values())
    for t in iou_types:  # COCO AP averages AP over IoU 0.5..0.95: never above AP at 0.5
        m = record["metrics"]
        assert m[f"{t}_AP"] <= m[f"{t}_AP50"] and m[f"{t}_AP75"] <= m[f"{t}_AP50"]
    assert "pycocotools" in record["protocol"] and task in record["protocol"]
    assert (out.parent / "log.csv").exists()


def test_torchvision_backend_fine_tunes_on_a_voc_devkit(tmp_path):
    from repro.results import read_record
    from transfer.detection.synthetic import make_shapes_voc

    voc = make_shapes_voc(tmp_path / "VOCdevkit", num_train=4, num_test=2, image_size=64)
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", TINY)
    out = tmp_path / "voc" / "result.json"
    assert train_main(["--checkpoint", str(ckpt), "--task", "voc_det", "--data", "voc",
                       "--data-root", str(voc), "--backend", "torchvision", "--iterations", "2",
                       "--min-size", "64", "--max-size", "64", "--head-width", "16",
                       "--out", str(out), "--no-progress"]) == 0
    record = read_record(out)
    assert record["eval_dataset"] == "voc2007_test" and record["extra"]["test_images"] == 2
    assert record["extra"]["train_images"] == 4  # VOC07 trainval + VOC12 trainval
    assert set(record["metrics"]) == {"bbox_AP", "bbox_AP50", "bbox_AP75"}


# detectron2 (make install puts it in the venv: transfer.detection.install_detectron2) runs end to
# end on the generated data: a ResNet-50 at width 1/4 with the ImageNet stem, and the default's
# ResNet-18 at width 1/8 with the CIFAR stem (transfer.detection.d2backbone), 2 iterations at
# learning rate 0, 64-pixel images, every box scored (SCORE_THRESH_TEST 0) so that the evaluation
# sees predictions.
D2_TINY_OPTS = ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64",
                "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64",
                "TEST.PRECISE_BN.NUM_ITER", "1", "DATALOADER.NUM_WORKERS", "0",
                "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "SOLVER.BASE_LR", "0.0"]
R50_QUARTER = {"arch": "resnet50", "cifar_stem": False, "width": 0.25, "in_channels": 3}


@pytest.mark.slow
@pytest.mark.parametrize("task,data,iou_types,backbone", [
    ("voc_det", "generated", ("bbox",), R50_QUARTER),
    ("voc_det", "voc", ("bbox",), R50_QUARTER),
    ("coco_mask", "generated", ("bbox", "segm"), R50_QUARTER),
    ("coco_kpt", "generated", ("bbox", "keypoints"), R50_QUARTER),
    ("voc_det", "generated", ("bbox",), TINY),
    ("coco_mask", "generated", ("bbox", "segm"), TINY),
], ids=["voc_det-generated-r50", "voc_det-voc-r50", "coco_mask-generated-r50",
        "coco_kpt-generated-r50", "voc_det-generated-r18cifar", "coco_mask-generated-r18cifar"])
def test_detectron2_backend_fine_tunes_loads_every_backbone_weight_and_scores(
        tmp_path, shapes, task, data, iou_types, backbone):
    pytest.importorskip("detectron2", reason="detectron2 is not installed (make install)")
    from repro.results import read_record
    from transfer.detection.synthetic import make_shapes_voc

    root = make_shapes_voc(tmp_path / "VOCdevkit", num_train=4, num_test=2,
                           image_size=64) if data == "voc" else shapes
    ckpt = _checkpoint(tmp_path / "checkpoint.pt", backbone)
    out = tmp_path / task / "result.json"
    assert train_main(["--checkpoint", str(ckpt), "--task", task, "--data", data,
                       "--data-root", str(root), "--backend", "detectron2",
                       "--iterations", "2", "--batch-size", "2", "--out", str(out),
                       "--no-progress", "--opts", *D2_TINY_OPTS]) == 0
    record = read_record(out)
    assert record["extra"]["backend"] == "detectron2" and record["extra"]["device"] == "cpu"
    expected = {f"{t}_{m}" for t in iou_types for m in ("AP", "AP50", "AP75")}
    assert set(record["metrics"]) == expected
    assert all(0.0 <= v <= 100.0 for v in record["metrics"].values())
    # with the learning rate at 0 the trained detector still holds every converted weight
    converted = pickle.loads((out.parent / "backbone_d2.pkl").read_bytes())["model"]
    final = torch.load(out.parent / "detectron2" / "model_final.pth", map_location="cpu",
                       weights_only=False)["model"]
    for name, value in converted.items():
        if name.endswith(("running_mean", "running_var")):
            continue  # BN statistics move in training mode whatever the learning rate
        matches = [k for k in final if k.endswith("." + name)]
        assert len(matches) == 1, name
        assert np.array_equal(final[matches[0]].numpy(), value), name
    backbone_keys = [k for k in final if k.startswith("backbone.") and ".fpn_" not in k
                     and not k.endswith("num_batches_tracked")]
    assert backbone_keys and all(any(k.endswith("." + name) for name in converted)
                                 for k in backbone_keys)  # no backbone tensor left random


def test_detectron2_size_options_scale_anchors_and_heads_like_the_torchvision_backend():
    from transfer.detection.train import detectron2_size_options

    fpn = detectron2_size_options("fpn", min_size=96, max_size=128, fpn_channels=64,
                                  head_width=16)
    pairs = dict(zip(fpn[::2], fpn[1::2]))
    assert pairs["INPUT.MIN_SIZE_TRAIN"] == "(96,)" and pairs["INPUT.MAX_SIZE_TEST"] == "128"
    assert pairs["MODEL.ANCHOR_GENERATOR.SIZES"] == "[[8], [16], [32], [64], [128]]"
    assert pairs["MODEL.FPN.OUT_CHANNELS"] == "64" and pairs["MODEL.ROI_BOX_HEAD.FC_DIM"] == "64"
    assert pairs["MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS"] == "(16, 16, 16, 16)"
    c4 = dict(zip(*[iter(detectron2_size_options("c4", min_size=800, fpn_channels=64))] * 2))
    assert c4["MODEL.ANCHOR_GENERATOR.SIZES"] == "[[32, 64, 128, 256, 512]]"
    assert "MODEL.FPN.OUT_CHANNELS" not in c4
    assert detectron2_size_options("fpn") == []


def test_default_config_detection_runs_on_detectron2_where_installed():
    from transfer.detection.train import detectron2_available

    default = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "default.yaml")
                             .read_text())
    assert default["detection"]["backend"] == "auto"
    assert pick_backend("auto") == ("detectron2" if detectron2_available() else "torchvision")


def test_detectron2_backend_without_detectron2_is_a_clear_error():
    from transfer.detection.train import detectron2_available

    if detectron2_available():
        pytest.skip("detectron2 is installed here")
    with pytest.raises(ImportError, match="make install"):
        pick_backend("detectron2")
    assert pick_backend("auto") == "torchvision"
