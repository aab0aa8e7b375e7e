"""The Animate tab's cue handlers: extract the cues, scrub through them, edit them without re-segmenting, and the
cue views they show (videos in the session folder, the frame preview, the report line).

directanimator.cues imports torch (about a second at start-up): its modules are imported inside the handlers, which
only run once the page is up.
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from directanimator.video import write_video
from ui import text
from ui.editor import editor_value, mask_from_editor
from ui.session import Session, need_cues
from ui.server import ui_errors

PREVIEW_HEIGHT = 256


# --- cue views ----------------------------------------------------------------------------------------------------


def write_mp4(session, name, frames, fps, audio_from=None, preset="veryfast"):
    """Write frames (RGB, gray or masks) as an H.264 mp4 in the session folder (fast preset for previews)."""
    return write_video(session.path(name), frames, fps, audio_from=audio_from, preset=preset)


def warped_silhouettes(cues, i=None):
    """Driving masks (all, or frame ``i`` as a batch of one) warped onto the reference by the current alignment."""
    from directanimator.cues.location import warp_masks

    masks = cues.driving_masks if i is None else cues.driving_masks[i : i + 1]
    return warp_masks(masks, cues.transform, cues.reference_mask.shape[:2])


def cue_videos(session, which=("pose", "face", "location", "silhouette")):
    """mp4 paths for the cue views in ``which`` (``gr.skip()`` for the others, which keep what they show)."""
    from directanimator.cues.preview import location_overlay, silhouette_overlay

    c = session.cues
    out = dict.fromkeys(("pose", "face", "location", "silhouette"), gr.skip())
    if "pose" in which:
        out["pose"] = write_mp4(session, "pose_cue.mp4", c.pose_cue, c.fps)
    if "face" in which:
        out["face"] = write_mp4(session, "face_cue.mp4", c.face_cue, c.fps)
    if "location" in which:
        frames = [location_overlay(c.reference, b, f) for b, f in zip(c.body_location, c.face_location)]
        out["location"] = write_mp4(session, "location.mp4", np.stack(frames), c.fps)
    if "silhouette" in which:
        frames = silhouette_overlay(c.reference, warped_silhouettes(c), c.reference_mask)
        out["silhouette"] = write_mp4(session, "silhouette.mp4", frames, c.fps)
    return [out["pose"], out["face"], out["location"], out["silhouette"]]


def frame_panels(cues, i, pose_frame=None):
    """One frame of every cue side by side, at preview size (``directanimator.cues.preview.compose_preview``)."""
    from directanimator.cues.preview import compose_preview

    i = int(np.clip(i, 0, cues.num_frames - 1))
    return compose_preview(cues, i, PREVIEW_HEIGHT, pose_frame, warped_silhouettes(cues, i)[0])


def frame_outputs(session, i):
    """Preview image and the frame's face box (for the override boxes)."""
    c = session.cues
    i = int(np.clip(i, 0, c.num_frames - 1))
    box = [None if np.isnan(v) else round(float(v), 1) for v in c.face_boxes[i]]
    return [frame_panels(c, i), *box]


def frame_report(c):
    """The line above the cue views: dropped and no-face frames, the working size the boxes are given in, and the
    shot used when the driving video has several."""
    return (text.frame_report(c.dropped, c.no_face, c.num_frames, c.fps)
            + f" Working size {c.width}×{c.height} px (face boxes are in these pixels)."
            + text.shot_report(c.settings.get("shots")))


def mask_editor(image, mask):
    """Mask editor value for an image (padded to the editor's square canvas)."""
    return editor_value(image, mask)


def all_outputs(session, frame=0):
    """Everything the Animate tab shows for freshly extracted cues."""
    c = session.cues
    report = frame_report(c)
    scrub = gr.update(maximum=max(1, c.num_frames - 1), value=min(int(frame), c.num_frames - 1), interactive=True)
    ref_editor = mask_editor(c.reference, c.reference_mask)
    return [session, *cue_videos(session), report, scrub, ref_editor, *frame_outputs(session, frame)]


# --- extraction and the scrubber ----------------------------------------------------------------------------------


@ui_errors
def extract_cues(reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames, fps,
                 session, shot="longest", progress=gr.Progress(), *, person="largest", reference_person="largest"):
    """Segment, find faces and build the three driving cues; show them. The shot (``shot``: longest, all or N) is
    chosen on the clip as decoded, then it is resampled to ``fps`` (0 = keep) and cut to its first ``max_frames``
    frames (0 = all). ``person`` / ``reference_person``: who drives and who is animated when the clip or the photo
    shows several people (``ui.people`` passes a click)."""
    from directanimator.cues import extract_cues as extract

    if not reference:
        raise gr.Error("Upload a reference image (a photo of the person to animate).")
    if not driving:
        raise gr.Error("Upload a driving video (the motion to copy).")
    progress(0, desc="reading the driving video")
    cues = extract(
        reference, driving, segmenter=segmenter, face_detector=face_detector,
        lowpass=float(lowpass), face_enlarge=float(face_enlarge), grid=int(grid),
        fps=float(fps) if fps else None, max_frames=int(max_frames) if max_frames else None, shot=shot or "longest",
        person=person, reference_person=reference_person,
        progress=lambda f, desc="extracting cues": progress(f, desc=desc),
    )
    session = session if isinstance(session, Session) else Session()  # only now: a failed first try leaves no files
    session.cues, session.auto_transform = cues, cues.transform
    for warning in cues.settings.get("warnings", []):
        gr.Warning(warning)
    session.editor_frame = None
    return [*all_outputs(session), None, 1.0, 0.0, 0.0, shot_choices(cues)]


