"""Shared test setup.

torchvision's compiled ops must be loaded before TensorFlow: importing ``torchvision.ops`` after
``tensorflow`` segfaults in this environment (two copies of the same C++ runtime symbols). Tests
that use tensorflow-datasets and tests that build detectors run in one process, so load
torchvision first, once.
"""

import torchvision.ops  # noqa: F401  (import order matters, see above)


import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):  # make test: one worker per core, one thread each
    import torch

    torch.set_num_threads(1)

ONE_WORKER_MODULES = ("tests/test_slurm_profile.py", "tests/test_device_check.py")
"""Test files whose tests run on one pytest-xdist worker: they share a module fixture that is
costly (a SLURM cluster started on this machine; one run of bench/device_check.sh)."""


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (make test): each test is its own unit of work, as with ``load``,
    except the files of :data:`ONE_WORKER_MODULES`, each one unit. xdist's own grouping (the
    ``xdist_group`` mark) does nothing under pytest 9.2 (pytest-dev/pytest-xdist#1386)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return OneWorkerModules(config, log)


@pytest.fixture
def run_report_rule():
    """``run(results, workdir, target)``: rules/report.smk (and the helpers of
    rules/common.smk) without the other rule files, under a one-file Snakefile in
    ``workdir`` (records in ``results``, the committed paper numbers), building ``target`` with
    the real Snakemake; returns the finished process."""

    def run(results: Path, workdir: Path, target: str) -> subprocess.CompletedProcess:
        snakefile = workdir / "Snakefile"
        snakefile.write_text(
            "import sys\n"
            "config.setdefault('report', {'reported_dir': %r})\n"
            "RESULTS = %r\nEXPECTED_PATH = None\n"
            "include: %r\ninclude: %r\n" % (str(_ROOT / "tables" / "reported"), str(results),
                                             str(_ROOT / "rules" / "common.smk"),
                                             str(_ROOT / "rules" / "report.smk")))
        env = {**os.environ, "PYTHONPATH": str(_ROOT)}
        snakemake = str(Path(sys.executable).with_name("snakemake"))
        return subprocess.run([snakemake, "-s", str(snakefile), "-d", str(workdir), "--cores",
                               "1", target], capture_output=True, text=True, env=env,
                              timeout=300)

    return run
