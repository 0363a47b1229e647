"""The SLURM profile (profiles/slurm) against a real SLURM: a one-node cluster of Debian's
slurm-wlm daemons on this machine (tests/slurm_cluster.py; installed with apt where missing, as
root), with partitions ``debug`` and ``gpu`` on the one node.

A tiny config runs twice at once: locally (``--cores 2``) and through ``snakemake --profile
profiles/slurm`` with the account and partition overridden on the command line. Its records
must be the same, and each SLURM job must have run where and with what the profile asks.

Run alone with ``make test-slurm`` (2.5-3 minutes on 2 busy cores, the apt install included).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import slurm_cluster  # tests/slurm_cluster.py (pytest puts tests/ on sys.path)

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
PROFILE = ROOT / "profiles" / "slurm" / "config.v8+.yaml"
ACCOUNT = "ringtest"
PARTITION = "debug"
"""The command line's default partition: not the profile's ``cpu``, so that the override shows."""
TINY = {
    "seeds": [0],
    "models": {"moco": {"queue_size": 64, "key_momentum": 0.99}},
    "samplers": {"ring": {"name": "ring", "w_l": 0.9, "w_u": 0.99}},
    "pretrain": {"datasets": ["shapes"], "epochs": 1, "batch_size": 32, "subset": 64,
                 "per_model": {}, "per_dataset": {}},
    "toy": {"seeds": 2, "sphere": None},
}
"""One pretraining run (a rule the profile sends to partition gpu) and the Gaussian toy (a rule
left to the default partition): two jobs side by side. Evaluation would be a second round of
jobs (a minute more, mostly Snakemake starting twice inside each job)."""
RUN = "pretrain/shapes/moco-ring/seed0"
EXECUTION_ONLY = ("wall_time_s", "peak_memory_mb")
"""Record fields that say how a run went, not what it gave (repro.results)."""


def profile() -> dict[str, Any]:
    return yaml.safe_load(PROFILE.read_text())


def command_line_resources() -> list[str]:
    """``--default-resources`` with the account and partition overridden: it replaces the
    profile's whole list, so the profile's other defaults are given again."""
    defaults = {**profile()["default-resources"], "slurm_account": ACCOUNT,
                "slurm_partition": PARTITION}
    return ["--default-resources", *(f"{key}={value}" for key, value in defaults.items())]


def targets(results: Path) -> list[str]:
    return [f"{results}/{RUN}/result.json", f"{results}/toy/result.json"]


def snakemake(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start snakemake in the checkout, its output to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen([SNAKEMAKE, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def finish(runs: dict[Path, subprocess.Popen], cluster: slurm_cluster.Cluster) -> None:
    """Wait for the snakemake runs (log -> process); fail with the log of the first that
    failed and the daemons' logs. None is left running."""
    try:
        for log, proc in runs.items():
            if proc.wait(timeout=600) != 0:
                raise AssertionError(f"{log.name} failed:\n{log.read_text()[-6000:]}\n"
                                     f"{cluster.logs()}")
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def comparable(record_path: Path, results: Path) -> dict[str, Any]:
    """A record without its execution-only fields, its results folder written as <results>."""
    record = json.loads(record_path.read_text().replace(str(results), "<results>"))
    return {k: v for k, v in record.items() if k not in EXECUTION_ONLY}


def records(results: Path) -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(results)): comparable(p, results)
            for p in sorted(results.rglob("result.json"))}


def minutes(limit: str) -> int:
    """SLURM's ``[days-]hours:minutes:seconds`` time limit in minutes."""
    days, _, clock = limit.rpartition("-")
    hours, mins, _ = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def megabytes(memory: str) -> int:
    """squeue's memory (``32000M``, ``62.50G``) in MB (MiB, as SLURM counts them)."""
    scale = {"M": 1, "G": 1024, "T": 1024**2}[memory[-1]]
    return round(float(memory[:-1]) * scale)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="no SLURM executor plugin: pip install -e '.[slurm]'")
    for reason in (slurm_cluster.install_reason(), slurm_cluster.system_conf_reason()):
        if reason:
            pytest.skip(reason)
    with slurm_cluster.one_node_cluster(partitions=(PARTITION, "gpu")) as running:
        yield running


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """Run the tiny config locally and through the SLURM profile, side by side; the results
    folders and what squeue says of every SLURM job (rule -> partition, account, limits)."""
    tmp = tmp_path_factory.mktemp("slurm_profile")
    configfile = tmp / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(TINY))
    local, slurm = tmp / "local", tmp / "slurm"
    common = ("--configfile", str(configfile), "--config")
    local_run = snakemake("--cores", "2", *common, f"results_dir={local}", "--",
                          *targets(local), env=cluster.env(), log=tmp / "local.log")
    slurm_run = snakemake(
        "--profile", "profiles/slurm", *common, f"results_dir={slurm}",
        *command_line_resources(),
        # this cluster has no accounting database (sacct answers nothing): squeue
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-logdir", str(tmp / "slurm_logs"), "--slurm-keep-successful-logs",
        "--", *targets(slurm), env=cluster.env(), log=tmp / "slurm.log")
    finish({tmp / "slurm.log": slurm_run, tmp / "local.log": local_run}, cluster)
    jobs = {}
    for line in cluster.run("squeue", "--noheader", "--states=all",
                            "--format=%k|%P|%a|%l|%m|%T").splitlines():
        comment, partition, account, limit, memory, state = line.split("|")
        rule = comment.removeprefix("rule_").split("_wildcards")[0]
        jobs[rule] = {"partition": partition, "account": account, "runtime": minutes(limit),
                      "mem_mb": megabytes(memory), "state": state}
    return local, slurm, jobs


def test_slurm_profile_runs_give_the_records_of_a_local_run(runs):
    local, slurm, _ = runs
    expected = records(local)
    assert sorted(expected) == [f"{RUN}/result.json", "toy/result.json"]
    assert records(slurm) == expected


def test_slurm_profile_runs_train_the_weights_of_a_local_run(runs):
    local, slurm, _ = runs
    trained = [torch.load(results / RUN / "checkpoint.pt", map_location="cpu")
               for results in (local, slurm)]
    assert trained[0].keys() == trained[1].keys()
    for part in ("encoder", "model"):
        assert trained[0][part].keys() == trained[1][part].keys()
        assert all(torch.equal(trained[0][part][name], trained[1][part][name])
                   for name in trained[0][part])


def test_slurm_jobs_get_the_profiles_partitions_and_limits_and_the_command_lines_account(runs):
    _, _, jobs = runs
    settings = profile()
    defaults = {**settings["default-resources"], "slurm_partition": PARTITION}
    expected = {}
    for rule in ("pretrain", "toy"):
        resources = {**defaults, **settings["set-resources"].get(rule, {})}
        expected[rule] = {"partition": resources["slurm_partition"], "account": ACCOUNT,
                          "runtime": resources["runtime"], "mem_mb": resources["mem_mb"],
                          "state": "COMPLETED"}
    assert expected["pretrain"]["partition"] == "gpu" and expected["toy"]["partition"] == "debug"
    assert jobs == expected
