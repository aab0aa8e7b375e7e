"""One main person in view: the person check of a candidate clip and the choice of its reference frame.

The offline segmenter (MediaPipe Pose, one person per call) finds the main person of a frame; the frame is then
searched again with that person painted out (their dilated mask filled with the median colour of the rest of the
frame): a second person of comparable size shows up in the second search. On a few frames spread over the clip,
the clip is kept when the main person is there in most of them and a second person in few of them.

The reference frame is the sharpest frame where the face detector finds the main person's face (and the body
faces the camera when the segmenter can tell), taken from another moment of the shot than the clip when the shot
is longer than the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trainers.prepare.quality import sharpness

__all__ = ["PersonLimits", "PersonCheck", "check_people", "find_people", "pick_reference"]


@dataclass(frozen=True)
class PersonLimits:
    """Thresholds of the person check.

    Args:
        min_area: fraction of the frame the main person's mask must cover to count as present (vtest.avi's
            passers-by at 256 px cover 0.003, the walk example 0.08).
        min_present: fraction of the checked frames the main person must be present in ("most of the clip").
        second_ratio: a second person counts when their mask is at least this fraction of the main person's
            (measured: two synthetic dancers side by side 0.7-0.9; one dancer alone 0).
        max_second: fraction of the checked frames a second person may be seen in (someone passing by).
        samples: frames checked per clip, spread evenly over it.
    """

    min_area: float = 0.002
    min_present: float = 0.6
    second_ratio: float = 0.25
    max_second: float = 0.3
    samples: int = 6


@dataclass
class PersonCheck:
    """What the person search found on the checked frames of a clip.

    Attributes:
        indices: the checked frames (positions in the clip).
        masks: float32 ``[N, H, W]`` main-person masks of those frames.
        scores / facing: the segmenter's per-frame quality and facing (NaN: unknown).
        present: bool ``[N]``, the main person is there.
        second: bool ``[N]``, a second person is there too.
    """

    indices: list[int]
    masks: np.ndarray
    scores: np.ndarray
    facing: np.ndarray
    present: np.ndarray
    second: np.ndarray

    def problem(self, limits: PersonLimits) -> str | None:
        """``"no person"``, ``"several people"`` or ``None`` (one main person for most of the clip)."""
        if self.present.mean() < limits.min_present:
            return "no person"
        if self.second.mean() > limits.max_second:
            return "several people"
        return None


def find_people(segmenter, frame: np.ndarray, limits: PersonLimits, second_search: bool = True):
    """Search one ``[H, W, 3]`` uint8 frame: ``(main mask, score, facing, main present, second person present)``.

    ``second_search=False`` skips the search for a second person (about 0.1 s a frame at 256 px: a search that
    finds nobody ends in the segmenter's HOG people search) and reports none."""
    seg = segmenter.segment_image(frame)
    mask, score = seg.masks[0], float(seg.scores[0])
    facing = float(seg.facing[0]) if seg.facing is not None else float("nan")
    binary = mask > 0.5
    area = float(binary.mean())
    present = score >= 0.5 and area >= limits.min_area
    second = False
    if second_search and present and not binary.all():
        side = max(3, int(round(0.03 * max(frame.shape[:2]))) | 1)
        cover = cv2.dilate(binary.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
        painted = frame.copy()
        painted[cover] = np.median(frame[~cover], axis=0).astype(np.uint8) if (~cover).any() else 0
        other = segmenter.segment_image(painted)
        other_area = float((other.masks[0] > 0.5).mean())
        second = float(other.scores[0]) >= 0.5 and other_area >= max(limits.min_area, limits.second_ratio * area)
    return mask, score, facing, present, second


def check_people(segmenter, frames: np.ndarray, limits: PersonLimits) -> PersonCheck:
    """Run :func:`find_people` on ``limits.samples`` frames spread evenly over ``frames`` (``[T, H, W, 3]``)."""
    count = len(frames)
    indices = sorted({int(i) for i in np.linspace(0, count - 1, min(limits.samples, count)).round()})
    found = [find_people(segmenter, frames[i], limits) for i in indices]
    return PersonCheck(
        indices=indices,
        masks=np.stack([f[0] for f in found]).astype(np.float32),
        scores=np.array([f[1] for f in found], np.float32),
        facing=np.array([f[2] for f in found], np.float32),
        present=np.array([f[3] for f in found], bool),
        second=np.array([f[4] for f in found], bool),
    )


def pick_reference(face_detector, candidates: list[tuple[np.ndarray, np.ndarray, float, bool]]):
    """The best reference among ``candidates`` (``(frame, main mask, facing, person present)``): a frame where
    the person is present and their face is found, facing the camera when known, then the sharpest.

    Returns:
        ``(position in candidates, face box (x0, y0, x1, y1) or None)``, or ``None`` when no candidate shows the
        person.
    """
    best, best_key, best_box = None, None, None
    for n, (frame, mask, facing, present) in enumerate(candidates):
        if not present:
            continue
        track = face_detector.detect(frame[None], mask[None])
        face = bool(track.found[0])
        front = not (np.isfinite(facing) and facing < 0.5)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        key = (face and front, face, sharpness(gray))
        if best_key is None or key > best_key:
            best, best_key, best_box = n, key, (track.boxes[0].tolist() if face else None)
    return None if best is None else (best, best_box)
