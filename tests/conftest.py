"""Shared test setup.

torchvision's compiled ops must be loaded before TensorFlow: importing ``torchvision.ops`` after
``tensorflow`` segfaults in this environment (two copies of the same C++ runtime symbols). Tests
that use tensorflow-datasets and tests that build detectors run in one process, so load
torchvision first, once.
"""

import torchvision.ops  # noqa: F401  (import order matters, see above)
