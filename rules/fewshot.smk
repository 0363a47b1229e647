# Meta-Dataset few-shot transfer of every pretrained query encoder (python -m transfer.fewshot).
# Helpers (FEWSHOT_DIR, fewshot_targets, fewshot_options, ...) are in rules/common.smk.


rule fewshot:
    """Few-shot episodes on one source with one frozen checkpoint.

    fewshot.gpus (0 or 1) is the job's `gpu` resource (counted by `--resources gpu=N` and the
    SLURM profile) and picks --device for the features: cuda with 1, cpu with 0 (extra.device
    says which).
    """
    input:
        checkpoint=f"{PRETRAIN_DIR}/checkpoint.pt",
    conda:
        CONDA_ENV
    output:
        record=f"{FEWSHOT_DIR}/result.json",
    params:
        options=fewshot_options(),
        # a function of `output`: Snakemake does not re-run jobs when it changes
        device=lambda w, output: "cuda" if (config.get("fewshot") or {}).get("gpus") else "cpu",
        python=lambda w, output: PY,
    wildcard_constraints:
        source=r"[A-Za-z0-9_]+",
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int((config.get("fewshot") or {}).get("gpus", 0)),
    log:
        f"{FEWSHOT_DIR}/stderr.txt",
    benchmark:
        f"{BENCHMARKS}/fewshot/{{source}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}.tsv"
    shell:
        "{params.python} -m transfer.fewshot --checkpoint {input.checkpoint:q} --source {wildcards.source}"
        " --out {output.record:q} --seed {wildcards.seed} --threads {threads} {params.options}"
        " --device {params.device} --no-progress 2> {log:q}"
