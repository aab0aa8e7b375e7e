"""Identities, motions and the skeleton of the synthetic world (no drawing here).

An identity is *what* a person looks like (proportions, skin, hair, clothes, face, background); a motion is
*how* they move (joint angles, turns, root path across the frame, expressions). Both are pure functions of
``(seed, index)``, so any identity can perform any motion and every pair is reproducible.

Geometry: a 3D stick skeleton in body units (the identity's height is about 1, pelvis at the origin, x to the
figure's left = screen right when it faces the camera, y down, z towards the camera), turned by the yaw angle
and projected orthographically. The root path (pelvis position in the frame and the pixel scale) belongs to the
motion only, so renders of different identities performing the same motion share it exactly; the identity only
changes limb lengths and widths around that root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Colours are RGB tuples of ints.
SKIN_TONES = [
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 94), (170, 110, 72),
    (141, 85, 52), (110, 66, 40), (84, 50, 32), (233, 185, 150), (205, 150, 110),
]
HAIR_COLOURS = [
    (20, 16, 14), (58, 38, 24), (96, 62, 36), (140, 98, 56), (214, 180, 112), (168, 74, 36),
    (150, 150, 150), (230, 226, 214), (40, 60, 140), (190, 70, 140),
]
EYE_COLOURS = [(70, 44, 24), (40, 90, 150), (60, 120, 70), (110, 90, 50), (30, 30, 30)]
HAIR_STYLES = ("short", "long", "bun", "ponytail", "curly")
PATTERNS = ("plain", "stripes", "checks", "dots")
BOTTOMS = ("pants", "shorts", "skirt")
BACKGROUNDS = ("gradient", "shapes", "stripes", "room")

# Joint names of the exported ground-truth skeleton, in this order.
JOINTS = (
    "pelvis", "chest", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "l_knee", "l_ankle", "l_toe", "r_hip", "r_knee", "r_ankle", "r_toe",
)

# Angle channels of a motion (radians, except bob which is a fraction of the frame height).
CHANNELS = (
    "l_arm_abduct", "l_arm_swing", "l_elbow", "r_arm_abduct", "r_arm_swing", "r_elbow",
    "l_leg_spread", "l_leg_swing", "l_knee", "r_leg_spread", "r_leg_swing", "r_knee",
    "torso_lean", "head_tilt",
)
_CHANNEL_LIMITS = {
    "arm_abduct": (0.05, 2.9), "arm_swing": (-1.2, 1.2), "elbow": (0.0, 2.3),
    "leg_spread": (0.0, 0.6), "leg_swing": (-0.5, 1.0), "knee": (0.0, 1.4),
    "torso_lean": (-0.35, 0.35), "head_tilt": (-0.4, 0.4),
}


def identity_name(idx: int) -> str:
    """The identity id used in metadata, e.g. ``id_0003``."""
    return f"id_{idx:04d}"


def motion_name(idx: int) -> str:
    """The motion id used in metadata, e.g. ``mo_0003``."""
    return f"mo_{idx:04d}"


def _rng(seed: int, kind: int, idx: int) -> np.random.Generator:
    # Separate streams per (seed, kind, index): adding identities never changes existing ones.
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, kind, int(idx)])


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _hsv_colour(rng, sat=(0.45, 0.9), val=(0.35, 0.95)) -> tuple:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return (int(r * 255), int(g * 255), int(b * 255))


@dataclass(frozen=True)
class Identity:
    """What one synthetic person looks like. Lengths are in body units (height about 1).

    Args:
        idx: index of the identity; ``name`` is its metadata id.
        height: overall size multiplier relative to the motion's pixel scale (taller people are bigger).
        head_h, head_w: head ellipse height and width. neck_len, torso_len: spine segments.
        shoulder_w, hip_w: distances between the shoulder joints and between the hip joints.
        upper_arm, forearm, thigh, shin: limb lengths; arm_r, forearm_r, thigh_r, shin_r: limb radii.
        torso_r: half thickness of the torso (what is left of it in side view).
        skin, hair_colour, eye_colour, lip_colour: RGB colours. hair_style: one of ``HAIR_STYLES``.
        top, top2: shirt colours; pattern: one of ``PATTERNS`` drawn with top2; pattern_scale: its period.
        long_sleeves: whether forearms are covered. bottom: one of ``BOTTOMS``; bottom_colour, shoe_colour.
        eye_spacing, eye_size, brow_thick, nose_len, mouth_w: face features in head-width units.
        glasses: whether the person wears glasses; glasses_colour: their frame colour.
        background: one of ``BACKGROUNDS``; bg_colours: three colours; bg_seed: seed of its random shapes.
    """

    idx: int
    name: str
    height: float
    head_h: float
    head_w: float
    neck_len: float
    torso_len: float
    shoulder_w: float
    hip_w: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    arm_r: float
    forearm_r: float
    thigh_r: float
    shin_r: float
    torso_r: float
    skin: tuple
    hair_colour: tuple
    hair_style: str
    eye_colour: tuple
    lip_colour: tuple
    top: tuple
    top2: tuple
    pattern: str
    pattern_scale: float
    long_sleeves: bool
    bottom: str
    bottom_colour: tuple
    shoe_colour: tuple
    eye_spacing: float
    eye_size: float
    brow_thick: float
    nose_len: float
    mouth_w: float
    glasses: bool
    glasses_colour: tuple
    background: str
    bg_colours: tuple
    bg_seed: int

    def describe(self) -> str:
        """A short caption of the person's look, used as the clip caption."""
        words = {"short": "short", "long": "long", "bun": "tied-up", "ponytail": "ponytailed",
                 "curly": "curly"}[self.hair_style]
        top = "" if self.pattern == "plain" else {"stripes": "striped ", "checks": "checked ",
                                                    "dots": "dotted "}[self.pattern]
        sleeves = "long-sleeved" if self.long_sleeves else "short-sleeved"
        glasses = " with glasses" if self.glasses else ""
        return (f"a person{glasses} with {words} {_colour_word(self.hair_colour)} hair in a {sleeves} "
                f"{top}{_colour_word(self.top)} shirt and {_colour_word(self.bottom_colour)} {self.bottom}")


