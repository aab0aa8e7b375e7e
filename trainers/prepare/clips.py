"""One source video turned into clips: its shots, the shot filters, the trimmed and resampled clip of each shot
that passes, its person check and reference frame, the files written and the source's report.

A source is decoded twice, both times streamed (:class:`~trainers.prepare.decode.FrameStream`): first at
:data:`~trainers.prepare.quality.ANALYSIS_SIDE` px to find the shots (``directanimator.shots.detect_shots``) and
measure every frame, then at the output size, converting only the frames the kept clips and their reference
candidates use and stopping after the last of them. At most one clip's frames are in memory at a time.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from directanimator.errors import InputError
from directanimator.files import atomic_path, atomic_write_json
from directanimator.shots import detect_shots
from directanimator.video import write_video
from trainers.prepare.captions import DEFAULT_PROMPT
from trainers.prepare.decode import FrameStream, probe_source
from trainers.prepare.main_person import PersonLimits, check_people, find_people, pick_reference
from trainers.prepare.quality import ANALYSIS_SIDE, FrameStats, QualityLimits, shot_problem
from trainers.prepare.sources import Source

__all__ = ["CHECK_SIDE", "ClipSettings", "Backends", "REASONS", "prepare_source"]

CHECK_SIDE = 512
"""The person check and the reference choice look at frames decoded with this long side at least (or the
source's own size when smaller), whatever ``--long-side`` the clips are written at: passers-by in a street
(vtest.avi) are 20 px tall at 256 px, where the segmenter misses half of them, and found at 384 px and up."""

REASONS = ("too short", "too dark", "too blurry", "static", "no person", "several people")
"""Why a shot is dropped, in the order the filters run."""


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut from the shots (everything that changes the written dataset).

    Args:
        min_seconds / max_seconds: a shot shorter than ``min_seconds`` is dropped, a longer one is trimmed to its
            first ``max_seconds``.
        fps: frame rate of the written clips (frames are picked, not interpolated); None keeps the source's.
        long_side: the clips' long side in pixels at most (never upscaled; the aspect ratio is kept).
        crf: x264 quality of the written clips.
        caption: caption given to every clip ("" for none).
        caption_model: a Qwen2-VL-family model folder or repo id that captions every clip ("" for none; its
            caption replaces ``caption``), ``caption_prompt`` the question it is asked.
        quality / people: the shot filters' and the person check's thresholds.
    """

    min_seconds: float = 5.0
    max_seconds: float = 20.0
    fps: float | None = 8.0
    long_side: int = 512
    crf: int = 18
    caption: str = ""
    caption_model: str = ""
    caption_prompt: str = DEFAULT_PROMPT
    quality: QualityLimits = field(default_factory=QualityLimits)
    people: PersonLimits = field(default_factory=PersonLimits)

    def to_dict(self) -> dict:
        """The settings as plain JSON values (stored in the dataset's ``prepare.json``)."""
        return asdict(self)


class Backends:
    """The person segmenter, face detector and captioner of one process, built on first use (MediaPipe's are
    offline; the captioner only with a ``caption_model``)."""

    def __init__(self, segmenter: str = "mediapipe", face_detector: str = "mediapipe", caption_model: str = "",
                 caption_prompt: str = DEFAULT_PROMPT, caption_batch: int = 8, arcface: str = ""):
        self.names = (segmenter, face_detector)
        self.caption_model, self.caption_prompt, self.caption_batch = caption_model, caption_prompt, caption_batch
        self.arcface = arcface
        self._segmenter = self._faces = self._captioner = self._embedder = None

    @property
    def embedder(self):
        """The :class:`~trainers.prepare.identities.FaceEmbedder`, or None without ArcFace weights."""
        if self._embedder is None and self.arcface:
            from trainers.prepare.identities import FaceEmbedder

            self._embedder = FaceEmbedder(self.arcface)
        return self._embedder

    @property
    def captioner(self):
        """The :class:`~trainers.prepare.captions.Captioner`, or None without a caption model."""
        if self._captioner is None and self.caption_model:
            from trainers.prepare.captions import Captioner

            self._captioner = Captioner(self.caption_model, prompt=self.caption_prompt)
        return self._captioner

    @property
    def segmenter(self):
        """The person segmenter."""
        if self._segmenter is None:
            from directanimator.cues.segment import get_segmenter

            self._segmenter = get_segmenter(self.names[0])
        return self._segmenter

    @property
    def faces(self):
        """The face detector."""
        if self._faces is None:
            from directanimator.cues.faces import get_face_detector

            self._faces = get_face_detector(self.names[1])
        return self._faces


@dataclass
class _Plan:
    """A clip that passed the shot filters: the source frames it uses and its reference candidates.

    Args:
        entry: its place in the source report's list of clips.
    """

    entry: int
    picks: list[int]
    candidates: list[int]
    frames: dict = field(default_factory=dict)
    wanted: set = field(default_factory=set)

    def __post_init__(self):
        self.wanted = set(self.picks) | set(self.candidates)

    @property
    def first(self) -> int:
        return min(self.picks + self.candidates)

    @property
    def last(self) -> int:
        return max(self.picks + self.candidates)


def _picks(start: int, end: int, src_fps: float, fps: float | None) -> list[int]:
    """Source frames of ``start..end-1`` shown at the output rate (as ``directanimator.video.resample_video``)."""
    if fps is None:
        return list(range(start, end))
    count = max(1, math.ceil((end - start) * fps / src_fps - 1e-9))
    return [min(end - 1, start + int(math.floor(k * src_fps / fps + 1e-6))) for k in range(count)]


def _fit(frames: np.ndarray, long_side: int) -> np.ndarray:
    """``[T, H, W, 3]`` frames scaled down (area filter) to ``long_side`` on their long side, if they are larger."""
    h, w = frames.shape[1:3]
    if max(h, w) <= long_side:
        return frames
    s = long_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def report_path(out: Path, source: Source) -> Path:
    """Where the report of ``source`` goes (written last: a source with a report is finished)."""
    return out / "reports" / f"{source.key}.json"


def _clear_leftovers(out: Path, source: Source) -> None:
    """Remove the clips and references an interrupted earlier attempt at ``source`` left behind."""
    for folder, suffix in (("clips", ".mp4"), ("refs", ".png")):
        base = out / folder
        if base.is_dir():
            for p in base.glob(f"{source.key}_shot*{suffix}"):
                p.unlink(missing_ok=True)


def _unreadable(out: Path, source: Source, base: dict, exc: InputError) -> dict:
    report = {**base, "status": "unreadable", "reason": str(exc).split(": ", 1)[-1]}
    atomic_write_json(report_path(out, source), report)
    return report


def prepare_source(source: Source, out: Path, settings: ClipSettings, backends: Backends) -> dict:
    """Cut ``source`` into clips under ``out`` and write its report (``reports/<key>.json``, last); return it.

    A file that cannot be read gives a report with ``"status": "unreadable"`` and its reason; the run goes on.
    """
    timing = dict.fromkeys(("decode", "shots", "quality", "people", "writing"), 0.0)
    base = {"source": source.rel, "identity": source.identity, "key": source.key}
    _clear_leftovers(out, source)
    try:
        info = probe_source(source.path)
    except InputError as exc:
        return _unreadable(out, source, base, exc)

    # pass 1: shots and frame statistics from small copies
    stats = FrameStats()
    first = FrameStream(source.path, ANALYSIS_SIDE)

    def measured():
        for frame in first:
            clock = time.perf_counter()
            stats.add(frame)
            timing["quality"] += time.perf_counter() - clock
            yield frame

    clock = time.perf_counter()
    try:
        shots = detect_shots(measured(), info.fps)
    except InputError as exc:  # nothing decodable after the first frame, or frames of a shape it cannot take
        return _unreadable(out, source, base, exc)
    timing["decode"] += first.decode_seconds
    timing["shots"] += time.perf_counter() - clock - first.decode_seconds - timing["quality"]
    arrays, count = stats.arrays(), first.count

    entries, plans = [], []
    max_frames = max(1, int(math.floor(settings.max_seconds * info.fps + 1e-6)))
    for n, shot in enumerate(shots):
        # the frame on each side of a cut is left out: a cut found one frame late would leak into the clip
        start = shot.start + (1 if n > 0 else 0)
        end = max(start, shot.end - (1 if n < len(shots) - 1 else 0))
        # a shot longer than --max-seconds gives as many whole clips of --max-seconds as fit, one after the other
        pieces = [(start, end)] if end - start <= max_frames else [
            (start + k * max_frames, start + (k + 1) * max_frames) for k in range((end - start) // max_frames)]
        for k, (a, b) in enumerate(pieces):
            entry = {"shot": n, "piece": k, "frames": [shot.start, shot.end], "kept": False, "reason": None}
            entries.append(entry)
            problem = shot_problem(arrays, a, b, info.fps, settings.quality)
            if problem:
                entry["reason"] = problem
                continue
            entry["window"] = [a, b]
            # reference candidates from another moment of the shot: the next clip's frames, and for the last clip
            # the rest of the shot when there is half a second of it, else the previous clip's (so at most two
            # clips' frames are held at a time, however long the shot)
            tail = (b, end) if end - b >= max(2, info.fps / 2) else None
            rest = pieces[k + 1] if k + 1 < len(pieces) else tail or (pieces[k - 1] if k else None)
            candidates = [] if rest is None else sorted(
                {int(i) for i in np.linspace(rest[0], rest[1] - 1, settings.people.samples).round()})
            plans.append(_Plan(len(entries) - 1, _picks(a, b, info.fps, settings.fps), candidates))

    rows, to_caption = [], []
    if plans:
        wanted = set()
        for plan in plans:
            wanted.update(plan.picks, plan.candidates)
        second = FrameStream(source.path, max(settings.long_side, CHECK_SIDE), wanted=wanted.__contains__,
                             stop=max(p.last for p in plans) + 1)
        # finished in the order their last frame comes (their first frames come in that order too)
        pending = sorted(plans, key=lambda p: (p.last, p.first))
        for index, frame in enumerate(second):
            if frame is None:
                continue
            for plan in pending:  # a frame can be one clip's and another's reference candidate
                if plan.first > index:
                    break
                if index in plan.wanted:
                    plan.frames[index] = frame
            while pending and index >= pending[0].last:
                plan = pending.pop(0)
                rows += _finish(plan, source, out, settings, backends, entries[plan.entry], info.fps, timing,
                                to_caption)
                plan.frames.clear()
            if not pending:
                break
        timing["decode"] += second.decode_seconds
        for plan in pending:  # the file ended early (truncated): what was not decoded is too short now
            entries[plan.entry]["reason"] = "too short"
        rows.sort(key=lambda row: row["file_name"])  # in the order of the clips in the source
    if to_caption:
        clock = time.perf_counter()
        step = max(1, backends.caption_batch)
        for k in range(0, len(to_caption), step):
            batch = to_caption[k:k + step]
            for (row, _), text in zip(batch, backends.captioner.caption([f for _, f in batch])):
                if text:
                    row["caption"] = text
        timing["captions"] = timing.get("captions", 0.0) + time.perf_counter() - clock
    report = {**base, "status": "done", "fps": info.fps, "frames": count, "seconds": count / info.fps,
              "decode_error": first.error, "shots": entries, "rows": rows,
              "timing": {k: round(v, 4) for k, v in timing.items()}}
    atomic_write_json(report_path(out, source), report)
    return report


def _finish(plan: _Plan, source: Source, out: Path, settings: ClipSettings, backends: Backends, entry: dict,
            src_fps: float, timing: dict, to_caption: list) -> list[dict]:
    """Person check, reference choice and writing of one planned clip; returns its metadata row (or none), and
    adds ``(row, a few of its frames)`` to ``to_caption`` when clips are captioned."""
    clock = time.perf_counter()
    frames = np.stack([plan.frames[i] for i in plan.picks])
    check = check_people(backends.segmenter, frames, settings.people)
    problem = check.problem(settings.people)
    if problem:
        entry["reason"] = problem
        timing["people"] += time.perf_counter() - clock
        return []
    if plan.candidates:
        # the clip's own check said it shows one person: here the person only has to be found
        found = [(plan.frames[i], *find_people(backends.segmenter, plan.frames[i], settings.people,
                                               second_search=False)) for i in plan.candidates]
        candidates = [(f, mask, facing, present and not second) for f, mask, _, facing, present, second in found]
        positions = plan.candidates
    else:
        candidates = [(frames[i], check.masks[k], float(check.facing[k]), bool(check.present[k] and not check.second[k]))
                      for k, i in enumerate(check.indices)]
        positions = [plan.picks[i] for i in check.indices]
    chosen = pick_reference(backends.faces, candidates)
    if chosen is None and plan.candidates:  # nobody usable after the clip: one of the clip's own frames
        candidates = [(frames[i], check.masks[k], float(check.facing[k]), bool(check.present[k]))
                      for k, i in enumerate(check.indices)]
        positions = [plan.picks[i] for i in check.indices]
        chosen = pick_reference(backends.faces, candidates)
    timing["people"] += time.perf_counter() - clock
    if chosen is None:
        entry["reason"] = "no person"
        return []
    clock = time.perf_counter()
    name = f"{source.key}_shot{entry['shot']:03d}" + (f"_{entry['piece']:02d}" if entry["piece"] else "")
    clip, ref = f"clips/{name}.mp4", f"refs/{name}.png"
    fps = settings.fps or src_fps
    write_video(out / clip, _fit(frames, settings.long_side), fps=fps, crf=settings.crf)
    _save_png(out / ref, _fit(candidates[chosen[0]][0][None], settings.long_side)[0])
    timing["writing"] += time.perf_counter() - clock
    entry.update(kept=True, clip=clip, reference=ref, reference_frame=int(positions[chosen[0]]),
                 reference_face=chosen[1] is not None, clip_frames=len(frames))
    if backends.embedder is not None:  # for --identity-from cluster: the reference face's embedding
        clock = time.perf_counter()
        vector = None if chosen[1] is None else backends.embedder.embed(candidates[chosen[0]][0], chosen[1])
        entry["face_embedding"] = None if vector is None else [round(float(v), 5) for v in vector]
        timing["people"] += time.perf_counter() - clock
    row = {"file_name": clip, "identity": source.identity, "reference": ref}
    if settings.caption:
        row["caption"] = settings.caption
    if settings.caption_model:
        from trainers.prepare.captions import FRAME_SIDE

        picks = np.linspace(0, len(frames) - 1, min(4, len(frames))).round().astype(int)
        to_caption.append((row, _fit(frames[picks], FRAME_SIDE)))
    return [row]
