"""Cue extraction: ``extract_cues`` segments the person in every driving frame and in the reference, finds the
face in every driving frame and builds the triplet; ``rebuild_cues`` recomputes the triplet from the stored frames,
masks and boxes with changed settings or user edits, without segmenting again (the app's live controls use it)."""

from __future__ import annotations

import contextlib
import json
import os
import time

import numpy as np
import torch

from ..errors import InputError
from ..progress import ProgressFn, sub_progress
from ..shots import pick_shot
from ..video import Video, fit_frames, read_image, read_video, resample_video, working_size
from .driving_cues import DrivingCues, _json_default, quantize_mask
from .face_cue import face_cue
from .faces import FaceTrack, get_face_detector, smooth_boxes
from .framing import cue_alignment
from .location import SimilarityTransform, align_and_soften, box_masks, transform_boxes
from .people import person_spec_kind
from .people import reference_person as reference_person_mask
from .person_track import segment_chosen_person
from .pose import pose_cue
from .segment import drop_bad_frames, get_segmenter
from .settings import CUE_SETTINGS_FIELDS, CueSettings

__all__ = ["DEFAULT_SIZE", "MIN_FACING", "extract_cues", "rebuild_cues"]

DEFAULT_SIZE = 512


def _read_driving(driving, fps, num_frames, max_side):
    """The driving clip as decoded, and the ``fps`` to resample it to (a bare array takes a lone ``fps`` as its
    own frame rate instead)."""
    if isinstance(driving, (str, os.PathLike)):
        video = read_video(driving, max_side=max_side)
    elif isinstance(driving, Video):
        video = read_video(driving, max_side=max_side)
    else:
        frames = np.asarray(driving)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError(f"driving frames must be [T,H,W,3] uint8, got shape {frames.shape}")
        video = read_video(frames, max_side=max_side)
        if fps is not None and num_frames is None:
            # A bare array has no frame rate of its own: take the given one as its rate rather than resampling.
            video = Video(video.frames, float(fps), video.source, video.has_audio)
            fps = None
    return video, fps


def _resample_driving(video, fps, num_frames, max_frames):
    if fps is not None or num_frames is not None:
        if fps is not None and not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if num_frames is not None and int(num_frames) < 1:
            raise InputError(f"num_frames must be at least 1, got {num_frames}")
        video = resample_video(video, fps=fps, num_frames=num_frames)
    if max_frames is not None and video.num_frames > int(max_frames):
        video = Video(video.frames[: int(max_frames)], video.fps, video.source, video.has_audio)
    return video


def shot_warnings(choice, has_audio: bool, fps: float) -> tuple[bool, list[str]]:
    """Whether the cues keep the driving audio once ``choice`` (a ``ShotChoice``) is used, and the warnings to give:
    the shots found, and the audio dropped when the shot used does not start the clip (the audio would start where
    the clip starts, not where the shot does). Shared by ``extract_cues`` and the streaming extraction."""
    warnings = [w for w in [choice.warning()] if w]
    if has_audio and choice.used.start > 0:
        has_audio = False
        warnings.append(f"the result is silent: the driving audio does not line up with a shot that starts at "
                        f"{choice.used.start / fps:.1f} s")
    return has_audio, warnings


def working_long_side(size: int | None) -> int:
    """The working long side in pixels (default 512), checked; shared by ``extract_cues`` and the streaming
    extraction, which check it before anything else."""
    size = DEFAULT_SIZE if size is None else int(size)
    if size < 32 or size > 2048:
        raise InputError(f"size must be between 32 and 2048 pixels, got {size}")
    return size


def working_reference(reference, size: int) -> np.ndarray:
    """The reference image at the working size (long side ``size``, multiples of 16); shared by ``extract_cues``
    and the streaming extraction.

    Raises:
        InputError: an unreadable image.
    """
    ref_image = read_image(reference)
    height, width = working_size(ref_image.shape[0], ref_image.shape[1], long_side=size)
    # The reference's own aspect only differs from the working one by the rounding to multiples of 16, so a
    # crop loses a few pixels at most where padding would add black bars.
    return fit_frames(ref_image, height, width, policy="crop")