def _colour_word(rgb) -> str:
    import colorsys

    r, g, b = (c / 255 for c in rgb)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.2:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    if s < 0.5 and 0.04 < h < 0.14 and v < 0.7:
        return "brown"
    names = [(0.04, "red"), (0.11, "orange"), (0.18, "yellow"), (0.45, "green"), (0.55, "teal"),
             (0.72, "blue"), (0.83, "purple"), (0.95, "pink"), (1.01, "red")]
    for limit, name in names:
        if h < limit:
            if name == "orange" and v < 0.6:
                return "brown"
            return name
    return "red"


def make_identity(seed: int, idx: int) -> Identity:
    """Make identity ``idx`` of the world with this ``seed`` (pure function of both).

    Args:
        seed: world seed; the same seed and index always give the same person.
        idx: identity index (>= 0).
    """
    rng = _rng(seed, 1, idx)
    head = rng.uniform(0.9, 1.12)
    thick = rng.uniform(0.8, 1.25)
    arms = rng.uniform(0.92, 1.08)
    legs = rng.uniform(0.92, 1.08)
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    lip = tuple(int(c * 0.72) for c in skin)
    lip = (min(255, lip[0] + 40), lip[1], lip[2])
    top = _hsv_colour(rng)
    # The pattern colour contrasts with the shirt in brightness so it survives small sizes.
    top2 = _hsv_colour(rng, sat=(0.0, 0.5), val=(0.9, 1.0)) if sum(top) < 400 else _hsv_colour(
        rng, sat=(0.5, 1.0), val=(0.1, 0.35))
    bg_kind = _pick(rng, BACKGROUNDS)
    bg = tuple(_hsv_colour(rng, sat=(0.05, 0.45), val=(0.45, 0.95)) for _ in range(3))
    return Identity(
        idx=int(idx), name=identity_name(idx), height=float(rng.uniform(0.86, 1.04)),
        head_h=0.15 * head, head_w=0.15 * head * float(rng.uniform(0.74, 0.84)),
        neck_len=0.035, torso_len=float(rng.uniform(0.28, 0.32)),
        shoulder_w=float(rng.uniform(0.2, 0.27)), hip_w=float(rng.uniform(0.12, 0.17)),
        upper_arm=0.165 * arms, forearm=0.145 * arms, thigh=0.235 * legs, shin=0.225 * legs,
        arm_r=0.034 * thick, forearm_r=0.028 * thick, thigh_r=0.05 * thick, shin_r=0.037 * thick,
        torso_r=0.05 * thick, skin=skin, hair_colour=_pick(rng, HAIR_COLOURS),
        hair_style=_pick(rng, HAIR_STYLES), eye_colour=_pick(rng, EYE_COLOURS), lip_colour=lip,
        top=top, top2=top2, pattern=_pick(rng, PATTERNS), pattern_scale=float(rng.uniform(0.04, 0.08)),
        long_sleeves=bool(rng.random() < 0.5), bottom=_pick(rng, BOTTOMS),
        bottom_colour=_hsv_colour(rng, sat=(0.2, 0.8), val=(0.15, 0.7)),
        shoe_colour=_hsv_colour(rng, sat=(0.0, 0.6), val=(0.05, 0.5)),
        eye_spacing=float(rng.uniform(0.32, 0.46)), eye_size=float(rng.uniform(0.85, 1.2)),
        brow_thick=float(rng.uniform(0.6, 1.4)), nose_len=float(rng.uniform(0.12, 0.24)),
        mouth_w=float(rng.uniform(0.28, 0.46)), glasses=bool(rng.random() < 0.3),
        glasses_colour=_hsv_colour(rng, sat=(0.0, 0.8), val=(0.05, 0.6)),
        background=bg_kind, bg_colours=bg, bg_seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare motions by index and seed, not by value
class Motion:
    """How one synthetic dance goes. Time is the clip phase ``u`` in [0, 1] (the whole clip).

    Args:
        idx: index of the motion; ``name`` is its metadata id.
        base, amp, freq, phase: per angle channel (``CHANNELS``) a base value and a sum of sinusoids
            (``amp``, ``freq`` in cycles per clip, ``phase``), each of shape [C, K].
        root_x, root_y, root_scale: (base, amplitude, frequency, phase) of the pelvis x and y (fractions of
            the frame) and the pixel scale (fraction of the frame height per body unit).
        bob: (amplitude, frequency) of a vertical bounce in frame fractions, added to root y.
        yaw_sway: (amplitude, frequency, phase) of the body turning left and right.
        turn: "none", "spin" (a full turn) or "back" (turn to show the back, then back to the front);
            turn_at, turn_len: where the turn starts and how long its half lasts (phase units).
        mouth, smile: (base, amplitude, frequency, phase) of the mouth opening and the smile in [0, 1].
        blinks: phases at which the eyes close.
    """

    idx: int
    name: str
    base: np.ndarray = field(repr=False)
    amp: np.ndarray = field(repr=False)
    freq: np.ndarray = field(repr=False)
    phase: np.ndarray = field(repr=False)
    root_x: tuple
    root_y: tuple
    root_scale: tuple
    bob: tuple
    yaw_sway: tuple
    turn: str
    turn_at: float
    turn_len: float
    mouth: tuple
    smile: tuple
    blinks: tuple


def make_motion(seed: int, idx: int) -> Motion:
    """Make motion ``idx`` of the world with this ``seed`` (pure function of both).

    Args:
        seed: world seed; the same seed and index always give the same dance.
        idx: motion index (>= 0).
    """
    rng = _rng(seed, 2, idx)
    # At most 3 cycles of any joint per clip: with 25 frames the fastest swing still spans about 8 frames.
    tempo = float(rng.choice([0.75, 1.0, 1.5]))
    k = 3
    base, amp, freq, phase = (np.zeros((len(CHANNELS), k)) for _ in range(4))
    ranges = {  # base range, total amplitude
        "arm_abduct": ((0.3, 1.3), 1.1), "arm_swing": ((-0.25, 0.3), 0.9), "elbow": ((0.2, 1.0), 0.8),
        "leg_spread": ((0.05, 0.2), 0.15), "leg_swing": ((-0.05, 0.1), 0.35), "knee": ((0.05, 0.3), 0.4),
        "torso_lean": ((-0.05, 0.05), 0.22), "head_tilt": ((-0.05, 0.05), 0.3),
    }
    for c, name in enumerate(CHANNELS):
        key = name[2:] if name[:2] in ("l_", "r_") else name
        (lo, hi), total = ranges[key]
        base[c, 0] = rng.uniform(lo, hi)
        share = rng.dirichlet(np.ones(k)) * total * rng.uniform(0.6, 1.0)
        amp[c] = share
        freq[c] = tempo * rng.choice([0.5, 1.0, 1.0, 2.0], size=k)
        phase[c] = rng.uniform(0, 2 * np.pi, size=k)
    turn = str(rng.choice(["none", "spin", "back"], p=[0.3, 0.35, 0.35]))
    return Motion(
        idx=int(idx), name=motion_name(idx), base=base, amp=amp, freq=freq, phase=phase,
        root_x=(float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.03, 0.14)),
                float(rng.choice([0.5, 1.0])), float(rng.uniform(0, 2 * np.pi))),
        root_y=(float(rng.uniform(0.5, 0.55)), float(rng.uniform(0.0, 0.03)), 0.5,
                float(rng.uniform(0, 2 * np.pi))),
        root_scale=(float(rng.uniform(0.68, 0.82)), float(rng.uniform(0.03, 0.12)), 0.5,
                    float(rng.uniform(0, 2 * np.pi))),
        bob=(float(rng.uniform(0.0, 0.015)), tempo * 2),
        yaw_sway=(float(rng.uniform(0.1, 0.45)), float(rng.choice([0.5, 1.0, 1.5])),
                  float(rng.uniform(0, 2 * np.pi))),
        turn=turn, turn_at=float(rng.uniform(0.15, 0.45)), turn_len=float(rng.uniform(0.15, 0.25)),
        mouth=(float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.3, 0.7)), float(rng.choice([1.0, 2.0, 3.0])),
               float(rng.uniform(0, 2 * np.pi))),
        smile=(float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.2, 0.5)), float(rng.choice([0.5, 1.0])),
               float(rng.uniform(0, 2 * np.pi))),
        blinks=tuple(float(b) for b in np.sort(rng.uniform(0.05, 0.95, size=int(rng.integers(1, 4))))),
    )


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _wave(params, u):
    base, amp, freq, ph = params
    return base + amp * np.sin(2 * np.pi * freq * u + ph)


