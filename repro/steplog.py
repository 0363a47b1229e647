"""The pretraining step log, kept on the training device and read back every few steps.

Reading a loss (``loss.item()``, ``if torch.isfinite(loss)``) makes the host wait for the GPU
to finish every queued kernel. :class:`StepLog` keeps each step's detached loss where it was
computed and the host-side columns (epoch, step, w_l, lr, time) beside it; :meth:`StepLog.flush`
reads the held losses back in one transfer (every ``log_every`` steps and at each epoch's end),
checks them, and returns ``log.csv`` rows exactly as a per-step read would have written them.
A non-finite loss is found at the next flush and named by its own step: the error names the
step whose loss went NaN, not the step at which it was noticed. ``time_s`` is the host's clock
when the step was queued (on a GPU the step may finish later; an epoch's total is exact, since
the epoch ends with a read-back).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

__all__ = ["StepLog", "NonFiniteLoss", "DEFAULT_LOG_EVERY", "format_row"]

DEFAULT_LOG_EVERY = 50  # pretrain.log_every's default in config/schema.yaml (a test checks)


class NonFiniteLoss(RuntimeError):
    """A held loss was NaN or infinite; ``meta`` holds its step's host-side columns."""

    def __init__(self, value: float, meta: Mapping[str, Any]) -> None:
        super().__init__(f"loss became {value} at epoch {meta['epoch'] + 1}, step {meta['step']}")
        self.value = value
        self.meta = dict(meta)


def format_row(loss: float, meta: Mapping[str, Any]) -> dict[str, Any]:
    """One ``log.csv`` row (:data:`repro.pretrain.LOG_COLUMNS`) from a step's loss and its
    host-side ``meta`` (``epoch``, ``step``, ``w_l`` (float or ``""``), ``lr``, ``time_s``)."""
    w_l = meta["w_l"]
    return {"epoch": meta["epoch"], "step": meta["step"], "loss": f"{loss:.6f}",
            "w_l": f"{w_l:.4f}" if w_l != "" else "", "lr": f"{meta['lr']:.6g}",
            "time_s": f"{meta['time_s']:.2f}"}


class StepLog:
    """Losses of the steps since the last read-back, on their device.

    Args:
        every: read back after this many held steps (``pretrain.log_every``, >= 1; 1 reads
            every step, as a per-step ``.item()`` would).
    """

    def __init__(self, every: int = DEFAULT_LOG_EVERY) -> None:
        if every < 1:
            raise ValueError(f"log_every must be at least 1, got {every}")
        self.every = int(every)
        self._losses: list[Tensor] = []
        self._meta: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._losses)

    def add(self, loss: Tensor, meta: Mapping[str, Any]) -> Optional[list[dict[str, Any]]]:
        """Hold a step's 0-d ``loss`` (detached; no sync) with its ``meta``; returns the rows of
        a read-back when ``every`` steps are held, else ``None``. Raises
        :class:`NonFiniteLoss` from that read-back."""
        self._losses.append(loss.detach())
        self._meta.append(dict(meta))
        return self.flush() if len(self._losses) >= self.every else None

    def flush(self) -> list[dict[str, Any]]:
        """Read every held loss back in one transfer and return their rows, oldest first.

        Raises:
            NonFiniteLoss: naming the earliest held step whose loss is NaN or infinite.
        """
        if not self._losses:
            return []
        values = torch.stack(self._losses).float().cpu().tolist()  # the one host sync
        meta, self._losses, self._meta = self._meta, [], []
        for value, step_meta in zip(values, meta):
            if not math.isfinite(value):
                raise NonFiniteLoss(value, step_meta)
        return [format_row(value, step_meta) for value, step_meta in zip(values, meta)]
