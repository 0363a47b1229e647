# Tables and figures from the result records (repro.report); nothing here trains.
#   snakemake tables/table1_linear_eval.md      one table, from the records it needs
#   snakemake claims                            tables/claims.{md,tex,csv} and figures/claims.*:
#                                               the paper's claims
#   snakemake table4_methods                    tables/table4_methods.*: every method side by side
#   snakemake queue_ablation                    tables/ + figures/queue_ablation.*: ring or queue?
#   snakemake bank_momentum_ablation            tables/ + figures/bank_momentum_ablation.*: ring
#                                               or the bank's momentum?
#   snakemake cost                              tables/cost.*: time and memory per stage
#   snakemake false_negatives                   tables/ + figures/false_negatives.*: same-class
#                                               negatives per similarity band
#   snakemake report                            every table and figure
#   snakemake --report report.html              all of them in one page, with captions
# Helpers (report_records, expected_flag, caption, ...) are in rules/common.smk. A record list
# whose rule is not defined counts as empty, so these rules also work with this file (and
# common.smk) included alone, on records made elsewhere.

_TABLE_INPUTS = {
    "table1_linear_eval": ("table1", ("linear_eval",)),
    "table2_fewshot": ("table2", ("fewshot",)),
    "table3_detection": ("table3", ("detection",)),
}

for _stem, (_key, _stages) in _TABLE_INPUTS.items():

    rule:
        name:
            _stem
        input:
            records=lambda w, _stages=_stages: report_records(*_stages),
            reported=f"{REPORTED_DIR}/{_stem}.csv",
        conda:
            CONDA_ENV
        output:
            md=f"{TABLES_DIR}/{_stem}.md",
            tex=f"{TABLES_DIR}/{_stem}.tex",
            csv=report(f"{TABLES_DIR}/{_stem}.csv", caption=caption(_stem), category="Tables"),
        params:
            key=_key,
            expected=lambda w, output: expected_flag(),
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
    treatment - baseline of the linear-eval, few-shot and detection records, with a verdict:
    a table, and the same rows as a forest plot (figures/claims.*)."""
    input:
        records=lambda w: report_records("linear_eval", "fewshot", "detection"),
        reported=f"{REPORTED_DIR}/claims.csv",
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/claims.md",
        tex=f"{TABLES_DIR}/claims.tex",
        csv=report(f"{TABLES_DIR}/claims.csv", caption=caption("claims"), category="Tables"),
        png=report(f"{FIGURES_DIR}/claims.png", caption=caption("claims"), category="Figures"),
        pdf=f"{FIGURES_DIR}/claims.pdf",
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        figures=lambda w, output: str(Path(output.png).parent),
        reported=lambda w, input: str(Path(input.reported).parent),
        baseline=CLAIMS.get("baseline", "uniform"),
        treatment=CLAIMS.get("treatment", "ring"),
        expected=lambda w, output: expected_flag(),
    log:
        f"{TABLES_DIR}/claims.log",
    shell:
        "({params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --reported {params.reported:q} --only claims"
        " --baseline {params.baseline:q} --treatment {params.treatment:q} {params.expected}"
        " && {params.python} -m repro.report figures --results {params.results:q}"
        " --out {params.figures:q} --reported {params.reported:q} --only claims"
        " --baseline {params.baseline:q} --treatment {params.treatment:q} {params.expected})"
        " > {log:q} 2>&1"


rule table4_methods:
    """Table 4 (beyond the paper): every sampler label of the records (NCE, Ring, and e.g.
    top-k, DCL, HCL from config/hardneg.yaml) side by side per base model, linear-eval top-1 and
    few-shot accuracy, mean and 95% CI over seeds."""
    input:
        records=lambda w: report_records("linear_eval", "fewshot"),
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/table4_methods.md",
        tex=f"{TABLES_DIR}/table4_methods.tex",
        csv=report(f"{TABLES_DIR}/table4_methods.csv", caption=caption("table4_methods"),
                   category="Tables"),
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        expected=lambda w, output: expected_flag(),
    log:
        f"{TABLES_DIR}/table4_methods.log",
    shell:
        "{params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --only table4 {params.expected} > {log:q} 2>&1"


# The model-option ablations: a sampler crossed with one base-model option, cells and paired
# effects (repro/report/option_ablation.py; these stems and --only names are its
# OPTION_ABLATIONS, a test keeps the two equal). Each runs with a config whose sampler labels
# give model_options: {<option>: ...}: queue_ablation with config/queue_ablation.yaml (is it the
# ring or MoCo's queue?), bank_momentum_ablation with config/study.yaml + bank_momentum.yaml.
_OPTION_ABLATIONS = {
    "queue_ablation": ("queue", "queue_size"),
    "bank_momentum_ablation": ("bank_momentum", "bank_momentum"),
}

for _stem, (_name, _option) in _OPTION_ABLATIONS.items():

    rule:
        name:
            _stem
        input:
            records=lambda w: report_records("linear_eval", "pretrain"),
        conda:
            CONDA_ENV
        output:
            md=f"{TABLES_DIR}/{_stem}.md",
            tex=f"{TABLES_DIR}/{_stem}.tex",
            csv=report(f"{TABLES_DIR}/{_stem}.csv", caption=caption(_stem), category="Tables"),
            png=report(f"{FIGURES_DIR}/{_stem}.png", caption=caption(_stem), category="Figures"),
            pdf=f"{FIGURES_DIR}/{_stem}.pdf",
        params:
            name=_name,
            stem=_stem,
            python=lambda w, output: PY,
            results=lambda w, output: RESULTS,
            tables=lambda w, output: str(Path(output.md).parent),
            figures=lambda w, output: str(Path(output.png).parent),
            expected=lambda w, output: expected_flag(),
        log:
            f"{TABLES_DIR}/{_stem}.log",
        shell:
            "({params.python} -m repro.report tables --results {params.results:q}"
            " --out {params.tables:q} --only {params.name} {params.expected}"
            " && {params.python} -m repro.report figures --results {params.results:q}"
            " --out {params.figures:q} --only {params.stem} {params.expected}) > {log:q} 2>&1"


rule cost:
    """What each stage costs: wall time and peak memory per job (Snakemake's benchmark files
    of the pretrain, linear_eval, fewshot and detection rules) per stage and base model,
    beside the stage's accuracy (repro/report/cost.py)."""
    input:
        records=lambda w: report_records("pretrain", "linear_eval", "fewshot", "detection"),
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/cost.md",
        tex=f"{TABLES_DIR}/cost.tex",
        csv=report(f"{TABLES_DIR}/cost.csv", caption=caption("cost"), category="Cost"),
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        benchmarks=lambda w, output: BENCHMARKS,
        tables=lambda w, output: str(Path(output.md).parent),
        expected=lambda w, output: expected_flag(),
    log:
        f"{TABLES_DIR}/cost.log",
    shell:
        "{params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --only cost --benchmarks {params.benchmarks:q}"
        " {params.expected} > {log:q} 2>&1"


