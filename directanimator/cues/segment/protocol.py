"""What every person segmentation backend returns and provides: ``Segmentation`` (masks, scores, facing) and the
``PersonSegmenter`` protocol, with the input checks and helpers the backends share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from directanimator.errors import InputError
from directanimator.progress import ProgressFn
from directanimator.progress import report as _report  # noqa: F401  (the backends report through it)

__all__ = ["Progress", "Segmentation", "PersonSegmenter"]

Progress = ProgressFn | None


@dataclass
class Segmentation:
    """Person masks of a clip (or of one image, ``T == 1``).

    Attributes:
        masks: float32 ``[T, H, W]`` foreground probability in ``[0, 1]``.
        scores: float32 ``[T]`` per-frame quality in ``[0, 1]``; 0 where the mask is empty.
        facing: optional float32 ``[T]``: how much the person faces the camera, 1 = towards it, 0.5 = profile,
            0 = seen from behind; NaN where unknown (no landmarks, or a backend without them). None = unknown
            for the whole clip. Face detectors find "faces" on the back of a head; this says which to drop.
    """

    masks: np.ndarray
    scores: np.ndarray
    facing: np.ndarray | None = None

    @property
    def areas(self) -> np.ndarray:
        """Fraction of the frame covered by the mask (``masks > 0.5``), float32 ``[T]``."""
        return (self.masks > 0.5).mean(axis=(1, 2)).astype(np.float32)


class PersonSegmenter(Protocol):
    """What every segmentation backend provides."""

    name: str

    def segment_video(self, frames: np.ndarray, progress: Progress = None) -> Segmentation:
        """Segment the main person in every frame of ``frames`` (uint8 ``[T, H, W, 3]`` RGB)."""

    def segment_image(self, image: np.ndarray) -> Segmentation:
        """Segment the main person in one uint8 ``[H, W, 3]`` RGB image; returns ``T == 1``."""


def _check_frames(frames, ndim: int, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != ndim or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        shape = "[T,H,W,3]" if ndim == 4 else "[H,W,3]"
        raise InputError(f"{what} must be a uint8 RGB array of shape {shape}, got {frames.dtype} {frames.shape}")
    if ndim == 4 and frames.shape[0] == 0:
        raise InputError(f"{what} has no frames")
    return np.ascontiguousarray(frames)




def _mask_bbox(binary: np.ndarray) -> tuple[float, float, float, float] | None:
    ys = np.flatnonzero(binary.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(binary.any(axis=0))
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)
