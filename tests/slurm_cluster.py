"""A one-node SLURM cluster on this machine, for tests that submit real jobs.

Debian's ``slurmctld``, ``slurmd`` and ``munge`` packages (installed with apt when missing and
running as root, as in CI) run from a fresh folder under /tmp: munged with its own key and
socket, slurm.conf naming this host as controller and as the one node, and the partitions a
test asks for (all on that node). No cgroups or systemd: ``proctrack/linuxproc``,
``task/none``, no accounting database (so ``sacct`` and ``sacctmgr`` answer nothing;
``squeue`` sees a job until ``MinJobAge``, 300 s, after it ends).

Outside that folder, apt installs with Debian's ``/usr/sbin/policy-rc.d`` in place (written for
the install where there is none), so no package starts a system daemon. And one file is written:
``/etc/slurm/slurm.conf``, the path every SLURM client reads when ``SLURM_CONF`` is unset.
snakemake-executor-plugin-slurm-jobstep (0.6) drops every ``SLURM_*`` variable, ``SLURM_CONF``
included, before its ``srun`` inside a job, so a cluster whose clients find slurm.conf only
through ``SLURM_CONF`` cannot run a Snakemake job. The file is written only where there is none
(or one this module wrote) and removed when the cluster stops.

    with one_node_cluster(("debug", "gpu")) as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env())

Every daemon started here is stopped by its PID when the ``with`` block ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
"""Debian 12's packages of the controller, the node daemon, the client commands and munge."""
COMMANDS = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo", "scontrol", "srun")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by ring-repro tests/slurm_cluster.py"
MEMORY_MB = 131072
"""What the node says it has (SlurmdParameters=config_overrides): enough for two of the SLURM
profile's 64 GB pretraining jobs side by side; the tiny test jobs use well under 1 GB."""


def missing_commands() -> list[str]:
    """The SLURM / munge commands that are not on PATH."""
    return [c for c in COMMANDS if shutil.which(c) is None]


def install_reason() -> Optional[str]:
    """Install the SLURM packages with apt where they are missing (as root); ``None`` once they
    are there, else why not (a test skips with it)."""
    if not missing_commands():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"SLURM commands missing ({', '.join(missing_commands())}) and no root apt-get "
                f"to install {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _services_not_started():
        for args in (["update"], ["install", "-y", "--no-install-recommends", *PACKAGES]):
            # another apt at work (dpkg's lock held): wait for it, up to 5 minutes
            proc = subprocess.run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args],
                                  env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                return f"apt-get {args[0]} failed: {proc.stderr.strip()[-500:]}"
    return f"still missing after apt-get: {missing_commands()}" if missing_commands() else None


@contextmanager
def _services_not_started() -> Iterator[None]:
    """While installing, the packages start no system daemon (munge's would otherwise run on,
    started by no test): Debian's policy-rc.d saying no, where there is none."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\n# ring-repro tests/slurm_cluster.py: apt installing\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def system_conf_reason() -> Optional[str]:
    """Why /etc/slurm/slurm.conf cannot be written (a real cluster's is there), or ``None``."""
    if SYSTEM_CONF.exists() and MARKER not in SYSTEM_CONF.read_text():
        return f"{SYSTEM_CONF} exists and is not this test's: a real SLURM host, left alone"
    return None


def _free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(root: Path, node: str, partitions: Sequence[str], cpus: int) -> str:
    """slurm.conf of a one-node cluster: state, spool, logs and PID files under ``root``,
    controller and node at ``node`` (127.0.0.1), every partition on that node, the first the
    default."""
    lines = [
        MARKER,
        "ClusterName=ringrepro",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "SlurmdParameters=config_overrides",  # the node is what this file says (MEMORY_MB)
        "ReturnToService=2",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={MEMORY_MB} State=UNKNOWN",
    ]
    lines += [f"PartitionName={name} Nodes={node} MaxTime=INFINITE State=UP"
              + (" Default=YES" if i == 0 else "") for i, name in enumerate(partitions)]
    return "\n".join(lines) + "\n"


@dataclass
class Cluster:
    """A running one-node cluster: its folder, slurm.conf and the daemons started for it."""

    root: Path
    conf: Path
    partitions: tuple[str, ...]
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """This process's environment with ``SLURM_CONF`` naming the cluster's slurm.conf."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster; its stdout."""
        proc = subprocess.run(command, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, *command: str, log: str) -> None:
        """Start one daemon in the foreground of its own process (its PID is the daemon's)."""
        with open(self.root / log, "w") as out:
            self.daemons.append(subprocess.Popen(command, env=self.env(), stdout=out,
                                                 stderr=subprocess.STDOUT))

    def logs(self) -> str:
        """The tail of every daemon log, to explain a failure."""
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-20:])
                         for p in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")))

    def stop(self) -> None:
        """Cancel what is still queued, then stop every daemon started, by PID, last first."""
        try:
            jobs = self.run("squeue", "--noheader", "--format=%i",
                            "--states=PENDING,RUNNING").split()
            if jobs:
                self.run("scancel", *jobs)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # the controller is gone already
        for daemon in reversed(self.daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=15)
        self.daemons.clear()

    def wait_until_idle(self, timeout: float = 60) -> None:
        """Wait until the node is idle in every partition (the controller sees slurmd)."""
        deadline = time.monotonic() + timeout
        states = ""
        while time.monotonic() < deadline:
            try:
                states = self.run("sinfo", "--noheader", "--format=%P %t")
            except (RuntimeError, subprocess.TimeoutExpired):
                states = ""
            if len(states.split()) == 2 * len(self.partitions) and all(
                    state == "idle" for state in states.split()[1::2]):
                return
            time.sleep(0.5)
        raise RuntimeError(f"node not idle after {timeout} s ({states!r})\n{self.logs()}")


def _start_munge(cluster: Cluster) -> None:
    """munged with a fresh key, its socket in a folder everyone may enter (munged checks)."""
    folder = cluster.root / "munge"
    folder.mkdir(mode=0o755)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    cluster.start("munged", "--foreground", f"--key-file={key}",
                  f"--socket={folder / 'munge.socket'}", f"--pid-file={folder / 'munged.pid'}",
                  f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'seed'}",
                  log="munged.out")
    deadline = time.monotonic() + 10
    while not (folder / "munge.socket").exists():
        if time.monotonic() > deadline or cluster.daemons[-1].poll() is not None:
            raise RuntimeError(f"munged did not start\n{cluster.logs()}")
        time.sleep(0.1)


@contextmanager
def one_node_cluster(partitions: Sequence[str] = ("debug",), cpus: int = 2) -> Iterator[Cluster]:
    """Start munged, slurmctld and slurmd for a one-node cluster with ``partitions``; stop them
    (and remove its folder and /etc/slurm/slurm.conf) on leaving. Call :func:`install_reason`
    and :func:`system_conf_reason` first."""
    root = Path(tempfile.mkdtemp(prefix="ring-slurm-"))
    root.chmod(0o755)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, socket.gethostname().split(".")[0], partitions, cpus))
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(conf, SYSTEM_CONF)
    cluster = Cluster(root, conf, tuple(partitions))
    try:
        _start_munge(cluster)
        cluster.start("slurmctld", "-D", "-f", str(conf), log="slurmctld.out")
        cluster.start("slurmd", "-D", "-f", str(conf), log="slurmd.out")
        cluster.wait_until_idle()
        yield cluster
    finally:
        cluster.stop()
        SYSTEM_CONF.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
