"""ring-repro: Ring (conditional negative sampling) for contrastive learning, reproduced.

Wu, Mosse, Zhuang, Yamins, Goodman. "Conditional Negative Sampling for Contrastive Learning of
Visual Representations", ICLR 2021.
"""

__version__ = "0.1.0"
