"""Workflow configuration: load and validate a YAML config, and cut out one run's spec.

Light on purpose (no torch import): the Snakefile imports it at parse time.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from repro.results import DEFAULT_RECIPE  # light (no torch): declared once, there

__all__ = ["SCHEMA_PATH", "UNTRAINED", "EXECUTION_KEYS", "PRECISIONS", "DEFAULT_PRECISION", "SPEC_KEYS", "load_config",
           "load_schema", "registry_names", "registry_options", "validate_config",
           "apply_cli_overrides", "fit_inherited_runs", "run_spec", "spec_problem", "label_options", "run_identity",
           "untrained_spec", "transfer_runs", "fewshot_pairs", "pretrain_grid"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"
UNTRAINED = "untrained"  # sampler label of the random-init baseline (linear_eval.untrained)
# pretrain.precision's values and default (config/schema.yaml names the same; a test checks):
# the numeric format of the forward pass (repro.precision)
PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT_PRECISION = "fp32"
# pretrain keys that say where and how a run executes, not what it computes
EXECUTION_KEYS = ("threads", "num_workers", "gpus", "data_root", "log_every")


def registry_names() -> dict[str, list[str]]:
    """The names of every registry the schema refers to (``x-registry``)."""
    from repro.data.registry import DATASETS
    from repro.estimators import ESTIMATORS
    from repro.models import MODELS
    from repro.samplers import SAMPLERS

    return {"samplers": sorted(SAMPLERS), "estimators": sorted(ESTIMATORS),
            "models": sorted(MODELS), "datasets": sorted(DATASETS)}


def registry_options() -> dict[str, dict[str, dict]]:
    """Per registry, every option its entries take -> the JSON schema of its value (from the
    sampler dataclasses' field types; any value where a type says nothing, e.g. a model's
    ``OPTIONS``), for ``x-registry-options``."""
    import dataclasses

    from repro.estimators import ESTIMATORS
    from repro.models import MODELS
    from repro.samplers import SAMPLERS

    json_type = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}

    def field_schema(field) -> dict:
        name = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        return {"type": json_type[name]} if name in json_type else {}

    samplers = {f.name: field_schema(f) for cls in SAMPLERS.values()
                if dataclasses.is_dataclass(cls) for f in dataclasses.fields(cls)
                if f.name != "num_negatives"}  # the base model sets K
    return {"samplers": samplers,
            "estimators": {o: {} for e in ESTIMATORS.values() for o in e.options},
            "models": {o: {} for _, cls in MODELS.values() for o in cls.OPTIONS}}


def load_schema(schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """``config/schema.yaml`` with its registry references filled in: ``{x-registry: models}``
    becomes the enum of :func:`registry_names`, and an object marked ``x-registry-options:
    samplers`` also accepts each option of :func:`registry_options` it does not declare.
    A new sampler, estimator, model or dataset thus needs no edit of the schema file."""
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    names, options = registry_names(), registry_options()

    def fill(node):
        if isinstance(node, dict):
            if "x-registry" in node:
                node["enum"] = names[node.pop("x-registry")]
            if "x-registry-options" in node:
                declared = node.setdefault("properties", {})
                for option, sub in options[node.pop("x-registry-options")].items():
                    declared.setdefault(option, sub)
            for value in node.values():
                fill(value)
        elif isinstance(node, list):
            for value in node:
                fill(value)

    fill(schema)
    return schema


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Validate against ``config/schema.yaml`` (filling declared defaults), then check what a
    schema cannot say (each ring's ``w_l < w_u``). Raises ``ValueError`` with one short line per
    problem, naming the key (and the nearest valid key for a misspelt one)."""
    import jsonschema

    schema = load_schema(schema_path)
    validator_cls = jsonschema.validators.validator_for(schema)

    def fill_defaults(validator, properties, instance, schema_):
        for name, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(name, sub["default"])
        yield from validator_cls.VALIDATORS["properties"](validator, properties, instance, schema_)

    filling = jsonschema.validators.extend(validator_cls, {"properties": fill_defaults})
    errors = sorted(filling(schema).iter_errors(config), key=lambda e: list(e.path))
    lines = [f"  {'.'.join(map(str, e.path)) or '<top>'}: {_explain(e)}" for e in errors[:10]]
    if not errors:
        lines = [f"  samplers.{label}: {problem}" for label, problem in
                 _sampler_problems(config.get("samplers") or {})]
        lines += [f"  {key}: {problem}" for key, problem in _runs_problems(config)]
        lines += [f"  {key}: {problem}" for key, problem in _grid_problems(config)]
        lines += [f"  {key}: {problem}" for key, problem in _toy_problems(config)]
    if lines:
        raise ValueError("invalid configuration:\n" + "\n".join(lines))
    return config


