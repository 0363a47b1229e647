"""The claims table (repro.report.claims): paired seed differences, their CI and verdicts.

Expected values are computed here independently (scipy.stats on the differences written into
the synthetic records), never with the module's own helpers.
"""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from repro.report import make_tables
from repro.report.__main__ import main as report_main
from repro.report.claims import (CONTRADICTED, INCONCLUSIVE, LARGER, NOT_CLAIMED, SUPPORTED,
                                 claim_frame, claim_records, claim_verdict, claims_frame,
                                 claims_notes, claims_wide, direction_verdict, pair_key,
                                 paired_differences, range_verdict, seeds_to_decide)
from repro.report.reported import CLAIMS_COLUMNS, load_claims
from repro.report.stats import seeds_for_half_width
from repro.report.tables import IN_DOMAIN_NOTE, TABLES, _select
from repro.results import load_records, make_record, write_record

ROOT = Path(__file__).resolve().parent.parent
REPORTED = ROOT / "tables" / "reported"
CLAIMS = {c.claim_id: c for c in load_claims(REPORTED / "claims.csv")}
LINEAR, FEWSHOT, DETECTION = (CLAIMS["linear_eval_gain"], CLAIMS["fewshot_transfer"],
                              CLAIMS["detection_transfer"])


def _record(root, stage, model, sampler, seed, metrics, *, dataset="cifar10", eval_dataset=None,
            scale="default", epochs=10, extra=None, params=None):
    """A record whose config names its sampler (as the workflow's do), so the two arms of a
    comparison have different setup hashes; ``epochs`` makes a different experiment, and
    ``params`` (default ``{"name": sampler}``) another configuration of the same label."""
    params = params or {"name": sampler}
    config = {"pretrain": {"model": model, "sampler_label": sampler, "sampler": params,
                           "dataset": dataset, "seed": seed, "scale": scale, "epochs": epochs},
              stage: {"seed": seed}}
    record = make_record(stage=stage, model=model, sampler=sampler, dataset=dataset, seed=seed,
                         metrics=metrics, scale=scale, config=config, wall_time_s=1.0,
                         sampler_params=params, eval_dataset=eval_dataset, extra=extra)
    where = (extra or {}).get("task") or eval_dataset or dataset
    variant = "-".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "name")
    folder = (root / stage / where / dataset / f"{model}-{sampler}-{scale}-e{epochs}{variant}"
              / f"s{seed}")
    write_record(folder / "result.json", record)


def _linear(root, model, values, *, dataset="cifar10", eval_dataset=None, scale="default",
            epochs=10):
    """Linear-eval records: ``values`` maps sampler -> {seed: top1}."""
    for sampler, per_seed in values.items():
        for seed, top1 in per_seed.items():
            _record(root, "linear_eval", model, sampler, seed, {"top1": top1}, dataset=dataset,
                    eval_dataset=eval_dataset, scale=scale, epochs=epochs)


def _arms(baseline, diffs):
    """{uniform: baseline per seed, ring: baseline + diff per seed} for seeds 0, 1, ..."""
    return {"uniform": dict(enumerate(baseline)),
            "ring": {s: b + d for s, (b, d) in enumerate(zip(baseline, diffs))}}


def _scipy_ci(diffs):
    """95% t interval of the mean of ``diffs``, by scipy."""
    diffs = pd.Series(diffs, dtype=float)
    return stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))


def _one(frame, **match):
    rows = frame
    for key, value in match.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# ---- the claims as data ------------------------------------------------------------------


