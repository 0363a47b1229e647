"""Gaussian toy with known MI: NCE and Ring are lower bounds; Ring varies less across draws."""

import math
import statistics

import pytest
import torch

from repro.toy import estimate_mi, gaussian_pairs, optimal_critic, true_mi


def test_true_mi_closed_form():
    assert true_mi(1, 0.0) == 0.0
    assert true_mi(2, 0.6) == pytest.approx(-math.log(0.64))


def test_nce_and_ring_are_lower_bounds_and_ring_has_lower_variance():
    # rho 0.8 keeps the true MI (2.04 nats) below InfoNCE's ceiling log(K + 1) = 2.83, so an
    # estimator that overshot the MI could show it (at rho 0.9 the MI, 3.32, is above it).
    dim, rho, n, k = 4, 0.8, 512, 16
    mi = true_mi(dim, rho)
    assert math.log(k + 1) > mi
    x, y = gaussian_pairs(n, dim, rho, seed=0)
    scores = optimal_critic(x, y, rho)
    seeds = range(20)
    nce = [estimate_mi(scores, "uniform", k, s) for s in seeds]
    ring = [estimate_mi(scores, "ring", k, s, w_l=0.9, w_u=0.99) for s in seeds]
    assert statistics.mean(nce) < mi
    assert statistics.mean(ring) < mi
    # More bias: the ring's normaliser holds harder negatives.
    assert statistics.mean(ring) < statistics.mean(nce)
    # Less variance across draws of negatives.
    assert statistics.stdev(ring) < 0.75 * statistics.stdev(nce)


def test_toy_cli_evaluates_exactly_the_rings_asked_for(tmp_path):
    import pandas as pd

    from repro.toy import main

    csv = tmp_path / "estimates.csv"
    assert main(["--n", "64", "--seeds", "2", "--rings", "0.7:0.9,0.2:0.6", "--csv", str(csv),
                 "--record", str(tmp_path / "result.json")]) == 0
    rings = pd.read_csv(csv).query("sampler == 'ring'")[["w_l", "w_u"]].drop_duplicates()
    assert sorted(map(tuple, rings.to_numpy().tolist())) == [(0.2, 0.6), (0.7, 0.9)]


def test_ring_list_parsing_refuses_a_ring_whose_w_l_is_not_below_w_u():
    from repro.toy import DEFAULT_RINGS, format_rings, parse_rings

    assert parse_rings(format_rings(DEFAULT_RINGS)) == DEFAULT_RINGS
    with pytest.raises(ValueError, match="w_l < w_u"):
        parse_rings("0.9:0.5")
    with pytest.raises(ValueError, match="W_L:W_U"):
        parse_rings("0.9")


def test_toy_help_names_the_default_rings_and_settings(capsys):
    from repro.toy import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0.5:0.99,0.8:0.95,0.9:0.99" in text and "(default 512)" in text


