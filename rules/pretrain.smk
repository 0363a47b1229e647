import json
from pathlib import Path

from snakemake.logging import logger

from repro.config import UNTRAINED, pretrain_grid, run_identity, run_spec, sampler_labels

PRETRAIN_DIR = f"{RESULTS}/pretrain/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"


def pretrain_targets():
    """result.json of every (dataset, model, sampler, seed) the config asks for: the
    (dataset, model) pairs of repro.config.pretrain_grid with every sampler and seed."""
    record = f"{PRETRAIN_DIR}/result.json"
    return [record.format(dataset=dataset, model=model, sampler=sampler, seed=seed)
            for dataset, model in pretrain_grid(config)
            for sampler in sampler_labels(config, model)
            for seed in config["seeds"]]


def _missing_datasets():
    """Why each pretraining dataset that is not on disk cannot be read (repro.data.missing_data)."""
    from repro.data.registry import missing_data

    root = config["pretrain"].get("data_root")
    return [m for m in (missing_data(d, root) for d in config["pretrain"]["datasets"]) if m]


# Said before any job starts (dry runs included), not only in the failing job's stderr.txt.
# A warning, not an error: tables can still be regenerated from records made elsewhere.
for _message in _missing_datasets():
    logger.warning(f"WARNING: {_message}\n  Jobs that need this dataset will fail "
                   "(exit 2, message in their stderr.txt); existing records are still used.")


def _gpus(wildcards):
    """GPUs of one run (pretrain.gpus, or its pretrain.per_dataset override)."""
    spec = run_spec(config, wildcards.model, wildcards.sampler, wildcards.dataset,
                    int(wildcards.seed))
    return int(spec["pretrain"].get("gpus", 0))


def _launcher(wildcards):
    """What runs `-m repro.pretrain`: python, or torchrun with one process per GPU; a job with
    GPUs first claims its own (repro.gpus: on one multi-GPU machine, concurrent jobs get
    different GPUs; under SLURM, which sets CUDA_VISIBLE_DEVICES, it changes nothing)."""
    gpus = _gpus(wildcards)
    if gpus == 0:
        return PY
    runner = (f"{Path(PY).with_name('torchrun')} --standalone --nproc_per_node={gpus}"
              if gpus > 1 else PY)
    return f"{PY} -m repro.gpus {gpus} -- {runner}"


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
        identity=lambda w: json.dumps(
            run_identity(run_spec(config, w.model, w.sampler, w.dataset, int(w.seed))),
            sort_keys=True),
        spec=lambda w, output: json.dumps(
            run_spec(config, w.model, w.sampler, w.dataset, int(w.seed)), sort_keys=True),
        out=lambda w, output: str(Path(output.record).parent),
        launcher=lambda w, output: _launcher(w),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=_gpus,
        # SLURM: every process (one per GPU) runs pretrain.threads threads
        cpus_per_task=lambda w: max(1, _gpus(w)) * int(config["pretrain"].get("threads", 1)),
    log:
        f"{PRETRAIN_DIR}/stderr.txt",
    shell:
        "{params.launcher} -m repro.pretrain --spec-json {params.spec:q} --out {params.out:q}"
        " --resume --no-progress 2> {log:q}"