def test_committed_claims_csv_holds_the_abstract_claims_with_their_source():
    frame = pd.read_csv(REPORTED / "claims.csv", dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == CLAIMS_COLUMNS
    assert (LINEAR.stage, LINEAR.metric, LINEAR.models, LINEAR.low, LINEAR.high,
            LINEAR.direction) == ("linear_eval", "top1", ("ir", "cmc", "moco"), 2.0, 5.0, "+")
    assert "improves accuracy by 2-5% points in each case, measured by linear evaluation on " \
        "four standard image datasets" in LINEAR.quote
    assert "Meta-Dataset" in FEWSHOT.quote and "keypoint detection" in DETECTION.quote
    assert all(c.source == "abstract, arXiv:2010.02037v1 (ICLR 2021)" and c.wording == "verbatim"
               for c in CLAIMS.values())
    for claim, stage in ((FEWSHOT, "fewshot"), (DETECTION, "detection")):
        assert (claim.stage, claim.direction, claim.low, claim.high) == (stage, "+", None, None)
    assert FEWSHOT.metric == "accuracy"
    assert [DETECTION.metric_for(t) for t in ("voc_det", "coco_mask", "coco_kpt", "other")] == [
        "bbox_AP", "segm_AP", "keypoints_AP", None]


@pytest.mark.parametrize("row, message", [
    ("x,linear_eval,top1,ir,5,2,+,q,s,verbatim", "low <= high"),
    ("x,linear_eval,top1,ir,2,,+,q,s,verbatim", "low <= high"),
    ("x,linear_eval,top1,ir,2,5,up,q,s,verbatim", "direction"),
    ("x,linear_eval,top1,ir,2,5,+,,s,verbatim", "quote and source"),
])
def test_a_malformed_claim_is_refused_naming_the_line(tmp_path, row, message):
    path = tmp_path / "claims.csv"
    path.write_text(",".join(CLAIMS_COLUMNS) + "\n" + row + "\n")
    with pytest.raises(ValueError, match=message):
        load_claims(path)


# ---- verdict rules -------------------------------------------------------------------------


@pytest.mark.parametrize("interval, verdict", [
    ((5.01, 6.0), LARGER),          # entirely above high
    ((5.0, 6.0), SUPPORTED),        # touches high: overlaps
    ((4.0, 6.0), SUPPORTED),        # straddles high, above 0
    ((1.0, 2.5), SUPPORTED),        # straddles low, above 0
    ((2.5, 4.0), SUPPORTED),        # inside
    ((0.5, 2.0), SUPPORTED),        # touches low
    ((0.5, 1.5), CONTRADICTED),     # above 0 but entirely below low
    ((-1.0, 1.0), CONTRADICTED),    # entirely below low (and includes 0)
    ((-3.0, -1.0), CONTRADICTED),   # below 0
    ((-1.2, 3.4), INCONCLUSIVE),    # includes 0, reaches the range
    ((0.0, 3.0), INCONCLUSIVE),     # not above 0
    ((-0.5, 6.0), INCONCLUSIVE),    # includes 0 and the whole range
])
def test_range_verdict_at_each_boundary(interval, verdict):
    got, reason = range_verdict(interval, 2.0, 5.0)
    assert got == verdict
    if verdict == INCONCLUSIVE:
        assert "includes 0" in reason


@pytest.mark.parametrize("interval, reason", [
    ((5.5, 6.0), "CI [5.50, 6.00] lies above 5, the high end of the claimed [2, 5]"),
    ((2.5, 4.0), "CI [2.50, 4.00] lies above 0 and overlaps the claimed [2, 5]"),
    ((0.5, 1.5), "CI [0.50, 1.50] lies below 2, the low end of the claimed [2, 5]"),
    ((-1.2, 3.4), "CI [-1.20, 3.40] includes 0")])
def test_range_verdict_reason_gives_the_interval_and_the_claimed_range(interval, reason):
    assert range_verdict(interval, 2.0, 5.0)[1] == reason


@pytest.mark.parametrize("interval, verdict, reason", [
    ((0.1, 2.0), SUPPORTED, "CI [0.10, 2.00] lies above 0"),
    ((-2.0, -0.1), CONTRADICTED, "CI [-2.00, -0.10] lies below 0"),
    ((-0.1, 2.0), INCONCLUSIVE, "CI [-0.10, 2.00] includes 0"),
    ((0.0, 2.0), INCONCLUSIVE, "CI [0.00, 2.00] includes 0"),     # touches 0 from above
    ((-2.0, 0.0), INCONCLUSIVE, "CI [-2.00, 0.00] includes 0"),   # touches 0 from below
    ((-3.0, 0.5), INCONCLUSIVE, "CI [-3.00, 0.50] includes 0")])  # mostly below, not all
def test_direction_verdict_at_each_boundary_with_its_interval_in_the_reason(interval, verdict,
                                                                            reason):
    assert direction_verdict(interval) == (verdict, reason)


def test_a_claim_of_direction_minus_is_judged_on_baseline_minus_treatment():
    claim = dataclasses.replace(LINEAR, direction="-")
    drop = paired_differences({0: 50.0, 1: 52.0, 2: 51.0}, {0: 47.0, 1: 48.5, 2: 48.5})
    assert drop.mean == pytest.approx(-3.0)
    verdict, reason = claim_verdict(drop, claim)
    assert verdict == SUPPORTED and reason.startswith("baseline − treatment")
    assert claim_verdict(drop, LINEAR)[0] == CONTRADICTED


# ---- linear evaluation: pairing, CI, verdicts ------------------------------------------------


def test_pairing_is_by_seed_and_a_seed_run_with_one_sampler_only_is_dropped(tmp_path):
    values = _arms([70.0, 80.0, 90.0], [3.0, 3.5, 2.5])
    values["ring"][3] = 99.0  # no uniform run of seed 3
    values["uniform"][4] = 10.0  # no ring run of seed 4
    _linear(tmp_path, "ir", values)
    row = _one(claim_frame(load_records(tmp_path), LINEAR))
    assert (row["n_pairs"], row["seeds"], row["unpaired_seeds"]) == (3, "0;1;2", "3;4")
    assert row["diff_mean"] == pytest.approx(3.0)
    assert (row["baseline_mean"], row["treatment_mean"]) == (pytest.approx(80.0),
                                                             pytest.approx(83.0))


def test_ci_is_the_t_interval_of_the_paired_differences_not_of_the_two_means(tmp_path):
    baseline, diffs = [70.0, 80.0, 90.0], [3.0, 3.5, 2.5]
    values = _arms(baseline, diffs)
    _linear(tmp_path, "ir", values)
    row = _one(claim_frame(load_records(tmp_path), LINEAR))
    low, high = _scipy_ci(diffs)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["ci95"] == pytest.approx((high - low) / 2)
    assert row["verdict"] == SUPPORTED  # [1.76, 4.24]
    # Unpaired, the seed-to-seed spread of the baseline swamps the difference: Welch's interval
    # of the difference of means includes 0, so treating the arms as independent would change
    # both the interval and the verdict.
    welch = stats.ttest_ind(list(values["ring"].values()), baseline,
                            equal_var=False).confidence_interval(0.95)
    assert welch.low < 0 < welch.high
    assert row["ci_low"] > 0 and row["ci_low"] != pytest.approx(welch.low)


@pytest.mark.parametrize("sd, half_width", [(1.3, 1.0), (8.82, 1.0), (0.4, 1.0), (3.0, 0.25),
                                             (0.0, 1.0)])
def test_seeds_for_half_width_is_the_first_n_whose_t_interval_is_that_narrow(sd, half_width):
    def half(n):  # scipy.stats' t quantile, not the module's scipy.special one
        return stats.t.ppf(0.975, n - 1) * sd / n ** 0.5

    n = seeds_for_half_width(sd, half_width)
    assert half(n) < half_width
    assert n == 2 or half(n - 1) >= half_width
    assert seeds_for_half_width(1000.0, 0.001, cap=50) is None


def _with_sd(n, mean, sd):
    """``n`` values with exactly this mean and sample standard deviation (ddof 1)."""
    base = pd.Series(range(n), dtype=float)
    z = (base - base.mean()) / base.std(ddof=1)
    return list(mean + sd * z)


@pytest.mark.parametrize("sd", [0.7, 2.5, 8.8])
def test_seeds_to_decide_settles_a_sized_claim_whatever_the_mean_and_one_fewer_may_not(sd):
    """At the projected n, a CI at the measured s is decisive for every mean Δ (it cannot hold
    both 0 and the claim's low end); at n - 1 a mean of low / 2 leaves it inconclusive."""
    measured = paired_differences({s: 0.0 for s in range(5)},
                                  dict(enumerate(_with_sd(5, 1.0, sd))))
    n = seeds_to_decide(measured, LINEAR)
    assert n is not None and n >= 2
    for mean in [-4.0, -1.0, 0.0, 0.5, 1.0, 1.5, 1.99, 2.0, 2.01, 3.0, 4.9, 5.0, 6.0, 9.0]:
        diffs = _with_sd(n, mean, sd)
        interval = paired_differences({s: 0.0 for s in range(n)}, dict(enumerate(diffs))).interval
        assert range_verdict(interval, LINEAR.low, LINEAR.high)[0] != INCONCLUSIVE, (n, mean)
    if n > 2:
        diffs = _with_sd(n - 1, LINEAR.low / 2, sd)
        interval = paired_differences({s: 0.0 for s in range(n - 1)},
                                      dict(enumerate(diffs))).interval
        assert range_verdict(interval, LINEAR.low, LINEAR.high)[0] == INCONCLUSIVE


def test_seeds_to_decide_a_direction_claim_is_where_the_measured_mean_would_exclude_zero():
    diffs = [1.0, -0.5, 2.0, 0.3, 1.4]  # mean 0.84, CI includes 0
    measured = paired_differences({s: 0.0 for s in range(5)}, dict(enumerate(diffs)))
    n = seeds_to_decide(measured, FEWSHOT)
    mean, sd = pd.Series(diffs).mean(), pd.Series(diffs).std(ddof=1)
    low = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / n ** 0.5)[0]
    before = stats.t.interval(0.95, n - 2, loc=mean, scale=sd / (n - 1) ** 0.5)[0]
    assert low > 0 >= before
    one = paired_differences({0: 0.0}, {0: 1.0})
    assert seeds_to_decide(one, LINEAR) is None and seeds_to_decide(one, FEWSHOT) is None


