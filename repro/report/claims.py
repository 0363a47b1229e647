"""The paper's claims against our records: paired differences by seed, and a verdict per row.

Each claim of ``tables/reported/claims.csv`` (:func:`repro.report.reported.load_claims`) is
checked on the records of its stage. One row per comparison of a treatment sampler (default
``ring``) with a baseline sampler (default ``uniform``) at one (pretraining dataset, evaluation
dataset / source / task, model, metric, scale):

* Δ = treatment − baseline of each seed run with both (:func:`paired_differences`); seeds run
  with one sampler only are dropped, never averaged in;
* its mean and t-based 95% CI over the paired differences (:func:`repro.report.stats.t_ci95`);
* a verdict from the CI (:func:`range_verdict` for a claim with a size, e.g. "2-5 points";
  :func:`direction_verdict` for a claim of direction only), or ``not claimed`` for models the
  claim does not name and for in-domain few-shot rows, with what the rule would say.

Cells are cut as Tables 1-3 cut them (:func:`repro.report.tables._select`): records of
different setup hashes never share an arm, and a baseline pairs only with a treatment whose
configuration is the same apart from the sampler (:func:`pair_key`); a comparison without such
a partner is a row with ``n = 0`` and the reason, never a pooled average.

Everything here is a pure function of the records and the claims; writing the files is
:func:`repro.report.tables.write_files`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from repro.report.reported import Claim
from repro.report.stats import sample_sd, seeds_for_half_width, t_ci95
from repro.report.tables import (DATASET_LABELS, EVALUATED_ON, IN_DOMAIN_NOTE, MODEL_LABELS,
                                 TABLES, TableSpec, _base_sampler, _rank, _select,
                                 _split_keys, config_split_notes, method_label, model_rank)

__all__ = [
    "SUPPORTED",
    "LARGER",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "NOT_CLAIMED",
    "CLAIMS_STEM",
    "CLAIMS_TITLE",
    "RANGE_RULES",
    "DIRECTION_RULES",
    "Paired",
    "paired_differences",
    "range_verdict",
    "direction_verdict",
    "claim_verdict",
    "seeds_to_decide",
    "pair_key",
    "arm_of",
    "claim_records",
    "claim_frame",
    "claims_frame",
    "claims_wide",
    "claims_notes",
    "VERDICT_COLORS",
    "plot_claims",
]

SUPPORTED = "supported"
LARGER = "larger than claimed"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_CLAIMED = "not claimed"

CLAIMS_STEM = "claims"
CLAIMS_TITLE = ("Claims: the paper's claims against our records "
                "(treatment − baseline, paired by seed)")

# The rules, as the notes state them; range_verdict / direction_verdict implement them.
RANGE_RULES = (
    f"**{SUPPORTED}**: the CI lies above 0 and overlaps [low, high]",
    f"**{LARGER}**: the CI lies above high",
    f"**{CONTRADICTED}**: the CI lies below low",
    f"**{INCONCLUSIVE}**: otherwise, with the reason (e.g. \"n=1: no interval\", "
    "\"CI [-1.2, 3.4] includes 0\")",
)
DIRECTION_RULES = (
    f"**{SUPPORTED}**: the CI lies above 0",
    f"**{CONTRADICTED}**: the CI lies below 0",
    f"**{INCONCLUSIVE}**: the CI includes 0, or n < 2",
)

# The table spec (cells, task field, split keys) of each stage a claim can be about.
_SPECS: dict[str, TableSpec] = {spec.stage: spec for spec in TABLES.values()}


@dataclass(frozen=True)
class Paired:
    """Treatment − baseline over the seeds run with both.

    ``seeds``: the paired seeds (sorted); ``diffs``: treatment − baseline per paired seed;
    ``baseline_mean`` / ``treatment_mean``: the arms' means over those seeds (``None`` without
    pairs); ``mean``: mean Δ; ``ci95``: its t-based half-width (``None`` for n < 2);
    ``unpaired``: seeds run with one arm only (dropped).
    """

    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    baseline_mean: Optional[float]
    treatment_mean: Optional[float]
    mean: Optional[float]
    ci95: Optional[float]
    unpaired: tuple[int, ...]

    @property
    def n(self) -> int:
        """Number of pairs."""
        return len(self.diffs)

    @property
    def interval(self) -> Optional[tuple[float, float]]:
        """The 95% CI of the mean Δ, ``(low, high)``, or ``None`` for n < 2."""
        if self.mean is None or self.ci95 is None:
            return None
        return self.mean - self.ci95, self.mean + self.ci95


def paired_differences(baseline: Mapping[int, float],
                       treatment: Mapping[int, float]) -> Paired:
    """Pair two arms' per-seed values (seed -> value) by seed: returns the :class:`Paired`
    differences treatment − baseline over the seeds both have, with their mean and t-based 95%
    CI (:func:`repro.report.stats.t_ci95`); the other seeds are listed as ``unpaired``."""
    seeds = tuple(sorted(set(baseline) & set(treatment)))
    unpaired = tuple(sorted(set(baseline) ^ set(treatment)))
    if not seeds:
        return Paired((), (), None, None, None, None, unpaired)
    diffs = tuple(float(treatment[s]) - float(baseline[s]) for s in seeds)
    mean, half, _ = t_ci95(diffs)
    return Paired(seeds, diffs, sum(float(baseline[s]) for s in seeds) / len(seeds),
                  sum(float(treatment[s]) for s in seeds) / len(seeds), mean, half, unpaired)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _ci_text(interval: tuple[float, float]) -> str:
    return f"CI [{_fmt(interval[0])}, {_fmt(interval[1])}]"


def range_verdict(interval: tuple[float, float], low: float, high: float) -> tuple[str, str]:
    """Verdict of a claim "Δ lies in [low, high]" from the 95% CI ``interval`` of Δ
    (:data:`RANGE_RULES`): returns ``(verdict, reason)``.

    A CI entirely above ``high`` is :data:`LARGER`, one entirely below ``low`` is
    :data:`CONTRADICTED` even when it is above 0 ([0.5, 1.5] against "2-5 points"); a CI that
    touches the range and lies above 0 is :data:`SUPPORTED`; anything else includes 0 and is
    :data:`INCONCLUSIVE`.
    """
    lo, hi = interval
    ci = _ci_text(interval)
    claimed = f"[{low:g}, {high:g}]"
    if hi < low:
        return CONTRADICTED, f"{ci} lies below {low:g}, the low end of the claimed {claimed}"
    if lo > high:
        return LARGER, f"{ci} lies above {high:g}, the high end of the claimed {claimed}"
    if lo > 0:
        return SUPPORTED, f"{ci} lies above 0 and overlaps the claimed {claimed}"
    return INCONCLUSIVE, f"{ci} includes 0"


def direction_verdict(interval: tuple[float, float]) -> tuple[str, str]:
    """Verdict of a claim "Δ > 0" from the 95% CI ``interval`` of Δ (:data:`DIRECTION_RULES`):
    returns ``(verdict, reason)``."""
    lo, hi = interval
    ci = _ci_text(interval)
    if lo > 0:
        return SUPPORTED, f"{ci} lies above 0"
    if hi < 0:
        return CONTRADICTED, f"{ci} lies below 0"
    return INCONCLUSIVE, f"{ci} includes 0"


def claim_verdict(paired: Paired, claim: Claim) -> tuple[str, str]:
    """What ``claim``'s rule says of ``paired``: returns ``(verdict, reason)``.

    Fewer than 2 pairs give :data:`INCONCLUSIVE` (``"n=1: no interval"``). A claim of direction
    ``-`` (treatment below baseline) is judged on baseline − treatment, and its reason says so.
    """
    interval = paired.interval
    if interval is None:
        if paired.n == 0:
            return INCONCLUSIVE, "n=0: no seed was run with both samplers"
        return INCONCLUSIVE, f"n={paired.n}: no interval"
    prefix = ""
    if claim.direction == "-":
        interval, prefix = (-interval[1], -interval[0]), "baseline − treatment: "
    if claim.has_range:
        verdict, reason = range_verdict(interval, claim.low, claim.high)
    else:
        verdict, reason = direction_verdict(interval)
    return verdict, prefix + reason


def seeds_to_decide(paired: Paired, claim: Claim) -> Optional[int]:
    """How many paired seeds would settle ``claim`` if the standard deviation ``s`` of Δ stayed
    as measured over ``paired`` (a projection for planning, not a result); ``None`` for fewer
    than 2 pairs, or when even :func:`repro.report.stats.seeds_for_half_width`'s cap is not
    enough.

    * A claim with a size [low, high], low > 0: the fewest n whose 95% CI is narrower than low
      (half-width below low / 2). Such a CI cannot hold both 0 and low, so the rule says
      supported, larger or contradicted whatever Δ turns out to be, never inconclusive.
    * A claim of direction only (or low <= 0): no width settles every Δ, so this is the fewest
      n whose CI would exclude 0 if the mean Δ also stayed as measured (half-width below
      |mean|); ``None`` when the mean is 0.
    """
    if paired.n < 2 or paired.mean is None:
        return None
    sd = sample_sd(paired.diffs)
    if _sized(claim):
        return seeds_for_half_width(sd, claim.low / 2)
    if paired.mean == 0:
        return None
    return seeds_for_half_width(sd, abs(paired.mean))


def _sized(claim: Claim) -> bool:
    """Whether a CI narrow enough settles ``claim`` whatever Δ is: it has a size, low > 0."""
    return claim.has_range and claim.low > 0


def _decide_text(paired: Paired, claim: Claim, n: Optional[int]) -> str:
    """The reason's clause on :func:`seeds_to_decide` (``""`` where there is nothing to say)."""
    if paired.n < 2:
        return ""
    sd = _fmt(sample_sd(paired.diffs))
    if n is None:
        return (f"; at the measured s of Δ {sd}, no number of seeds up to 100,000 would "
                + ("decide it" if _sized(claim) else "exclude 0"))
    if _sized(claim):
        return (f"; at the measured s of Δ {sd}, about {n} paired seeds give a CI narrower "
                f"than {claim.low:g}, which decides it whatever Δ is")
    return f"; if Δ's mean and s ({sd}) held, about {n} paired seeds would exclude 0"


