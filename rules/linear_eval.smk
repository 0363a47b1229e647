import shlex

from repro.config import untrained_spec

LINEAR_DIR = f"{RESULTS}/linear_eval/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"
UNTRAINED_DIR = f"{RESULTS}/linear_eval/{{dataset}}/{{model}}-{UNTRAINED}/seed{{seed}}"


LINEAR_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "protocol")


def linear_eval_samplers(model):
    """Sampler labels of ``model`` evaluated: those it is pretrained with, plus the untrained
    baseline when asked for."""
    untrained = [UNTRAINED] if config["linear_eval"].get("untrained") else []
    return [*sampler_labels(config, model), *untrained]


def linear_eval_targets():
    """Linear evaluation of every pretrained run, on its pretraining dataset (as in the paper)."""
    record = f"{LINEAR_DIR}/result.json"
    return [record.format(dataset=dataset, model=model, sampler=sampler, seed=seed)
            for dataset, model in pretrain_grid(config)
            for sampler in linear_eval_samplers(model)
            for seed in config["seeds"]]


def _linear_eval_flags(wildcards):
    """The command-line options both linear-eval rules share (the settings, data and device;
    linear_eval.gpus 0 or 1 picks cpu or cuda, as for pretraining)."""
    le = config["linear_eval"]
    root = config["pretrain"].get("data_root")
    return " ".join([
        f"--dataset {wildcards.dataset}",
        *([f"--data-root {shlex.quote(str(root))}"] if root else []),
        *(f"--{k.replace('_', '-')} {le[k]}" for k in LINEAR_SETTINGS if k in le),
        f"--seed {wildcards.seed}",
        f"--device {'cuda' if le.get('gpus') else 'cpu'}"])


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
        le={k: v for k, v in config["linear_eval"].items() if k in LINEAR_SETTINGS},
        # functions of `output`: Snakemake does not re-run jobs when they change (device, data
        # path); the settings in `le` above do trigger a re-run
        flags=lambda w, output: _linear_eval_flags(w),
        out=lambda w, output: str(Path(output.record).parent),
        python=lambda w, output: PY,
    wildcard_constraints:
        sampler="|".join(config["samplers"]),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int(config["linear_eval"].get("gpus", 0)),
    log:
        f"{LINEAR_DIR}/stderr.txt",
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
        identity=lambda w: json.dumps(
            run_identity(untrained_spec(config, w.model, w.dataset, int(w.seed))),
            sort_keys=True),  # the re-run trigger; see rule pretrain
        spec=lambda w, output: json.dumps(
            untrained_spec(config, w.model, w.dataset, int(w.seed)), sort_keys=True),
        le={k: v for k, v in config["linear_eval"].items() if k in LINEAR_SETTINGS},
        flags=lambda w, output: _linear_eval_flags(w),
        out=lambda w, output: str(Path(output.record).parent),
        python=lambda w, output: PY,
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=int(config["linear_eval"].get("gpus", 0)),
    log:
        f"{UNTRAINED_DIR}/stderr.txt",
    shell:
        "{params.python} -m repro.linear_eval --untrained-spec {params.spec:q} {params.flags}"
        " --threads {threads} --out {params.out:q} 2> {log:q}"
