"""The step log held on the device: rows equal to a per-step read, NaN named by its own step."""

import csv
import math

import pytest
import torch

from repro.config import load_schema, run_spec
from repro.pretrain import TrainingDiverged, train
from repro.steplog import DEFAULT_LOG_EVERY, NonFiniteLoss, StepLog, format_row

from test_pretrain import _config


def _meta(step):
    return {"epoch": 0, "step": step, "w_l": "", "lr": 0.1, "time_s": 0.0}


def test_rows_come_back_only_every_n_steps_and_equal_a_per_step_read():
    losses = [torch.tensor(v) for v in (2.5, 2.25, 2.125, 1.9, 1.7)]
    log = StepLog(every=2)
    returned = [log.add(loss, _meta(i)) for i, loss in enumerate(losses)]
    assert [r is None for r in returned] == [True, False, True, False, True]
    rows = [row for r in returned if r for row in r] + log.flush()
    assert rows == [format_row(loss.item(), _meta(i)) for i, loss in enumerate(losses)]
    assert len(log) == 0 and log.flush() == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("planted", [0, 3, 6])
def test_a_planted_non_finite_loss_is_named_by_its_own_step_not_the_read_back_step(bad, planted):
    log = StepLog(every=7)  # the read-back comes at step 6, after every planted step
    with pytest.raises(NonFiniteLoss) as caught:
        for step in range(7):
            loss = torch.tensor(bad if step >= planted else 1.0 + step)  # NaN sticks, as in training
            log.add(loss, _meta(step))
    assert caught.value.meta["step"] == planted
    assert f"step {planted}" in str(caught.value)
    assert math.isnan(caught.value.value) if math.isnan(bad) else caught.value.value == bad


def test_the_non_finite_error_names_the_epoch_counted_from_one():
    """``meta["epoch"]`` is 0-based in the loop; the message, as log.csv's readers count, is
    1-based, and the step is the step."""
    error = NonFiniteLoss(float("nan"), {**_meta(4), "epoch": 2})
    assert str(error) == "loss became nan at epoch 3, step 4"


def test_a_log_row_writes_each_column_at_its_precision_and_no_w_l_without_a_ring():
    meta = {"epoch": 1, "step": 7, "w_l": 0.123456, "lr": 0.0123456789, "time_s": 3.14159}
    assert format_row(1.23456789, meta) == {"epoch": 1, "step": 7, "loss": "1.234568",
                                            "w_l": "0.1235", "lr": "0.0123457",
                                            "time_s": "3.14"}
    assert format_row(1.0, _meta(0))["w_l"] == ""


def test_log_every_must_be_positive_and_its_default_is_the_schema_default():
    with pytest.raises(ValueError, match="at least 1"):
        StepLog(every=0)
    schema = load_schema()["properties"]["pretrain"]["properties"]["log_every"]
    assert schema["default"] == DEFAULT_LOG_EVERY


def _rows(path):
    with open(path) as fh:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(fh)]


@pytest.mark.parametrize("model", ["cmc", "simclr"])
def test_log_csv_has_one_row_per_step_equal_whether_read_every_step_or_every_seven(tmp_path,
                                                                                   model):
    rows = {}
    for every in (1, 7):  # 4 steps per epoch: a read-back crosses the epoch's end
        spec = run_spec(_config(augment="batch", log_every=every), model, "ring", "shapes", 0)
        train(spec, tmp_path / str(every), progress_bar=False)
        rows[every] = _rows(tmp_path / str(every) / "log.csv")
    assert len(rows[1]) == 2 * 64 // 16
    assert [int(r["step"]) for r in rows[7]] == list(range(8))
    assert rows[1] == rows[7]


def test_a_diverging_run_names_the_same_step_whatever_log_every_is(tmp_path):
    named = {}
    for every in (1, 50):
        spec = run_spec(_config(augment="batch", lr=1e6, log_every=every), "simclr", "uniform",
                        "shapes", 0)
        with pytest.raises(TrainingDiverged) as caught:
            train(spec, tmp_path / str(every), progress_bar=False)
        named[every] = str(caught.value)
        assert not (tmp_path / str(every) / "last.pt").exists()  # nothing saved past the NaN
    assert "loss became nan at epoch 1, step 3 " in named[1]
    assert named[1] == named[50]
