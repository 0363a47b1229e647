"""Properties of the core that hold by construction, checked against values derived here.

Each base model's positive and loss on planted inputs (the loss recomputed from the model's own
embeddings with the same draws), state updates at momenta where ``m`` and ``1 - m`` differ,
queue contents after wrap-around, the episode sampler's whole range, the Gaussian toy's optimal
critic, and checkpoint conversion at widths other than 1. Small tensors, fixed seeds.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import multivariate_normal

from repro.models import build_model
from repro.models.backbones import build_backbone
from repro.toy import gaussian_pairs, optimal_critic, true_mi
from transfer.detection.convert import (
    convert_state_dict,
    detectron2_settings,
    detectron2_to_torchvision_name,
    infer_backbone,
)
from transfer.fewshot.episodes import EpisodeConfig, sample_episode

TINY = {"arch": "resnet18", "cifar_stem": True, "width": 0.0625}
N, B, K, TAU = 32, 8, 12, 0.2


def _model(name, **options):
    torch.manual_seed(0)
    kwargs = dict(sampler_config={"name": "uniform"}, dataset_size=N, backbone=TINY,
                  embedding_dim=8, temperature=TAU, num_negatives=K, queue_size=20,
                  key_momentum=0.9)
    kwargs.update(options)
    return build_model(name, **kwargs)


def _batch(seed=1, start=0, same_views=False):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(B, 3, 16, 16, generator=g)
    x2 = x1.clone() if same_views else torch.randn(B, 3, 16, 16, generator=g)
    return {"index": torch.arange(start, start + B), "views": (x1, x2),
            "label": torch.zeros(B, dtype=torch.long)}


def _infonce(pos, neg, tau=TAU):
    """Mean of -log(e^{pos/t} / (e^{pos/t} + sum_j e^{neg_j/t})), written out."""
    num = torch.exp(pos / tau)
    return (-torch.log(num / (num + torch.exp(neg / tau).sum(1)))).mean()


def _uniform_draws(seed, pool_size, count):
    """The (B, K) pool indices the uniform sampler draws, ``count`` contrasts in a row."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, pool_size, (B, K), generator=g) for _ in range(count)]


# --- each base model's positive ------------------------------------------------------------


def test_ir_loss_pairs_each_anchor_with_its_own_bank_entry_against_drawn_bank_entries():
    model = _model("ir")
    batch = _batch(start=5)
    with torch.no_grad():
        q = model.embed(batch["views"][0])
    bank = model.bank.all().clone()
    out = model(batch, generator=torch.Generator().manual_seed(4))
    (idx,) = _uniform_draws(4, N, 1)
    pos = (q * bank[5:5 + B]).sum(1)
    expected = _infonce(pos, torch.einsum("bd,bkd->bk", q, bank[idx]))
    torch.testing.assert_close(out["loss"], expected)
    assert out["pos_sim"] == pytest.approx(float(pos.mean()), abs=1e-6)


def test_cmc_positives_come_from_the_other_views_bank_in_both_directions():
    """Planted banks: the ab bank holds the batch's L embeddings and the L bank its ab
    embeddings, so both contrasts see a positive similarity of exactly 1; an anchor paired with
    its own view's bank would see z_l . z_ab instead. Each loss is then recomputed with
    negatives drawn from the other view's bank (L first, then ab, from one generator)."""
    model = _model("cmc")
    batch = _batch()
    idx = batch["index"]
    with torch.no_grad():
        l, ab = model.lab_views(batch["views"][0])
        z_l = F.normalize(model.head_l(model.encoder_l(l)), dim=1)
        z_ab = F.normalize(model.head_ab(model.encoder_ab(ab)), dim=1)
        model.bank_ab.memory[idx] = z_l
        model.bank_l.memory[idx] = z_ab
    assert (z_l * z_ab).sum(1).max() < 0.99  # the two views' embeddings differ
    bank_l, bank_ab = model.bank_l.all().clone(), model.bank_ab.all().clone()
    out = model(batch, generator=torch.Generator().manual_seed(7))
    assert out["pos_sim"] == pytest.approx(1.0, abs=1e-5)
    draw_l, draw_ab = _uniform_draws(7, N, 2)
    ones = torch.ones(B)
    expected_l = _infonce(ones, torch.einsum("bd,bkd->bk", z_l, bank_ab[draw_l]))
    expected_ab = _infonce(ones, torch.einsum("bd,bkd->bk", z_ab, bank_l[draw_ab]))
    assert out["loss_l"] == pytest.approx(float(expected_l), abs=1e-4)
    assert out["loss_ab"] == pytest.approx(float(expected_ab), abs=1e-4)
    torch.testing.assert_close(out["loss"], expected_l + expected_ab, atol=1e-4, rtol=0)


