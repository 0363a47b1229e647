"""Samplers: ring selection on hand-made similarities, conventions, schedules, bad parameters."""

import math

import pytest
import torch

from repro.samplers import (
    RingSampler,
    UniformSampler,
    anneal,
    build_sampler,
    ring_bounds,
    ring_indices,
    uniform_indices,
)


def test_ring_bounds_follow_the_documented_percentile_convention():
    assert ring_bounds(0.0, 1.0, 10) == (0, 10)  # whole pool
    assert ring_bounds(0.9, 1.0, 10) == (0, 1)  # the most similar 10%
    assert ring_bounds(0.0, 0.5, 10) == (5, 10)  # the least similar half
    assert ring_bounds(0.9, 0.99, 4096) == (40, 409)  # authors' thres_outer=.1, thres_inner=.1
    assert ring_bounds(0.7, 0.8, 100) == (20, 30)  # no float off-by-one at round numbers


def test_ring_selects_the_band_on_a_hand_made_similarity_matrix():
    # Anchor 0: candidate j has similarity j / 10 -> descending ranks are 9, 8, ..., 0.
    # Anchor 1: reversed.
    sims = torch.stack([torch.arange(10.0) / 10, torch.arange(10.0).flip(0) / 10])
    band = ring_indices(sims, w_l=0.5, w_u=0.8)  # ranks [2, 5)
    assert sorted(band[0].tolist()) == [5, 6, 7]
    assert sorted(band[1].tolist()) == [2, 3, 4]


@pytest.mark.parametrize("w_l,w_u", [(0.0, 0.3), (0.2, 0.95), (0.05, 1.0), (0.6, 0.9)])
def test_ring_band_equals_full_sort_reference(w_l, w_u):
    sims = torch.randn(7, 101, generator=torch.Generator().manual_seed(0))
    lo, hi = ring_bounds(w_l, w_u, 101)
    ref = sims.argsort(1, descending=True)[:, lo:hi]
    got = ring_indices(sims, w_l, w_u)
    assert got.shape == (7, hi - lo)
    for r, g in zip(ref, got):
        assert sorted(r.tolist()) == sorted(g.tolist())


def test_ring_with_ties_returns_distinct_candidates():
    sims = torch.zeros(3, 20)
    band = ring_indices(sims, 0.1, 0.8)  # wide ring: the masking path
    assert band.shape == (3, 14)
    assert all(len(set(row.tolist())) == 14 for row in band)


def test_ring_draws_k_negatives_from_inside_the_ring_only():
    sims = torch.randn(5, 200, generator=torch.Generator().manual_seed(1))
    idx = ring_indices(sims, 0.8, 0.95, num_negatives=64, generator=torch.Generator())
    assert idx.shape == (5, 64)
    lo, hi = ring_bounds(0.8, 0.95, 200)
    ranks = sims.argsort(1, descending=True).argsort(1)  # rank of each candidate
    chosen = ranks.gather(1, idx)
    assert ((chosen >= lo) & (chosen < hi)).all()


