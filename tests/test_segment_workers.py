"""MediaPipe segmentation split over worker processes agrees with the one-process run (real footage)."""

from pathlib import Path

import numpy as np
import pytest

from directanimator.cues import segment as seg_mod
from directanimator.cues.segment import workers as seg_workers
from directanimator.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"


@pytest.fixture(scope="module")
def frames():
    from directanimator.video import fit_frames, read_video

    return fit_frames(read_video(WALK).frames[:32], 256, 256, policy="pad")


def test_two_workers_match_one_process(frames):
    one = seg_mod.MediaPipeSegmenter(workers=1).segment_video(frames)
    progress = []
    try:
        seg_mod.warm_up_workers(2)  # returns at once; the clip below queues behind the warm-up in the same pool
        two = seg_mod.MediaPipeSegmenter(workers=2).segment_video(frames, progress=lambda f, d="": progress.append(f))
        assert seg_workers._LAST_PARALLEL["workers"] == 2 and len(seg_workers._LAST_PARALLEL["worker_cpu_s"]) == 2
    finally:
        seg_mod.shutdown_workers()
    assert two.masks.shape == one.masks.shape and two.masks.dtype == np.float32
    a, b = one.masks > 0.5, two.masks > 0.5
    iou = (a & b).sum(axis=(1, 2)) / np.maximum((a | b).sum(axis=(1, 2)), 1)
    # Only the second chunk's tracker restarts; every frame still agrees closely.
    assert iou.min() > 0.9, iou
    np.testing.assert_array_equal(one.masks[:16], two.masks[:16])  # the first chunk is the same computation
    np.testing.assert_allclose(one.scores, two.scores, atol=0.1)
    np.testing.assert_allclose(one.facing, two.facing, atol=0.05)
    assert progress and progress[-1] == 1.0 and all(0 <= p <= 1 for p in progress)


def test_short_clips_and_default_stay_in_process(frames):
    seg = seg_mod.MediaPipeSegmenter(workers=2)
    assert seg._workers_for(8) == 1  # below parallel_min_frames
    assert seg._workers_for(49) == 2
    assert seg_mod.MediaPipeSegmenter()._workers_for(49) == 1
    with pytest.raises(InputError, match="workers"):
        seg_mod.MediaPipeSegmenter(workers=0)