def test_moco_positive_is_the_key_of_the_other_view_and_the_negatives_the_whole_queue():
    model = _model("moco")
    batch = _batch()
    with torch.no_grad():
        q = model.embed(batch["views"][0])
        k = model.embed_keys(batch["views"][1])
    queue = model.queue.all().clone()
    out = model(batch, generator=torch.Generator().manual_seed(0))
    expected = _infonce((q * k).sum(1), q @ queue.t())
    torch.testing.assert_close(out["loss"], expected)
    assert out["num_negatives"] == 20.0
    # equal views through equal encoders (the key encoder starts as a copy): positive 1
    same = model(_batch(same_views=True), generator=torch.Generator().manual_seed(0))
    assert same["pos_sim"] == pytest.approx(1.0, abs=1e-5)
    assert out["pos_sim"] < 0.99


def test_simclr_positive_is_the_other_view_of_the_same_item_and_the_pool_the_rest_of_the_batch():
    model = _model("simclr")
    batch = _batch()
    with torch.no_grad():
        z = model.embed(torch.cat(batch["views"]))
    out = model(batch, generator=torch.Generator().manual_seed(0))
    sims = z @ z.t()
    partner = (torch.arange(2 * B) + B) % (2 * B)
    pos = sims[torch.arange(2 * B), partner]
    neg = torch.stack([sims[i, [j for j in range(2 * B) if j not in (i, int(partner[i]))]]
                       for i in range(2 * B)])
    torch.testing.assert_close(out["loss"], _infonce(pos, neg))
    same = model(_batch(same_views=True), generator=torch.Generator().manual_seed(0))
    assert same["pos_sim"] == pytest.approx(1.0, abs=1e-5)


# --- momentum updates at momenta where m and 1 - m differ ----------------------------------


