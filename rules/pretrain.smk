# Pretraining: one job per (dataset, model, sampler, seed) (python -m repro.pretrain).
# Helpers (PRETRAIN_DIR, pretrain_identity, pretrain_launcher, ...) are in rules/common.smk.


rule pretrain:
    """One (model, sampler, dataset, seed) pretraining run; resumes after an interruption."""
    conda:
        CONDA_ENV
    output:
        checkpoint=f"{PRETRAIN_DIR}/checkpoint.pt",
        log=f"{PRETRAIN_DIR}/log.csv",
        record=f"{PRETRAIN_DIR}/result.json",
    params:
        # Snakemake re-runs a finished job when a param changes, except params computed from
        # `output` (or input / threads / resources). So the run's identity is the one plain
        # param, and the full spec, which adds where and how to run (threads, GPUs, data path;
        # repro.config.EXECUTION_KEYS), is passed as a function of `output`: changing those
        # never restarts a run (its last.pt is keyed on the identity too).
        identity=pretrain_identity,
        spec=lambda w, output: pretrain_spec(w),
        out=lambda w, output: str(Path(output.record).parent),
        launcher=lambda w, output: pretrain_launcher(w),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=pretrain_gpus,
        # SLURM: every process (one per GPU) runs pretrain.threads threads
        cpus_per_task=lambda w: max(1, pretrain_gpus(w)) * int(config["pretrain"].get("threads", 1)),
    log:
        f"{PRETRAIN_DIR}/stderr.txt",
    benchmark:
        f"{BENCHMARKS}/pretrain/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}.tsv"
    shell:
        "{params.launcher} -m repro.pretrain --spec-json {params.spec:q} --out {params.out:q}"
        " --resume --no-progress 2> {log:q}"