def test_an_inconclusive_rows_reason_gives_the_seeds_to_decide_it(tmp_path):
    diffs = [-1.0, 3.0, 1.0]  # s = 2: half-width below 1 needs n with t * 2 / sqrt(n) < 1
    _linear(tmp_path, "moco", _arms([50.0, 55.0, 60.0], diffs))
    row = _one(claim_frame(load_records(tmp_path), LINEAR))
    expected = next(n for n in range(2, 1000)
                    if stats.t.ppf(0.975, n - 1) * 2.0 / n ** 0.5 < 1.0)
    assert row["verdict"] == INCONCLUSIVE and row["seeds_to_decide"] == expected == 18
    assert row["reason"].endswith(f"at the measured s of Δ 2.00, about {expected} paired seeds "
                                  "give a CI narrower than 2, which decides it whatever Δ is")


def test_a_row_no_feasible_number_of_seeds_would_settle_says_so_from_two_pairs(tmp_path):
    _linear(tmp_path, "ir", _arms([50.0, 50.0], [-10_000.0, 10_000.0]))  # s = 14,142
    for seed, diff in enumerate([-10.0, 10.0002]):  # mean 0.0001, s = 14.14: ~10^11 seeds
        for sampler, acc in (("uniform", 40.0), ("ring", 40.0 + diff)):
            _record(tmp_path, "fewshot", "ir", sampler, seed, {"accuracy": acc},
                    dataset="shapes", eval_dataset="omniglot")
    records = load_records(tmp_path)
    sized = _one(claim_frame(records, LINEAR))
    assert sized["n_pairs"] == 2 and pd.isna(sized["seeds_to_decide"])
    assert sized["reason"].endswith("; at the measured s of Δ 14142.14, no number of seeds up "
                                    "to 100,000 would decide it")
    direction = _one(claim_frame(records, FEWSHOT))
    assert direction["reason"].endswith("; at the measured s of Δ 14.14, no number of seeds "
                                        "up to 100,000 would exclude 0")


def test_arms_run_on_disjoint_seeds_give_no_pairs_and_list_every_seed_as_unpaired(tmp_path):
    _linear(tmp_path, "ir", {"uniform": {0: 50.0, 1: 51.0}, "ring": {2: 53.0, 3: 55.0}})
    row = _one(claim_frame(load_records(tmp_path), LINEAR))
    assert (row["n_pairs"], row["seeds"], row["unpaired_seeds"]) == (0, "", "0;1;2;3")
    assert row["reason"] == "n=0: no seed was run with both samplers"
    assert pd.isna(row["seeds_to_decide"]) and pd.isna(row["ci_low"])


def test_seeds_to_decide_from_two_pairs_for_a_small_sized_claim_and_a_unit_mean():
    """Two pairs are enough to project; a claim of size [0.5, 5] is settled by width (low > 0
    however small), a claim of [0, 5] only by excluding 0, as a claim of direction."""
    two = paired_differences({0: 10.0, 1: 10.0}, {0: 10.0, 1: 12.0})  # Δ = 0, 2: mean 1
    sd = 2 ** 0.5
    by_width = next(n for n in range(2, 10_000) if stats.t.ppf(0.975, n - 1) * sd / n ** 0.5
                    < 0.25)
    by_mean = next(n for n in range(2, 10_000) if stats.t.ppf(0.975, n - 1) * sd / n ** 0.5
                   < 1.0)
    assert seeds_to_decide(two, dataclasses.replace(LINEAR, low=0.5)) == by_width
    assert seeds_to_decide(two, dataclasses.replace(LINEAR, low=0.0)) == by_mean
    assert seeds_to_decide(two, FEWSHOT) == by_mean


def test_claim_records_are_the_claims_stage_metric_and_two_arms_only(tmp_path):
    _linear(tmp_path, "ir", {"uniform": {0: 50.0}, "ring": {0: 53.0}, "ring_const": {0: 1.0}})
    _record(tmp_path, "linear_eval", "ir", "ring", 1, {"top5": 90.0})
    records = load_records(tmp_path)
    rows = claim_records(records, LINEAR)  # default arms: uniform and ring
    assert sorted(rows["sampler"]) == ["ring", "uniform"] and set(rows["metric"]) == {"top1"}
    assert sorted(claim_records(records, LINEAR, "uniform", "ring_const")["sampler"]) == [
        "ring_const", "uniform"]
    assert claim_records(records, dataclasses.replace(LINEAR, stage="toy")).empty


