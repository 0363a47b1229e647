# Meta-Dataset few-shot transfer of every pretrained query encoder (python -m transfer.fewshot).
# Uses PY, RESULTS and config from the Snakefile, PRETRAIN_DIR from rules/pretrain.smk.

import shlex

from repro.config import fewshot_pairs, pretrain_grid, transfer_runs

FEWSHOT_DIR = f"{RESULTS}/fewshot/{{source}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"


def fewshot_targets():
    """result.json of every (source, pretraining dataset, model, sampler, seed) asked for:
    the (source, dataset) pairs of repro.config.fewshot_pairs (fewshot.in_domain: false drops
    a source that is the encoder's own pretraining dataset), each with fewshot.runs and seeds."""
    fs = config.get("fewshot") or {}
    runs, grid = transfer_runs(config, fs), set(pretrain_grid(config))
    return [f"{RESULTS}/fewshot/{source}/{dataset}/{model}-{sampler}/seed{seed}/result.json"
            for source, dataset in fewshot_pairs(config)
            for model, sampler in runs
            if (dataset, model) in grid
            for seed in config["seeds"]]


def _fewshot_skips_everything():
    """Whether fewshot.in_domain: false leaves no pair although sources are asked for (every
    source is the only pretraining dataset): worth a warning, since Table 2 stays empty."""
    fs = config.get("fewshot") or {}
    return bool(fs.get("sources")) and not fewshot_pairs(config)


if _fewshot_skips_everything():
    logger.warning("WARNING: fewshot.in_domain is false and every fewshot source is the "
                   "pretraining dataset of the encoders evaluated: no few-shot job (add a "
                   "source, or set fewshot.in_domain: true for in-domain rows).")


def _missing_fewshot_sources():
    """Few-shot sources not on disk, each with where it was looked for and how to prepare it
    (a cheap folder check; transfer.fewshot.sources checks the data itself in the job)."""
    from transfer.fewshot.sources import FOLDER_SOURCES, OFFLINE_SOURCES, TFDS_SOURCES

    import os

    fs = config.get("fewshot") or {}
    data_dir = Path(fs.get("data_dir") or os.environ.get("TFDS_DATA_DIR")
                    or "~/tensorflow_datasets").expanduser()
    missing = []
    for source in fs.get("sources", []):
        if source in FOLDER_SOURCES:
            folder = Path(fs.get("folder_root") or "data/meta_dataset") / source
            if not folder.is_dir():
                missing.append(f"few-shot source {source!r}: no image folder {folder} "
                               f"(<class>/<image>; see github.com/google-research/meta-dataset)")
        elif source in TFDS_SOURCES and not (data_dir / TFDS_SOURCES[source].builder).is_dir():
            name = TFDS_SOURCES[source].builder
            missing.append(f"few-shot source {source!r}: TFDS dataset {name!r} is not prepared "
                           f"in {data_dir} (nothing is downloaded during a run: `tfds build "
                           f"{name} --data_dir {data_dir}` once, where there is internet)")
    return missing


for _message in _missing_fewshot_sources():
    logger.warning(f"WARNING: {_message}\n  Its few-shot jobs will fail (message in their "
                   "stderr.txt); existing records are still used.")


def _fewshot_options(fs):
    flags = {"--episodes": fs.get("episodes", 600), "--classifier": fs.get("classifier"),
             "--data-dir": fs.get("data_dir"), "--folder-root": fs.get("folder_root"),
             "--image-size": fs.get("image_size"), "--max-per-class": fs.get("max_per_class"),
             "--min-way": fs.get("min_way"), "--max-way": fs.get("max_way"),
             "--way": fs.get("way"), "--shot": fs.get("shot"), "--query": fs.get("query")}
    return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in flags.items() if v is not None)


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
        options=_fewshot_options(config.get("fewshot") or {}),
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
    shell:
        "{params.python} -m transfer.fewshot --checkpoint {input.checkpoint:q} --source {wildcards.source}"
        " --out {output.record:q} --seed {wildcards.seed} --threads {threads} {params.options}"
        " --device {params.device} --no-progress 2> {log:q}"
