"""Per-frame picture statistics of a source (brightness, sharpness, motion) and the shot filters built on them:
too short, too dark, too blurry, static. They are computed on small copies of the frames while the shots are
found, so a shot that fails them is dropped before any frame of it is decoded at full size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["ANALYSIS_SIDE", "FrameStats", "QualityLimits", "sharpness", "shot_problem"]

ANALYSIS_SIDE = 160
"""Long side (pixels) of the copies the statistics are measured on (and the shot detector is fed): the
thresholds of :class:`QualityLimits` are in this scale."""


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a uint8 gray image: high for crisp edges, near 0 for a blurred picture."""
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


class FrameStats:
    """Brightness, sharpness and motion of every frame, collected one frame at a time.

    ``add(frame)`` takes the analysis copy of a frame (``[H, W, 3] uint8`` RGB, long side
    :data:`ANALYSIS_SIDE`); motion is the mean absolute gray difference to the previous frame (0 for the first).
    """

    def __init__(self):
        self.brightness: list[float] = []
        self.sharpness: list[float] = []
        self.motion: list[float] = []
        self._previous = None

    def add(self, frame: np.ndarray) -> None:
        """Measure one frame."""
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        self.brightness.append(float(gray.mean()))
        self.sharpness.append(sharpness(gray))
        moved = 0.0 if self._previous is None else float(cv2.absdiff(gray, self._previous).mean())
        self.motion.append(moved)
        self._previous = gray

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics as float32 arrays ``{"brightness", "sharpness", "motion"}``."""
        return {k: np.asarray(getattr(self, k), np.float32) for k in ("brightness", "sharpness", "motion")}


@dataclass(frozen=True)
class QualityLimits:
    """The thresholds of the shot filters (measured at :data:`ANALYSIS_SIDE` px).

    Args:
        min_seconds: a shot (after trimming its first and last frame) shorter than this is "too short".
        min_brightness: median gray level (0-255) under which a shot is "too dark". Measured: the walk example
            85, vtest.avi 119, synthetic-world dances 130-180; the same shots darkened to a fifth 17-28.
        min_sharpness: median Laplacian variance under which a shot is "too blurry". Measured: the walk example
            310, vtest.avi 2000, synthetic dances 130-680; a 7x7 Gaussian blur of them 6-40.
        min_motion: mean absolute gray change per frame under which a shot is "static". Measured: the walk
            example 2.0, vtest.avi 1.5, synthetic dances 2.2-6.9; a still frame encoded as a video 0.00.
    """

    min_seconds: float = 5.0
    min_brightness: float = 40.0
    min_sharpness: float = 60.0
    min_motion: float = 0.3


def shot_problem(stats: dict[str, np.ndarray], start: int, end: int, fps: float, limits: QualityLimits) -> str | None:
    """Why frames ``start`` to ``end - 1`` cannot become a clip (``"too short"``, ``"too dark"``, ``"too blurry"``,
    ``"static"``), or ``None`` when they pass; ``stats`` are :meth:`FrameStats.arrays`."""
    if (end - start) / fps < limits.min_seconds - 1e-9:
        return "too short"
    if float(np.median(stats["brightness"][start:end])) < limits.min_brightness:
        return "too dark"
    if float(np.median(stats["sharpness"][start:end])) < limits.min_sharpness:
        return "too blurry"
    if end - start > 1 and float(np.mean(stats["motion"][start + 1:end])) < limits.min_motion:
        return "static"
    return None
