# Meta-Dataset few-shot transfer of every pretrained query encoder (python -m transfer.fewshot).
# Uses PY, RESULTS and config from the Snakefile.

FEWSHOT_CHECKPOINT = f"{RESULTS}/pretrain/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}/checkpoint.pt"
FEWSHOT_DIR = f"{RESULTS}/fewshot/{{source}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}"


def _transfer_runs(block):
    """(model, sampler) pairs a transfer block asks for: its `runs` ("model-sampler" labels),
    or every configured model x sampler."""
    pairs = [(m, s) for m in config["models"] for s in config["samplers"]]
    wanted = block.get("runs")
    if wanted is None:
        return pairs
    unknown = [r for r in wanted if tuple(r.split("-", 1)) not in pairs]
    if unknown:
        raise ValueError(f"runs {unknown} are not model-sampler pairs of the config "
                         f"({[f'{m}-{s}' for m, s in pairs]})")
    return [tuple(r.split("-", 1)) for r in wanted]


def fewshot_targets():
    """result.json of every (source, pretraining dataset, model, sampler, seed) asked for."""
    fs = config.get("fewshot") or {}
    datasets = fs.get("datasets") or config["pretrain"]["datasets"]
    return [f"{RESULTS}/fewshot/{source}/{dataset}/{model}-{sampler}/seed{seed}/result.json"
            for source in fs.get("sources", [])
            for dataset in datasets
            for model, sampler in _transfer_runs(fs)
            for seed in config["seeds"]]


def _fewshot_options(fs):
    flags = {"--episodes": fs.get("episodes", 600), "--classifier": fs.get("classifier"),
             "--data-dir": fs.get("data_dir"), "--folder-root": fs.get("folder_root"),
             "--image-size": fs.get("image_size"), "--max-per-class": fs.get("max_per_class"),
             "--min-way": fs.get("min_way"), "--max-way": fs.get("max_way"),
             "--way": fs.get("way"), "--shot": fs.get("shot"), "--query": fs.get("query")}
    return " ".join(f"{k} {v}" for k, v in flags.items() if v is not None)


rule fewshot:
    """Few-shot episodes on one source with one frozen checkpoint."""
    input:
        checkpoint=FEWSHOT_CHECKPOINT,
    output:
        record=f"{FEWSHOT_DIR}/result.json",
    params:
        options=_fewshot_options(config.get("fewshot") or {}),
    wildcard_constraints:
        source=r"[A-Za-z0-9_]+",
    threads: int(config["pretrain"].get("threads", 1))
    log:
        f"{FEWSHOT_DIR}/stderr.txt",
    shell:
        "{PY} -m transfer.fewshot --checkpoint {input.checkpoint} --source {wildcards.source}"
        " --out {output.record} --seed {wildcards.seed} --threads {threads} {params.options}"
        " --no-progress 2> {log}"
