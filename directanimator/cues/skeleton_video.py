"""Skeleton-video pose cues: an OpenPose-style skeleton video stored beside a driving video (the synthetic world
writes ``X.openpose.mp4`` and ``X.openpose_noisy.mp4`` beside ``X.mp4``), read and fitted exactly as the cue
extraction reads and fits the driving frames, so the skeleton lies on the driving figure frame by frame.

The pose-cue modes "openpose" (clean) and "openpose_noisy" (with pose-estimator failures) use it
(``directanimator.cues.variants.pose_frames``); no skeleton estimator runs here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from directanimator.errors import InputError

__all__ = ["SKELETON_VIDEO_MODES", "skeleton_video_path", "read_skeleton_cue"]

SKELETON_VIDEO_MODES = ("openpose", "openpose_noisy")


def skeleton_video_path(driving_path, mode: str) -> Path:
    """The skeleton video beside ``driving_path`` for pose-cue ``mode`` (one of ``SKELETON_VIDEO_MODES``)."""
    if mode not in SKELETON_VIDEO_MODES:
        raise InputError(f"no skeleton video for pose cue {mode!r}; use one of {', '.join(SKELETON_VIDEO_MODES)}")
    p = Path(driving_path)
    return p.with_name(p.stem + f".{mode}.mp4")


def read_skeleton_cue(driving_path, mode: str, height: int, width: int, num_frames: int | None = None,
                      fps: float | None = None) -> np.ndarray:
    """The skeleton video of ``driving_path`` as a pose cue ``[T, height, width, 3]`` uint8, resampled to
    ``num_frames`` / ``fps`` and padded to the working size as ``extract_cues`` does with the driving video."""
    from directanimator.video import fit_frames, read_video, resample_video

    path = skeleton_video_path(driving_path, mode)
    if not path.is_file():
        raise InputError(f"pose cue {mode!r} needs the skeleton video {path}; make the world with "
                         "`python -m trainers.synthetic --skeletons`")
    video = read_video(str(path), max_side=max(1024, 2 * max(height, width)))
    if fps is not None or num_frames is not None:
        video = resample_video(video, fps=fps, num_frames=num_frames)
    return fit_frames(video.frames, height, width, policy="pad")