@pytest.mark.parametrize("name,banks", [("ir", ("bank",)), ("cmc", ("bank_l", "bank_ab"))])
def test_bank_updates_follow_the_momentum_formula_at_an_asymmetric_momentum(name, banks):
    model = _model(name, bank_momentum=0.8)
    batch = _batch(start=3)
    before = {b: getattr(model, b).all().clone() for b in banks}
    model(batch, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if name == "ir":
            new = {"bank": model.embed(batch["views"][0])}
        else:
            l, ab = model.lab_views(batch["views"][0])
            new = {"bank_l": F.normalize(model.head_l(model.encoder_l(l)), dim=1),
                   "bank_ab": F.normalize(model.head_ab(model.encoder_ab(ab)), dim=1)}
    model.update_state()
    rows = batch["index"]
    for b in banks:
        expected = before[b].clone()
        mixed = 0.8 * before[b][rows] + 0.2 * new[b]
        expected[rows] = mixed / mixed.norm(dim=1, keepdim=True)
        torch.testing.assert_close(getattr(model, b).all(), expected)


def test_moco_key_encoder_and_key_head_follow_the_momentum_formula_at_m_0_9():
    model = _model("moco", key_momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    key = [p.clone() for p in list(model.key_encoder.parameters())
           + list(model.key_head.parameters())]
    model(_batch(), generator=torch.Generator().manual_seed(0))["loss"].backward()
    opt.step()  # the query encoder and head move away from the keys
    model.update_state()
    query = list(model.encoder.parameters()) + list(model.head.parameters())
    now = list(model.key_encoder.parameters()) + list(model.key_head.parameters())
    assert len(now) == len(query) == len(key)
    moved = 0
    for before, after, q in zip(key, now, query):
        torch.testing.assert_close(after, 0.9 * before + 0.1 * q)
        moved += not torch.equal(after, before)
    assert moved == len(now)  # every tensor moved, the head's included


# --- the queue after wrap-around -------------------------------------------------------------


def test_moco_queue_holds_the_newest_keys_in_their_slots_after_wrapping_around():
    model = _model("moco", queue_size=20)  # batches of 8 do not divide 20
    start = model.queue.all().clone()
    keys = []
    for step in range(3):
        batch = _batch(seed=step)
        with torch.no_grad():  # no optimiser step: the key encoder stays where it is
            keys.append(model.embed_keys(batch["views"][1]))
        model(batch, generator=torch.Generator().manual_seed(step))
        model.update_state()
    # slots 0-7 step 0, 8-15 step 1, 16-19 then 0-3 step 2: the first half of step 0's
    # keys are overwritten, its second half stays in slots 4-7
    expected = torch.cat([keys[2][4:], keys[0][4:], keys[1], keys[2][:4]])
    torch.testing.assert_close(model.queue.all(), expected)
    assert int(model.queue.ptr) == 4
    assert not torch.allclose(start, expected)


# --- few-shot episodes reach their whole range -----------------------------------------------


def test_episode_way_reaches_every_value_from_min_way_to_the_number_of_classes():
    labels = np.repeat(np.arange(7), 6)  # 7 classes of 6
    rng = np.random.default_rng(0)
    config = EpisodeConfig(min_way=2, max_way=50)
    ways = {sample_episode(labels, rng, config).way for _ in range(300)}
    assert ways == set(range(2, 8))
    capped = {sample_episode(labels, rng, EpisodeConfig(min_way=3, max_way=5)).way
              for _ in range(300)}
    assert capped == {3, 4, 5}


def test_episode_shots_reach_every_value_from_one_to_what_the_queries_leave():
    # 4 classes of 8: q = min(10, 8 // 2) = 4 queries each, so 1 to 4 shots per class
    labels = np.repeat(np.arange(4), 8)
    rng = np.random.default_rng(1)
    shots, queries = set(), set()
    for _ in range(400):
        ep = sample_episode(labels, rng, EpisodeConfig(min_way=4, max_way=4))
        shots |= set(np.bincount(ep.support_labels, minlength=4).tolist())
        queries |= set(np.bincount(ep.query_labels, minlength=4).tolist())
        assert set(ep.support).isdisjoint(ep.query)
    assert shots == {1, 2, 3, 4}
    assert queries == {4}


# --- the Gaussian toy's critic is the optimal one --------------------------------------------


def test_gaussian_critic_is_the_log_density_ratio_of_the_toy():
    dim, rho = 3, 0.7
    x, y = gaussian_pairs(5, dim, rho, seed=2)
    scores = optimal_critic(x, y, rho)
    cond_cov = (1 - rho**2) * np.eye(dim)
    for i in range(5):
        for j in range(5):
            expected = (multivariate_normal(rho * x[i].numpy(), cond_cov).logpdf(y[j].numpy())
                        - multivariate_normal(np.zeros(dim), np.eye(dim)).logpdf(y[j].numpy()))
            assert float(scores[i, j]) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("dim,rho", [(2, 0.8), (4, 0.5)])
def test_gaussian_critic_mean_on_positive_pairs_tends_to_the_true_mi(dim, rho):
    # E_{p(x, y)} log p(y | x) / p(y) = I(X; Y); the diagonal of the critic is that average
    x, y = gaussian_pairs(4000, dim, rho, seed=3)
    var = 1 - rho**2
    diag = (-((y - rho * x) ** 2).sum(1) / (2 * var) + (y**2).sum(1) / 2
            - 0.5 * dim * math.log(var))
    torch.testing.assert_close(optimal_critic(x[:50], y[:50], rho).diagonal(), diag[:50])
    stderr = float(diag.std()) / math.sqrt(len(diag))
    assert abs(float(diag.mean()) - true_mi(dim, rho)) < 4 * stderr
    assert true_mi(dim, rho) == pytest.approx(-0.5 * dim * math.log(var))


# --- checkpoint conversion at widths other than 1 --------------------------------------------


@pytest.mark.parametrize("arch,width,cifar_stem", [("resnet18", 0.25, True),
                                                   ("resnet50", 0.125, False),
                                                   ("resnet18", 0.5, False)])
def test_conversion_round_trips_the_weights_and_settings_at_other_widths(arch, width, cifar_stem):
    torch.manual_seed(0)
    encoder = build_backbone(arch, cifar_stem=cifar_stem, width=width).eval()
    state = encoder.state_dict()
    converted = convert_state_dict(state)
    back = {detectron2_to_torchvision_name(k): torch.from_numpy(v) for k, v in converted.items()}
    kept = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(back) == kept
    described = infer_backbone(state)
    assert described == {"arch": arch, "cifar_stem": cifar_stem, "width": width,
                         "in_channels": 3}
    rebuilt = build_backbone(**described).eval()
    rebuilt.load_state_dict(back, strict=False)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), encoder(x), rtol=0, atol=0)
    base = int(64 * width)
    resnets = detectron2_settings(described, "w.pkl")["MODEL"]["RESNETS"]
    assert resnets["STEM_OUT_CHANNELS"] == converted["stem.conv1.weight"].shape[0] == base
    last = "conv3" if arch == "resnet50" else "conv2"
    assert resnets["RES2_OUT_CHANNELS"] == converted[f"res2.0.{last}.weight"].shape[0]
    assert resnets["WIDTH_PER_GROUP"] == converted["res2.0.conv1.weight"].shape[0] == base


