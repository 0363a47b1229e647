"""Contrastive base models (IR, CMC, MoCo v2, SimCLR) and their builder.

Every model takes any negative sampler; the builder decides how many negatives the sampler
draws: ``K = num_negatives`` per anchor from a memory bank (IR, CMC), or the whole pool / the
whole ring (``None``) for the queue (MoCo) and the batch (SimCLR).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from repro.models.backbones import build_backbone
from repro.models.base import ContrastiveModel
from repro.models.cmc import CMC, IMAGENET_MEAN, IMAGENET_STD
from repro.models.ir import InstanceDiscrimination
from repro.models.moco import MoCo
from repro.models.simclr import SimCLR
from repro.estimators import ESTIMATORS, build_estimator
from repro.samplers import NegativeSampler, build_sampler

__all__ = [
    "ContrastiveModel",
    "InstanceDiscrimination",
    "CMC",
    "MoCo",
    "SimCLR",
    "MODELS",
    "build_model",
    "build_backbone",
    "model_names",
    "estimator_problem",
    "sampler_problem",
    "model_option_problem",
]


def _ir(sampler: NegativeSampler, o: Mapping[str, Any]) -> ContrastiveModel:
    return InstanceDiscrimination(sampler, o["temperature"], backbone=o["backbone"],
                                  dataset_size=o["dataset_size"],
                                  embedding_dim=o["embedding_dim"],
                                  bank_momentum=o["bank_momentum"], head=o["head"])


def _cmc(sampler: NegativeSampler, o: Mapping[str, Any]) -> ContrastiveModel:
    return CMC(sampler, o["temperature"], backbone=o["backbone"], dataset_size=o["dataset_size"],
               embedding_dim=o["embedding_dim"], bank_momentum=o["bank_momentum"],
               mean=o["mean"], std=o["std"], head=o["head"])


def _moco(sampler: NegativeSampler, o: Mapping[str, Any]) -> ContrastiveModel:
    return MoCo(sampler, o["temperature"], backbone=o["backbone"],
                embedding_dim=o["embedding_dim"], queue_size=o["queue_size"],
                key_momentum=o["key_momentum"], shuffle_bn=o["shuffle_bn"])


def _simclr(sampler: NegativeSampler, o: Mapping[str, Any]) -> ContrastiveModel:
    return SimCLR(sampler, o["temperature"], backbone=o["backbone"],
                  embedding_dim=o["embedding_dim"], loss=o["loss"])


# name -> (factory, class). The class declares what the builder and the config checks need:
# its OPTIONS (a model taking num_negatives draws K negatives per anchor from a memory bank;
# the others use their whole pool) and whether its pool is of embeddings.
Factory = Callable[[NegativeSampler, Mapping[str, Any]], ContrastiveModel]
MODELS: dict[str, tuple[Factory, type[ContrastiveModel]]] = {
    "ir": (_ir, InstanceDiscrimination),
    "cmc": (_cmc, CMC),
    "moco": (_moco, MoCo),
    "simclr": (_simclr, SimCLR),
}


def _model_class(name: str) -> Optional[type[ContrastiveModel]]:
    return MODELS[name][1] if name in MODELS else None


def sampler_problem(model: str, sampler_name: Optional[str]) -> Optional[str]:
    """Why a base model cannot take a registered sampler (``None`` when it can): a sampler
    that synthesizes negatives from pool embeddings (MoCHi) needs a model that has them."""
    from repro.samplers import SAMPLERS

    cls, sampler = _model_class(model), SAMPLERS.get(sampler_name)
    if cls is not None and sampler is not None and sampler.synthesizes \
            and not cls.pool_of_embeddings:
        return (f"sampler {sampler_name!r} mixes pool embeddings into synthetic negatives; "
                f"{model}'s negatives are in-batch similarities without a pool of embeddings: "
                f"use it with "
                f"{', '.join(m for m, (_, c) in MODELS.items() if c.pool_of_embeddings)}")
    return None


def model_option_problem(model: str, options: Mapping[str, Any]) -> Optional[str]:
    """Why a model's config options would be ignored (``None`` when none is): each model
    class declares the ``OPTIONS`` it takes (``queue_size`` is MoCo's, not IR's)."""
    cls = _model_class(model)
    if cls is None:
        return None
    unknown = sorted(set(options or {}) - set(cls.OPTIONS) - {"datasets"})
    if unknown:
        return (f"options {unknown} do not apply to {model} (it takes "
                f"{list(cls.OPTIONS) or 'none'}, and datasets)")
    return None


def model_names() -> list[str]:
    """The registered base models."""
    return sorted(MODELS)


def build_model(
    name: str,
    *,
    sampler_config: Mapping[str, Any],
    dataset_size: int,
    backbone: Mapping[str, Any],
    embedding_dim: int = 128,
    temperature: float = 0.07,
    num_negatives: int = 4096,
    queue_size: int = 4096,
    bank_momentum: float = 0.5,
    key_momentum: float = 0.999,
    shuffle_bn: bool = True,
    head: str = "linear",
    loss: str = "nt_xent",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> ContrastiveModel:
    """Build a base model and its sampler.

    Args:
        name: one of :func:`model_names` (``ir``, ``cmc``, ``moco``, ``simclr``).
        sampler_config: sampler options without ``num_negatives``, e.g. ``{"name": "ring",
            "w_l": 0.9, "w_u": 0.99, "schedule": "linear", "anneal_fraction": 0.5}``, and
            optionally ``estimator``: a :func:`repro.estimators.build_estimator` block (absent:
            InfoNCE), e.g. ``{"name": "uniform", "estimator": {"name": "hard",
            "tau_plus": 0.1, "beta": 1.0}}``.
        dataset_size: items in the training set (memory-bank size of IR / CMC).
        backbone: e.g. ``{"arch": "resnet18", "cifar_stem": True, "width": 0.25}``.
        embedding_dim: ``D`` of the L2-normalised embeddings.
        temperature: ``tau``.
        num_negatives: ``K`` per anchor (IR, CMC).
        queue_size: MoCo's queue length.
        bank_momentum: memory-bank momentum (IR, CMC).
        key_momentum: MoCo's key-encoder EMA momentum.
        shuffle_bn: MoCo's shuffle-BN across processes under DDP (no effect in one process).
        head: IR's / CMC's projection head, ``"linear"`` or ``"mlp"``
            (:func:`repro.models.heads.build_head`).
        loss: SimCLR's ``"nt_xent"`` or ``"released"`` (:mod:`repro.models.simclr`).
        mean, std: RGB normalisation of the data pipeline (CMC undoes it for Lab).
    """
    if name not in MODELS:
        raise ValueError(f"unknown base model {name!r}; choose one of {model_names()}")
    if "num_negatives" in sampler_config:
        raise ValueError("sampler_config must not set num_negatives: the base model sets it "
                         "(give num_negatives in the model's options: K for ir / cmc; moco and "
                         "simclr use the whole pool)")
    if dataset_size < 1:
        raise ValueError(f"dataset_size must be positive, got {dataset_size}")
    factory, cls = MODELS[name]
    k: Optional[int] = int(num_negatives) if "num_negatives" in cls.OPTIONS else None
    sampler_options = dict(sampler_config)
    estimator_config = sampler_options.pop("estimator", None)
    sampler = build_sampler({**sampler_options, "num_negatives": k})
    estimator = build_estimator(estimator_config)
    problem = estimator_problem(sampler_options.get("name"), estimator_config)
    if problem:
        raise ValueError(problem)
    options = dict(backbone=dict(backbone), dataset_size=int(dataset_size),
                   embedding_dim=int(embedding_dim), temperature=float(temperature),
                   queue_size=int(queue_size), bank_momentum=float(bank_momentum),
                   key_momentum=float(key_momentum), shuffle_bn=bool(shuffle_bn),
                   head=str(head), loss=str(loss),
                   mean=tuple(mean), std=tuple(std))
    problem = sampler_problem(name, sampler.name)
    if problem:
        raise ValueError(problem)
    model = factory(sampler, options)
    model.estimator = estimator
    return model


def estimator_problem(sampler_name: Optional[str],
                      estimator_config: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why a sampler and an estimator do not combine (``None`` when they do): DCL and HCL
    correct *uniformly drawn* negatives, a sampler that chooses by similarity (the ring) does
    not draw them."""
    from repro.samplers import SAMPLERS

    name = (estimator_config or {}).get("name")  # none: NCE, which takes any sampler
    if (name in ESTIMATORS and ESTIMATORS[name].uniform_negatives
            and sampler_name in SAMPLERS and SAMPLERS[sampler_name].needs_similarities):
        return (f"estimator {name!r} ({ESTIMATORS[name].label}) debiases / reweights negatives "
                f"drawn from the data distribution; sampler {sampler_name!r} chooses them by "
                f"similarity. Use name: uniform with it.")
    return None
