"""MoCHi (repro/negatives/mochi.py): hard negative mixing over a queue or bank."""

import pytest
import torch
import torch.nn.functional as F

from repro.models.base import negatives_from_pool
from repro.negatives.mochi import MochiSampler, mix_hard_negatives
from repro.samplers import SAMPLERS, UniformSampler, build_sampler


def _orthonormal_pool(p: int, d: int):
    return torch.eye(d)[:p]  # c_j = e_j: a mix's non-zero coordinates name its sources


def test_mochi_is_registered_from_its_own_module_and_built_from_config():
    assert SAMPLERS["mochi"] is MochiSampler
    sampler = build_sampler({"name": "mochi", "n_hard": 8, "s": 4, "s_prime": 2,
                             "num_negatives": None})
    assert (sampler.n_hard, sampler.s, sampler.s_prime) == (8, 4, 2)
    assert MochiSampler.describe({"n_hard": 8, "s": 4, "s_prime": 2}) == "MoCHi (8, 4, 2)"


def test_pair_mixes_draw_from_exactly_the_anchors_n_hardest_candidates_and_all_of_them():
    d, n_hard = 12, 4
    pool = _orthonormal_pool(d, d)
    g = torch.Generator().manual_seed(0)
    anchor = F.normalize(torch.arange(d, 0, -1, dtype=torch.float32), dim=0)[None]  # e_0 hardest
    mixed = mix_hard_negatives(anchor, pool, n_hard, s=400, s_prime=0, generator=g)[0]
    used = set((mixed.abs() > 1e-6).nonzero()[:, 1].tolist())
    assert used == set(range(n_hard))  # never outside H(q), and every member of H(q) is drawn
    assert torch.allclose(mixed.norm(dim=1), torch.ones(400))


def test_with_one_hard_candidate_pair_mixes_are_that_candidate():
    pool = F.normalize(torch.randn(10, 6, generator=torch.Generator().manual_seed(1)), dim=1)
    anchor = pool[3:4] + 0.01
    anchor = F.normalize(anchor, dim=1)
    mixed = mix_hard_negatives(anchor, pool, n_hard=1, s=5, s_prime=0)
    hardest = (anchor @ pool.t()).argmax()
    assert torch.allclose(mixed[0], pool[hardest].expand(5, -1), atol=1e-6)


def test_query_mixes_keep_the_querys_share_below_one_half_and_use_the_whole_range():
    d = 8
    pool = _orthonormal_pool(d, d)[1:]  # candidates orthogonal to the query e_0
    query = torch.eye(d)[:1]
    mixed = mix_hard_negatives(query, pool, n_hard=3, s=0, s_prime=2000,
                               generator=torch.Generator().manual_seed(2))[0]
    q_share = mixed[:, 0]
    c_share = mixed[:, 1:].sum(dim=1)  # one candidate coordinate is non-zero
    beta = q_share / (q_share + c_share)  # normalisation cancels in the ratio
    assert beta.max() < 0.5 and beta.min() >= 0.0
    assert beta.max() > 0.45 and beta.min() < 0.05  # beta ~ U(0, 0.5), not a fixed value


def test_mochi_negatives_are_the_uniform_ones_plus_s_plus_s_prime_synthetic_ones():
    g = torch.Generator().manual_seed(3)
    anchors = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    pool = F.normalize(torch.randn(30, 8, generator=g), dim=1)
    mochi = MochiSampler(n_hard=6, s=4, s_prime=3)
    uniform = UniformSampler()
    got = negatives_from_pool(mochi, anchors, pool, progress=1.0,
                              generator=torch.Generator().manual_seed(4))
    plain = negatives_from_pool(uniform, anchors, pool, progress=1.0,
                                generator=torch.Generator().manual_seed(4))
    assert got.shape == (5, 30 + 4 + 3)
    torch.testing.assert_close(got[:, :30], plain)
    # synthetic points mixed from the 6 hardest are harder than the average pool entry
    assert got[:, 30:34].mean() > plain.mean()


def test_the_gradient_reaches_the_anchor_but_not_the_pool_through_synthetic_negatives():
    g = torch.Generator().manual_seed(5)
    anchors = F.normalize(torch.randn(3, 8, generator=g), dim=1).requires_grad_()
    pool = F.normalize(torch.randn(20, 8, generator=g), dim=1).requires_grad_()
    sims = MochiSampler(n_hard=5, s=4, s_prime=2).synthesize(anchors, pool, generator=g)
    sims.sum().backward()
    assert anchors.grad is not None and anchors.grad.abs().sum() > 0
    assert pool.grad is None