_SAMPLER_KEYS = frozenset({"sampler", "sampler_label"})


def _strip(config: Any, keys: frozenset) -> Any:
    if isinstance(config, Mapping):
        return {k: _strip(v, keys) for k, v in config.items() if k not in keys}
    if isinstance(config, (list, tuple)):
        return [_strip(v, keys) for v in config]
    return config


def pair_key(config: Any) -> str:
    """The experiment a record belongs to apart from its sampler: the setup hash
    (:func:`repro.results.setup_hash`) of its config without the ``sampler`` and
    ``sampler_label`` keys (at any depth); ``""`` for a record without a config. A baseline
    and a treatment are compared only when their pair keys are equal."""
    from repro.results import setup_hash

    if not isinstance(config, Mapping):
        return ""
    return setup_hash(_strip(config, _SAMPLER_KEYS))


def arm_of(label: str) -> str:
    """The sampler label of a cell label of :func:`repro.report.tables._select` (without its
    ``" [w_l=...]"`` variant and ``" (config <hash>)"`` suffixes)."""
    return _base_sampler(str(label)).split(" [")[0]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _per_seed(rows) -> dict[int, float]:
    """seed -> mean value of one arm's rows (one setup; a seed recorded twice is averaged, as
    Tables 1-3 do), finite values only."""
    values = rows[[_finite(v) for v in rows["value"]]]
    return {int(s): float(v) for s, v in values.groupby("seed")["value"].mean().items()}


