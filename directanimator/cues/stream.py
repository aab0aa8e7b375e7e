"""Streaming cue extraction for driving videos too long for memory: ``extract_cues_to_folder``.

``extract_cues`` holds the whole clip (frames, masks and every cue: ~8.6 MB a frame at 512 px, 39 GB for three
minutes at 25 fps). Here the clip goes through twice, a chunk of frames at a time, and only small per-frame
summaries stay in memory:

1. decode a chunk (``video.iter_video``), fit it to the working size, segment it (MediaPipe keeps one tracker
   through the clip: ``MediaPipeSegmenter.segment_stream``), search its faces, and write its frames and masks
   straight into the cue folder's compact streams (``storage.py``); keep each frame's mask area, score, facing,
   raw face box and score, and which pixels of the frame hold picture;
2. the clip-level steps on those summaries: the dropped frames (``drop_bad_frames``), the smoothed face boxes, and
   the one alignment transform (``framing.cue_alignment``, which reads the stored masks frame by frame);
3. read the frames and masks back a chunk at a time and write the pose cue, face cue and location masks.

The shot is chosen first, by a decoding pass of its own (``shots.detect_shots`` takes the frames one at a time).
The masks, flags, face boxes, transform and location masks are those of ``extract_cues``; the pose and face cues
are computed from the stored driving frames, so they differ from its by at most the storage's error on those
frames (max 2 gray levels, see ``storage.py``; exactly equal with ``lossless=True``) and, for the pose cue, by the
zero-padding the low-pass chooses per group of four frames. Resampling (``fps`` / ``num_frames``) picks the same
frames of the shot as ``extract_cues`` (``video.resample_indices``) while decoding. Not streamed yet: following
one of several people (``person_track.follow_person``).
"""

from __future__ import annotations

import os
import time
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import InputError
from ..files import atomic_folder
from ..progress import ProgressFn
from ..shots import ShotChoice, choose_shot, detect_shots, parse_shot
from ..video import fit_frames, iter_video, probe_video, resample_indices, write_audio
from .driving_cues import _ARRAYS, _PER_FRAME, AUDIO_FILE, DrivingCues, is_cue_folder, quantize_mask, write_small
from .extract import (_ms, _torch_threads, _turned_away, cue_record, frame_warnings,
                      reference_mask, shot_warnings, working_long_side, working_reference)
from .face_cue import face_cue
from .faces import FaceTrack, get_face_detector, smooth_boxes
from .framing import cue_alignment
from .location import align_and_soften, box_masks, transform_boxes
from .people import person_spec_kind
from .person_track import first_frame_person
from .pose import pose_cue
from .segment import drop_bad_frames, get_segmenter
from .settings import CueSettings
from .storage import FrameArray, FrameWriter

__all__ = ["STREAM_CHUNK", "STREAM_FROM", "SeveralPeople", "extract_cues_to_folder", "nearest_kept"]

STREAM_CHUNK = 64
"""Frames decoded, segmented and built at a time (~130 MB of working arrays at 512 px)."""

STREAM_FROM = 300
"""Driving clips with more frames than this are extracted by streaming, by the cue and animate CLIs (12 s at 25 fps:
~2.6 GB in memory at 512 px)."""


class SeveralPeople(InputError):
    """The streaming extraction met several people in the first frame (following one of them is not streamed
    yet); the CLIs then extract in memory."""


def nearest_kept(keep: np.ndarray) -> np.ndarray:
    """For every frame, the index of the nearest frame with ``keep`` True (ties: the earlier one); ``keep`` must
    have one True. The same choice as ``extract._fill_from_nearest``, in O(T log T) memory-light steps."""
    kept = np.flatnonzero(keep)
    t = np.arange(len(keep))
    right = np.clip(np.searchsorted(kept, t), 0, len(kept) - 1)
    left = np.clip(right - 1, 0, len(kept) - 1)
    take_left = np.abs(t - kept[left]) <= np.abs(kept[right] - t)
    return np.where(take_left, kept[left], kept[right])


