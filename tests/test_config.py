"""Workflow configs: schema validation, defaults, and one run's spec."""

import copy
from pathlib import Path

import pytest
import yaml

from repro.config import (UNTRAINED, excluded_run, fewshot_pairs, load_config, run_identity,
                          run_spec, sampler_labels, transfer_runs, untrained_spec,
                          validate_config)
from repro.results import config_hash

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def default():
    return load_config("config/default.yaml")


def test_shipped_configs_validate(default):
    paper = load_config("config/paper.yaml")
    assert default["scale"] == "default" and paper["scale"] == "paper"
    assert paper["pretrain"]["epochs"] == 200 and paper["pretrain"]["temperature"] == 0.07
    assert paper["models"]["ir"]["num_negatives"] == 4096


def test_invalid_value_is_refused_naming_the_key(default):
    bad = copy.deepcopy(default)
    bad["pretrain"]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"pretrain\.lr"):
        validate_config(bad)
    bad = copy.deepcopy(default)
    bad["pretrain"]["per_dataset"] = {"mnist": {"epochs": 1}}
    with pytest.raises(ValueError, match="per_dataset"):
        validate_config(bad)


def test_misspelt_key_is_refused_with_the_nearest_valid_key(default):
    bad = copy.deepcopy(default)
    bad["pretrain"]["epoch"] = 3
    with pytest.raises(ValueError, match=r"pretrain: unknown key 'epoch' \(did you mean 'epochs'"):
        validate_config(bad)
    bad = copy.deepcopy(default)
    bad["report"] = {"tabels_dir": "mine"}
    with pytest.raises(ValueError, match="did you mean 'tables_dir'"):
        validate_config(bad)


@pytest.mark.parametrize("options, problem", [
    ({"name": "ring", "w_l": 0.99, "w_u": 0.9}, "w_l < w_u"),
    ({"name": "ring", "w_l": 0.9}, None),  # w_u defaults to 1.0, as in RingSampler
    ({"name": "ring", "w_l": 0.3, "w_u": 0.5, "w_l_start": 0.6}, "w_l_start"),
    ({"name": "uniform", "w_l": 0.5}, "only apply to name: ring"),
])
def test_ring_options_every_run_would_reject_are_refused_up_front(default, options, problem):
    config = copy.deepcopy(default)
    config["samplers"]["mine"] = options
    if problem is None:
        validate_config(config)
        return
    with pytest.raises(ValueError, match=f"samplers.mine: .*{problem}"):
        validate_config(config)


def test_the_untrained_label_is_reserved_for_the_baseline(default):
    config = copy.deepcopy(default)
    config["samplers"][UNTRAINED] = {"name": "uniform"}
    with pytest.raises(ValueError, match="samplers.untrained: this label is reserved"):
        validate_config(config)


def test_transfer_runs_naming_no_configured_pair_are_refused_with_the_key(default):
    config = copy.deepcopy(default)
    config["samplers"] = {"uniform": {"name": "uniform"}}  # the default's runs name moco-ring
    with pytest.raises(ValueError, match=r"detection.runs: \['moco-ring'\] are not"):
        validate_config(config)
    config["detection"]["runs"] = None
    config["fewshot"]["runs"] = ["ir-uniform", "cmc-untrained"]
    with pytest.raises(ValueError, match=r"fewshot.runs: \['cmc-untrained'\]"):
        validate_config(config)


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")


def test_per_dataset_override_applies_only_to_its_dataset(default):
    config = copy.deepcopy(default)
    config["pretrain"]["per_dataset"] = {"digits": {"backbone": {"cifar_stem": False},
                                                    "epochs": 3}}
    validate_config(config)
    digits = run_spec(config, "ir", "ring", "digits", 0)["pretrain"]
    shapes = run_spec(config, "ir", "ring", "shapes", 0)["pretrain"]
    assert digits["backbone"] == {**default["pretrain"]["backbone"], "cifar_stem": False}
    assert digits["epochs"] == 3 and shapes["epochs"] == default["pretrain"]["epochs"]
    assert shapes["backbone"] == default["pretrain"]["backbone"]
    assert "per_dataset" not in digits and "datasets" not in digits


