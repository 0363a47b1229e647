"""Estimators: closed forms, agreement with the usual formulation, Ring = NCE on the whole pool."""

import math

import pytest
import torch
import torch.nn.functional as F

from repro.estimators import contrastive_logits, info_nce_loss, mi_lower_bound, ring_nce_loss


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize("k", [1, 7, 4096])
def test_identical_embeddings_give_log_k_plus_one(k):
    pos = torch.full((5,), 0.3)
    neg = torch.full((5, k), 0.3)
    assert info_nce_loss(pos, neg, 0.07).item() == pytest.approx(math.log(k + 1), rel=1e-6)


def test_info_nce_equals_cross_entropy_with_positive_as_class_zero():
    q, k, bank = _unit(8, 16, 0), _unit(8, 16, 1), _unit(50, 16, 2)
    pos, neg = (q * k).sum(1), q @ bank.T
    logits = torch.cat([pos[:, None], neg], 1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(info_nce_loss(pos, neg, 0.2), expected)


def test_info_nce_per_anchor_matches_hand_computation():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    loss = info_nce_loss(pos, neg, temperature=1.0, reduction="none")
    e = math.e
    expected = torch.tensor([-math.log(e / (e + 2)), -math.log(1 / (1 + e + 1 / e))])
    torch.testing.assert_close(loss, expected)


def test_ring_equals_nce_when_ring_is_whole_bank_and_all_candidates_kept():
    q, k, bank = _unit(6, 8, 3), _unit(6, 8, 4), _unit(40, 8, 5)
    pos, sims = (q * k).sum(1), q @ bank.T
    ring = ring_nce_loss(pos, sims, w_l=0.0, w_u=1.0, temperature=0.1)
    torch.testing.assert_close(ring, info_nce_loss(pos, sims, 0.1))


def test_ring_equals_nce_draw_for_draw_when_ring_is_whole_bank():
    from repro.samplers import uniform_indices

    q, k, bank = _unit(6, 8, 3), _unit(6, 8, 4), _unit(40, 8, 5)
    pos, sims = (q * k).sum(1), q @ bank.T
    ring = ring_nce_loss(pos, sims, 0.0, 1.0, 0.1, num_negatives=16,
                         generator=torch.Generator().manual_seed(7))
    idx = uniform_indices(6, 40, 16, torch.Generator().manual_seed(7))
    assert torch.equal(ring, info_nce_loss(pos, sims.gather(1, idx), 0.1))


def test_the_hardest_ring_gives_a_larger_loss_than_as_many_random_or_easiest_negatives():
    q, k, bank = _unit(16, 8, 6), _unit(16, 8, 7), _unit(200, 8, 8)
    pos, sims = (q * k).sum(1), q @ bank.T
    # 20 negatives each: the 10% most similar, 20 arbitrary ones, the 10% least similar.
    hardest = ring_nce_loss(pos, sims, 0.9, 1.0, 0.1)
    random20 = info_nce_loss(pos, sims[:, :20], 0.1)
    easiest = ring_nce_loss(pos, sims, 0.0, 0.1, 0.1)
    assert hardest > random20 > easiest


def test_ring_gradients_flow_to_anchor_through_chosen_negatives_only():
    q = _unit(4, 8, 9).requires_grad_(True)
    k, bank = _unit(4, 8, 10), _unit(30, 8, 11)
    sims = q @ bank.T
    loss = ring_nce_loss((q * k).sum(1), sims, 0.5, 1.0, 0.1)
    (grad,) = torch.autograd.grad(loss, q)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # Reference: the same ring, selected by hand, through plain InfoNCE.
    q2 = q.detach().clone().requires_grad_(True)
    sims2 = q2 @ bank.T
    lo, hi = 0, 15  # w_u = 1 -> rank 0; w_l = 0.5 -> 15 of 30 ranks
    band = sims2.detach().argsort(1, descending=True)[:, lo:hi]
    ref = info_nce_loss((q2 * k).sum(1), sims2.gather(1, band), 0.1)
    (grad2,) = torch.autograd.grad(ref, q2)
    torch.testing.assert_close(grad, grad2)


def test_gradient_matches_finite_differences():
    pos = torch.tensor([0.2, -0.1], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([[0.1, 0.4, -0.3], [0.0, 0.2, 0.5]], dtype=torch.float64,
                       requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, n: info_nce_loss(p, n, 0.5), (pos, neg))


def test_mi_lower_bound_never_exceeds_log_k_plus_one():
    pos = torch.ones(10)
    neg = -torch.ones(10, 31)
    bound = mi_lower_bound(pos, neg, temperature=0.01)
    assert bound.item() <= math.log(32) + 1e-6  # float32 rounding
    assert bound.item() == pytest.approx(math.log(32), abs=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_raises(bad):
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(torch.zeros(2), torch.zeros(2, 3), bad)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(B,\)"):
        info_nce_loss(torch.zeros(2, 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        contrastive_logits(torch.zeros(2), torch.zeros(3, 3), 0.1)
    with pytest.raises(ValueError, match="K must be at least 1"):
        info_nce_loss(torch.zeros(2), torch.zeros(2, 0))


# --- DCL and HCL -------------------------------------------------------------------------------

def _reference_hcl(pos, neg, temperature, tau_plus, beta):
    """The authors' released criterion, anchor by anchor in float64 with plain exponentials:
    imp = exp(beta s / t), R = sum(imp * exp(s / t)) / mean(imp),
    Ng = clamp((R - tau_plus K exp(s+ / t)) / (1 - tau_plus), min=K e^(-1/t))."""
    pos, neg = pos.double(), neg.double()
    losses = []
    for i in range(pos.shape[0]):
        k = neg.shape[1]
        p = math.exp(pos[i].item() / temperature)
        terms = [math.exp(s.item() / temperature) for s in neg[i]]
        imp = [math.exp(beta * s.item() / temperature) for s in neg[i]]
        reweighted = sum(w * e for w, e in zip(imp, terms)) / (sum(imp) / k)
        ng = max((reweighted - tau_plus * k * p) / (1 - tau_plus), k * math.exp(-1 / temperature))
        losses.append(-math.log(p / (p + ng)))
    return sum(losses) / len(losses)


def _unit_sims(b: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(b, 8, generator=g), dim=1)
    y = F.normalize(q + 0.5 * torch.randn(b, 8, generator=g), dim=1)
    c = F.normalize(torch.randn(k, 8, generator=g), dim=1)
    return (q * y).sum(1), q @ c.t()


@pytest.mark.parametrize("tau_plus, beta", [(0.0, 0.0), (0.1, 0.0), (0.1, 1.0), (0.3, 2.0),
                                            (0.0, 0.5)])
def test_hard_nce_matches_the_released_criterion_computed_anchor_by_anchor(tau_plus, beta):
    from repro.estimators import hard_nce_loss

    pos, neg = _unit_sims(5, 7)
    got = hard_nce_loss(pos, neg, 0.5, tau_plus, beta)
    assert got.item() == pytest.approx(_reference_hcl(pos, neg, 0.5, tau_plus, beta), rel=1e-5)


def test_debiased_nce_matches_the_released_criterion_and_is_hcl_at_beta_zero():
    from repro.estimators import debiased_nce_loss, hard_nce_loss

    pos, neg = _unit_sims(6, 9, seed=1)
    dcl = debiased_nce_loss(pos, neg, 0.2, 0.1)
    assert dcl.item() == pytest.approx(_reference_hcl(pos, neg, 0.2, 0.1, 0.0), rel=1e-5)
    assert torch.equal(dcl, hard_nce_loss(pos, neg, 0.2, 0.1, beta=0.0))
    # beta > 0 moves weight onto the harder negatives: a different (larger) loss
    assert hard_nce_loss(pos, neg, 0.2, 0.1, beta=1.0) > dcl


def test_dcl_and_hcl_equal_info_nce_exactly_without_prior_or_concentration():
    from repro.estimators import debiased_nce_loss, hard_nce_loss

    pos, neg = _unit_sims(8, 16, seed=2)
    for temperature in (0.07, 0.5):
        nce = info_nce_loss(pos, neg, temperature)
        torch.testing.assert_close(debiased_nce_loss(pos, neg, temperature, 0.0), nce)
        torch.testing.assert_close(hard_nce_loss(pos, neg, temperature, 0.0, 0.0), nce)


def test_the_floor_binds_when_the_debiased_term_would_fall_below_k_exp_minus_one_over_t():
    from repro.estimators import debiased_nce_loss

    t, k = 0.5, 4
    # positive at +1, every negative at -1: sum exp(s / t) - tau_plus K exp(1 / t) < 0, so
    # Ng = K exp(-1 / t) and the loss is log(e^(1/t) + K e^(-1/t)) - 1/t
    pos, neg = torch.ones(1), -torch.ones(1, k)
    floored = math.log(math.exp(1 / t) + k * math.exp(-1 / t)) - 1 / t
    assert debiased_nce_loss(pos, neg, t, 0.5).item() == pytest.approx(floored, rel=1e-6)
    # where the debiased term stays above the floor it is used as it is (no clamp)
    pos, neg = torch.zeros(1), torch.full((1, k), 0.5)
    ng = (k * math.exp(0.5 / t) - 0.1 * k * 1.0) / 0.9
    assert ng > k * math.exp(-1 / t)
    assert debiased_nce_loss(pos, neg, t, 0.1).item() == pytest.approx(math.log(1 + ng), rel=1e-6)


def test_hcl_is_finite_at_temperatures_where_plain_exponentials_overflow_float32():
    from repro.estimators import hard_nce_loss

    pos, neg = _unit_sims(4, 6, seed=3)
    loss = hard_nce_loss(pos, neg, 0.01, 0.1, 1.0)  # exp(1 / 0.01) = e^100 > float32 max
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_reference_hcl(pos, neg, 0.01, 0.1, 1.0), rel=1e-4)


def test_hcl_gradient_matches_finite_differences_through_the_weights():
    from repro.estimators import hard_nce_loss

    pos, neg = _unit_sims(3, 5, seed=4)
    pos, neg = pos.double().requires_grad_(), neg.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, n: hard_nce_loss(p, n, 0.5, 0.1, 1.0), (pos, neg))


@pytest.mark.parametrize("tau_plus, beta", [(1.0, 0.0), (-0.1, 0.0), (0.1, -1.0)])
def test_hcl_refuses_a_prior_outside_0_1_or_a_negative_beta(tau_plus, beta):
    from repro.estimators import hard_nce_loss

    pos, neg = _unit_sims(2, 3)
    with pytest.raises(ValueError, match="tau_plus|beta"):
        hard_nce_loss(pos, neg, 0.5, tau_plus, beta)


# --- exact messages, reductions and the registry ----------------------------------------------


def test_estimator_input_errors_name_the_shape_received():
    with pytest.raises(ValueError, match=r"^positive similarities must be \(B,\), got shape "
                                         r"\(2, 1\)$"):
        info_nce_loss(torch.zeros(2, 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^negative similarities must be \(B, K\) with B=2, got "
                                         r"\(3, 3\)$"):
        info_nce_loss(torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"^negative similarities must be \(B, K\) with B=2, got "
                                         r"\(2,\)$"):
        info_nce_loss(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"^no negatives: K must be at least 1$"):
        info_nce_loss(torch.zeros(2), torch.zeros(2, 0))
    with pytest.raises(ValueError, match=r"^temperature must be positive, got 0.0$"):
        info_nce_loss(torch.zeros(2), torch.zeros(2, 3), 0.0)


def test_logits_put_the_positive_in_column_zero_over_the_temperature():
    logits = contrastive_logits(torch.tensor([0.5, -0.2]), torch.tensor([[0.1, 0.3], [0.4, 0.0]]),
                                0.5)
    torch.testing.assert_close(logits, torch.tensor([[1.0, 0.2, 0.6], [-0.4, 0.8, 0.0]]))


def test_reductions_mean_and_none_and_an_unknown_one_is_refused():
    pos, neg = torch.tensor([0.5, -0.2]), torch.tensor([[0.1, 0.3], [0.4, 0.0]])
    per = info_nce_loss(pos, neg, 0.5, reduction="none")
    expected = torch.stack([torch.logsumexp(row, 0) - row[0] for row in
                            contrastive_logits(pos, neg, 0.5)])
    torch.testing.assert_close(per, expected)
    torch.testing.assert_close(info_nce_loss(pos, neg, 0.5), expected.mean())
    with pytest.raises(ValueError, match=r"^reduction must be 'mean' or 'none', got 'sum'$"):
        info_nce_loss(pos, neg, 0.5, reduction="sum")
    sims = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.6, 0.4]])
    ring = ring_nce_loss(pos, sims, 0.5, 1.0, 0.5, reduction="none")  # the top half of each row
    torch.testing.assert_close(ring, info_nce_loss(pos, torch.tensor([[0.9, 0.5], [0.8, 0.6]]),
                                                   0.5, reduction="none"))


def test_ring_loss_with_k_draws_k_negatives_from_each_ring():
    pos = torch.tensor([0.0, 0.0])
    sims = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.6, 0.4]])
    # ring [0.5, 0.75]: rank 1 alone (0.5 and 0.6); 3 draws of it
    loss = ring_nce_loss(pos, sims, 0.5, 0.75, 1.0, num_negatives=3,
                         generator=torch.Generator().manual_seed(0))
    expected = info_nce_loss(pos, torch.tensor([[0.5] * 3, [0.6] * 3]), 1.0)
    torch.testing.assert_close(loss, expected)


