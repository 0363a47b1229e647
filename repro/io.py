"""Atomic file writes: a reader (or a killed run) never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save",
           "snakemake_hint", "RunLocked", "run_lock"]

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another process holds the run folder's lock (:func:`run_lock`)."""


class run_lock:
    """Hold ``<folder>/.lock`` (an exclusive ``flock``) while a run writes into ``folder``, so
    that two workflows sharing a results folder (two checkouts, two machines on one POSIX
    file system) never train the same run at once. The second one gets :class:`RunLocked`
    naming the holder (pid, host, start time) at once, instead of both writing ``last.pt``.
    The lock goes with the process (a killed run leaves no stale lock; the file stays, empty
    of meaning). Network file systems without ``flock`` support do not lock."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fh = None

    def __enter__(self) -> "run_lock":
        import datetime
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise RunLocked(f"{self.path.parent} is being written by {holder}: two workflows "
                            f"share this results folder. Wait for that run to finish (its "
                            f"result.json appears), or give this workflow its own results_dir"
                            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def snakemake_hint(path: str | os.PathLike) -> str:
    """The command that (re)makes ``path``, as a user can paste it: ``snakemake --cores all
    'PATH' --configfile YOUR.yaml`` (the target goes before ``--configfile``, which would read
    it as a config file otherwise; the config named is the one the run was made with)."""
    import shlex

    return (f"`snakemake --cores all {shlex.quote(str(path))} --configfile YOUR.yaml` (the "
            f"config you ran; leave --configfile out for config/default.yaml)")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The rename is atomic on POSIX file systems, so ``path`` holds either the old or the new
    content, never a partial one. Parent folders are created. The file gets the permissions of
    a plain ``open()`` under the process umask (``mkstemp`` alone would leave it private, 0600,
    unreadable to collaborators on a shared file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