def test_whole_pool_ring_is_uniform_draw_for_draw():
    sims = torch.randn(4, 50)
    a = ring_indices(sims, 0.0, 1.0, 12, torch.Generator().manual_seed(3))
    b = uniform_indices(4, 50, 12, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_uniform_without_k_returns_whole_pool():
    idx = uniform_indices(3, 5, None)
    assert idx.tolist() == [[0, 1, 2, 3, 4]] * 3


@pytest.mark.parametrize(
    "w_l,w_u,match",
    [
        (0.5, 0.5, "w_l < w_u"),
        (0.9, 0.1, "w_l < w_u"),
        (-0.1, 0.5, "w_l=-0.1"),
        (0.1, 1.5, "w_u=1.5"),
        (float("nan"), 0.5, "w_l=nan"),
    ],
)
def test_bad_percentiles_raise_clear_value_error(w_l, w_u, match):
    with pytest.raises(ValueError, match=match):
        ring_bounds(w_l, w_u, 100)
    with pytest.raises(ValueError, match=match):
        RingSampler(w_l=w_l, w_u=w_u)


def test_empty_ring_raises_clear_value_error():
    with pytest.raises(ValueError, match="holds no candidate"):
        ring_indices(torch.randn(2, 10), 0.91, 0.95)


def test_empty_pool_and_bad_k_raise():
    with pytest.raises(ValueError, match="empty"):
        uniform_indices(2, 0, 3)
    with pytest.raises(ValueError, match="positive"):
        uniform_indices(2, 10, 0)
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        ring_indices(torch.randn(10), 0.1, 0.5)


def test_ring_never_sorts_the_whole_pool(monkeypatch):
    calls = []
    real_topk = torch.topk

    def spy(x, k, *a, **kw):
        calls.append((x.shape[-1], k))
        return real_topk(x, k, *a, **kw)

    monkeypatch.setattr(torch, "topk", spy)
    monkeypatch.setattr(torch, "sort", lambda *a, **k: pytest.fail("full sort used"))
    monkeypatch.setattr(torch, "argsort", lambda *a, **k: pytest.fail("full sort used"))
    for w_l, w_u in [(0.9, 0.99), (0.0, 0.99), (0.05, 1.0), (0.4, 0.6)]:
        ring_indices(torch.randn(2, 1000), w_l, w_u)
    assert calls and all(k < n for n, k in calls)


@pytest.mark.parametrize("schedule", ["linear", "step", "exponential"])
def test_schedules_go_from_start_to_end_monotonically(schedule):
    values = [anneal(schedule, 0.0, 0.9, p / 100) for p in range(101)]
    assert values[0] == pytest.approx(0.0)
    assert values[-1] == pytest.approx(0.9)
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))


def test_constant_schedule_is_the_final_value_throughout():
    assert anneal("constant", 0.0, 0.7, 0.0) == 0.7


def test_anneal_fraction_holds_the_end_value_after_annealing():
    assert anneal("linear", 0.0, 0.8, 0.25, anneal_fraction=0.5) == pytest.approx(0.4)
    assert anneal("linear", 0.0, 0.8, 0.75, anneal_fraction=0.5) == pytest.approx(0.8)


def test_step_schedule_has_plateaus_from_start_to_end_the_last_held_a_whole_step():
    assert anneal("step", 0.0, 1.0, 0.14, num_steps=5) == pytest.approx(0.0)
    assert anneal("step", 0.0, 1.0, 0.21, num_steps=5) == pytest.approx(0.25)
    assert anneal("step", 0.0, 1.0, 0.81, num_steps=5) == pytest.approx(1.0)
    levels = {round(anneal("step", 0.0, 0.9, p / 1000), 6) for p in range(1000)}
    assert sorted(levels) == pytest.approx([0.1 * k for k in range(10)])


