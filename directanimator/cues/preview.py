"""Preview of the driving cues: one video, panels side by side.

    driving | pose cue | face cue | location (body + face masks over the reference)

Each panel is labelled; a dropped frame (no usable person mask) gets a red ``DROPPED`` on its pose cue, a frame
without a face a red ``NO FACE`` on its face cue, so a user can see at a glance what the model will get.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

PANELS = ("driving", "pose cue", "face cue", "location")
BODY_COLOUR = np.array([40, 220, 90], np.float32)  # green
FACE_COLOUR = np.array([255, 60, 200], np.float32)  # magenta
RED = (235, 30, 30)
WHITE = (255, 255, 255)


def _label(img: np.ndarray, text: str, row: int, colour=WHITE) -> None:
    """Draw ``text`` at the top-left of ``img`` in line ``row`` with a dark outline, readable on any content."""
    height = img.shape[0]
    scale = max(0.35, height / 480.0)
    thickness = max(1, int(round(scale * 1.5)))
    y = int(round((row + 1) * 28 * scale + 4))
    org = (int(round(8 * scale)), y)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def location_overlay(reference: np.ndarray, body: np.ndarray, face: np.ndarray) -> np.ndarray:
    """The reference (dimmed) with the body mask in green and the face mask in magenta, blended by mask value."""
    out = reference.astype(np.float32) * 0.45
    body_alpha = body[..., None].astype(np.float32) * 0.65
    out = out * (1.0 - body_alpha) + BODY_COLOUR * body_alpha
    face_alpha = face[..., None].astype(np.float32) * 0.65
    out = out * (1.0 - face_alpha) + FACE_COLOUR * face_alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def preview_frame(cues, t: int) -> np.ndarray:
    """One preview frame ``[H, 4 * W, 3]`` uint8 for frame ``t`` of ``cues`` (the app's scrubber).

    Args:
        cues: a :class:`~directanimator.cues.DrivingCues`.
        t: frame index (negative counts from the end).
    """
    num = cues.num_frames
    if not -num <= t < num:
        raise IndexError(f"frame {t} is out of range for {num} frames")
    t = t % num
    # Copies: the labels are drawn in place and must not end up in the cues themselves.
    driving = cues.driving[t].copy()
    pose = np.repeat(cues.pose_cue[t][..., None], 3, axis=-1)
    face = cues.face_cue[t].copy()
    location = location_overlay(cues.reference, cues.body_location[t], cues.face_location[t])
    panels = [driving, pose, face, location]
    for panel, name in zip(panels, PANELS):
        _label(panel, name, 0)
    _label(driving, f"{t + 1}/{num}", 1)
    if cues.dropped[t]:
        _label(pose, "DROPPED", 1, RED)
    if cues.no_face[t]:
        _label(face, "NO FACE", 1, RED)
    return np.concatenate(panels, axis=1)


def render_preview(cues, path=None, fps: float | None = None, progress=None) -> np.ndarray:
    """Render the whole preview clip; optionally write it as an mp4 (with the driving clip's audio, if any).

    Args:
        cues: a :class:`~directanimator.cues.DrivingCues`.
        path: where to write the mp4 (atomic); None to only return the frames.
        fps: frame rate of the written video (default: the cues' fps).
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        ``[T, H, 4 * W, 3]`` uint8 preview frames.
    """
    frames = np.empty((cues.num_frames, cues.height, 4 * cues.width, 3), np.uint8)
    for t in range(cues.num_frames):
        frames[t] = preview_frame(cues, t)
        if progress is not None:
            progress(0.5 * (t + 1) / cues.num_frames, "rendering the preview")
    if path is not None:
        from ..video import write_video

        source = cues.settings.get("driving_path")
        audio = source if source and cues.settings.get("driving_has_audio") and os.path.isfile(source) else None
        sub = None if progress is None else (lambda f, d="": progress(0.5 + 0.5 * f, "writing the preview"))
        write_video(path, frames, fps or cues.fps, audio_from=audio, preset="veryfast", progress=sub)
    return frames