def _setup_of(rows) -> str:
    """The setup hash of one arm's rows (``""`` for none)."""
    return str(rows["_setup"].iloc[0]) if len(rows) else ""


def _labels(names: Iterable[str]) -> str:
    return ", ".join(MODEL_LABELS.get(m, m) for m in names)


def _row(claim: Claim, spec: TableSpec, cell: Mapping[str, Any], base_rows, treat_rows,
         baseline: str, treatment: str, problem: Optional[str] = None) -> dict[str, Any]:
    """One tidy row: the comparison of ``treat_rows`` with ``base_rows`` (each one setup, or
    empty) in ``cell``; ``problem`` makes it an unpaired row (n = 0) with that reason."""
    in_domain = spec.stage == "fewshot" and cell["task"] == cell["pretrained_on"]
    base_label = str(base_rows["sampler"].iloc[0]) if len(base_rows) else baseline
    treat_label = str(treat_rows["sampler"].iloc[0]) if len(treat_rows) else treatment
    decide = None
    if problem is None:
        paired = paired_differences(_per_seed(base_rows), _per_seed(treat_rows))
        rule, reason = claim_verdict(paired, claim)
        decide = seeds_to_decide(paired, claim)
        if rule == INCONCLUSIVE:
            reason += _decide_text(paired, claim, decide)
    else:
        seeds = [_per_seed(r) for r in (base_rows, treat_rows) if len(r)]
        paired = Paired((), (), None, None, None, None,
                        tuple(sorted({s for arm in seeds for s in arm})))
        rule, reason = INCONCLUSIVE, problem
    verdict = rule
    if not claim.names_model(cell["model"]):
        verdict = NOT_CLAIMED
        reason = (f"{MODEL_LABELS.get(cell['model'], cell['model'])} is not among the claim's "
                  f"models ({_labels(claim.models)}); the rule would say: {rule} ({reason})")
    elif in_domain:
        verdict = NOT_CLAIMED
        reason = f"in-domain, not transfer; the rule would say: {rule} ({reason})"
    interval = paired.interval
    return {
        "claim_id": claim.claim_id, "stage": claim.stage, **cell, "in_domain": in_domain,
        "claimed": claim.names_model(cell["model"]) and not in_domain,
        "baseline": base_label, "treatment": treat_label, "n_pairs": paired.n,
        "seeds": ";".join(map(str, paired.seeds)),
        "unpaired_seeds": ";".join(map(str, paired.unpaired)),
        "baseline_mean": paired.baseline_mean, "treatment_mean": paired.treatment_mean,
        "diff_mean": paired.mean, "ci95": paired.ci95,
        "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None, "seeds_to_decide": decide,
        "claim_low": claim.low, "claim_high": claim.high, "direction": claim.direction,
        "verdict": verdict, "rule_verdict": rule, "reason": reason,
        "baseline_setup": _setup_of(base_rows), "treatment_setup": _setup_of(treat_rows),
    }


