"""Per-episode classifiers on frozen, L2-normalised features, and the 95% confidence interval.

Both classifiers are fitted on an episode's support set only and predict its query set:

- ``logreg``: multinomial logistic regression (scikit-learn, L-BFGS, L2 penalty ``1 / C``);
- ``centroid``: nearest class centroid under cosine similarity (prototypes, Snell et al. 2017,
  with cosine instead of squared Euclidean distance).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["CLASSIFIERS", "nearest_centroid_predict", "logistic_regression_predict",
           "l2_normalise", "mean_ci95"]


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``(N, F)`` rows scaled to unit L2 norm."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def nearest_centroid_predict(support: np.ndarray, support_labels: np.ndarray,
                             query: np.ndarray) -> np.ndarray:
    """Label of the closest centroid (cosine) for every query.

    Args:
        support: ``(S, F)`` features; support_labels: ``(S,)`` in ``[0, N)``, every class present.
        query: ``(Q, F)`` features.
    Returns:
        ``(Q,)`` predicted labels in ``[0, N)``.
    """
    num_classes = int(support_labels.max()) + 1
    centroids = np.stack([support[support_labels == c].mean(0) for c in range(num_classes)])
    return np.argmax(l2_normalise(query) @ l2_normalise(centroids).T, axis=1)


def logistic_regression_predict(support: np.ndarray, support_labels: np.ndarray,
                                query: np.ndarray, C: float = 10.0,
                                max_iter: int = 1000) -> np.ndarray:
    """Multinomial logistic regression fitted on the support set; ``(Q,)`` predicted labels.

    Args:
        support: ``(S, F)``; support_labels: ``(S,)``; query: ``(Q, F)``.
        C: inverse L2 regularisation strength (scikit-learn's ``C``).
    """
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=C, max_iter=max_iter)
    classifier.fit(support, support_labels)
    return classifier.predict(query)


CLASSIFIERS: dict[str, Callable[..., np.ndarray]] = {
    "logreg": logistic_regression_predict,
    "centroid": nearest_centroid_predict,
}


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its normal 95% confidence interval,
    ``1.96 * std(ddof=1) / sqrt(n)`` (as Meta-Dataset reports); the half-width is 0 for n = 1."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_ci95 of an empty sequence")
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))