def _segment_chunks(seg_model, chunks):
    """One ``Segmentation`` per chunk, through the segmenter's ``segment_stream`` when it has one (one tracker
    through the clip), else ``segment_video`` on each chunk (a fresh start per chunk)."""
    if hasattr(seg_model, "segment_stream"):
        yield from seg_model.segment_stream(chunks)
    else:
        for chunk in chunks:
            yield seg_model.segment_video(chunk)


def extract_cues_to_folder(
    reference,
    driving,
    out,
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
    lossless: bool = False,
    chunk: int = STREAM_CHUNK,
    progress: ProgressFn | None = None,
    before_close=None,
) -> DrivingCues:
    """Extract the cue triplet of the driving video file ``driving`` into the cue folder ``out``, a chunk of frames
    at a time (see the module docstring); memory does not grow with the clip beyond a few numbers per frame.

    Args:
        reference, settings, segmenter, face_detector, lowpass, face_enlarge, grid, size, fps, num_frames,
            max_frames, shot, person, reference_person: as for :func:`~directanimator.cues.extract_cues`
            (``person``: a video with several people in its first frame raises ``SeveralPeople`` for now).
        driving: the driving video's path.
        out: the cue folder to write (created, or an earlier cue folder replaced, as a whole).
        lossless: store the driving frames and face cue losslessly (bigger; see ``storage.py``).
        chunk: frames per step.
        progress: optional ``progress(fraction, desc)`` callback.
        before_close: optional ``before_close(cues, folder)`` called with the finished cues (read lazily from the
            folder being written) before it moves into place (the CLI writes its preview there).

    Returns:
        the cues, loaded lazily from ``out`` (:meth:`DrivingCues.load`).

    Raises:
        InputError: as ``extract_cues``; also a ``driving`` that is not a video file.
        SeveralPeople: several people in the first frame (nothing is written).
    """
    cue = (settings or CueSettings()).replace(lowpass=lowpass, face_enlarge=face_enlarge, grid=grid)
    size = working_long_side(size)
    if not isinstance(driving, (str, os.PathLike)):
        raise InputError("the streaming extraction reads a driving video file; give its path")
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    if fps is not None and not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    if num_frames is not None and int(num_frames) < 1:
        raise InputError(f"num_frames must be at least 1, got {num_frames}")
    chunk = max(1, int(chunk))
    person_spec_kind(person)
    person_spec_kind(reference_person)
    mode = parse_shot(shot)
    out = Path(out)
    if not is_cue_folder(out, empty_ok=True):
        raise InputError(f"{out} exists and is not a cue folder; choose another folder or remove it")
    report = progress or (lambda fraction, desc="": None)
    timings = {}
    start = time.perf_counter()
    report(0.0, "reading inputs")
    ref = working_reference(reference, size)
    height, width = ref.shape[:2]
    info = probe_video(driving)
    source, src_fps, max_side = os.fspath(driving), float(info.fps), max(1024, 2 * size)
    timings["read"] = _ms(start)

    start = time.perf_counter()
    report(0.02, "finding the shots")
    shots = detect_shots(iter_video(source, max_side=max_side), src_fps)
    used = choose_shot(shots, mode)
    choice = ShotChoice(mode, tuple(shots), used, None if mode == "all" else shots.index(used), src_fps)
    has_audio, warnings = shot_warnings(choice, info.has_audio, src_fps)
    first = used.start
    # the shot's frames used, in order (repeated when --fps raises the rate), as extract_cues resamples
    picks, fps = resample_indices(used.end - used.start, src_fps, fps,
                                  None if num_frames is None else int(num_frames))
    if max_frames is not None:
        picks = picks[:int(max_frames)]
    num = len(picks)
    timings["shots"] = _ms(start)

    start = time.perf_counter()
    seg_model = get_segmenter(segmenter) if isinstance(segmenter, str) else segmenter
    face_model = get_face_detector(face_detector) if isinstance(face_detector, str) else face_detector
    timings["load_models"] = _ms(start)
    start = time.perf_counter()
    ref_mask, ref_record, ref_warning = reference_mask(seg_model, ref, reference_person)
    timings["segment_reference"] = _ms(start)

    summary = SimpleNamespace(areas=np.zeros(num, np.float32), scores=np.zeros(num, np.float32),
                              facing=np.full(num, np.nan, np.float32))
    raw_boxes = np.full((num, 4), np.nan, np.float32)
    face_scores = np.zeros(num, np.float32)
    empty = np.zeros(num, bool)
    turned_away = np.zeros(num, bool)
    lit = np.zeros((height, width), bool)
    timings.update(segment=0.0, faces=0.0, pose=0.0, face=0.0, location=0.0, store=0.0)

    with atomic_folder(out, replaceable=lambda p: is_cue_folder(p, empty_ok=True)) as tmp:
        writers = {name: FrameWriter(tmp, name, _ARRAYS[name], channels, lossless=lossless)
                   for name, channels in _PER_FRAME.items()}
        held, record, person_warning, done = [], None, None, 0

        def fitted():  # the working-size chunks, kept in ``held`` for the loop below
            nonlocal record, person_warning
            decoded = _picked(iter_video(source, max_side=max_side, start=first, stop=first + int(picks[-1]) + 1),
                              picks)
            while frames := list(islice(decoded, chunk)):
                block = fit_frames(np.stack(frames), height, width, policy="pad")
                if record is None:
                    record, person_warning = _one_person(seg_model, block[0], person)
                held.append(block)
                yield block

        # pass 1: segment, find faces, store frames and masks, keep the summaries
        tick = time.perf_counter()
        for seg in _segment_chunks(seg_model, fitted()):
            frames = held.pop(0)
            a, b = done, done + len(frames)
            timings["segment"] += _ms(tick)
            masks = quantize_mask(seg.masks)
            summary.areas[a:b], summary.scores[a:b] = seg.areas, seg.scores
            if seg.facing is not None:
                summary.facing[a:b] = seg.facing
            empty[a:b] = ~(masks > 0.5).reshape(len(masks), -1).any(axis=1)
            turned_away[a:b] = _turned_away(seg, len(frames))
            tick = time.perf_counter()
            search = np.flatnonzero(~turned_away[a:b])
            if search.size:
                track = face_model.detect(frames[search], masks=masks[search])
                raw_boxes[a + search] = np.asarray(track.boxes, np.float32).reshape(-1, 4)
                face_scores[a + search] = np.asarray(track.scores, np.float32).reshape(-1)
            timings["faces"] += _ms(tick)
            tick = time.perf_counter()
            lit |= frames.max(axis=(0, 3)) > 0
            writers["driving"].append(frames)
            writers["driving_masks"].append(masks)
            timings["store"] += _ms(tick)
            done = b
            report(0.05 + 0.6 * done / max(num, 1), "segmenting and finding faces")
            tick = time.perf_counter()
        if done == 0:
            raise InputError(f"{Path(source).name}: no frame could be decoded; re-export it as mp4 (H.264)")
        if done < num:  # the file stated more frames than it decodes
            num = done
            summary = SimpleNamespace(areas=summary.areas[:num], scores=summary.scores[:num],
                                      facing=summary.facing[:num])
            raw_boxes, face_scores = raw_boxes[:num], face_scores[:num]
            empty, turned_away = empty[:num], turned_away[:num]

        # clip-level steps on the summaries
        dropped = np.asarray(drop_bad_frames(summary), dtype=bool) | empty
        if dropped.all():
            raise InputError("no person found in the driving video; use a clip in which one person is clearly "
                             "visible in most frames")
        boxes = raw_boxes
        if (~turned_away).any():
            boxes = np.asarray(smooth_boxes(FaceTrack(boxes=raw_boxes, scores=face_scores)).boxes, np.float32)
        tick = time.perf_counter()
        ref_face = np.asarray(face_model.detect(ref[None], masks=ref_mask[None]).boxes, np.float64).reshape(-1)[:4]
        timings["faces"] += _ms(tick)
        records = {name: writers[name].close() for name in ("driving", "driving_masks")}
        stored = {name: FrameArray(tmp, name, records[name]) for name in records}
        warnings += [w for w in (person_warning, ref_warning) if w]
        warnings += frame_warnings(dropped, turned_away, boxes)
        cue_settings = cue_record(seg_model, segmenter, face_model, face_detector, cue, size, reference, source,
                                  has_audio, choice, ref_face, record, ref_record, warnings, timings)
        cue_settings["streamed"] = True
        tick = time.perf_counter()
        found = cue_alignment(cue_settings, ref_mask, None, stored["driving_masks"], boxes, dropped,
                              driving_area=_area(lit))
        cue_settings.update(found.record())
        transform = found.transform
        timings["location"] += _ms(tick)

        # pass 2: the cues, a chunk at a time, from the stored frames and masks
        nearest = nearest_kept(~dropped)
        no_face = np.zeros(num, bool)
        for a in range(0, num, chunk):
            b = min(num, a + chunk)
            tick = time.perf_counter()
            frames = stored["driving"].frames(a, b)
            masks = stored["driving_masks"].frames(a, b)
            timings["store"] += _ms(tick)
            tick = time.perf_counter()
            with _torch_threads(1):
                pose = pose_cue(frames, masks, strength=cue_settings["lowpass"], dropped=dropped[a:b])
            timings["pose"] += _ms(tick)
            tick = time.perf_counter()
            face, no_face[a:b] = face_cue(frames, boxes[a:b], enlarge=cue_settings["face_enlarge"],
                                          out_hw=(height, width))
            timings["face"] += _ms(tick)
            tick = time.perf_counter()
            source_frames = nearest[a:b]
            if (source_frames != np.arange(a, b)).any():
                masks = stored["driving_masks"][source_frames]
            body = align_and_soften(masks, transform, (height, width), cue_settings["grid"])
            face_loc = box_masks(transform_boxes(boxes[a:b], transform), (height, width))
            timings["location"] += _ms(tick)
            tick = time.perf_counter()
            writers["pose_cue"].append(pose)
            writers["face_cue"].append(face)
            writers["body_location"].append(quantize_mask(body))
            writers["face_location"].append(quantize_mask(face_loc))
            timings["store"] += _ms(tick)
            report(0.65 + 0.33 * b / num, "building the cues")
        for name in ("pose_cue", "face_cue", "body_location", "face_location"):
            records[name] = writers[name].close()
        for key in list(timings):
            timings[key] = round(timings[key], 2)
        small = SimpleNamespace(reference=ref, reference_mask=ref_mask, face_boxes=boxes, dropped=dropped,
                                no_face=no_face, transform=transform, fps=fps, settings=cue_settings)
        write_small(tmp, small, {name: records[name] for name in _PER_FRAME})
        if has_audio:
            write_audio(tmp / AUDIO_FILE, source, num / fps)
        if before_close is not None:
            finished = DrivingCues.load(tmp)
            before_close(finished, tmp)
            small.settings = finished.settings  # what it added (e.g. a timing) goes into cues.json too
            write_small(tmp, small, {name: records[name] for name in _PER_FRAME})
    report(1.0, "done")
    return DrivingCues.load(out)


def _picked(frames, picks: np.ndarray):
    """The frames of the iterator ``frames`` (0, 1, 2, ...) named by the sorted indices ``picks``, repeats given
    again: one decoding pass whatever the resampling."""
    want = iter(picks.tolist())
    target = next(want, None)
    for t, frame in enumerate(frames):
        while target == t:
            yield frame
            target = next(want, None)
        if target is None:
            return


def _one_person(seg_model, frame, spec) -> tuple[dict, str | None]:
    """``settings["person"]`` for the first frame, as ``person_track.segment_chosen_person`` finds it; refuses
    several people (not streamed yet)."""
    people, _, record, warning = first_frame_person(seg_model, frame, spec)
    if len(people) > 1:
        raise SeveralPeople(f"the driving video shows {len(people)} people in its first frame; the streaming "
                            "extraction follows one person only for now: extract it in memory (extract_cues), "
                            "which follows the chosen one")
    return record, warning


def _area(lit: np.ndarray) -> tuple[int, int, int, int]:
    """``framing.content_box`` from the map of pixels that are not black in some frame."""
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if rows.size == 0:
        return 0, 0, lit.shape[1] - 1, lit.shape[0] - 1
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])
