"""Base models x samplers: losses, gradients, state updates, Ring(0, 1) == uniform, round trip."""

import io

import pytest
import torch
import torch.nn.functional as F
import torchvision

from repro.estimators import info_nce_loss
from repro.models import MODELS, build_model, model_names
from repro.models.base import negatives_from_pool
from repro.models.cmc import IMAGENET_MEAN, IMAGENET_STD, normalize_lab, rgb_to_lab
from repro.models.moco import momentum_update_, shuffle_slice, unshuffle
from repro.models.simclr import in_batch_similarities
from repro.samplers import RingSampler, UniformSampler

TINY = {"arch": "resnet18", "cifar_stem": True, "width": 0.0625}
SAMPLERS = {"uniform": {"name": "uniform"},
            "ring": {"name": "ring", "w_l": 0.5, "w_u": 0.95, "anneal_fraction": 0.5}}
WHOLE_RING = {"name": "ring", "w_l": 0.0, "w_u": 1.0}
DATASET_SIZE, BATCH = 32, 8


def _model(name, sampler=SAMPLERS["uniform"], seed=0, **options):
    torch.manual_seed(seed)
    kwargs = dict(sampler_config=sampler, dataset_size=DATASET_SIZE, backbone=TINY,
                  embedding_dim=8, temperature=0.2, num_negatives=12, queue_size=20,
                  key_momentum=0.9)
    kwargs.update(options)
    return build_model(name, **kwargs)


def _batch(seed=1, start=0):
    g = torch.Generator().manual_seed(seed)
    views = tuple(torch.randn(BATCH, 3, 16, 16, generator=g) for _ in range(2))
    return {"index": torch.arange(start, start + BATCH), "views": views,
            "label": torch.zeros(BATCH, dtype=torch.long)}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("name", model_names())
def test_every_model_and_sampler_gives_a_finite_loss_with_gradients_in_the_encoder(name, sampler):
    model = _model(name, SAMPLERS[sampler])
    out = model(_batch(), progress=1.0, generator=_gen())
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    # similarity logs stay on the step's device, detached (reading them would sync a GPU)
    for key in ("pos_sim", "neg_sim"):
        assert out[key].dim() == 0 and not out[key].requires_grad
        assert -1.0 - 1e-5 <= float(out[key]) <= 1.0 + 1e-5
    assert isinstance(out["num_negatives"], float) and out["num_negatives"] >= 1
    out["loss"].backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.encoder.conv1.weight.grad.abs().sum() > 0


def test_model_names_and_unknown_model_lists_the_choices():
    assert model_names() == ["cmc", "ir", "moco", "simclr"] == sorted(MODELS)
    with pytest.raises(ValueError, match=r"choose one of \['cmc', 'ir', 'moco', 'simclr'\]"):
        _model("byol")


def test_builder_gives_k_negatives_to_bank_models_and_the_whole_pool_to_others():
    assert _model("ir").sampler == UniformSampler(num_negatives=12)
    assert _model("cmc", SAMPLERS["ring"]).sampler.num_negatives == 12
    assert _model("moco").sampler == UniformSampler(num_negatives=None)
    assert isinstance(_model("simclr", SAMPLERS["ring"]).sampler, RingSampler)
    assert _model("simclr", SAMPLERS["ring"]).sampler.num_negatives is None
    with pytest.raises(ValueError, match="model's options"):
        _model("ir", {"name": "uniform", "num_negatives": 3})


def test_forward_changes_no_state_until_update_state():
    model = _model("ir")
    bank = model.bank.all().clone()
    model(_batch(), generator=_gen())
    assert torch.equal(model.bank.all(), bank)
    model.update_state()
    assert not torch.equal(model.bank.all(), bank)


def test_forward_in_eval_mode_stashes_no_update():
    model = _model("moco").eval()
    keys = model.queue.all().clone()
    with torch.no_grad():
        model(_batch(), generator=_gen())
    model.update_state()
    assert torch.equal(model.queue.all(), keys) and int(model.queue.ptr) == 0


