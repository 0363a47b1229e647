"""Atomic file writes: a reader (or a killed run) never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save",
           "snakemake_hint"]


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
