"""Temporal smoothing of a face box track, so that the face crop does not jitter."""

from __future__ import annotations

import numpy as np

from .protocol import FaceTrack

__all__ = ["smooth_boxes"]


def smooth_boxes(track: FaceTrack, window: int = 5) -> FaceTrack:
    """Smooth a face box track over time so that the face crop does not jitter.

    Centre and size (width, height) are each averaged over the frames with a face inside a centred window of
    ``window`` frames; frames without a face are ignored in the averages and stay NaN.

    Args:
        track: the per-frame boxes.
        window: window length in frames (odd; even values are rounded up); 1 returns the track unchanged.
    """
    boxes = np.asarray(track.boxes, np.float64)
    half = max(0, int(window) // 2)
    valid = np.isfinite(boxes).all(axis=1)
    if half == 0 or valid.sum() < 2:
        return FaceTrack(boxes=np.asarray(track.boxes, np.float32).copy(), scores=np.asarray(track.scores).copy())
    feats = np.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, boxes[:, 2] - boxes[:, 0],
         boxes[:, 3] - boxes[:, 1]], axis=1)
    feats[~valid] = 0.0
    # Windowed sums of values and of the valid count via cumulative sums (no loop over frames).
    pad = lambda a: np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])  # noqa: E731
    csum, ccount = pad(feats), pad(valid.astype(np.float64))
    t = np.arange(len(boxes))
    lo, hi = np.clip(t - half, 0, len(boxes)), np.clip(t + half + 1, 0, len(boxes))
    count = ccount[hi] - ccount[lo]
    mean = (csum[hi] - csum[lo]) / np.maximum(count, 1)[:, None]
    cx, cy, bw, bh = mean.T
    out = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
    out[~valid] = np.nan
    return FaceTrack(boxes=out, scores=np.asarray(track.scores, np.float32).copy())
