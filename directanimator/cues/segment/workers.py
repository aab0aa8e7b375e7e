"""A clip split over worker processes, for segmentation backends whose graph runs on one core.

One MediaPipe graph runs on about one core, so idle cores can segment a clip in contiguous chunks, one per process.
Threads do not help (measured: two graphs in two threads of one process were slower than one). Each chunk pays its
graph's start (~170 ms CPU for the first frame after a reset). The processes are spawned (forking after
mediapipe/torch started their threads is unsafe), kept, and reused for later clips; frames and masks travel through
shared memory, not pickles. The segmenter is named by its class (``factory``) and constructor arguments, so this
module knows no backend.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import shared_memory

import numpy as np

from .protocol import Progress, Segmentation, _report

__all__ = ["segment_parallel", "shutdown_workers", "warm_workers"]

# One MediaPipe graph runs on about one core, so idle cores can segment a clip in contiguous chunks, one per
# process. Threads do not help (measured: two graphs in two threads of one process were slower than one). Each
# chunk pays its graph's start (~170 ms CPU for the first frame after a reset). The processes
# are spawned (forking after mediapipe/torch started their threads is unsafe), kept, and reused for later clips;
# frames and masks travel through shared memory, not pickles.

_POOL = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_WORKER_SEGMENTERS: dict[tuple, object] = {}


def _pool(workers: int):
    """The shared worker pool (spawn context), grown to ``workers`` processes."""
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < workers:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        _POOL_SIZE = workers
    return _POOL


def shutdown_workers() -> None:
    """Stop the segmentation worker processes (they are restarted on demand)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
        _POOL, _POOL_SIZE = None, 0


def _worker_segmenter(factory, params: tuple):
    """The worker's segmenter for ``factory(*params, workers=1)``, built once per process and reused."""
    key = (factory, params)
    if key not in _WORKER_SEGMENTERS:
        _WORKER_SEGMENTERS[key] = factory(*params, workers=1)
    return _WORKER_SEGMENTERS[key]


def _warm_worker(factory, params: tuple) -> float:
    """Import the backend and build its graphs in a worker; returns the seconds it took."""
    start = time.perf_counter()
    _worker_segmenter(factory, params)
    return time.perf_counter() - start


def _segment_chunk(factory, params, names, shape, lo, hi):
    """Worker side: segment frames ``lo:hi`` of the shared clip into the shared mask/score/facing arrays."""
    start_cpu = time.process_time()
    blocks = [shared_memory.SharedMemory(name=n) for n in names]
    try:
        t_len, h, w = shape
        frames = np.ndarray((t_len, h, w, 3), np.uint8, buffer=blocks[0].buf)
        masks = np.ndarray((t_len, h, w), np.float32, buffer=blocks[1].buf)
        small = np.ndarray((3, t_len), np.float32, buffer=blocks[2].buf)  # scores, facing, done
        seg = _worker_segmenter(factory, params)

        def progress(fraction, desc):
            small[2, lo:lo + int(round(fraction * (hi - lo)))] = 1.0

        out = seg._segment_video(frames[lo:hi], progress)
        masks[lo:hi] = out.masks
        small[0, lo:hi] = out.scores
        small[1, lo:hi] = out.facing
        del frames, masks, small, out
    finally:
        for block in blocks:
            block.close()
    return time.process_time() - start_cpu


_LAST_PARALLEL: dict = {}
"""Timing details of the latest parallel run (``worker_cpu_s``: CPU seconds each worker spent), for benchmarks."""


def segment_parallel(factory, params: tuple, frames: np.ndarray, workers: int, progress: Progress) -> Segmentation:
    """Segment ``frames`` in ``workers`` contiguous chunks, one per worker process, with the segmenter that
    ``factory(*params, workers=1)`` builds there (its ``_segment_video(frames, progress)`` does one chunk)."""
    t_len, h, w = frames.shape[:3]
    bounds = np.linspace(0, t_len, workers + 1).round().astype(int)
    sizes = (frames.nbytes, t_len * h * w * 4, 3 * t_len * 4)
    blocks = [shared_memory.SharedMemory(create=True, size=max(1, n)) for n in sizes]
    try:
        shared = np.ndarray(frames.shape, np.uint8, buffer=blocks[0].buf)
        shared[:] = frames
        small = np.ndarray((3, t_len), np.float32, buffer=blocks[2].buf)
        small[:] = 0.0
        names = [b.name for b in blocks]
        with _POOL_LOCK:
            pool = _pool(workers)
            futures = [pool.submit(_segment_chunk, factory, params, names, (t_len, h, w), int(lo), int(hi))
                       for lo, hi in zip(bounds[:-1], bounds[1:])]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.1)
            _report(progress, float(small[2].mean()), "segmenting (mediapipe)")
        cpu = [f.result() for f in futures]  # re-raises a worker's error here
        _LAST_PARALLEL.clear()
        _LAST_PARALLEL.update(worker_cpu_s=cpu, workers=workers, time=time.time())
        masks = np.ndarray((t_len, h, w), np.float32, buffer=blocks[1].buf).copy()
        scores, facing = small[0].copy(), small[1].copy()
        del shared, small
    finally:
        for block in blocks:
            block.close()
            block.unlink()
    _report(progress, 1.0, "segmenting (mediapipe)")
    return Segmentation(masks=masks, scores=scores, facing=facing)


def warm_workers(factory, params: tuple, workers: int) -> None:
    """Start ``workers`` worker processes and build ``factory(*params, workers=1)`` in each, without waiting."""
    with _POOL_LOCK:
        pool = _pool(workers)
        for _ in range(workers):
            pool.submit(_warm_worker, factory, params)
