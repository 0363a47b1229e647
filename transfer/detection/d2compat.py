"""What detectron2 0.6 needs from today's stack, supplied at import: call :func:`prepare` (or
import :mod:`transfer.detection.d2backbone`, which does) before importing ``detectron2``.

Nothing here edits site-packages and there is no ``sitecustomize.py``: each need is met in this
process, where it can be read and tested.

- **``detectron2._C``**: the compiled ops. ``make install`` installs detectron2's Python package
  without them (:mod:`transfer.detection.install_detectron2`); four modules still import ``_C``
  at import time (deformable conv, rotated ROIAlign, rotated box IoU, the fast COCOeval), none of
  which this project's path calls. Where no compiled ``_C`` exists, :func:`install_placeholder_c`
  puts a placeholder module in ``sys.modules`` whose every attribute raises
  :class:`CompiledOpsMissing`, naming the op and the source build that provides it, except the
  three that detectron2's environment report (``utils.collect_env``) reads, which say that
  there are no compiled ops. A source build's real ``_C`` is left alone.
- **``PIL.Image.LINEAR``**: removed in Pillow 10; detectron2's ``ExtentTransform`` uses it as a
  default argument. Aliased to ``Image.BILINEAR`` (the value it always had) where missing.
- **NumPy aliases** ``np.float``, ``np.int``, ``np.object``, ``np.str`` (removed in NumPy 1.24)
  and ``np.bool`` (removed in 1.24, back as ``np.bool_`` in 2.0): detectron2 0.6 calls them in
  its mask structures, the PASCAL VOC reader and evaluator, and the visualiser. Each is set to
  the builtin it always meant, only where missing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["CompiledOpsMissing", "NUMPY_ALIASES", "PLACEHOLDER_VERSION", "SOURCE_BUILD", "compiled_ops_available",
           "install_placeholder_c", "alias_pil_linear", "alias_numpy", "prepare"]

SOURCE_BUILD = ("pip install 'git+https://github.com/facebookresearch/detectron2.git@v0.6' "
                "(or `python -m pip install -e .` in a clone), with torch installed and a C++ "
                "(and CUDA) compiler")
PLACEHOLDER_VERSION = "none: detectron2 installed without compiled ops (d2compat placeholder)"
NUMPY_ALIASES = {"float": float, "int": int, "bool": bool, "object": object, "str": str}


class CompiledOpsMissing(RuntimeError):
    """A detectron2 compiled op was called, but detectron2 was installed without them."""


def _placeholder_getattr(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)  # import machinery and introspection probe dunders
    raise CompiledOpsMissing(
        f"detectron2._C.{name}: detectron2 was installed without compiled ops (make install "
        f"copies its Python package only); deformable conv, rotated boxes and the fast "
        f"COCOeval need a source build: {SOURCE_BUILD}")


def compiled_ops_available() -> bool:
    """Whether a compiled ``detectron2._C`` extension is installed (a source build)."""
    if "detectron2._C" in sys.modules:
        return not getattr(sys.modules["detectron2._C"], "_ring_repro_placeholder", False)
    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.submodule_search_locations:
        return False
    finder = importlib.machinery.PathFinder
    return finder.find_spec("_C", list(spec.submodule_search_locations)) is not None


def install_placeholder_c() -> bool:
    """Put the placeholder ``detectron2._C`` in ``sys.modules`` where no compiled one exists;
    returns whether it did (or had)."""
    if compiled_ops_available():
        return False
    module = sys.modules.get("detectron2._C")
    if module is None:
        module = types.ModuleType("detectron2._C", "placeholder: detectron2 installed without "
                                                   "its compiled ops (transfer.detection.d2compat)")
        module._ring_repro_placeholder = True
        module.__getattr__ = _placeholder_getattr
        # what detectron2's environment report (utils.collect_env) asks of a compiled _C
        module.get_compiler_version = module.get_cuda_version = lambda: PLACEHOLDER_VERSION
        module.has_cuda = lambda: False
        sys.modules["detectron2._C"] = module
    return True


def alias_pil_linear() -> None:
    """``PIL.Image.LINEAR`` = ``Image.BILINEAR`` where Pillow no longer has it."""
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR


def alias_numpy() -> list[str]:
    """Set the removed NumPy type aliases that are missing; returns the names set."""
    import warnings

    import numpy as np

    missing = []
    for name, value in NUMPY_ALIASES.items():
        try:
            with warnings.catch_warnings():  # NumPy 2 warns on the probe of a removed alias
                warnings.simplefilter("ignore", FutureWarning)
                getattr(np, name)
        except AttributeError:
            setattr(np, name, value)
            missing.append(name)
    return missing


def prepare() -> None:
    """Everything above, once per process, before detectron2 is imported."""
    install_placeholder_c()
    alias_pil_linear()
    alias_numpy()
