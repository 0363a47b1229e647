"""The paper's reported numbers, as data (``tables/reported/*.csv``).

One CSV per table of the paper, one row per reported cell::

    model,sampler,eval_dataset,metric,value,source,version,note
    ir,ring,cifar10,top1,,,,not transcribed (see README.md)

``sampler`` is ``uniform`` (the paper's base model / "NCE") or ``ring`` ("<model> + Ring");
``value`` is empty where the number could not be read from the paper (never guessed);
``source`` names the paper's table or figure and ``version`` the text it was read from
(``arXiv:2010.02037v1`` or ``ICLR 2021``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPORTED_COLUMNS", "REPORTED_DIR", "load_reported"]

REPORTED_COLUMNS = ("model", "sampler", "eval_dataset", "metric", "value", "source", "version",
                    "note")
REPORTED_DIR = Path("tables") / "reported"


def load_reported(path: str | os.PathLike):
    """Read one reported-numbers CSV into a DataFrame with :data:`REPORTED_COLUMNS`
    (``value`` as float, NaN where the paper's number was not transcribed).

    A missing file gives an empty frame (the table then says "not transcribed").

    Raises:
        ValueError: a column is missing, a value is not a number, or a cell is listed twice.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(REPORTED_COLUMNS)).astype({"value": float})
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REPORTED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: reported-numbers CSV lacks columns {missing}; expected "
                         f"{list(REPORTED_COLUMNS)} (see tables/reported/README.md)")
    values = pd.to_numeric(frame["value"].str.strip().replace("", None), errors="coerce")
    bad = frame["value"].str.strip().ne("") & values.isna()
    if bad.any():
        rows = [int(i) + 2 for i in frame.index[bad]]
        raise ValueError(f"{path}: 'value' must be a number or empty, not "
                         f"{frame['value'][bad].tolist()} (lines {rows})")
    frame["value"] = values.astype(float)
    key = ["model", "sampler", "eval_dataset", "metric"]
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        raise ValueError(f"{path}: the same cell is listed twice: "
                         f"{frame.loc[dup, key].drop_duplicates().values.tolist()}")
    return frame[list(REPORTED_COLUMNS)]
