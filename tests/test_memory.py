"""Memory bank (momentum update of unit rows) and FIFO queue (wrap-around)."""

import io

import pytest
import torch
import torch.nn.functional as F

from repro.memory import MemoryBank, Queue


def test_bank_starts_with_random_unit_rows():
    bank = MemoryBank(50, 8)
    assert bank.all().shape == (50, 8)
    torch.testing.assert_close(bank.all().norm(dim=1), torch.ones(50))
    assert bank.all().std() > 0.1


def test_bank_update_is_normalised_momentum_average_of_the_indexed_rows_only():
    torch.manual_seed(0)
    bank = MemoryBank(10, 4)
    before = bank.all().clone()
    idx = torch.tensor([7, 2, 5])
    new = torch.randn(3, 4)
    bank.update(idx, new, momentum=0.3)  # m and 1 - m differ: a swapped formula fails
    expected = F.normalize(0.3 * before[idx] + 0.7 * new, dim=1)
    torch.testing.assert_close(bank.get(idx), expected)
    untouched = torch.tensor([i for i in range(10) if i not in (7, 2, 5)])
    assert torch.equal(bank.get(untouched), before[untouched])


def test_bank_default_momentum_and_zero_momentum_overwrites():
    bank = MemoryBank(6, 3, momentum=0.0)
    v = torch.tensor([[3.0, 0.0, 4.0]])
    bank.update(torch.tensor([1]), v)
    torch.testing.assert_close(bank.get(torch.tensor([1])), torch.tensor([[0.6, 0.0, 0.8]]))


def test_bank_rejects_embeddings_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MemoryBank(5, 4).update(torch.tensor([0]), torch.randn(1, 3))
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(5, 4, momentum=1.5)


def test_bank_round_trips_through_state_dict():
    a, b = MemoryBank(7, 3), MemoryBank(7, 3)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf))
    assert torch.equal(a.all(), b.all())


def test_queue_is_fifo_and_wraps_around():
    q = Queue(5, 2)
    batches = [torch.full((2, 2), float(i)) for i in range(1, 4)]  # 6 keys into 5 slots
    for keys in batches:
        q.enqueue(keys)
    # slots 0-1: batch 1 then overwritten by batch 3's second key in slot 0.
    assert q.all()[:, 0].tolist() == [3.0, 1.0, 2.0, 2.0, 3.0]
    assert int(q.ptr) == 1
    q.enqueue(torch.full((3, 2), 4.0))  # the three oldest (1, 2, 2) go
    assert sorted(q.all()[:, 0].tolist()) == [3.0, 3.0, 4.0, 4.0, 4.0]
    assert int(q.ptr) == 4


def test_queue_keeps_only_the_newest_keys_of_an_oversized_batch():
    q = Queue(3, 1)
    q.enqueue(torch.arange(7.0).view(7, 1))
    assert sorted(q.all()[:, 0].tolist()) == [4.0, 5.0, 6.0]
    q.enqueue(torch.tensor([[7.0]]))  # replaces the oldest remaining key, 4
    assert sorted(q.all()[:, 0].tolist()) == [5.0, 6.0, 7.0]


def test_queue_state_lives_in_buffers():
    q = Queue(4, 2)
    q.enqueue(torch.ones(3, 2))
    state = q.state_dict()
    assert set(state) == {"keys", "ptr"}
    fresh = Queue(4, 2)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.all(), q.all()) and int(fresh.ptr) == 3
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        q.enqueue(torch.ones(3))


@pytest.mark.parametrize("size,dim", [(0, 4), (5, 0)])
def test_empty_banks_and_queues_are_refused_naming_size_and_dim(size, dim):
    with pytest.raises(ValueError, match=rf"^a memory bank needs size >= 1 and dim >= 1, got "
                                         rf"size={size}, dim={dim}$"):
        MemoryBank(size, dim)
    with pytest.raises(ValueError, match=rf"^a queue needs size >= 1 and dim >= 1, got "
                                         rf"size={size}, dim={dim}$"):
        Queue(size, dim)


def test_bank_momentum_is_accepted_on_the_closed_interval_and_refused_outside():
    assert MemoryBank(1, 1, momentum=0.0).momentum == 0.0
    assert MemoryBank(1, 1, momentum=1.0).momentum == 1.0
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match=rf"^bank momentum must be in \[0, 1\], got {bad}$"):
            MemoryBank(1, 1, momentum=bad)


def test_bank_default_momentum_is_used_when_none_is_given():
    torch.manual_seed(1)
    bank = MemoryBank(4, 3, momentum=0.8)
    before = bank.all().clone()
    new = torch.randn(2, 3)
    bank.update(torch.tensor([3, 0]), new)
    torch.testing.assert_close(bank.get(torch.tensor([3, 0])),
                               F.normalize(0.8 * before[[3, 0]] + 0.2 * new, dim=1))
    assert bank.size == 4 and Queue(6, 2).size == 6


def test_a_bank_of_rows_with_the_wrong_shape_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"^bank embeddings must be \(B, 4\), got shape \(4,\)$"):
        MemoryBank(5, 4).update(torch.tensor([0]), torch.randn(4))
    with pytest.raises(ValueError, match=r"^queue keys must be \(B, 2\), got shape \(3, 3\)$"):
        Queue(4, 2).enqueue(torch.ones(3, 3))


def test_queue_keys_start_as_random_unit_rows_and_the_pointer_at_zero():
    q = Queue(30, 5)
    torch.testing.assert_close(q.all().norm(dim=1), torch.ones(30))
    assert q.all().std() > 0.1 and int(q.ptr) == 0 and q.ptr.dtype == torch.long


def test_an_oversized_batch_moves_the_pointer_as_if_pushed_key_by_key():
    q, r = Queue(3, 1), Queue(3, 1)
    q.enqueue(torch.tensor([[9.0]]))
    r.enqueue(torch.tensor([[9.0]]))
    keys = torch.arange(5.0).view(5, 1)
    q.enqueue(keys)
    for key in keys:
        r.enqueue(key.view(1, 1))
    assert torch.equal(q.all(), r.all()) and int(q.ptr) == int(r.ptr) == 0