@dataclass
class MotionTrack:
    """A motion sampled at T frames for a frame of ``size`` pixels (identity-independent).

    Fields (all [T] float32 unless said): angles [T, C] in ``CHANNELS`` order; root_x, root_y (pelvis, pixels);
    px_per_unit (pixels per body unit before the identity's height factor); yaw (radians, 0 = facing the
    camera); mouth_open, smile, eye_open in [0, 1].
    """

    angles: np.ndarray
    root_x: np.ndarray
    root_y: np.ndarray
    px_per_unit: np.ndarray
    yaw: np.ndarray
    mouth_open: np.ndarray
    smile: np.ndarray
    eye_open: np.ndarray


def sample_motion(motion: Motion, frames: int, size: int) -> MotionTrack:
    """Sample ``motion`` at ``frames`` evenly spaced phases covering the whole clip, for a square frame.

    Args:
        motion: the dance.
        frames: number of frames T (>= 1); the same dance is sampled more finely with more frames.
        size: frame side in pixels; positions scale with it.
    """
    u = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    waves = motion.base[:, :1] + (motion.amp[:, :, None] * np.sin(
        2 * np.pi * motion.freq[:, :, None] * u[None, None, :] + motion.phase[:, :, None])).sum(1)
    angles = waves.T.copy()
    for c, name in enumerate(CHANNELS):
        key = name[2:] if name[:2] in ("l_", "r_") else name
        angles[:, c] = np.clip(angles[:, c], *_CHANNEL_LIMITS[key])
    bob = motion.bob[0] * np.abs(np.sin(np.pi * motion.bob[1] * u))
    root_x = _wave(motion.root_x, u) * size
    root_y = (_wave(motion.root_y, u) - bob) * size
    px = _wave(motion.root_scale, u) * size
    yaw = motion.yaw_sway[0] * np.sin(2 * np.pi * motion.yaw_sway[1] * u + motion.yaw_sway[2])
    if motion.turn == "spin":
        yaw = yaw + 2 * np.pi * _smoothstep((u - motion.turn_at) / (2 * motion.turn_len))
    elif motion.turn == "back":
        # Turn to the back, hold a while, turn to the front again.
        hold = motion.turn_len
        yaw = yaw + np.pi * (_smoothstep((u - motion.turn_at) / motion.turn_len)
                             - _smoothstep((u - motion.turn_at - motion.turn_len - hold) / motion.turn_len))
    mouth = np.clip(_wave(motion.mouth, u), 0.0, 1.0)
    smile = np.clip(_wave(motion.smile, u), 0.0, 1.0)
    eye = np.ones_like(u)
    for b in motion.blinks:
        # Wide enough that a 25-frame clip shows every blink with the eyes closed in at least one frame.
        eye = np.minimum(eye, np.clip(np.abs(u - b) / 0.07, 0.0, 1.0))
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return MotionTrack(f32(angles), f32(root_x), f32(root_y), f32(px), f32(yaw), f32(mouth), f32(smile), f32(eye))


