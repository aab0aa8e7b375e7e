"""Shots of a clip: ``detect_shots`` finds the hard cuts of a video (PySceneDetect's content detector on small
copies of the frames, fed one frame at a time so a streamed decoder can drive it) and ``choose_shot`` picks the shot
to use ("longest", "all" or the N-th), so that frames of two shots are never mixed into one motion without a word.

Frame indices are those of the clip as given (its own frame rate); a :class:`Shot` ends exclusive.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import InputError

__all__ = ["DETECT_SIDE", "MIN_SHOT_FRAMES", "SHOT_MODES", "Shot", "ShotChoice", "add_shot_argument", "choose_shot",
           "detect_shots", "parse_shot", "pick_shot", "shot_summary"]

DETECT_SIDE = 96
"""Long side (pixels) of the copies the detector compares: its score is a mean HSV difference, which a cut moves by
tens of levels at any size; at 96 px a frame costs ~0.1 ms (shrinking it included)."""

THRESHOLD = 27.0
"""ContentDetector's score (mean absolute HSV difference of consecutive frames, 0-255) at which a cut is found;
PySceneDetect's default. Measured at 96 px: within a shot under 9 (the walk example 6.8, vtest.avi 4.1, a pan of
4 px a frame 8.4, Megamind.avi's shots 6.9), at a cut 44-61 (Megamind.avi's three 45-48, walk | vtest.avi 49, two
synthetic-world clips 45-60)."""

MIN_GAP_SECONDS = 0.2
"""After a cut, no other cut is accepted for this long: a flash, a glitch or the black frame between a fade-out and
a fade-in (where hue and saturation jump to 0) is not a shot of its own."""

DARK = 12.0
"""Frames whose mean brightness (HSV value, 0-255) is under this are black for the detector: their hue and saturation
are noise, and a fade's last step to black would score as a cut. They are not compared; the next visible frame is
compared with the last one before them (a fade-out and fade-in to another shot is one cut, a fade-out at the end
of a clip none)."""

MIN_SHOT_FRAMES = 9
"""A shot shorter than this is too short to carry a motion: when every shot is, the clip is 'all cuts'."""

SHOT_MODES = ("longest", "all")


@dataclass(frozen=True)
class Shot:
    """One shot: frames ``start`` to ``end - 1`` of the clip."""

    start: int
    end: int

    @property
    def num_frames(self) -> int:
        """Number of frames of the shot."""
        return self.end - self.start

    def describe(self, fps: float | None = None) -> str:
        """``frames a-b (n frames)``, or ``frames a-b (n frames, s s)`` with ``fps``, as shown to the user (last
        frame inclusive)."""
        seconds = f", {self.num_frames / fps:.1f} s" if fps else ""
        return f"frames {self.start}-{self.end - 1} ({self.num_frames} frames{seconds})"

    def span(self, fps: float) -> str:
        """``frames a-b, s s`` (last frame inclusive)."""
        return f"frames {self.start}-{self.end - 1}, {self.num_frames / fps:.1f} s"


@dataclass(frozen=True)
class ShotChoice:
    """What :func:`pick_shot` decided: the shots found, the frames used and how.

    Args:
        mode: the spec asked for: ``"longest"``, ``"all"`` or the 1-based shot number.
        found: every shot, in order; they cover the clip.
        used: the frames kept (the chosen shot, or the whole clip for ``"all"``).
        index: 0-based number of the chosen shot (``None`` for ``"all"``).
        fps: the clip's frame rate (the one the frame indices count in).
    """

    mode: str | int
    found: tuple[Shot, ...]
    used: Shot
    index: int | None
    fps: float

    def to_dict(self) -> dict:
        """The ``"shots"`` entry of a cue folder's settings (``cues.json``)."""
        return {"mode": self.mode, "found": [[s.start, s.end] for s in self.found],
                "used": [self.used.start, self.used.end], "source_fps": float(self.fps)}

    def warning(self) -> str | None:
        """The line to show when the clip has more than one shot (``None`` for a single shot)."""
        n = len(self.found)
        if n < 2:
            return None
        if self.index is None:
            return (f"the driving video has {n} shots and every frame is kept: the motion mixes shots "
                    "(--shot longest uses the longest one only)")
        how = "the longest" if self.mode == "longest" else "as asked"
        return (f"the driving video has {n} shots; using shot {self.index + 1} ({self.used.span(self.fps)}), "
                f"{how}; --shot all keeps every frame")


