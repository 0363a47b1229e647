"""GPU checks (``pytest -m gpu``; skipped without CUDA, run by bench/device_check.sh): the CUDA
step matches the CPU step, bf16 stays near fp32, a killed run resumes to the same state, and
the ring picks the same members (and counts the same false negatives) on both devices."""

import pytest
import torch

from repro.config import run_spec
from repro.models.base import negatives_from_pool
from repro.precision import autocast
from repro.pretrain import train
from repro.samplers import RingSampler

from test_models import SAMPLERS, _batch, _model
from test_pretrain import _config

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

CUDA = torch.device("cuda")
WHOLE_POOL = ("moco", "simclr")  # uniform = the whole queue / batch: no random draw


def _on(batch, device):
    return {"index": batch["index"].to(device), "label": batch["label"].to(device),
            "views": tuple(v.to(device) for v in batch["views"])}


def _step(model, batch, device, precision="fp32"):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with autocast(precision, device):
        out = model(batch, progress=1.0, generator=torch.Generator(device=device).manual_seed(0))
    out["loss"].backward()
    grads = {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}
    opt.step()
    model.update_state()
    return out["loss"].item(), grads, {k: v.detach().cpu() for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True)
def _exact_fp32():
    """No TF32 (fp32 means fp32 here) and deterministic cuDNN kernels, restored afterwards."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
           torch.backends.cudnn.deterministic)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic) = old


@pytest.mark.parametrize("name", WHOLE_POOL)
def test_fp32_step_on_cuda_matches_the_cpu_step(name):
    batch = _batch()
    cpu = _step(_model(name, SAMPLERS["uniform"]), batch, torch.device("cpu"))
    gpu = _step(_model(name, SAMPLERS["uniform"]).to(CUDA), _on(batch, CUDA), CUDA)
    assert gpu[0] == pytest.approx(cpu[0], rel=1e-4)
    for key in cpu[1]:
        torch.testing.assert_close(gpu[1][key], cpu[1][key], rtol=1e-3, atol=1e-4)
    for key in cpu[2]:
        if cpu[2][key].is_floating_point():
            torch.testing.assert_close(gpu[2][key], cpu[2][key], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["ir", "cmc"])
def test_fp32_embeddings_and_bank_update_on_cuda_match_the_cpu(name):
    batch = _batch()
    cpu_model, gpu_model = _model(name), _model(name).to(CUDA)
    gpu_out = gpu_model(_on(batch, CUDA), progress=1.0,
                        generator=torch.Generator(device=CUDA).manual_seed(0))
    cpu_out = cpu_model(batch, progress=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gpu_out["pos_sim"].cpu(), cpu_out["pos_sim"], rtol=1e-4,
                               atol=1e-5)
    cpu_model.update_state()
    gpu_model.update_state()  # the banks moved by the same embeddings
    for key, value in cpu_model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(gpu_model.state_dict()[key].cpu(), value, rtol=1e-3,
                                       atol=1e-4)


@pytest.mark.parametrize("name", ["ir", "cmc", "moco", "simclr"])
def test_bf16_loss_on_cuda_is_within_two_percent_of_fp32(name):
    batch = _on(_batch(), CUDA)
    fp32 = _step(_model(name, SAMPLERS["ring"]).to(CUDA), batch, CUDA)[0]
    bf16 = _step(_model(name, SAMPLERS["ring"]).to(CUDA), batch, CUDA, "bf16")[0]
    assert bf16 == pytest.approx(fp32, rel=0.02)


@pytest.mark.parametrize("seed", range(3))
def test_ring_members_on_cuda_equal_the_ring_on_the_cpu(seed):
    g = torch.Generator().manual_seed(seed)
    anchors = torch.nn.functional.normalize(torch.randn(64, 128, generator=g), dim=1)
    pool = torch.nn.functional.normalize(torch.randn(65_536, 128, generator=g), dim=1)
    ring = RingSampler(w_l=0.9, w_u=0.99, num_negatives=None)
    cpu = negatives_from_pool(ring, anchors, pool, progress=1.0).sort(1).values
    gpu = negatives_from_pool(ring, anchors.to(CUDA), pool.to(CUDA), progress=1.0)
    torch.testing.assert_close(gpu.sort(1).values.cpu(), cpu, rtol=0, atol=1e-5)
    with autocast("bf16", CUDA):  # bf16 autocast: the same float32 ring
        mixed = negatives_from_pool(ring, anchors.to(CUDA), pool.to(CUDA), progress=1.0)
    assert torch.equal(mixed, gpu)


def test_false_negative_counts_on_cuda_equal_the_counts_on_the_cpu():
    """The linear-eval job ranks the pool where the model ran: a CIFAR-sized pool (500
    anchors here: the CPU side takes seconds)."""
    from repro.false_negatives import same_class_counts

    g = torch.Generator().manual_seed(0)
    anchors = torch.nn.functional.normalize(torch.randn(50_000, 64, generator=g), dim=1)
    candidates = torch.nn.functional.normalize(torch.randn(50_000, 64, generator=g), dim=1)
    labels = torch.randint(0, 10, (50_000,), generator=g)
    cpu = same_class_counts(anchors, candidates, labels, max_anchors=500)
    gpu = same_class_counts(anchors.to(CUDA), candidates.to(CUDA), labels.to(CUDA),
                            max_anchors=500)
    # the devices' matmuls differ in the last bits, so near-ties at a band's edge may swap:
    # the same bands, and each band's rate within 0.1 points
    assert gpu.total == cpu.total and cpu.anchors == 500
    assert gpu.rates() == pytest.approx(cpu.rates(), abs=1e-3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_killed_run_on_cuda_resumes_to_the_uninterrupted_state(tmp_path, precision):
    spec = run_spec(_config(augment="batch", gpus=1, precision=precision), "moco", "ring",
                    "shapes", 0)
    straight = train(spec, tmp_path / "straight", device="cuda", progress_bar=False)
    assert train(spec, tmp_path / "split", device="cuda", progress_bar=False,
                 stop_after_epoch=1) == {}
    resumed = train(spec, tmp_path / "split", device="cuda", resume=True, progress_bar=False)
    assert resumed["metrics"]["final_loss"] == pytest.approx(straight["metrics"]["final_loss"],
                                                             rel=1e-4)
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4)


def test_records_name_the_gpus_and_count_their_peak_memory():
    from repro.results import hardware_info, peak_memory_mb

    info = hardware_info()
    assert info["device"] == "cuda"
    assert info["gpus"] == [torch.cuda.get_device_name(i)
                            for i in range(torch.cuda.device_count())]
    held = torch.empty(300 * 2**20, dtype=torch.uint8, device="cuda")  # 300 MiB on the GPU
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20
    assert gpu_peak >= 300 and peak_memory_mb() >= gpu_peak - 0.05  # rounded to 0.1 MiB
    del held


def test_batch_augment_takes_a_generator_made_on_plain_cuda():
    """A generator made with ``device="cuda"`` reports ``cuda``, the images ``cuda:0``: the
    same device, accepted (the first H200 device check stopped here); one seed draws the same
    batch twice."""
    from repro.data import get_spec
    from repro.data.batch_augment import BatchAugment

    aug = BatchAugment(get_spec("cifar10"))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, device=CUDA)
    a = aug(images, torch.Generator(device="cuda").manual_seed(0))
    b = aug(images, torch.Generator(device="cuda").manual_seed(0))
    assert a.device.type == "cuda" and torch.equal(a, b)


def test_batch_augment_on_cuda_waits_for_the_device_nowhere_and_equals_the_cpu():
    """After a first call (which makes the constants once per device), drawing and applying a
    batch's views on CUDA runs with torch's sync debug mode set to error: no ``nonzero``, no
    host copy, no ``.item()``. Given the same parameters, the CUDA views equal the CPU's."""
    from repro.data import get_spec
    from repro.data.batch_augment import BatchAugment

    aug = BatchAugment(get_spec("stl10"))
    images = torch.randint(0, 256, (32, 3, 96, 96), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    on_gpu = images.to(CUDA)
    gen = torch.Generator(device=CUDA).manual_seed(0)
    aug(on_gpu, gen)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        params = aug.sample(32, 96, 96, gen)
        views = aug.apply(on_gpu, params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu_params = type(params)(**{k: v.cpu() for k, v in vars(params).items()})
    assert torch.allclose(views.cpu(), aug.apply(images, cpu_params), atol=1e-4)