def rest_track(track: MotionTrack) -> MotionTrack:
    """One frame of a neutral front-facing pose at the clip's mean root position and scale (a reference photo).

    Args:
        track: the sampled motion whose mean placement the reference should share.
    """
    angles = np.zeros((1, len(CHANNELS)), np.float32)
    rest = {"arm_abduct": 0.3, "elbow": 0.15, "leg_spread": 0.07, "knee": 0.02}
    for c, name in enumerate(CHANNELS):
        angles[0, c] = rest.get(name[2:] if name[:2] in ("l_", "r_") else name, 0.0)
    one = lambda v: np.asarray([v], np.float32)  # noqa: E731
    return MotionTrack(angles, one(track.root_x.mean()), one(track.root_y.mean()), one(track.px_per_unit.mean()),
                       one(0.0), one(0.0), one(0.35), one(1.0))


def skeleton(identity: Identity, track: MotionTrack) -> dict:
    """3D joint positions in body units, pelvis at the origin, before turning: name -> [T, 3].

    Besides ``JOINTS`` it returns "head_top" and the anchors the drawing needs.

    Args:
        identity: whose proportions.
        track: the sampled motion (its angles).
    """
    a = {name: track.angles[:, c].astype(np.float64) for c, name in enumerate(CHANNELS)}
    t = track.angles.shape[0]
    zero = np.zeros(t)
    lean = a["torso_lean"]
    up = np.stack([np.sin(lean), -np.cos(lean), zero], 1)
    lateral = np.stack([np.cos(lean), np.sin(lean), zero], 1)
    tilt = lean + a["head_tilt"]
    head_up = np.stack([np.sin(tilt), -np.cos(tilt), zero], 1)
    pelvis = np.zeros((t, 3))
    chest = pelvis + identity.torso_len * up
    neck = chest + identity.neck_len * head_up
    head = neck + 0.5 * identity.head_h * head_up
    j = {"pelvis": pelvis, "chest": chest, "neck": neck, "head": head,
         "head_top": neck + identity.head_h * head_up, "head_up": head_up}

    def limb_dir(abduct, swing, side):
        return np.stack([side * np.sin(abduct) * np.cos(swing), np.cos(abduct) * np.cos(swing), np.sin(swing)], 1)

    for side, s in (("l", 1.0), ("r", -1.0)):
        # Shoulders sit a little in front of the spine so hanging arms are drawn over the torso edge.
        shoulder = chest + s * 0.5 * identity.shoulder_w * lateral + np.array([0.0, 0.015, 0.03])
        ab, sw, el = a[f"{side}_arm_abduct"], a[f"{side}_arm_swing"], a[f"{side}_elbow"]
        elbow = shoulder + identity.upper_arm * limb_dir(ab, sw, s)
        wrist = elbow + identity.forearm * limb_dir(ab + 0.6 * el, sw + 0.8 * el, s)
        hip = pelvis + s * 0.5 * identity.hip_w * np.array([1.0, 0.0, 0.0]) + np.array([0.0, 0.0, -0.02])
        sp, ls, kn = a[f"{side}_leg_spread"], a[f"{side}_leg_swing"], a[f"{side}_knee"]
        knee = hip + identity.thigh * limb_dir(sp, ls, s)
        ankle = knee + identity.shin * limb_dir(sp, ls - kn, s)
        toe = ankle + np.array([s * 0.02, 0.015, 0.06])
        j.update({f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_wrist": wrist,
                  f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle, f"{side}_toe": toe})
    return j