def _explain(error) -> str:
    """A schema error's message; for unknown keys, the closest allowed key as a suggestion."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return error.message
    allowed = sorted(error.schema.get("properties", {}))
    parts = []
    for key in error.instance:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"unknown key {key!r}{hint}")
    return "; ".join(parts) + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")


_LABEL_KEYS = {"name", "estimator", "per_model", "models", "model_options"}
"""Keys of a sampler label that are not the sampler's own options."""


def _sampler_problems(samplers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Ring options that every run would reject (as ``repro.samplers.RingSampler`` does, with
    its defaults ``w_l=0.9, w_u=1.0, w_l_start=0``) and estimator blocks it would refuse
    (``repro.models.build_model``), found before any job starts."""
    problems = []
    for label, options in samplers.items():
        if label == UNTRAINED:
            problems.append((label, "this label is reserved for the random-init baseline "
                                    "(linear_eval.untrained): name the sampler otherwise"))
        per_model = options.get("per_model") or {}
        problem = _estimator_problem(options)
        if problem:
            problems.append((f"{label}.estimator", problem))
        name = options.get("name")
        accepted = _sampler_options(name)
        unknown = sorted(set(options) - _LABEL_KEYS - accepted)
        if unknown:
            problems.append((label, f"options {unknown} do not apply to name: {name} (it takes "
                                    f"{sorted(accepted) or 'none'}; the ring's only apply to "
                                    f"name: ring)"))
        if name != "ring":
            continue
        base = {k: v for k, v in options.items() if k not in _LABEL_KEYS - {"name"}}
        for where, merged in [(label, base)] + [
                (f"{label}.per_model.{model}",
                 {**base, **{k: v for k, v in extra.items() if k != "model_options"}})
                for model, extra in per_model.items()]:
            w_l, w_u = merged.get("w_l", 0.9), merged.get("w_u", 1.0)
            if not w_l < w_u:
                problems.append((where, f"the ring needs w_l < w_u, got w_l={w_l}, w_u={w_u}"))
            elif not merged.get("w_l_start", 0.0) < w_u:
                problems.append((where, f"w_l_start={merged['w_l_start']} must be below "
                                        f"w_u={w_u} (the annealed ring starts empty otherwise)"))
    return problems


def _sampler_options(name: Any) -> set[str]:
    """The config options the registered sampler ``name`` takes (its dataclass fields except
    ``num_negatives``, which the base model sets); none for an unknown name (the schema names
    it)."""
    import dataclasses

    from repro.samplers import SAMPLERS

    cls = SAMPLERS.get(name)
    if cls is None or not dataclasses.is_dataclass(cls):
        return set()
    return {f.name for f in dataclasses.fields(cls)} - {"num_negatives"}


def _estimator_problem(options: Mapping[str, Any]) -> Optional[str]:
    """What every run of this sampler label would refuse about its estimator block."""
    from repro.estimators import build_estimator
    from repro.models import estimator_problem

    block = options.get("estimator")
    if block is None:
        return None
    try:
        build_estimator(block)
    except ValueError as err:
        return str(err)
    return estimator_problem(options.get("name"), block)


def _grid_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Model options a model does not take (``queue_size`` for IR; also in a sampler label's
    ``model_options``) and (model, sampler label) pairs of the grid that every run would
    refuse, e.g. MoCHi with SimCLR (repro.models.model_option_problem, sampler_problem)."""
    from repro.models import model_option_problem, sampler_problem

    models = config.get("models") or {}
    problems = [(f"models.{model}", problem) for model, options in models.items()
                for problem in [model_option_problem(model, options or {})] if problem]
    for model in models:
        for label in sampler_labels(config, model):
            options = label_options(config, model, label)
            where = f"models.{model} x samplers.{label}"
            problem = sampler_problem(model, options.get("name"))
            if problem:
                problems.append((where, problem))
            problem = model_option_problem(model, options.get("model_options") or {})
            if problem:
                problems.append((f"{where}: model_options", problem))
    return problems


def _toy_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``toy.sphere.estimators`` blocks the estimator registry refuses, and a label ``nce``
    (which names NCE itself, always estimated)."""
    from repro.estimators import build_estimator

    estimators = (((config.get("toy") or {}).get("sphere") or {}).get("estimators") or {})
    problems = []
    for label, block in estimators.items():
        key = f"toy.sphere.estimators.{label}"
        if label == "nce":
            problems.append((key, "'nce' names NCE itself, which the toy always estimates; "
                                  "give this estimator another label"))
            continue
        try:
            build_estimator(block)
        except ValueError as err:
            problems.append((key, str(err)))
    return problems


def fit_inherited_runs(config: dict[str, Any], user: Mapping[str, Any]) -> list[str]:
    """Where a user's config names its own ``models`` or ``samplers`` but not
    ``fewshot.runs`` / ``detection.runs``, the runs it inherits from config/default.yaml may
    name pairs it no longer has (``moco-ring`` after ``models: {simclr: {}}``): keep the pairs
    it has. Changes ``config`` in place; returns one line per block it changed."""
    if "models" not in user and "samplers" not in user:
        return []
    pairs = {f"{m}-{s}" for m in config.get("models") or {} for s in sampler_labels(config, m)}
    said = []
    for block in ("fewshot", "detection"):
        if "runs" in (user.get(block) or {}):
            continue
        runs = (config.get(block) or {}).get("runs")
        if runs is None:
            continue
        kept = [r for r in runs if r in pairs]
        if kept != list(runs):
            config[block]["runs"] = kept
            said.append(f"{block}.runs from config/default.yaml names {sorted(set(runs) - pairs)}"
                        f", which this config's models and samplers do not have: "
                        f"{'running ' + ', '.join(kept) if kept else f'no {block} runs'} "
                        f"(set {block}.runs in your config; null = every pair)")
    return said


def _runs_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``fewshot.runs`` / ``detection.runs`` labels that are not model-sampler pairs of the
    config (a config that renames samplers also inherits the default's ``runs``)."""
    labels = [f"{m}-{s}" for m in config.get("models") or {} for s in sampler_labels(config, m)]
    problems = []
    for block in ("fewshot", "detection"):
        runs = (config.get(block) or {}).get("runs")
        unknown = [r for r in runs or [] if r not in labels]
        if unknown:
            problems.append((f"{block}.runs", f"{unknown} are not model-sampler pairs of this "
                             f"config ({', '.join(labels)}); set {block}.runs in your config "
                             f"(null = every pair)"))
    return problems


def apply_cli_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Give ``snakemake --config`` overrides the types a user typed: Snakemake merges
    ``--config 'pretrain={"epochs": 6}'`` into the config key by key but leaves the nested 6 a
    string (only top-level values are typed), which the schema would refuse. Each nested
    string of ``overrides`` that reads as a number or boolean becomes one in ``config``;
    anything else stays as it is. (Snakemake refuses dotted keys such as ``pretrain.epochs``
    before the Snakefile runs.) Returns ``config``, changed in place."""
    import yaml

    def typed(value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            if isinstance(parsed, (bool, int, float)):
                return parsed
        return value

    def apply(node: dict[str, Any], given: Mapping[str, Any]) -> None:
        for key, value in given.items():
            if isinstance(value, Mapping) and isinstance(node.get(key), dict):
                apply(node[key], value)
            elif not isinstance(value, Mapping):
                node[key] = typed(value)

    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            apply(config[key], value)
    return config


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a workflow YAML config."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no config file at {path}")
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    try:
        return validate_config(config)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def run_spec(config: Mapping[str, Any], model: str, sampler: str, dataset: str,
             seed: int) -> dict[str, Any]:
    """What one pretraining run depends on, cut out of the workflow config.

    Only these keys enter the run's config hash, so editing (say) the report settings never
    invalidates a checkpoint. ``pretrain.per_dataset[dataset]`` and then
    ``pretrain.per_model[model]`` and then ``pretrain.per_model[model].per_dataset[dataset]``
    (if any) override the pretrain settings for that dataset, model, or model on that dataset
    (nested dicts such as ``backbone`` are merged one level deep), and
    ``samplers[sampler].per_model[model]`` the sampler options for that model (e.g. SimCLR's
    wider ring in config/paper.yaml); a label's ``model_options`` (after its per-model block)
    override the model's options for the label's runs (e.g. a larger MoCo queue for one
    label, the released recipe's). The spec holds the merged values, never the blocks.
    """
    models, samplers = config.get("models", {}), config.get("samplers", {})
    if model not in models:
        raise ValueError(f"model {model!r} is not in the config's models: {sorted(models)}")
    if sampler not in samplers:
        raise ValueError(f"sampler {sampler!r} is not in the config's samplers: {sorted(samplers)}")
    pretrain = dict(config["pretrain"])
    pretrain.pop("datasets", None)
    per_dataset = (pretrain.pop("per_dataset", None) or {}).get(dataset) or {}
    per_model = dict((pretrain.pop("per_model", None) or {}).get(model) or {})
    per_model_dataset = (per_model.pop("per_dataset", None) or {}).get(dataset) or {}
    for override in (per_dataset, per_model, per_model_dataset):  # least to most specific
        for key, value in override.items():
            if isinstance(value, Mapping) and isinstance(pretrain.get(key), Mapping):
                pretrain[key] = {**pretrain[key], **value}
            else:
                pretrain[key] = value
    sampler_options = label_options(config, model, sampler)
    model_options = {k: v for k, v in (models[model] or {}).items() if k != "datasets"}
    model_options.update(sampler_options.pop("model_options", None) or {})
    return {
        "model": model,
        "model_options": model_options,
        "sampler_label": sampler,
        "sampler": sampler_options,
        "dataset": dataset,
        "seed": int(seed),
        "scale": config.get("scale", "default"),
        "recipe": config.get("recipe", DEFAULT_RECIPE),
        "pretrain": pretrain,
    }


SPEC_KEYS = ("model", "model_options", "sampler_label", "sampler", "dataset", "seed", "scale",
             "pretrain")
"""The keys of a run spec (:func:`run_spec`); ``recipe`` may be absent (specs before it)."""
SPEC_PRETRAIN_KEYS = ("backbone", "epochs", "batch_size", "lr")
"""The ``pretrain`` keys a trained run's spec must hold (an untrained one needs ``backbone``)."""


def spec_problem(spec: Any, trained: bool = True) -> Optional[str]:
    """What a run spec given by hand (``--spec-json``) lacks, in one line; ``None`` when it is
    complete. Specs come from :func:`run_spec` / :func:`untrained_spec`; print one with
    ``snakemake -n -p`` to start from."""
    if not isinstance(spec, Mapping):
        return f"a run spec is a JSON object, not {type(spec).__name__}"
    missing = [k for k in SPEC_KEYS if k not in spec]
    pretrain = spec.get("pretrain")
    if isinstance(pretrain, Mapping):
        wanted = SPEC_PRETRAIN_KEYS if trained else ("backbone",)
        missing += [f"pretrain.{k}" for k in wanted if k not in pretrain]
    elif "pretrain" in spec:
        missing.append("pretrain (an object)")
    if missing:
        return (f"the run spec lacks {missing}; `snakemake -n -p` prints every job's full "
                f"--spec-json to start from")
    return None


def label_options(config: Mapping[str, Any], model: str, sampler: str) -> dict[str, Any]:
    """Sampler label ``sampler``'s options for ``model``: its block with ``per_model[model]``
    merged in (one level: a per-model ``model_options`` replaces the label's), without
    ``per_model`` and ``models`` (the grid's business, not the run's)."""
    options = dict((config.get("samplers") or {})[sampler] or {})
    options.update((options.pop("per_model", None) or {}).get(model) or {})
    options.pop("models", None)
    return options


def sampler_labels(config: Mapping[str, Any], model: str) -> list[str]:
    """The sampler labels ``model`` is pretrained with: every label of ``samplers``, except
    where a label's ``models`` option names the models it runs with (e.g. ``mochi: {...,
    models: [moco]}``: MoCHi mixes pool embeddings, which SimCLR does not have)."""
    samplers = config.get("samplers") or {}
    return [label for label, options in samplers.items()
            if (options or {}).get("models") is None or model in options["models"]]


def pretrain_grid(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(dataset, model)`` pairs that are pretrained: every ``pretrain.datasets`` entry with
    every model, except where a model's ``datasets`` option names the datasets it runs on
    (e.g. ``cmc: {datasets: [shapes]}``: CMC's Lab views need colour, and digits are grey)."""
    models = config.get("models") or {}
    return [(dataset, model) for dataset in config["pretrain"]["datasets"] for model in models
            if (models[model] or {}).get("datasets") is None
            or dataset in models[model]["datasets"]]


def excluded_run(config: Mapping[str, Any], dataset: str, model: str,
                 sampler: str | None = None) -> str | None:
    """Why the config does not pretrain ``model`` on ``dataset`` (with ``sampler``), or None
    when it does: the pair is not in :func:`pretrain_grid` (the dataset is not in
    ``pretrain.datasets``, or the model's ``datasets`` option leaves it out), or the sampler
    label is not one of :func:`sampler_labels` for the model. A workflow target that names
    such a run is refused with this reason, rather than silently trained (e.g. CMC on grey
    digits, whose ab view is all zero)."""
    models = config.get("models") or {}
    if model not in models:
        return f"model {model!r} is not in the config's models {sorted(models)}"
    if (dataset, model) not in pretrain_grid(config):
        allowed = (models[model] or {}).get("datasets")
        why = (f"the config's models.{model}.datasets is {allowed}"
               if allowed is not None and dataset not in allowed
               else f"{dataset!r} is not in the config's pretrain.datasets "
                    f"{list(config['pretrain']['datasets'])}")
        return f"the config does not pretrain {model} on {dataset}: {why}"
    labels = sampler_labels(config, model)
    if sampler is not None and sampler not in labels:
        return (f"the config does not pretrain {model} with sampler {sampler!r}: its samplers "
                f"are {labels} (a sampler's models option names the models it runs with)")
    return None


def run_identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What decides a run's result: its spec without the pretrain :data:`EXECUTION_KEYS`.

    Resuming (``last.pt``), the record's config hash and Snakemake's decision to re-run key on
    this, so moving the data, changing threads or the number of GPUs never restarts a run.
    """
    pretrain = {k: v for k, v in spec["pretrain"].items() if k not in EXECUTION_KEYS}
    # precision is part of the identity (a bf16 run is not an fp32 run), except the default
    # fp32, which every run had before the setting existed: their identities stay as they were
    if pretrain.get("precision") == DEFAULT_PRECISION:
        del pretrain["precision"]
    # the recipe is a label of the settings, not a setting: the same run under another name
    # is the same run (and runs from before the label keep their identity)
    return {**{k: v for k, v in spec.items() if k != "recipe"}, "pretrain": pretrain}


_INIT_KEYS = ("backbone", "embedding_dim", "subset")  # what the initial network depends on


def untrained_spec(config: Mapping[str, Any], model: str, dataset: str,
                   seed: int) -> dict[str, Any]:
    """The spec of a run's model as its seed initialises it, never trained: the random-init
    baseline of linear evaluation. Same model, backbone and seed as :func:`run_spec`; sampler
    label :data:`UNTRAINED` (uniform options, never used), 0 epochs, and none of the training
    settings (learning rate, temperature, ...) that cannot change the initial network."""
    spec = run_spec({**config, "samplers": {UNTRAINED: {"name": "uniform"}}}, model, UNTRAINED,
                    dataset, seed)
    spec["pretrain"] = {**{k: v for k, v in spec["pretrain"].items()
                           if k in _INIT_KEYS + EXECUTION_KEYS}, "epochs": 0}
    return spec


def transfer_runs(config: Mapping[str, Any], block: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(model, sampler)`` pairs a transfer block (``fewshot``, ``detection``) asks for: its
    ``runs`` ("model-sampler" labels), or every configured model x sampler when ``runs`` is
    null. A label that is not a configured pair raises ``ValueError`` listing the pairs."""
    pairs = [(m, s) for m in config["models"] for s in sampler_labels(config, m)]
    wanted = block.get("runs")
    if wanted is None:
        return pairs
    unknown = [r for r in wanted if tuple(r.split("-", 1)) not in pairs]
    if unknown:
        raise ValueError(f"runs {unknown} are not model-sampler pairs of the config "
                         f"({[f'{m}-{s}' for m, s in pairs]})")
    return [tuple(r.split("-", 1)) for r in wanted]


def fewshot_pairs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(source, pretraining dataset)`` pairs the ``fewshot`` block asks for, sources first.

    Every ``fewshot.sources`` entry with every ``fewshot.datasets`` (default
    ``pretrain.datasets``) whose encoders are evaluated. A source named like the encoder's own
    pretraining dataset (its test split: in-domain few-shot classification, not transfer) is
    kept only when ``fewshot.in_domain`` is true (the default when the key is absent); with it
    false, ``sources: [shapes, digits]`` and ``datasets: [shapes, digits]`` give the cross pairs
    ``(digits, shapes)`` and ``(shapes, digits)``.
    """
    block = config.get("fewshot") or {}
    datasets = block.get("datasets") or config["pretrain"]["datasets"]
    in_domain = block.get("in_domain", True)
    return [(source, dataset) for source in block.get("sources") or []
            for dataset in datasets if in_domain or source != dataset]