def test_mi_lower_bound_is_log_k_plus_one_minus_the_loss():
    pos, neg = torch.tensor([0.9, 0.7]), torch.tensor([[0.1, -0.3, 0.2], [0.0, 0.5, -0.1]])
    expected = math.log(4) - float(info_nce_loss(pos, neg, 0.2))
    assert float(mi_lower_bound(pos, neg, 0.2)) == pytest.approx(expected)
    assert float(mi_lower_bound(pos, neg)) == pytest.approx(
        math.log(4) - float(info_nce_loss(pos, neg, 1.0)))


def test_the_estimator_registry_names_options_labels_and_which_take_uniform_negatives():
    from repro.estimators import ESTIMATORS, build_estimator, debiased_nce_loss, hard_nce_loss

    assert {n: (e.options, e.uniform_negatives, e.label) for n, e in ESTIMATORS.items()} == {
        "nce": ((), False, "InfoNCE"), "debiased": (("tau_plus",), True, "DCL"),
        "hard": (("tau_plus", "beta"), True, "HCL")}
    assert build_estimator(None) is info_nce_loss and build_estimator({}) is info_nce_loss
    pos, neg = torch.tensor([0.9, 0.7]), torch.tensor([[0.1, -0.3, 0.2], [0.0, 0.5, -0.1]])
    hard = build_estimator({"name": "hard", "tau_plus": 0.1, "beta": 1.0})
    torch.testing.assert_close(hard(pos, neg, 0.5), hard_nce_loss(pos, neg, 0.5, 0.1, 1.0))
    dcl = build_estimator({"name": "debiased", "tau_plus": 0.2})
    torch.testing.assert_close(dcl(pos, neg, 0.5), debiased_nce_loss(pos, neg, 0.5, 0.2))
    with pytest.raises(ValueError, match=r"^unknown estimator 'x'; choose one of "
                                         r"\['debiased', 'hard', 'nce'\]$"):
        build_estimator({"name": "x"})
    with pytest.raises(ValueError, match=r"^estimator 'hard' takes exactly the options "
                                         r"\['tau_plus', 'beta'\]; missing \['beta'\]; "
                                         r"unknown \['gamma'\]$"):
        build_estimator({"name": "hard", "tau_plus": 0.1, "gamma": 1})


@pytest.mark.parametrize("tau_plus,beta,match", [
    (1.0, 0.0, r"^tau_plus must be in \[0, 1\), got 1.0$"),
    (-0.1, 0.0, r"^tau_plus must be in \[0, 1\), got -0.1$"),
    (0.1, -1.0, r"^beta must be >= 0, got -1.0$")])
def test_hcl_refuses_bad_options_with_their_exact_message(tau_plus, beta, match):
    from repro.estimators import hard_nce_loss

    with pytest.raises(ValueError, match=match):
        hard_nce_loss(torch.zeros(2), torch.zeros(2, 3), 0.5, tau_plus, beta)
    assert float(hard_nce_loss(torch.zeros(2), torch.zeros(2, 3), 0.5, 0.0, 0.0)) == \
        pytest.approx(math.log(4))
