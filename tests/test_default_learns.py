"""The embedded default is a study, not a smoke test: every base model, trained exactly as
config/default.yaml trains it, ends above its own untrained network in linear evaluation.

One seed and the NCE (uniform) sampler, on digits (real data) for every model that runs on
digits and on shapes for the one that does not (CMC: its L / ab views need colour). The test
asserts the property (trained beats untrained, both measured here), never an accuracy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.config import load_config, pretrain_grid, run_spec, untrained_spec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = load_config(ROOT / "config" / "default.yaml")


def _cases() -> list[tuple[str, str]]:
    """One (dataset, model) per model of the default: digits where the model runs on it."""
    grid = pretrain_grid(DEFAULT)
    cases = []
    for model in DEFAULT["models"]:
        datasets = [d for d, m in grid if m == model]
        cases.append(("digits" if "digits" in datasets else datasets[0], model))
    return cases


def test_every_default_model_is_pretrained_on_digits_unless_it_needs_colour():
    assert _cases() == [("digits", "ir"), ("shapes", "cmc"), ("digits", "moco"),
                        ("digits", "simclr")]


def _top1(checkpoint: Path, dataset: str, out: Path) -> float:
    from repro.linear_eval import evaluate

    le = DEFAULT["linear_eval"]
    record = evaluate(checkpoint, dataset, out, epochs=le["epochs"], lr=le["lr"],
                      weight_decay=le["weight_decay"], batch_size=le["batch_size"],
                      device="cpu")
    return record["metrics"]["top1"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset, model", _cases(), ids=lambda x: str(x))
def test_default_training_beats_the_models_own_untrained_network(tmp_path, dataset, model):
    from repro.pretrain import save_untrained, train

    spec = run_spec(DEFAULT, model, "uniform", dataset, 0)
    train(spec, tmp_path / "trained", resume=False, device="cpu", progress_bar=False)
    save_untrained(untrained_spec(DEFAULT, model, dataset, 0), tmp_path / "untrained")
    trained = _top1(tmp_path / "trained" / "checkpoint.pt", dataset, tmp_path / "eval_t")
    untrained = _top1(tmp_path / "untrained" / "checkpoint.pt", dataset, tmp_path / "eval_u")
    assert trained > untrained, (f"{model} on {dataset}: trained {trained:.1f}% <= untrained "
                                 f"{untrained:.1f}%")
