"""Detection data for the torchvision backend: COCO-format annotations read with pycocotools.

Tasks and where their data lives (``--data`` / ``--data-root``)::

    task        model                       coco / generated (COCO 2017 layout)      voc
    voc_det     Faster R-CNN, R50-C4        instances_{train,val}2017.json           VOC07+12 trainval
                                                                                     -> VOC07 test
    coco_mask   Mask R-CNN, R50-FPN         instances_{train,val}2017.json
    coco_kpt    Keypoint R-CNN, R50-FPN     person_keypoints_{train,val}2017.json

``voc`` reads a ``VOCdevkit`` folder (``VOC2007/``, ``VOC2012/``) and converts its XML
annotations to COCO JSON once (``difficult`` objects become ``iscrowd`` ones: ignored in
training and evaluation, as the VOC protocol ignores them).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

__all__ = ["Task", "TASKS", "VOC_CLASSES", "CocoDetection", "voc_to_coco", "task_datasets",
           "collate"]


@dataclass(frozen=True)
class Task:
    """A fine-tuning task: what the model predicts and which annotation file it reads."""

    name: str
    head: str          # "box" | "mask" | "keypoints"
    arch: str          # "c4" | "fpn"
    annotations: str   # "instances" | "person_keypoints"
    iou_types: tuple[str, ...]
    detectron2_config: str
    iterations: int    # the paper schedule at batch 16
    steps: tuple[int, ...]  # its learning-rate drops (x0.1 each)

    @property
    def step_fractions(self) -> tuple[float, ...]:
        """The learning-rate drops as fractions of the schedule (a shorter run keeps them)."""
        return tuple(step / self.iterations for step in self.steps)


TASKS: dict[str, Task] = {
    "voc_det": Task("voc_det", "box", "c4", "instances", ("bbox",), "voc_det_R_50_C4_24k.yaml",
                    24000, (18000, 22000)),
    "coco_mask": Task("coco_mask", "mask", "fpn", "instances", ("bbox", "segm"),
                      "coco_mask_R_50_FPN_1x.yaml", 90000, (60000, 80000)),
    "coco_kpt": Task("coco_kpt", "keypoints", "fpn", "person_keypoints", ("bbox", "keypoints"),
                     "coco_kpt_R_50_FPN_1x.yaml", 90000, (60000, 80000)),
}

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


class CocoDetection(Dataset):
    """Images and torchvision-detection targets from a COCO-format JSON.

    Item ``i``: ``(image (3, H, W) float in [0, 1], target)`` with target ``boxes (N, 4)`` xyxy,
    ``labels (N,)`` in ``[1, C]`` (contiguous, in category-id order), ``image_id``, and, for
    ``head="mask"``, ``masks (N, H, W)`` uint8, for ``head="keypoints"``, ``keypoints (N, K, 3)``.
    Crowd annotations and degenerate boxes are left out; with ``train=True`` images without
    annotations are skipped and box/mask images are flipped horizontally at random.
    """

    def __init__(self, annotation_file: str | Path, image_dir: str | Path, head: str, *,
                 train: bool = False, max_images: Optional[int] = None, seed: int = 0) -> None:
        from pycocotools.coco import COCO

        annotation_file, image_dir = Path(annotation_file), Path(image_dir)
        for path, what in ((annotation_file, "annotation file"), (image_dir, "image folder")):
            if not path.exists():
                raise FileNotFoundError(
                    f"no {what} at {path}: for COCO, download the 2017 images and annotations "
                    f"(cocodataset.org) into --data-root; for the generated dataset run "
                    f"`python -m transfer.detection.synthetic {annotation_file.parent.parent}`")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(str(annotation_file))
        self.annotation_file, self.image_dir, self.head, self.train = (
            annotation_file, image_dir, head, train)
        self.category_ids = sorted(self.coco.getCatIds())
        self.label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        cats = self.coco.loadCats(self.category_ids)
        self.num_keypoints = len(cats[0].get("keypoints", [])) if cats else 0
        ids = sorted(self.coco.getImgIds())
        if train:
            ids = [i for i in ids if self._annotations(i)]
        if max_images is not None:
            ids = ids[:max_images]
        self.ids = ids
        self.rng = np.random.default_rng(seed)

    @property
    def num_classes(self) -> int:
        """Foreground classes (the models add background)."""
        return len(self.category_ids)

    def _annotations(self, image_id: int) -> list[dict[str, Any]]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False))
        keep = [a for a in anns if a["bbox"][2] >= 1 and a["bbox"][3] >= 1]
        if self.head == "keypoints":
            keep = [a for a in keep if a.get("num_keypoints", 0) > 0]
        return keep

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        image_id = self.ids[index]
        info = self.coco.loadImgs(image_id)[0]
        image = Image.open(self.image_dir / info["file_name"]).convert("RGB")
        anns = self._annotations(image_id)
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in anns],
                             dtype=torch.float32).reshape(-1, 4)
        target: dict[str, Tensor] = {
            "boxes": boxes,
            "labels": torch.tensor([self.label_of[a["category_id"]] for a in anns],
                                   dtype=torch.int64),
            "image_id": torch.tensor(image_id),
        }
        if self.head == "mask":
            masks = [self.coco.annToMask(a) for a in anns]
            target["masks"] = torch.from_numpy(
                np.stack(masks) if masks else np.zeros((0, info["height"], info["width"]),
                                                        dtype=np.uint8))
        if self.head == "keypoints":
            target["keypoints"] = torch.tensor([a["keypoints"] for a in anns],
                                               dtype=torch.float32).reshape(
                len(anns), self.num_keypoints, 3)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        if self.train and self.head != "keypoints" and self.rng.random() < 0.5:
            x, target = _hflip(x, target)
        return x.contiguous(), target


def _hflip(x: Tensor, target: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    width = x.shape[-1]
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return x.flip(-1), target


def collate(batch: list) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    images, targets = zip(*batch)
    return list(images), list(targets)


def voc_to_coco(voc_root: str | Path, year: str, image_set: str) -> dict[str, Any]:
    """COCO-format dict of ``VOCdevkit/VOC{year}/ImageSets/Main/{image_set}.txt``.

    Boxes become 0-based ``[x, y, w, h]``; ``difficult`` objects are marked ``iscrowd``.
    """
    base = Path(voc_root) / f"VOC{year}"
    listing = base / "ImageSets" / "Main" / f"{image_set}.txt"
    if not listing.exists():
        raise FileNotFoundError(
            f"no VOC image set at {listing}: put the PASCAL VOC {year} devkit under {voc_root} "
            f"(VOCdevkit/VOC{year}/{{Annotations,ImageSets,JPEGImages}}, from "
            f"host.robots.ox.ac.uk/pascal/VOC)")
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(VOC_CLASSES)]
    images, annotations = [], []
    for number, stem in enumerate(listing.read_text().split(), start=1):
        root = ET.parse(base / "Annotations" / f"{stem}.xml").getroot()
        size = root.find("size")
        image_id = int(year) * 1_000_000 + number
        images.append({"id": image_id, "file_name": f"VOC{year}/JPEGImages/{stem}.jpg",
                       "width": int(size.findtext("width")),
                       "height": int(size.findtext("height"))})
        for obj in root.findall("object"):
            box = obj.find("bndbox")
            x0, y0, x1, y1 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            x0, y0 = x0 - 1, y0 - 1  # VOC pixel indices are 1-based
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": VOC_CLASSES.index(obj.findtext("name").strip()) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                "iscrowd": int(obj.findtext("difficult", "0").strip() == "1"),
                "segmentation": []})
    return {"images": images, "annotations": annotations, "categories": categories}


def _voc_json(voc_root: Path, year: str, image_set: str, cache: Path) -> Path:
    path = cache / f"voc_{year}_{image_set}.json"
    if not path.exists():
        from repro.io import atomic_write_text

        atomic_write_text(path, json.dumps(voc_to_coco(voc_root, year, image_set)))
    return path


def task_datasets(task: Task, data: str, root: str | Path, *, cache: Optional[Path] = None,
                  max_train_images: Optional[int] = None, max_test_images: Optional[int] = None,
                  seed: int = 0) -> tuple[Dataset, CocoDetection]:
    """``(train dataset, test dataset)`` of a task on ``data`` (``generated`` | ``coco`` |
    ``voc``) under ``root``. ``cache`` holds the converted VOC JSONs (default ``root``)."""
    root = Path(root)
    if data in ("generated", "coco"):
        def split(name: str, train: bool, cap: Optional[int]) -> CocoDetection:
            return CocoDetection(root / "annotations" / f"{task.annotations}_{name}.json",
                                 root / name, task.head, train=train, max_images=cap, seed=seed)

        return split("train2017", True, max_train_images), split("val2017", False,
                                                                  max_test_images)
    if data == "voc":
        if task.head != "box":
            raise ValueError(f"VOC has boxes only; task {task.name} needs {task.head}")
        cache = Path(cache or root)
        parts = [CocoDetection(_voc_json(root, year, "trainval", cache), root, "box",
                               train=True, max_images=max_train_images, seed=seed)
                 for year in ("2007", "2012") if (root / f"VOC{year}").exists()]
        if not parts:
            raise FileNotFoundError(f"no VOC2007/ or VOC2012/ under {root}: pass the VOCdevkit "
                                    f"folder as --data-root")
        train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        train.num_classes = parts[0].num_classes  # type: ignore[attr-defined]
        test = CocoDetection(_voc_json(root, "2007", "test", cache), root, "box",
                             max_images=max_test_images)
        return train, test
    raise ValueError(f"unknown detection data {data!r}; one of generated, coco, voc")
