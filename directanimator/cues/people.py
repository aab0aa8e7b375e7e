"""Several people in one picture: ``find_people`` lists them (any segmentation backend), ``choose_person`` picks the
one a user means ("largest", "central", a person number, or a click).

A segmenter returns one person per image. ``find_people`` "peels" the picture: it segments, records that person,
paints them over (their dilated mask, inpainted from the surroundings), and segments again, until nobody new is
found; every person after the first must be found again in a window around them (a painted-over region can read as
a "person" once). Small people the segmenter misses on the whole picture (a wide surveillance shot) are then looked
for at OpenCV's HOG people boxes, each confirmed by segmenting an upscaled window around it. People are numbered
largest first. The person tracker (``person_track.py``) peels a window around the predicted person the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .segment.hog import HogPeople
from .segment.protocol import Segmentation, _mask_bbox

__all__ = ["PERSON_CHOICES", "Person", "choose_person", "cover", "describe_people", "find_people", "neutral_colour",
           "parse_person_spec", "peel", "people_boxes", "people_summary", "person_record", "person_spec_json",
           "person_spec_kind", "reference_person", "segment_window", "several_people_warning"]

PERSON_CHOICES = ("largest", "central")
"""The named ways of choosing a person; a person number (1-based) or an ``(x, y)`` point are the others."""

_HOG = HogPeople()


@dataclass(frozen=True)
class Person:
    """One person found in an image.

    Attributes:
        number: 1-based; people are numbered largest first.
        box: ``(x0, y0, x1, y1)`` of ``mask > 0.5``, continuous pixel coordinates of the image given.
        mask: ``[H, W]`` float32 in ``[0, 1]``.
        area: fraction of the image covered by ``mask > 0.5``.
    """

    number: int
    box: tuple[float, float, float, float]
    mask: np.ndarray
    area: float


# --- finding people ------------------------------------------------------------------------------------------------


def neutral_colour(image: np.ndarray, covered: np.ndarray | None = None) -> np.ndarray:
    """The median colour (uint8 ``[3]``) of ``image`` outside ``covered`` (what a window reaching past the image's
    edge is filled with)."""
    pixels = image.reshape(-1, 3) if covered is None or covered.all() else image[~covered]
    return np.median(pixels, axis=0).astype(np.uint8)


def cover(image: np.ndarray, region: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A copy of ``image`` with ``region`` painted over by its surroundings (OpenCV's Telea inpainting).

    A flat colour leaves a person-shaped blob that keeps segmenters from seeing the people next to it (and some
    take it for a person); inpainted, the region reads as background. The fill is computed at ``max_side`` pixels
    at most (inpainting cost grows with the region) and resized back.

    Args:
        image: uint8 ``[H, W, 3]``.
        region: bool ``[H, W]``, the pixels to paint over.
        max_side: long side the inpainting runs at.
    """
    h, w = image.shape[:2]
    out = image.copy()
    if not region.any():
        return out
    s = min(1.0, max_side / max(h, w))
    small = image if s >= 1.0 else cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                                               interpolation=cv2.INTER_AREA)
    small_region = region.astype(np.uint8)
    if s < 1.0:
        small_region = cv2.dilate(cv2.resize(small_region, small.shape[1::-1], interpolation=cv2.INTER_AREA) * 255,
                                  np.ones((3, 3), np.uint8)) > 0
    filled = cv2.inpaint(small, small_region.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    if s < 1.0:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out[region] = filled[region]
    return out


def segment_window(segmenter, image: np.ndarray, box, side: int = 256, fill=None) -> Segmentation:
    """Segment the person inside a square window around ``box``, upscaled to ``side`` pixels.

    Args:
        segmenter: any backend with ``segment_image``.
        image: uint8 ``[H, W, 3]``.
        box: ``(x0, y0, x1, y1)``; the window is a square 1.5 times its longer side (+8 px), centred on it.
        side: size the window is resampled to before segmenting (small people become large enough).
        fill: colour of the window's part outside the image (default: the image's neutral colour).

    Returns:
        the segmenter's :class:`Segmentation` (``T == 1``) with the mask in image pixels, zero outside the window.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    extent = max(x1 - x0, y1 - y0, 1.0) * 1.5 + 8
    scale = side / extent
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    affine = np.array([[scale, 0, side / 2 - scale * cx], [0, scale, side / 2 - scale * cy]], np.float32)
    fill = neutral_colour(image) if fill is None else np.asarray(fill, np.uint8)
    crop = cv2.warpAffine(image, affine, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(int(v) for v in fill))
    seg = segmenter.segment_image(crop)
    mask = cv2.warpAffine(np.asarray(seg.masks[0], np.float32), affine, (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return Segmentation(masks=np.clip(mask, 0.0, 1.0)[None], scores=np.asarray(seg.scores, np.float32).reshape(1),
                        facing=None if seg.facing is None else np.asarray(seg.facing, np.float32).reshape(1))


def people_boxes(image: np.ndarray, upscale: float = 2.5) -> list[tuple[float, float, float, float]]:
    """Candidate people boxes from OpenCV's HOG detector, best first (see ``segment.hog.HogPeople``).

    At the default ``upscale`` people down to ~50 px tall in a 512 px frame are found (~0.4 s for 512x384).
    """
    return _HOG.boxes(image, upscale=upscale)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 0.0


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of ``a``'s pixels that are also in ``b`` (bool masks)."""
    n = int(a.sum())
    return float((a & b).sum()) / n if n else 0.0


def peel(segmenter, image: np.ndarray, max_people: int, min_pixels: int = 12, dilate: int | None = None,
         search=None, enough=None, confirm: bool = False) -> list[Segmentation]:
    """Up to ``max_people`` people, in the order the segmenter finds them.

    Args:
        segmenter: any backend with ``segment_image``.
        image: uint8 ``[H, W, 3]``.
        max_people: stop after this many.
        min_pixels: a person after the first smaller than this many pixels (``mask > 0.5``) is noise and ends the
            peeling (the first is the segmenter's own answer, kept whatever its size).
        dilate: pixels a found person's mask is grown by before it is painted over, so that the bits the mask missed
            (hair, a hand) do not make a ghost person (default: 2.5% of the long side, >= 2).
        search: ``search(image) -> Segmentation`` (``T == 1``, at the image's size); default the segmenter's
            whole-image ``segment_image`` (the tracker searches a window).
        enough: optional ``enough(found) -> bool`` called after each person; True ends the peeling early.
        confirm: check every person after the first by segmenting a window around them again (one more
            segmenter call each); one that is not found again ends the peeling.

    Returns:
        one :class:`Segmentation` (``T == 1``) per person; a mask never includes an earlier person's pixels.
    """
    h, w = image.shape[:2]
    dilate = max(2, round(0.025 * max(h, w))) if dilate is None else int(dilate)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
    search = search or segmenter.segment_image
    work = image
    covered = np.zeros((h, w), bool)  # painted over: the people found, grown by ``dilate``
    taken = np.zeros((h, w), bool)  # the people found
    found: list[Segmentation] = []
    while len(found) < max_people:
        seg = search(work)
        mask = np.asarray(seg.masks[0], np.float32)
        binary = mask > 0.5
        # Nobody, a speck, or the segmenter coming back to a region already covered: nobody new is left. The first
        # person is the segmenter's own answer, however small (a few pixels at a 64-px working size): the
        # one-person path must accept what segment_image alone accepted.
        if (binary & ~covered).sum() < (min_pixels if found else 1) or _overlap(binary, covered) > 0.5:
            break
        if confirm and found and _iou(segment_window(segmenter, work, _mask_bbox(binary)).masks[0] > 0.5, binary) < 0.4:
            # A painted-over person can leave a smear that reads as a "person" once, but not again when looked
            # at closely (a window around it): real people are found again with the same mask (IoU > 0.65 on the
            # drawn scenes, vtest.avi and crossings; 0 for the smear beside a large portrait).
            break
        # A person partly behind an earlier one keeps the pixels next to them (only the grown cover is cut).
        found.append(Segmentation(masks=np.where(taken, 0.0, mask).astype(np.float32)[None], scores=seg.scores,
                                  facing=seg.facing))
        if enough is not None and enough(found):
            break
        taken |= binary
        covered |= cv2.dilate(binary.astype(np.uint8), kernel) > 0
        work = cover(image, covered)
    return found


def find_people(image: np.ndarray, segmenter, max_people: int = 4, hog: bool | float = True) -> list[Person]:
    """The people in ``image``, largest first.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        segmenter: any backend with ``segment_image`` (``segment.get_segmenter``).
        max_people: at most this many are returned (>= 1).
        hog: when the peeling finds fewer than ``max_people``, also try OpenCV's HOG people boxes (small people
            in wide shots), each confirmed by the segmenter in an upscaled window (~0.4 s for 512x384, plus one
            segmenter call per box). A number: only when nobody found covers that fraction of the image (a wide
            shot; where the people found are large, the small ones HOG finds are rare and the time is saved).

    Returns:
        :class:`Person` list numbered 1.. in order of decreasing area; empty when nobody is found.

    Raises:
        InputError: not an RGB image, or ``max_people`` < 1.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InputError(f"the image must be a uint8 RGB array of shape [H,W,3], got {image.dtype} {image.shape}")
    if int(max_people) < 1:
        raise InputError(f"max_people must be at least 1, got {max_people}")
    image = np.ascontiguousarray(image)
    masks = [seg.masks[0] for seg in peel(segmenter, image, int(max_people), confirm=True)]
    if not isinstance(hog, bool):
        hog = not any(float((m > 0.5).mean()) >= float(hog) for m in masks)
    if hog and len(masks) < max_people:
        masks += _hog_people(segmenter, image, masks, int(max_people) - len(masks))
    return _numbered(masks)


def _hog_people(segmenter, image, masks, budget) -> list[np.ndarray]:
    """People at HOG boxes away from the ``masks`` found already, confirmed by segmenting a window around each."""
    h, w = image.shape[:2]
    taken = np.zeros((h, w), bool)
    for m in masks:
        taken |= m > 0.5
    tried = taken.copy()
    found = []
    for box in people_boxes(image):
        if len(found) >= budget:
            break
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0 or tried[y0:y1, x0:x1].mean() > 0.15:
            continue
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        mask = _blobs_touching(segment_window(segmenter, image, box).masks[0], inside)
        binary = (mask > 0.5) & ~taken
        # The window's person must be the one HOG boxed (mostly inside the box), and new.
        if binary.sum() < 12 or _overlap(binary, inside) < 0.6 or _overlap(mask > 0.5, taken) > 0.3:
            tried[y0:y1, x0:x1] = True  # a box nobody is confirmed in is not tried again through a twin box
            continue
        found.append(np.where(taken, 0.0, mask).astype(np.float32))
        taken |= binary
        tried |= binary
    return found


def _blobs_touching(mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``mask`` without its blobs (connected parts of ``mask > 0.5``) that do not reach into ``region``: a window
    around a small person also shows the things next to them, which the segmenter may take in."""
    n, labels = cv2.connectedComponents((mask > 0.5).astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    keep = np.zeros(n, bool)
    keep[np.unique(labels[region & (labels > 0)])] = True
    # The soft halo of a dropped blob goes with it.
    grown = cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return np.where(grown, mask, 0.0).astype(np.float32)


def _numbered(masks: list[np.ndarray]) -> list[Person]:
    """People from masks, numbered 1.. largest first (empty masks dropped)."""
    people = []
    for mask in masks:
        binary = mask > 0.5
        box = _mask_bbox(binary)
        if box is not None:
            people.append((float(binary.mean()), box, mask))
    people.sort(key=lambda p: -p[0])
    return [Person(number=i + 1, box=box, mask=mask, area=area) for i, (area, box, mask) in enumerate(people)]


# --- choosing one --------------------------------------------------------------------------------------------------


def describe_people(people: list[Person]) -> str:
    """One line listing ``people``: ``"1: 12.0% of the frame at x 10-80, y 5-200; 2: ..."``."""
    return "; ".join(f"{p.number}: {100 * p.area:.1f}% of the frame at x {p.box[0]:.0f}-{p.box[2]:.0f}, "
                     f"y {p.box[1]:.0f}-{p.box[3]:.0f}" for p in people)


def _centre(p: Person) -> tuple[float, float]:
    ys, xs = np.nonzero(p.mask > 0.5)
    return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5


def choose_person(people: list[Person], spec, image_hw: tuple[int, int], what: str = "the image") -> Person:
    """The person ``spec`` means.

    Args:
        people: from :func:`find_people`.
        spec: ``"largest"``; ``"central"`` (mask centre nearest the image centre); a person number ``N``
            (1-based, as numbered by ``find_people``); or an ``(x, y)`` point in image pixels (a click: the person
            under it, or within 2% of the image's diagonal of it).
        image_hw: ``(height, width)`` of the image the people were found in.
        what: the image's name in messages ("the driving video", "the reference image").

    Returns:
        the chosen :class:`Person`.

    Raises:
        InputError: nobody was found, the number does not exist, the point is on background, or ``spec`` is none
            of the above.
    """
    if not people:
        raise InputError(f"no person found in {what}; use a picture in which a person is clearly visible")
    kind = person_spec_kind(spec)
    if kind == "largest":
        return max(people, key=lambda p: (p.area, -p.number))
    if kind == "central":
        h, w = image_hw
        return min(people, key=lambda p: (np.hypot(_centre(p)[0] - w / 2, _centre(p)[1] - h / 2), p.number))
    if kind == "number":
        for p in people:
            if p.number == int(spec):
                return p
        found = f"{len(people)} {'person' if len(people) == 1 else 'people'}"
        raise InputError(f"there is no person {int(spec)}: found {found} in {what} ({describe_people(people)})")
    x, y = (float(v) for v in spec)
    h, w = image_hw
    xi, yi = int(np.floor(x)), int(np.floor(y))
    if 0 <= xi < w and 0 <= yi < h:
        under = [p for p in people if p.mask[yi, xi] > 0.5]
        if under:
            return max(under, key=lambda p: float(p.mask[yi, xi]))
    reach = max(2.0, 0.02 * float(np.hypot(h, w)))
    best, best_d = None, reach
    for p in people:
        ys, xs = np.nonzero(p.mask > 0.5)
        d = float(np.sqrt(((xs + 0.5 - x) ** 2 + (ys + 0.5 - y) ** 2).min()))
        if d <= best_d:
            best, best_d = p, d
    if best is None:
        count = f"the {len(people)} people" if len(people) > 1 else "the person"
        raise InputError(f"no person there at ({x:.0f}, {y:.0f}) in {what}: click on {count} outlined")
    return best


def person_spec_kind(spec) -> str:
    """Which kind of person choice ``spec`` is: "largest", "central", "number" or "point".

    Raises:
        InputError: ``spec`` is none of them.
    """
    if isinstance(spec, str) and spec in PERSON_CHOICES:
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if int(spec) >= 1:
            return "number"
    elif isinstance(spec, (tuple, list, np.ndarray)) and len(spec) == 2:
        try:
            if all(np.isfinite(float(v)) for v in spec):
                return "point"
        except (TypeError, ValueError):
            pass
    raise InputError(f"a person is chosen with 'largest', 'central', a person number 1, 2, ... or an (x, y) "
                     f"point, got {spec!r}")


def parse_person_spec(text, flag: str = "--person"):
    """A CLI's ``--person`` / ``--reference-person`` value: ``largest``, ``central`` or a person number ``N`` >= 1
    (a value that is already a spec passes through).

    Raises:
        InputError: anything else, naming ``flag``.
    """
    if text is None or not isinstance(text, str):
        return text
    value = text.strip().lower()
    if value in PERSON_CHOICES:
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InputError(f"{flag} must be largest, central or a person number 1, 2, ..., got {text!r}")
    return number


def person_spec_json(spec):
    """``spec`` as JSON holds it: a name, a number, or ``[x, y]`` for a point."""
    kind = person_spec_kind(spec)
    if kind == "number":
        return int(spec)
    if kind == "point":
        return [float(v) for v in spec]
    return kind


# --- the record a cue folder keeps -----------------------------------------------------------------------------------


def person_record(spec, people: list[Person], chosen: Person | None) -> dict:
    """What ``cues.settings["person"]`` / ``["reference_person"]`` hold: the spec as given (JSON), the chosen
    person's number (None when nobody was found and the segmenter's own choice stands) and the boxes of the
    people found, in their numbered order."""
    return {"spec": person_spec_json(spec), "chosen": None if chosen is None else chosen.number,
            "people": [[round(float(v), 2) for v in p.box] for p in people]}


def several_people_warning(people: list[Person], chosen: Person, spec, what: str, role: str, flag: str) -> str | None:
    """The warning line for a picture with several people, None for one.

    Example: "3 people in the driving video; person 1 (largest) drives; --person N or a click in the app chooses
    another".
    """
    if len(people) < 2:
        return None
    how = person_spec_kind(spec)
    how = {"number": "chosen", "point": "clicked"}.get(how, how)
    return (f"{len(people)} people in {what}; person {chosen.number} ({how}) {role}; {flag} N or a click in the "
            "app chooses another")


def reference_person(segmenter, image: np.ndarray, spec="largest") -> tuple[np.ndarray, dict, str | None]:
    """The mask of the person to animate in the reference image.

    Args:
        segmenter: any backend with ``segment_image``.
        image: the reference at working size, uint8 ``[H, W, 3]``.
        spec: as for :func:`choose_person`.

    Returns:
        (mask float32 ``[H, W]``, the settings record (:func:`person_record`), a warning line or None). With one
        person the mask is the segmenter's own ``segment_image`` mask, unchanged.

    Raises:
        InputError: nobody in the image, or ``spec`` names nobody.
    """
    person_spec_kind(spec)  # a bad spec fails before any segmenting
    people = find_people(image, segmenter, hog=False)
    if not people:
        raise InputError("no person found in the reference image; use a photo in which one person is clearly "
                         "visible")
    chosen = choose_person(people, spec, image.shape[:2], what="the reference image")
    warning = several_people_warning(people, chosen, spec, "the reference image", "is animated",
                                     "--reference-person")
    return chosen.mask, person_record(spec, people, chosen), warning


def people_summary(settings: dict) -> list[str]:
    """Lines for a CLI: the people found in the driving video's first frame and in the reference image, and who
    was chosen (from ``cues.settings``; empty for cues made before people were recorded)."""
    lines = []
    for key, what, role in (("person", "the driving video (first frame)", "drives"),
                            ("reference_person", "the reference image", "is animated")):
        record = settings.get(key)
        if not isinstance(record, dict):
            continue
        boxes = record.get("people") or []
        found = f"{len(boxes)} {'person' if len(boxes) == 1 else 'people'}"
        listed = "; ".join(f"{i + 1}: x {b[0]:.0f}-{b[2]:.0f}, y {b[1]:.0f}-{b[3]:.0f}" for i, b in enumerate(boxes))
        chosen = record.get("chosen")
        who = f"person {chosen} {role}" if chosen else "the segmenter's own choice"
        lines.append(f"{found} in {what}" + (f" ({listed})" if listed else "") + f": {who}")
    return lines