def _no_partner(cell_part, arm: str) -> str:
    """The reason of an unpaired row: ``arm`` has no records in the cell at all, or only of
    other configurations."""
    if (cell_part["_arm"] == arm).any():
        return (f"n=0: {arm} was run only in other configurations (beyond the sampler): "
                "not paired")
    return f"n=0: no {arm} run to pair with"


def _cell_rows(claim: Claim, spec: TableSpec, cell: Mapping[str, Any], part, baseline: str,
               treatment: str) -> list[dict[str, Any]]:
    """The rows of one cell: per pair key (configuration apart from the sampler), each
    treatment setup against the baseline setup, or the reason it has none."""
    rows = []
    for _, group in part.groupby("_pair", sort=False):
        base = group[group["_arm"] == baseline]
        treat = group[group["_arm"] == treatment]
        base_setups = list(dict.fromkeys(base["_setup"]))
        treat_parts = [treat[treat["_setup"] == h] for h in dict.fromkeys(treat["_setup"])]
        if not treat_parts:
            for h in base_setups:
                rows.append(_row(claim, spec, cell, base[base["_setup"] == h], treat.iloc[:0],
                                 baseline, treatment, _no_partner(part, treatment)))
            continue
        for t in treat_parts:
            if not base_setups:
                rows.append(_row(claim, spec, cell, base, t, baseline, treatment,
                                 _no_partner(part, baseline)))
            elif len(base_setups) > 1:
                problem = (f"n=0: {baseline} records of {len(base_setups)} configurations "
                           "match; not paired (never averaged across configurations)")
                rows.append(_row(claim, spec, cell, base.iloc[:0], t, baseline, treatment,
                                 problem))
            else:
                rows.append(_row(claim, spec, cell, base, t, baseline, treatment))
    return rows


