"""Framing-robust alignment of the location cue: eqs. 9-10 while the whole body is in the picture, the face (or the
visible top of the body) when an image edge cuts the body.

The paper's alignment (``location.estimate_alignment``) matches person box heights and centres. A portrait or a
talking head is cut by the frame's bottom edge, and then the box height is not the body's height: the scale is off
and the face lands beside the reference face. :func:`align_person` first decides, per image, whether the person's
mask is cut by an edge of the picture (:func:`edge_cuts`); when neither the reference nor most driving frames are,
it is eqs. 9-10 exactly. Otherwise it uses what both images show whole:

- ``"face"``: scale from the face box sizes (the reference's over the median driving one), translation from the
  face box centres (the driving face lands on the reference face);
- ``"top"`` (no face in the reference or in the driving frames): scale from matching the mask's row widths from
  the top of the head down over the length both images show, anchored at the top of the head;
- ``"paper"`` when neither is possible (the reason says why).

Coordinates are OpenCV's pixel centres, as in ``location``; face boxes are continuous ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .location import SimilarityTransform, estimate_alignment, mask_box, per_frame

__all__ = ["CUT_FRACTION", "EDGE_BAND", "TOP_FRAMES", "Alignment", "align_person", "content_box", "cue_alignment",
           "edge_cuts"]

EDGE_BAND = 2
"""Mask pixels this close (in pixels) to an edge of the picture touch it (segmenters blur the last pixel or two)."""

CUT_FRACTION = 0.25
"""An edge cuts the person when the mask touches it over at least this fraction of the person's box extent along
that edge (the box width for the top and bottom edges, the height for the sides; half of it for the top edge, where
a person is as narrow as the head): a body cut at the waist or chest touches the bottom over most of its width, a
hand reaching out of the picture over little."""

TOP_FRAMES = 16
"""The ``"top"`` alignment's scale is the median over at most this many frames spread over the clip."""

_SCALES = np.exp(np.linspace(np.log(0.1), np.log(10.0), 401))  # "top" search grid, ~1.2 % apart, then refined


@dataclass(frozen=True)
class Alignment:
    """A driving -> reference similarity transform and how it was found.

    Attributes:
        transform: the transform (eq. 11).
        used: ``"paper"`` (eqs. 9-10), ``"face"`` or ``"top"`` (see the module docstring).
        reason: a short sentence saying why (recorded as ``alignment_reason`` in ``cues.json``).
    """

    transform: SimilarityTransform
    used: str
    reason: str

    def record(self) -> dict:
        """What ``cues.json`` records of it: ``alignment_used`` and ``alignment_reason``."""
        return {"alignment_used": self.used, "alignment_reason": self.reason}


def content_box(frames: np.ndarray) -> tuple[int, int, int, int]:
    """The part of the driving frames that holds picture: ``(x0, y0, x1, y1)`` inclusive pixel indices of the
    pixels that are not exactly black in some frame (the working frames pad a clip of another aspect with black
    bars, whose inner border is where the clip's own edges are). The whole frame when every pixel is black."""
    frames = np.asarray(frames)
    lit = frames.reshape(-1, *frames.shape[-3:]).max(axis=0)
    if lit.ndim == 3:
        lit = lit.max(axis=-1)
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if rows.size == 0:
        return 0, 0, lit.shape[1] - 1, lit.shape[0] - 1
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def edge_cuts(mask: np.ndarray, area: tuple[int, int, int, int] | None = None) -> tuple[str, ...]:
    """The edges of the picture that cut the person of ``mask`` (see ``CUT_FRACTION``).

    Args:
        mask: person mask ``[H, W]`` in [0, 1].
        area: ``(x0, y0, x1, y1)`` inclusive pixel bounds of the picture inside the frame (default: the whole
            frame; see :func:`content_box`).

    Returns:
        a tuple of ``"bottom"``, ``"top"``, ``"left"``, ``"right"`` (empty: the person is whole, or the mask empty).
    """
    on = np.asarray(mask) > 0.5
    box = mask_box(on.astype(np.float32))
    if box is None:
        return ()
    x0, y0, x1, y1 = area if area is not None else (0, 0, on.shape[1] - 1, on.shape[0] - 1)
    width, height = box[1] - box[0] + 1.0, box[3] - box[2] + 1.0
    band = EDGE_BAND
    strips = {
        "bottom": (on[max(y1 - band + 1, 0):y1 + 1].any(axis=0), width),
        "top": (on[y0:y0 + band].any(axis=0), 0.5 * width),
        "left": (on[:, x0:x0 + band].any(axis=1), height),
        "right": (on[:, max(x1 - band + 1, 0):x1 + 1].any(axis=1), height),
    }
    return tuple(edge for edge, (touching, extent) in strips.items()
                 if touching.sum() >= max(3.0, CUT_FRACTION * extent))


