"""Shared by the app's people tests: a driving clip and a reference photo that show two people, made from the
examples' real footage and photos (MediaPipe's segmenter finds both, and tells them apart by size).

- ``two_walkers``: the walk example twice on one lawn: person 1 large on the left, person 2 smaller and mirrored
  on the right, 20 frames later in the walk (so the two move differently);
- ``two_portraits``: the astronaut and Grace Hopper (larger in the frame: person 1) side by side.

Each returns the file's path; ``astronaut`` and ``walker`` are the examples' one-person inputs to pair them with.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LAWN = (80, 101, 32)  # the walk example's grass, around the two pasted copies


def two_walkers(folder: Path, frames: int = 9, fps: float = 10.0) -> str:
    """A 512 x 384 clip (W x H) of two walkers; returns the mp4's path. Person 1 (300 px square copy) is left of
    x = 300, person 2 (220 px square copy) right of it."""
    from directanimator.video import read_video, write_video

    walk = read_video(EXAMPLES / "driving_walk.mp4").frames
    clip = np.empty((frames, 384, 512, 3), np.uint8)
    for t in range(frames):
        canvas = np.empty((384, 512, 3), np.uint8)
        canvas[:] = LAWN
        canvas[84:384, 0:300] = cv2.resize(walk[t], (300, 300), interpolation=cv2.INTER_AREA)
        canvas[164:384, 292:512] = cv2.resize(walk[t + 20], (220, 220), interpolation=cv2.INTER_AREA)[:, ::-1]
        clip[t] = canvas
    path = Path(folder) / "two_walkers.mp4"
    write_video(path, clip, fps)
    return str(path)


def two_portraits(folder: Path) -> str:
    """A 512 x 256 photo (W x H): the astronaut on the left half, Grace Hopper on the right; returns the png's
    path."""
    from directanimator.video import read_image

    astronaut = cv2.resize(read_image(EXAMPLES / "reference_astronaut.jpg"), (256, 256), interpolation=cv2.INTER_AREA)
    hopper = cv2.resize(read_image(EXAMPLES / "reference_grace_hopper.jpg"), (256, 300),
                        interpolation=cv2.INTER_AREA)[22:278]
    path = Path(folder) / "two_portraits.png"
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([astronaut, hopper], axis=1), cv2.COLOR_RGB2BGR))
    return str(path)


def astronaut() -> str:
    """The one-person reference photo (512 x 512)."""
    return str(EXAMPLES / "reference_astronaut.jpg")


def walker() -> str:
    """The one-person driving clip (512 x 512)."""
    return str(EXAMPLES / "driving_walk.mp4")
