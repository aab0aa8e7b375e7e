"""Face cue (paper section 3.1, appendix A.2): the driving face, cropped square, enlarged and centred.

In many driving frames the face is small; cropping around it and resizing the crop to the cue resolution gives
the model a high-resolution view of the expression (the paper's ablation S2 shows enlarging + centring matters).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["crop_square", "face_cue", "in_place_face_cue", "square_around"]


def square_around(box, enlarge: float) -> tuple[int, int, int]:
    """``(left, top, side)`` in pixels of the square centred on ``box`` (x0, y0, x1, y1), side ``enlarge`` x the
    box's longer side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(1, int(round(enlarge * max(x1 - x0, y1 - y0))))
    # Box edges are continuous coordinates (pixel i spans [i, i + 1)), as video.fit_transform maps them.
    return int(round((x0 + x1) / 2.0 - side / 2.0)), int(round((y0 + y1) / 2.0 - side / 2.0)), side


def _checked(frames, boxes, enlarge: float, caller: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, boxes [T, 4] float32, no_face [T] bool)`` after checking shapes and ``enlarge``; a box with a NaN
    or no area means no face."""
    frames = np.asarray(frames)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if frames.ndim != 4 or len(boxes) != len(frames):
        raise ValueError(f"{caller} expects frames [T,H,W,3] and boxes [T,4], got {frames.shape}, {boxes.shape}")
    if not enlarge > 0:
        raise ValueError(f"face enlarge factor must be > 0, got {enlarge}")
    no_face = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    return frames, boxes, no_face


def crop_square(frame: np.ndarray, box: np.ndarray, enlarge: float) -> np.ndarray:
    """Square crop of ``frame`` centred on ``box`` (x0, y0, x1, y1), side ``enlarge`` x the box's longer side.

    Parts of the square outside the frame are zero, so the face stays centred even at the image border.
    """
    left, top, side = square_around(box, enlarge)
    height, width = frame.shape[:2]
    crop = np.zeros((side, side) + frame.shape[2:], dtype=frame.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, width), min(top + side, height)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = frame[sy0:sy1, sx0:sx1]
    return crop


def face_cue(
    frames: np.ndarray,
    boxes: np.ndarray,
    enlarge: float = 1.6,
    out_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Face cue frames and the no-face flags.

    Args:
        frames: driving frames ``[T, H, W, 3]`` uint8 RGB.
        boxes: face boxes ``[T, 4]`` float (x0, y0, x1, y1) in pixels of ``frames`` (smoothed over time by the
            caller); a row with any NaN means no face in that frame.
        enlarge: the square crop's side is ``enlarge`` x max(box width, box height) (>= 1; 1.6 shows the whole
            head and a bit of neck and hair).
        out_hw: ``(height, width)`` of the cue frames; defaults to the frame size. The crop is resized to
            ``min(height, width)`` square and centred; the rest is zero.

    Returns:
        ``(cue [T, out_h, out_w, 3] uint8, no_face [T] bool)``; frames without a face are all zero.
    """
    frames, boxes, no_face = _checked(frames, boxes, enlarge, "face_cue")
    out_h, out_w = out_hw if out_hw is not None else frames.shape[1:3]
    side = min(out_h, out_w)
    top, left = (out_h - side) // 2, (out_w - side) // 2
    cue = np.zeros((len(frames), out_h, out_w, 3), dtype=np.uint8)
    for t in np.flatnonzero(~no_face):
        crop = crop_square(frames[t], boxes[t], enlarge)
        # INTER_AREA averages when shrinking (no aliasing); for enlarging it degenerates towards nearest
        # neighbour, so bilinear is used there.
        interp = cv2.INTER_AREA if crop.shape[0] >= side else cv2.INTER_LINEAR
        cue[t, top : top + side, left : left + side] = cv2.resize(crop, (side, side), interpolation=interp)
    return cue, no_face


def in_place_face_cue(frames: np.ndarray, boxes: np.ndarray, enlarge: float = 1.6) -> np.ndarray:
    """The paper's "face cue without enlarging and centring" ablation (Table 3, S2): the same square region around
    the face as :func:`face_cue` crops, left where it is and at its size; everything else is zero.

    Args:
        frames: driving frames ``[T, H, W, 3]`` uint8 RGB.
        boxes: face boxes ``[T, 4]`` (x0, y0, x1, y1) in pixels of ``frames``; a row with NaN = no face (all zero).
        enlarge: side of the kept square in face-box sides, as in :func:`face_cue`.

    Returns:
        ``[T, H, W, 3]`` uint8.
    """
    frames, boxes, no_face = _checked(frames, boxes, enlarge, "in_place_face_cue")
    height, width = frames.shape[1:3]
    cue = np.zeros_like(frames)
    for t in np.flatnonzero(~no_face):
        left, top, side = square_around(boxes[t], enlarge)
        sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
        cue[t, sy0:sy1, sx0:sx1] = frames[t, sy0:sy1, sx0:sx1]
    return cue
