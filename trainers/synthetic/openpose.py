"""OpenPose-style skeleton videos of the synthetic world, clean or with the failures of real pose estimators.

The 18 COCO/OpenPose keypoints come from the world's ground-truth 3D skeleton (``people.skeleton``), projected
like the drawing; the face keypoints (nose, eyes, ears) are points on the head, turned with it. A keypoint is
*visible* when the drawing shows it: face points only when they face the camera, everything inside the frame.
The picture is OpenPose's: the 17 limbs in its standard colours on black, then a dot per keypoint.

Failures (``FailureRates``), every draw seeded by ``(seed, clip key, frame)``:

- left/right swap of the whole body's labels, most often when the figure faces away or is side-on;
- front/back: a face drawn on the back of the head (face keypoints shown as if the figure faced the camera);
- missing limbs: a limb whose end lies behind the torso is dropped, and any keypoint may be dropped at random;
- jitter: Gaussian noise on every keypoint, a fraction of the figure's height.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from trainers.synthetic.people import Identity, MotionTrack, make_view, skeleton

__all__ = ["KEYPOINTS", "LIMBS", "COLOURS", "FailureRates", "NOISY", "openpose_keypoints", "add_failures",
           "draw_openpose", "openpose_video"]

KEYPOINTS = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
             "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")
# OpenPose's 17 drawn limbs (keypoint index pairs) and its 18 colours (RGB), limb k drawn in colour k
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
_FACE = (0, 14, 15, 16, 17)
# index pairs exchanged by a left/right swap
_MIRROR = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))
# the limb ends (distal keypoints) that can hide behind the torso, with the limb's other keypoints
_OCCLUDABLE = {4: (3, 4), 7: (6, 7), 3: (3, 4), 6: (6, 7), 10: (9, 10), 13: (12, 13)}


@dataclass(frozen=True)
class FailureRates:
    """Per-frame probabilities of pose-estimator failures (see docs/reproduction/preregistration-2.md).

    Args:
        swap_back / swap_side / swap_front: left/right label swap when the figure faces away (|yaw| > 110°),
            is side-on (60°-110°), or faces the camera.
        ghost_face: in back views, the face keypoints drawn as if the figure faced the camera.
        drop_occluded: a limb whose end is behind the torso is dropped.
        drop_keypoint: any keypoint dropped (low confidence).
        jitter: standard deviation of keypoint noise as a fraction of the figure's height.
    """

    swap_back: float = 0.0
    swap_side: float = 0.0
    swap_front: float = 0.0
    ghost_face: float = 0.0
    drop_occluded: float = 0.0
    drop_keypoint: float = 0.0
    jitter: float = 0.0

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"failure rate {name} must be in [0, 1], got {value!r}")


#: the pre-registered estimator-failure rates
NOISY = FailureRates(swap_back=0.5, swap_side=0.25, swap_front=0.02, ghost_face=0.5, drop_occluded=0.5,
                     drop_keypoint=0.03, jitter=0.015)


def _face_points(sk: dict, identity: Identity) -> dict:
    """3D nose, eyes and ears on the head (body units, before turning), front = +z."""
    up, head = sk["head_up"], sk["head"]
    w, h = identity.head_w, identity.head_h
    x = np.array([1.0, 0.0, 0.0])
    z = np.array([0.0, 0.0, 1.0])
    pts = {"nose": head - 0.05 * h * up + 0.5 * w * z,
           "l_eye": head + 0.15 * h * up + 0.22 * w * x + 0.4 * w * z,
           "r_eye": head + 0.15 * h * up - 0.22 * w * x + 0.4 * w * z,
           "l_ear": head + 0.05 * h * up + 0.5 * w * x, "r_ear": head + 0.05 * h * up - 0.5 * w * x}
    return pts


def openpose_keypoints(identity: Identity, track: MotionTrack, size: int):
    """The clean keypoints of ``identity`` performing ``track``.

    Returns:
        (xy [T, 18, 2] float32 frame pixels in ``KEYPOINTS`` order, visible [T, 18] bool, behind [T, 18] bool:
        the keypoint lies behind the torso in depth and inside its outline, height [T] float32: the figure's
        height in pixels).
    """
    sk = skeleton(identity, track)
    sk.update(_face_points(sk, identity))
    sk["coco_neck"] = 0.5 * (sk["l_shoulder"] + sk["r_shoulder"])
    names = ["coco_neck" if k == "neck" else k for k in KEYPOINTS]
    pts = np.stack([sk[n] for n in names], 1)
    view = make_view(identity, track)
    xy, depth = view.project(pts)
    head_xy, head_z = view.project(sk["head"])
    chest_xy, chest_z = view.project(sk["chest"])
    pelvis_xy, _ = view.project(sk["pelvis"])
    visible = (xy >= 0).all(-1) & (xy < size).all(-1)
    for k in _FACE:  # face points show when they are on the camera's side of the head
        margin = 0.0 if k in (16, 17) else 0.02
        visible[:, k] &= depth[:, k] > head_z + margin
    # behind the torso: nearer the back than the chest and within the torso's outline (a segment, with a width)
    a, b = chest_xy, pelvis_xy
    ab = b - a
    tpar = np.clip(((xy - a[:, None]) * ab[:, None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)[:, None], 0, 1)
    dist = np.linalg.norm(xy - (a[:, None] + tpar[..., None] * ab[:, None]), axis=-1)
    half = 0.6 * identity.shoulder_w * view.scale
    behind = (depth < chest_z[:, None] - 0.02) & (dist < half[:, None])
    height = (view.scale * 0.95).astype(np.float32)
    return xy.astype(np.float32), visible, behind, height


def _frame_rng(seed: int, key: str, frame: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode()), int(frame), 31])


def add_failures(xy, visible, behind, height, yaw, rates: FailureRates, seed: int, key: str):
    """Estimator failures on clean keypoints (from ``openpose_keypoints``), seeded per (seed, key, frame).

    Returns:
        (xy [T, 18, 2] float32, visible [T, 18] bool, events: dict of per-frame bool arrays "swap", "ghost_face").
    """
    xy, visible = np.array(xy, np.float32), np.array(visible, bool)
    t_count = len(xy)
    swap = np.zeros(t_count, bool)
    ghost = np.zeros(t_count, bool)
    for t in range(t_count):
        rng = _frame_rng(seed, key, t)
        turn = abs(np.angle(np.exp(1j * float(yaw[t]))))  # |yaw| folded to [0, pi]
        back, side = turn > np.deg2rad(110), np.deg2rad(60) <= turn <= np.deg2rad(110)
        p_swap = rates.swap_back if back else rates.swap_side if side else rates.swap_front
        u = rng.random(6 + 2 * len(KEYPOINTS))  # a fixed number of draws per frame: rates don't shift each other
        noise = rng.standard_normal((len(KEYPOINTS), 2))
        if back and u[1] < rates.ghost_face:
            # a face on the back of the head: the hidden nose and eyes shown, the eyes labelled as a front view
            ghost[t] = True
            visible[t, [0, 14, 15]] = True
            xy[t, [14, 15]] = xy[t, [15, 14]]
        for k, limb in _OCCLUDABLE.items():
            if behind[t, k] and u[2 + k % 4] < rates.drop_occluded:
                visible[t, list(limb)] = False
        visible[t] &= u[6:6 + len(KEYPOINTS)] >= rates.drop_keypoint
        xy[t] += (noise * rates.jitter * float(height[t])).astype(np.float32)
        if u[0] < p_swap:
            swap[t] = True
            for i, j in _MIRROR:
                xy[t, [i, j]] = xy[t, [j, i]]
                visible[t, [i, j]] = visible[t, [j, i]]
    return xy, visible, {"swap": swap, "ghost_face": ghost}


def draw_openpose(xy: np.ndarray, visible: np.ndarray, size: int, upsample: int = 2) -> np.ndarray:
    """Draw keypoints as OpenPose does: limbs in its colours, then dots, on black. Returns [T, size, size, 3] uint8."""
    side = size * upsample
    width = max(1, int(round(side / 64)))
    radius = max(1, int(round(side / 64)))
    out = np.zeros((len(xy), size, size, 3), np.uint8)
    for t in range(len(xy)):
        canvas = np.zeros((side, side, 3), np.uint8)
        pts = np.round(np.asarray(xy[t], np.float64) * upsample * 16).astype(np.int64)  # 4 fractional bits
        for k, (i, j) in enumerate(LIMBS):
            if visible[t, i] and visible[t, j]:
                colour = tuple(int(c * 0.6) for c in COLOURS[k])  # OpenPose draws limbs at 60 % opacity on black
                cv2.line(canvas, tuple(map(int, pts[i])), tuple(map(int, pts[j])), colour, width * 2, cv2.LINE_AA, 4)
        for k in range(len(KEYPOINTS)):
            if visible[t, k]:
                cv2.circle(canvas, tuple(map(int, pts[k])), radius * 16, COLOURS[k], -1, cv2.LINE_AA, 4)
        out[t] = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return out


def openpose_video(identity: Identity, track: MotionTrack, size: int, rates: FailureRates | None = None,
                   seed: int = 0, key: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skeleton video of a clip: clean (``rates`` None) or with estimator failures seeded by (seed, key).

    Returns:
        (frames [T, size, size, 3] uint8, xy [T, 18, 2] float32, visible [T, 18] bool).
    """
    xy, visible, behind, height = openpose_keypoints(identity, track, size)
    if rates is not None:
        xy, visible, _ = add_failures(xy, visible, behind, height, track.yaw, rates, seed, key)
    return draw_openpose(xy, visible, size), xy, visible