def test_per_model_overrides_apply_only_to_their_model_and_leave_no_block_in_the_spec(default):
    config = copy.deepcopy(default)
    config["samplers"]["ring"]["per_model"] = {"simclr": {"w_l": 0.5, "w_u": 0.95}}
    config["pretrain"]["per_model"] = {**default["pretrain"].get("per_model", {}),
                                       "simclr": {"lr_schedule": "constant", "lr": 0.3}}
    validate_config(config)
    simclr, moco = (run_spec(config, m, "ring", "shapes", 0) for m in ("simclr", "moco"))
    assert (simclr["sampler"]["w_l"], simclr["sampler"]["w_u"]) == (0.5, 0.95)
    assert simclr["sampler"]["schedule"] == default["samplers"]["ring"]["schedule"]
    assert simclr["pretrain"]["lr_schedule"] == "constant" and simclr["pretrain"]["lr"] == 0.3
    assert moco["sampler"] == default["samplers"]["ring"]
    assert moco["pretrain"] == run_spec(default, "moco", "ring", "shapes", 0)["pretrain"]
    assert "per_model" not in simclr["sampler"] and "per_model" not in simclr["pretrain"]


def test_a_per_model_ring_every_run_would_reject_is_refused_naming_the_model(default):
    config = copy.deepcopy(default)
    config["samplers"]["ring"]["per_model"] = {"simclr": {"w_l": 0.995}}
    with pytest.raises(ValueError, match=r"samplers.ring.per_model.simclr: .*w_l < w_u"):
        validate_config(config)


def test_a_run_without_overrides_keeps_its_identity_when_a_per_model_block_is_added(default):
    config = copy.deepcopy(default)
    before = config_hash(run_spec(config, "ir", "ring", "shapes", 0))
    config["samplers"]["ring"]["per_model"] = {"simclr": {"w_l": 0.5}}
    config["pretrain"]["per_model"] = {**config["pretrain"].get("per_model", {}),
                                       "simclr": {"lr_schedule": "constant"}}
    assert config_hash(run_spec(config, "ir", "ring", "shapes", 0)) == before


def test_a_misspelt_backbone_key_in_a_per_dataset_override_is_refused(default):
    config = copy.deepcopy(default)
    config["pretrain"]["per_dataset"] = {"shapes": {"backbone": {"cifar_stme": False}}}
    with pytest.raises(ValueError, match="did you mean 'cifar_stem'"):
        validate_config(config)


def test_run_spec_hash_ignores_settings_outside_the_run(default):
    config = copy.deepcopy(default)
    before = config_hash(run_spec(config, "ir", "ring", "shapes", 0))
    config["report"]["tables_dir"] = "elsewhere"
    config["linear_eval"]["epochs"] = 99
    assert config_hash(run_spec(config, "ir", "ring", "shapes", 0)) == before
    config["samplers"]["ring"]["w_l"] = 0.8
    assert config_hash(run_spec(config, "ir", "ring", "shapes", 0)) != before


def test_unknown_model_or_sampler_in_a_run_is_refused(default):
    with pytest.raises(ValueError, match="byol"):
        run_spec(default, "byol", "ring", "shapes", 0)
    with pytest.raises(ValueError, match="hard"):
        run_spec(default, "ir", "hard", "shapes", 0)


def test_untrained_spec_is_the_run_spec_of_the_same_model_with_no_epochs(default):
    run, untrained = run_spec(default, "moco", "ring", "shapes", 2), untrained_spec(
        default, "moco", "shapes", 2)
    assert untrained["sampler_label"] == UNTRAINED and untrained["pretrain"]["epochs"] == 0
    assert default["pretrain"]["epochs"] > 0  # the config itself is left alone
    for key in ("model", "model_options", "dataset", "seed", "scale"):
        assert untrained[key] == run[key]
    assert untrained["pretrain"]["backbone"] == run["pretrain"]["backbone"]


