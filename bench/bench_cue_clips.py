"""The cue triplet per stage on the three kinds of clip of issue 16 (not a test): where the time goes on each.

    python bench/bench_cue_clips.py [--rounds 3] [--clips walk,face,wide]

- ``walk``: ``examples/driving_walk.mp4`` (49 frames, 512 x 512): one whole person, mostly seen from behind, so
  few faces are searched.
- ``face``: a face in every frame: ``examples/reference_grace_hopper.jpg`` (public domain, U.S. Navy) filmed by a
  slow virtual camera (zoom 1.0 -> 1.15, a pan, +-3 degrees of roll; 49 frames, 512 x 512), a real face the
  detector has to find in every frame.
- ``wide``: a small person in a wide shot: frames 616-664 of OpenCV's ``vtest.avi`` (Debian's ``opencv-doc``, the
  source of the walk example) uncropped, 768 x 576 scaled to 512 x 384: the walking woman and the other
  pedestrians are 60-110 px tall, so the small-person paths run (upscaled crops, several people, the largest
  followed).

Each clip goes through ``extract_cues`` at 512 px with the offline backends (MediaPipe) ``--rounds`` times after a
warm-up; the best round's per-stage ms/frame is printed per clip, side by side, with the triplet (segment + faces
+ pose + face + location, the issue's target <= 31 ms/frame) and the load average (a figure taken on a shared
machine is void).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from directanimator.cues import extract_cues  # noqa: E402
from directanimator.video import read_image, read_video  # noqa: E402

TRIPLET = ("segment", "faces", "pose", "face", "location")
STAGES = ("segment_reference", "segment") + TRIPLET[1:]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
NUM = 49


def face_clip(num: int = NUM, size: int = 512) -> np.ndarray:
    """A real face in every frame: the Grace Hopper portrait under a slow zoom, pan and roll."""
    photo = read_image(ROOT / "examples" / "reference_grace_hopper.jpg", max_side=None)
    h, w = photo.shape[:2]
    frames = np.empty((num, size, size, 3), np.uint8)
    for t in range(num):
        u = t / max(num - 1, 1)
        zoom, angle = 1.0 + 0.15 * u, 3.0 * math.sin(2 * math.pi * u)
        cx, cy = w / 2 + 20 * math.sin(math.pi * u), h * 0.45
        m = cv2.getRotationMatrix2D((cx, cy), angle, zoom * size / min(h, w))
        m[:, 2] += (size / 2 - cx, size / 2 - cy)
        frames[t] = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return frames


def wide_clip() -> np.ndarray | None:
    """Small people in a wide shot: vtest.avi frames 616-664, whole frame, long side 512 (None without it)."""
    if not VTEST.is_file():
        return None
    return read_video(VTEST, max_side=512).frames[616:616 + NUM]


def clips(names) -> dict:
    out = {}
    for name in names:
        if name == "walk":
            out[name] = read_video(ROOT / "examples" / "driving_walk.mp4").frames[:NUM]
        elif name == "face":
            out[name] = face_clip()
        elif name == "wide":
            frames = wide_clip()
            if frames is None:
                print(f"wide: skipped ({VTEST} not found: apt-get install opencv-doc)")
                continue
            out[name] = frames
        else:
            sys.exit(f"unknown clip {name!r}: walk, face, wide")
    return out


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "n/a"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per clip after a warm-up (best kept)")
    parser.add_argument("--clips", default="walk,face,wide", help="comma list of walk, face, wide")
    args = parser.parse_args(argv)
    reference = str(ROOT / "examples" / "reference_astronaut.jpg")
    table, facts = {}, {}
    print(f"{os.cpu_count()} CPUs, load average {_load()} at the start")
    from directanimator.cues.faces import get_face_detector
    from directanimator.cues.segment import get_segmenter

    # one segmenter and face detector for every call (as the app keeps them; a CLI run builds them once too)
    models = dict(segmenter=get_segmenter("mediapipe"), face_detector=get_face_detector("mediapipe"))
    for name, frames in clips(args.clips.split(",")).items():
        extract_cues(reference, frames[:4], shot="all", **models)  # models loaded and warm
        best = None
        for _ in range(max(1, args.rounds)):
            start = time.perf_counter()
            cues = extract_cues(reference, frames, shot="all", **models)
            total = (time.perf_counter() - start) * 1000.0
            if best is None or total < best[0]:
                best = (total, dict(cues.settings["timings_ms"]), cues)
        total, timings, cues = best
        n = cues.num_frames
        table[name] = {s: timings.get(s, 0.0) / n for s in STAGES}
        table[name]["triplet"] = sum(timings.get(s, 0.0) for s in TRIPLET) / n
        table[name]["end to end"] = total / n
        people = len(cues.settings.get("person", {}).get("people", []) or [])
        facts[name] = (f"{n} frames {frames.shape[2]}x{frames.shape[1]}, faces in {int((~cues.no_face).sum())}, "
                       f"dropped {int(cues.dropped.sum())}, people in frame 0: {people}")
        print(f"{name}: {facts[name]} (load {_load()})", flush=True)
    names = list(table)
    print(f"\nms/frame, best of {args.rounds} rounds (extract_cues, 512 px, mediapipe segmenter and faces):")
    print(f"  {'stage':<18}" + "".join(f"{n:>10}" for n in names))
    for stage in STAGES + ("triplet", "end to end"):
        print(f"  {stage:<18}" + "".join(f"{table[n][stage]:10.1f}" for n in names))
    met = ", ".join(f"{n} {'met' if table[n]['triplet'] <= 31 else 'NOT met'}" for n in names)
    print(f"  target: triplet <= 31 ms/frame on every clip: {met}")
    print(f"load average at the end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