# --- the builder hands every option to the model it builds -----------------------------------


def test_the_builder_passes_every_option_to_the_model():
    common = dict(sampler_config={"name": "uniform"}, dataset_size=24, backbone=TINY,
                  embedding_dim=6, temperature=0.3, num_negatives=5, queue_size=17,
                  bank_momentum=0.35, key_momentum=0.85, head="mlp", loss="released",
                  mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    ir, cmc, moco, simclr = (build_model(n, **common) for n in ("ir", "cmc", "moco", "simclr"))
    for model in (ir, cmc, moco, simclr):
        assert model.temperature == 0.3
        assert model.backbone_config == {**TINY, "in_channels": 1 if model is cmc else 3}
    assert ir.bank.memory.shape == (24, 6) and ir.bank.momentum == 0.35
    assert ir.sampler.num_negatives == 5 and isinstance(ir.head, torch.nn.Sequential)
    for bank in (cmc.bank_l, cmc.bank_ab):
        assert bank.memory.shape == (24, 6) and bank.momentum == 0.35
    assert isinstance(cmc.head_l, torch.nn.Sequential) and isinstance(cmc.head_ab, torch.nn.Sequential)
    assert cmc.rgb_mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert cmc.rgb_std.flatten().tolist() == pytest.approx([0.4, 0.5, 0.6])
    assert cmc.encoder_ab.conv1.in_channels == 2 and cmc.encoder_l.conv1.in_channels == 1
    assert moco.queue.keys.shape == (17, 6) and moco.key_momentum == 0.85
    assert moco.sampler.num_negatives is None
    assert simclr.loss_variant == "released" and simclr.head[-1].out_features == 6
    assert moco.head[-1].out_features == 6
    assert build_model("ir", **{**common, "head": "linear"}).head.out_features == 6


def test_builder_refusals_name_the_problem_exactly():
    common = dict(dataset_size=4, backbone=TINY)
    with pytest.raises(ValueError, match=r"^unknown base model 'byol'; choose one of "
                                         r"\['cmc', 'ir', 'moco', 'simclr'\]$"):
        build_model("byol", sampler_config={"name": "uniform"}, **common)
    with pytest.raises(ValueError, match=r"^sampler_config must not set num_negatives"):
        build_model("ir", sampler_config={"name": "uniform", "num_negatives": 3}, **common)
    with pytest.raises(ValueError, match=r"^dataset_size must be positive, got 0$"):
        build_model("ir", sampler_config={"name": "uniform"}, dataset_size=0, backbone=TINY)
    with pytest.raises(ValueError, match=r"^estimator 'hard' \(HCL\) debiases / reweights "
                                         r"negatives drawn from the data distribution; sampler "
                                         r"'ring' chooses them by similarity"):
        build_model("moco", sampler_config={"name": "ring", "w_l": 0.5, "estimator": {
            "name": "hard", "tau_plus": 0.1, "beta": 1.0}}, **common)
    with pytest.raises(ValueError, match=r"^sampler 'mochi' mixes pool embeddings into "
                                         r"synthetic negatives; simclr's negatives are in-batch "
                                         r"similarities without a pool of embeddings: use it "
                                         r"with ir, cmc, moco$"):
        build_model("simclr", sampler_config={"name": "mochi"}, **common)


def test_model_option_problems_name_the_options_a_model_takes():
    from repro.models import model_option_problem

    assert model_option_problem("ir", {"queue_size": 4, "datasets": {}}) == (
        "options ['queue_size'] do not apply to ir (it takes ['num_negatives', "
        "'bank_momentum', 'head'], and datasets)")
    assert model_option_problem("moco", {"queue_size": 4, "key_momentum": 0.9}) is None
    assert model_option_problem("unknown", {"x": 1}) is None


def test_model_constructors_refuse_bad_settings_with_their_message():
    from repro.models.cmc import CMC
    from repro.models.moco import MoCo
    from repro.models.simclr import SimCLR
    from repro.samplers import UniformSampler

    uniform = UniformSampler()
    with pytest.raises(ValueError, match=r"^key_momentum must be in \[0, 1\], got 1.5$"):
        MoCo(uniform, 0.2, backbone=TINY, key_momentum=1.5)
    with pytest.raises(ValueError, match=r"^unknown SimCLR loss 'x'; choose one of "
                                         r"\('nt_xent', 'released'\)$"):
        SimCLR(uniform, 0.2, backbone=TINY, loss="x")
    with pytest.raises(ValueError, match=r"^mean and std must be 3 RGB values \(std > 0\)"):
        CMC(uniform, 0.2, backbone=TINY, dataset_size=4, std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match=r"^temperature must be positive, got -1"):
        SimCLR(uniform, -1.0, backbone=TINY)
    MoCo(uniform, 0.2, backbone=TINY, key_momentum=1.0)  # the ends of [0, 1] are allowed
    MoCo(uniform, 0.2, backbone=TINY, key_momentum=0.0)


# --- the shared pieces of every base model ----------------------------------------------------


def test_released_simclr_pairs_view_one_anchors_with_every_row_self_and_positive_included():
    from repro.models.simclr import released_similarities

    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(6, 4, generator=g), dim=1)  # B = 3
    sims = z @ z.t()
    pos, pool = released_similarities(z, z)
    torch.testing.assert_close(pos, sims[[0, 1, 2], [3, 4, 5]])
    torch.testing.assert_close(pool, sims[:3])
    pos2, pool2 = released_similarities(z, z, keep_positive=False)
    torch.testing.assert_close(pos2, pos)
    for i in range(3):
        torch.testing.assert_close(pool2[i], sims[i, [j for j in range(6) if j != i + 3]])
    # as rows 6..11 of a larger gathered batch
    z_all = torch.cat([F.normalize(torch.randn(6, 4, generator=g), dim=1), z])
    pos3, pool3 = released_similarities(z, z_all, offset=6)
    torch.testing.assert_close(pos3, pos)
    torch.testing.assert_close(pool3, z[:3] @ z_all.t())
    for bad in (torch.zeros(5, 4), torch.zeros(0, 4)):
        with pytest.raises(ValueError, match=r"^z must stack two views of B items, \(2B, D\); "
                                             rf"got {bad.shape[0]} rows$"):
            released_similarities(bad, bad)


