"""The model's cue inputs for a :class:`~directanimator.cues.settings.CueSettings`: the one place that builds the
pose and face cue frames of each mode (the paper's, or a Table 3 ablation) and leaves out dropped cues. The
trainers' precompute and the reproduction's evaluation both call it, so a model is evaluated on the cues it was
trained on.
"""

from __future__ import annotations

import numpy as np

from .face_cue import in_place_face_cue
from .pose import rgb_pose_cue, skeleton_pose_cue
from ..errors import InputError
from .settings import CueSettings
from .skeleton_video import SKELETON_VIDEO_MODES

__all__ = ["cue_inputs", "face_frames", "pose_frames"]


def pose_frames(cues, settings: CueSettings, skeleton: np.ndarray | None = None) -> np.ndarray:
    """The pose cue video of ``settings.pose_cue`` for ``cues`` (a ``DrivingCues``); the skeleton-video modes
    ("openpose", "openpose_noisy") take the skeleton frames read beside the driving video
    (``directanimator.cues.skeleton_video.read_skeleton_cue``) as ``skeleton``."""
    if settings.pose_cue in SKELETON_VIDEO_MODES:
        if skeleton is None or len(skeleton) != cues.num_frames or skeleton.shape[1:3] != (cues.height, cues.width):
            raise InputError(f"pose cue {settings.pose_cue!r} needs its skeleton video frames, "
                             f"[{cues.num_frames}, {cues.height}, {cues.width}, 3] (read_skeleton_cue)")
        return skeleton
    if settings.pose_cue == "rgb":
        return rgb_pose_cue(cues.driving, cues.driving_masks, cues.dropped)
    if settings.pose_cue == "skeleton":
        return skeleton_pose_cue(cues.driving_masks, cues.dropped)
    return cues.pose_cue


def face_frames(cues, settings: CueSettings) -> np.ndarray:
    """The face cue video of ``settings.face_cue`` for ``cues``."""
    if settings.face_cue == "in_place":
        return in_place_face_cue(cues.driving, cues.face_boxes, enlarge=settings.face_enlarge)
    return cues.face_cue


def cue_inputs(cues, settings: CueSettings, skeleton: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The pipeline's cue arguments (``pose_cue``, ``face_cue``, ``body_location``, ``face_location``) for
    ``settings``, without the cues it drops. ``cues`` must have been extracted (or rebuilt) with the same low-pass,
    face enlarge and grid: those shape ``cues.pose_cue``, ``face_cue`` and ``body_location`` themselves."""
    inputs = {"pose_cue": pose_frames(cues, settings, skeleton), "face_cue": face_frames(cues, settings),
              "body_location": cues.body_location, "face_location": cues.face_location}
    if "face" in settings.drop:
        inputs.pop("face_cue")
        inputs.pop("face_location")
    if "location" in settings.drop:
        inputs.pop("body_location")
        inputs.pop("face_location", None)
    return inputs
