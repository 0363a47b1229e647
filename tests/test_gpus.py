"""GPU claiming: concurrent jobs on one multi-GPU machine get different GPUs."""

import os
import subprocess
import sys
import textwrap

import pytest

from repro.gpus import claim, main


@pytest.fixture
def no_pinned_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def _hold(lock_dir, n, total):
    """Another job: a process that claims n of total GPUs and keeps them until killed."""
    code = textwrap.dedent(f"""
        import os, sys, time
        os.environ.pop("CUDA_VISIBLE_DEVICES", None); os.environ.pop("LOCAL_RANK", None)
        from repro.gpus import claim
        print(claim({n}, total={total}, lock_dir={str(lock_dir)!r}), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_second_job_gets_the_gpus_the_first_does_not_hold(tmp_path, no_pinned_gpus,
                                                             monkeypatch):
    other, held = _hold(tmp_path, 2, 3)
    try:
        assert held == "[0, 1]"
        assert claim(1, total=3, lock_dir=tmp_path) == [2]
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    finally:
        other.kill()
        other.wait()


def test_a_job_waits_while_too_few_gpus_are_free_and_says_how_to_avoid_it(tmp_path,
                                                                          no_pinned_gpus):
    other, _ = _hold(tmp_path, 2, 3)
    try:
        with pytest.raises(TimeoutError, match="--resources gpu=3"):
            claim(2, total=3, lock_dir=tmp_path, timeout_s=0.3, poll_s=0.1)
    finally:
        other.kill()
        other.wait()
    assert claim(2, total=3, lock_dir=tmp_path, timeout_s=5, poll_s=0.1) == [0, 1]  # freed


def test_gpus_already_decided_by_slurm_or_torchrun_or_absent_are_left_alone(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert claim(1, total=8, lock_dir=tmp_path) is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert claim(1, total=8, lock_dir=tmp_path) is None
    monkeypatch.delenv("LOCAL_RANK")
    assert claim(1, total=0, lock_dir=tmp_path) is None
    assert claim(0, total=8, lock_dir=tmp_path) is None


def test_asking_for_more_gpus_than_the_machine_has_names_the_setting(tmp_path, no_pinned_gpus):
    with pytest.raises(ValueError, match="pretrain.gpus"):
        claim(4, total=2, lock_dir=tmp_path)


def test_the_wrapper_runs_the_command_and_returns_its_exit_status():
    assert main(["0", "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert main(["two", "--", "true"]) == 2