def reference_mask(seg_model, ref: np.ndarray, reference_person) -> tuple[np.ndarray, dict, str | None]:
    """The quantised mask of the person to animate in the working-size reference, its settings record and a
    warning (``people.reference_person``); shared by ``extract_cues`` and the streaming extraction.

    Raises:
        InputError: nobody in the reference, or ``reference_person`` names nobody.
    """
    mask, record, warning = reference_person_mask(seg_model, ref, reference_person)
    mask = quantize_mask(mask)
    if not (mask > 0.5).any():
        raise InputError("no person found in the reference image; use a photo in which one person is clearly visible")
    return mask, record, warning


def _choose_shot(video, shot):
    """The frames of the chosen shot (at the clip's own rate), its ``ShotChoice`` and the warnings to give."""
    frames, choice = pick_shot(video.frames, video.fps, shot)
    has_audio, warnings = shot_warnings(choice, video.has_audio, video.fps)
    return Video(frames, video.fps, video.source, has_audio), choice, warnings


def extract_cues(
    reference,
    driving,
    settings: CueSettings | None = None,
    *,
    segmenter="mediapipe",
    face_detector="mediapipe",
    lowpass: float | None = None,
    face_enlarge: float | None = None,
    grid: int | None = None,
    size: int | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    shot="longest",
    person="largest",
    reference_person="largest",
    progress: ProgressFn | None = None,
) -> DrivingCues:
    """Extract the driving cue triplet of ``driving`` aligned to the person in ``reference``.

    Args:
        reference: reference image: path, PIL image or ``[H, W, 3]`` uint8 array.
        driving: driving video: path, ``video.Video`` or ``[T, H, W, 3]`` uint8 array.
        segmenter: person segmenter name (``"mediapipe"`` offline default, ``"grounded-sam"``) or an object with
            ``segment_video`` / ``segment_image``.
        settings: :class:`CueSettings` (default: the paper's, with the framing-robust ``"auto"`` alignment: the
            reference's face is detected too, and ``cues.json`` records it and the alignment used). The arrays
            always hold the paper's pose and face cues at these low-pass / enlarge / grid settings; the ablation
            modes and dropped cues are recorded and applied when the model's inputs are built
            (``directanimator.cues.variants.cue_inputs``).
        face_detector: face detector name (``"mediapipe"``, ``"insightface"``) or an object with ``detect``.
        lowpass, face_enlarge, grid: override these fields of ``settings`` (see :class:`CueSettings`).
        size: working long side in pixels (multiple of 16; default 512).
        fps: resample the driving clip to this frame rate (default: keep).
        num_frames: resample the driving clip to this many frames (default: keep).
        max_frames: then keep at most its first ``max_frames`` frames (default: all).
        shot: which shot of the driving clip to use, chosen on its frames at their own rate before any
            resampling (``directanimator.shots``): ``"longest"`` (default), ``"all"`` (every frame, shots mixed)
            or a 1-based shot number. ``settings["shots"]`` records the shots found and the frames used.
        person: who drives when the driving video shows several people: ``"largest"``, ``"central"``, a person
            number (1-based, largest first, as found in the first frame) or an ``(x, y)`` point in the pixels of
            the working-size frames (``cues.driving[0]``); the chosen person is followed through the clip
            (``person_track.py``). With one person the segmenter's own tracking runs, unchanged.
        reference_person: the same for the reference image (a point in ``cues.reference`` pixels).
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        :class:`DrivingCues`.

    Raises:
        InputError: unreadable inputs, no person in the reference, no person in any driving frame, bad settings,
            a bad ``shot``, a driving clip that is all cuts, or a ``person`` / ``reference_person`` that names nobody (the message lists the people found).
    """
    cue = (settings or CueSettings()).replace(lowpass=lowpass, face_enlarge=face_enlarge, grid=grid)
    size = working_long_side(size)
    person_spec_kind(person)  # a bad spec fails before any long work
    person_spec_kind(reference_person)
    timings = {}
    start = time.perf_counter()
    if progress:
        progress(0.0, "reading inputs")
    ref = working_reference(reference, size)
    height, width = ref.shape[:2]
    video, fps = _read_driving(driving, fps, num_frames, max_side=max(1024, 2 * size))
    timings["read"] = _ms(start)
    start = time.perf_counter()
    video, shots, warnings = _choose_shot(video, shot)
    timings["shots"] = _ms(start)
    start = time.perf_counter()
    video = _resample_driving(video, fps, num_frames, max_frames)
    frames = fit_frames(video.frames, height, width, policy="pad")
    timings["read"] += _ms(start)

    start = time.perf_counter()
    seg_model = get_segmenter(segmenter) if isinstance(segmenter, str) else segmenter
    face_model = get_face_detector(face_detector) if isinstance(face_detector, str) else face_detector
    timings["load_models"] = _ms(start)

    start = time.perf_counter()
    ref_mask, ref_record, ref_warning = reference_mask(seg_model, ref, reference_person)
    timings["segment_reference"] = _ms(start)
    start = time.perf_counter()
    if progress:
        progress(0.05, "segmenting the driving video")
    chosen = segment_chosen_person(seg_model, frames, person, sub_progress(progress, 0.05, 0.65))
    seg = chosen.segmentation
    timings["find_people"] = chosen.find_ms  # part of "segment"
    masks = quantize_mask(seg.masks)
    dropped = np.asarray(drop_bad_frames(seg), dtype=bool)
    empty = ~(masks > 0.5).reshape(len(masks), -1).any(axis=1)
    dropped |= empty
    timings["segment"] = _ms(start)
    if dropped.all():
        raise InputError("no person found in the driving video; use a clip in which one person is clearly "
                         "visible in most frames")

    start = time.perf_counter()
    if progress:
        progress(0.65, "finding faces")
    # A face detector also "finds" the back of a head; the segmenter's landmarks say when the person is turned
    # away, and those frames are not searched (no face is better than hair in the face cue).
    turned_away = _turned_away(seg, len(frames))
    search = np.flatnonzero(~turned_away)
    boxes = np.full((len(frames), 4), np.nan, np.float32)
    if search.size:
        track = face_model.detect(frames[search], masks=masks[search], progress=sub_progress(progress, 0.65, 0.9))
        found = np.asarray(track.boxes, dtype=np.float32).reshape(-1, 4)
        boxes[search] = found
        scores = np.zeros(len(frames), np.float32)
        scores[search] = np.asarray(track.scores, np.float32).reshape(-1)
        boxes = np.asarray(smooth_boxes(FaceTrack(boxes=boxes, scores=scores)).boxes, dtype=np.float32)
    # The reference's face: where the "auto" alignment puts the driving face when a frame edge cuts the body.
    ref_face = np.asarray(face_model.detect(ref[None], masks=ref_mask[None]).boxes, np.float64).reshape(-1)[:4]
    timings["faces"] = _ms(start)

    warnings += [w for w in (chosen.warning, ref_warning) if w]
    warnings += frame_warnings(dropped, turned_away, boxes)
    settings = cue_record(seg_model, segmenter, face_model, face_detector, cue, size, reference, video.source,
                          video.has_audio, shots, ref_face, chosen.record, ref_record, warnings, timings)
    if progress:
        progress(0.9, "building the cues")
    cues = _build(ref, ref_mask, frames, masks, boxes, dropped, video.fps, settings, transform=None)
    if progress:
        progress(1.0, "done")
    return cues