def test_two_ring_variants_of_one_label_are_each_compared_with_the_baseline(tmp_path):
    """Records of label ``ring`` with two sets of parameters are two treatments, each its own
    row, never pooled: the arm is the label without its variant suffix."""
    _linear(tmp_path, "ir", _arms([50.0, 51.0], [3.0, 4.0]))
    for seed, top1 in ((0, 45.0), (1, 46.0)):
        _record(tmp_path, "linear_eval", "ir", "ring", seed, {"top1": top1},
                params={"name": "ring", "w_l": 0.5})
    frame = claim_frame(load_records(tmp_path), LINEAR)
    assert len(frame) == 2 and all(t.startswith("ring [") for t in frame["treatment"])
    assert sorted(frame["diff_mean"]) == [pytest.approx(-5.0), pytest.approx(3.5)]


def test_a_treatment_matching_baselines_of_two_configurations_is_not_paired(tmp_path):
    """Two ``uniform`` sampler configurations with the same experiment otherwise: the ring run
    could pair with either, so it pairs with neither and says why."""
    for sampler, params, shift in (("uniform", {"name": "uniform"}, 0.0),
                                   ("uniform", {"name": "uniform", "tau_plus": 0.1}, 1.0),
                                   ("ring", {"name": "ring", "w_l": 0.9}, 3.0)):
        for seed in (0, 1):
            _record(tmp_path, "linear_eval", "ir", sampler, seed, {"top1": 50.0 + shift},
                    params=params)
    row = _one(claim_frame(load_records(tmp_path), LINEAR))
    assert (row["n_pairs"], row["baseline"], row["treatment"]) == (0, "uniform", "ring")
    assert row["reason"] == ("n=0: uniform records of 2 configurations match; not paired "
                             "(never averaged across configurations)")
    assert (row["unpaired_seeds"], row["treatment_setup"] != "") == ("0;1", True)


def test_a_model_without_a_display_label_is_named_by_its_registry_name(tmp_path):
    _linear(tmp_path, "byol", _arms([50.0, 51.0], [3.0, 4.0]))
    frame = claim_frame(load_records(tmp_path), LINEAR)
    assert _one(frame)["reason"].startswith("byol is not among the claim's models (IR, CMC, "
                                            "MoCo)")
    assert claims_wide(frame).iloc[0]["pretrained on"] == "CIFAR10"
    _linear(tmp_path / "d", "ir", _arms([50.0, 51.0], [3.0, 4.0]), dataset="digits")
    assert claims_wide(claim_frame(load_records(tmp_path / "d"), LINEAR)).iloc[0][
        "pretrained on"] == "digits"  # no display label: the dataset's own name
    unknown_first = claims_notes(pd.DataFrame(), [dataclasses.replace(LINEAR, stage="toy"),
                                                  LINEAR])
    assert any(n.startswith("`linear_eval_gain`: the paper measured") for n in unknown_first)
    named = dataclasses.replace(LINEAR, models=("ir", "byol"))
    assert "tested as ring − uniform of `top1` in [2, 5], models IR, byol." in claims_notes(
        pd.DataFrame(), [named])[0]


def test_each_verdict_from_records(tmp_path):
    cases = {  # eval dataset -> (per-seed differences, verdict)
        "above": ([6.0, 6.5, 7.0], LARGER),
        "inside": ([3.0, 3.5, 2.5], SUPPORTED),
        "small": ([1.0, 1.2, 0.8], CONTRADICTED),  # CI in (0, 2)
        "zero": ([-1.0, 3.0, 1.0], INCONCLUSIVE),  # CI includes 0
        "single": ([3.0], INCONCLUSIVE),
    }
    for name, (diffs, _) in cases.items():
        _linear(tmp_path, "moco", _arms([50.0 + 5 * i for i in range(len(diffs))], diffs),
                dataset=name)
    frame = claim_frame(load_records(tmp_path), LINEAR)
    for name, (diffs, verdict) in cases.items():
        row = _one(frame, task=name)
        assert row["verdict"] == verdict, (name, row["reason"])
        assert row["n_pairs"] == len(diffs)
        if len(diffs) > 1:
            low, high = _scipy_ci(diffs)
            assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert "includes 0" in _one(frame, task="zero")["reason"]
    assert _one(frame, task="single")["reason"] == "n=1: no interval"
    assert pd.isna(_one(frame, task="single")["ci_low"])


def test_pair_key_ignores_the_sampler_at_any_depth_but_nothing_else_even_inside_lists():
    base = {"pretrain": {"sampler": {"name": "uniform"}, "sampler_label": "uniform",
                         "augment": [{"crop": 0.2}, {"flip": 0.5}]}}
    ring = {"pretrain": {"sampler": {"name": "ring", "w_l": 0.9}, "sampler_label": "ring",
                         "augment": [{"crop": 0.2}, {"flip": 0.5}]}}
    other = {"pretrain": {"sampler": {"name": "ring"}, "sampler_label": "ring",
                          "augment": [{"crop": 0.08}, {"flip": 0.5}]}}
    nested = {"runs": [{"sampler": "uniform", "epochs": 3}]}
    assert pair_key(base) == pair_key(ring) != pair_key(other)
    assert pair_key(nested) == pair_key({"runs": [{"sampler": "ring", "epochs": 3}]})
    assert pair_key(nested) != pair_key({"runs": [{"sampler": "ring", "epochs": 4}]})
    assert pair_key(None) == "" and pair_key(base) != ""


def test_records_of_two_configurations_are_never_mixed(tmp_path):
    long_run = ([60.0, 62.0, 64.0], [3.0, 4.0, 3.5])
    short_run = ([20.0, 30.0, 25.0], [-1.0, 0.5, 1.0])
    _linear(tmp_path, "ir", _arms(*long_run), epochs=12)
    _linear(tmp_path, "ir", _arms(*short_run), epochs=1)
    # a ring run of a third configuration with no uniform partner, and vice versa
    _linear(tmp_path, "ir", {"ring": {0: 99.0, 1: 98.0}}, epochs=7)
    _linear(tmp_path, "ir", {"uniform": {0: 1.0}}, epochs=5)
    frame = claim_frame(load_records(tmp_path), LINEAR)
    paired = frame[frame["n_pairs"] > 0]
    assert sorted(paired["n_pairs"]) == [3, 3]
    got = sorted(zip(paired["diff_mean"], paired["ci_low"]))
    want = sorted((sum(d) / 3, _scipy_ci(d)[0]) for _, d in (long_run, short_run))
    assert got == [(pytest.approx(m), pytest.approx(lo)) for m, lo in want]
    for _, row in paired.iterrows():  # each arm of a row holds one configuration
        assert row["baseline_setup"] and row["treatment_setup"]
    alone = frame[frame["n_pairs"] == 0]
    assert len(alone) == 2 and (alone["verdict"] == INCONCLUSIVE).all()
    assert all("only in other configurations" in r for r in alone["reason"])
    assert len(frame) == 4 and set(frame["scale"]) == {"default"}