@dataclass
class View:
    """Projection of body-unit points into (2x supersampled or not) pixels for every frame.

    Args:
        origin: [T, 2] pelvis pixel position. scale: [T] pixels per body unit. yaw: [T] radians.
    """

    origin: np.ndarray
    scale: np.ndarray
    yaw: np.ndarray

    def project(self, p: np.ndarray):
        """Body points [T, 3] (or [T, N, 3]) -> (pixels [T, (N,) 2], depth [T, (N)]; larger depth = nearer)."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        if p.ndim == 3:
            c, s = c[:, None], s[:, None]
        x = p[..., 0] * c + p[..., 2] * s
        z = -p[..., 0] * s + p[..., 2] * c
        sc = self.scale if p.ndim == 2 else self.scale[:, None]
        o = self.origin if p.ndim == 2 else self.origin[:, None, :]
        xy = np.stack([x * sc, p[..., 1] * sc], -1) + o
        return xy, z


def make_view(identity: Identity, track: MotionTrack, upsample: int = 1) -> View:
    """The projection for ``identity`` performing ``track`` at ``upsample`` times the frame resolution."""
    origin = np.stack([track.root_x, track.root_y], 1).astype(np.float64) * upsample
    return View(origin, track.px_per_unit.astype(np.float64) * identity.height * upsample,
                track.yaw.astype(np.float64))


def project_joints(identity: Identity, track: MotionTrack) -> np.ndarray:
    """Ground-truth 2D joints [T, len(JOINTS), 2] float32 in frame pixels."""
    sk = skeleton(identity, track)
    pts = np.stack([sk[name] for name in JOINTS], 1)
    xy, _ = make_view(identity, track).project(pts)
    return xy.astype(np.float32)


def face_visible(yaw: np.ndarray) -> np.ndarray:
    """Whether the face is seen (drawn and boxed): the figure faces the camera within about 70 degrees."""
    return np.cos(yaw) > 0.34