def frame_warnings(dropped, turned_away, boxes) -> list[str]:
    """The warnings about the driving frames: dropped ones, ones seen from behind, no face anywhere."""
    warnings = []
    if dropped.any():
        warnings.append(f"{int(dropped.sum())} of {len(dropped)} driving frames have no usable person mask; their "
                        "pose cue is zero")
    if turned_away.any():
        warnings.append(f"{int(turned_away.sum())} of {len(turned_away)} driving frames show the person from behind; "
                        "their face cue is empty")
    if not np.isfinite(boxes).all(axis=1).any():
        warnings.append("no face found in the driving video; the face cue is empty (expressions will not be "
                        "transferred)")
    return warnings


def cue_record(seg_model, segmenter, face_model, face_detector, cue, size, reference, source, has_audio, shots,
               ref_face, person, ref_person, warnings, timings) -> dict:
    """``DrivingCues.settings`` of an extraction: how the cues were made and from what (see its docstring)."""
    return {
        "segmenter": getattr(seg_model, "name", str(segmenter)),
        "face_detector": getattr(face_model, "name", str(face_detector)),
        **cue.to_dict(),
        "size": size,
        "reference_path": str(reference) if isinstance(reference, (str, os.PathLike)) else None,
        "driving_path": source,
        "driving_has_audio": bool(has_audio),
        "transform_manual": False,
        "shots": shots.to_dict(),
        "reference_face_box": [round(float(v), 3) for v in ref_face] if np.isfinite(ref_face).all() else None,
        "person": person,
        "reference_person": ref_person,
        "warnings": warnings,
        "timings_ms": timings,
    }