def test_scale_is_a_column_and_each_scale_gets_its_own_row(tmp_path):
    _linear(tmp_path, "cmc", _arms([50.0, 51.0], [3.0, 4.0]), scale="default")
    _linear(tmp_path, "cmc", _arms([80.0, 81.0], [0.5, 0.7]), scale="paper")
    frame = claim_frame(load_records(tmp_path), LINEAR)
    default, paper = _one(frame, scale="default"), _one(frame, scale="paper")
    assert (default["n_pairs"], default["diff_mean"]) == (2, pytest.approx(3.5))
    assert (paper["n_pairs"], paper["diff_mean"]) == (2, pytest.approx(0.6))
    wide = claims_wide(frame)
    assert list(wide["scale"]) == ["default", "paper"]


def test_a_model_the_claim_does_not_name_is_shown_as_not_claimed_with_its_interval(tmp_path):
    diffs = [6.0, 6.5, 7.0]
    _linear(tmp_path, "simclr", _arms([50.0, 55.0, 60.0], diffs))
    row = _one(claim_frame(load_records(tmp_path), LINEAR), model="simclr")
    assert (row["verdict"], row["rule_verdict"], row["claimed"]) == (NOT_CLAIMED, LARGER, False)
    assert row["ci_low"] == pytest.approx(_scipy_ci(diffs)[0])
    wide = claims_wide(claim_frame(load_records(tmp_path), LINEAR))
    assert wide.iloc[0]["verdict"] == NOT_CLAIMED
    assert wide.iloc[0]["95% CI of Δ"].startswith("[")


def test_the_reading_table_writes_each_number_of_the_tidy_row(tmp_path):
    """One comparison, every column of the wide (markdown) row against values worked out here:
    arm means over the pairs, Δ signed, the scipy t interval, "—" where there is none."""
    _linear(tmp_path, "ir", {"uniform": {0: 50.0, 1: 51.0}, "ring": {0: 53.0, 1: 55.0}})
    _linear(tmp_path, "cmc", {"uniform": {0: 60.0}, "ring": {0: 58.5}})
    tidy = claim_frame(load_records(tmp_path), LINEAR)
    wide = claims_wide(tidy)
    low, high = _scipy_ci([3.0, 4.0])
    assert list(tidy["claimed"]) == [True, True] and set(tidy["stage"]) == {"linear_eval"}
    assert list(tidy["direction"]) == ["+", "+"]
    ir = wide[wide["comparison"] == "IR + Ring − IR"].iloc[0]
    assert list(ir) == [
        "linear_eval_gain", "CIFAR10", "CIFAR10", "IR + Ring − IR", "top1", "default", "2",
        "50.50", "54.00", "+3.50", f"[{low:.2f}, {high:.2f}]", INCONCLUSIVE, ir["reason"]]
    cmc = wide[wide["comparison"] == "CMC + Ring − CMC"].iloc[0]
    assert (cmc["n"], cmc["baseline"], cmc["treatment"], cmc["Δ (treatment − baseline)"],
            cmc["95% CI of Δ"], cmc["reason"]) == ("1", "60.00", "58.50", "-1.50", "—",
                                                   "n=1: no interval")


def test_an_arm_without_a_partner_says_whether_it_was_run_elsewhere_or_not_at_all(tmp_path):
    _linear(tmp_path, "ir", {"uniform": {0: 50.0, 1: 51.0}})  # no ring run at all
    _linear(tmp_path, "cmc", {"uniform": {0: 50.0, 1: 51.0}})
    _linear(tmp_path, "cmc", {"ring": {0: 53.0, 1: 55.0}}, epochs=20)  # another experiment
    _linear(tmp_path, "cmc", {"uniform": {0: 50.0}}, epochs=30)  # and a third
    records = load_records(tmp_path)
    frame = claim_frame(records, LINEAR)
    ir = _one(frame, model="ir")
    assert (ir["n_pairs"], ir["reason"]) == (0, "n=0: no ring run to pair with")
    assert (ir["baseline"], ir["treatment"], ir["unpaired_seeds"]) == ("uniform", "ring", "0;1")
    base_setup = _select(records, TABLES["table1"])["_setup"]
    assert ir["baseline_setup"] in set(base_setup) and ir["treatment_setup"] == ""
    assert ir["baseline_mean"] is None or pd.isna(ir["baseline_mean"])
    assert claims_wide(frame[frame["model"] == "ir"]).iloc[0]["baseline"] == "—"
    reasons = list(frame.loc[frame["model"] == "cmc", "reason"])
    assert len(reasons) == 3 and set(reasons) == {
        "n=0: ring was run only in other configurations (beyond the sampler): not paired",
        "n=0: uniform was run only in other configurations (beyond the sampler): not paired"}


def test_a_model_outside_the_claim_names_the_claims_models_in_the_reason(tmp_path):
    _linear(tmp_path, "simclr", _arms([50.0, 55.0, 60.0], [6.0, 6.5, 7.0]))
    row = _one(claim_frame(load_records(tmp_path), LINEAR), model="simclr")
    assert row["reason"].startswith("SimCLR is not among the claim's models (IR, CMC, MoCo); "
                                    "the rule would say: larger than claimed (CI [")


