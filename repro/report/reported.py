"""The paper's reported numbers, as data (``tables/reported/*.csv``).

One CSV per table of the paper, one row per reported cell::

    model,sampler,eval_dataset,metric,value,source,version,note
    ir,ring,cifar10,top1,,,,not transcribed (see README.md)

``sampler`` is ``uniform`` (the paper's base model / "NCE") or ``ring`` ("<model> + Ring");
``value`` is empty where the number could not be read from the paper (never guessed);
``source`` names the paper's table or figure and ``version`` the text it was read from
(``arXiv:2010.02037v1`` or ``ICLR 2021``).

The paper's summary claims (the abstract's "2-5% points" and its transfer claims) are data too,
``tables/reported/claims.csv``, one row per claim (:func:`load_claims`)::

    claim_id,stage,metric,models,low,high,direction,quote,source,wording
    linear_eval_gain,linear_eval,top1,ir;cmc;moco,2,5,+,"improves accuracy by ...",...
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["REPORTED_COLUMNS", "REPORTED_DIR", "load_reported", "CLAIMS_COLUMNS", "CLAIMS_CSV",
           "Claim", "load_claims"]

REPORTED_COLUMNS = ("model", "sampler", "eval_dataset", "metric", "value", "source", "version",
                    "note")
REPORTED_DIR = Path("tables") / "reported"


def _read_csv(path: Path, columns):
    """``path`` as strings; a file that is not a readable CSV (empty, an unterminated quote,
    not text) is one ``ValueError`` naming it and the header it needs."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable CSV ({first}); it needs the header "
                         f"{','.join(columns)} and one row per line, fields with commas in "
                         f"double quotes (see tables/reported/README.md)") from None


def load_reported(path: str | os.PathLike):
    """Read one reported-numbers CSV into a DataFrame with :data:`REPORTED_COLUMNS`
    (``value`` as float, NaN where the paper's number was not transcribed).

    A missing file gives an empty frame (the table then says "not transcribed").

    Raises:
        ValueError: the file is not a readable CSV (empty, an unterminated quote), a column is
            missing, a value is not a number, or a cell is listed twice; the file is named.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(REPORTED_COLUMNS)).astype({"value": float})
    frame = _read_csv(path, REPORTED_COLUMNS)
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


CLAIMS_COLUMNS = ("claim_id", "stage", "metric", "models", "low", "high", "direction", "quote",
                  "source", "wording")
CLAIMS_CSV = "claims.csv"
_DIRECTIONS = ("+", "-")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, as written in ``claims.csv``.

    Args:
        claim_id: short name of the claim (``linear_eval_gain``).
        stage: the records it is about (``linear_eval``, ``fewshot``, ``detection``).
        metric: one metric name, or ``task=metric`` pairs joined by ``;`` for stages whose
            records name a task (detection: ``voc_det=bbox_AP;coco_mask=segm_AP``).
        models: the models the claim names (empty: it names none, so it covers every model).
        low, high: the claimed size of ``treatment - baseline`` (in the metric's units), or
            ``None`` for a claim of direction only.
        direction: ``+`` (treatment above baseline) or ``-`` (below).
        quote: the claim's words; source: where they are written; wording: ``verbatim`` or
            ``paraphrase``.
    """

    claim_id: str
    stage: str
    metric: str
    models: tuple[str, ...]
    low: Optional[float]
    high: Optional[float]
    direction: str
    quote: str
    source: str
    wording: str = "verbatim"

    @property
    def has_range(self) -> bool:
        """Whether the claim states a size (``low`` and ``high``), not only a direction."""
        return self.low is not None and self.high is not None

    def metric_for(self, task: str) -> Optional[str]:
        """The metric the claim is about for records of ``task``: the single metric, or the
        task's entry of ``task=metric`` pairs (``None``: the claim says nothing about it)."""
        if "=" not in self.metric:
            return self.metric
        pairs = dict(p.split("=", 1) for p in self.metric.split(";") if p.strip())
        return {k.strip(): v.strip() for k, v in pairs.items()}.get(task)

    def names_model(self, model: str) -> bool:
        """Whether the claim covers ``model`` (a claim naming no model covers all)."""
        return not self.models or model in self.models


def _number(text: str, path: Path, line: int, column: str) -> Optional[float]:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{path}: '{column}' must be a number or empty, not {text!r} "
                         f"(line {line})")
    return value


def load_claims(path: str | os.PathLike) -> list[Claim]:
    """Read ``claims.csv`` (:data:`CLAIMS_COLUMNS`); returns its claims in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a column is missing, a claim id repeats, ``low``/``high`` are not numbers,
            only one of them is given or ``low > high``, ``direction`` is not ``+``/``-``, or
            ``quote``/``source`` is empty.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no claims file at {path} (see tables/reported/README.md)")
    frame = _read_csv(path, CLAIMS_COLUMNS)
    missing = [c for c in CLAIMS_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: claims CSV lacks columns {missing}; expected "
                         f"{list(CLAIMS_COLUMNS)} (see tables/reported/README.md)")
    claims, seen = [], set()
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        low = _number(row["low"], path, line, "low")
        high = _number(row["high"], path, line, "high")
        if (low is None) != (high is None) or (low is not None and low > high):
            raise ValueError(f"{path}: line {line} needs both low <= high, or neither "
                             f"(got low={row['low']!r}, high={row['high']!r})")
        if row["direction"].strip() not in _DIRECTIONS:
            raise ValueError(f"{path}: line {line}: direction must be one of {_DIRECTIONS}, "
                             f"not {row['direction']!r}")
        if not row["quote"].strip() or not row["source"].strip():
            raise ValueError(f"{path}: line {line}: every claim needs its quote and source")
        if row["claim_id"] in seen:
            raise ValueError(f"{path}: claim {row['claim_id']!r} is listed twice")
        seen.add(row["claim_id"])
        claims.append(Claim(
            claim_id=row["claim_id"].strip(), stage=row["stage"].strip(),
            metric=row["metric"].strip(),
            models=tuple(m.strip() for m in row["models"].split(";") if m.strip()),
            low=low, high=high, direction=row["direction"].strip(), quote=row["quote"].strip(),
            source=row["source"].strip(), wording=row["wording"].strip() or "verbatim"))
    return claims
