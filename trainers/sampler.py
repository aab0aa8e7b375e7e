"""An index-based, rank-aware bucket batch sampler over (frames, height, width).

Samples of different sizes cannot share a batch, so every batch is drawn from one bucket. The order depends only
on (seed, epoch), never on the process or on timing, so a resumed run sees exactly the batches the interrupted
run would have seen: ``BucketBatchSampler(..., start_batch=k)`` skips the first k batches of the epoch without
touching any data.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterator, Sequence

import torch


class BucketBatchSampler(torch.utils.data.Sampler):
    """Yield lists of sample indices; all indices of a batch share one bucket key.

    Args:
        buckets: one hashable key per sample, e.g. ``(frames, height, width)``.
        batch_size: samples per batch (per process).
        num_replicas: number of processes (``accelerator.num_processes``).
        rank: this process (``accelerator.process_index``).
        seed: base seed; the order of epoch e is a pure function of (seed, e).
        drop_last: drop the incomplete tail batch of each bucket (keeps batch shapes constant). When False the
            tail batch is kept, smaller.
    """

    def __init__(
        self,
        buckets: Sequence[Hashable],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        drop_last: bool = True,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.buckets = list(buckets)
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0
        if not self._all_batches(0):
            raise ValueError(
                f"no bucket has {batch_size} samples; lower the batch size or add clips of the same size"
            )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (its order) and how many of this rank's batches to skip (for resuming)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _all_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for index, key in enumerate(self.buckets):
            groups[key].append(index)
        batches = []
        # sorted keys: dict order would depend on sample order only, but sorting makes the intent explicit
        for key in sorted(groups, key=repr):
            members = groups[key]
            order = torch.randperm(len(members), generator=generator).tolist()
            shuffled = [members[i] for i in order]
            for start in range(0, len(shuffled), self.batch_size):
                batch = shuffled[start : start + self.batch_size]
                if len(batch) == self.batch_size or (not self.drop_last and batch):
                    batches.append(batch)
        order = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in order]
        # every rank must run the same number of steps (collectives would hang otherwise): wrap around
        if batches and len(batches) % self.num_replicas:
            extra = self.num_replicas - len(batches) % self.num_replicas
            batches += [batches[i % len(batches)] for i in range(extra)]
        return batches

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches of an epoch, in order (without the resume skip)."""
        epoch = self.epoch if epoch is None else epoch
        return self._all_batches(epoch)[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.start_batch :]

    def __len__(self) -> int:
        """Batches per epoch for this rank (the same on every rank and every epoch)."""
        return len(self.batches(0))


class ContinuousBatches(torch.utils.data.Sampler):
    """One endless stream of batches over all epochs, starting at batch ``start`` (counted from epoch 0).

    Yields ``[(index, epoch), ...]``: the epoch travels with each index so a dataset in a persistent worker process
    can make per-epoch choices. A single stream (instead of a new iterator per epoch) keeps the dataloader's prefetch
    going across epoch boundaries, and resuming at micro-batch k is just ``start=k``.

    Args:
        batch_sampler: a ``BucketBatchSampler`` (its ``set_epoch`` is driven from here).
        start: batches to skip (the number of micro-batches already consumed).
    """

    def __init__(self, batch_sampler: BucketBatchSampler, start: int = 0):
        self.batch_sampler = batch_sampler
        self.start = start

    def __iter__(self):
        per_epoch = len(self.batch_sampler)
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            for batch in self.batch_sampler.batches(epoch)[offset:]:
                yield [(i, epoch) for i in batch]
            epoch, offset = epoch + 1, 0