def test_each_claims_note_says_what_is_tested_on_which_models():
    notes = claims_notes(pd.DataFrame(), [LINEAR, FEWSHOT], records=None)
    assert notes[0] == (
        f"Claim `linear_eval_gain` (quoted from {LINEAR.source}): \"{LINEAR.quote}\"; tested as "
        "ring − uniform of `top1` in [2, 5], models IR, CMC, MoCo.")
    assert notes[1] == (
        f"Claim `fewshot_transfer` (quoted from {FEWSHOT.source}): \"{FEWSHOT.quote}\"; tested "
        "as ring above uniform in `accuracy`, any model.")
    minus = dataclasses.replace(LINEAR, direction="-", wording="paraphrase")
    note = claims_notes(pd.DataFrame(), [minus], "nce", "hard")[0]
    assert "(paraphrased from" in note and "tested as nce − hard of `top1` in [2, 5]" in note
    below = dataclasses.replace(FEWSHOT, direction="-")
    assert "tested as hard below nce in `accuracy`" in claims_notes(pd.DataFrame(), [below],
                                                                    "nce", "hard")[0]


def test_notes_say_where_the_paper_measured_each_claim_and_which_rows_are_in_domain():
    """The paper's data per claim (linear eval on its four datasets; detection on VOC / COCO
    from ImageNet encoders), and the in-domain few-shot tasks named."""
    tidy = pd.DataFrame({"in_domain": [True, False, True], "task": ["shapes", "omniglot",
                                                                    "digits"]})
    notes = claims_notes(tidy, [LINEAR, DETECTION])
    assert ("`linear_eval_gain`: the paper measured CIFAR10, CIFAR100, STL10, ImageNet; rows "
            "on other data (our offline stand-ins) apply the claim's rule to other data."
            in notes)
    assert ("`detection_transfer`: the paper measured VOC detection on voc2007_test, COCO "
            "instance seg. on coco2017_val, COCO keypoints on coco2017_val with encoders "
            "pretrained on imagenet; rows on other data (our offline stand-ins) apply the "
            "claim's rule to other data." in notes)
    assert f"in-domain (digits, shapes): {IN_DOMAIN_NOTE}." in notes
    assert not any(n.startswith("in-domain") for n in claims_notes(tidy.iloc[[1]], [LINEAR]))


def test_each_verdict_rule_note_lists_exactly_the_claims_it_applies_to():
    def rules(notes):
        return [n.split(":")[0] for n in notes if n.startswith("Verdict, claim")]

    assert rules(claims_notes(pd.DataFrame(), [LINEAR, FEWSHOT, DETECTION])) == [
        "Verdict, claim with a size [low, high] (`linear_eval_gain`",
        "Verdict, claim of direction only (`fewshot_transfer`, `detection_transfer`)"]
    assert rules(claims_notes(pd.DataFrame(), [LINEAR])) == [
        "Verdict, claim with a size [low, high] (`linear_eval_gain`"]
    assert rules(claims_notes(pd.DataFrame(), [FEWSHOT])) == [
        "Verdict, claim of direction only (`fewshot_transfer`)"]


def test_notes_name_the_configurations_a_claims_arms_were_split_into(tmp_path):
    _linear(tmp_path, "ir", _arms([50.0, 51.0], [3.0, 4.0]))
    _linear(tmp_path, "ir", _arms([50.0, 51.0], [3.0, 4.0]), epochs=20)
    _linear(tmp_path, "cmc", {"ring_const": {0: 50.0}}, epochs=30)  # neither arm: no note
    records = load_records(tmp_path)
    notes = claims_notes(claims_frame(records, [LINEAR]), [LINEAR], records=records)
    split = [n for n in notes if "records of 2 configurations" in n]
    assert [n.split(" (scale")[0] for n in split] == ["IR + Ring on CIFAR10", "IR on CIFAR10"]
    assert all("pretrain.epochs=10" in n and "pretrain.epochs=20" in n for n in split)
    assert not any("epochs=30" in n for n in notes)
    assert claims_notes(claims_frame(records, [LINEAR]), [LINEAR]) == [
        n for n in notes if n not in split]  # without records: no configuration notes


def test_baseline_and_treatment_labels_are_arguments(tmp_path):
    _linear(tmp_path, "ir", {"uniform": {0: 50.0, 1: 52.0}, "ring": {0: 60.0, 1: 61.0},
                             "ring_50_99": {0: 51.0, 1: 53.5}})
    records = load_records(tmp_path)
    assert _one(claim_frame(records, LINEAR), model="ir")["diff_mean"] == pytest.approx(9.5)
    other = _one(claim_frame(records, LINEAR, treatment="ring_50_99"), model="ir")
    assert other["diff_mean"] == pytest.approx(1.25) and other["treatment"] == "ring_50_99"
    with pytest.raises(ValueError, match="nothing to compare"):
        claim_frame(records, LINEAR, baseline="ring", treatment="ring")
    with pytest.raises(ValueError, match=r"claim 'linear_eval_gain': no table of stage 'toy' "
                                         r"\(one of \['detection', 'fewshot', 'linear_eval'\]\)"):
        claim_frame(records, dataclasses.replace(LINEAR, stage="toy"))


# ---- transfer: direction-only claims -----------------------------------------------------


def test_fewshot_direction_verdicts_and_in_domain_rows(tmp_path):
    cases = {"omniglot": ([1.0, 1.5, 2.0], SUPPORTED), "aircraft": ([-2.0, -1.5, -1.0],
                                                                     CONTRADICTED),
             "dtd": ([-1.0, 2.0, 0.5], INCONCLUSIVE), "fungi": ([2.0], INCONCLUSIVE),
             "shapes": ([1.0, 1.5, 2.0], NOT_CLAIMED)}  # the pretraining data: in-domain
    for source, (diffs, _) in cases.items():
        for sampler, per_seed in _arms([40.0 + i for i in range(len(diffs))], diffs).items():
            for seed, acc in per_seed.items():
                _record(tmp_path, "fewshot", "ir", sampler, seed, {"accuracy": acc},
                        dataset="shapes", eval_dataset=source)
    frame = claim_frame(load_records(tmp_path), FEWSHOT)
    for source, (diffs, verdict) in cases.items():
        row = _one(frame, task=source)
        assert row["verdict"] == verdict, (source, row["reason"])
        if len(diffs) > 1:
            assert row["ci_low"] == pytest.approx(_scipy_ci(diffs)[0])
    in_domain = _one(frame, task="shapes")
    assert in_domain["in_domain"] and in_domain["rule_verdict"] == SUPPORTED
    assert "in-domain" in in_domain["reason"]
    evaluated = dict(zip(frame["task"], claims_wide(frame)["evaluated on"]))
    assert evaluated["shapes"] == "shapes (in-domain)" and evaluated["omniglot"] == "omniglot"
    assert _one(frame, task="fungi")["reason"] == "n=1: no interval"


