"""Few-shot sources: the Meta-Dataset domains (via tensorflow-datasets or a local image folder)
and the project's offline datasets, loaded into one in-memory pool of resized images.

Sources (Meta-Dataset name -> where it comes from)::

    omniglot      tfds omniglot, split test (the evaluation alphabets)
    aircraft      tfds visual_domain_decathlon/aircraft, split validation
    cu_birds      tfds caltech_birds2011, split test
    dtd           tfds dtd, split test
    quickdraw     tfds quickdraw_bitmap, split train (the only split; capped per class)
    vgg_flower    tfds oxford_flowers102, split test
    traffic_sign  tfds visual_domain_decathlon/gtsrb, split validation
    mscoco        tfds coco/2017, split validation: a crop of each image's largest object,
                  labelled with its category (Meta-Dataset also uses object crops)
    ilsvrc_2012   local image folder FOLDER_ROOT/ilsvrc_2012/<class>/<image>
    fungi         local image folder FOLDER_ROOT/fungi/<class>/<image>
    shapes, digits  the project's offline datasets (repro.data, test split): no download, CPU

plus ``tfds:<builder>[:<split>]`` and ``folder:<path>`` for anything else.

TFDS data is read only when it is already prepared in ``data_dir``: this module never downloads
(no ``download_and_prepare``, no ``tfds.load``); a missing dataset raises
:class:`SourceNotPrepared` saying how to prepare it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
from PIL import Image

__all__ = [
    "ImagePool",
    "TfdsSource",
    "TFDS_SOURCES",
    "FOLDER_SOURCES",
    "OFFLINE_SOURCES",
    "META_DATASET_SOURCES",
    "SourceNotPrepared",
    "resize_rgb",
    "load_source",
    "tfds_builder",
]

META_DATASET_SOURCES = ("ilsvrc_2012", "omniglot", "aircraft", "cu_birds", "dtd", "quickdraw",
                        "fungi", "vgg_flower", "traffic_sign", "mscoco")


@dataclass(frozen=True)
class TfdsSource:
    """A TFDS builder and the split whose classes the episodes use."""

    builder: str
    split: str
    label_key: str = "label"
    crop_largest_object: bool = False  # COCO-style ``objects`` -> crop of the largest box


TFDS_SOURCES: dict[str, TfdsSource] = {
    "omniglot": TfdsSource("omniglot", "test"),
    "aircraft": TfdsSource("visual_domain_decathlon/aircraft", "validation"),
    "cu_birds": TfdsSource("caltech_birds2011", "test"),
    "dtd": TfdsSource("dtd", "test"),
    "quickdraw": TfdsSource("quickdraw_bitmap", "train"),
    "vgg_flower": TfdsSource("oxford_flowers102", "test"),
    "traffic_sign": TfdsSource("visual_domain_decathlon/gtsrb", "validation"),
    "mscoco": TfdsSource("coco/2017", "validation", crop_largest_object=True),
}
FOLDER_SOURCES = ("ilsvrc_2012", "fungi")
OFFLINE_SOURCES = ("shapes", "digits")


class SourceNotPrepared(FileNotFoundError):
    """A source's data is not on disk (and will not be downloaded)."""


@dataclass
class ImagePool:
    """All loaded examples of a source, resized.

    Attributes:
        images: ``(P, S, S, 3)`` uint8 RGB images.
        labels: ``(P,)`` int64 class labels.
        info: where the data came from (source, builder, split, caps), for the result record.
    """

    images: np.ndarray
    labels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(len(np.unique(self.labels)))


def resize_rgb(image: Any, image_size: int) -> np.ndarray:
    """A PIL image or ``(H, W[, C])`` uint8 array (gray, RGB or RGBA) -> ``(S, S, 3)`` uint8
    (direct bilinear resize, aspect ratio not kept, as Meta-Dataset does)."""
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        image = Image.fromarray(array.astype(np.uint8))
    image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