def test_in_batch_similarities_under_an_offset_skip_self_and_positive_in_the_global_batch():
    from repro.models.simclr import in_batch_similarities

    g = torch.Generator().manual_seed(1)
    z = F.normalize(torch.randn(4, 3, generator=g), dim=1)  # B = 2, rows 2..5 of z_all
    z_all = torch.cat([F.normalize(torch.randn(2, 3, generator=g), dim=1), z])
    pos, pool = in_batch_similarities(z, z_all, offset=2)
    sims = z @ z_all.t()
    torch.testing.assert_close(pos, sims[[0, 1, 2, 3], [4, 5, 2, 3]])
    for i in range(4):
        keep = [j for j in range(6) if j not in (2 + i, 2 + (i + 2) % 4)]
        torch.testing.assert_close(pool[i], sims[i, keep])
    with pytest.raises(ValueError, match=r"^z must stack two views of B items, \(2B, D\); got 3 "
                                         r"rows$"):
        in_batch_similarities(z[:3], z)


def test_similarity_logs_are_the_mean_positive_and_negative_similarity_and_k():
    from repro.models.base import similarity_logs

    logs = similarity_logs(torch.tensor([0.5, 0.1]), torch.tensor([[0.2, 0.4, 0.0],
                                                                   [0.6, -0.2, 0.2]]))
    assert logs == {"pos_sim": pytest.approx(0.3), "neg_sim": pytest.approx(0.2),
                    "num_negatives": 3.0}


def test_batches_without_views_or_index_are_refused_with_what_a_batch_holds():
    from repro.models.base import negatives_from_pool, two_views
    from repro.models.ir import batch_indices
    from repro.samplers import UniformSampler

    for bad in ({"views": (torch.zeros(1),)}, {}, [torch.zeros(1)]):
        with pytest.raises(ValueError, match=r"^a batch must be a dict with 'views': \(x1, x2\)"):
            two_views(bad)
    views = (torch.zeros(1), torch.ones(1))
    assert two_views({"views": views}) == views
    with pytest.raises(ValueError, match=r"^memory-bank models need batch\['index'\]"):
        batch_indices({}, 4)
    for index in ([-1, 0], [0, 4]):
        with pytest.raises(ValueError, match=r"holds indices outside \[0, 4\)"):
            batch_indices({"index": torch.tensor(index)}, 4)
    assert batch_indices({"index": torch.tensor([0, 3], dtype=torch.int32)}, 4).dtype == \
        torch.long
    assert batch_indices({"index": torch.tensor([], dtype=torch.long)}, 4).numel() == 0
    with pytest.raises(ValueError, match=r"^anchors \(B, D\) and pool \(N, D\) must share D, got "
                                         r"\(2, 3\) and \(5, 4\)$"):
        negatives_from_pool(UniformSampler(2), torch.zeros(2, 3), torch.zeros(5, 4), progress=1.0)


