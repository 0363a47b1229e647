"""Figures from result records (matplotlib + seaborn, Agg backend; PNG and PDF).

Each ``plot_*`` function builds a :class:`matplotlib.figure.Figure` from records (a
:func:`repro.results.load_records` DataFrame) and returns it; :func:`make_figures` reads the
records and saves the figures (:func:`save_figure`).

* :func:`plot_loss_curves`: pretraining loss per step, one panel per (dataset, scale, model),
  one line per sampler (mean over seeds, band = min..max where a sampler has several seeds),
  the ring's ``w_l`` on a twin axis, one legend for the figure.
* :func:`plot_anneal_schedules`: ``w_l`` over training for every schedule of
  :data:`repro.samplers.SCHEDULES` (those no run used dashed grey, "not run"), and, for each of
  linear-evaluation accuracy and final pretraining loss that has records of a schedule sweep,
  that metric per schedule, one panel per model, with ``n`` on every bar and the model's
  uniform (NCE) and untrained (random-init) accuracy as reference lines.
* :func:`plot_toy`: estimates of a known mutual information: bias and spread per method, with
  lines at the true MI and at the ``log(K + 1)`` ceiling of the InfoNCE bound; the title gives
  the toy's settings. ``toy_bias_variance``: NCE vs Ring on correlated Gaussians;
  ``toy_sphere``: NCE, Ring, DCL and HCL on vMF pairs on the sphere (:mod:`repro.toy`).
* :func:`plot_ring_bounds`: linear-eval top-1 against the ring bounds ``(w_l, w_u)``, one
  dot plot per set of ring runs that differ only in their bounds (mean, per-seed dots, 95%
  t-interval when ``n > 1``, ``n`` on every point), with the same model's uniform (NCE) and
  untrained (random-init) accuracy as reference lines.

One module per figure (``loss_curves``, ``anneal``, ``toy``, ``ring_bounds``; the methods
figure of Table 4 is :func:`repro.report.methods.plot_methods`, the model-option ablations'
(:data:`repro.report.option_ablation.OPTION_ABLATIONS`: the queue, the bank's momentum)
:func:`repro.report.option_ablation.plot_option_ablation`, the false negatives'
:func:`repro.report.false_negatives.plot_false_negatives`, the claims' forest plot
:func:`repro.report.claims.plot_claims`), the shared colours, saving,
footer and reference-line code in ``common``; this package names them (:data:`FIGURES`) and
re-exports what callers use.

Every figure carries a footer (:func:`config_footer`) with the config it was made from: the
``scale``, the pretraining settings read from the records (epochs, backbone and width, batch
size; from the run spec in each ``checkpoint.pt`` when :func:`load_run_specs` can read it) and
the seeds. With no suitable records a figure still gets written, saying what is missing and how
to produce it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

from matplotlib.figure import Figure

from repro.report.figures.common import (  # noqa: F401
    FOOTER_PREFIX,
    SAMPLER_COLORS,
    UNTRAINED,
    _add_footer,
    config_footer,
    empty_figure,
    load_run_specs,
    reference_rows,
    run_settings,
    sampler_colors,
    save_figure,
)
from repro.report.figures.loss_curves import (  # noqa: F401
    LOSS_CAVEAT,
    load_loss_logs,
    plot_loss_curves,
)
from repro.report.figures.anneal import (  # noqa: F401
    _ring_rows,
    plot_anneal_schedules,
    schedule_sweep,
    schedules_run,
)
from repro.report.figures.toy import (  # noqa: F401
    load_toy_estimates,
    plot_toy,
    toy_settings,
)
from repro.report.figures.ring_bounds import (  # noqa: F401
    plot_ring_bounds,
    ring_bound_panels,
)
from repro.report.option_ablation import OPTION_ABLATIONS, plot_option_ablation

__all__ = [
    "FIGURES",
    "FOOTER_PREFIX",
    "save_figure",
    "sampler_colors",
    "empty_figure",
    "load_loss_logs",
    "load_run_specs",
    "load_toy_estimates",
    "run_settings",
    "config_footer",
    "reference_rows",
    "schedules_run",
    "toy_settings",
    "plot_loss_curves",
    "plot_anneal_schedules",
    "plot_toy",
    "plot_ring_bounds",
    "schedule_sweep",
    "ring_bound_panels",
    "make_figures",
]

# ------------------------------------------------------------------------------------------
# All figures
# ------------------------------------------------------------------------------------------

FIGURES = ("loss_curves", "anneal_schedules", "toy_bias_variance", "toy_sphere", "ring_bounds",
           "methods", *(a.stem for a in OPTION_ABLATIONS.values()), "false_negatives", "claims")
TOY_CSVS = {"toy_bias_variance": ("gaussian", Path("toy") / "estimates.csv"),
            "toy_sphere": ("sphere", Path("toy") / "sphere" / "estimates.csv")}
"""Each toy figure's family and estimates CSV under the results folder (rules/toy.smk)."""


