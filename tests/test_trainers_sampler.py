import pytest

from trainers.sampler import BucketBatchSampler


def _buckets():
    return [(13, 32, 32)] * 7 + [(13, 32, 48)] * 5 + [(5, 32, 32)] * 1


def test_batches_share_a_bucket_and_are_deterministic_per_epoch():
    b = _buckets()
    s = BucketBatchSampler(b, batch_size=2, seed=3)
    s.set_epoch(0)
    first = list(s)
    assert all(len({b[i] for i in batch}) == 1 and len(batch) == 2 for batch in first)
    assert len(first) == len(s) == 3 + 2  # tails dropped, the lone 5-frame sample never batched
    assert list(s) == first
    s.set_epoch(1)
    assert list(s) != first
    assert list(BucketBatchSampler(b, batch_size=2, seed=3)) == first


def test_ranks_split_evenly_and_resume_skips():
    b = _buckets()
    ranks = [BucketBatchSampler(b, batch_size=2, num_replicas=2, rank=r, seed=1) for r in range(2)]
    for s in ranks:
        s.set_epoch(4)
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0]) == 3  # 5 batches padded to 6
    full = BucketBatchSampler(b, batch_size=2, seed=1).batches(4)
    assert {tuple(x) for x in per_rank[0] + per_rank[1]} == {tuple(x) for x in full}
    ranks[0].set_epoch(4, start_batch=2)
    assert list(ranks[0]) == per_rank[0][2:]
    with pytest.raises(ValueError):
        BucketBatchSampler(b[-1:], batch_size=2)


def test_continuous_stream_crosses_epochs_and_resumes():
    from itertools import islice

    from trainers.sampler import ContinuousBatches

    s = BucketBatchSampler(_buckets(), batch_size=2, seed=5)
    n = len(s)
    stream = list(islice(iter(ContinuousBatches(s)), 3 * n))
    expected = [[(i, e) for i in b] for e in range(3) for b in s.batches(e)]
    assert stream == expected
    assert list(islice(iter(ContinuousBatches(s, start=n + 2)), 4)) == expected[n + 2: n + 6]