rule false_negatives:
    """False negatives (beyond the paper): the share of each similarity band's negatives that
    are of the anchor's own class, per model and sampler, from the linear-eval records'
    same-class counts (repro/report/false_negatives.py): a table and a figure."""
    input:
        records=lambda w: report_records("linear_eval"),
    conda:
        CONDA_ENV
    output:
        md=f"{TABLES_DIR}/false_negatives.md",
        tex=f"{TABLES_DIR}/false_negatives.tex",
        csv=report(f"{TABLES_DIR}/false_negatives.csv", caption=caption("false_negatives"),
                   category="Tables"),
        png=report(f"{FIGURES_DIR}/false_negatives.png", caption=caption("false_negatives"),
                   category="Figures"),
        pdf=f"{FIGURES_DIR}/false_negatives.pdf",
    params:
        python=lambda w, output: PY,
        results=lambda w, output: RESULTS,
        tables=lambda w, output: str(Path(output.md).parent),
        figures=lambda w, output: str(Path(output.png).parent),
        expected=lambda w, output: expected_flag(),
    log:
        f"{TABLES_DIR}/false_negatives.log",
    shell:
        "({params.python} -m repro.report tables --results {params.results:q}"
        " --out {params.tables:q} --only false_negatives {params.expected}"
        " && {params.python} -m repro.report figures --results {params.results:q}"
        " --out {params.figures:q} --only false_negatives {params.expected}) > {log:q} 2>&1"


_FIGURE_INPUTS = {
    "loss_curves": lambda w: report_records("pretrain"),
    "anneal_schedules": lambda w: report_records("pretrain", "linear_eval"),
    "toy_bias_variance": lambda w: toy_estimates(),
    # the sphere toy's figure (DCL, HCL beside NCE and Ring) where the config runs it
    **({"toy_sphere": lambda w: toy_estimates("toy_sphere")} if has_rule("toy_sphere") else {}),
    # pretrain records too: every figure's footer gives the pretraining settings
    "ring_bounds": lambda w: report_records("pretrain", "linear_eval"),
    # Table 4 as a figure: every method side by side
    "methods": lambda w: report_records("pretrain", "linear_eval", "fewshot"),
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
            png=report(f"{FIGURES_DIR}/{_stem}.png", caption=caption(_stem), category="Figures"),
            pdf=f"{FIGURES_DIR}/{_stem}.pdf",
        params:
            stem=_stem,
            w_l=ANNEAL.get("w_l", 0.9),
            w_l_start=ANNEAL.get("w_l_start", 0.0),
            anneal_fraction=ANNEAL.get("anneal_fraction", 0.5),
            expected=lambda w, output: expected_flag(),
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
        rules.cost.output,
        rules.false_negatives.output,
        [f"{FIGURES_DIR}/{stem}.{ext}" for stem in _FIGURE_INPUTS for ext in ("png", "pdf")],
        # where a sampler label changes the queue or the bank's momentum (config/
        # queue_ablation.yaml, config/bank_momentum.yaml)
        [getattr(rules, stem).output for stem, (_, option) in _OPTION_ABLATIONS.items()
         if option_ablation_planned(option)],
