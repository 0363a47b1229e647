"""pretrain.precision: bf16 autocast close to fp32, fp32 unchanged, precision in the identity,
the ring's selection made on float32 similarities whatever the precision."""

import warnings

import pytest
import torch

from repro.config import (DEFAULT_PRECISION, PRECISIONS, load_config, load_schema, run_identity,
                          run_spec)
from repro.models.base import negatives_from_pool, negatives_from_similarities
from repro.precision import autocast, grad_scaler, precision_of, uses_channels_last
from repro.pretrain import train
from repro.results import config_hash
from repro.samplers import RingSampler

from test_models import SAMPLERS, _batch, _model
from test_pretrain import ROOT, _config

CPU = torch.device("cpu")


def test_schema_declares_the_precisions_and_the_default_the_code_uses():
    schema = load_schema()["properties"]["pretrain"]["properties"]["precision"]
    assert tuple(schema["enum"]) == PRECISIONS and schema["default"] == DEFAULT_PRECISION
    assert precision_of({}) == "fp32" and precision_of({"precision": "bf16"}) == "bf16"
    with pytest.raises(ValueError, match="choose one of"):
        precision_of({"precision": "fp8"})


def test_fp32_leaves_every_default_identity_as_it_was_and_bf16_is_another_run():
    config = load_config(ROOT / "config" / "default.yaml")
    spec = run_spec(config, "moco", "ring", "shapes", 0)
    assert spec["pretrain"]["precision"] == "fp32"  # filled in from the schema
    before = {**spec, "pretrain": {k: v for k, v in spec["pretrain"].items()
                                   if k not in ("precision", "log_every")}}
    assert run_identity(spec) == run_identity(before)  # a run from before the key: same hash
    bf16 = {**spec, "pretrain": {**spec["pretrain"], "precision": "bf16"}}
    assert run_identity(bf16)["pretrain"]["precision"] == "bf16"
    assert config_hash(run_identity(bf16)) != config_hash(run_identity(spec))
    every = {**spec, "pretrain": {**spec["pretrain"], "log_every": 1}}  # how, not what
    assert config_hash(run_identity(every)) == config_hash(run_identity(spec))


def test_paper_config_trains_in_bf16():
    config = load_config(ROOT / "config" / "paper.yaml")
    assert run_spec(config, "simclr", "ring", "cifar10", 0)["pretrain"]["precision"] == "bf16"


@pytest.mark.parametrize("name", ["ir", "cmc", "moco", "simclr"])
@pytest.mark.parametrize("sampler", ["uniform", "ring"])
def test_bf16_autocast_loss_is_within_two_percent_of_the_fp32_loss(name, sampler):
    batch = _batch()
    losses = {}
    for precision in ("fp32", "bf16"):
        model = _model(name, SAMPLERS[sampler])  # same seed: same weights, bank and queue
        with autocast(precision, CPU):
            out = model(batch, progress=0.5, generator=torch.Generator().manual_seed(0))
        assert out["loss"].dtype == torch.float32  # the estimator runs in float32
        losses[precision] = out["loss"].item()
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)


def _ring():
    return RingSampler(w_l=0.9, w_u=0.99, num_negatives=None)


def _anchors_and_pool(seed, batch=64, pool=8192, dim=16):
    g = torch.Generator().manual_seed(seed)
    anchors = torch.nn.functional.normalize(torch.randn(batch, dim, generator=g), dim=1)
    return anchors, torch.nn.functional.normalize(torch.randn(pool, dim, generator=g), dim=1)


@pytest.mark.parametrize("seed", range(5))
def test_ring_negatives_under_bf16_autocast_equal_the_fp32_ring_exactly(seed):
    anchors, pool = _anchors_and_pool(seed)
    plain = negatives_from_pool(_ring(), anchors, pool, progress=1.0)
    with autocast("bf16", CPU):
        mixed = negatives_from_pool(_ring(), anchors, pool, progress=1.0)
        per_anchor = negatives_from_similarities(_ring(), anchors @ pool.t(), progress=1.0)
    assert mixed.dtype == torch.float32 and torch.equal(mixed, plain)
    # SimCLR's per-anchor pools: a bf16 product is ranked after a cast to float32
    assert per_anchor.dtype == torch.float32