def test_detection_uses_each_tasks_headline_ap(tmp_path):
    # task -> {sampler: metrics}; the other APs go the opposite way and must be ignored
    runs = {"voc_det": ({"bbox_AP": 10.0, "bbox_AP50": 30.0}, {"bbox_AP": 12.0, "bbox_AP50": 20.0}),
            "coco_mask": ({"bbox_AP": 20.0, "segm_AP": 15.0}, {"bbox_AP": 10.0, "segm_AP": 17.0}),
            "coco_kpt": ({"bbox_AP": 20.0, "keypoints_AP": 30.0},
                         {"bbox_AP": 25.0, "keypoints_AP": 27.0})}
    for seed, shift in enumerate([0.0, 0.5, -0.3]):
        for task, (uniform, ring) in runs.items():
            for sampler, metrics in (("uniform", uniform), ("ring", ring)):
                _record(tmp_path, "detection", "moco", sampler, seed,
                        {k: v + shift * (1 + (sampler == "ring")) for k, v in metrics.items()},
                        dataset="shapes", eval_dataset="shapes_coco",
                        extra={"task": task, "backend": "torchvision"})
    frame = claim_frame(load_records(tmp_path), DETECTION)
    assert sorted(zip(frame["task"], frame["metric"])) == [
        ("coco_kpt", "keypoints_AP"), ("coco_mask", "segm_AP"), ("voc_det", "bbox_AP")]
    for task, verdict in (("voc_det", SUPPORTED), ("coco_mask", SUPPORTED),
                          ("coco_kpt", CONTRADICTED)):
        row = _one(frame, task=task)
        uniform, ring = runs[task]
        metric = row["metric"]
        diffs = [ring[metric] - uniform[metric] + s for s in (0.0, 0.5, -0.3)]
        assert row["ci_low"] == pytest.approx(_scipy_ci(diffs)[0])
        assert row["verdict"] == verdict
        assert (row["evaluated_on"], row["backend"]) == ("shapes_coco", "torchvision")


# ---- the written table ---------------------------------------------------------------------


def test_notes_quote_the_claims_csv_and_state_the_rules(tmp_path):
    _linear(tmp_path / "results", "ir", _arms([50.0, 51.0], [3.0, 4.0]))
    reported = tmp_path / "reported"
    reported.mkdir()
    text = (REPORTED / "claims.csv").read_text().replace(
        "four standard image datasets", "four standard image datasets [edited for this test]")
    (reported / "claims.csv").write_text(text)
    paths = make_tables(tmp_path / "results", tmp_path / "out", reported, only=["claims"])
    assert sorted(p.name for p in paths) == ["claims.csv", "claims.md", "claims.tex"]
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "four standard image datasets [edited for this test]" in md
    assert "abstract, arXiv:2010.02037v1 (ICLR 2021)" in md
    assert "**larger than claimed**: the CI lies above high" in md
    assert "**contradicted**: the CI lies below low" in md
    assert "a verdict at one scale says nothing about another" in md
    tex = (tmp_path / "out" / "claims.tex").read_text()
    assert "\\begin{tabular}" in tex and "$\\Delta$" in tex


def test_cli_only_claims_writes_rounded_csv_and_takes_the_sampler_labels(tmp_path):
    _linear(tmp_path, "ir", {"uniform": {0: 50.123456789, 1: 51.0},
                             "ring": {0: 53.0, 1: 55.0}, "ring_const": {0: 40.0, 1: 41.0}})
    out = tmp_path / "tables"
    assert report_main(["tables", "--results", str(tmp_path), "--out", str(out),
                        "--reported", str(REPORTED), "--only", "claims",
                        "--treatment", "ring_const"]) == 0
    assert not (out / "table1_linear_eval.md").exists()
    tidy = pd.read_csv(out / "claims.csv")
    row = tidy[tidy["model"] == "ir"].iloc[0]
    assert row["treatment"] == "ring_const" and row["diff_mean"] < 0
    for value in tidy[["baseline_mean", "diff_mean", "ci95", "ci_low"]].stack().dropna():
        assert value == round(value, 4)
    assert "50.123456789" not in (out / "claims.csv").read_text()


def test_no_records_give_an_empty_table_that_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    make_tables(tmp_path / "results", tmp_path, REPORTED, only=["claims"])
    assert "No records of these stages" in (tmp_path / "claims.md").read_text()
    assert claims_frame(load_records(tmp_path / "results"), list(CLAIMS.values())).empty


# ---- the claims as a figure ---------------------------------------------------------------


def _forest(fig):
    """{y tick label: (marker x, marker colour, (CI low, CI high) or None)} of every panel of
    the claims figure, read back from what matplotlib drew, and the shaded spans per panel."""
    from matplotlib.colors import to_rgba

    rows, spans = {}, []
    for ax in fig.axes:
        labels = {round(float(y), 6): t.get_text()
                  for y, t in zip(ax.get_yticks(), ax.get_yticklabels())}
        markers = {round(float(line.get_ydata()[0]), 6): line for line in ax.lines
                   if line.get_marker() == "o"}
        bars = {}
        for collection in ax.collections:
            for seg in collection.get_segments():
                (x0, y0), (x1, y1) = seg
                if y0 == y1:  # a horizontal CI bar, not the caps
                    bars[round(float(y0), 6)] = (min(x0, x1), max(x0, x1))
        for y, label in labels.items():
            line = markers.get(y)
            rows[label] = (None if line is None else float(line.get_xdata()[0]),
                           None if line is None else to_rgba(line.get_color()), bars.get(y))
        spans += [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]
    return rows, spans


