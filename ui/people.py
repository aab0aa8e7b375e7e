"""The Animate tab's people pickers: when the driving clip's first frame or the reference photo shows several people,
a picture of it with every person's box outlined and numbered (the chosen one highlighted), a line saying who was
chosen, and a click on a person that extracts the cues again for that one (``directanimator.cues.people``: people
are numbered largest first; a click on background gets "no person there").

A choice is a point in the pixels of the picture shown, which are those of the working-size frames the cues hold
(``cues.driving[0]``, ``cues.reference``); ``extract_cues`` records it in ``cues.settings["person"]`` and
``["reference_person"]``, so it is saved in the cue folder.
"""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np

from ui import cue_handlers
from ui.server import ui_errors
from ui.session import need_cues

# role -> (the extract_cues argument and settings key, what the chosen person does, where the people are)
ROLES = {
    "driving": ("person", "drives", "in the first driving frame"),
    "reference": ("reference_person", "is animated", "in the reference photo"),
}
OTHER_COLOUR = (255, 255, 255)  # the boxes of the people not chosen; the chosen one is in the mask colour


def people_picture(image: np.ndarray, boxes, chosen: int, mask: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``image`` with each person's box (x0, y0, x1, y1; person n is ``boxes[n - 1]``) outlined and its
    number on a tag just above the box (inside it when the box touches the top): the chosen person's box, tag and
    ``mask`` outline in the mask colour, the others' in white. Lines and tags have a dark edge, so they read on any
    content."""
    from directanimator.cues.preview import MASK_COLOUR, draw_outline

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    line = max(2, h // 170)
    scale = max(0.5, h / 400.0)
    thickness = max(2, int(round(scale * 2)))
    if mask is not None:
        out = draw_outline(out, mask, MASK_COLOUR)
    for n in sorted(range(1, len(boxes) + 1), key=lambda n: n == chosen):  # the chosen one last, on top
        colour = MASK_COLOUR if n == chosen else OTHER_COLOUR
        x0, y0, x1, y1 = (int(round(float(v))) for v in boxes[n - 1])
        x0, x1 = (int(v) for v in np.clip([x0, x1], 0, w - 1))
        y0, y1 = (int(v) for v in np.clip([y0, y1], 0, h - 1))
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 0), line + 2, cv2.LINE_AA)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, line, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(str(n), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        pad = max(3, th // 3)
        tag_w, tag_h = tw + 2 * pad, th + base + 2 * pad
        tx0 = min(max(0, x0 - line // 2), w - tag_w - 1)
        ty0 = y0 - tag_h if y0 - tag_h >= 0 else min(y0, h - tag_h - 1)
        cv2.rectangle(out, (tx0 - 1, ty0 - 1), (tx0 + tag_w + 1, ty0 + tag_h + 1), (0, 0, 0), -1)
        cv2.rectangle(out, (tx0, ty0), (tx0 + tag_w, ty0 + tag_h), colour, -1)
        cv2.putText(out, str(n), (tx0 + pad, ty0 + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness,
                    cv2.LINE_AA)
    return out


def people_found(cues, role: str):
    """(boxes, chosen number) of the people ``extract_cues`` found for ``role``; None when there was one (or no
    record: cues made before people were told apart)."""
    found = cues.settings.get(ROLES[role][0]) or {}
    boxes = found.get("people") or []
    return (boxes, int(found["chosen"])) if len(boxes) > 1 else None


def people_line(count: int, chosen: int, role: str) -> str:
    """E.g. '**3 people** in the first driving frame; person 1 drives — click another to choose.'"""
    _, does, where = ROLES[role]
    return f"**{count} people** {where}; person {chosen} {does} — click another to choose."


@ui_errors
def show_people(session):
    """After an extraction: the line and the two pictures, each shown only where several people were found."""
    c = need_cues(session)
    lines, pictures = [], []
    for role, image, mask in (("driving", c.driving[0], c.driving_masks[0]),
                              ("reference", c.reference, c.reference_mask)):
        found = people_found(c, role)
        if found is None:
            pictures.append(gr.update(value=None, visible=False))
            continue
        boxes, chosen = found
        lines.append(people_line(len(boxes), chosen, role))
        pictures.append(gr.update(value=people_picture(image, boxes, chosen, mask), visible=True))
    return [gr.update(value="  \n".join(lines), visible=bool(lines)), *pictures]


def choose(inputs, session, shot, role, point, progress):
    """Extract again with the person at ``point`` (x, y in the picture's pixels) in ``role``; the other role keeps
    its chosen person. The inputs must be those of the cues shown (the point means a person in their frames)."""
    c = need_cues(session)
    reference, driving = inputs[0], inputs[1]
    if (str(reference), str(driving)) != (c.settings.get("reference_path"), c.settings.get("driving_path")):
        raise gr.Error("The reference image or the driving video changed since the cues were extracted: press "
                       "Extract cues, then click a person.", print_exception=False)
    if point is None:  # gradio's click landed beside the picture (in its frame)
        raise gr.Error("Click on one of the people outlined in the picture.", print_exception=False)
    chosen = {}
    for r, (key, _, _) in ROLES.items():
        found = people_found(c, r)
        chosen[key] = "largest" if found is None else found[1]
    chosen[ROLES[role][0]] = tuple(float(v) for v in point)
    return cue_handlers.extract_cues(*inputs, session, shot, progress, **chosen)


@ui_errors
def choose_driving_person(reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames,
                          fps, session, shot, evt: gr.SelectData, progress=gr.Progress()):
    """A click on the driving people picture: that person drives (the cues are extracted again)."""
    inputs = (reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames, fps)
    return choose(inputs, session, shot, "driving", evt.index, progress)


@ui_errors
def choose_reference_person(reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames,
                            fps, session, shot, evt: gr.SelectData, progress=gr.Progress()):
    """A click on the reference people picture: that person is animated (the cues are extracted again)."""
    inputs = (reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames, fps)
    return choose(inputs, session, shot, "reference", evt.index, progress)
