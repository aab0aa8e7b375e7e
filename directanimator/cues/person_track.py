"""Following one chosen person through a clip in which several people move (``follow_person``).

A segmenter's video mode follows whoever it locks on to; when people cross, it may swap. Here the chosen person of
the first frame is followed frame by frame: the people in a window around where the person is predicted to be are
peeled (``people.peel``), and the candidate that best matches the track wins, by

- where it is: overlap of its box with the track's box, moved on at the track's (damped) velocity;
- what it looks like: the colour histogram of the person's pixels, from the first frame, updated slowly.

The colours keep the identity through a crossing (the person in front has other clothes). When no candidate matches
(the person is hidden), the frame gets an empty mask, which ``extract_cues`` drops, and the track coasts on its
prediction in a growing window until the person shows again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..progress import ProgressFn, report
from .people import (Person, choose_person, find_people, peel, person_record, person_spec_kind, segment_window,
                     several_people_warning)
from .segment.protocol import Segmentation, _mask_bbox

__all__ = ["WIDE_SHOT", "ChosenPerson", "TrackedPerson", "appearance", "follow_person", "segment_chosen_person"]


@dataclass
class TrackedPerson:
    """The chosen person through a clip.

    Attributes:
        segmentation: masks ``[T, H, W]``, scores ``[T]`` and facing ``[T]`` of the person (empty mask, score 0 and
            NaN facing where the person was not found).
        boxes: float32 ``[T, 4]`` mask boxes; NaN rows where the person was not found.
        found: bool ``[T]``.
        candidates: int ``[T]``, people looked at in each frame's window (a measure of the work done).
    """

    segmentation: Segmentation
    boxes: np.ndarray
    found: np.ndarray
    candidates: np.ndarray


def appearance(image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Colour histogram (hue x saturation x value, 12 x 4 x 4 bins, sums to 1) of ``image``'s pixels under
    ``mask > 0.5``; None when the mask is empty."""
    binary = (mask > 0.5).astype(np.uint8)
    if not binary.any():
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], binary, [12, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def _colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger (Bhattacharyya) distance of two normalised histograms: 0 same colours, 1 nothing in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _containment(a, b) -> float:
    """Fraction of box ``a`` inside box ``b``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return ix * iy / area if area > 0 else 0.0


def follow_person(
    frames: np.ndarray,
    segmenter,
    start: Person,
    *,
    max_candidates: int = 2,
    max_colour_distance: float = 0.55,
    min_overlap: float = 0.1,
    colour_weight: float = 2.0,
    learn: float = 0.1,
    progress: ProgressFn | None = None,
) -> TrackedPerson:
    """Follow ``start`` (the chosen person of ``frames[0]``) through the clip.

    Args:
        frames: uint8 ``[T, H, W, 3]``; ``start`` was found in ``frames[0]`` (``people.find_people``).
        segmenter: any backend with ``segment_image``.
        start: the person to follow; frame 0 gets its mask as it is (score 1, facing from a window segmentation).
        max_candidates: people peeled per frame in the window around the prediction.
        max_colour_distance: a candidate whose colours are further than this from the track's is someone else.
        min_overlap: a candidate must overlap the predicted box at least this much (box IoU or the fraction of
            the candidate inside it).
        colour_weight: weight of the colour distance against ``1 - box IoU`` in the matching cost.
        learn: how fast the colour model follows the person (per matched frame).
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        :class:`TrackedPerson`.
    """
    frames = np.asarray(frames)
    t_len, h, w = frames.shape[:3]
    masks = np.zeros((t_len, h, w), np.float32)
    scores = np.zeros(t_len, np.float32)
    facing = np.full(t_len, np.nan, np.float32)
    boxes = np.full((t_len, 4), np.nan, np.float32)
    found = np.zeros(t_len, bool)
    looked = np.zeros(t_len, np.int32)

    masks[0], boxes[0], found[0] = start.mask, start.box, True
    first = segment_window(segmenter, frames[0], start.box)
    scores[0] = float(first.scores[0]) if (first.masks[0] > 0.5).any() else 1.0
    if first.facing is not None and (first.masks[0] * start.mask > 0.5).sum() > 0.5 * (start.mask > 0.5).sum():
        facing[0] = first.facing[0]
    model = appearance(frames[0], start.mask)
    box = np.asarray(start.box, np.float64)
    velocity = np.zeros(4)
    area = float((start.mask > 0.5).sum())
    lost = 0
    report(progress, 1.0 / t_len, "following the chosen person")

    for t in range(1, t_len):
        frame = frames[t]
        # Constant velocity, damped while the person is hidden; the window grows with the time lost.
        predicted = box + velocity
        grow = 1.0 + 0.25 * min(lost, 8)
        cx, cy = (predicted[0] + predicted[2]) / 2, (predicted[1] + predicted[3]) / 2
        half_w, half_h = (predicted[2] - predicted[0]) / 2 * grow, (predicted[3] - predicted[1]) / 2 * grow
        window = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)

        def cost(seg):
            b = _mask_bbox(seg.masks[0] > 0.5)
            hist = appearance(frame, seg.masks[0])
            if b is None or hist is None:
                return None
            overlap = max(_box_iou(b, window), _containment(b, window))
            colour = _colour_distance(hist, model)
            if colour > max_colour_distance or overlap < min_overlap:
                return None
            return colour_weight * colour + (1.0 - _box_iou(b, predicted)), b, hist

        def enough(cands):
            # A clear match of the person's own size where they were predicted: no need to look at who else is in
            # the window (the search that finds nobody is the slowest segmenter call).
            seg = cands[-1]
            b = _mask_bbox(seg.masks[0] > 0.5)
            hist = appearance(frame, seg.masks[0])
            if b is None or hist is None:
                return False
            return (_colour_distance(hist, model) < 0.5 * max_colour_distance and _box_iou(b, predicted) > 0.5
                    and 0.7 * area < float((seg.masks[0] > 0.5).sum()) < 1.3 * area)

        cands = peel(segmenter, frame, max_candidates, search=lambda img: segment_window(segmenter, img, window),
                     enough=enough)
        looked[t] = len(cands)
        best = None
        for seg in cands:
            c = cost(seg)
            if c is not None and (best is None or c[0] < best[1][0]):
                best = (seg, c)
        if best is None:
            lost += 1
            velocity *= 0.8
        else:
            seg, (_, new_box, hist) = best
            masks[t] = seg.masks[0]
            scores[t] = float(seg.scores[0])
            if seg.facing is not None:
                facing[t] = seg.facing[0]
            boxes[t], found[t] = new_box, True
            new_box = np.asarray(new_box, np.float64)
            step = (new_box - box) / (lost + 1)
            velocity = step if lost else 0.5 * velocity + 0.5 * step
            box, lost = new_box, 0
            area = 0.8 * area + 0.2 * float((seg.masks[0] > 0.5).sum())
            model = (1.0 - learn) * model + learn * hist
        report(progress, (t + 1) / t_len, "following the chosen person")
    return TrackedPerson(Segmentation(masks=masks, scores=scores, facing=facing), boxes, found, looked)


WIDE_SHOT = 0.05
"""The first driving frame is also searched with HOG people boxes when nobody found covers this fraction of it
(a wide shot, where the segmenter misses small people); a closer shot saves the ~0.5 s."""


@dataclass
class ChosenPerson:
    """The driving person through the clip, as ``extract_cues`` records it.

    Attributes:
        segmentation: the clip's :class:`Segmentation` (the segmenter's own with one person, else the track's).
        record: ``cues.settings["person"]`` (``people.person_record``).
        warning: the several-people warning line, or None.
        people: the people of the first frame.
        find_ms: time spent finding the people of the first frame.
    """

    segmentation: Segmentation
    record: dict
    warning: str | None
    people: list
    find_ms: float


def first_frame_person(segmenter, frame: np.ndarray, spec="largest"):
    """The people of the driving video's first frame and the one ``spec`` chooses:
    ``(people, chosen, settings record, warning)``; ``chosen`` is None when nobody is there yet and ``spec`` is
    ``"largest"`` / ``"central"`` (the segmenter's own tracking then finds whoever comes). Shared by
    :func:`segment_chosen_person` and the streaming extraction.

    Raises:
        InputError: ``spec`` names nobody in the frame.
    """
    kind = person_spec_kind(spec)
    people = find_people(frame, segmenter, hog=WIDE_SHOT)
    if not people and kind in ("largest", "central"):
        return people, None, person_record(spec, [], None), None
    chosen = choose_person(people, spec, frame.shape[:2], what="the first frame of the driving video")
    warning = several_people_warning(people, chosen, spec, "the driving video", "drives", "--person")
    return people, chosen, person_record(spec, people, chosen), warning


def segment_chosen_person(segmenter, frames: np.ndarray, spec="largest",
                          progress: ProgressFn | None = None) -> ChosenPerson:
    """Segment the driving person ``spec`` chooses through the clip.

    The people are found in the first frame. With one person (or nobody there yet, for ``"largest"`` /
    ``"central"``), the segmenter's own ``segment_video`` runs, unchanged; with several, the chosen one is followed
    by :func:`follow_person`.

    Args:
        segmenter: any backend with ``segment_video`` and ``segment_image``.
        frames: the driving clip at working size, uint8 ``[T, H, W, 3]``.
        spec: as for ``people.choose_person``; a point is in ``frames[0]`` pixels.
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        :class:`ChosenPerson`.

    Raises:
        InputError: ``spec`` names nobody in the first frame.
    """
    start = time.perf_counter()
    people, chosen, record, warning = first_frame_person(segmenter, frames[0], spec)
    find_ms = round((time.perf_counter() - start) * 1000.0, 2)
    if chosen is None:
        return ChosenPerson(segmenter.segment_video(frames, progress=progress), record, None, people, find_ms)
    if len(people) == 1:
        return ChosenPerson(segmenter.segment_video(frames, progress=progress), record, warning, people, find_ms)
    track = follow_person(frames, segmenter, chosen, progress=progress)
    return ChosenPerson(track.segmentation, record, warning, people, find_ms)
