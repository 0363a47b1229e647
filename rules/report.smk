# Tables and figures from the result records (repro.report); nothing here trains.
#   snakemake tables/table1_linear_eval.md      one table, from the records it needs
#   snakemake claims                            tables/claims.{md,tex,csv}: the paper's claims
#   snakemake table4_methods                    tables/table4_methods.*: every method side by side
#   snakemake queue_ablation                    tables/ + figures/queue_ablation.*: ring or queue?
#   snakemake report                            every table and figure
# Uses PY, RESULTS and config from the Snakefile. The record lists come from the other rule
# files (linear_eval_targets(), pretrain_targets(), fewshot_targets(), detection_targets());
# a list whose rule file is not included counts as empty, so these rules also work alone.

import shlex
from pathlib import Path

if "CONDA_ENV" not in globals():  # this file included alone (its tests): the checkout's env
    CONDA_ENV = str(Path(workflow.current_basedir).parent / "envs" / "repro.yaml")

# --expected: leave records made with other settings than this config's out (repro.stale);
# only where the Snakefile says what it expects (not when this file is included alone)
_EXPECTED = (f"--expected {shlex.quote(globals()['EXPECTED_PATH'])}"
             if "EXPECTED_PATH" in globals() else "")
_REPORT = config.get("report") or {}
TABLES_DIR = _REPORT.get("tables_dir", "tables")
FIGURES_DIR = _REPORT.get("figures_dir", "figures")
REPORTED_DIR = _REPORT.get("reported_dir", f"{TABLES_DIR}/reported")
_ANNEAL = _REPORT.get("anneal", {})
_CLAIMS = _REPORT.get("claims") or {}


def _report_targets(*names):
    """The union of the record lists that the named target functions give (if defined)."""
    found = []
    for name in names:
        func = globals().get(name)
        if callable(func):
            found += [str(t) for t in func()]
    return found


def _has_rule(name):
    """Whether an included rule file defined rule `name` (`rules.<name>` raises a WorkflowError,
    not an AttributeError, for an unknown rule, so hasattr() cannot tell)."""
    try:
        getattr(rules, name)
    except Exception:
        return False
    return True


def _queue_ablation_planned():
    """Whether a run of the grid takes a queue size from its sampler label (the label's
    options for that model, as repro.config.label_options merges them for run_spec)."""
    from repro.config import label_options, sampler_labels

    return any("queue_size" in (label_options(config, model, label).get("model_options") or {})
               for model in config.get("models") or {}
               for label in sampler_labels(config, model))


def _toy_estimates(rule="toy"):
    """The estimates CSV of the toy rule `rule` (toy, toy_sphere), or none without that rule."""
    return getattr(rules, rule).output.csv if _has_rule(rule) else []


_TABLE_INPUTS = {
    "table1_linear_eval": ("table1", ("linear_eval_targets",)),
    "table2_fewshot": ("table2", ("fewshot_targets",)),
    "table3_detection": ("table3", ("detection_targets",)),
}

for _stem, (_key, _funcs) in _TABLE_INPUTS.items():

    rule:
        name:
            _stem
        input:
            records=lambda w, _funcs=_funcs: _report_targets(*_funcs),
            reported=f"{REPORTED_DIR}/{_stem}.csv",
        conda:
            CONDA_ENV
        output:
            md=f"{TABLES_DIR}/{_stem}.md",
            tex=f"{TABLES_DIR}/{_stem}.tex",
            csv=f"{TABLES_DIR}/{_stem}.csv",
        params:
            key=_key,
            expected=_EXPECTED,
            python=lambda w, output: PY,
            results=lambda w, output: RESULTS,
            tables=lambda w, output: str(Path(output.md).parent),
            reported=lambda w, input: str(Path(input.reported).parent),
        log:
            f"{TABLES_DIR}/{_stem}.log",
        shell:
            "{params.python} -m repro.report tables --results {params.results:q}"
            " --out {params.tables:q} --reported {params.reported:q} --only {params.key}"
            " {params.expected} > {log:q} 2>&1"


rule claims:
    """The paper's claims (tables/reported/claims.csv) against the paired seed differences
    treatment - baseline of the linear-eval, few-shot and detection records, with a verdict."""
    input:
        records=lambda w: _report_targets(
            "linear_eval_targets", "fewshot_targets", "detection_targets"
        ),
        reported=f"{REPORTED_DIR}/claims.csv",
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/claims.md",
        tex=f"{TABLES_DIR}/claims.tex",
        csv=f"{TABLES_DIR}/claims.csv",
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        reported=lambda w, input: str(Path(input.reported).parent),
        baseline=_CLAIMS.get("baseline", "uniform"),
        treatment=_CLAIMS.get("treatment", "ring"),
        expected=_EXPECTED,
    log:
        f"{TABLES_DIR}/claims.log",
    shell:
        "{params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --reported {params.reported:q} --only claims"
        " --baseline {params.baseline:q} --treatment {params.treatment:q} {params.expected}"
        " > {log:q} 2>&1"


