# Linear evaluation of frozen encoders (python -m repro.linear_eval), and the untrained
# baseline. Helpers (LINEAR_DIR, linear_eval_flags, ...) are in rules/common.smk.


rule linear_eval:
    """Linear classifier on frozen features of one pretrained checkpoint.

    linear_eval.gpus (0 or 1) is the job's `gpu` resource (counted by `--resources gpu=N` and
    the SLURM profile) and picks --device: cuda with 1, cpu with 0 even where a GPU is visible,
    as pretraining does. The record's extra.device says which.
    """
    input:
        checkpoint=f"{PRETRAIN_DIR}/checkpoint.pt",
    conda:
        CONDA_ENV
    output:
        record=f"{LINEAR_DIR}/result.json",
    params:
        le=linear_eval_settings(),
        # functions of `output`: Snakemake does not re-run jobs when they change (device, data
        # path); the settings in `le` above do trigger a re-run
        flags=lambda w, output: linear_eval_flags(w),
        out=lambda w, output: str(Path(output.record).parent),
        python=lambda w, output: PY,
    wildcard_constraints:
        sampler="|".join(config["samplers"]),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int(config["linear_eval"].get("gpus", 0)),
    log:
        f"{LINEAR_DIR}/stderr.txt",
    benchmark:
        f"{BENCHMARKS}/linear_eval/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}.tsv"
    shell:
        "{params.python} -m repro.linear_eval --checkpoint {input.checkpoint:q} {params.flags}"
        " --threads {threads} --out {params.out:q} 2> {log:q}"


rule linear_eval_untrained:
    """The random-init baseline (linear_eval.untrained: true): the model as its seed initialises
    it, never trained, saved as checkpoint.pt beside the record and linear-evaluated in the
    same process (one job, not two)."""
    conda:
        CONDA_ENV
    output:
        record=f"{UNTRAINED_DIR}/result.json",
        checkpoint=f"{UNTRAINED_DIR}/checkpoint.pt",
    params:
        identity=untrained_identity,  # the re-run trigger; see rule pretrain
        spec=lambda w, output: untrained_spec_json(w),
        le=linear_eval_settings(),
        flags=lambda w, output: linear_eval_flags(w),
        out=lambda w, output: str(Path(output.record).parent),
        python=lambda w, output: PY,
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int(config["linear_eval"].get("gpus", 0)),
    log:
        f"{UNTRAINED_DIR}/stderr.txt",
    benchmark:
        f"{BENCHMARKS}/linear_eval/{{dataset}}/{{model}}-{UNTRAINED}/seed{{seed}}.tsv"
    shell:
        "{params.python} -m repro.linear_eval --untrained-spec {params.spec:q} {params.flags}"
        " --threads {threads} --out {params.out:q} 2> {log:q}"
