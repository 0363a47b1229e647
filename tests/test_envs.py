"""The workflow as the Snakemake catalog lints it, and the conda environment every rule names,
consistent with pyproject.toml and environment.yml (conda is not on these machines: the files
are checked, and Snakemake's own linter checks the rules)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _pip(env):
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pip[0]["pip"] if pip else []


def test_the_rules_conda_env_pins_exactly_the_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    detectron2 = project["optional-dependencies"]["detectron2"]  # the detection jobs' backend
    env = yaml.safe_load((ROOT / "envs" / "repro.yaml").read_text())
    assert _pip(env) == deps + detectron2
    developer = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python and python[0] in developer["dependencies"]
    pins = {d for d in _pip(developer) if "==" in d}  # environment.yml's own pins agree too
    assert pins <= set(deps)
    extras = re.search(r"^-e \.\[(.*)\]$", _pip(developer)[-1]).group(1).split(",")
    assert "detectron2" in extras and set(extras) <= set(project["optional-dependencies"])


@pytest.mark.slow
def test_snakemake_lint_finds_nothing():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    # every rule has conda:, log: and gets its values through params; helpers live in
    # rules/common.smk, rules in the other rule files
    findings = set(re.findall(r"^    \* (.+?):?$", proc.stdout + proc.stderr, flags=re.M))
    assert proc.returncode == 0 and not findings, findings


def test_rule_files_hold_rules_only_and_common_smk_holds_no_rule():
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        if smk.name == "common.smk":
            assert not re.search(r"^\s*rule\b", text, flags=re.M), smk
        else:
            assert not re.search(r"^\s*def ", text, flags=re.M), smk


@pytest.mark.slow
def test_jobs_run_the_venvs_python_and_conda_deployment_builds_the_rules_env(tmp_path):
    target = f"{tmp_path}/toy/result.json"
    plain = subprocess.run([SNAKEMAKE, "-n", "-p", target, "--config", f"results_dir={tmp_path}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert f"{sys.executable} -m repro.toy" in plain.stdout
    conda = subprocess.run([SNAKEMAKE, "-n", "-p", target, "--software-deployment-method",
                            "conda", "--config", f"results_dir={tmp_path}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    out = conda.stdout + conda.stderr
    if conda.returncode != 0:  # no conda here: Snakemake stops when it builds the rule's env
        assert "Is conda installed" in out
    else:  # with conda, the job runs the env's own python
        assert re.search(r"^\s*python -m repro\.toy", conda.stdout, flags=re.M)


@pytest.mark.slow
def test_make_tests_workers_keep_each_one_worker_module_together(tmp_path):
    """make test's scheduler (tests/conftest.py): the tests of a file of ONE_WORKER_MODULES
    share one worker (one SLURM cluster, set up once). A copy of the suite's conftest runs them
    on two workers; they are collected first, so one unit each (the bug) would hand the first
    two to the two workers before any test ran."""
    import shutil

    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "tests").mkdir()
    body = "import time\n\n" + "".join(
        f"def test_{i}():\n    time.sleep(0.3)\n\n\n" for i in range(4))
    (tmp_path / "tests" / "test_slurm_profile.py").write_text(body)
    (tmp_path / "tests" / "test_zz_other.py").write_text(body)  # collected after
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
                           "-v", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "scheduling tests via OneWorkerModules" in proc.stdout
    ran = re.findall(r"\[(gw\d)\].*PASSED tests/(test_\w+)\.py::test_\d", proc.stdout)
    assert len(ran) == 8, proc.stdout
    assert len({w for w, f in ran if f == "test_slurm_profile"}) == 1, proc.stdout
