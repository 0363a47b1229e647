"""Argument types the command lines share: a bad number is one clear argparse error (exit 2),
never a run that silently means something else (``--epochs 0`` writing a record)."""

from __future__ import annotations

import argparse
from typing import Callable

__all__ = ["positive_int", "positive_float", "non_negative_float"]


def _checked(parse: Callable[[str], float], kind: str, ok: Callable[[float], bool],
             rule: str) -> Callable[[str], float]:
    """An argparse ``type``: ``parse(text)``, refused unless ``ok(value)`` (``rule`` says why)."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):  # `not x > 0` also refuses nan
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    convert.__name__ = kind.replace(" ", "_")
    return convert


positive_int = _checked(int, "a whole number", lambda v: v >= 1, "at least 1")
positive_float = _checked(float, "a number", lambda v: v > 0, "above 0")
non_negative_float = _checked(float, "a number", lambda v: v >= 0, "0 or more")