def detect_shots(frames: Iterable[np.ndarray], fps: float, *, threshold: float = THRESHOLD,
                 side: int = DETECT_SIDE) -> list[Shot]:
    """Find the shots of a clip from its frames, one frame at a time (the clip never has to be in memory at once).

    Each frame is shrunk to ``side`` pixels on its long side and handed to PySceneDetect's ``ContentDetector``
    (mean change of hue, saturation and lightness between consecutive frames). Gradual changes (a slow pan, a fade)
    stay under the threshold; black frames (:data:`DARK`) are skipped; after a cut no other is accepted for
    :data:`MIN_GAP_SECONDS`.

    Args:
        frames: the clip's RGB ``[H, W, 3]`` uint8 frames in order: a ``[T, H, W, 3]`` array or any iterable
            (e.g. a decoder's generator).
        fps: the clip's frame rate (sets the minimum gap between two cuts).
        threshold: detector score at which a cut is found (see :data:`THRESHOLD`).
        side: long side of the detector's copies in pixels.

    Returns:
        the shots in order, covering frames ``0`` to ``T - 1`` (one shot when there is no cut).

    Raises:
        InputError: no frames, a frame that is not ``[H, W, 3]`` uint8, or a non-positive ``fps``.
    """
    import cv2  # here, so that the CLIs that add --shot start without it
    from scenedetect.detectors import ContentDetector
    from scenedetect.scene_detector import FlashFilter

    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be positive to find the shots of a clip, got {fps}")
    gap = max(1, int(round(MIN_GAP_SECONDS * float(fps))))
    # SUPPRESS reports a cut on the frame it happens (MERGE may hold one back past the end of the clip).
    detector = ContentDetector(threshold=float(threshold), min_scene_len=gap, filter_mode=FlashFilter.Mode.SUPPRESS)
    cuts, count, small_hw = [], 0, None
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frame {count} of the clip must be [H, W, 3] uint8 RGB, got {frame.shape} {frame.dtype}")
        if small_hw is None:
            h, w = frame.shape[:2]
            scale = min(1.0, side / max(h, w))
            small_hw = (max(8, round(h * scale)), max(8, round(w * scale)))
        # Bilinear, as PySceneDetect's own SceneManager shrinks frames: 0.03-0.06 ms for a 512-768 px frame (an
        # area filter costs 0.3-0.6 ms, a tenth of decoding it), and the score is a mean over the frame anyway.
        small = cv2.resize(frame, small_hw[::-1], interpolation=cv2.INTER_LINEAR)
        if small.max(axis=2).mean() >= DARK:
            # The detector converts BGR to HSV; frames are RGB.
            cuts += [c for c in detector.process_frame(count, cv2.cvtColor(small, cv2.COLOR_RGB2BGR)) if c > 0]
        count += 1
    if count == 0:
        raise InputError("the clip has no frames; use a video with at least one frame")
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < count)), count]
    return [Shot(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def parse_shot(spec) -> str | int:
    """Normalise a shot spec: ``"longest"``, ``"all"`` or a 1-based shot number (int or digits).

    Raises:
        InputError: anything else.
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        number = int(spec)
    else:
        text = str(spec).strip().lower()
        if text in SHOT_MODES:
            return text
        if not text.isdigit():
            raise InputError(f"shot must be 'longest', 'all' or a shot number (1, 2, ...), got {spec!r}")
        number = int(text)
    if number < 1:
        raise InputError(f"shot must be 'longest', 'all' or a shot number from 1 up, got {number}")
    return number


class _ShotAction(argparse.Action):
    """Checks ``--shot`` while parsing: a bad value ends the command with one ``error:`` line and status 2 (the
    CLIs' convention for bad input) instead of argparse's usage text."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, parse_shot(values))
        except InputError as exc:
            parser.exit(2, f"error: --{exc}\n")


def add_shot_argument(parser) -> None:
    """Add ``--shot longest|all|N`` (default ``longest``) to an ``argparse`` parser or group; the value is read
    back normalised by :func:`parse_shot`."""
    parser.add_argument(
        "--shot", default="longest", action=_ShotAction, metavar="longest|all|N",
        help="which shot of a driving video with cuts to use: longest (default: the longest shot), all (every "
             "frame, shots mixed into one motion) or N (the N-th shot, 1 = the first, as listed)")


def choose_shot(shots: list[Shot], spec="longest", min_frames: int = MIN_SHOT_FRAMES) -> Shot:
    """The frames to use for ``spec``.

    Args:
        shots: the clip's shots (:func:`detect_shots`).
        spec: ``"longest"`` (the longest shot; the first of equals), ``"all"`` (every frame, shots mixed) or the
            1-based number of a shot as listed to the user.
        min_frames: with ``"longest"``, a clip of several shots of which none has this many frames is refused.

    Returns:
        the chosen :class:`Shot` (for ``"all"``, one spanning the whole clip).

    Raises:
        InputError: a bad spec, a shot number that does not exist (the shots found are listed), or a clip that is
            all cuts.
    """
    if not shots:
        raise InputError("the clip has no shots (no frames); use a video with at least one frame")
    mode = parse_shot(spec)
    if mode == "all":
        return Shot(shots[0].start, shots[-1].end)
    if mode == "longest":
        best = max(shots, key=lambda s: (s.num_frames, -s.start))
        if len(shots) > 1 and best.num_frames < min_frames:
            raise InputError(
                f"the driving video is all cuts: its longest shot is {best.describe()} of {len(shots)} shots; "
                f"use a clip with one continuous shot of at least {min_frames} frames")
        return best
    if mode > len(shots):
        listed = "; ".join(f"{i + 1}: {s.describe()}" for i, s in enumerate(shots))
        raise InputError(f"there is no shot {mode}: the driving video has {len(shots)} "
                         f"shot{'s' if len(shots) > 1 else ''} ({listed})")
    return shots[mode - 1]


def pick_shot(frames: np.ndarray, fps: float, spec="longest",
              min_frames: int = MIN_SHOT_FRAMES) -> tuple[np.ndarray, ShotChoice]:
    """Detect the shots of a decoded clip and keep the frames of the one ``spec`` asks for.

    Args:
        frames: ``[T, H, W, 3]`` uint8 RGB frames at the clip's own frame rate.
        fps: that frame rate.
        spec, min_frames: as for :func:`choose_shot`.

    Returns:
        ``(frames of the chosen shot (a view), ShotChoice)``.

    Raises:
        InputError: as :func:`detect_shots` and :func:`choose_shot`.
    """
    mode = parse_shot(spec)  # a bad spec fails before the detector runs
    shots = detect_shots(frames, fps)
    used = choose_shot(shots, mode, min_frames=min_frames)
    index = None if mode == "all" else shots.index(used)
    return frames[used.start:used.end], ShotChoice(mode, tuple(shots), used, index, float(fps))


def shot_summary(shots: dict) -> list[str]:
    """Lines for a CLI from a cue folder's ``"shots"`` settings: the shots found (one line each when there are
    several) and the frames used."""
    found, used, fps = shots.get("found", []), shots.get("used"), shots.get("source_fps")
    if len(found) < 2 or used is None:
        return []
    lines = [f"the driving video has {len(found)} shots:"]
    for i, (a, b) in enumerate(found):
        mark = "  <- used" if [a, b] == list(used) and shots.get("mode") != "all" else ""
        lines.append(f"  shot {i + 1}: {Shot(a, b).describe(fps)}{mark}")
    if shots.get("mode") == "all":
        lines.append("using every frame (--shot all): the motion mixes shots")
    return lines