def shot_choices(cues):
    """The Shot dropdown once the shots are known: longest, all and one entry per shot found."""
    found = cues.settings.get("shots", {}).get("found", [])
    return gr.update(choices=["longest", "all", *(str(i + 1) for i in range(len(found)))])


@ui_errors
def show_frame(session, frame):
    """The scrubber moved: that frame of every cue, and its face box."""
    need_cues(session)
    return frame_outputs(session, frame)


@ui_errors
def preview_lowpass(session, strength, frame):
    """Live preview while the slider moves: recompute the pose cue of the shown frame only."""
    from directanimator.cues.pose import pose_cue

    c = need_cues(session)
    i = int(np.clip(frame, 0, c.num_frames - 1))
    pose = pose_cue(c.driving[i : i + 1], c.driving_masks[i : i + 1], float(strength), c.dropped[i : i + 1])[0]
    return frame_panels(c, i, pose_frame=pose)


# --- edits (no re-segmentation) -----------------------------------------------------------------------------------


def rebuild(session, frame, which, **changes):
    """Apply edits with ``rebuild_cues`` (no re-segmentation) and refresh the views in ``which``."""
    from directanimator.cues import rebuild_cues

    with session.lock:
        session.cues = c = rebuild_cues(session.cues, **changes)
        report = frame_report(c)
        return [*cue_videos(session, which), report, *frame_outputs(session, frame)]


def alignment(session, scale, dx, dy, reference_mask=None, driving_masks=None, dropped=None):
    """The transform to use: the automatic one (in the cues' alignment mode, ``framing.cue_alignment``; re-estimated
    when masks change) or, when the user moved the alignment sliders, that one adjusted by them
    (``SimilarityTransform.adjusted``: scaled by ``scale`` about the reference person's centre, shifted by (dx, dy)
    x the frame size)."""
    from directanimator.cues.framing import cue_alignment
    from directanimator.cues.location import mask_centre

    c = session.cues
    ref_mask = c.reference_mask if reference_mask is None else reference_mask
    if reference_mask is not None or driving_masks is not None:
        masks = c.driving_masks if driving_masks is None else driving_masks
        flags = c.dropped if dropped is None else dropped
        session.auto_transform = cue_alignment(c.settings, ref_mask, c.driving, masks, c.face_boxes, flags).transform
    if float(scale) == 1.0 and float(dx) == 0.0 and float(dy) == 0.0:
        return "auto"
    return session.auto_transform.adjusted(scale, dx, dy, mask_centre(ref_mask), (c.height, c.width))


@ui_errors
def set_lowpass(session, strength, frame):
    """The full pose cue at the new low-pass strength (on slider release)."""
    need_cues(session)
    return rebuild(session, frame, ("pose",), lowpass=float(strength))


@ui_errors
def set_face_enlarge(session, enlarge, frame):
    """The face cue with a tighter or looser crop around each face box."""
    need_cues(session)
    return rebuild(session, frame, ("face",), face_enlarge=float(enlarge))


@ui_errors
def set_face_box(session, frame, x0, y0, x1, y1, all_frames):
    """Override the face box of the shown frame (or of every frame) with the typed one (driving-frame pixels)."""
    c = need_cues(session)
    box = np.array([np.nan if v is None else v for v in (x0, y0, x1, y1)], np.float32)
    if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise gr.Error("A face box needs x0 < x1 and y0 < y1 (pixels of the driving frame shown on the left).")
    boxes = np.repeat(box[None], c.num_frames, 0) if all_frames else {int(frame): box}
    return rebuild(session, frame, ("face", "location"), face_boxes=boxes)


@ui_errors
def set_alignment(session, scale, dx, dy, grid, frame):
    """Location cue with the user's scale/offset on top of the automatic alignment, and the softening grid."""
    need_cues(session)
    return rebuild(session, frame, ("location", "silhouette"), transform=alignment(session, scale, dx, dy),
                   grid=int(grid))


@ui_errors
def set_reference_mask(session, editor, scale, dx, dy, frame):
    """Use the painted reference mask (re-estimates the alignment, keeps the user's override on top)."""
    c = need_cues(session)
    mask = mask_from_editor(editor, c.reference_mask.shape)
    if mask is None or mask.sum() == 0:
        raise gr.Error("The edited reference mask is empty: paint the person with the brush.")
    transform = alignment(session, scale, dx, dy, reference_mask=mask)
    return rebuild(session, frame, ("location", "silhouette"), reference_mask=mask, transform=transform)


@ui_errors
def load_frame_mask(session, frame):
    """Put the shown driving frame and its person mask into the mask editor."""
    c = need_cues(session)
    session.editor_frame = i = int(np.clip(frame, 0, c.num_frames - 1))
    return gr.update(value=mask_editor(c.driving[i], c.driving_masks[i]), label=f"Mask of driving frame {i}")


@ui_errors
def set_frame_mask(session, editor, scale, dx, dy, frame):
    """Use the painted mask for the driving frame loaded in the editor (an empty mask drops the frame)."""
    c = need_cues(session)
    mask = mask_from_editor(editor, c.driving_masks.shape[1:])
    if mask is None or session.editor_frame is None:
        raise gr.Error("Nothing to apply: press 'Edit the mask of the shown frame' first.")
    i = session.editor_frame
    masks, dropped = c.driving_masks.copy(), c.dropped.copy()
    masks[i], dropped[i] = mask, mask.sum() == 0
    if dropped.all():
        raise gr.Error("That would leave no frame with a person; paint the person or undo with Extract cues.")
    transform = alignment(session, scale, dx, dy, driving_masks=masks, dropped=dropped)
    return rebuild(session, frame, ("pose", "location", "silhouette"), driving_masks=masks, dropped=dropped,
                   transform=transform)