_COLUMNS = ["claim_id", "stage", "task", "pretrained_on", "model", "metric", EVALUATED_ON,
            "backend", "scale", "in_domain", "claimed", "baseline", "treatment", "n_pairs",
            "seeds", "unpaired_seeds", "baseline_mean", "treatment_mean", "diff_mean", "ci95",
            "ci_low", "ci_high", "seeds_to_decide", "claim_low", "claim_high", "direction",
            "verdict", "rule_verdict", "reason", "baseline_setup", "treatment_setup"]


def claim_records(records, claim: Claim, baseline: str = "uniform", treatment: str = "ring"):
    """The records ``claim`` compares: its stage's rows cut as Tables 1-3 cut them
    (:func:`repro.report.tables._select`, index kept), of the claim's metric for each task and
    a sampler of either arm (column ``_arm``: ``baseline`` or ``treatment``); empty for a stage
    without a table."""
    spec = _SPECS.get(claim.stage)
    frame = _select(records, spec) if spec is not None else records.iloc[0:0]
    if frame.empty:
        return frame
    frame = frame[[claim.metric_for(str(t)) == m for t, m in zip(frame["task"],
                                                                  frame["metric"])]].copy()
    frame["_arm"] = [arm_of(s) for s in frame["sampler"]]
    return frame[frame["_arm"].isin([baseline, treatment])]


def claim_frame(records, claim: Claim, baseline: str = "uniform", treatment: str = "ring"):
    """The tidy verdict rows of one claim: returns a DataFrame with one row per comparison
    (columns :data:`_COLUMNS`: cell keys, ``n_pairs``, arm means, ``diff_mean``, ``ci95``,
    ``ci_low``, ``ci_high``, ``verdict``, ``rule_verdict``, ``reason``, ...), empty when no
    record of the claim's stage and metric comes from either sampler.

    Raises:
        ValueError: ``baseline == treatment``, or a claim about a stage without a table.
    """
    import pandas as pd

    if baseline == treatment:
        raise ValueError(f"baseline and treatment are both {baseline!r}: nothing to compare")
    if claim.stage not in _SPECS:
        raise ValueError(f"claim {claim.claim_id!r}: no table of stage {claim.stage!r} "
                         f"(one of {sorted(_SPECS)})")
    spec = _SPECS[claim.stage]
    frame = claim_records(records, claim, baseline, treatment)
    if frame.empty:
        return pd.DataFrame(columns=_COLUMNS)
    configs = frame["config"] if "config" in frame else [None] * len(frame)
    frame["_pair"] = [pair_key(c) for c in configs]
    keys = ["task", "pretrained_on", "model", "metric", *_split_keys(spec), "scale"]
    rows = []
    for group, part in frame.groupby(keys, sort=False, dropna=False):
        cell = dict(zip(keys, group))
        rows += _cell_rows(claim, spec, cell, part, baseline, treatment)
    out = pd.DataFrame(rows)
    for column in _COLUMNS:
        if column not in out:
            out[column] = ""
    order = sorted(range(len(out)), key=lambda i: _sort_key(out.iloc[i], spec))
    return out.iloc[order].reset_index(drop=True)[_COLUMNS]


def _scale_rank(scale: str) -> tuple[bool, str]:
    return scale == "paper", str(scale)


def _sort_key(row, spec: TableSpec) -> tuple:
    return (_scale_rank(row["scale"]), str(row["pretrained_on"]),
            _rank(row["task"], spec.paper_tasks), str(row[EVALUATED_ON] or ""),
            model_rank(row["model"]), str(row["metric"]), str(row["treatment"]),
            str(row["backend"] or ""))