def align_person(
    ref_mask: np.ndarray,
    masks: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    mode: str = "auto",
    ref_face=None,
    face_boxes: np.ndarray | None = None,
    driving_area: tuple[int, int, int, int] | None = None,
    scale: float | None = None,
) -> Alignment:
    """The location cue's driving -> reference transform, in the cue settings' ``alignment`` mode.

    Args:
        ref_mask: reference person mask ``[H, W]`` in [0, 1].
        masks: driving person masks ``[T, H', W']`` in [0, 1].
        valid: optional ``[T]`` bool, the frames to use (not dropped); empty masks are skipped as well.
        mode: ``"paper"`` (eqs. 9-10, ``estimate_alignment``) or ``"auto"`` (eqs. 9-10 unless an edge cuts the
            person; then ``"face"`` or ``"top"``).
        ref_face: the reference's face box ``(x0, y0, x1, y1)``, or None when unknown (no face, or a cue folder
            made before it was recorded).
        face_boxes: the driving face boxes ``[T, 4]`` (NaN rows: no face), or None.
        driving_area: ``(x0, y0, x1, y1)`` of the driving frames that holds picture (:func:`content_box`); the
            whole frame by default.
        scale: use this scale (the app's manual scale); the translation follows the chosen mode, so the person
            (face, top of the head) stays where the automatic alignment puts it.

    Returns:
        :class:`Alignment`.

    Raises:
        InputError: unknown mode, empty reference mask, no usable driving mask.
    """
    if mode == "paper":
        return Alignment(estimate_alignment(ref_mask, masks, valid=valid, scale=scale), "paper",
                         "alignment set to paper: eqs. 9-10")
    if mode != "auto":
        raise InputError(f"alignment must be auto or paper, got {mode!r}")
    masks = per_frame(masks)  # read frame by frame: a long clip's lazily stored masks are never held whole
    valid = np.ones(len(masks), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    # the same checks and messages as eqs. 9-10
    paper = estimate_alignment(ref_mask, masks, valid=valid, scale=scale)
    frames = [t for t in np.flatnonzero(valid) if (masks[t] > 0.5).any()]
    ref_cuts = edge_cuts(ref_mask)
    cut_counts = {}
    for t in frames:
        for edge in edge_cuts(masks[t], driving_area):
            cut_counts[edge] = cut_counts.get(edge, 0) + 1
    driving_cuts = tuple(e for e in ("bottom", "top", "left", "right") if 2 * cut_counts.get(e, 0) > len(frames))
    if not ref_cuts and not driving_cuts:
        return Alignment(paper, "paper", "no person cut by an image edge: the paper's eqs. 9-10")
    cut = "; ".join(part for part in (
        f"reference cut by the {_edges(ref_cuts)}" if ref_cuts else "",
        f"driving person cut by the {_edges(driving_cuts)}" if driving_cuts else "") if part)

    faces = np.full((len(masks), 4), np.nan) if face_boxes is None else np.asarray(face_boxes, np.float64)
    faces = faces.reshape(len(masks), 4)
    with_face = [t for t in frames if np.isfinite(faces[t]).all() and faces[t, 2] > faces[t, 0]
                 and faces[t, 3] > faces[t, 1]]
    ref_face = None if ref_face is None else np.asarray(ref_face, np.float64).reshape(-1)
    ref_face_ok = ref_face is not None and ref_face.shape == (4,) and np.isfinite(ref_face).all() \
        and ref_face[2] > ref_face[0] and ref_face[3] > ref_face[1]
    if ref_face_ok and with_face:
        return Alignment(_face_alignment(ref_face, faces[with_face], scale), "face",
                         f"{cut}: scale and position from the face boxes")
    missing = "no reference face box" if not ref_face_ok else "no face in the driving frames"
    if "top" not in ref_cuts and "top" not in driving_cuts:
        top = _top_alignment(ref_mask, masks, frames, scale)
        if top is not None:
            return Alignment(top, "top", f"{cut}; {missing}: scale and position from the top of the body")
    return Alignment(paper, "paper", f"{cut}, but {missing} and no whole top of the body: the paper's eqs. 9-10")


def cue_alignment(settings: dict, ref_mask, frames, masks, face_boxes, dropped,
                  scale: float | None = None, driving_area=None) -> Alignment:
    """:func:`align_person` for cues: the mode (``alignment``; absent = ``"paper"``, as ``CueSettings.from_dict``
    reads it) and the reference face box (``reference_face_box``) from the cues' ``settings``, the picture area
    from the driving frames (:func:`content_box`).

    Args:
        settings: the cues' settings dict (``DrivingCues.settings``).
        ref_mask: reference person mask ``[H, W]``.
        frames: driving frames ``[T, H, W, 3]`` uint8 (working size, black where padded).
        masks: driving person masks ``[T, H, W]``.
        face_boxes: driving face boxes ``[T, 4]`` (NaN rows: none).
        dropped: ``[T]`` bool, frames not to use.
        scale: a manual scale (see :func:`align_person`).
        driving_area: the picture area of the driving frames when known (:func:`content_box`; the streaming
            extraction gathers it chunk by chunk), else it is found from ``frames``.

    Raises:
        InputError: as :func:`align_person`.
    """
    mode = settings.get("alignment", "paper")
    area = (content_box(frames) if driving_area is None else driving_area) if mode == "auto" else None
    found = align_person(ref_mask, masks, ~np.asarray(dropped, dtype=bool), mode=mode,
                         ref_face=settings.get("reference_face_box"), face_boxes=face_boxes, driving_area=area,
                         scale=scale)
    if mode == "auto" and "reference_face_box" not in settings and "no reference face box" in found.reason:
        found = Alignment(found.transform, found.used, found.reason.replace(
            "no reference face box", "no reference face box (these cues predate it; re-extract them to align by "
            "the face)"))
    return found


def _edges(edges) -> str:
    names = list(edges)
    words = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return words + (" edge" if len(names) == 1 else " edges")


def _face_alignment(ref_face: np.ndarray, faces: np.ndarray, scale: float | None) -> SimilarityTransform:
    """Scale = reference face size / median driving face size (size: the geometric mean of the box sides), and
    the mean driving face centre onto the reference face centre (boxes are continuous, the transform works on
    pixel centres: a centre ``c`` is the point ``c - 0.5``)."""
    def size(b):
        return np.sqrt((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]))

    s = float(size(ref_face) / np.median(size(faces))) if scale is None else float(scale)
    c_ref = np.array([(ref_face[0] + ref_face[2]) / 2.0, (ref_face[1] + ref_face[3]) / 2.0]) - 0.5
    c_mean = np.stack([(faces[:, 0] + faces[:, 2]) / 2.0, (faces[:, 1] + faces[:, 3]) / 2.0], axis=1).mean(0) - 0.5
    t = c_ref - s * c_mean
    return SimilarityTransform(s, float(t[0]), float(t[1]))


