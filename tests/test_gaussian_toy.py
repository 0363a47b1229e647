"""Gaussian toy with known MI: NCE and Ring are lower bounds; Ring varies less across draws."""

import math
import statistics

import pytest

from repro.toy import estimate_mi, gaussian_pairs, optimal_critic, true_mi


def test_true_mi_closed_form():
    assert true_mi(1, 0.0) == 0.0
    assert true_mi(2, 0.6) == pytest.approx(-math.log(0.64))


def test_nce_and_ring_are_lower_bounds_and_ring_has_lower_variance():
    dim, rho, n, k = 4, 0.9, 512, 16
    x, y = gaussian_pairs(n, dim, rho, seed=0)
    scores = optimal_critic(x, y, rho)
    seeds = range(20)
    nce = [estimate_mi(scores, "uniform", k, s) for s in seeds]
    ring = [estimate_mi(scores, "ring", k, s, w_l=0.9, w_u=0.99) for s in seeds]
    mi = true_mi(dim, rho)
    assert statistics.mean(nce) < mi
    assert statistics.mean(ring) < mi
    # More bias: the ring's normaliser holds harder negatives.
    assert statistics.mean(ring) < statistics.mean(nce)
    # Less variance across draws of negatives (measured ratio ~0.4 at these settings).
    assert statistics.stdev(ring) < 0.75 * statistics.stdev(nce)