def test_ir_update_state_moves_the_batch_bank_entries_by_the_momentum_formula():
    model = _model("ir", bank_momentum=0.7)  # m and 1 - m differ: a swapped formula fails
    batch = _batch(start=10)
    before = model.bank.all().clone()
    model(batch, generator=_gen())
    model.update_state()
    with torch.no_grad():
        q = model.embed(batch["views"][0])  # BN in train mode: batch statistics, same q
    idx = batch["index"]
    torch.testing.assert_close(model.bank.get(idx), F.normalize(0.7 * before[idx] + 0.3 * q))
    rest = torch.ones(DATASET_SIZE, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(model.bank.all()[rest], before[rest])


def test_ir_positive_is_the_anchor_own_bank_entry():
    model = _model("ir")
    batch = _batch()
    with torch.no_grad():
        model.bank.memory[batch["index"]] = model.embed(batch["views"][0])
    out = model(batch, generator=_gen())
    assert float(out["pos_sim"]) == pytest.approx(1.0, abs=1e-5)


def test_cmc_update_state_moves_each_bank_towards_its_own_view():
    model = _model("cmc", bank_momentum=0.25)
    batch = _batch()
    before_l, before_ab = model.bank_l.all().clone(), model.bank_ab.all().clone()
    model(batch, generator=_gen())
    model.update_state()
    with torch.no_grad():
        l, ab = model.lab_views(batch["views"][0])
        z_l = F.normalize(model.head_l(model.encoder_l(l)))
        z_ab = F.normalize(model.head_ab(model.encoder_ab(ab)))
    idx = batch["index"]
    torch.testing.assert_close(model.bank_l.get(idx),
                               F.normalize(0.25 * before_l[idx] + 0.75 * z_l))
    torch.testing.assert_close(model.bank_ab.get(idx),
                               F.normalize(0.25 * before_ab[idx] + 0.75 * z_ab))


def test_moco_update_state_applies_the_key_ema_and_enqueues_the_keys():
    model = _model("moco", key_momentum=0.9)
    assert all(torch.equal(k, q) for k, q in
               zip(model.key_encoder.parameters(), model.encoder.parameters()))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = _batch()
    key_before = [p.clone() for p in model.key_encoder.parameters()]
    out = model(batch, generator=_gen())
    with torch.no_grad():
        k = model.embed_keys(batch["views"][1])
    out["loss"].backward()
    opt.step()
    model.update_state()
    for kb, ka, q in zip(key_before, model.key_encoder.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(ka, 0.9 * kb + 0.1 * q)
    assert not all(torch.equal(a, b) for a, b in zip(key_before, model.key_encoder.parameters()))
    torch.testing.assert_close(model.queue.all()[:BATCH], k)
    assert int(model.queue.ptr) == BATCH
    assert all(p.grad is None for p in model.key_encoder.parameters())
    assert all(not p.requires_grad for p in model.key_head.parameters())


def test_moco_queue_wraps_around_over_steps():
    model = _model("moco", queue_size=20)  # 8 does not divide 20
    keys = []
    for step in range(3):
        with torch.no_grad():  # no optimiser step: the key encoder does not move
            keys.append(model.embed_keys(_batch(seed=step)["views"][1]))
        model(_batch(seed=step), generator=_gen())
        model.update_state()
    assert int(model.queue.ptr) == 24 % 20
    # the 24 keys in order, the oldest 4 gone: slots 4..19 then 0..3
    newest = torch.cat(keys)[4:]
    torch.testing.assert_close(model.queue.all(), torch.cat([newest[-4:], newest[:-4]]))


def test_momentum_update_formula():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    wa, wb = a.weight.clone(), b.weight.clone()
    momentum_update_(a, b, 0.75)
    torch.testing.assert_close(a.weight, 0.75 * wa + 0.25 * wb)


@pytest.mark.parametrize("world_size", [2, 3])
def test_shuffle_bn_embeds_each_row_in_the_sub_batch_its_permutation_block_sends_it_to(
        world_size):
    """The W processes' slices and the un-permutation, composed in one process: row i's key is
    the batch-norm'd embedding of the sub-batch {rows the block of perm holding i names}, at
    i's place in it; every row lands in exactly one block."""
    g = torch.Generator().manual_seed(world_size)
    x = torch.randn(4 * world_size, 5, generator=g)
    perm = torch.randperm(len(x), generator=g)
    embed = torch.nn.BatchNorm1d(5).train()  # depends on the batch it sees
    slices = [shuffle_slice(perm, world_size, r) for r in range(world_size)]
    assert sorted(torch.cat(slices).tolist()) == list(range(len(x)))
    with torch.no_grad():
        keys = unshuffle(torch.cat([embed(x[rows]) for rows in slices]), perm)
        for i in range(len(x)):
            block = (perm == i).nonzero().item() // 4
            rows = perm[block * 4:(block + 1) * 4]
            sub = x[rows]
            expected = (x[i] - sub.mean(0)) / torch.sqrt(sub.var(0, unbiased=False) + 1e-5)
            torch.testing.assert_close(keys[i], expected)


def test_unshuffle_undoes_the_permutation():
    perm = torch.tensor([2, 0, 3, 1])
    rows = torch.arange(4.0).unsqueeze(1) * 10
    torch.testing.assert_close(unshuffle(rows[perm], perm), rows)


@pytest.mark.parametrize("name", ["moco", "simclr"])
def test_whole_ring_gives_exactly_the_uniform_loss_on_whole_pool_models(name):
    uniform, ring = _model(name, SAMPLERS["uniform"]), _model(name, WHOLE_RING)
    ring.load_state_dict(uniform.state_dict())
    a = uniform(_batch(), progress=0.7, generator=_gen())
    b = ring(_batch(), progress=0.7, generator=_gen())
    assert torch.equal(a["loss"], b["loss"])


@pytest.mark.parametrize("name", ["ir", "cmc"])
def test_whole_ring_matches_the_uniform_loss_with_the_same_generator_seed(name):
    uniform, ring = _model(name, SAMPLERS["uniform"]), _model(name, WHOLE_RING)
    ring.load_state_dict(uniform.state_dict())
    a = uniform(_batch(), progress=0.7, generator=_gen(5))
    b = ring(_batch(), progress=0.7, generator=_gen(5))
    # Same draws; uniform takes K dot products, the ring gathers from the (B, N) matrix.
    torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-6, atol=1e-6)
    c = uniform(_batch(), progress=0.7, generator=_gen(6))
    assert not torch.allclose(a["loss"], c["loss"])  # the draw does matter


def test_ring_on_the_queue_keeps_the_annealed_ring():
    model = _model("moco", {"name": "ring", "w_l": 0.5, "w_u": 1.0, "anneal_fraction": 0.5})
    assert model(_batch(), progress=0.0, generator=_gen())["num_negatives"] == 20
    assert model(_batch(), progress=0.5, generator=_gen())["num_negatives"] == 10


def test_uniform_picks_match_the_dense_similarities():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 6, generator=g))
    pool = F.normalize(torch.randn(30, 6, generator=g))
    sparse = negatives_from_pool(UniformSampler(5), q, pool, progress=1.0, generator=_gen(3))
    idx = torch.randint(0, 30, (4, 5), generator=_gen(3))
    torch.testing.assert_close(sparse, (q @ pool.t()).gather(1, idx))
    ring = RingSampler(w_l=0.8, w_u=1.0, num_negatives=None)
    top = negatives_from_pool(ring, q, pool, progress=1.0)
    torch.testing.assert_close(top.sort(1).values, (q @ pool.t()).topk(6).values.sort(1).values)