class _Collector:
    """Keeps at most ``max_per_class`` examples of every class, up to ``max_examples`` read."""

    def __init__(self, image_size: int, max_per_class: Optional[int]) -> None:
        self.image_size, self.max_per_class = image_size, max_per_class
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.counts: dict[int, int] = {}

    def add(self, image: Any, label: int) -> None:
        if self.max_per_class is not None and self.counts.get(label, 0) >= self.max_per_class:
            return
        self.counts[label] = self.counts.get(label, 0) + 1
        self.images.append(resize_rgb(image, self.image_size))
        self.labels.append(int(label))

    def full(self, num_classes: Optional[int]) -> bool:
        if self.max_per_class is None or num_classes is None or len(self.counts) < num_classes:
            return False
        return min(self.counts.values()) >= self.max_per_class

    def pool(self, info: dict[str, Any]) -> ImagePool:
        if not self.labels:
            raise ValueError(f"source {info.get('source')!r} yielded no examples")
        return ImagePool(np.stack(self.images), np.asarray(self.labels, dtype=np.int64), info)


def _progress(iterable: Iterable, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return iter(iterable)
    import sys

    from tqdm import tqdm

    return iter(tqdm(iterable, desc=desc, file=sys.stderr, mininterval=1.0, leave=False))


# --------------------------------------------------------------------------------------------
# TFDS
# --------------------------------------------------------------------------------------------


def default_tfds_data_dir() -> str:
    """``$TFDS_DATA_DIR`` or TFDS's default ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"),
                                                        "tensorflow_datasets"))


def tfds_builder(name: str, data_dir: Optional[str]):
    """The prepared TFDS builder ``name`` in ``data_dir``; never downloads.

    Raises:
        SourceNotPrepared: the builder exists but its data is not prepared in ``data_dir``
            (the message says how to prepare it); ImportError without tensorflow-datasets;
            ValueError for an unknown builder.
    """
    # torchvision must be imported before TensorFlow: importing torchvision.ops after
    # TensorFlow segfaults (torch 2.14 / TF 2.21 wheels).
    import torchvision  # noqa: F401

    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError("TFDS sources need tensorflow-datasets: "
                          "pip install -e '.[tf]' (tensorflow-cpu, tensorflow-datasets)") from err
    data_dir = data_dir or default_tfds_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(f"tensorflow-datasets has no builder {name!r} ({err})") from None
    if not builder.is_prepared():
        manual = (getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) or "").strip()
        hint = (f" It needs a manual download first: put the files in "
                f"{Path(data_dir) / 'downloads' / 'manual'} ({' '.join(manual.split())[:300]})."
                if manual else "")
        raise SourceNotPrepared(
            f"TFDS dataset {name!r} (version {builder.version}) is not prepared in data_dir "
            f"{data_dir!r} (looked for {builder.data_path}). This tool never downloads: prepare "
            f"it once on a machine with internet access with `tfds build {name} --data_dir "
            f"{data_dir}` (or `python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}', data_dir='{data_dir}').download_and_prepare()\"`), then "
            f"pass --data-dir {data_dir}.{hint} Catalog: "
            f"https://www.tensorflow.org/datasets/catalog/{name.split('/')[0]}")
    return builder


def _largest_object_crop(example: dict[str, Any]) -> Optional[tuple[np.ndarray, int]]:
    """The crop of the largest (by box area) object of a COCO-style example and its label."""
    objects = example["objects"]
    boxes = np.asarray(objects["bbox"])  # (K, 4) normalised [ymin, xmin, ymax, xmax]
    if boxes.size == 0:
        return None
    image = np.asarray(example["image"])
    h, w = image.shape[:2]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    k = int(np.argmax(areas))
    y0, x0, y1, x1 = boxes[k]
    top, left = int(y0 * h), int(x0 * w)
    bottom, right = max(top + 1, int(round(y1 * h))), max(left + 1, int(round(x1 * w)))
    return image[top:bottom, left:right], int(np.asarray(objects["label"])[k])


def _load_tfds(source: str, spec: TfdsSource, *, image_size: int, data_dir: Optional[str],
               split: Optional[str], max_per_class: Optional[int], max_examples: Optional[int],
               seed: int, progress: bool) -> ImagePool:
    import tensorflow_datasets as tfds

    builder = tfds_builder(spec.builder, data_dir)
    split = split or spec.split
    features = builder.info.features
    num_classes = None
    if spec.label_key in features and hasattr(features[spec.label_key], "num_classes"):
        num_classes = features[spec.label_key].num_classes
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    dataset = builder.as_dataset(split=split, shuffle_files=True, read_config=read_config)
    collector = _Collector(image_size, max_per_class)
    for read, example in enumerate(_progress(tfds.as_numpy(dataset), f"{source} images",
                                             progress)):
        if max_examples is not None and read >= max_examples:
            break
        if spec.crop_largest_object:
            crop = _largest_object_crop(example)
            if crop is not None:
                collector.add(*crop)
        else:
            collector.add(example["image"], int(example[spec.label_key]))
        if collector.full(num_classes):
            break
    return collector.pool({"source": source, "backend": "tfds", "builder": spec.builder,
                           "version": str(builder.version), "split": split,
                           "data_dir": str(data_dir or default_tfds_data_dir())})


# --------------------------------------------------------------------------------------------
# Image folders and the offline datasets
# --------------------------------------------------------------------------------------------


def _load_folder(source: str, path: Path, *, image_size: int, max_per_class: Optional[int],
                 progress: bool) -> ImagePool:
    if not path.is_dir():
        raise SourceNotPrepared(
            f"no image folder for source {source!r} at {path}: put the images there as "
            f"{path}/<class>/<image> (for Meta-Dataset's {source}, follow the Meta-Dataset "
            f"download instructions, github.com/google-research/meta-dataset), or pass "
            f"--folder-root")
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(path))
    collector = _Collector(image_size, max_per_class)
    for file, label in _progress(folder.samples, f"{source} images", progress):
        if max_per_class is None or collector.counts.get(label, 0) < max_per_class:
            collector.add(folder.loader(file), label)
    return collector.pool({"source": source, "backend": "folder", "path": str(path),
                           "classes": len(folder.classes)})


def offline_dataset(name: str, root: Optional[str], split: str):
    """The project's offline dataset (``repro.data.build_dataset``): ``(PIL image, label)``."""
    from repro.data import build_dataset

    return build_dataset(name, root, split)


def _load_offline(source: str, *, image_size: int, root: Optional[str], split: Optional[str],
                  max_per_class: Optional[int], progress: bool) -> ImagePool:
    split = split or "test"
    dataset = offline_dataset(source, root, split)
    collector = _Collector(image_size, max_per_class)
    for i in _progress(range(len(dataset)), f"{source} images", progress):
        image, label = dataset[i]
        collector.add(image, int(label))
    return collector.pool({"source": source, "backend": "repro.data", "split": split})


def load_source(source: str, *, image_size: int, data_dir: Optional[str] = None,
                folder_root: Optional[str] = None, split: Optional[str] = None,
                max_per_class: Optional[int] = 200, max_examples: Optional[int] = None,
                seed: int = 0, progress: bool = False) -> ImagePool:
    """Load a source (see the module docstring) into an :class:`ImagePool` of ``image_size``
    square RGB images, keeping at most ``max_per_class`` examples per class and reading at most
    ``max_examples`` (TFDS; ``None``: no cap).

    Args:
        data_dir: TFDS data_dir (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        folder_root: folder holding ``ilsvrc_2012/``, ``fungi/`` (image-folder sources) or the
            root handed to ``repro.data`` for the offline sources.
        split: override the source's default split.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    tfds_kwargs = dict(image_size=image_size, data_dir=data_dir, split=split,
                       max_per_class=max_per_class, max_examples=max_examples, seed=seed,
                       progress=progress)
    if source in TFDS_SOURCES:
        return _load_tfds(source, TFDS_SOURCES[source], **tfds_kwargs)
    if source.startswith("tfds:"):
        name, _, tfds_split = source[len("tfds:"):].partition(":")
        tfds_kwargs["split"] = split or tfds_split or "test"
        return _load_tfds(source, TfdsSource(name, tfds_kwargs["split"]), **tfds_kwargs)
    if source in FOLDER_SOURCES:
        root = Path(folder_root or "data/meta_dataset")
        return _load_folder(source, root / source, image_size=image_size,
                            max_per_class=max_per_class, progress=progress)
    if source.startswith("folder:"):
        return _load_folder(source, Path(source[len("folder:"):]), image_size=image_size,
                            max_per_class=max_per_class, progress=progress)
    if source in OFFLINE_SOURCES:
        return _load_offline(source, image_size=image_size, root=folder_root, split=split,
                             max_per_class=max_per_class, progress=progress)
    known = sorted([*TFDS_SOURCES, *FOLDER_SOURCES, *OFFLINE_SOURCES])
    raise ValueError(f"unknown few-shot source {source!r}; one of {known}, "
                     f"'tfds:<builder>[:<split>]' or 'folder:<path>'")
