"""A small generated COCO-format dataset: squares, triangles and circles with boxes, masks and
keypoints, for tests and the offline default workflow; the same shapes as a PASCAL VOC devkit
(boxes only) for the VOC reading path.

    python -m transfer.detection.synthetic results/detection/data/shapes_coco --train 48 --val 16
    python -m transfer.detection.synthetic /tmp/VOCdevkit --format voc

Layout (the COCO 2017 one, so the same reader serves both)::

    ROOT/train2017/000000000001.png ...          ROOT/val2017/...
    ROOT/annotations/instances_{train,val}2017.json         3 categories, box + mask
    ROOT/annotations/person_keypoints_{train,val}2017.json  1 category "shape", 5 keypoints

Every image holds 1-3 objects, each in its own cell of a 2x2 grid (no occlusion). Masks are
polygons (squares, triangles) or compressed RLE (circles). Keypoints: the 4 corners of a square,
the 4 extreme points of a circle, the 3 vertices of a triangle (4th: not labelled, v=0), and the
centre, all visible (v=2) otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CATEGORIES", "KEYPOINT_NAMES", "SPLITS", "VOC_NAMES", "make_shapes_coco",
           "make_shapes_voc", "main"]

CATEGORIES = [{"id": 1, "name": "square", "supercategory": "shape"},
              {"id": 2, "name": "triangle", "supercategory": "shape"},
              {"id": 3, "name": "circle", "supercategory": "shape"}]
KEYPOINT_NAMES = ["point_1", "point_2", "point_3", "point_4", "centre"]
KEYPOINT_CATEGORY = {"id": 1, "name": "shape", "supercategory": "shape",
                     "keypoints": KEYPOINT_NAMES, "skeleton": [[1, 2], [2, 3], [3, 4], [4, 1]]}
SPLITS = ("train2017", "val2017")
# The VOC class each shape stands in for in make_shapes_voc (VOC XML names must be VOC's own).
VOC_NAMES = {"square": "aeroplane", "triangle": "bicycle", "circle": "bird"}


def _shape(kind: str, x0: float, y0: float, s: float) -> dict[str, Any]:
    """Outline (polygon or circle) and 5 keypoints ``(5, 3)`` of a shape in the box
    ``[x0, x0 + s] x [y0, y0 + s]``."""
    cx, cy = x0 + s / 2, y0 + s / 2
    if kind == "square":
        poly = [(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s)]
        kpts = [(*p, 2) for p in poly] + [(cx, cy, 2)]
    elif kind == "triangle":
        poly = [(cx, y0), (x0 + s, y0 + s), (x0, y0 + s)]
        centroid = (sum(p[0] for p in poly) / 3, sum(p[1] for p in poly) / 3)
        kpts = [(*p, 2) for p in poly] + [(0, 0, 0), (*centroid, 2)]
    else:
        poly = None
        kpts = [(cx, y0, 2), (x0 + s, cy, 2), (cx, y0 + s, 2), (x0, cy, 2), (cx, cy, 2)]
    return {"polygon": poly, "keypoints": np.array(kpts, dtype=np.float64)}


def _draw(draw: ImageDraw.ImageDraw, kind: str, shape: dict[str, Any], box: tuple,
          fill: Any) -> None:
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    else:
        draw.polygon(shape["polygon"], fill=fill)


def _split(split: str, num_images: int, image_size: int, rng: np.random.Generator,
           root: Path, first_id: int) -> tuple[dict, dict]:
    from pycocotools import mask as mask_utils

    (root / split).mkdir(parents=True, exist_ok=True)
    images, instances, keypoints = [], [], []
    cell = image_size / 2
    ann_id = first_id * 10
    for i in range(num_images):
        image_id = first_id + i
        noise = rng.integers(0, 40, size=(image_size, image_size, 3))
        background = (rng.integers(0, 100, size=3) + noise).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(background)
        draw = ImageDraw.Draw(image)
        cells = rng.permutation(4)[:rng.integers(1, 4)]
        for c in cells:
            kind = CATEGORIES[int(rng.integers(0, 3))]["name"]
            s = float(rng.uniform(0.45, 0.9) * cell)
            x0 = float((c % 2) * cell + rng.uniform(0, cell - s))
            y0 = float((c // 2) * cell + rng.uniform(0, cell - s))
            box = (x0, y0, x0 + s, y0 + s)
            shape = _shape(kind, x0, y0, s)
            _draw(draw, kind, shape, box, tuple(int(v) for v in rng.integers(130, 256, size=3)))
            silhouette = Image.new("L", (image_size, image_size), 0)
            _draw(ImageDraw.Draw(silhouette), kind, shape, box, 1)
            binary = np.asfortranarray(np.asarray(silhouette, dtype=np.uint8))
            ys, xs = np.nonzero(binary)
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                    float(ys.max() - ys.min() + 1)]
            if kind == "circle":
                rle = mask_utils.encode(binary)
                segmentation: Any = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            else:
                segmentation = [[round(v, 2) for p in shape["polygon"] for v in p]]
            kpts = shape["keypoints"]
            ann_id += 1
            common = {"id": ann_id, "image_id": image_id, "bbox": bbox,
                      "area": float(binary.sum()), "iscrowd": 0, "segmentation": segmentation}
            category = next(c["id"] for c in CATEGORIES if c["name"] == kind)
            instances.append({**common, "category_id": category})
            keypoints.append({**common, "category_id": 1,
                              "keypoints": [round(float(v), 2) for v in kpts.reshape(-1)],
                              "num_keypoints": int((kpts[:, 2] > 0).sum())})
        name = f"{image_id:012d}.png"
        image.save(root / split / name)
        images.append({"id": image_id, "file_name": name, "width": image_size,
                       "height": image_size})
    info = {"description": "ring-repro generated shapes (transfer.detection.synthetic)",
            "version": "1.0"}
    return ({"info": info, "licenses": [], "images": images, "annotations": instances,
             "categories": CATEGORIES},
            {"info": info, "licenses": [], "images": images, "annotations": keypoints,
             "categories": [KEYPOINT_CATEGORY]})


def _check_sizes(num_train: int, min_train: int, num_val: int, image_size: int) -> None:
    if num_train < min_train or num_val < 1:
        raise ValueError(f"need at least {min_train} train image(s) and one val / test image")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")


def make_shapes_coco(root: str | Path, *, num_train: int = 48, num_val: int = 16,
                     image_size: int = 96, seed: int = 0) -> Path:
    """Write the dataset under ``root`` (see the module docstring); returns ``root``.

    Deterministic for a given ``seed``. Existing files are overwritten.
    """
    from repro.io import atomic_write_json

    _check_sizes(num_train, 1, num_val, image_size)
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n, first in (("train2017", num_train, 1), ("val2017", num_val, 1 + num_train)):
        instances, keypoints = _split(split, n, image_size, rng, root, first)
        atomic_write_json(root / "annotations" / f"instances_{split}.json", instances)
        atomic_write_json(root / "annotations" / f"person_keypoints_{split}.json", keypoints)
    return root


def make_shapes_voc(root: str | Path, *, num_train: int = 48, num_test: int = 16,
                    image_size: int = 96, seed: int = 0) -> Path:
    """Write the shapes as a PASCAL VOC devkit under ``root``; returns ``root``.

    Layout: ``VOC2007/`` and ``VOC2012/``, each with ``JPEGImages/*.jpg``, ``Annotations/*.xml``
    (VOC's fields: 1-based inclusive pixel boxes, ``pose``, ``truncated``, ``difficult``) and
    ``ImageSets/Main/``: the train images split between ``VOC2007`` and ``VOC2012``
    ``trainval.txt``, the test images in ``VOC2007/ImageSets/Main/test.txt`` (the files of the
    VOC07+12 -> VOC07 protocol). Shapes are named by the VOC classes of :data:`VOC_NAMES`.
    Deterministic for a given ``seed``.
    """
    import tempfile
    import xml.etree.ElementTree as ET

    _check_sizes(num_train, 2, num_test, image_size)  # one train image per VOC year at least
    root = Path(root)
    names = {c["id"]: VOC_NAMES[c["name"]] for c in CATEGORIES}
    listings: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(seed)
        splits = (("train", num_train, 1), ("test", num_test, 1 + num_train))
        for role, n, first in splits:
            coco, _ = _split(role, n, image_size, rng, Path(tmp), first)
            objects: dict[int, list[dict]] = {}
            for ann in coco["annotations"]:
                objects.setdefault(ann["image_id"], []).append(ann)
            for number, image in enumerate(coco["images"]):
                year = "2007" if role == "test" or number % 2 == 0 else "2012"
                stem = f"{image['id']:06d}"
                base = root / f"VOC{year}"
                for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
                    (base / sub).mkdir(parents=True, exist_ok=True)
                Image.open(Path(tmp) / role / image["file_name"]).convert("RGB").save(
                    base / "JPEGImages" / f"{stem}.jpg", quality=95)
                xml = ET.Element("annotation")
                ET.SubElement(xml, "filename").text = f"{stem}.jpg"
                size = ET.SubElement(xml, "size")
                for key, value in (("width", image["width"]), ("height", image["height"]),
                                   ("depth", 3)):
                    ET.SubElement(size, key).text = str(value)
                for ann in objects.get(image["id"], []):
                    obj = ET.SubElement(xml, "object")
                    for key, value in (("name", names[ann["category_id"]]),
                                       ("pose", "Unspecified"), ("truncated", "0"),
                                       ("difficult", "0")):
                        ET.SubElement(obj, key).text = value
                    x, y, w, h = ann["bbox"]
                    box = ET.SubElement(obj, "bndbox")
                    for key, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w),
                                       ("ymax", y + h)):
                        ET.SubElement(box, key).text = str(int(round(value)))
                ET.ElementTree(xml).write(base / "Annotations" / f"{stem}.xml")
                image_set = "test" if role == "test" else "trainval"
                listings.setdefault((year, image_set), []).append(stem)
    for (year, image_set), stems in listings.items():
        (root / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt").write_text(
            "".join(f"{stem}\n" for stem in stems))
    return root


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection.synthetic",
        description="Generate a small dataset of shapes: COCO format (boxes, masks, keypoints) "
                    "or a PASCAL VOC devkit (boxes; VOC07+12 trainval, VOC07 test).")
    parser.add_argument("root", help="output folder (COCO 2017 layout, or the VOCdevkit)")
    parser.add_argument("--format", choices=("coco", "voc"), default="coco")
    parser.add_argument("--train", type=int, default=48, help="train images")
    parser.add_argument("--val", type=int, default=16, help="val (VOC: test) images")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.format == "voc":
            make_shapes_voc(args.root, num_train=args.train, num_test=args.val,
                            image_size=args.size, seed=args.seed)
        else:
            make_shapes_coco(args.root, num_train=args.train, num_val=args.val,
                             image_size=args.size, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"root": args.root, "format": args.format, "train": args.train,
                      "val": args.val}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
