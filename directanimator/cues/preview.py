"""Pictures of the driving cues: the CLI's preview video, the app's frame scrubber and cue views, and the drawing
they share (pure numpy / OpenCV on uint8 RGB arrays).

The preview video (``render_preview``, one ``preview_frame`` per frame) puts the panels side by side:

    driving | pose cue | face cue | location (body + face masks over the reference)

Each panel is labelled; a dropped frame (no usable person mask) gets a red ``DROPPED`` on its pose cue, a frame
without a face a red ``NO FACE`` on its face cue, so a user can see at a glance what the model will get. The app's
scrubber (``compose_preview``) shows the same at a small size, with the driving person's mask outline and face box
and an alignment panel (``silhouette_overlay``).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..video import to_uint8_frames, write_video

PANELS = ("driving", "pose cue", "face cue", "location")

# The colours of every view, chosen to stay distinct from skin and from each other.
BODY_COLOUR = (40, 220, 90)  # location cue: the body, green
FACE_COLOUR = (255, 60, 200)  # location cue: the face, magenta
FACE_BOX_COLOUR = (255, 170, 0)  # the face box on a driving frame, orange
SILHOUETTE_COLOUR = (64, 150, 255)  # the aligned driving silhouette, blue
MASK_COLOUR = (255, 40, 160)  # person mask outlines (and the app's mask painting), pink
RED = (235, 30, 30)
WHITE = (255, 255, 255)


# --- drawing ------------------------------------------------------------------------------------------------------


def label(image: np.ndarray, text: str, row: int = 0, colour=WHITE, scale: float | None = None) -> np.ndarray:
    """A copy of ``image`` with ``text`` at the top left in line ``row``, outlined dark so it reads on any content.

    ``scale`` is the font scale (default: the image height / 480, at least 0.35).
    """
    out = np.ascontiguousarray(image).copy()
    scale = max(0.35, out.shape[0] / 480.0) if scale is None else float(scale)
    thickness = max(1, int(round(scale * 1.5)))
    org = (int(round(8 * scale)), int(round((row + 1) * 28 * scale + 4)))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return out


def location_overlay(reference: np.ndarray, body: np.ndarray, face: np.ndarray) -> np.ndarray:
    """The reference (dimmed) with the body mask in green and the face mask in magenta, blended by mask value."""
    out = reference.astype(np.float32) * 0.45
    body_alpha = body[..., None].astype(np.float32) * 0.65
    out = out * (1.0 - body_alpha) + np.asarray(BODY_COLOUR, np.float32) * body_alpha
    face_alpha = face[..., None].astype(np.float32) * 0.65
    out = out * (1.0 - face_alpha) + np.asarray(FACE_COLOUR, np.float32) * face_alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour=MASK_COLOUR, alpha: float = 0.5) -> np.ndarray:
    """Tint ``image`` [H,W,3] uint8 with ``colour`` where ``mask`` [H,W] in [0,1] is on (soft masks blend softly)."""
    m = np.clip(np.asarray(mask, np.float32), 0, 1)[..., None] * alpha
    tint = np.asarray(colour, np.float32)[None, None]
    return (image.astype(np.float32) * (1 - m) + tint * m).round().astype(np.uint8)


def silhouette_overlay(reference: np.ndarray, warped_masks: np.ndarray, reference_mask: np.ndarray | None = None):
    """The aligned driving silhouettes [T,H,W] drawn over the reference (blue fill, reference outline in pink),
    so a user sees at a glance whether scale and offset match the reference person."""
    ref = fit_to(reference, warped_masks.shape[1:])
    out = np.empty(warped_masks.shape + (3,), np.uint8)
    contours = []
    if reference_mask is not None:
        binary = (fit_to(reference_mask, warped_masks.shape[1:]) > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for t in range(len(warped_masks)):
        frame = overlay_mask(ref, warped_masks[t], SILHOUETTE_COLOUR, 0.5)
        if contours:
            cv2.drawContours(frame, contours, -1, MASK_COLOUR, max(1, ref.shape[0] // 200))
        out[t] = frame
    return out


def draw_box(image: np.ndarray, box, colour=FACE_BOX_COLOUR) -> np.ndarray:
    """A copy of ``image`` with the (x0, y0, x1, y1) box outlined; NaN boxes draw nothing."""
    out = image.copy()
    box = np.asarray(box, np.float32)
    if np.isfinite(box).all():
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(1, image.shape[0] // 150))
    return out


def draw_outline(image: np.ndarray, mask: np.ndarray, colour=MASK_COLOUR) -> np.ndarray:
    """A copy of ``image`` with the outline of ``mask > 0.5`` drawn on it."""
    out = np.ascontiguousarray(image).copy()
    contours, _ = cv2.findContours((np.asarray(mask) > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, max(1, image.shape[0] // 200))
    return out


def fit_to(image: np.ndarray, hw) -> np.ndarray:
    """Resize ``image`` ([H,W] or [H,W,C]) to exactly ``hw`` (a no-op when it already has that size)."""
    h, w = int(hw[0]), int(hw[1])
    if image.shape[:2] == (h, w):
        return image
    interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """One frame, grayscale uint8 [H,W] or a float mask in [0,1], as RGB uint8 [H,W,3]; RGB passes through
    (``directanimator.video.to_uint8_frames`` on a batch of one)."""
    return to_uint8_frames(np.asarray(frame)[None])[0]


def hstack(panels, height: int) -> np.ndarray:
    """Panels (RGB, gray or masks, any sizes) scaled to ``height`` and placed side by side with a 4-px gap."""
    height = int(height) - int(height) % 2
    gap = np.full((height, 4, 3), 255, np.uint8)
    row = []
    for p in panels:
        p = to_rgb(p)
        w = max(2, round(p.shape[1] * height / p.shape[0]))
        row += [fit_to(p, (height, w - w % 2)), gap]
    return np.concatenate(row[:-1], axis=1)


def side_by_side_video(columns, height: int = 256) -> np.ndarray:
    """Videos [T,H,W(,3)] of equal length -> one [T,height,W',3] video with the columns next to each other."""
    n = min(len(c) for c in columns)
    return np.stack([hstack([c[t] for c in columns], height) for t in range(n)])


def chosen_person_note(cues) -> str | None:
    """"person 2 of 3" when the driving video showed several people (``cues.settings["person"]``), else None."""
    record = cues.settings.get("person") if isinstance(cues.settings, dict) else None
    if not isinstance(record, dict) or not record.get("chosen") or len(record.get("people") or []) < 2:
        return None
    return f"person {record['chosen']} of {len(record['people'])}"


# --- the app's frame scrubber -------------------------------------------------------------------------------------


def compose_preview(cues, i: int, height: int, pose_frame: np.ndarray | None = None, warped_mask=None):
    """One frame of every cue side by side, built at preview size (everything is shrunk first, so a frame costs a
    few milliseconds): driving (mask outline, face box) | pose cue | face cue | location cues over the reference |
    aligned driving silhouette over the reference. ``pose_frame`` replaces frame ``i``'s pose cue (live low-pass
    preview); ``warped_mask`` is frame ``i``'s driving mask warped onto the reference."""
    scale = height / cues.height
    w = max(2, round(cues.width * scale))
    text = max(0.35, height / 720.0)  # smaller than the preview video's labels: five panels share the width

    def small(a):
        return cv2.resize(np.ascontiguousarray(a), (w, height), interpolation=cv2.INTER_AREA)

    driving = draw_outline(small(cues.driving[i]), small(cues.driving_masks[i]))
    driving = draw_box(driving, np.asarray(cues.face_boxes[i], np.float32) * scale, FACE_BOX_COLOUR)
    pose = to_rgb(small(cues.pose_cue[i] if pose_frame is None else pose_frame))
    face = small(cues.face_cue[i])
    ref = small(cues.reference)
    location = location_overlay(ref, small(cues.body_location[i]), small(cues.face_location[i]))
    note = chosen_person_note(cues)
    title = f"driving {i + 1}/{cues.num_frames}" + (f", {note}" if note else "")
    panels = [label(driving, title, scale=text), label(pose, "pose cue", scale=text),
              label(face, "face cue", scale=text), label(location, "location", scale=text)]
    if warped_mask is not None:
        panels.append(label(silhouette_overlay(ref, small(warped_mask)[None], small(cues.reference_mask))[0],
                            "alignment", scale=text))
    if cues.dropped[i]:
        panels[1] = label(panels[1], "DROPPED", 1, RED, scale=text)
    if cues.no_face[i]:
        panels[2] = label(panels[2], "NO FACE", 1, RED, scale=text)
    return hstack(panels, height)


# --- the preview video ----------------------------------------------------------------------------------------------


def preview_frame(cues, t: int) -> np.ndarray:
    """One preview frame ``[H, 4 * W, 3]`` uint8 for frame ``t`` of ``cues``.

    Args:
        cues: a :class:`~directanimator.cues.DrivingCues`.
        t: frame index (negative counts from the end).
    """
    num = cues.num_frames
    if not -num <= t < num:
        raise IndexError(f"frame {t} is out of range for {num} frames")
    t = t % num
    # label() draws on copies: the labels never end up in the cues themselves.
    pose = np.repeat(cues.pose_cue[t][..., None], 3, axis=-1)
    location = location_overlay(cues.reference, cues.body_location[t], cues.face_location[t])
    driving, pose, face, location = (label(panel, name) for panel, name in
                                     zip((cues.driving[t], pose, cues.face_cue[t], location), PANELS))
    driving = label(driving, f"{t + 1}/{num}", 1)
    note = chosen_person_note(cues)
    if note:
        # Several people: outline the one who drives, so the preview shows who was followed.
        driving = label(draw_outline(driving, cues.driving_masks[t]), note, 2, MASK_COLOUR)
    if cues.dropped[t]:
        pose = label(pose, "DROPPED", 1, RED)
    if cues.no_face[t]:
        face = label(face, "NO FACE", 1, RED)
    return np.concatenate([driving, pose, face, location], axis=1)


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
        source = cues.settings.get("driving_path")
        audio = source if source and cues.settings.get("driving_has_audio") and os.path.isfile(source) else None
        sub = None if progress is None else (lambda f, d="": progress(0.5 + 0.5 * f, "writing the preview"))
        write_video(path, frames, fps or cues.fps, audio_from=audio, preset="veryfast", progress=sub)
    return frames