def test_distributed_setup_without_an_initialised_process_group_is_refused():
    model = _model("simclr")
    with pytest.raises(RuntimeError, match=r"^set_process_group needs torch.distributed to be "
                                           r"initialised first"):
        model.set_process_group()
    x = torch.randn(3, 2)
    assert model.gather(x) is x and model.gather_with_grad(x) is x
    assert (model.world_size, model.rank, model.process_group) == (1, 0, None)


def test_released_simclr_loss_is_infonce_over_view_one_anchors_and_every_other_row():
    # uniform: each anchor's normaliser holds its positive once (the 2B - 1 rows but itself
    # dropped of the positive column, self included); ring: the positive stays in the pool
    model = _model("simclr", loss="released")
    batch = _batch()
    with torch.no_grad():
        z = model.embed(torch.cat(batch["views"]))
    sims = z @ z.t()
    rows = torch.arange(B)
    pos = sims[rows, rows + B]
    neg = torch.stack([sims[i, [j for j in range(2 * B) if j != i + B]] for i in range(B)])
    out = model(batch, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["loss"], _infonce(pos, neg))
    assert out["num_negatives"] == 2 * B - 1
    whole_ring = _model("simclr", loss="released", sampler_config={"name": "ring", "w_l": 0.0,
                                                                   "w_u": 1.0})
    ring_out = whole_ring(batch, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ring_out["loss"], _infonce(pos, sims[:B]))
    assert ring_out["num_negatives"] == 2 * B


def test_simclr_pools_shrink_as_the_ring_anneals():
    model = _model("simclr", sampler_config={"name": "ring", "w_l": 0.5, "w_u": 1.0,
                                             "anneal_fraction": 1.0})
    batch = _batch()
    assert model(batch, progress=0.0)["num_negatives"] == 2 * B - 2
    assert model(batch, progress=1.0)["num_negatives"] == (2 * B - 2) // 2


@pytest.mark.parametrize("rows", [2, 4, 6])
def test_simclr_similarities_take_any_even_number_of_rows(rows):
    from repro.models.simclr import in_batch_similarities, released_similarities

    z = F.normalize(torch.randn(rows, 3, generator=torch.Generator().manual_seed(rows)), dim=1)
    pos, pool = released_similarities(z, z)
    assert pos.shape == (rows // 2,) and pool.shape == (rows // 2, rows)
    pos, pool = in_batch_similarities(z, z)
    assert pos.shape == (rows,) and pool.shape == (rows, rows - 2)


def test_ring_loss_default_temperature_is_the_papers_0_07():
    from repro.estimators import info_nce_loss, ring_nce_loss

    pos, sims = torch.tensor([0.3, 0.1]), torch.tensor([[0.2, -0.1, 0.4], [0.0, 0.5, 0.1]])
    torch.testing.assert_close(ring_nce_loss(pos, sims, 0.0, 1.0),
                               info_nce_loss(pos, sims, 0.07))


def test_a_process_group_of_one_sets_world_size_rank_and_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0,
                            world_size=1)
    try:
        group = dist.new_group([0])
        model = _model("moco")
        model.set_process_group(group)
        assert (model.process_group, model.world_size, model.rank) == (group, 1, 0)
        x = torch.randn(3, 2)
        torch.testing.assert_close(model.gather(x), x)
    finally:
        dist.destroy_process_group()


def test_moco_defaults_and_heads_are_as_documented():
    from repro.models.heads import build_head, mlp_head
    from repro.models.moco import MoCo
    from repro.samplers import UniformSampler

    moco = MoCo(UniformSampler(), 0.2, backbone=TINY)
    assert (moco.queue.keys.shape, moco.key_momentum) == ((4096, 128), 0.999)
    assert not any(p.requires_grad for p in moco.key_encoder.parameters())
    assert all(p.requires_grad for p in moco.encoder.parameters())
    head = mlp_head(4, 2, hidden_dim=7)
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (4, 7, 2)
    assert mlp_head(4, 2)[0].out_features == 4
    with pytest.raises(ValueError, match=r"^unknown head 'deep'; choose one of "
                                         r"\('linear', 'mlp'\)$"):
        build_head("deep", 4, 2)


