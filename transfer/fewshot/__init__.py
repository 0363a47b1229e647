"""Meta-Dataset-style few-shot evaluation of frozen features (``python -m transfer.fewshot``).

- :mod:`~transfer.fewshot.episodes`: the variable-way, variable-shot episode sampler;
- :mod:`~transfer.fewshot.classifiers`: logistic regression, nearest centroid, 95% CI;
- :mod:`~transfer.fewshot.sources`: TFDS / image-folder / offline sources (never downloads);
- :mod:`~transfer.fewshot.features`: frozen L2-normalised features;
- :mod:`~transfer.fewshot.evaluate`: the protocol, the result record and the CLI.
"""

from transfer.fewshot.classifiers import (CLASSIFIERS, logistic_regression_predict, mean_ci95,
                                          nearest_centroid_predict)
from transfer.fewshot.episodes import Episode, EpisodeConfig, sample_episode

__all__ = ["CLASSIFIERS", "Episode", "EpisodeConfig", "sample_episode", "mean_ci95",
           "logistic_regression_predict", "nearest_centroid_predict"]
