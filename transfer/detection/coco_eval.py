"""COCO-style AP (pycocotools) of torchvision detector outputs.

Metric names (percent, as detectron2 reports them): ``{iou_type}_AP``, ``{iou_type}_AP50``,
``{iou_type}_AP75`` for ``iou_type`` in ``bbox``, ``segm``, ``keypoints``; AP is the mean over
IoU (OKS for keypoints) thresholds 0.50:0.95.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_coco_results", "coco_ap", "evaluate_detector"]


def to_coco_results(outputs: Sequence[Mapping[str, Tensor]], image_ids: Sequence[int],
                    category_ids: Sequence[int], iou_types: Sequence[str],
                    mask_threshold: float = 0.5) -> dict[str, list[dict[str, Any]]]:
    """torchvision detection outputs -> COCO result lists per IoU type.

    Args:
        outputs: per image ``boxes (N, 4)`` xyxy, ``scores (N,)``, ``labels (N,)`` in
            ``[1, C]``, and ``masks (N, 1, H, W)`` probabilities / ``keypoints (N, K, 3)``.
        category_ids: the COCO category id of label ``i + 1`` at position ``i``.
    """
    from pycocotools import mask as mask_utils

    results: dict[str, list[dict[str, Any]]] = {t: [] for t in iou_types}
    for out, image_id in zip(outputs, image_ids):
        boxes = out["boxes"].detach().cpu().numpy()
        scores = out["scores"].detach().cpu().numpy()
        labels = out["labels"].detach().cpu().numpy()
        for j in range(len(scores)):
            x0, y0, x1, y1 = (float(v) for v in boxes[j])
            base = {"image_id": int(image_id), "category_id": int(category_ids[labels[j] - 1]),
                    "score": float(scores[j])}
            if "bbox" in results:
                results["bbox"].append({**base, "bbox": [x0, y0, x1 - x0, y1 - y0]})
            if "segm" in results:
                binary = (out["masks"][j, 0] > mask_threshold).cpu().numpy().astype(np.uint8)
                rle = mask_utils.encode(np.asfortranarray(binary))
                rle["counts"] = rle["counts"].decode("ascii")
                results["segm"].append({**base, "segmentation": rle})
            if "keypoints" in results:
                kpts = out["keypoints"][j].detach().cpu().numpy().astype(np.float64)
                kpts[:, 2] = 1.0
                results["keypoints"].append({**base, "keypoints": kpts.reshape(-1).tolist()})
    return results


def coco_ap(coco_gt, results: list[dict[str, Any]], iou_type: str,
            image_ids: Sequence[int]) -> dict[str, float]:
    """``{"AP", "AP50", "AP75"}`` (percent) of ``results`` against the ground truth
    ``coco_gt`` (a ``pycocotools.coco.COCO``) on ``image_ids``; 0 when there are no results.

    Keypoints with a skeleton other than COCO's 17 points use a uniform OKS sigma of 0.05.
    """
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.params.imgIds = list(image_ids)
        if iou_type == "keypoints":
            cats = coco_gt.loadCats(coco_gt.getCatIds())
            k = len(cats[0]["keypoints"])
            if k != 17:
                evaluator.params.kpt_oks_sigmas = np.full(k, 0.05)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(0.0, float(s)) * 100.0 for s in evaluator.stats[:3]]  # -1 means "no GT"
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}


@torch.no_grad()
def evaluate_detector(model: torch.nn.Module, dataset, iou_types: Sequence[str], *,
                      device: str | torch.device = "cpu", batch_size: int = 4,
                      progress: bool = False) -> dict[str, float]:
    """Run ``model`` (eval mode) over a :class:`~transfer.detection.data.CocoDetection` and
    return ``{f"{iou_type}_{AP|AP50|AP75}": percent}``."""
    from torch.utils.data import DataLoader

    from transfer.detection.data import collate

    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    if progress:
        import sys

        from tqdm import tqdm

        loader = tqdm(loader, desc="evaluate", file=sys.stderr, mininterval=1.0, leave=False)
    outputs, image_ids = [], []
    for images, targets in loader:
        outputs += model([im.to(device) for im in images])
        image_ids += [int(t["image_id"]) for t in targets]
    results = to_coco_results(outputs, image_ids, dataset.category_ids, iou_types)
    metrics = {}
    for iou_type in iou_types:
        for name, value in coco_ap(dataset.coco, results[iou_type], iou_type, image_ids).items():
            metrics[f"{iou_type}_{name}"] = value
    return metrics