def test_toy_cli_reports_an_impossible_correlation_without_a_traceback(tmp_path, capsys):
    from repro.toy import main

    code = main(["--rho", "1.5", "--csv", str(tmp_path / "e.csv"),
                 "--record", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: rho must be in [0, 1)") and not (tmp_path / "e.csv").exists()


def test_toy_record_carries_the_scale_it_is_given(tmp_path):
    from repro.results import read_record
    from repro.toy import main

    record = tmp_path / "result.json"
    assert main(["--n", "64", "--seeds", "2", "--csv", str(tmp_path / "e.csv"), "--record",
                 str(record), "--scale", "paper"]) == 0
    saved = read_record(record)
    assert saved["scale"] == "paper"
    assert saved["extra"] == {"dim": 4, "rho": 0.9, "n": 64, "num_negatives": 16, "seeds": 2}


# ---- the sphere toy: vMF pairs, a cosine critic, DCL and HCL ---------------------------------

def test_sphere_true_mi_matches_the_closed_form_on_the_2_sphere():
    from repro.toy import true_mi_sphere

    # d = 3: h(vMF) = 1 - log(kappa / (4 pi sinh kappa)) - kappa coth kappa, |S^2| = 4 pi
    for kappa in (0.5, 3.0, 10.0):
        closed = math.log(kappa / math.sinh(kappa)) + kappa / math.tanh(kappa) - 1.0
        assert true_mi_sphere(3, kappa) == pytest.approx(closed, rel=1e-9)


def test_sphere_pairs_have_the_vmf_mean_cosine_and_a_uniform_marginal():
    from scipy.special import ive

    from repro.toy import sphere_pairs

    dim, kappa = 16, 10.0
    x, y = sphere_pairs(20000, dim, kappa, seed=3)
    assert torch.allclose(y.norm(dim=1), torch.ones(20000, dtype=torch.float64))
    # E[x . y] = A_d(kappa) = I_{d/2}(kappa) / I_{d/2 - 1}(kappa); sd of the mean ~ 0.001
    mean_cos = float((x * y).sum(1).mean())
    assert mean_cos == pytest.approx(ive(dim / 2, kappa) / ive(dim / 2 - 1, kappa), abs=0.005)
    # y's marginal is uniform like x's: no coordinate is favoured (the pole e_d included)
    assert float(y.mean(0).abs().max()) < 0.03


def _sphere_scores(n=256, dim=16, kappa=10.0):
    from repro.toy import cosine_critic, sphere_pairs

    x, y = sphere_pairs(n, dim, kappa, seed=0)
    return cosine_critic(x, y).clamp(-1, 1), 1.0 / kappa


def test_sphere_dcl_and_hcl_without_their_corrections_equal_nce_on_the_same_draws():
    from repro.toy import estimate_mi

    scores, t = _sphere_scores()
    for seed in range(3):
        nce = estimate_mi(scores, "uniform", 16, seed, temperature=t)
        dcl = estimate_mi(scores, "uniform", 16, seed, temperature=t,
                          estimator={"name": "debiased", "tau_plus": 0.0})
        hcl = estimate_mi(scores, "uniform", 16, seed, temperature=t,
                          estimator={"name": "hard", "tau_plus": 0.0, "beta": 0.0})
        assert dcl == pytest.approx(nce, abs=1e-9) and hcl == pytest.approx(nce, abs=1e-9)


def test_sphere_hcl_lies_below_and_dcl_above_nce_on_every_draw():
    # HCL's weights exp(beta s / t) rise with exp(s / t), so its weighted negative term is at
    # least the plain one (Chebyshev's sum inequality): a larger loss, a lower estimate. DCL
    # subtracts tau_plus K exp(s+ / t) from the negative term: a smaller loss, a higher one.
    from repro.toy import estimate_mi, true_mi_sphere

    scores, t = _sphere_scores()
    for seed in range(5):
        nce = estimate_mi(scores, "uniform", 16, seed, temperature=t)
        hcl = estimate_mi(scores, "uniform", 16, seed, temperature=t,
                          estimator={"name": "hard", "tau_plus": 0.0, "beta": 1.0})
        dcl = estimate_mi(scores, "uniform", 16, seed, temperature=t,
                          estimator={"name": "debiased", "tau_plus": 0.1})
        assert hcl < nce < dcl
        assert nce < true_mi_sphere(16, 10.0)  # NCE with the optimal critic stays a bound


def test_sphere_estimators_refuse_ring_negatives_and_unbounded_scores():
    from repro.toy import estimate_mi, gaussian_pairs, optimal_critic

    scores, t = _sphere_scores(n=64)
    with pytest.raises(ValueError, match="uniform draws"):
        estimate_mi(scores, "ring", 8, 0, 0.5, 0.99, temperature=t,
                    estimator={"name": "debiased", "tau_plus": 0.1})
    logits = optimal_critic(*gaussian_pairs(64, 4, 0.9, 0), 0.9)
    with pytest.raises(ValueError, match=r"cosine similarities in \[-1, 1\]"):
        estimate_mi(logits, "uniform", 8, 0, estimator={"name": "debiased", "tau_plus": 0.1})


def test_gaussian_family_refuses_estimators_and_points_to_the_sphere():
    from repro.toy import run_sweep

    with pytest.raises(ValueError, match="use family 'sphere'"):
        run_sweep(n=64, seeds=2, estimators={"dcl": {"name": "debiased", "tau_plus": 0.1}})


def test_sphere_cli_writes_every_method_with_its_registry_label(tmp_path):
    import json

    import pandas as pd

    from repro.results import read_record
    from repro.toy import main, true_mi_sphere

    csv, record = tmp_path / "e.csv", tmp_path / "r.json"
    blocks = {"dcl": {"name": "debiased", "tau_plus": 0.1},
              "hcl": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}
    assert main(["--family", "sphere", "--dim", "8", "--kappa", "5", "--n", "64", "--seeds",
                 "2", "--rings", "0.5:0.99", "--estimators", json.dumps(blocks),
                 "--csv", str(csv), "--record", str(record)]) == 0
    frame = pd.read_csv(csv)
    assert set(frame["method"]) == {"NCE (uniform)", "Ring [0.5, 0.99]", "DCL (tau_plus=0.1)",
                                    "HCL (tau_plus=0.1, beta=1)"}
    assert (frame["family"] == "sphere").all()
    saved = read_record(record)
    assert saved["dataset"] == "sphere_d8_kappa5"
    assert saved["metrics"]["true_mi"] == pytest.approx(true_mi_sphere(8, 5.0))
    hcl = frame.query("estimator == 'hcl'")["estimate"]
    assert saved["metrics"]["hcl_mean"] == pytest.approx(hcl.mean())
    assert {"nce_mean", "ring_0.5_0.99_mean", "dcl_mean", "dcl_std"} <= set(saved["metrics"])


def test_toy_cli_refuses_an_estimator_block_the_registry_refuses(tmp_path, capsys):
    from repro.toy import main

    with pytest.raises(SystemExit):
        main(["--family", "sphere", "--estimators", '{"hcl": {"name": "hard", "beta": 1}}',
              "--csv", str(tmp_path / "e.csv"), "--record", str(tmp_path / "r.json")])
    assert "hcl: estimator 'hard' takes exactly the options" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()