def test_where_and_how_a_run_executes_never_changes_its_identity(default):
    moved = copy.deepcopy(default)
    moved["pretrain"].update(threads=8, num_workers=4, gpus=2, data_root="/elsewhere")
    same = [run_identity(run_spec(c, "ir", "ring", "shapes", 0)) for c in (default, moved)]
    assert same[0] == same[1] and config_hash(same[0]) == config_hash(same[1])
    faster = copy.deepcopy(default)
    faster["pretrain"]["lr"] *= 2
    assert run_identity(run_spec(faster, "ir", "ring", "shapes", 0)) != same[0]
    # the untrained network does not depend on training settings either
    retuned = copy.deepcopy(default)
    retuned["pretrain"].update(lr=1.0, temperature=0.5, epochs=99)
    assert untrained_spec(retuned, "ir", "shapes", 0) == untrained_spec(default, "ir", "shapes", 0)


def test_transfer_runs_default_to_the_whole_grid_and_refuse_unknown_pairs(default):
    assert len(transfer_runs(default, {"runs": None})) == len(default["models"]) * len(
        default["samplers"])
    assert transfer_runs(default, {"runs": ["moco-ring", "ir-uniform"]}) == [
        ("moco", "ring"), ("ir", "uniform")]
    with pytest.raises(ValueError, match="byol-ring"):
        transfer_runs(default, {"runs": ["byol-ring"]})


def _fewshot_config(default, **fewshot):
    """The default with two pretraining datasets and the given ``fewshot`` block, validated
    (so the schema's defaults are filled in, as the Snakefile does)."""
    config = copy.deepcopy(default)
    config["pretrain"]["datasets"] = ["shapes", "digits"]
    config["fewshot"] = fewshot
    return validate_config(config)


def test_fewshot_in_domain_defaults_to_true_and_keeps_every_source_dataset_pair(default):
    config = _fewshot_config(default, sources=["shapes", "digits"])
    assert config["fewshot"]["in_domain"] is True
    assert fewshot_pairs(config) == [("shapes", "shapes"), ("shapes", "digits"),
                                     ("digits", "shapes"), ("digits", "digits")]


def test_fewshot_in_domain_false_keeps_only_sources_other_than_the_pretraining_data(default):
    config = _fewshot_config(default, sources=["shapes", "digits", "omniglot"], in_domain=False)
    assert fewshot_pairs(config) == [("shapes", "digits"), ("digits", "shapes"),
                                     ("omniglot", "shapes"), ("omniglot", "digits")]
    only_shapes = _fewshot_config(default, sources=["shapes", "digits"], in_domain=False,
                                  datasets=["shapes"])
    assert fewshot_pairs(only_shapes) == [("digits", "shapes")]
    assert fewshot_pairs(_fewshot_config(default, sources=["shapes"], in_domain=False,
                                         datasets=["shapes"])) == []


def test_fewshot_in_domain_must_be_a_boolean(default):
    with pytest.raises(ValueError, match=r"fewshot\.in_domain"):
        _fewshot_config(default, sources=["digits"], in_domain="no")


def test_schema_names_come_from_the_registries_and_the_file_lists_none():
    import dataclasses

    from repro.config import load_schema
    from repro.data.registry import DATASETS
    from repro.estimators import ESTIMATORS
    from repro.models import MODELS
    from repro.samplers import SAMPLERS

    text = (ROOT / "config" / "schema.yaml").read_text()
    for names in (SAMPLERS, ESTIMATORS, MODELS):  # no list of registry names to keep in step
        assert f"[{', '.join(names)}]" not in text and "enum: [ir," not in text
    schema = load_schema()
    sampler = schema["$defs"]["sampler"]["properties"]
    assert sampler["name"]["enum"] == sorted(SAMPLERS)
    assert sampler["estimator"]["properties"]["name"]["enum"] == sorted(ESTIMATORS)
    options = {o for e in ESTIMATORS.values() for o in e.options}
    assert options <= set(sampler["estimator"]["properties"])
    assert {f.name for cls in SAMPLERS.values() for f in dataclasses.fields(cls)} - {
        "num_negatives"} <= set(sampler)
    assert sampler["models"]["items"]["enum"] == sorted(MODELS)
    assert sampler["per_model"]["propertyNames"]["enum"] == sorted(MODELS)
    assert schema["properties"]["models"]["propertyNames"]["enum"] == sorted(MODELS)
    model_options = schema["properties"]["models"]["additionalProperties"]["properties"]
    assert {o for _, cls in MODELS.values() for o in cls.OPTIONS} <= set(model_options)
    assert schema["properties"]["pretrain"]["properties"]["datasets"]["items"]["enum"] == sorted(
        DATASETS)


