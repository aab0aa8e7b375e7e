"""Regenerate the media in examples/ (see examples/LICENSES.md for where each file comes from).

    python examples/make_examples.py            # everything whose source is available
    python examples/make_examples.py --only synthetic

- reference_astronaut.jpg     scikit-image's astronaut.png (public domain), re-encoded as JPEG to stay small
- reference_grace_hopper.jpg  matplotlib's grace_hopper.jpg (public domain), copied
- reference_synthetic.png     a drawn figure standing (this script)
- driving_synthetic.mp4       a different drawn figure walking, waving and talking, with a tone track (this script)
- driving_walk.mp4            a 4.9 s excerpt of OpenCV's vtest.avi (Debian package opencv-doc): one woman
                              walking alone on a lawn, cropped around her and scaled 240 -> 512 px
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import wave

import cv2
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from directanimator.video import read_video, write_video  # noqa: E402

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
# Frames 616-664 of vtest.avi (10 fps): the woman in the black coat walks away across the lawn, whole body in
# view and nobody else in the crop window (found by looking at the clip).
WALK_FRAMES = (616, 665)
WALK_CROP = (216, 336, 456, 576)  # x0, y0, x1, y1 in the 768x576 source
WALK_SIZE = 512

SYN_SIZE = (512, 384)  # height, width: portrait, like most dance/walk clips
SYN_FPS = 16
SYN_FRAMES = 49  # CogVideoX-style clip length


# ----------------------------------------------------------------------------------------------------------------
# the drawn figure


def _limb(img, a, b, color, width):
    cv2.line(img, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), color, width, cv2.LINE_AA)
    cv2.circle(img, tuple(int(round(v)) for v in b), width // 2, color, -1, cv2.LINE_AA)


def _end(start, length, angle_deg):
    """Point ``length`` away from ``start`` at ``angle_deg`` from straight down (positive = towards +x)."""
    a = math.radians(angle_deg)
    return start[0] + length * math.sin(a), start[1] + length * math.cos(a)


def draw_figure(img, cx, ground, height, pose, look):
    """Draw a cartoon person onto ``img`` (RGB, in place).

    Args:
        cx: horizontal centre of the body.
        ground: y of the feet.
        height: figure height in pixels.
        pose: dict of angles in degrees (``l_hip``, ``r_hip``, ``l_knee``, ``r_knee``, ``l_shoulder``,
            ``r_shoulder``, ``l_elbow``, ``r_elbow``), ``bob`` (px) and ``mouth`` (0 closed .. 1 open).
        look: dict of colours (``skin``, ``shirt``, ``trousers``, ``hair``, ``shoes``).
    """
    u = height / 100.0  # body unit
    hip = (cx, ground - 48 * u + pose.get("bob", 0.0))
    shoulder_y = hip[1] - 30 * u
    thick = max(2, int(7 * u))
    # legs behind the torso
    for side, sx in (("l", -5), ("r", 5)):
        h0 = (hip[0] + sx * u, hip[1])
        knee = _end(h0, 24 * u, pose[f"{side}_hip"])
        foot = _end(knee, 24 * u, pose[f"{side}_hip"] - pose[f"{side}_knee"])
        _limb(img, h0, knee, look["trousers"], thick + 2)
        _limb(img, knee, foot, look["trousers"], thick + 1)
        cv2.ellipse(img, (int(foot[0] + 3 * u), int(foot[1])), (int(5 * u), int(2.5 * u)), 0, 0, 360,
                    look["shoes"], -1, cv2.LINE_AA)
    # torso
    cv2.ellipse(img, (int(cx), int((hip[1] + shoulder_y) / 2)), (int(11 * u), int(18 * u)), 0, 0, 360,
                look["shirt"], -1, cv2.LINE_AA)
    # arms
    for side, sx in (("l", -10), ("r", 10)):
        s0 = (cx + sx * u, shoulder_y + 3 * u)
        elbow = _end(s0, 17 * u, pose[f"{side}_shoulder"])
        hand = _end(elbow, 16 * u, pose[f"{side}_shoulder"] + pose[f"{side}_elbow"])
        _limb(img, s0, elbow, look["shirt"], thick)
        _limb(img, elbow, hand, look["skin"], thick - 1)
    # neck and head with a face
    head = (int(cx), int(shoulder_y - 11 * u))
    r = int(9 * u)
    cv2.rectangle(img, (int(cx - 2.5 * u), int(shoulder_y - 4 * u)), (int(cx + 2.5 * u), int(shoulder_y + 2 * u)),
                  look["skin"], -1)
    cv2.circle(img, head, r, look["skin"], -1, cv2.LINE_AA)
    cv2.ellipse(img, head, (r + 1, r + 1), 0, 180, 360, look["hair"], -1, cv2.LINE_AA)  # hair on top
    eye_y = head[1] + int(1 * u)
    for ex in (-3.5, 3.5):
        c = (int(head[0] + ex * u), eye_y)
        cv2.ellipse(img, c, (max(2, int(2.2 * u)), max(1, int(1.5 * u))), 0, 0, 360, (255, 255, 255), -1,
                    cv2.LINE_AA)
        cv2.circle(img, c, max(1, int(1.0 * u)), (30, 30, 40), -1, cv2.LINE_AA)
    mouth = max(0.0, min(1.0, pose.get("mouth", 0.2)))
    cv2.ellipse(img, (head[0], head[1] + int(5 * u)), (max(2, int(3 * u)), max(1, int((0.6 + 2.4 * mouth) * u))),
                0, 0, 360, (150, 40, 50), -1, cv2.LINE_AA)


def _background(h, w, top, bottom):
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (np.asarray(top, np.float32) * (1 - ramp) + np.asarray(bottom, np.float32) * ramp)
    img = np.repeat(img, w, axis=1)
    floor = int(h * 0.85)
    img[floor:] = np.asarray(bottom, np.float32) * 0.8
    return np.ascontiguousarray(img.astype(np.uint8))


DRIVER_LOOK = dict(skin=(224, 172, 140), shirt=(200, 60, 60), trousers=(40, 60, 120), hair=(60, 40, 30),
                   shoes=(30, 30, 30))
REFERENCE_LOOK = dict(skin=(170, 120, 90), shirt=(60, 150, 90), trousers=(90, 80, 70), hair=(20, 20, 20),
                      shoes=(120, 70, 40))


def synthetic_driving() -> np.ndarray:
    """A figure walking left to right, waving its right arm and opening/closing its mouth: [T, H, W, 3]."""
    h, w = SYN_SIZE
    frames = []
    for t in range(SYN_FRAMES):
        ph = 2 * math.pi * t / 16.0  # one stride per second at 16 fps
        img = _background(h, w, (200, 215, 235), (150, 160, 150))
        swing = 25 * math.sin(ph)
        pose = {
            "l_hip": swing, "r_hip": -swing,
            "l_knee": 25 * max(0.0, math.sin(ph + 1.2)), "r_knee": 25 * max(0.0, -math.sin(ph + 1.2)),
            "l_shoulder": -20 * math.sin(ph) - 8, "l_elbow": -15,
            "r_shoulder": 140 + 25 * math.sin(2 * ph), "r_elbow": 30 + 30 * math.sin(2 * ph),  # waving
            "bob": 3 * abs(math.sin(ph)),
            "mouth": 0.5 + 0.5 * math.sin(2 * math.pi * t / 6.0),
        }
        cx = w * (0.3 + 0.4 * t / (SYN_FRAMES - 1))
        draw_figure(img, cx, int(h * 0.93), h * 0.8, pose, DRIVER_LOOK)
        frames.append(img)
    return np.stack(frames)


def synthetic_reference() -> np.ndarray:
    """A different figure standing still, arms slightly out: [H, W, 3]."""
    h, w = SYN_SIZE
    img = _background(h, w, (235, 225, 205), (170, 150, 130))
    pose = {"l_hip": 6, "r_hip": -6, "l_knee": 0, "r_knee": 0, "l_shoulder": -18, "r_shoulder": 18,
            "l_elbow": -8, "r_elbow": 8, "mouth": 0.1}
    draw_figure(img, w / 2, int(h * 0.93), h * 0.82, pose, REFERENCE_LOOK)
    return img


def write_tone_wav(path, seconds: float, rate: int = 44100) -> None:
    """A 440 Hz tone with a 660 Hz beep every second, stereo 16-bit (so audio passthrough can be heard)."""
    t = np.arange(int(seconds * rate)) / rate
    beep = (np.mod(t, 1.0) < 0.15).astype(np.float64)
    x = 0.25 * np.sin(2 * np.pi * 440 * t) * (1 - beep) + 0.3 * np.sin(2 * np.pi * 660 * t) * beep
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(os.fspath(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.repeat(pcm[:, None], 2, axis=1).tobytes())


# ----------------------------------------------------------------------------------------------------------------


def make_synthetic(out_dir: str) -> None:
    Image.fromarray(synthetic_reference()).save(os.path.join(out_dir, "reference_synthetic.png"), optimize=True)
    frames = synthetic_driving()
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "tone.wav")
        write_tone_wav(wav, SYN_FRAMES / SYN_FPS + 1.0)  # longer than the clip: write_video trims it
        write_video(os.path.join(out_dir, "driving_synthetic.mp4"), frames, SYN_FPS, audio_from=wav, crf=23,
                    preset="veryslow")


def make_real(out_dir: str, vtest: str) -> None:
    import skimage
    import matplotlib

    astro = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    Image.open(astro).convert("RGB").save(os.path.join(out_dir, "reference_astronaut.jpg"), quality=92)
    hopper = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    shutil.copyfile(hopper, os.path.join(out_dir, "reference_grace_hopper.jpg"))

    if not os.path.exists(vtest):
        print(f"skipping driving_walk.mp4: {vtest} not found (apt-get install opencv-doc)", file=sys.stderr)
        return
    start, stop = WALK_FRAMES
    video = read_video(vtest, max_side=None, max_frames=stop)
    x0, y0, x1, y1 = WALK_CROP
    crop = video.frames[start:stop, y0:y1, x0:x1]
    size = (WALK_SIZE, round(WALK_SIZE * (y1 - y0) / (x1 - x0)))
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LANCZOS4) for f in crop])
    write_video(os.path.join(out_dir, "driving_walk.mp4"), frames, video.fps, crf=20, preset="veryslow")


def make_world(out_dir: str) -> None:
    """A reference and a driving clip from the synthetic world the embedded demo model was trained on (seed 0,
    64 px, 17 frames; identity 14 as reference, identity 33 dancing motion 0: two training identities that both
    danced that motion, the demo model's best case), shown 4x with nearest-neighbour scaling."""
    sys.path.insert(0, os.path.dirname(HERE))
    from trainers.synthetic import render_clip, render_reference

    def up(a):
        return cv2.resize(a, (256, 256), interpolation=cv2.INTER_NEAREST)

    ref, _, _ = render_reference(14, 0, frames=17, size=64, seed=0)
    clip, _, _ = render_clip(33, 0, frames=17, size=64, seed=0)
    cv2.imwrite(os.path.join(out_dir, "reference_world.png"), up(ref)[..., ::-1])
    write_video(os.path.join(out_dir, "driving_world.mp4"), np.stack([up(f) for f in clip]), fps=8, crf=12)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=HERE, help="output folder (default: examples/)")
    parser.add_argument("--only", choices=("synthetic", "real"), help="make only one kind")
    parser.add_argument("--vtest", default=VTEST, help="path of OpenCV's vtest.avi")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.only in (None, "synthetic"):
        make_synthetic(args.out)
        make_world(args.out)
    if args.only in (None, "real"):
        make_real(args.out, args.vtest)
    for name in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, name)
        if os.path.isfile(p) and not name.endswith((".py", ".md")):
            print(f"{name:30s} {os.path.getsize(p) / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