@pytest.mark.parametrize("options, names", [
    ({"n_hard": 0}, "n_hard"), ({"s": 0, "s_prime": 0}, "s and s_prime"),
    ({"s": -1}, "s and s_prime"), ({"s_prime": -1}, "s and s_prime")])
def test_bad_mochi_options_are_refused_naming_the_option(options, names):
    with pytest.raises(ValueError, match=names):
        MochiSampler(**options)


@pytest.mark.parametrize("options", [{"n_hard": 1}, {"s": 0, "s_prime": 1},
                                     {"s": 1, "s_prime": 0}, {"s": 3, "s_prime": 3}])
def test_mochi_options_at_their_bounds_are_accepted(options):
    """N = 1 and either kind of mix alone (or equal counts of both) are valid choices."""
    assert MochiSampler(**options).n_hard == options.get("n_hard", 1024)


def test_mochi_params_record_every_option_that_changes_a_run():
    """What a record's ``sampler_params`` holds: two MoCHi settings must never look alike."""
    mochi = MochiSampler(n_hard=64, s=16, s_prime=8, num_negatives=32)
    assert mochi.params() == {"sampler": "mochi", "n_hard": 64, "s": 16, "s_prime": 8,
                              "num_negatives": 32}
    assert MochiSampler(n_hard=64, s=8, s_prime=16).params() != mochi.params()


def test_describe_writes_the_papers_triple_with_defaults_for_options_not_given():
    """(N, s, s') as Kalantidis et al. write it; ImageNet's (1024, 512, 256) by default."""
    assert MochiSampler.describe({}) == "MoCHi (1024, 512, 256)"
    assert MochiSampler.describe({"n_hard": 64, "s_prime": 8}) == "MoCHi (64, 512, 8)"


def test_the_uniform_pool_negatives_draw_from_the_steps_generator():
    """With K < P the pool part is a uniform draw: the step's generator fixes it."""
    mochi = MochiSampler(n_hard=4, s=2, s_prime=1, num_negatives=5)
    draws = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        draws.append(mochi.select(None, batch_size=3, pool_size=1000,
                                  generator=torch.Generator().manual_seed(9)))
    assert draws[0].shape == (3, 5) and torch.equal(draws[0], draws[1])
    other = mochi.select(None, batch_size=3, pool_size=1000,
                         generator=torch.Generator().manual_seed(10))
    assert not torch.equal(other, draws[0])


def test_mochi_trains_moco_and_ir_and_is_refused_for_simclr_with_the_reason():
    from repro.models import build_model

    tiny = {"arch": "resnet18", "cifar_stem": True, "width": 0.0625}
    kwargs = dict(sampler_config={"name": "mochi", "n_hard": 8, "s": 4, "s_prime": 2},
                  dataset_size=32, backbone=tiny, embedding_dim=8, temperature=0.2,
                  num_negatives=12, queue_size=16)
    g = torch.Generator().manual_seed(6)
    batch = {"index": torch.arange(8), "views": tuple(torch.randn(8, 3, 16, 16, generator=g)
                                                      for _ in range(2)),
             "label": torch.zeros(8, dtype=torch.long)}
    for name, expected in (("moco", 16 + 6), ("ir", 12 + 6)):
        torch.manual_seed(0)
        out = build_model(name, **kwargs)(batch, generator=torch.Generator().manual_seed(0))
        assert out["num_negatives"] == expected and torch.isfinite(out["loss"])
        out["loss"].backward()
    with pytest.raises(ValueError, match="in-batch similarities"):
        build_model("simclr", **kwargs)


def test_a_config_pairing_mochi_with_simclr_is_refused_before_any_job():
    import copy

    from repro.config import load_config, validate_config

    config = copy.deepcopy(load_config("config/default.yaml"))
    config["samplers"]["mochi"] = {"name": "mochi", "n_hard": 64, "s": 32, "s_prime": 16}
    with pytest.raises(ValueError, match=r"models\.simclr x samplers\.mochi"):
        validate_config(config)
    config["models"].pop("simclr")
    validate_config(config)


def test_synthetic_negatives_draw_from_the_steps_generator_not_the_global_rng():
    g = torch.Generator().manual_seed(6)
    anchors = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    pool = F.normalize(torch.randn(25, 8, generator=g), dim=1)
    mochi = MochiSampler(n_hard=6, s=4, s_prime=3)
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        runs.append(negatives_from_pool(mochi, anchors, pool, progress=1.0,
                                        generator=torch.Generator().manual_seed(4)))
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)
