"""What every face detection backend returns and provides: ``FaceTrack`` (one box per frame) and the
``FaceDetector`` protocol, with the input checks the backends share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from directanimator.errors import InputError
from directanimator.progress import ProgressFn
from directanimator.progress import report as _report  # noqa: F401  (the backends report through it)

__all__ = ["FaceDetector", "FaceTrack", "Progress"]

Progress = ProgressFn | None


@dataclass
class FaceTrack:
    """One face box per frame.

    Attributes:
        boxes: float32 ``[T, 4]`` ``(x0, y0, x1, y1)`` in frame pixels; a NaN row means no face in that frame.
        scores: float32 ``[T]`` detection confidence, 0 where there is no face.
    """

    boxes: np.ndarray
    scores: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """bool ``[T]``: True where the frame has a face box."""
        return np.isfinite(self.boxes).all(axis=1)


class FaceDetector(Protocol):
    """What every face detection backend provides."""

    name: str

    def detect(self, frames: np.ndarray, masks: np.ndarray | None = None, progress: Progress = None) -> FaceTrack:
        """One face per frame of ``frames`` (uint8 ``[T, H, W, 3]``), preferring faces inside ``masks``."""


def _check(frames, masks):
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be a uint8 RGB array [T,H,W,3], got {frames.dtype} {frames.shape}")
    if masks is not None:
        masks = np.asarray(masks, np.float32)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.shape != frames.shape[:3]:
            raise InputError(f"masks {masks.shape} do not match frames {frames.shape[:3]}")
    return np.ascontiguousarray(frames), masks


