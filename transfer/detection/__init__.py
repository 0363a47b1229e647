"""Detection, instance segmentation and keypoint transfer of a pretrained encoder.

- :mod:`~transfer.detection.convert`: checkpoint -> detectron2 ``.pkl`` + config settings;
- ``configs/``: detectron2 configs (VOC R50-C4, COCO Mask / Keypoint R-CNN R50-FPN 1x);
- :mod:`~transfer.detection.train`: the launcher (detectron2, or torchvision without it);
- :mod:`~transfer.detection.install_detectron2`: detectron2 0.6 from the index's sdist, uncompiled;
  :mod:`~transfer.detection.d2compat`: what it needs at import (``_C`` placeholder, aliases);
  :mod:`~transfer.detection.d2backbone`: our encoders (any width, CIFAR stem) in detectron2;
- :mod:`~transfer.detection.models`: the torchvision models around our backbone;
- :mod:`~transfer.detection.data`: COCO-format / VOC data; :mod:`~transfer.detection.coco_eval`:
  COCO-style AP; :mod:`~transfer.detection.synthetic`: a generated COCO-format dataset.
"""