def test_bf16_similarities_would_move_the_ring_which_is_why_it_ranks_float32():
    anchors, pool = _anchors_and_pool(0)
    sims = anchors @ pool.t()

    def members(s):
        idx = _ring().select(s, batch_size=s.shape[0], pool_size=s.shape[1], progress=1.0)
        return idx.sort(1).values

    # bf16 keeps 8 bits of mantissa: cosines tie by the hundred at the ring's edges, and
    # which of the tied candidates fall inside the ring changes
    assert not torch.equal(members(sims), members(sims.bfloat16().float()))
    assert torch.equal(members(sims), members(sims.clone()))


def test_fp16_needs_cuda_and_only_fp16_gets_a_loss_scaler():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        autocast("fp16", CPU)
    assert grad_scaler("bf16", CPU) is None and grad_scaler("fp32", CPU) is None
    assert not uses_channels_last("bf16", CPU)
    assert uses_channels_last("bf16", torch.device("cuda")) and \
        not uses_channels_last("fp32", torch.device("cuda"))


def test_an_unknown_precision_is_refused_naming_the_choices():
    for call in (lambda: autocast("fp8", CPU), lambda: precision_of({"precision": "fp8"})):
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == f"unknown precision 'fp8'; choose one of {list(PRECISIONS)}"


def test_fp16_gets_a_cuda_loss_scaler_and_is_refused_on_the_cpu():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*use bf16 or fp32 on the CPU"):
        grad_scaler("fp16", CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without CUDA here the scaler turns itself off
        scaler = grad_scaler("fp16", torch.device("cuda"))
    assert isinstance(scaler, torch.amp.GradScaler) and scaler._device == "cuda"


def test_a_bf16_run_trains_on_cpu_records_its_precision_and_stays_near_fp32(tmp_path):
    records = {}
    for precision in ("fp32", "bf16"):
        spec = run_spec(_config(augment="batch", precision=precision, epochs=1), "moco",
                        "ring", "shapes", 0)
        records[precision] = train(spec, tmp_path / precision, progress_bar=False)
    assert records["bf16"]["config"]["pretrain"]["precision"] == "bf16"
    assert "precision" not in records["fp32"]["config"]["pretrain"]
    assert records["bf16"]["config_hash"] != records["fp32"]["config_hash"]
    fp32, bf16 = (records[p]["metrics"]["final_loss"] for p in ("fp32", "bf16"))
    assert bf16 == pytest.approx(fp32, rel=0.03)


def test_features_are_extracted_in_the_run_precision_on_cuda_and_in_fp32_on_the_cpu():
    from repro.precision import inference_precision

    bf16_run = {"pretrain": {"precision": "bf16"}}
    assert inference_precision(bf16_run, torch.device("cuda")) == "bf16"
    assert inference_precision(bf16_run, CPU) == "fp32"
    assert inference_precision({"pretrain": {}}, torch.device("cuda")) == "fp32"


def test_bf16_frozen_features_are_float32_and_close_to_the_fp32_features():
    import numpy as np

    from repro.linear_eval import extract_features
    from transfer.fewshot.features import encode_images

    model = _model("moco").eval()
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (12, 16, 16, 3), dtype=torch.uint8, generator=g).numpy()
    fp32, bf16 = (encode_images(model.encoder, images, (0.5,) * 3, (0.25,) * 3, batch_size=5,
                                precision=p) for p in ("fp32", "bf16"))
    assert fp32.dtype == bf16.dtype == np.float32
    assert np.abs((fp32 * bf16).sum(1) - 1.0).max() < 0.01  # unit rows, cosine near 1
    data = [(torch.randn(3, 16, 16, generator=g), i % 2) for i in range(6)]
    (x32, y32), (x16, y16) = (extract_features(model, data, batch_size=4, precision=p)
                              for p in ("fp32", "bf16"))
    assert x16.dtype == torch.float32 and torch.equal(y32, y16)
    torch.testing.assert_close(x16, x32, rtol=0.05, atol=0.05)
