"""Same-class negatives per similarity-percentile band (repro.false_negatives)."""

import pytest
import torch
import torch.nn.functional as F

from repro.false_negatives import (PERCENTILE_EDGES, SameClassCounts, base_rate,
                                   same_class_counts)
from repro.samplers import ring_indices


def _random(n: int, d: int = 6, classes: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, d, generator=gen), dim=1)
    return z, torch.randint(0, classes, (n,), generator=gen)


def test_perfectly_clustered_classes_fill_the_top_decile_and_nothing_below():
    # 10 classes x 10 images, each image its class's one-hot vector: a pool of 99 others, the
    # top decile (n_above(0.9, 99) = 9 ranks) is exactly the 9 images of the anchor's class
    labels = torch.arange(100) // 10
    z = F.one_hot(labels, 10).float()
    counts = same_class_counts(z, z, labels)
    rates = counts.rates()
    assert counts.rate(0.9, 1.0) == 1.0
    assert rates[:9] == [0.0] * 9
    assert rates[10] is None  # [0.99, 1]: floor(0.01 * 99) = 0 ranks, no candidate
    assert counts.rate(0.0, 0.9) == 0.0
    assert counts.rate(0.99, 1.0) is None


def test_band_counts_match_the_ring_sampler_cutting_each_band_out_of_the_pool():
    """Derived independently through repro.samplers.ring_indices: the band [e_k, e_k+1] of an
    anchor is the ring that the sampler keeps from its pool of the other images."""
    n = 121  # a pool of 120: every band holds at least one candidate
    anchors, labels = _random(n, seed=1)
    candidates, _ = _random(n, seed=2)
    counts = same_class_counts(anchors, candidates, labels)
    sims = anchors @ candidates.T
    others = torch.stack([torch.cat([torch.arange(i), torch.arange(i + 1, n)])
                          for i in range(n)])  # (n, n - 1) pool indices without the anchor
    pool_sims = sims.gather(1, others)
    for k, (w_l, w_u) in enumerate(zip(PERCENTILE_EDGES, PERCENTILE_EDGES[1:])):
        ring = others.gather(1, ring_indices(pool_sims, w_l, w_u))
        assert counts.total[k] == ring.numel()
        assert counts.same[k] == int((labels[ring] == labels.unsqueeze(1)).sum())


def test_bands_partition_each_pool_and_pool_to_the_base_rate():
    anchors, labels = _random(90, classes=3, seed=3)
    counts = same_class_counts(anchors, anchors, labels)
    assert sum(counts.total) == 90 * 89
    assert counts.rate() == pytest.approx(base_rate(labels), abs=1e-12)


def test_the_pool_is_ranked_by_the_candidates_embedding_not_the_anchors():
    labels = torch.arange(60) % 6
    anchors = F.one_hot(labels, 6).float()
    shifted = F.one_hot((labels + 1) % 6, 6).float()  # each anchor is most similar to the
    counts = same_class_counts(anchors, shifted, labels)  # candidates of the previous class
    assert counts.rate(0.9, 1.0) == 0.0
    assert same_class_counts(anchors, anchors, labels).rate(0.9, 1.0) == 1.0


def test_base_rate_counts_ordered_pairs_of_distinct_images():
    assert base_rate(torch.tensor([0, 0, 1])) == pytest.approx(2 / 6)
    assert base_rate(torch.tensor([0, 1, 2, 3])) == 0.0
    assert base_rate(torch.arange(1000) % 10) == pytest.approx(10 * 100 * 99 / (1000 * 999))
    assert base_rate(torch.tensor([3, 3])) == 1.0
    with pytest.raises(ValueError, match="need at least 2 labelled images, got 1"):
        base_rate(torch.tensor([3]))


def test_two_images_make_a_pool_of_one_and_one_image_none():
    z = torch.eye(2)
    counts = same_class_counts(z, z, torch.tensor([0, 0]))
    assert sum(counts.total) == 2 and counts.rate() == 1.0
    with pytest.raises(ValueError, match="need at least 2 images for a pool of negatives"):
        same_class_counts(z[:1], z[:1], torch.tensor([0]))


def test_anchors_are_a_seeded_draw_without_replacement_and_the_pool_stays_whole():
    z, labels = _random(150, seed=4)
    few = same_class_counts(z, z, labels, max_anchors=40, seed=7)
    assert few.anchors == 40 and sum(few.total) == 40 * 149
    assert few == same_class_counts(z, z, labels, max_anchors=40, seed=7)
    assert few != same_class_counts(z, z, labels, max_anchors=40, seed=8)
    # the default seed is 0: a record's counts can be recomputed from its embeddings
    assert same_class_counts(z, z, labels, max_anchors=40) == same_class_counts(
        z, z, labels, max_anchors=40, seed=0)
    assert same_class_counts(z, z, labels, max_anchors=150) == same_class_counts(
        z, z, labels, max_anchors=None)


def test_chunks_do_not_change_the_counts():
    z, labels = _random(70, seed=5)
    assert same_class_counts(z, z, labels, chunk=8) == same_class_counts(z, z, labels, chunk=500)


def test_a_ring_rate_pools_its_bands_and_must_be_made_of_whole_bands():
    counts = SameClassCounts((0.0, 0.5, 0.9, 1.0), (1, 6, 2), (10, 8, 2), 2)
    assert counts.rate(0.5, 1.0) == pytest.approx(8 / 10)
    assert counts.rate() == pytest.approx(9 / 20)
    assert counts.rates() == [0.1, 0.75, 1.0]
    for w_l, w_u in ((0.6, 1.0), (0.9, 0.5), (0.5, 0.5)):
        with pytest.raises(ValueError, match="not a union of the bands"):
            counts.rate(w_l, w_u)
    assert SameClassCounts.from_dict(counts.to_dict()) == counts
    with pytest.raises(ValueError, match="4 edges make 3 bands, got 4 same-class"):
        SameClassCounts((0.0, 0.5, 0.9, 1.0), (1, 6, 2, 0), (10, 8, 2), 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": torch.zeros(5, dtype=torch.long)}, "the same N images"),
    ({"edges": (0.0, 0.5, 0.4, 1.0)}, "edges must increase from 0 to 1"),
    ({"edges": (0.1, 1.0)}, "edges must increase from 0 to 1"),
    ({"edges": (0.0, 0.5, 0.5, 1.0)}, "edges must increase from 0 to 1"),
    ({"edges": (0.0, 0.5, 0.9)}, "edges must increase from 0 to 1"),
])
def test_bad_inputs_are_refused_with_a_clear_message(kwargs, message):
    z, labels = _random(8)
    args = {"anchors": z, "candidates": z, "labels": labels, **kwargs}
    with pytest.raises(ValueError, match=message):
        same_class_counts(**args)
