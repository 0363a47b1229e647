"""Pretraining CLI: resumable and deterministic, clear failure on NaN, DDP under torchrun."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.checkpoint import load_encoder
from repro.config import run_spec, untrained_spec
from repro.pretrain import (_last_good_epoch, build_parser, lr_at, main, pick_device,
                            save_untrained, train)

ROOT = Path(__file__).resolve().parent.parent


def _config(model_options=None, **pretrain):
    p = {"datasets": ["shapes"], "data_root": None,
         "backbone": {"arch": "resnet18", "cifar_stem": True, "width": 0.0625},
         "embedding_dim": 16, "temperature": 0.2, "epochs": 2, "batch_size": 16, "lr": 0.05,
         "momentum": 0.9, "weight_decay": 0.0005, "num_workers": 0, "threads": 1, "subset": 64}
    p.update(pretrain)
    return {"scale": "test", "seeds": [0],
            "models": {"ir": {"num_negatives": 16}, "moco": {"queue_size": 32},
                       "cmc": {"num_negatives": 16}, "simclr": {}, **(model_options or {})},
            "samplers": {"uniform": {"name": "uniform"},
                         "ring": {"name": "ring", "w_l": 0.5, "w_u": 0.95,
                                  "anneal_fraction": 0.5}},
            "pretrain": p}


def _losses(path):
    with open(path) as fh:
        return [(r["epoch"], r["step"], r["loss"], r["w_l"]) for r in csv.DictReader(fh)]


@pytest.mark.parametrize("model,augment", [("ir", "pil"), ("moco", "pil"), ("moco", "batch")])
def test_resume_after_interruption_reaches_the_same_result(tmp_path, model, augment):
    spec = run_spec(_config(augment=augment), model, "ring", "shapes", 0)
    straight = train(spec, tmp_path / "straight", progress_bar=False)
    assert train(spec, tmp_path / "split", progress_bar=False, stop_after_epoch=1) == {}
    assert not (tmp_path / "split" / "checkpoint.pt").exists()
    resumed = train(spec, tmp_path / "split", resume=True, progress_bar=False)
    assert resumed["metrics"] == straight["metrics"]
    assert _losses(tmp_path / "straight" / "log.csv") == _losses(tmp_path / "split" / "log.csv")
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _weights(path):
    return torch.load(path / "checkpoint.pt", weights_only=False)["model"]


def test_batch_augmented_run_trains_deterministically_and_differs_from_the_pil_run(tmp_path):
    """pretrain.augment: batch trains (a finite loss at every step), two runs give
    identical logs and weights, and the views differ from the PIL path's."""
    spec = run_spec(_config(augment="batch", epochs=2), "simclr", "uniform", "digits", 0)
    first = train(spec, tmp_path / "a", progress_bar=False)
    second = train(spec, tmp_path / "b", progress_bar=False)
    losses = [float(r[2]) for r in _losses(tmp_path / "a" / "log.csv")]
    assert len(losses) == 2 * (64 // 16) and all(torch.isfinite(torch.tensor(losses)))
    assert first["metrics"] == second["metrics"]
    assert _losses(tmp_path / "a" / "log.csv") == _losses(tmp_path / "b" / "log.csv")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    pil = run_spec(_config(augment="pil", epochs=2), "simclr", "uniform", "digits", 0)
    train(pil, tmp_path / "pil", progress_bar=False)
    assert _losses(tmp_path / "pil" / "log.csv") != _losses(tmp_path / "a" / "log.csv")
    c = _weights(tmp_path / "pil")
    assert a.keys() == c.keys() and not all(torch.equal(a[k], c[k]) for k in a)


def test_augment_is_part_of_the_run_identity_and_checked_by_the_schema():
    from repro.config import run_identity, validate_config
    from repro.results import config_hash

    hashes = {aug: config_hash(run_identity(run_spec(_config(**kw), "ir", "ring", "shapes", 0)))
              for aug, kw in (("absent", {}), ("pil", {"augment": "pil"}),
                              ("batch", {"augment": "batch"}))}
    assert hashes["batch"] != hashes["pil"] and hashes["batch"] != hashes["absent"]
    validate_config(_config(augment="batch"))
    config = _config(augment="batch")
    config["pretrain"]["per_dataset"] = {"imagenet": {"augment": "pil"}}
    validate_config(config)
    assert "augment" not in validate_config(_config())["pretrain"]  # no default filled in:
    # configs without the key keep the run identities (and checkpoints) they had
    with pytest.raises(ValueError, match=r"pretrain\.augment"):
        validate_config(_config(augment="gpu"))


def test_a_resumed_run_keeps_its_whole_log_when_log_csv_was_deleted(tmp_path):
    """Snakemake deletes a re-run job's declared outputs, log.csv among them."""
    spec = run_spec(_config(epochs=3), "ir", "ring", "shapes", 0)
    train(spec, tmp_path / "straight", progress_bar=False)
    train(spec, tmp_path / "split", progress_bar=False, stop_after_epoch=2)
    (tmp_path / "split" / "log.csv").unlink()
    train(spec, tmp_path / "split", resume=True, progress_bar=False)
    assert _losses(tmp_path / "straight" / "log.csv") == _losses(tmp_path / "split" / "log.csv")


def test_a_finished_run_rerun_after_its_outputs_were_deleted_rewrites_them_without_training(
        tmp_path, capsys):
    spec = run_spec(_config(), "moco", "ring", "shapes", 0)
    first = train(spec, tmp_path, progress_bar=False)
    log = _losses(tmp_path / "log.csv")
    model = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    for name in ("checkpoint.pt", "log.csv", "result.json"):
        (tmp_path / name).unlink()
    capsys.readouterr()
    again = train(spec, tmp_path, resume=True, progress_bar=False)
    assert "epoch 1/" not in capsys.readouterr().err  # nothing trained
    assert again["metrics"] == first["metrics"] and _losses(tmp_path / "log.csv") == log
    rebuilt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(model[k], rebuilt[k]) for k in model)