def test_exponential_schedule_moves_fastest_early():
    early = anneal("exponential", 0.0, 1.0, 0.1) - anneal("exponential", 0.0, 1.0, 0.0)
    late = anneal("exponential", 0.0, 1.0, 1.0) - anneal("exponential", 0.0, 1.0, 0.9)
    assert early > late


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="unknown schedule"):
        anneal("cosine-ish", 0, 1, 0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        RingSampler(schedule="nope")


def test_ring_sampler_anneals_w_l_from_whole_pool():
    sampler = RingSampler(w_l=0.9, w_u=1.0, num_negatives=None, anneal_fraction=0.5)
    sims = torch.randn(2, 100)
    assert sampler.select(sims, batch_size=2, pool_size=100, progress=0.0).shape == (2, 100)
    assert sampler.select(sims, batch_size=2, pool_size=100, progress=0.25).shape == (2, 55)
    assert sampler.select(sims, batch_size=2, pool_size=100, progress=1.0).shape == (2, 10)
    assert sampler.params(0.25)["w_l_now"] == pytest.approx(0.45)


def test_ring_sampler_requires_similarities():
    with pytest.raises(ValueError, match="similarities"):
        RingSampler().select(None, batch_size=2, pool_size=10)


def test_uniform_sampler_does_not_need_similarities():
    s = UniformSampler(num_negatives=5)
    assert not s.needs_similarities and RingSampler().needs_similarities
    assert s.select(None, batch_size=3, pool_size=10).shape == (3, 5)


def test_build_sampler_from_config():
    ring = build_sampler({"name": "ring", "w_l": 0.8, "w_u": 0.99, "num_negatives": 4096})
    assert isinstance(ring, RingSampler) and ring.w_u == 0.99
    assert isinstance(build_sampler({"name": "uniform"}), UniformSampler)
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler({"name": "hardest"})
    with pytest.raises(ValueError, match="bad options"):
        build_sampler({"name": "ring", "wl": 0.3})


def test_a_start_of_annealing_above_w_u_is_refused_when_the_sampler_is_built():
    with pytest.raises(ValueError, match="w_l < w_u"):
        RingSampler(w_l=0.5, w_u=0.9, w_l_start=0.95)


def test_topk_is_the_ring_up_to_one_keeping_exactly_the_k_most_similar_candidates():
    # config/hardneg.yaml's `topk`: the ring [w_l, 1] excludes nothing at the top
    sims = torch.randn(6, 40, generator=torch.Generator().manual_seed(5))
    idx = ring_indices(sims, 0.9, 1.0)  # the whole ring: the 10% most similar, 4 of 40
    expected = sims.topk(4, dim=1).indices
    assert torch.equal(idx.sort(dim=1).values, expected.sort(dim=1).values)
    assert RingSampler.describe({"w_l": 0.9, "w_u": 1.0}) == "top-k [0.9, 1]"
    assert RingSampler.describe({"w_l": 0.9, "w_u": 0.99}) == "ring [0.9, 0.99]"


def test_ring_draws_reach_every_member_of_the_ring_and_nothing_else():
    # 40 candidates, ring [0.5, 0.9]: ranks 4..19 (16 members); 4,000 draws per anchor reach
    # each member (a draw from one member fewer would miss the last, rank 19)
    sims = torch.linspace(1.0, -1.0, 40).expand(3, 40)  # rank r = candidate r
    lo, hi = ring_bounds(0.5, 0.9, 40)
    assert (lo, hi) == (4, 20)
    idx = ring_indices(sims, 0.5, 0.9, num_negatives=4000,
                       generator=torch.Generator().manual_seed(0))
    for row in idx:
        assert set(row.tolist()) == set(range(lo, hi))


def test_sampler_params_name_the_sampler_and_its_settings_at_each_point_of_training():
    assert UniformSampler(num_negatives=5).params() == {"sampler": "uniform", "num_negatives": 5}
    ring = RingSampler(w_l=0.8, w_u=0.95, num_negatives=7, schedule="linear", w_l_start=0.2,
                       anneal_fraction=0.5)
    assert ring.params(0.25) == {
        "sampler": "ring", "w_l": 0.8, "w_u": 0.95, "w_l_now": pytest.approx(0.5),
        "w_u_now": 0.95, "num_negatives": 7, "schedule": "linear", "w_l_start": 0.2,
        "anneal_fraction": 0.5}


def test_scaled_w_u_keeps_the_excluded_top_a_constant_fraction_of_the_annealed_ring():
    ring = RingSampler(w_l=0.9, w_u=0.99, w_u_rule="scaled", anneal_fraction=1.0)
    for progress in (0.0, 0.3, 1.0):
        w_l_now = 0.9 * progress
        assert ring.current_w_u(progress) == pytest.approx(1 - 0.1 * (1 - w_l_now))
    assert RingSampler(w_l=0.9, w_u=0.99).current_w_u(0.0) == 0.99  # fixed rule
    assert ring.params(0.0)["w_u_now"] == pytest.approx(0.9)  # logged at its point of training


def test_a_sampler_that_makes_no_synthetic_negatives_says_so():
    with pytest.raises(NotImplementedError, match="'uniform' makes no synthetic negatives"):
        UniformSampler().synthesize(torch.zeros(2, 3), torch.zeros(4, 3))


@pytest.mark.parametrize("options,words", [
    ({}, "top-k [0.9, 1]"),
    ({"w_l": 0.8, "w_u": 0.95}, "ring [0.8, 0.95]"),
    ({"w_l": 0.8, "w_u": 0.95, "schedule": "constant"}, "ring [0.8, 0.95], constant"),
    ({"w_l": 0.8, "w_u": 0.95, "w_u_rule": "scaled"}, "ring [0.8, 0.95], w_u scaled"),
    ({"w_l": 0.8, "w_u": 1.0, "w_u_rule": "scaled"}, "top-k [0.8, 1]"),
    ({"w_l": 0.8, "w_u": 0.95, "w_u_rule": "scaled", "schedule": "constant"},
     "ring [0.8, 0.95], constant"),
])
def test_ring_description_names_bounds_schedule_and_w_u_rule(options, words):
    assert RingSampler.describe(options) == words


def test_registering_a_second_sampler_under_a_taken_name_is_refused_naming_both():
    from repro.samplers import SAMPLERS, register_sampler

    class Impostor(UniformSampler):
        name = "ring"

    with pytest.raises(ValueError, match="a sampler named 'ring' is already registered: "
                                         "RingSampler"):
        register_sampler(Impostor)
    assert SAMPLERS["ring"] is RingSampler
    assert register_sampler(RingSampler) is RingSampler  # the same class again is fine


@pytest.mark.parametrize("schedule", ["linear", "step", "exponential"])
def test_schedules_start_and_end_at_nonzero_values(schedule):
    # a schedule from 0.2 to 0.8: start + (end - start) * fraction, reaching both ends
    assert anneal(schedule, 0.2, 0.8, 0.0, num_steps=4) == pytest.approx(0.2)
    assert anneal(schedule, 0.2, 0.8, 1.0, num_steps=4) == pytest.approx(0.8)
    assert 0.2 < anneal(schedule, 0.2, 0.8, 0.6, num_steps=4) < 0.8
    assert anneal("linear", 0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert anneal("step", 0.2, 0.8, 0.5, num_steps=4) == pytest.approx(0.2 + 0.6 * 2 / 3)
    frac = (1 - math.exp(-5 * 0.5)) / (1 - math.exp(-5))
    assert anneal("exponential", 0.2, 0.8, 0.5) == pytest.approx(0.2 + 0.6 * frac)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_an_anneal_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match=rf"^anneal_fraction must be in \(0, 1\], got {fraction}$"):
        anneal("linear", 0.0, 0.9, 0.5, anneal_fraction=fraction)


def test_the_ring_sampler_without_similarities_says_what_it_needs():
    with pytest.raises(ValueError, match=r"^the ring sampler needs the \(B, N\) similarities "
                                         r"to the pool$"):
        RingSampler().select(None, batch_size=2, pool_size=10)


def test_a_scaled_ring_selects_with_the_w_u_of_its_point_of_training():
    # [0.5, 0.9] scaled, annealed over all training: at progress 0, w_l = 0 and
    # w_u = 1 - 0.1 * 1 / 0.5 = 0.8, i.e. ranks [20, 100) of 100; at the end [10, 50)
    ring = RingSampler(w_l=0.5, w_u=0.9, w_u_rule="scaled", anneal_fraction=1.0)
    sims = torch.linspace(1.0, -1.0, 100).expand(2, 100)  # rank r = candidate r
    start = ring.select(sims, batch_size=2, pool_size=100, progress=0.0)
    end = ring.select(sims, batch_size=2, pool_size=100, progress=1.0)
    assert sorted(start[0].tolist()) == list(range(20, 100))
    assert sorted(end[0].tolist()) == list(range(10, 50))


def test_indices_are_made_on_the_device_of_the_similarities():
    # the meta device (shapes only) stands in for an accelerator on a CPU-only machine
    assert uniform_indices(2, 5, 3, device="meta").device.type == "meta"
    assert uniform_indices(2, 5, None, device="meta").device.type == "meta"
    sims = torch.zeros(2, 10, device="meta")
    assert ring_indices(sims, 0.0, 1.0, 3).device.type == "meta"  # the whole-pool shortcut
    assert ring_indices(sims, 0.5, 0.9, 3).device.type == "meta"  # a draw inside the ring


def test_one_candidate_pools_and_single_negatives_are_allowed_empty_ones_refused():
    assert ring_bounds(0.0, 1.0, 1) == (0, 1)
    assert uniform_indices(2, 1, 3).tolist() == [[0, 0, 0]] * 2
    assert uniform_indices(2, 4, 1).shape == (2, 1)
    with pytest.raises(ValueError, match=r"^the candidate pool is empty \(pool_size=0\)$"):
        ring_bounds(0.0, 1.0, 0)
    with pytest.raises(ValueError, match=r"^the candidate pool is empty \(pool_size=0\)$"):
        uniform_indices(2, 0, 3)
    with pytest.raises(ValueError, match=r"^num_negatives must be positive, got 0$"):
        uniform_indices(2, 4, 0)


def test_a_ring_that_drops_only_the_most_similar_candidate_is_not_the_whole_pool():
    sims = torch.linspace(1.0, -1.0, 10).expand(2, 10)  # rank r = candidate r
    assert ring_bounds(0.0, 0.9, 10) == (1, 10)
    band = ring_indices(sims, 0.0, 0.9)
    assert sorted(band[0].tolist()) == list(range(1, 10))
    draws = ring_indices(sims, 0.0, 0.9, 500, torch.Generator().manual_seed(0))
    assert set(draws.flatten().tolist()) == set(range(1, 10))


def test_percentiles_that_are_not_numbers_are_refused_as_value_errors():
    with pytest.raises(ValueError, match=r"^ring percentile w_l='0.5' must be a number in "
                                         r"\[0, 1\]$"):
        ring_bounds("0.5", 0.9, 10)


def test_ring_sampler_settings_are_refused_with_their_message():
    with pytest.raises(ValueError, match=r"^num_negatives must be positive, got 0$"):
        RingSampler(num_negatives=0)
    assert RingSampler(num_negatives=1).num_negatives == 1
    with pytest.raises(ValueError, match=r"^unknown w_u_rule 'x'; choose one of "
                                         r"\('fixed', 'scaled'\)$"):
        RingSampler(w_u_rule="x")
    with pytest.raises(ValueError, match=r"^unknown schedule 'x'; choose one of "):
        RingSampler(schedule="x")


def test_a_plug_in_sampler_without_params_of_its_own_logs_its_name():
    from repro.samplers import NegativeSampler

    class EveryOther(NegativeSampler):  # a sampler a user plugs in, with only select()
        name = "every_other"

        def select(self, sims, *, batch_size, pool_size, progress=1.0, generator=None,
                   device="cpu"):
            return torch.arange(0, pool_size, 2, device=device).expand(batch_size, -1)

    sampler = EveryOther()
    assert sampler.params(0.3) == {"sampler": "every_other"}
    assert EveryOther.describe({"anything": 1}) == "every_other"
    assert sampler.select(None, batch_size=2, pool_size=5).tolist() == [[0, 2, 4]] * 2
    with pytest.raises(NotImplementedError, match="'every_other' makes no synthetic negatives"):
        sampler.synthesize(torch.zeros(1, 2), torch.zeros(3, 2))


def test_a_config_without_a_sampler_name_is_refused_and_re_registering_keeps_the_class():
    from repro.samplers import SAMPLERS, register_sampler

    with pytest.raises(ValueError, match=r"^unknown sampler None; choose one of "):
        build_sampler({"w_l": 0.5})
    register_sampler(RingSampler)
    assert SAMPLERS["ring"] is RingSampler and build_sampler({"name": "ring"}) == RingSampler()
    assert UniformSampler(3).select(None, batch_size=2, pool_size=5,
                                    device="meta").device.type == "meta"
