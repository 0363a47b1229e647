"""The switches that select the authors' released behaviour (issue #15), one property each,
pinned on small inputs against what mhw32/contrastive-ring-public computes."""

import copy
from pathlib import Path

import pytest
import torch

from repro.config import load_config, validate_config
from repro.memory import MemoryBank
from repro.models import build_model
from repro.samplers import RingSampler

ROOT = Path(__file__).resolve().parent.parent
TINY = {"arch": "resnet18", "cifar_stem": True, "width": 0.125}


def _released_ring_bounds(thres_outer: float, thres_inner: float, n: int) -> tuple[int, int]:
    """Ranks (0 = most similar) the released NCERing keeps with dynamic_inner: the top
    ``thres_outer * n``, minus the top ``thres_inner`` fraction of those."""
    outer = int(thres_outer * n)
    return int(thres_inner * outer), outer


def test_scaled_w_u_is_the_released_inner_fraction_of_the_annealed_outer_ring():
    ring = RingSampler(w_l=0.9, w_u=0.99, w_u_rule="scaled", schedule="linear", w_l_start=0.0,
                       anneal_fraction=0.5)
    for progress in (0.0, 0.1, 0.3, 0.5, 0.9):
        w_l, w_u = ring.current_w_l(progress), ring.current_w_u(progress)
        thres_outer = 1.0 - w_l  # the released policy anneals thres_outer; thres_inner = 0.1
        assert 1.0 - w_u == pytest.approx(0.1 * thres_outer)
    assert ring.current_w_u(1.0) == pytest.approx(0.99)  # annealing done: the same ring
    fixed = RingSampler(w_l=0.9, w_u=0.99, schedule="linear", w_l_start=0.0)
    assert fixed.current_w_u(0.0) == 0.99


def test_scaled_ring_draws_exactly_the_ranks_the_released_code_keeps_mid_annealing():
    # binary-exact numbers (the released code truncates products with int()): ring
    # [0.75, 0.9375], i.e. thres_inner = 0.0625 / 0.25 = 0.25; at progress 0.25 of a linear
    # anneal over half of training w_l = 0.375, thres_outer = 0.625
    n = 1024
    sims = torch.linspace(1.0, -1.0, n).unsqueeze(0)  # rank r = index r, most similar first
    ring = RingSampler(w_l=0.75, w_u=0.9375, w_u_rule="scaled", schedule="linear",
                       w_l_start=0.0, anneal_fraction=0.5)
    progress = 0.25
    assert ring.current_w_l(progress) == 0.375
    drawn = ring.select(sims, batch_size=1, pool_size=n, progress=progress)
    lo, hi = _released_ring_bounds(0.625, 0.25, n)
    assert (lo, hi) == (160, 640)
    assert set(drawn[0].tolist()) == set(range(lo, hi))
    # with w_u fixed the ring keeps ranks the released one excludes (64 .. 159 here)
    fixed = RingSampler(w_l=0.75, w_u=0.9375, schedule="linear", w_l_start=0.0,
                        anneal_fraction=0.5)
    assert min(fixed.select(sims, batch_size=1, pool_size=n, progress=progress)[0]) < lo


def test_tables_name_the_scaled_w_u_only_where_it_changes_the_ring():
    from repro.report.methods import method_description

    annealed = {"name": "ring", "w_l": 0.9, "w_u": 0.99, "w_u_rule": "scaled"}
    assert method_description(annealed) == "InfoNCE, ring [0.9, 0.99], w_u scaled"
    assert method_description({**annealed, "schedule": "constant"}) == (
        "InfoNCE, ring [0.9, 0.99], constant")


def test_constant_schedule_holds_the_ring_from_the_first_step_as_released():
    ring = RingSampler(w_l=0.9, w_u=0.99, schedule="constant")
    assert ring.current_w_l(0.0) == ring.current_w_l(1.0) == 0.9


def test_bank_momentum_zero_overwrites_the_entry_as_the_released_m_0():
    bank = MemoryBank(4, 3, momentum=0.0)
    new = torch.nn.functional.normalize(torch.tensor([[1.0, 2.0, 2.0]]), dim=1)
    bank.update(torch.tensor([2]), new)
    assert torch.allclose(bank.get(torch.tensor([2])), new)


@pytest.mark.parametrize("model", ["ir", "cmc"])
def test_mlp_head_is_the_released_feature_width_hidden_layer(model):
    built = build_model(model, sampler_config={"name": "uniform"}, dataset_size=8,
                        backbone=TINY, embedding_dim=16, num_negatives=4, head="mlp")
    head = built.head if model == "ir" else built.head_l
    linear = [m for m in head if isinstance(m, torch.nn.Linear)]
    feature = built.feature_dim if model == "ir" else built.encoder_l.feature_dim
    # CustomResNet: l1 = Linear(num_ftrs, num_ftrs), ReLU, l2 = Linear(num_ftrs, out_dim)
    assert [(m.in_features, m.out_features) for m in linear] == [(feature, feature),
                                                                 (feature, 16)]
    assert isinstance(head[1], torch.nn.ReLU)
    plain = build_model(model, sampler_config={"name": "uniform"}, dataset_size=8,
                        backbone=TINY, embedding_dim=16, num_negatives=4)
    assert isinstance(plain.head if model == "ir" else plain.head_l, torch.nn.Linear)