def test_claims_figure_draws_each_comparison_at_its_paired_mean_and_t_interval(tmp_path):
    from matplotlib.colors import to_rgba

    from repro.report.claims import VERDICT_COLORS, plot_claims

    _linear(tmp_path, "moco", _arms([50.0, 51.0, 52.0], [6.0, 6.5, 7.0]))  # larger
    _linear(tmp_path, "ir", _arms([60.0, 58.0, 61.0], [-1.0, 3.0, 1.0]))  # inconclusive
    _linear(tmp_path, "cmc", _arms([40.0, 42.0, 41.0], [-3.0, -2.5, -2.7]))  # contradicted
    _linear(tmp_path, "simclr", {"uniform": {0: 70.0}, "ring": {0: 72.5}})  # n=1, no CI
    tidy = claims_frame(load_records(tmp_path), [LINEAR])
    rows, spans = _forest(plot_claims(tidy))
    assert spans == [(2.0, 5.0)]  # the claimed size, read from claims.csv
    expect = {"MoCo": ([6.0, 6.5, 7.0], LARGER), "IR": ([-1.0, 3.0, 1.0], INCONCLUSIVE),
              "CMC": ([-3.0, -2.5, -2.7], CONTRADICTED)}
    for model, (diffs, verdict) in expect.items():
        (label,) = [k for k in rows if k.startswith(f"{model}, ") and "(n=3)" in k]
        x, color, bar = rows[label]
        assert x == pytest.approx(sum(diffs) / 3)
        assert bar == pytest.approx(_scipy_ci(diffs))
        assert color == to_rgba(VERDICT_COLORS[verdict])
    (label,) = [k for k in rows if k.startswith("SimCLR, ")]
    assert "(n=1)" in label and rows[label][0] == pytest.approx(2.5) and rows[label][2] is None


def test_claims_figure_has_one_panel_per_claim_and_scale_and_labels_other_samplers(tmp_path):
    _linear(tmp_path, "ir", _arms([50.0, 51.0], [2.0, 3.0]))
    _linear(tmp_path, "ir", _arms([50.0, 51.0], [2.0, 3.0]), scale="paper")
    _linear(tmp_path, "ir", {"uniform": {0: 50.0, 1: 51.0}, "ring_const": {0: 49.0, 1: 48.0}},
            dataset="stl10")
    _record(tmp_path, "fewshot", "ir", "uniform", 0, {"accuracy": 40.0}, dataset="cifar10",
            eval_dataset="omniglot")
    _record(tmp_path, "fewshot", "ir", "ring_const", 0, {"accuracy": 41.0}, dataset="cifar10",
            eval_dataset="omniglot")
    for seed in (0, 1):
        for sampler in ("uniform", "ring"):
            _record(tmp_path, "detection", "moco", sampler, seed,
                    {"bbox_AP": 10.0 + seed + (sampler == "ring")}, dataset="shapes",
                    eval_dataset="shapes_coco", extra={"task": "voc_det", "backend": "torchvision"})
    out = tmp_path / "figures"
    assert report_main(["figures", "--results", str(tmp_path), "--out", str(out), "--only",
                        "claims", "--reported", str(REPORTED), "--treatment", "ring_const"]) == 0
    assert (out / "claims.png").stat().st_size > 0 and (out / "claims.pdf").exists()
    from repro.report.claims import plot_claims

    titles = ["linear_eval_gain (scale=default)", "linear_eval_gain (scale=paper)",
              "fewshot_transfer (scale=default)", "detection_transfer (scale=default)"]
    for treatment in ("ring", "ring_const"):
        tidy = claims_frame(load_records(tmp_path), list(CLAIMS.values()), "uniform", treatment)
        fig = plot_claims(tidy)
        assert [ax.get_title().split(":")[0] for ax in fig.axes] == titles
        labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        assert [label.rsplit("(n=", 1)[1] for label in labels] == [
            f"{n})" for n in tidy["n_pairs"]]  # every row of the table, in its order
        assert all(("[ring_const − uniform]" in label) == (treatment == "ring_const")
                   for label in labels)
        assert treatment != "ring" or not any(" [" in label for label in labels)
    # model, pretraining data, → evaluation data (few-shot, detection with its AP), n
    assert labels == ["IR, CIFAR10 [ring_const − uniform] (n=0)",
                      "IR, STL10 [ring_const − uniform] (n=2)",
                      "IR, CIFAR10 [ring_const − uniform] (n=0)",
                      "IR, CIFAR10 → omniglot [ring_const − uniform] (n=1)",
                      "MoCo, shapes → VOC detection on shapes_coco (torchvision) bbox_AP "
                      "[ring_const − uniform] (n=0)"]


def test_claims_figure_footer_describes_only_the_records_the_claims_compare(tmp_path):
    """Runs of neither arm (another sampler, another scale) and of a metric no claim reads
    stay out of the footer's scales and seeds."""
    from repro.report.figures import FOOTER_PREFIX, _build

    _linear(tmp_path, "ir", _arms([50.0, 51.0], [2.0, 3.0]))
    _linear(tmp_path, "ir", {"ring_const": {7: 40.0}}, scale="study")
    _record(tmp_path, "linear_eval", "ir", "ring", 9, {"top5": 90.0}, scale="paper")
    fig = _build("claims", load_records(tmp_path), tmp_path, None, None,
                 {"reported_dir": REPORTED, "baseline": "uniform", "treatment": "ring"})
    footer = [t.get_text() for t in fig.texts if t.get_text().startswith(FOOTER_PREFIX)]
    assert len(footer) == 1 and "scale=default" in footer[0]
    assert "seeds 0,1 " in footer[0]
    assert "scale=study" not in footer[0] and "scale=paper" not in footer[0]


def test_claims_figure_without_records_says_what_to_run(tmp_path):
    from repro.report.claims import plot_claims

    fig = plot_claims(claims_frame(load_records(tmp_path), [LINEAR]))
    assert "snakemake --cores all" in fig.axes[0].texts[0].get_text()


@pytest.mark.slow
def test_claims_rule_regenerates_the_table_from_records(tmp_path, run_report_rule):
    results = tmp_path / "results"
    _linear(results, "moco", _arms([50.0, 51.0, 52.0], [6.0, 6.5, 7.0]))
    proc = run_report_rule(results, tmp_path, "claims")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "tables" / "claims.md").read_text()
    assert "larger than claimed" in md and "MoCo + Ring − MoCo" in md
    assert (tmp_path / "tables" / "claims.tex").exists()
    assert (tmp_path / "tables" / "claims.csv").exists()
    assert (tmp_path / "figures" / "claims.png").stat().st_size > 0
    assert (tmp_path / "figures" / "claims.pdf").read_bytes().startswith(b"%PDF-")
