"""Person segmentation backends: one foreground mask and one quality score per frame.

The paper (section 3.1, A.2) cuts the driving person out with Grounded SAM and drops frames whose mask is poor.
Two backends sit behind one small protocol (``protocol.py``), chosen by name with :func:`get_segmenter`:

- ``"mediapipe"`` (offline default, ``mediapipe_pose.py``): MediaPipe Pose with its segmentation head, optionally
  split over worker processes (``workers.py``).
- ``"grounded-sam"`` (the paper's, ``grounded_sam.py``): Grounding DINO + SAM2 (weights downloaded by the user).

:func:`drop_bad_frames` (``quality.py``) flags the frames the pose cue should not trust.
"""

from __future__ import annotations

from directanimator.errors import InputError

from .grounded_sam import GroundedSamSegmenter, resolve_weights
from .mediapipe_pose import MediaPipeSegmenter, facing_from_landmarks, warm_up_workers
from .protocol import PersonSegmenter, Progress, Segmentation
from .quality import drop_bad_frames
from .workers import shutdown_workers

__all__ = [
    "SEGMENTERS", "GroundedSamSegmenter", "MediaPipeSegmenter", "PersonSegmenter", "Progress", "Segmentation",
    "drop_bad_frames", "facing_from_landmarks", "get_segmenter", "resolve_weights", "shutdown_workers",
    "warm_up_workers",
]

SEGMENTERS: dict[str, type] = {
    "mediapipe": MediaPipeSegmenter,
    "grounded-sam": GroundedSamSegmenter,
}


def get_segmenter(name: str = "mediapipe", **kwargs) -> PersonSegmenter:
    """Build a segmentation backend by name.

    Args:
        name: one of ``SEGMENTERS`` ("mediapipe": offline default; "grounded-sam": the paper's, needs weights).
        **kwargs: passed to the backend's constructor.

    Raises:
        InputError: unknown name, or the backend's weights are missing.
    """
    if name not in SEGMENTERS:
        raise InputError(f"unknown segmenter '{name}': choose one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)
