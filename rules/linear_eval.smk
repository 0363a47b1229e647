LINEAR_DIR = f"{RESULTS}/linear_eval/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"


LINEAR_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay")


def linear_eval_samplers():
    """Sampler labels evaluated: the config's, plus the untrained baseline when asked for."""
    untrained = [UNTRAINED] if config["linear_eval"].get("untrained") else []
    return [*config["samplers"], *untrained]


def linear_eval_targets():
    """Linear evaluation of every pretrained run, on its pretraining dataset (as in the paper)."""
    record = f"{LINEAR_DIR}/result.json"
    return [record.format(dataset=dataset, model=model, sampler=sampler, seed=seed)
            for dataset, model in pretrain_grid(config)
            for sampler in linear_eval_samplers()
            for seed in config["seeds"]]


rule linear_eval:
    """Linear classifier on frozen features of one pretrained checkpoint.

    linear_eval.gpus (0 or 1) is the job's `gpu` resource (counted by `--resources gpu=N` and
    the SLURM profile) and picks --device: cuda with 1, cpu with 0 even where a GPU is visible,
    as pretraining does. The record's extra.device says which.
    """
    input:
        checkpoint=f"{PRETRAIN_DIR}/checkpoint.pt",
    output:
        record=f"{LINEAR_DIR}/result.json",
    params:
        le={k: v for k, v in config["linear_eval"].items() if k in LINEAR_SETTINGS},
        # a function of `output`: Snakemake does not re-run jobs when it changes
        device=lambda w, output: "cuda" if config["linear_eval"].get("gpus") else "cpu",
        data_root=config["pretrain"].get("data_root") or "",
        out=lambda w, output: str(Path(output.record).parent),
    wildcard_constraints:
        sampler="|".join(linear_eval_samplers()),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int(config["linear_eval"].get("gpus", 0)),
    log:
        f"{LINEAR_DIR}/stderr.txt",
    shell:
        "{PY} -m repro.linear_eval --checkpoint {input.checkpoint} --dataset {wildcards.dataset}"
        " $([ -n '{params.data_root}' ] && echo --data-root '{params.data_root}')"
        " --epochs {params.le[epochs]} --lr {params.le[lr]} --batch-size {params.le[batch_size]}"
        " --weight-decay {params.le[weight_decay]} --seed {wildcards.seed} --threads {threads}"
        " --device {params.device}"
        " --out {params.out} 2> {log}"
