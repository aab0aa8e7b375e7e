"""Drawn scenes with several people (the synthetic world's figures composited back to front), with the ground-truth
visible mask of each person, for the tests of ``directanimator.cues.people`` and the person tracker."""

from __future__ import annotations

import dataclasses

import numpy as np

from trainers.synthetic.draw import draw_clip
from trainers.synthetic.people import make_identity, make_motion, sample_motion


def draw_people(people, frames: int, size: int):
    """Composite drawn people over the first one's background, the later ones in front.

    Args:
        people: ``(identity index, motion index, x path, scale)`` per person, back to front; the x path is the
            pelvis position as a fraction of ``size``: a number, or ``(start, end)`` walked linearly.
        frames: clip length T. size: square frame side.

    Returns:
        (frames uint8 ``[T, size, size, 3]``, visible masks float32 ``[P, T, size, size]`` in the order given).
    """
    out, masks = None, []
    for identity, motion, x, scale in people:
        track = sample_motion(make_motion(0, motion), frames, size)
        start, end = (x, x) if np.isscalar(x) else x
        path = np.linspace(start, end, frames, dtype=np.float32) * size
        # Facing the camera (a back view makes MediaPipe's detector unsure; the tracker is what is tested).
        track = dataclasses.replace(track, root_x=path, px_per_unit=track.px_per_unit * np.float32(scale),
                                    yaw=np.zeros_like(track.yaw))
        rgb, mask, _ = draw_clip(make_identity(0, identity), track, size)
        if out is None:
            out = rgb.astype(np.float32)
        else:
            alpha = mask[..., None]
            out = out * (1.0 - alpha) + rgb.astype(np.float32) * alpha
            masks = [m * (1.0 - mask) for m in masks]
        masks.append(mask)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), np.stack(masks)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of ``a > 0.5`` and ``b > 0.5``."""
    a, b = a > 0.5, b > 0.5
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0