def test_ir_cmc_and_simclr_defaults_are_as_documented():
    from repro.models.cmc import CMC, IMAGENET_MEAN, IMAGENET_STD
    from repro.models.ir import InstanceDiscrimination
    from repro.models.simclr import SimCLR
    from repro.samplers import UniformSampler

    ir = InstanceDiscrimination(UniformSampler(), 0.07, backbone=TINY, dataset_size=10)
    assert ir.bank.memory.shape == (10, 128) and ir.bank.momentum == 0.5
    assert isinstance(ir.head, torch.nn.Linear) and ir.head.out_features == 128
    cmc = CMC(UniformSampler(), 0.07, backbone=TINY, dataset_size=6)
    for bank in (cmc.bank_l, cmc.bank_ab):
        assert bank.memory.shape == (6, 128) and bank.momentum == 0.5
    for head in (cmc.head_l, cmc.head_ab):
        assert isinstance(head, torch.nn.Linear) and head.out_features == 128
    assert cmc.rgb_mean.flatten().tolist() == pytest.approx(list(IMAGENET_MEAN))
    assert cmc.rgb_std.flatten().tolist() == pytest.approx(list(IMAGENET_STD))
    assert list(IMAGENET_MEAN) == [0.485, 0.456, 0.406]
    assert list(IMAGENET_STD) == [0.229, 0.224, 0.225]
    simclr = SimCLR(UniformSampler(), 0.5, backbone=TINY)
    assert simclr.loss_variant == "nt_xent"
    assert simclr.head[-1].out_features == 128
    assert simclr.backbone_config == {**TINY, "in_channels": 3}


@pytest.mark.parametrize("grey,expected_l", [
    (0.02, 903.2963 * 0.02 / 12.92),  # the linear sRGB segment, then L = kappa * Y
    (0.04, 903.2963 * 0.04 / 12.92),
    (0.5, 116 * ((0.555 / 1.055) ** 2.4) ** (1 / 3) - 16),  # the power segment, L = 116 f - 16
    (0.8, 116 * ((0.855 / 1.055) ** 2.4) ** (1 / 3) - 16),
])
def test_rgb_to_lab_of_greys_follows_the_srgb_curve_to_lightness_with_no_colour(grey,
                                                                                 expected_l):
    from repro.models.cmc import rgb_to_lab

    lab = rgb_to_lab(torch.full((1, 3, 1, 1), grey, dtype=torch.float64)).flatten()
    assert float(lab[0]) == pytest.approx(expected_l, abs=1e-3)
    assert float(lab[1].abs()) < 1e-3 and float(lab[2].abs()) < 1e-3


def test_batch_indices_accept_every_index_in_the_bank_and_refuse_the_rest_by_message():
    from repro.models.ir import batch_indices

    for index in ([3, 3], [0], [9], [0, 9, 4], []):
        out = batch_indices({"index": torch.tensor(index, dtype=torch.int32)}, 10)
        assert out.dtype == torch.long and out.tolist() == index
    for index in ([10], [-1, 2], [0, 12]):
        with pytest.raises(ValueError) as caught:
            batch_indices({"index": torch.tensor(index)}, 10)
        assert str(caught.value) == ("batch['index'] holds indices outside [0, 10): build the "
                                     "model with dataset_size = len(dataset)")
    with pytest.raises(ValueError) as caught:
        batch_indices({"views": ()}, 10)
    assert str(caught.value) == ("memory-bank models need batch['index'], the (B,) dataset "
                                 "indices")


def test_cmc_refuses_a_normalisation_that_is_not_three_positive_rgb_values():
    from repro.models.cmc import CMC
    from repro.samplers import UniformSampler

    for mean, std in (((0.5, 0.5), (0.2, 0.2, 0.2)), ((0.5, 0.5, 0.5), (0.2, 0.2)),
                      ((0.5,) * 4, (0.2,) * 3), ((0.5,) * 3, (0.2, -0.1, 0.2))):
        with pytest.raises(ValueError) as caught:
            CMC(UniformSampler(), 0.07, backbone=TINY, dataset_size=4, mean=mean, std=std)
        assert str(caught.value) == (f"mean and std must be 3 RGB values (std > 0), got {mean}, "
                                     f"{std}")


def test_cmc_normalisation_constants_are_not_saved_in_checkpoints():
    """They come from the config (the data pipeline's mean / std), so a checkpoint stays
    loadable by a CMC built with other constants, and holds only learned state and banks."""
    cmc = _model("cmc")
    keys = set(cmc.state_dict())
    assert "rgb_mean" not in keys and "rgb_std" not in keys
    assert {"bank_l.memory", "bank_ab.memory"} <= keys