def test_a_newly_registered_sampler_and_its_options_validate_without_a_schema_edit():
    import dataclasses

    from repro.samplers import SAMPLERS, UniformSampler, register_sampler

    @register_sampler
    @dataclasses.dataclass(frozen=True)
    class _Farthest(UniformSampler):  # a stand-in for a fifth method's file
        name = "farthest_test"
        spread: int = 3

    try:
        config = _minimal_config_for_estimators(
            {"far": {"name": "farthest_test", "spread": 5}})
        assert validate_config(config)["samplers"]["far"]["spread"] == 5
        config = _minimal_config_for_estimators(
            {"far": {"name": "farthest_test", "spread": "wide"}})
        with pytest.raises(ValueError, match=r"samplers\.far\.spread.*not of type 'integer'"):
            validate_config(config)
    finally:
        SAMPLERS.pop("farthest_test")
    with pytest.raises(ValueError, match="samplers.far.name"):
        validate_config(_minimal_config_for_estimators({"far": {"name": "farthest_test"}}))


def test_config_with_hcl_on_the_ring_is_refused_before_any_job_naming_the_label():
    config = _minimal_config_for_estimators(
        {"hcl_ring": {"name": "ring", "w_l": 0.5, "w_u": 0.99,
                      "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}})
    with pytest.raises(ValueError, match=r"hcl_ring\.estimator.*uniform"):
        validate_config(config)


def test_config_with_dcl_and_hcl_on_uniform_draws_validates():
    config = _minimal_config_for_estimators(
        {"dcl": {"name": "uniform", "estimator": {"name": "debiased", "tau_plus": 0.1}},
         "hcl": {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}})
    validated = validate_config(config)
    assert validated["samplers"]["hcl"]["estimator"]["beta"] == 1.0


def test_config_with_an_estimator_missing_its_option_is_refused():
    config = _minimal_config_for_estimators(
        {"hcl": {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.1}}})
    with pytest.raises(ValueError, match=r"hcl\.estimator.*missing \['beta'\]"):
        validate_config(config)


def _minimal_config_for_estimators(samplers):
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["samplers"] = {**config["samplers"], **samplers}
    return config


def test_a_sampler_label_restricted_to_some_models_is_crossed_with_those_only(default):
    config = copy.deepcopy(default)
    config["samplers"]["mochi"] = {"name": "mochi", "n_hard": 32, "s": 16, "s_prime": 8,
                                   "models": ["moco"]}
    validate_config(config)  # simclr never meets mochi: nothing to refuse
    assert sampler_labels(config, "moco") == ["uniform", "ring", "mochi"]
    assert sampler_labels(config, "simclr") == ["uniform", "ring"]
    assert ("simclr", "mochi") not in transfer_runs(config, {"runs": None})
    spec = run_spec(config, "moco", "mochi", "digits", 0)
    assert "models" not in spec["sampler"]  # which models take a label is not a run's identity


def test_excluded_run_refuses_exactly_the_runs_outside_the_grid_with_the_reason(default):
    config = copy.deepcopy(default)
    config["samplers"]["mochi"] = {"name": "mochi", "n_hard": 32, "s": 16, "s_prime": 8,
                                   "models": ["moco"]}
    # the default makes every model on shapes and digits except CMC on digits (grey: no ab
    # view), and this mochi label only with MoCo
    for dataset in ("shapes", "digits", "cifar10"):
        for model in ("ir", "cmc", "moco", "simclr"):
            for sampler in ("uniform", "ring", "mochi"):
                why = excluded_run(config, dataset, model, sampler)
                made = (dataset != "cifar10" and (model, dataset) != ("cmc", "digits")
                        and (sampler != "mochi" or model == "moco"))
                assert (why is None) == made, (dataset, model, sampler, why)
    # each refusal names the setting that excludes the run
    assert "models.cmc.datasets is ['shapes']" in excluded_run(config, "digits", "cmc", "ring")
    assert "pretrain.datasets" in excluded_run(config, "cifar10", "ir", "ring")
    assert "simclr with sampler 'mochi'" in excluded_run(config, "digits", "simclr", "mochi")
    assert "not in the config's models" in excluded_run(config, "digits", "byol", "ring")
    # without a sampler (the untrained baseline) only the pair counts
    assert excluded_run(config, "digits", "simclr") is None
    assert excluded_run(config, "digits", "cmc") is not None


def test_a_models_per_dataset_override_applies_to_that_model_on_that_dataset_only(default):
    config = copy.deepcopy(default)
    config["pretrain"]["per_dataset"] = {"shapes": {"epochs": 20}}
    config["pretrain"]["per_model"] = {"moco": {"epochs": 40, "lr": 0.03,
                                                "per_dataset": {"shapes": {"epochs": 25}}}}
    validate_config(config)
    epochs = {(m, d): run_spec(config, m, "uniform", d, 0)["pretrain"]["epochs"]
              for m in ("moco", "ir") for d in ("shapes", "digits")}
    # most specific wins: model on dataset > model > dataset > pretrain
    assert epochs == {("moco", "shapes"): 25, ("moco", "digits"): 40,
                      ("ir", "shapes"): 20, ("ir", "digits"): config["pretrain"]["epochs"]}
    spec = run_spec(config, "moco", "uniform", "shapes", 0)
    assert spec["pretrain"]["lr"] == 0.03 and "per_dataset" not in spec["pretrain"]


def test_a_model_option_another_model_declares_is_refused_for_this_one(default):
    config = copy.deepcopy(default)
    config["models"]["ir"] = {"num_negatives": 256, "queue_size": 4096}
    with pytest.raises(ValueError, match=r"models\.ir: options \['queue_size'\] do not apply "
                                         r"to ir"):
        validate_config(config)
    config["models"]["ir"] = {"num_negatives": 256, "bank_momentum": 0.9, "datasets": ["shapes"]}
    validate_config(config)


def test_cli_overrides_type_nested_numbers_and_leave_other_strings_alone():
    from repro.config import apply_cli_overrides

    config = {"pretrain": {"epochs": 20, "backbone": {"width": 0.125}, "data_root": None},
              "scale": "default"}
    apply_cli_overrides(config, {"pretrain": {"epochs": "6", "backbone": {"width": "0.25"},
                                              "data_root": "/data/2024"}, "scale": "default"})
    assert config["pretrain"] == {"epochs": 6, "backbone": {"width": 0.25},
                                  "data_root": "/data/2024"}
    assert isinstance(config["pretrain"]["epochs"], int)


def test_a_partial_spec_is_one_error_naming_what_it_lacks(default, capsys):
    import json

    from repro.config import run_spec, spec_problem, untrained_spec
    from repro.pretrain import main

    assert spec_problem(run_spec(default, "ir", "ring", "digits", 0)) is None
    assert spec_problem(untrained_spec(default, "ir", "digits", 0), trained=False) is None
    spec = run_spec(default, "ir", "ring", "digits", 0)
    del spec["sampler"], spec["pretrain"]["epochs"]
    with pytest.raises(SystemExit) as exit_:
        main(["--spec-json", json.dumps(spec), "--out", "/nonexistent/never-written"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "lacks ['sampler', 'pretrain.epochs']" in err and "Traceback" not in err
