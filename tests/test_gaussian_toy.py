"""Gaussian toy with known MI: NCE and Ring are lower bounds; Ring varies less across draws."""

import math
import statistics

import pytest

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