def test_head_is_an_ir_and_cmc_option_and_refused_for_moco():
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["models"]["ir"]["head"] = "mlp"
    validate_config(copy.deepcopy(config))
    config["models"]["moco"]["head"] = "mlp"
    with pytest.raises(ValueError, match=r"models\.moco: options \['head'\] do not apply"):
        validate_config(config)


def test_k_minus_one_negatives_give_the_released_partition_of_k_terms():
    # released NCERing: K - 1 ring draws plus the positive in the log-sum-exp (K terms);
    # here the positive joins num_negatives draws, so num_negatives = K - 1 is the same sum
    from repro.estimators import info_nce_loss

    k = 8
    pos = torch.tensor([0.5])
    neg = torch.linspace(-0.5, 0.4, k - 1).unsqueeze(0)
    released = -(pos / 0.07 - torch.logsumexp(torch.cat([pos, neg[0]]) / 0.07, dim=0))
    assert info_nce_loss(pos, neg, 0.07) == pytest.approx(float(released), rel=1e-6)


class _Flatten(torch.nn.Module):
    """An encoder whose features are its input, flattened: the layer sees the images."""

    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(4)  # must stay in eval mode, statistics untouched

    def features(self, x):
        return self.bn(x.flatten(1))


class _Counted(torch.utils.data.Dataset):
    """Two fixed images whose 'augmentation' adds a fresh draw of noise at every access."""

    def __init__(self):
        self.calls = 0
        self.x = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, -2.0, 1.0]])

    def __len__(self):
        return 2

    def __getitem__(self, i):
        self.calls += 1
        return self.x[i] + 0.01 * torch.randn(4), i


def test_augmented_protocol_is_sgd_with_momentum_on_fresh_views_of_a_frozen_encoder():
    from repro.linear_eval import fit_linear_augmented

    encoder, data = _Flatten().eval(), _Counted()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    layer = fit_linear_augmented(encoder, data, 2, 4, epochs=3, lr=0.5, weight_decay=0.01,
                                 batch_size=2, seed=4)
    assert data.calls == 3 * 2  # every epoch draws new views: nothing is cached
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    # the same three SGD steps by hand, seeded as documented: the layer first, then per epoch
    # a permutation from a generator of the seed and the views' draws in that order
    torch.manual_seed(4)
    ref = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5, momentum=0.9, weight_decay=0.01)
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        order = torch.randperm(2, generator=gen).tolist()
        batch = torch.stack([data.x[i] + 0.01 * torch.randn(4) for i in order])
        loss = torch.nn.functional.cross_entropy(ref(encoder.features(batch)),
                                                 torch.tensor(order))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(layer.weight, ref.weight, atol=1e-6)
    assert torch.allclose(layer.bias, ref.bias, atol=1e-6)