MIN_FACING = 0.2
"""Frames whose segmentation ``facing`` is below this are treated as seen from behind (no face searched).
0.5 is a profile; the walk example's back views are below 0.01, frontal people above 0.99."""


def _turned_away(seg, num: int) -> np.ndarray:
    """bool ``[T]``: frames where the segmenter says the person is turned away from the camera.

    Unknown facing (NaN, or a segmenter that does not report it, like Grounded SAM) never rejects a frame.
    """
    facing = getattr(seg, "facing", None)
    if facing is None:
        return np.zeros(num, dtype=bool)
    facing = np.asarray(facing, dtype=np.float32).reshape(-1)
    if facing.shape != (num,):
        return np.zeros(num, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(facing, nan=1.0) < MIN_FACING


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


def _fill_from_nearest(masks: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Masks where frames not in ``keep`` take the nearest kept frame's mask (ties: the earlier one)."""
    kept = np.flatnonzero(keep)
    if kept.size == len(masks) or kept.size == 0:
        return masks
    nearest = kept[np.abs(np.arange(len(masks))[:, None] - kept[None, :]).argmin(axis=1)]
    return masks[nearest]


@contextlib.contextmanager
def _torch_threads(threads: int):
    """Run with ``threads`` torch intra-op threads, then restore the caller's setting.

    The pose cue's FFTs are ~3 ms/frame on one thread; with two OpenMP threads on a CPU that other processes keep
    busy they took 14-29 ms/frame (the threads wait for each other), and ~2 ms on an idle one: one thread is the
    robust choice. Results do not depend on the thread count (the FFTs are split over independent rows).
    """
    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build(ref, ref_mask, frames, masks, boxes, dropped, fps, settings, transform) -> DrivingCues:
    """Compute the three cues from frames, masks and boxes (shared by extract_cues and rebuild_cues)."""
    height, width = ref.shape[:2]
    timings = settings.setdefault("timings_ms", {})
    start = time.perf_counter()
    with _torch_threads(1):
        pose = pose_cue(frames, masks, strength=settings["lowpass"], dropped=dropped)
    timings["pose"] = _ms(start)

    start = time.perf_counter()
    face, no_face = face_cue(frames, boxes, enlarge=settings["face_enlarge"], out_hw=(height, width))
    timings["face"] = _ms(start)

    start = time.perf_counter()
    if transform is None:
        found = cue_alignment(settings, ref_mask, frames, masks, boxes, dropped)
        transform = found.transform
        settings.update(found.record())
    # A dropped frame's mask is what made it fail; its location comes from the nearest kept frame instead.
    body = align_and_soften(_fill_from_nearest(masks, ~dropped), transform, (height, width), settings["grid"])
    face_loc = box_masks(transform_boxes(boxes, transform), (height, width))
    timings["location"] = _ms(start)
    return DrivingCues(
        reference=ref, reference_mask=ref_mask, driving=frames, driving_masks=masks, pose_cue=pose,
        face_cue=face, body_location=quantize_mask(body), face_location=quantize_mask(face_loc), face_boxes=boxes, dropped=dropped,
        no_face=no_face, transform=transform, fps=float(fps), settings=settings,
    )


def rebuild_cues(
    cues: DrivingCues,
    settings: CueSettings | None = None,
    *,
    lowpass: float | None = None,
    face_enlarge: float | None = None,
    grid: int | None = None,
    scale: float | None = None,
    offset: tuple[float, float] | None = None,
    transform: SimilarityTransform | str | None = None,
    reference_mask: np.ndarray | None = None,
    driving_masks: np.ndarray | None = None,
    face_boxes=None,
    dropped: np.ndarray | None = None,
    reference_face_box=None,
) -> DrivingCues:
    """Recompute the pose, face and location cues with changed settings or edits, without segmenting again.

    Args:
        cues: the cues to start from (not modified).
        settings: new :class:`CueSettings` (default: those of ``cues``).
        lowpass, face_enlarge, grid: override these fields (new low-pass strength in [0, 1], face crop enlarge
            factor, softening grid with 0 = hard masks).
        scale: override the alignment scale; unless ``offset`` is given too, the translation is recomputed in the
            alignment mode (eq. 10: the person stays centred on the reference person; or the face, or the top of
            the head, stays where ``directanimator.cues.framing`` puts it).
        offset: override the alignment translation ``(tx, ty)`` in reference pixels.
        transform: a full :class:`SimilarityTransform` to use, or ``"auto"`` to re-estimate it from the masks
            (dropping an earlier manual override). By default a manual transform is kept and an estimated one is
            re-estimated (the same unless masks changed).
        reference_mask: an edited reference mask ``[H, W]``.
        driving_masks: edited driving masks ``[T, H, W]``.
        face_boxes: edited face boxes: a full ``[T, 4]`` array, or ``{frame_index: (x0, y0, x1, y1) or None}``
            for some frames (None removes the face of that frame). Edited boxes are used as given.
        dropped: edited ``[T]`` bool dropped flags (e.g. to drop or restore frames by hand).
        reference_face_box: the reference's face box ``(x0, y0, x1, y1)`` (reference pixels) for the ``"auto"``
            alignment, e.g. for cue folders made before it was recorded; ``"none"`` removes it.

    Returns:
        a new :class:`DrivingCues`.

    Raises:
        InputError: bad settings or edits of the wrong shape, or no usable person mask left.
    """
    cue = (settings or cues.cue_settings).replace(lowpass=lowpass, face_enlarge=face_enlarge, grid=grid)
    # Segmentation and face timings stay those of the original extraction; pose/face/location are re-timed.
    settings = json.loads(json.dumps(cues.settings, default=_json_default))
    kept = cue.to_dict()  # cues built by hand may not record every setting; an ablation mode may go back
    for name in CUE_SETTINGS_FIELDS:
        if name not in kept:
            settings.pop(name, None)
    settings.update(kept)
    num, height, width = cues.num_frames, cues.height, cues.width

    ref_mask = cues.reference_mask
    if reference_mask is not None:
        ref_mask = _as_mask(reference_mask, (height, width), "reference mask")
    masks = cues.driving_masks
    if driving_masks is not None:
        masks = _as_mask(driving_masks, (num, height, width), "driving masks")
    boxes = cues.face_boxes.copy()
    if isinstance(face_boxes, dict):
        for index, box in face_boxes.items():
            if not 0 <= int(index) < num:
                raise InputError(f"face box frame {index} is out of range (0..{num - 1})")
            boxes[int(index)] = np.nan if box is None else _as_box(box)
    elif face_boxes is not None:
        boxes = np.asarray(face_boxes, dtype=np.float32)
        if boxes.shape != (num, 4):
            raise InputError(f"face boxes must have shape ({num}, 4), got {boxes.shape}")
    if isinstance(reference_face_box, str) and reference_face_box == "none":
        settings["reference_face_box"] = None
    elif reference_face_box is not None:
        settings["reference_face_box"] = [float(v) for v in _as_box(reference_face_box)]
    flags = cues.dropped.copy() if dropped is None else np.asarray(dropped, dtype=bool)
    if flags.shape != (num,):
        raise InputError(f"dropped flags must have shape ({num},), got {flags.shape}")
    if driving_masks is not None:
        flags = flags | ~(masks > 0.5).reshape(num, -1).any(axis=1)
    if flags.all():
        raise InputError("every driving frame is dropped; keep at least one frame with a person mask")

    start = time.perf_counter()
    if isinstance(transform, SimilarityTransform):
        new_transform, manual = transform, True
    elif transform == "auto":
        new_transform, manual = None, False
    elif transform is None:
        manual = bool(settings.get("transform_manual"))
        new_transform = cues.transform if manual else None
    else:
        raise InputError(f"transform must be a SimilarityTransform or 'auto', got {transform!r}")

    def estimate(s=None):  # the settings' alignment mode (framing.cue_alignment), recorded in the settings
        found = cue_alignment(settings, ref_mask, cues.driving, masks, boxes, flags, scale=s)
        settings.update(found.record())
        return found.transform

    if scale is not None or offset is not None:
        if scale is not None and not float(scale) > 0:
            raise InputError(f"alignment scale must be positive, got {scale}")
        base = new_transform or estimate()
        s = float(scale) if scale is not None else base.scale
        if offset is not None:
            tx, ty = (float(v) for v in offset)
        elif scale is not None:
            centred = estimate(s)
            tx, ty = centred.tx, centred.ty
        else:
            tx, ty = base.tx, base.ty
        new_transform, manual = SimilarityTransform(s, tx, ty), True
    elif new_transform is None:
        new_transform = estimate()
    settings["transform_manual"] = manual
    align_ms = _ms(start)

    warnings = [w for w in settings.get("warnings", []) if "driving frames have no usable" not in w]
    if flags.any():
        warnings.insert(0, f"{int(flags.sum())} of {num} driving frames have no usable person mask; their pose "
                           "cue is zero")
    settings["warnings"] = warnings
    rebuilt = _build(cues.reference, ref_mask, cues.driving, masks, boxes, flags, cues.fps, settings, new_transform)
    rebuilt.settings["timings_ms"]["location"] = rebuilt.settings["timings_ms"]["location"] + align_ms
    return rebuilt


def _as_mask(value, shape, what) -> np.ndarray:
    mask = np.asarray(value, dtype=np.float32)
    if mask.shape != shape:
        raise InputError(f"{what} must have shape {shape}, got {mask.shape}")
    if mask.size and (np.nanmax(mask) > 1.0 + 1e-6 or np.nanmin(mask) < 0.0):
        # Accept 0/255 paint masks from image editors.
        mask = mask / 255.0 if np.nanmax(mask) <= 255.0 and np.nanmin(mask) >= 0.0 else mask
    return quantize_mask(np.nan_to_num(mask))


def _as_box(box) -> np.ndarray:
    box = np.asarray(box, dtype=np.float32).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise InputError(f"a face box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box.tolist()}")
    return box