def _build(name: str, records, results: Path, settings,
           anneal: Optional[Mapping[str, float]], claims: Mapping[str, str]) -> Figure:
    """The figure ``name`` of :data:`FIGURES` from the records under ``results``; ``claims``:
    the claims figure's ``reported_dir``, ``baseline`` and ``treatment``."""
    if name == "loss_curves":
        return plot_loss_curves(records, settings)
    if name == "anneal_schedules":
        return plot_anneal_schedules(records, **dict(anneal or {}), settings=settings)
    if name in TOY_CSVS:
        family, csv = TOY_CSVS[name]
        toy = records[records["stage"] == "toy"] if "stage" in records else records
        return plot_toy(load_toy_estimates(results / csv), toy, str(results / csv), family)
    if name == "methods":
        from repro.report.methods import plot_methods

        return plot_methods(records, settings)
    ablation = next((a for a in OPTION_ABLATIONS.values() if a.stem == name), None)
    if ablation is not None:
        return plot_option_ablation(records, ablation, settings)
    if name == "false_negatives":
        from repro.report.false_negatives import plot_false_negatives

        return plot_false_negatives(records, settings)
    if name == "claims":
        return _claims_figure(records, settings, **claims)
    return plot_ring_bounds(records, settings)


def _claims_figure(records, settings, reported_dir: str | os.PathLike, baseline: str,
                   treatment: str) -> Figure:
    """The claims table (:func:`repro.report.claims.claims_frame`, claims read from
    ``<reported_dir>/claims.csv``) as a forest plot, its footer describing the records the
    claims compare (:func:`repro.report.claims.claim_records`)."""
    from repro.report.claims import claim_records, claims_frame, plot_claims
    from repro.report.reported import CLAIMS_CSV, load_claims

    claims = load_claims(Path(reported_dir) / CLAIMS_CSV)
    tidy = claims_frame(records, claims, baseline, treatment)
    compared = {i for c in claims for i in claim_records(records, c, baseline, treatment).index}
    return plot_claims(tidy, records[records.index.isin(compared)], settings)


def make_figures(results: str | os.PathLike, out_dir: str | os.PathLike,
                 only: Optional[Sequence[str]] = None,
                 anneal: Optional[Mapping[str, float]] = None,
                 expected: Optional[Mapping[str, str]] = None, *,
                 reported_dir: str | os.PathLike = "tables/reported",
                 baseline: str = "uniform", treatment: str = "ring") -> list[Path]:
    """Write every figure (or those named in ``only``) from the records under ``results``.

    Args:
        results: the results folder (``result.json`` files, ``toy/estimates.csv``).
        out_dir: where ``<name>.png`` / ``<name>.pdf`` go.
        only: a subset of :data:`FIGURES`.
        anneal: ``w_l``, ``w_l_start``, ``anneal_fraction`` for the schedule figure.
        expected: :func:`repro.stale.expected_runs` of the config being run: records of those
            runs made with other settings are left out (a warning names them).
        reported_dir, baseline, treatment: the claims figure's ``claims.csv`` folder and the
            sampler labels it compares (as :func:`repro.report.make_tables`' claims table).
    """

    names = list(only or FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    results = Path(results)
    if not results.is_dir():  # as `tables`: placeholder figures of a mistyped path help nobody
        raise FileNotFoundError(f"no results folder at {results}: run the workflow first "
                                f"(`snakemake --cores all`) or pass --results PATH")
    from repro.stale import usable_records

    records, _ = usable_records(results, expected)
    settings = run_settings(records, load_run_specs(records))
    paths: list[Path] = []
    for name in names:
        paths += save_figure(_build(name, records, results, settings, anneal,
                                    {"reported_dir": reported_dir, "baseline": baseline,
                                     "treatment": treatment}), out_dir, name)
    return paths