def test_linear_eval_cli_runs_the_augmented_protocol_and_records_it(tmp_path):
    import json

    from repro.config import untrained_spec
    from repro.linear_eval import main

    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    spec = untrained_spec(config, "moco", "digits", 0)
    assert main(["--untrained-spec", json.dumps(spec), "--dataset", "digits", "--epochs", "1",
                 "--protocol", "augmented", "--device", "cpu", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["extra"]["protocol"] == "augmented"
    assert record["protocol"].startswith("linear on frozen features of augmented images (SGD")
    # top-1 is a count of correct test images over the whole digits test split, in percent
    from repro.data import build_dataset

    test_size = len(build_dataset("digits", None, "test"))
    assert record["extra"]["test_size"] == test_size
    correct = record["metrics"]["top1"] * test_size / 100.0
    assert abs(correct - round(correct)) < 1e-6 and 0 <= round(correct) <= test_size


def test_image_size_and_blur_override_the_dataset_input_as_the_released_224_crops():
    from repro.data import eval_transform, get_spec, input_spec, pretrain_transform

    assert input_spec("cifar10") is get_spec("cifar10")  # absent: the dataset's own
    released = input_spec("cifar10", {"image_size": 224, "blur": True})
    assert (released.image_size, released.blur) == (224, True)
    assert released.mean == get_spec("cifar10").mean
    # released test transform: Resize(256), CenterCrop(224); train: RandomResizedCrop(224)
    names = [type(t).__name__ for t in eval_transform(released).transforms]
    assert names[:2] == ["Resize", "CenterCrop"]
    assert eval_transform(released).transforms[0].size == 256
    steps = pretrain_transform(released).transforms
    assert steps[0].size == (224, 224)
    assert any(type(getattr(t, "transforms", [None])[0]).__name__ == "GaussianBlur"
               for t in steps if type(t).__name__ == "RandomApply")


def test_a_run_with_its_own_image_size_trains_and_is_evaluated_at_that_size(tmp_path):
    from PIL import Image

    from repro.config import run_spec
    from repro.data import eval_transform, input_spec
    from repro.pretrain import train

    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["pretrain"].update(epochs=1, subset=32, batch_size=16, image_size=24)
    spec = run_spec(config, "simclr", "uniform", "digits", 0)
    assert spec["pretrain"]["image_size"] == 24
    record = train(spec, tmp_path / "24", progress_bar=False)
    config["pretrain"].pop("image_size")
    native = train(run_spec(config, "simclr", "uniform", "digits", 0), tmp_path / "16",
                   progress_bar=False)
    # the same seed and data: only the crop size differs, and it reaches the training views
    assert record["metrics"]["final_loss"] != native["metrics"]["final_loss"]
    from repro.data.batch_augment import BatchAugment

    views = BatchAugment(input_spec("digits", spec["pretrain"]))(
        torch.zeros(2, 3, 16, 16, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert views.shape == (2, 3, 24, 24)
    image = Image.new("RGB", (16, 16))
    assert eval_transform(input_spec("digits", spec["pretrain"]))(image).shape == (3, 24, 24)


def _released_simclr_loss(z1, z2, t, ring=None):
    """SimCLR / SimCLRRing.get_loss of the released code (commit e79c871), dynamic_inner,
    self_negative, no neighbour views; ``ring = (thres_outer, thres_inner)`` or None."""
    pos = (z1 * z2).sum(1) / t
    all_dps = z1 @ torch.cat([z1, z2]).T / t
    if ring is None:
        return -(pos - torch.logsumexp(all_dps, dim=1)).mean()
    sorted_dps, _ = torch.sort(all_dps, dim=1, descending=True)
    outer = sorted_dps[:, :int(ring[0] * all_dps.shape[1])]
    ring_dps = outer[:, int(ring[1] * outer.shape[1]):]
    ring_dps = torch.cat([pos.unsqueeze(1), ring_dps], dim=1)
    return -(pos - torch.logsumexp(ring_dps, dim=1)).mean()


@pytest.mark.parametrize("sampler", ["uniform", "ring"])
def test_released_simclr_loss_is_the_released_criterion(sampler):
    from repro.estimators import info_nce_loss
    from repro.models.simclr import released_similarities
    from repro.samplers import UniformSampler

    gen = torch.Generator().manual_seed(0)
    b, t = 40, 0.07  # 2B = 80: the released ring [0.5 of 80, minus its top 0.1] is ranks 4..39
    z = torch.nn.functional.normalize(torch.randn(2 * b, 16, generator=gen, dtype=torch.float64),
                                      dim=1)
    if sampler == "uniform":
        chosen = UniformSampler()
        expected = _released_simclr_loss(z[:b], z[b:], t)
    else:  # simclr_ring.json: thres_outer 0.5, thres_inner 0.1 -> the ring [0.5, 0.95]
        chosen = RingSampler(w_l=0.5, w_u=0.95, schedule="constant")
        expected = _released_simclr_loss(z[:b], z[b:], t, ring=(0.5, 0.1))
    pos, pool = released_similarities(z, z, keep_positive=chosen.needs_similarities)
    idx = chosen.select(pool, batch_size=b, pool_size=pool.shape[1])
    ours = info_nce_loss(pos, pool.gather(1, idx), t)
    assert float(ours) == pytest.approx(float(expected), rel=1e-9)


def test_released_simclr_trains_on_view_1_anchors_and_is_refused_for_other_models():
    gen = torch.Generator().manual_seed(0)
    batch = {"views": (torch.randn(4, 3, 16, 16, generator=gen),
                       torch.randn(4, 3, 16, 16, generator=gen)), "index": torch.arange(4)}
    losses = {}
    for variant in ("nt_xent", "released"):
        torch.manual_seed(0)  # the same weights for both
        model = build_model("simclr", sampler_config={"name": "uniform"}, dataset_size=8,
                            backbone=TINY, embedding_dim=16, loss=variant)
        losses[variant] = float(model(batch)["loss"].detach())
    # the same embeddings, another criterion: released normalises over all 2B rows
    assert losses["released"] != pytest.approx(losses["nt_xent"])
    config = copy.deepcopy(load_config(ROOT / "config" / "default.yaml"))
    config["models"]["simclr"] = {"loss": "released"}
    validate_config(copy.deepcopy(config))
    config["models"]["moco"]["loss"] = "released"
    with pytest.raises(ValueError, match=r"models\.moco: options \['loss'\] do not apply"):
        validate_config(config)
