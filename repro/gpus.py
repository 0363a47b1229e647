"""Give each job of a multi-GPU machine its own GPUs.

Snakemake's ``--resources gpu=N`` counts GPUs but does not say which ones a job gets, so
without help every job of ``snakemake --cores all`` on an 8-GPU machine would run on GPU 0.
:func:`claim` picks free GPUs for this process by holding an exclusive lock file per GPU
(``<lock_dir>/gpu<i>.lock``, released when the process ends, also when it is killed) and sets
``CUDA_VISIBLE_DEVICES`` before CUDA starts. It does nothing where the GPUs are already decided:
``CUDA_VISIBLE_DEVICES`` set (SLURM sets it per job), a torchrun worker (``LOCAL_RANK``), or a
machine without NVIDIA GPUs.

    python -m repro.gpus N -- COMMAND ...     # run COMMAND on N claimed GPUs (torchrun jobs)
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["visible_gpu_count", "claim", "main"]

_HELD: list = []  # open lock files: the locks live as long as this process


def visible_gpu_count() -> int:
    """NVIDIA GPUs on this machine, counted without starting CUDA (which would fix the device
    list before ``CUDA_VISIBLE_DEVICES`` is set)."""
    proc_dir = Path("/proc/driver/nvidia/gpus")
    if proc_dir.is_dir():
        return len(list(proc_dir.iterdir()))
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def _default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"ring-repro-gpus-{os.getuid()}"


def claim(n: int, *, total: Optional[int] = None, lock_dir: Optional[Path] = None,
          timeout_s: float = 24 * 3600, poll_s: float = 2.0) -> Optional[list[int]]:
    """Lock ``n`` free GPUs for this process and make only them visible to CUDA.

    Returns the GPU ids claimed, or None when nothing was to be done (``n`` is 0, the GPUs are
    already decided, or ``total`` / :func:`visible_gpu_count` is 0). Waits (polling every
    ``poll_s``) while fewer than ``n`` are free; raises ``TimeoutError`` after ``timeout_s``
    and ``ValueError`` when the machine has fewer than ``n``.
    """
    if n <= 0 or "CUDA_VISIBLE_DEVICES" in os.environ or "LOCAL_RANK" in os.environ:
        return None
    total = visible_gpu_count() if total is None else total
    if total == 0:
        return None
    if n > total:
        raise ValueError(f"the job asks for {n} GPUs, this machine has {total}: lower "
                         f"pretrain.gpus / detection.gpus in your config")
    lock_dir = Path(lock_dir) if lock_dir is not None else _default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        held = []
        for gpu in range(total):
            fh = open(lock_dir / f"gpu{gpu}.lock", "a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            held.append((gpu, fh))
            if len(held) == n:
                break
        if len(held) == n:
            _HELD.extend(fh for _, fh in held)
            ids = [gpu for gpu, _ in held]
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
            return ids
        for _, fh in held:  # not enough free: let go, so two waiting jobs cannot deadlock
            fh.close()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{n} of {total} GPUs did not come free within {timeout_s:.0f}s "
                               f"(locks in {lock_dir}); run Snakemake with --resources gpu={total}")
        time.sleep(poll_s)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m repro.gpus N -- COMMAND ...``: claim N GPUs, then run COMMAND (its exit
    status is returned; the locks are held until it ends)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: python -m repro.gpus N -- COMMAND [ARGS ...]\n"
              "Runs COMMAND with CUDA_VISIBLE_DEVICES set to N GPUs no other job of this "
              "machine holds (nothing is changed under SLURM or when it is already set).",
              file=sys.stderr)
        return 2
    try:
        claim(int(argv[0]))
    except (ValueError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv[2:])

    def forward(signum, _frame):  # Snakemake / SLURM stop the wrapper: stop the job too
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