def test_an_unreadable_last_checkpoint_is_moved_aside_and_the_run_starts_afresh(tmp_path, capsys):
    spec = run_spec(_config(), "ir", "uniform", "shapes", 0)
    straight = train(spec, tmp_path / "straight", progress_bar=False)
    out = tmp_path / "split"
    train(spec, out, progress_bar=False, stop_after_epoch=1)
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[:len(data) // 2])
    resumed = train(spec, out, resume=True, progress_bar=False)
    assert "cannot be read" in capsys.readouterr().err
    assert (out / "last.pt.corrupt").read_bytes() == data[:len(data) // 2]
    assert resumed["metrics"] == straight["metrics"]


def test_cli_refuses_to_overwrite_a_last_checkpoint_without_resume(tmp_path, capsys):
    spec = run_spec(_config(), "ir", "uniform", "shapes", 0)
    train(spec, tmp_path, progress_bar=False, stop_after_epoch=1)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(SystemExit) as exit_:
        main(["--spec-json", json.dumps(spec), "--out", str(tmp_path), "--no-progress"])
    assert exit_.value.code == 2 and "--resume" in capsys.readouterr().err
    assert (tmp_path / "last.pt").read_bytes() == before


def test_a_cut_short_checkpoint_is_named_with_the_way_to_rebuild_it(tmp_path):
    from repro.checkpoint import load_checkpoint

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.raises(ValueError, match=r"checkpoint.pt cannot be read .*delete it"):
        load_checkpoint(path)


def test_lr_schedules_cosine_decays_to_zero_step_drops_tenfold_per_milestone_constant_holds():
    assert lr_at(0.03, 0.0) == pytest.approx(0.03) and lr_at(0.03, 1.0) == pytest.approx(0.0)
    assert lr_at(0.03, 0.5) == pytest.approx(0.015)
    steps = [lr_at(0.03, t, "step", (0.68, 0.83)) for t in (0.0, 0.679, 0.68, 0.829, 0.83, 1.0)]
    assert steps == pytest.approx([0.03, 0.03, 0.003, 0.003, 0.0003, 0.0003])
    assert lr_at(0.03, 0.9, "constant") == 0.03
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_at(0.03, 0.5, "linear")


def test_log_records_the_step_schedule_the_config_asks_for(tmp_path):
    spec = run_spec(_config(epochs=4, lr_schedule="step", lr_milestones=[0.5]), "simclr",
                    "uniform", "shapes", 0)
    train(spec, tmp_path, progress_bar=False)
    with open(tmp_path / "log.csv") as fh:
        lrs = sorted({(int(r["epoch"]), round(float(r["lr"]), 8)) for r in csv.DictReader(fh)})
    assert lrs == [(0, 0.05), (1, 0.05), (2, 0.005), (3, 0.005)]


def test_outputs_checkpoint_log_and_record(tmp_path):
    spec = run_spec(_config(epochs=1), "simclr", "uniform", "shapes", 0)
    record = train(spec, tmp_path, progress_bar=False)
    assert record["stage"] == "pretrain" and record["scale"] == "test"
    assert json.loads((tmp_path / "result.json").read_text())["metrics"]["final_loss"] > 0
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert {"encoder", "backbone", "model", "config", "dataset_size"} <= set(ckpt)
    assert not any(k.startswith("fc.") for k in ckpt["encoder"])
    rows = _losses(tmp_path / "log.csv")
    assert len(rows) == 64 // 16 and all(r[3] == "" for r in rows)  # uniform: no w_l


def test_untrained_checkpoint_holds_the_weights_training_starts_from(tmp_path):
    """With lr = 0 training leaves every weight where the seed put it (only BatchNorm's running
    statistics move), so the untrained baseline must hold exactly those weights."""
    config = _config(epochs=1, lr=0.0, weight_decay=0.0)
    train(run_spec(config, "ir", "uniform", "shapes", 3), tmp_path / "trained", progress_bar=False)
    save_untrained(untrained_spec(config, "ir", "shapes", 3), tmp_path / "untrained")
    save_untrained(untrained_spec(config, "ir", "shapes", 4), tmp_path / "other_seed")
    trained, untrained, other = (
        torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["encoder"]
        for name in ("trained", "untrained", "other_seed"))
    weights = [k for k in untrained if k.endswith("weight")]
    assert weights and all(torch.equal(trained[k], untrained[k]) for k in weights)
    assert not torch.equal(untrained["conv1.weight"], other["conv1.weight"])
    assert sorted(p.name for p in (tmp_path / "untrained").iterdir()) == ["checkpoint.pt"]
    loaded = load_encoder(tmp_path / "untrained" / "checkpoint.pt").state_dict()
    assert loaded.keys() == untrained.keys()
    assert all(torch.equal(loaded[k], untrained[k]) for k in untrained)


def test_ring_log_records_the_annealed_w_l(tmp_path):
    spec = run_spec(_config(epochs=2), "ir", "ring", "shapes", 0)
    train(spec, tmp_path, progress_bar=False)
    w_l = [float(r[3]) for r in _losses(tmp_path / "log.csv")]
    assert w_l[0] == 0.0 and w_l == sorted(w_l) and w_l[-1] == pytest.approx(0.5)


def test_resume_ignores_a_last_checkpoint_from_another_config(tmp_path, capsys):
    train(run_spec(_config(epochs=2), "ir", "uniform", "shapes", 0), tmp_path,
          progress_bar=False, stop_after_epoch=1)
    other = run_spec(_config(epochs=1, lr=0.01), "ir", "uniform", "shapes", 0)
    train(other, tmp_path, resume=True, progress_bar=False)
    assert "another configuration" in capsys.readouterr().err
    assert len(list(tmp_path.glob("last.*.pt"))) == 1  # the old state is kept, not lost


def test_nan_loss_stops_with_a_clear_message(tmp_path, capsys):
    spec = run_spec(_config(temperature=1e-40), "moco", "uniform", "shapes", 0)
    code = main(["--spec-json", json.dumps(spec), "--out", str(tmp_path), "--no-progress"])
    assert code == 3
    err = capsys.readouterr().err
    assert "loss became nan" in err and "temperature" in err
    assert not (tmp_path / "result.json").exists()


def test_missing_dataset_names_path_and_how_to_get_it(tmp_path, capsys):
    spec = run_spec(_config(data_root=str(tmp_path / "nowhere")), "ir", "uniform", "shapes", 0)
    spec["dataset"] = "cifar10"
    code = main(["--spec-json", json.dumps(spec), "--out", str(tmp_path / "run"),
                 "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "cifar" in err.lower()


def test_nan_in_the_first_epoch_says_no_epoch_completed_instead_of_naming_last_pt(tmp_path,
                                                                                  capsys):
    spec = run_spec(_config(temperature=1e-40), "moco", "uniform", "shapes", 0)
    assert main(["--spec-json", json.dumps(spec), "--out", str(tmp_path), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "no epoch completed" in err and "last.pt" not in err
    assert not (tmp_path / "last.pt").exists()


def test_last_good_epoch_is_named_only_when_an_epoch_finished_and_last_pt_exists(tmp_path):
    last = tmp_path / "last.pt"
    assert "no epoch completed" in _last_good_epoch(last, 0)
    assert str(last) not in _last_good_epoch(last, 2)  # finished epochs, but nothing saved
    last.write_bytes(b"")
    assert "no epoch completed" in _last_good_epoch(last, 0)  # a stale file from another run
    assert _last_good_epoch(last, 2) == f"the last good epoch (2) is in {last}"


def _write_yaml(path, config):
    import yaml

    path.write_text(yaml.safe_dump(config))
    return str(path)


def _merged(config, edit):
    """``config`` with ``edit``'s leaves written over it (nested dicts merged)."""
    out = dict(config)
    for key, value in edit.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) else value
    return out


@pytest.mark.parametrize("flags,edit,expected", [
    ({"--dataset": "cifar-10"}, {}, "unknown dataset 'cifar-10'"),
    ({"--model": "resnet"}, {}, "model 'resnet' is not in the config"),
    ({"--config": "nowhere.yaml"}, {}, "no config file"),
    ({}, {"pretrain": {"epochs": "many"}}, "pretrain.epochs"),
    ({}, {"samplers": {"ring": {"w_l": 0.99, "w_u": 0.5}}}, "w_l < w_u"),
    ({"--device": "cuda"}, {}, "no CUDA device"),
], ids=["unknown-dataset", "unknown-model", "missing-config", "invalid-config",
        "w_l-above-w_u", "cuda-without-gpu"])
def test_pretrain_cli_reports_ordinary_mistakes_as_an_error_message_with_exit_2(
        tmp_path, capsys, monkeypatch, flags, edit, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    args = {"--config": _write_yaml(tmp_path / "config.yaml", _merged(_config(), edit)),
            "--model": "ir", "--sampler": "ring", "--dataset": "shapes",
            "--out": str(tmp_path / "run"), **flags}
    assert main([x for kv in args.items() for x in kv] + ["--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_data_root_option_is_where_a_real_dataset_is_looked_for(tmp_path, capsys):
    config = _write_yaml(tmp_path / "config.yaml", _config())
    code = main(["--config", config, "--model", "ir", "--sampler", "uniform", "--dataset",
                 "cifar10", "--data-root", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err


def test_auto_device_is_cuda_only_when_visible_and_the_job_has_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert pick_device("auto", gpus=1) == torch.device("cuda", 0)
    assert pick_device("auto", gpus=None) == torch.device("cuda", 0)  # no GPU setting: visible
    assert pick_device("auto", gpus=0) == torch.device("cpu")
    assert pick_device("cpu", gpus=1) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert pick_device("cuda") == torch.device("cuda", 3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", gpus=1) == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")


def test_help_describes_the_outputs_and_the_auto_device_rule():
    text = build_parser().format_help()
    for output in ("checkpoint.pt", "last.pt", "log.csv", "result.json"):
        assert output in text
    assert "--device auto: CUDA when pretrain.gpus > 0" in text
    assert "cifar10" in text and "--data-root" in text


def test_help_explains_the_cli():
    proc = subprocess.run([sys.executable, "-m", "repro.pretrain", "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "--resume" in proc.stdout and "torchrun" not in proc.stderr


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tmp_path):
    spec = run_spec(_config(epochs=1, batch_size=16), "moco", "ring", "shapes", 0)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "repro.pretrain",
         "--spec-json", json.dumps(spec), "--out", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["extra"]["world_size"] == 2
    # 64 items, global batch 16 -> 4 steps, each rank logs... rank 0 writes the log.
    assert len(_losses(tmp_path / "log.csv")) == 4


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL the CLI after its first checkpoint; `--resume` then ends where a run that was
    never killed ends, weight for weight."""
    import signal
    import time

    spec = run_spec(_config(epochs=4, subset=128), "ir", "ring", "shapes", 0)
    straight = train(spec, tmp_path / "straight", progress_bar=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "repro.pretrain", "--spec-json", json.dumps(spec),
           "--out", str(out), "--resume", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoint.pt").exists()
    epoch = torch.load(out / "last.pt", weights_only=False)["epoch"]
    assert 1 <= epoch < 4
    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((out / "result.json").read_text())["metrics"] == straight["metrics"]


def test_linear_eval_of_an_untrained_spec_evaluates_the_saved_random_init_in_one_process(
        tmp_path):
    """The workflow's linear_eval_untrained job: `--untrained-spec` saves the network the seed
    initialises (as save_untrained does) beside the record and evaluates exactly it."""
    import json

    from repro.linear_eval import evaluate, main as linear_eval_main

    spec = untrained_spec(_config(), "ir", "shapes", 3)
    flags = ["--dataset", "shapes", "--epochs", "2", "--seed", "1", "--device", "cpu"]
    assert linear_eval_main(["--untrained-spec", json.dumps(spec), *flags,
                             "--out", str(tmp_path / "one")]) == 0
    save_untrained(spec, tmp_path / "separate")
    joined = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["encoder"]
    separate = torch.load(tmp_path / "separate" / "checkpoint.pt", weights_only=False)["encoder"]
    assert joined.keys() == separate.keys()
    assert all(torch.equal(joined[k], separate[k]) for k in joined)
    record = json.loads((tmp_path / "one" / "result.json").read_text())
    reference = evaluate(tmp_path / "separate" / "checkpoint.pt", "shapes", tmp_path / "eval",
                         epochs=2, seed=1, device="cpu")
    assert record["sampler"] == "untrained"
    assert record["metrics"]["top1"] == reference["metrics"]["top1"]


def test_pretraining_and_evaluation_records_carry_the_same_sampler_block(tmp_path):
    """One sampler / estimator block in every stage: the label's config block (estimator
    included); the built sampler's state at the end of training goes to extra."""
    import json

    from repro.linear_eval import evaluate

    config = _config(epochs=1)
    config["samplers"]["hcl"] = {"name": "uniform",
                                 "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}
    spec = run_spec(config, "moco", "hcl", "shapes", 0)
    record = train(spec, tmp_path / "run", progress_bar=False)
    evaluated = evaluate(tmp_path / "run" / "checkpoint.pt", "shapes", tmp_path / "eval",
                         epochs=1, device="cpu")
    assert record["sampler_params"] == evaluated["sampler_params"] == spec["sampler"]
    assert record["sampler_params"]["estimator"]["name"] == "hard"
    assert record["extra"]["sampler_state"]["sampler"] == "uniform"
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk["sampler_params"] == spec["sampler"]


def test_a_run_folder_another_process_is_writing_is_refused_naming_the_holder(tmp_path, capsys):
    """Two workflows sharing a results folder never train the same run at once."""
    import json

    from repro.io import run_lock
    from repro.pretrain import main

    spec = run_spec(_config(epochs=1), "ir", "uniform", "shapes", 0)
    with run_lock(tmp_path / "run"):
        code = main(["--spec-json", json.dumps(spec), "--out", str(tmp_path / "run"),
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 4 and "is being written by pid" in err and "its own results_dir" in err
    assert not (tmp_path / "run" / "last.pt").exists()
    # the lock goes with its holder: the same command now trains
    assert main(["--spec-json", json.dumps(spec), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