@pytest.mark.parametrize("anchors,pool", [((4, 8, 1), (10, 8)), ((4, 8), (10, 8, 1)),
                                          ((4, 8), (10, 6))])
def test_negatives_from_pool_refuses_anything_but_two_matrices_sharing_d(anchors, pool):
    from repro.models.base import negatives_from_pool
    from repro.samplers import UniformSampler

    with pytest.raises(ValueError) as caught:
        negatives_from_pool(UniformSampler(), torch.zeros(anchors), torch.zeros(pool),
                            progress=1.0)
    assert str(caught.value) == (f"anchors (B, D) and pool (N, D) must share D, got {anchors} "
                                 f"and {pool}")


def test_build_model_defaults_are_the_papers_k_queue_dim_and_temperature():
    ir = build_model("ir", sampler_config={"name": "uniform"}, dataset_size=10, backbone=TINY)
    assert ir.temperature == 0.07 and ir.sampler.num_negatives == 4096
    assert ir.bank.memory.shape == (10, 128)
    moco = build_model("moco", sampler_config={"name": "uniform"}, dataset_size=10,
                       backbone=TINY)
    assert moco.queue.keys.shape == (4096, 128) and moco.key_momentum == 0.999


def test_info_nce_default_temperature_is_0_07():
    from repro.estimators import info_nce_loss

    g = torch.Generator().manual_seed(0)
    pos, neg = torch.rand(4, generator=g), torch.rand(4, 6, generator=g)
    torch.testing.assert_close(info_nce_loss(pos, neg), info_nce_loss(pos, neg, 0.07))
    assert not torch.allclose(info_nce_loss(pos, neg), info_nce_loss(pos, neg, 1.0))


@pytest.mark.parametrize("batch", [{"index": torch.zeros(2)}, {"views": (torch.zeros(1),)},
                                   (torch.zeros(1), torch.zeros(1))])
def test_a_batch_without_two_views_is_refused_with_what_a_batch_holds(batch):
    from repro.models.base import two_views

    with pytest.raises(ValueError) as caught:
        two_views(batch)
    assert str(caught.value) == ("a batch must be a dict with 'views': (x1, x2), two (B, 3, H, "
                                 "W) tensors (repro.data.TwoViewDataset makes them), plus "
                                 "'index' (B,)")


def test_build_model_refuses_a_sampler_k_and_an_empty_dataset_but_takes_one_item():
    with pytest.raises(ValueError) as caught:
        build_model("ir", sampler_config={"name": "uniform", "num_negatives": 8},
                    dataset_size=10, backbone=TINY)
    assert str(caught.value) == (
        "sampler_config must not set num_negatives: the base model sets it (give "
        "num_negatives in the model's options: K for ir / cmc; moco and simclr use the whole "
        "pool)")
    with pytest.raises(ValueError) as caught:
        build_model("ir", sampler_config={"name": "uniform"}, dataset_size=0, backbone=TINY)
    assert str(caught.value) == "dataset_size must be positive, got 0"
    one = build_model("ir", sampler_config={"name": "uniform"}, dataset_size=1, backbone=TINY,
                      num_negatives=1)
    assert one.bank.memory.shape[0] == 1


def test_estimator_option_errors_name_only_what_is_wrong():
    from repro.estimators import build_estimator

    with pytest.raises(ValueError) as caught:
        build_estimator({"name": "hard", "tau_plus": 0.1})
    assert str(caught.value) == ("estimator 'hard' takes exactly the options ['tau_plus', "
                                 "'beta']; missing ['beta']")
    with pytest.raises(ValueError) as caught:
        build_estimator({"name": "debiased", "tau_plus": 0.1, "beta": 1.0})
    assert str(caught.value) == ("estimator 'debiased' takes exactly the options ['tau_plus']"
                                 "; unknown ['beta']")
    with pytest.raises(ValueError) as caught:
        build_estimator({"name": "hard", "tau_plus": 0.1, "gamma": 2})
    assert str(caught.value) == ("estimator 'hard' takes exactly the options ['tau_plus', "
                                 "'beta']; missing ['beta']; unknown ['gamma']")


def test_a_model_built_without_an_estimator_uses_info_nce():
    from repro.estimators import info_nce_loss
    from repro.models.ir import InstanceDiscrimination
    from repro.samplers import UniformSampler

    model = InstanceDiscrimination(UniformSampler(), 0.07, backbone=TINY, dataset_size=4)
    assert model.estimator is info_nce_loss