def test_simclr_pool_excludes_self_and_positive():
    z = F.normalize(torch.randn(6, 4))  # B = 3
    pos, pool = in_batch_similarities(z, z)
    sims = z @ z.t()
    assert pool.shape == (6, 4)
    for i in range(6):
        partner = (i + 3) % 6
        assert pos[i] == sims[i, partner]
        others = [j for j in range(6) if j not in (i, partner)]
        assert torch.equal(pool[i], sims[i, others])


def test_simclr_uniform_is_nt_xent_and_gradients_flow_through_the_pool():
    z = F.normalize(torch.randn(6, 4)).requires_grad_()
    pos, pool = in_batch_similarities(z, z)
    loss = info_nce_loss(pos, pool, 0.5)
    logits = (z @ z.t()) / 0.5
    logits = logits.masked_fill(torch.eye(6, dtype=torch.bool), float("-inf"))
    target = (torch.arange(6) + 3) % 6
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))
    pool.sum().backward()  # pool entries alone reach every row of z
    assert (z.grad.abs().sum(1) > 0).all()


def test_rgb_to_lab_on_known_colours():
    rgb = torch.tensor([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    lab = rgb_to_lab(rgb.t().reshape(1, 3, 5, 1)).reshape(3, 5).t()
    expected = torch.tensor([[100.0, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20],
                             [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]])
    torch.testing.assert_close(lab, expected, atol=0.02, rtol=0)


def test_cmc_undoes_the_pipeline_normalisation_before_lab():
    model = _model("cmc")
    raw = torch.rand(2, 3, 8, 8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    l, ab = model.lab_views((raw - mean) / std)
    lab = normalize_lab(rgb_to_lab(raw))
    torch.testing.assert_close(torch.cat([l, ab], 1), lab, atol=1e-4, rtol=1e-4)
    white_l, _ = model.lab_views((torch.ones(1, 3, 2, 2) - mean) / std)
    torch.testing.assert_close(white_l, torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize("name", model_names())
def test_features_are_frozen_backbone_features_of_feature_dim(name):
    model = _model(name).eval()
    feats = model.features(torch.randn(3, 3, 16, 16))
    assert feats.shape == (3, model.feature_dim)
    enc_dim = 32  # width 0.0625: 4 base channels * 8
    assert model.feature_dim == (2 * enc_dim if name == "cmc" else enc_dim)


@pytest.mark.parametrize("name", ["ir", "moco", "simclr"])
def test_encoder_has_torchvision_resnet_keys(name):
    model = _model(name, backbone={"arch": "resnet18", "cifar_stem": False, "width": 1.0})
    expected = {k for k in torchvision.models.resnet18(weights=None).state_dict()
                if not k.startswith("fc.")}
    assert set(model.encoder.state_dict()) == expected
    assert model.backbone_config == {"arch": "resnet18", "cifar_stem": False, "width": 1.0,
                                     "in_channels": 3}


def test_cmc_encoder_is_the_l_encoder_described_by_backbone_config():
    model = _model("cmc")
    assert model.encoder is model.encoder_l and model.backbone_config["in_channels"] == 1
    assert not any(k.startswith("encoder.") for k in model.state_dict())


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("name", model_names())
def test_training_steps_stay_finite(name, sampler):
    model = _model(name, SAMPLERS[sampler])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        out = model(_batch(seed=step, start=8 * step), progress=step / 3, generator=_gen(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.update_state()
        assert torch.isfinite(out["loss"])
    state = model.state_dict().values()
    assert all(torch.isfinite(v).all() for v in state if v.is_floating_point())
    for buf in ("bank", "bank_l", "queue"):
        if hasattr(model, buf):
            torch.testing.assert_close(getattr(model, buf).all().norm(dim=1),
                                       torch.ones(getattr(model, buf).size))


@pytest.mark.parametrize("name", model_names())
def test_state_dict_round_trip_gives_the_same_loss(name):
    model = _model(name, SAMPLERS["ring"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(_batch(), generator=_gen())["loss"].backward()
    opt.step()
    model.update_state()  # banks / queue / key encoder now differ from a fresh model's
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = _model(name, SAMPLERS["ring"], seed=123)
    fresh.load_state_dict(torch.load(buf))
    a = model(_batch(seed=9), progress=0.8, generator=_gen(4))["loss"]
    b = fresh(_batch(seed=9), progress=0.8, generator=_gen(4))["loss"]
    assert torch.equal(a, b)


def test_bad_batches_name_the_problem():
    model = _model("ir")
    with pytest.raises(ValueError, match="views"):
        model({"index": torch.arange(BATCH)})
    bad = _batch(start=DATASET_SIZE - 2)
    with pytest.raises(ValueError, match="dataset_size"):
        model(bad)
    with pytest.raises(ValueError, match="temperature"):
        _model("moco", temperature=0.0)


def test_moco_shuffle_bn_is_on_by_default_and_the_config_can_turn_it_off():
    # it acts only under DDP (the slow test below); here: the setting reaches the model
    assert _model("moco").shuffle_bn is True
    assert _model("moco", shuffle_bn=False).shuffle_bn is False
    assert _model("moco", shuffle_bn=True).shuffle_bn is True


def _ddp_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    half = BATCH // world
    batch = _batch()
    local = {"index": batch["index"][rank * half:(rank + 1) * half],
             "views": tuple(v[rank * half:(rank + 1) * half] for v in batch["views"])}
    # same seed: identical bank / queue on every rank
    ir, moco, moco_own = _model("ir"), _model("moco"), _model("moco", shuffle_bn=False)
    for model in (ir, moco, moco_own):
        model.set_process_group()
        model(local, generator=_gen(rank))
    with torch.no_grad():  # train-mode BN: the same local batch statistics as in forward
        result = {"ir_embedding": ir.embed(local["views"][0]),
                  "moco_own_keys": moco_own.embed_keys(local["views"][1])}
    for model in (ir, moco, moco_own):
        model.update_state()  # all-gathers the stashed rows of both ranks
    result.update(ir_pool=ir.bank.all(), moco_pool=moco.queue.all(),
                  moco_own_pool=moco_own.queue.all())
    # eval-mode BN (running statistics): the shuffle is invisible
    frozen = _model("moco").eval()
    frozen.set_process_group()
    result["eval_shuffled"] = frozen.shuffled_keys(local["views"][1], _gen(rank))
    result["eval_own"] = frozen.embed_keys(local["views"][1])
    simclr = _model("simclr").eval()
    simclr.set_process_group()
    result["simclr_loss"] = simclr(local)["loss"].detach()
    torch.save(result, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_under_ddp_banks_and_queues_stay_identical_moco_shuffles_bn_and_simclr_uses_the_global_batch(
        tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)),
                                nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert torch.equal(r0["ir_pool"], r1["ir_pool"])
    assert torch.equal(r0["moco_pool"], r1["moco_pool"])
    before = _model("ir").bank.all()
    q = torch.cat([r0["ir_embedding"], r1["ir_embedding"]])
    torch.testing.assert_close(r0["ir_pool"][:BATCH], F.normalize(0.5 * before[:BATCH] + 0.5 * q))
    # shuffle-BN off: each process's keys carry its own batch's statistics
    own = torch.cat([r0["moco_own_keys"], r1["moco_own_keys"]])
    torch.testing.assert_close(r0["moco_own_pool"][:BATCH], own)
    # shuffle-BN (the default): each key is embedded in the random half of the global batch
    # that rank 0's permutation (its generator's first draw) sends it to, and the queue gets
    # the keys back in the batch's order; derived here in one process
    perm = torch.randperm(BATCH, generator=_gen(0)).view(2, -1)
    reference, views = _model("moco"), _batch()["views"][1]
    shuffled = torch.empty_like(own)
    with torch.no_grad():
        for half in perm:
            shuffled[half] = reference.embed_keys(views[half])
    torch.testing.assert_close(r0["moco_pool"][:BATCH], shuffled)
    assert not torch.allclose(shuffled, own, atol=1e-3)  # the shuffle changed the statistics
    torch.testing.assert_close(r0["eval_shuffled"], r0["eval_own"])
    torch.testing.assert_close(r1["eval_shuffled"], r1["eval_own"])
    # Eval mode (no batch statistics): every anchor sees the same 2B - 2 negatives as in one
    # process, so the mean of the per-process losses is the single-process loss.
    single = _model("simclr").eval()(_batch())["loss"]
    torch.testing.assert_close((r0["simclr_loss"] + r1["simclr_loss"]) / 2, single.detach())


@pytest.mark.parametrize("pool_size", [30, 200])  # dense product (N <= 16 K) / gathered rows
def test_uniform_negatives_and_gradients_agree_on_both_computation_paths(pool_size):
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(4, 6, generator=g)).requires_grad_()
    pool = F.normalize(torch.randn(pool_size, 6, generator=g))
    neg = negatives_from_pool(UniformSampler(5), q, pool, progress=1.0, generator=_gen(7))
    idx = torch.randint(0, pool_size, (4, 5), generator=_gen(7))
    expected = torch.einsum("bd,bkd->bk", q, pool[idx])
    torch.testing.assert_close(neg, expected)
    (grad,) = torch.autograd.grad(neg.exp().sum(), q)
    (expected_grad,) = torch.autograd.grad(expected.exp().sum(), q)
    torch.testing.assert_close(grad, expected_grad)


# --- estimators: every model takes the sampler block's estimator -------------------------------

HCL = {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}


def test_simclr_with_hcl_block_computes_hcl_over_its_in_batch_negatives():
    from repro.estimators import hard_nce_loss

    model = _model("simclr", sampler=HCL)
    batch = _batch()
    out = model(batch, generator=torch.Generator().manual_seed(0))
    z = model.embed(torch.cat(batch["views"]))
    pos, pool = in_batch_similarities(z, z)
    expected = hard_nce_loss(pos, pool, 0.2, tau_plus=0.1, beta=1.0)  # whole pool, any order
    torch.testing.assert_close(out["loss"], expected)
    assert not torch.allclose(out["loss"], info_nce_loss(pos, pool, 0.2))


@pytest.mark.parametrize("name", ["ir", "cmc", "moco", "simclr"])
def test_hcl_without_prior_or_concentration_trains_every_model_exactly_as_infonce(name):
    neutral = {"name": "uniform", "estimator": {"name": "hard", "tau_plus": 0.0, "beta": 0.0}}
    nce, hcl = _model(name), _model(name, sampler=neutral)
    batch = _batch()
    a = nce(batch, generator=torch.Generator().manual_seed(3))["loss"]
    b = hcl(batch, generator=torch.Generator().manual_seed(3))["loss"]
    torch.testing.assert_close(a, b)
    # and a real prior changes the loss of every model
    dcl = _model(name, sampler={"name": "uniform",
                                "estimator": {"name": "debiased", "tau_plus": 0.2}})
    c = dcl(batch, generator=torch.Generator().manual_seed(3))["loss"]
    assert not torch.allclose(a, c)


def test_a_debiasing_estimator_with_the_ring_is_refused_with_the_reason():
    ring_hcl = {**SAMPLERS["ring"], "estimator": {"name": "hard", "tau_plus": 0.1, "beta": 1.0}}
    with pytest.raises(ValueError, match="uniform"):
        _model("moco", sampler=ring_hcl)
    # InfoNCE named explicitly is the ring's own estimator
    _model("moco", sampler={**SAMPLERS["ring"], "estimator": {"name": "nce"}})


@pytest.mark.parametrize("block, match", [({"name": "hcl"}, "unknown estimator"),
                                          ({"name": "hard", "tau_plus": 0.1}, "missing"),
                                          ({"name": "debiased", "tau_plus": 0.1, "beta": 1},
                                           "unknown")])
def test_a_bad_estimator_block_names_what_is_wrong(block, match):
    with pytest.raises(ValueError, match=match):
        _model("simclr", sampler={"name": "uniform", "estimator": block})


def test_moco_update_state_also_moves_the_key_head_by_the_momentum_formula():
    model = _model("moco", key_momentum=0.8)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    head_before = [p.clone() for p in model.key_head.parameters()]
    model(_batch(), generator=_gen())["loss"].backward()
    opt.step()
    model.update_state()
    moved = False
    for kb, ka, q in zip(head_before, model.key_head.parameters(), model.head.parameters()):
        torch.testing.assert_close(ka, 0.8 * kb + 0.2 * q)
        moved |= not torch.equal(ka, kb)
    assert moved  # the query head changed, so the key head followed it


def test_rgb_to_lab_clamps_out_of_gamut_values_and_refuses_anything_but_three_channels():
    rgb = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.7, 2.5]).view(1, 1, 6, 1).expand(1, 3, 6, 1)
    torch.testing.assert_close(rgb_to_lab(rgb), rgb_to_lab(rgb.clamp(0.0, 1.0)), atol=0, rtol=0)
    assert rgb_to_lab(rgb)[0, 0, :, 0].tolist()[-3:] == pytest.approx([100.0] * 3, abs=1e-3)
    for shape in ((2, 1, 4, 4), (3, 4, 4), (2, 4, 4, 4)):
        with pytest.raises(ValueError) as caught:
            rgb_to_lab(torch.zeros(shape))
        assert str(caught.value) == f"rgb must be (B, 3, H, W), got shape {shape}"


def test_normalize_lab_keeps_the_images_dtype_and_uses_the_constants_at_that_precision():
    """float64 images are normalised with float64 constants (a float32 constant would round
    50.0 / 92.208 differently), and the result stays float64."""
    from repro.models.cmc import _LAB_CENTER, _LAB_HALF_RANGE

    lab = rgb_to_lab(torch.rand(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator()
                                .manual_seed(0)))
    out = normalize_lab(lab)
    assert out.dtype == torch.float64
    for c in range(3):
        expected = (lab[:, c] - _LAB_CENTER[c]) / _LAB_HALF_RANGE[c]  # Python floats: float64
        torch.testing.assert_close(out[:, c], expected, atol=0, rtol=0)


def test_an_option_a_model_does_not_take_is_named_with_what_it_takes(monkeypatch):
    from repro.models import MODELS, model_option_problem
    from repro.models.base import ContrastiveModel

    assert model_option_problem("moco", {"queue_size": 8, "datasets": {}}) is None
    assert model_option_problem("ir", {"queue_size": 8, "key_momentum": 0.9}) == (
        "options ['key_momentum', 'queue_size'] do not apply to ir (it takes "
        "['num_negatives', 'bank_momentum', 'head'], and datasets)")
    assert model_option_problem("unregistered", {"x": 1}) is None

    class Plain(ContrastiveModel):  # a model of a user's, declaring no options
        pass

    monkeypatch.setitem(MODELS, "plain", (None, Plain))
    assert model_option_problem("plain", {"head": "mlp"}) == (
        "options ['head'] do not apply to plain (it takes none, and datasets)")


_POOL_ENTRIES = {  # model -> (the images its pool entries embed, where the step stored them)
    "ir": (0, lambda m, b: m.bank.get(b["index"])),
    "cmc": (0, lambda m, b: m.bank_ab.get(b["index"])),  # the L anchors' pool: the ab bank
    "moco": (1, lambda m, b: m.queue.all()[:BATCH]),  # keys of the second view, enqueued
}


@pytest.mark.parametrize("name", sorted(_POOL_ENTRIES))
def test_pool_embeddings_are_what_a_training_step_stores_in_the_pool(name):
    """The false-negative diagnostic ranks `pool_embeddings(x)[1]`: with bank momentum 0 (a
    bank entry becomes the new embedding) that is exactly what the step put in the pool."""
    view, stored = _POOL_ENTRIES[name]
    model = _model(name, bank_momentum=0.0).train()
    batch = _batch()
    model(batch, progress=1.0, generator=_gen())
    # the same batch in train mode: the same batch-norm statistics as the step's forward
    anchors, candidates = model.pool_embeddings(batch["views"][view])
    model.update_state()
    torch.testing.assert_close(stored(model, batch), candidates, rtol=1e-5, atol=1e-6)
    assert torch.allclose(anchors.norm(dim=1), torch.ones(BATCH))


@pytest.mark.parametrize("name", ["ir", "simclr"])
def test_models_contrasting_their_own_embeddings_rank_a_pool_of_those(name):
    model = _model(name).eval()
    x = _batch()["views"][0]
    anchors, candidates = model.pool_embeddings(x)
    torch.testing.assert_close(anchors, model.embed(x))
    torch.testing.assert_close(candidates, anchors)


def test_moco_ranks_its_queries_against_momentum_encoder_keys():
    model = _model("moco").eval()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.1)  # the query encoder moves on; the key encoder lags behind
    x = _batch()["views"][0]
    anchors, candidates = model.pool_embeddings(x)
    torch.testing.assert_close(anchors, model.embed(x))
    torch.testing.assert_close(candidates, model.embed_keys(x))
    assert not torch.allclose(anchors, candidates, atol=1e-3)