def _profile(mask: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Row widths of the person from the top row of the mask down, that top row, and each row's x centroid."""
    on = np.asarray(mask) > 0.5
    rows = np.flatnonzero(on.any(axis=1))
    part = on[rows[0]:rows[-1] + 1]
    widths = part.sum(axis=1).astype(np.float64)
    xs = np.arange(on.shape[1], dtype=np.float64)
    centroids = (part * xs).sum(axis=1) / np.maximum(widths, 1.0)
    return widths, float(rows[0]), centroids


def _match_scale(ref_w: np.ndarray, w: np.ndarray) -> float | None:
    """The scale ``s`` (reference / driving) for which ``s * w(u / s)`` best matches ``ref_w(u)`` over the rows
    both show (mean absolute difference over the summed widths; a log grid, then a finer one around the best)."""
    def costs(scales):  # every scale at once: [scales, rows], the rows past a scale's overlap masked out
        scales = np.asarray(scales, np.float64)
        n = np.minimum(len(ref_w), np.floor(scales * len(w))).astype(np.int64)
        u = np.arange(int(n.max()), dtype=np.float64)
        # row u of the reference is row u / s of the driving person (tops aligned, pixel centres)
        scaled = scales[:, None] * np.interp((u[None] + 0.5) / scales[:, None] - 0.5, np.arange(len(w)), w)
        inside = u[None] < n[:, None]
        ref = ref_w[:len(u)][None]
        out = (np.abs(ref - scaled) * inside).sum(1) / np.maximum(((ref + scaled) * inside).sum(1), 1e-9)
        out[n < 8] = np.inf
        return out

    coarse = costs(_SCALES)
    if not np.isfinite(coarse).any():
        return None
    best = _SCALES[int(np.argmin(coarse))]
    fine = best * np.exp(np.linspace(-0.015, 0.015, 61))
    return float(fine[int(np.argmin(costs(fine)))])


def _top_alignment(ref_mask, masks, frames, scale: float | None) -> SimilarityTransform | None:
    """Scale from the row widths from the head down (the median of the best matches of ``TOP_FRAMES`` frames),
    anchored at the top of the head: the top rows' x centroid and the top row; over the masks of the frame indices
    ``frames``. None when no frame matches."""
    ref_w, ref_top, ref_cx = _profile(ref_mask)
    profiles = [_profile(masks[t]) for t in frames]
    if scale is None:
        # at most TOP_FRAMES frames spread over the clip (the search is ~10 ms a frame at 512 px)
        pick = np.unique(np.linspace(0, len(profiles) - 1, min(TOP_FRAMES, len(profiles))).round().astype(int))
        found = [s for s in (_match_scale(ref_w, profiles[i][0]) for i in pick) if s is not None]
        if not found:
            return None
        scale = float(np.median(found))
    s = float(scale)
    # The anchor: the top edge of the top row (a pixel centre's row r has its top edge at r - 0.5) and the x
    # centre of the top band of rows (a twentieth of the reference person's visible length, the same part of the
    # driving person at scale s): the top of the head.
    band = max(3, int(round(0.05 * len(ref_w))))
    a_ref = np.array([np.average(ref_cx[:band], weights=ref_w[:band]), ref_top - 0.5])
    anchors = [(np.average(cx[:max(1, int(round(band / s)))], weights=w[:max(1, int(round(band / s)))]), top - 0.5)
               for w, top, cx in profiles]
    t = a_ref - s * np.mean(np.asarray(anchors), axis=0)
    return SimilarityTransform(s, float(t[0]), float(t[1]))
