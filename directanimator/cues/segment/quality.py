"""Which frames the pose cue should not trust (the paper's frame dropping, section 3.1): empty or tiny masks, low
scores, sudden area jumps against the neighbours."""

from __future__ import annotations

import numpy as np

from .protocol import Segmentation

__all__ = ["drop_bad_frames"]


def drop_bad_frames(
    seg: Segmentation, min_score: float = 0.5, min_area: float = 0.002, max_area_jump: float = 0.5, window: int = 2
) -> np.ndarray:
    """Frames whose mask should not drive the pose cue (the paper's frame dropping).

    A frame is dropped when its mask is empty or smaller than ``min_area`` of the frame, when its score is under
    ``min_score``, or when its area differs from the median area of its kept neighbours (``window`` frames each
    side) by more than ``max_area_jump`` relative to that median (a sudden grow/shrink is a segmentation failure,
    bodies do not change size between frames).

    Args:
        seg: the clip's segmentation.
        min_score: minimum per-frame quality score.
        min_area: minimum mask area as a fraction of the frame.
        max_area_jump: maximum relative area change against the neighbours' median.
        window: neighbours considered on each side.

    Returns:
        bool ``[T]``, True = dropped.
    """
    area = seg.areas.astype(np.float64)
    scores = np.asarray(seg.scores, np.float64)
    dropped = (area < max(min_area, 1e-12)) | (scores < min_score) | ~np.isfinite(scores)
    t_len = len(area)
    jump = np.zeros(t_len, dtype=bool)
    for t in np.flatnonzero(~dropped):
        lo, hi = max(0, t - window), min(t_len, t + window + 1)
        neigh = [area[i] for i in range(lo, hi) if i != t and not dropped[i]]
        if len(neigh) < 2 and t_len > 2:
            # With a single neighbour we cannot tell which of the two jumped; widen the search.
            lo, hi = max(0, t - 2 * window), min(t_len, t + 2 * window + 1)
            neigh = [area[i] for i in range(lo, hi) if i != t and not dropped[i]]
        if len(neigh) < 2:
            continue
        med = float(np.median(neigh))
        jump[t] = abs(area[t] - med) > max_area_jump * med
    return dropped | jump