def claims_frame(records, claims: Sequence[Claim], baseline: str = "uniform",
                 treatment: str = "ring"):
    """:func:`claim_frame` of every claim, in the claims' order: returns one tidy DataFrame."""
    import pandas as pd

    parts = [claim_frame(records, c, baseline, treatment) for c in claims]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _evaluated_text(row) -> str:
    task = DATASET_LABELS.get(row["task"], row["task"])
    if row["stage"] == "detection":
        data = f" on {row[EVALUATED_ON]}" if row[EVALUATED_ON] else ""
        backend = f" ({row['backend']})" if row["backend"] else ""
        return f"{task}{data}{backend}"
    return f"{task} (in-domain)" if row["in_domain"] else task


def _number_text(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def claims_wide(tidy):
    """Reading layout of :func:`claims_frame`: returns one row per comparison with columns
    ``claim, pretrained on, evaluated on, comparison, metric, scale, n, baseline, treatment,
    Δ (treatment − baseline), 95% CI of Δ, verdict, reason``."""
    import pandas as pd

    header = ["claim", "pretrained on", "evaluated on", "comparison", "metric", "scale", "n",
              "baseline", "treatment", "Δ (treatment − baseline)", "95% CI of Δ", "verdict",
              "reason"]
    rows = []
    for _, row in tidy.iterrows():
        model = row["model"]
        low, high = row["ci_low"], row["ci_high"]
        has_ci = not (low is None or (isinstance(low, float) and math.isnan(low)))
        rows.append([
            row["claim_id"], DATASET_LABELS.get(row["pretrained_on"], row["pretrained_on"]),
            _evaluated_text(row),
            f"{method_label(model, row['treatment'])} − {method_label(model, row['baseline'])}",
            row["metric"], row["scale"], str(int(row["n_pairs"])),
            _number_text(row["baseline_mean"]), _number_text(row["treatment_mean"]),
            _number_text(row["diff_mean"], signed=True),
            f"[{_number_text(low)}, {_number_text(high)}]" if has_ci else "—",
            row["verdict"], row["reason"]])
    return pd.DataFrame(rows, columns=header)


def _claim_note(claim: Claim, baseline: str, treatment: str) -> str:
    said = "paraphrased from" if claim.wording == "paraphrase" else "quoted from"
    if claim.has_range:
        diff = (f"{treatment} − {baseline}" if claim.direction == "+"
                else f"{baseline} − {treatment}")
        test = f"tested as {diff} of `{claim.metric}` in [{claim.low:g}, {claim.high:g}]"
    else:
        test = (f"tested as {treatment} {'above' if claim.direction == '+' else 'below'} "
                f"{baseline} in `{claim.metric}`")
    models = f", models {_labels(claim.models)}" if claim.models else ", any model"
    return f"Claim `{claim.claim_id}` ({said} {claim.source}): \"{claim.quote}\"; {test}{models}."


def _scope_notes(claims: Sequence[Claim]) -> list[str]:
    """What data each claim is about, from the table specs (the paper's datasets and tasks)."""
    notes = []
    for claim in claims:
        spec = _SPECS.get(claim.stage)
        if spec is None:
            continue
        where = ", ".join(DATASET_LABELS.get(t, t) for t in spec.paper_tasks)
        if spec.paper_data:
            where = ", ".join(f"{DATASET_LABELS.get(t, t)} on {d}"
                              for t, d in spec.paper_data.items())
        pretrained = (f" with encoders pretrained on {spec.paper_pretrained}"
                      if spec.paper_pretrained else "")
        notes.append(f"`{claim.claim_id}`: the paper measured {where}{pretrained}; rows on "
                     "other data (our offline stand-ins) apply the claim's rule to other data.")
    return notes


def claims_notes(tidy, claims: Sequence[Claim], baseline: str = "uniform",
                 treatment: str = "ring", records=None,
                 claims_file: str = "tables/reported/claims.csv") -> list[str]:
    """The notes under the claims table: returns the claims (quote and source, as read from
    ``claims_file``), how Δ and its CI are computed, the verdict rules, scale and scope
    caveats, and the configuration splits found in ``records``."""
    notes = [_claim_note(c, baseline, treatment) for c in claims]
    notes.append(f"Claims are read from {claims_file}; baseline = sampler `{baseline}`, "
                 f"treatment = sampler `{treatment}` (config `report.claims`, or "
                 "`--baseline` / `--treatment`).")
    notes += [
        "Δ = treatment − baseline of one seed. Pairs are by seed: only seeds run with both "
        "samplers count, n = the number of pairs; a seed run with one sampler only is dropped "
        "(CSV column `unpaired_seeds`). The baseline and treatment columns are means over the "
        "paired seeds, so Δ is their difference.",
        "95% CI of Δ: mean ± t_{0.975, n−1} · s / √n over the n paired differences (Student t, "
        "s with ddof 1). A single run's own protocol interval (few-shot episodes) is not an "
        "interval of Δ: n = 1 has none.",
        "Seeds to decide (CSV column `seeds_to_decide`, and the reason of an inconclusive row): "
        "a projection from the measured s of Δ, not a result. For a claim with a size [low, "
        "high], the fewest paired seeds whose CI would be narrower than low, which cannot hold "
        "both 0 and low and so decides the claim whatever Δ is; for a claim of direction, the "
        "fewest whose CI would exclude 0 if the mean Δ held as well.",
        "Configurations are never pooled: each arm holds records of one setup hash, and a "
        "baseline pairs only with a treatment whose configuration is the same apart from the "
        "sampler; a comparison without such a partner (or with several) is a row with n = 0 "
        "and the reason.",
    ]
    ranged = [c for c in claims if c.has_range]
    if ranged:
        notes.append("Verdict, claim with a size [low, high] (" +
                     ", ".join(f"`{c.claim_id}`: [{c.low:g}, {c.high:g}]" for c in ranged) +
                     "): " + "; ".join(RANGE_RULES) + "; n < 2 is inconclusive.")
    if any(not c.has_range for c in claims):
        notes.append("Verdict, claim of direction only (" +
                     ", ".join(f"`{c.claim_id}`" for c in claims if not c.has_range) +
                     "): " + "; ".join(DIRECTION_RULES) + ".")
    notes.append(f"`{NOT_CLAIMED}`: a model the claim does not name, or an in-domain few-shot "
                 "row; the reason gives what the rule would say, the interval is shown as for "
                 "any row.")
    if len(tidy) and tidy["in_domain"].astype(bool).any():
        same = sorted(set(tidy.loc[tidy["in_domain"].astype(bool), "task"]))
        notes.append(f"in-domain ({', '.join(same)}): {IN_DOMAIN_NOTE}.")
    notes.append("Scales are never mixed: a verdict at one scale says nothing about another. "
                 "`scale=default` is a small CPU study on offline data (tiny encoders, few "
                 "epochs, few seeds), not the paper's setting; only "
                 "`scale=paper` rows on the paper's data test the claims as made.")
    notes += _scope_notes(claims)
    if records is not None:
        for claim in claims:
            frame = claim_records(records, claim, baseline, treatment)
            if not frame.empty:
                notes += [n for n in config_split_notes(frame) if n not in notes]
    if tidy.empty:
        notes.append(f"No records of these stages from `{baseline}` or `{treatment}` yet.")
    return notes


# ------------------------------------------------------------------------------------------
# The claims as a figure
# ------------------------------------------------------------------------------------------

VERDICT_COLORS = {SUPPORTED: "tab:green", LARGER: "tab:blue", CONTRADICTED: "tab:red",
                  INCONCLUSIVE: "0.3", NOT_CLAIMED: "0.65"}
"""Marker colour of each verdict in :func:`plot_claims`."""


def _row_label(row) -> str:
    model = MODEL_LABELS.get(row["model"], row["model"])
    pretrained = DATASET_LABELS.get(row["pretrained_on"], row["pretrained_on"])
    evaluated = _evaluated_text(row)
    where = pretrained if row["stage"] == "linear_eval" else f"{pretrained} → {evaluated}"
    metric = "" if row["stage"] != "detection" else f" {row['metric']}"
    arms = ("" if (arm_of(row["treatment"]), arm_of(row["baseline"])) == ("ring", "uniform")
            else f" [{row['treatment']} − {row['baseline']}]")
    return f"{model}, {where}{metric}{arms} (n={int(row['n_pairs'])})"


def plot_claims(tidy, records=None, settings=None):
    """The claims table as a forest plot: one panel per (claim, scale), one row per comparison
    of :func:`claims_frame` (``tidy``): Δ = treatment − baseline, the mean over the paired seeds
    as a dot with its 95% CI as a bar, coloured by verdict (:data:`VERDICT_COLORS`; hollow:
    not claimed); the claimed size [low, high] shaded, zero dashed. A row without a CI (n < 2)
    is a dot alone; a row without pairs (n = 0) is a label alone. ``records``: what the
    footer describes (the records of the claims' stages)."""
    import matplotlib.pyplot as plt

    from repro.report.figures.common import (_add_footer, _settings_for, config_footer,
                                             empty_figure)

    title = "Claims: treatment − baseline per comparison against the paper's claim"
    if tidy.empty:
        return empty_figure(title, "No records of the claims' stages from the baseline or the "
                                   "treatment yet.\nRun the workflow (`snakemake --cores all`).")
    panels = list(tidy.groupby(["claim_id", "scale"], sort=False))
    heights = [max(len(part), 1) for _, part in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 1.2 + 0.32 * sum(heights)
                                                       + 0.9 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, ((claim_id, scale), part) in zip(axes[:, 0], panels):
        first = part.iloc[0]
        if _finite(first["claim_low"]) and _finite(first["claim_high"]):
            ax.axvspan(float(first["claim_low"]), float(first["claim_high"]), color="tab:green",
                       alpha=0.12, label=f"claimed [{float(first['claim_low']):g}, "
                                         f"{float(first['claim_high']):g}]")
        ax.axvline(0.0, color="0.5", linestyle="--", linewidth=1)
        ys = list(range(len(part)))[::-1]  # the table's first row on top
        for y, (_, row) in zip(ys, part.iterrows()):
            if not _finite(row["diff_mean"]):
                continue
            color = VERDICT_COLORS.get(row["verdict"], "0.3")
            mean = float(row["diff_mean"])
            if _finite(row["ci_low"]) and _finite(row["ci_high"]):
                ax.errorbar([mean], [y], xerr=[[mean - float(row["ci_low"])],
                                               [float(row["ci_high"]) - mean]],
                            fmt="none", ecolor=color, capsize=3, linewidth=1.5)
            ax.plot([mean], [y], "o", color=color, markersize=6,
                    markerfacecolor="white" if row["verdict"] == NOT_CLAIMED else color)
        ax.set_yticks(ys)
        ax.set_yticklabels([_row_label(r) for _, r in part.iterrows()], fontsize=7)
        ax.set_ylim(-0.7, len(part) - 0.3)
        metrics = ", ".join(dict.fromkeys(str(m) for m in part["metric"]))
        ax.set_xlabel(f"Δ {metrics} (treatment − baseline), mean and 95% CI over paired seeds",
                      fontsize=8)
        direction = "above" if first["direction"] == "+" else "below"
        ax.set_title(f"{claim_id} (scale={scale}): treatment {direction} baseline"
                     + ("" if not _finite(first["claim_low"]) else " by the claimed size"),
                     fontsize=9)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c,
                          markerfacecolor="white" if v == NOT_CLAIMED else c, label=v)
               for v, c in VERDICT_COLORS.items() if v in set(tidy["verdict"])]
    axes[0, 0].legend(handles=handles + axes[0, 0].get_legend_handles_labels()[0],
                      fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if records is not None:
        _add_footer(fig, config_footer(records, _settings_for(records, settings)))
    return fig