rule table4_methods:
    """Table 4 (beyond the paper): every sampler label of the records (NCE, Ring, and e.g.
    top-k, DCL, HCL from config/hardneg.yaml) side by side per base model, linear-eval top-1 and
    few-shot accuracy, mean and 95% CI over seeds."""
    input:
        records=lambda w: _report_targets("linear_eval_targets", "fewshot_targets"),
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/table4_methods.md",
        tex=f"{TABLES_DIR}/table4_methods.tex",
        csv=f"{TABLES_DIR}/table4_methods.csv",
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        expected=_EXPECTED,
    log:
        f"{TABLES_DIR}/table4_methods.log",
    shell:
        "{params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --only table4 {params.expected} > {log:q} 2>&1"


rule queue_ablation:
    """Is it the ring or the queue? MoCo's sampler x queue size, cells and paired effects
    (repro/report/queue.py): run with config/queue_ablation.yaml, or any config whose sampler
    labels give model_options: {queue_size: ...}."""
    input:
        records=lambda w: _report_targets("linear_eval_targets", "pretrain_targets"),
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/queue_ablation.md",
        tex=f"{TABLES_DIR}/queue_ablation.tex",
        csv=f"{TABLES_DIR}/queue_ablation.csv",
        png=f"{FIGURES_DIR}/queue_ablation.png",
        pdf=f"{FIGURES_DIR}/queue_ablation.pdf",
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        figures=lambda w, output: str(Path(output.png).parent),
        expected=_EXPECTED,
    log:
        f"{TABLES_DIR}/queue_ablation.log",
    shell:
        "({params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --only queue {params.expected}"
        " && {params.python} -m repro.report figures --results {params.results:q}"
        " --out {params.figures:q} --only queue_ablation {params.expected}) > {log:q} 2>&1"


_FIGURE_INPUTS = {
    "loss_curves": lambda w: _report_targets("pretrain_targets"),
    "anneal_schedules": lambda w: _report_targets("pretrain_targets", "linear_eval_targets"),
    "toy_bias_variance": lambda w: _toy_estimates(),
    # the sphere toy's figure (DCL, HCL beside NCE and Ring) where the config runs it
    **({"toy_sphere": lambda w: _toy_estimates("toy_sphere")}
       if _has_rule("toy_sphere") else {}),
    # pretrain records too: every figure's footer gives the pretraining settings
    "ring_bounds": lambda w: _report_targets("pretrain_targets", "linear_eval_targets"),
    # Table 4 as a figure: every method side by side
    "methods": lambda w: _report_targets("pretrain_targets", "linear_eval_targets",
                                         "fewshot_targets"),
}

for _stem, _inputs in _FIGURE_INPUTS.items():

    rule:
        name:
            f"figure_{_stem}"
        input:
            _inputs,
        conda:
            CONDA_ENV
        output:
            png=f"{FIGURES_DIR}/{_stem}.png",
            pdf=f"{FIGURES_DIR}/{_stem}.pdf",
        params:
            stem=_stem,
            w_l=_ANNEAL.get("w_l", 0.9),
            w_l_start=_ANNEAL.get("w_l_start", 0.0),
            anneal_fraction=_ANNEAL.get("anneal_fraction", 0.5),
            expected=_EXPECTED,
            python=lambda w, output: PY,
            results=lambda w, output: RESULTS,
            figures=lambda w, output: str(Path(output.png).parent),
        log:
            f"{FIGURES_DIR}/{_stem}.log",
        shell:
            "{params.python} -m repro.report figures --results {params.results:q}"
            " --out {params.figures:q} --only {params.stem} --w-l {params.w_l}"
            " --w-l-start {params.w_l_start} --anneal-fraction {params.anneal_fraction}"
            " {params.expected} > {log:q} 2>&1"


rule report:
    """Every table and figure."""
    input:
        [f"{TABLES_DIR}/{stem}.{ext}" for stem in _TABLE_INPUTS for ext in ("md", "tex", "csv")],
        rules.claims.output,
        rules.table4_methods.output,
        [f"{FIGURES_DIR}/{stem}.{ext}" for stem in _FIGURE_INPUTS for ext in ("png", "pdf")],
        # where a sampler label changes the queue (config/queue_ablation.yaml)
        rules.queue_ablation.output if _queue_ablation_planned() else [],
