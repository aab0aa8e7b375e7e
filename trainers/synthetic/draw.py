"""Drawing of the synthetic world: backgrounds, bodies, hair, clothes and faces with OpenCV.

Everything is drawn at ``upsample`` times the frame size with anti-aliased sub-pixel polygons and then
area-downsampled, so small figures keep smooth edges. Body parts are painted back to front by depth
(painter's algorithm), which gives arm occlusion behind the body and turns for free. The person mask is the
union of the painted parts' coverage.
"""

from __future__ import annotations

import cv2
import numpy as np

from trainers.synthetic.people import (Identity, MotionTrack, face_visible, make_view, skeleton)

_SHIFT = 4  # sub-pixel bits for cv2 polygon filling
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def circle_points(center, radius, n=20) -> np.ndarray:
    """Points [n, 2] on a circle."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.asarray(center, np.float64) + radius * np.stack([np.cos(t), np.sin(t)], 1)


def blob(centers, radii, n=16) -> np.ndarray:
    """Convex hull [N, 2] of circles: capsules (two circles), tapered limbs and rounded torsos."""
    pts = np.concatenate([circle_points(c, max(r, 0.3), n) for c, r in zip(centers, radii)])
    return cv2.convexHull(pts.astype(np.float32))[:, 0, :].astype(np.float64)


class Canvas:
    """An RGB float canvas with a person-coverage channel; paints polygons with flat colours or patterns.

    Args:
        background: [H, W, 3] float32 image in 0..255 (copied).
    """

    def __init__(self, background: np.ndarray):
        self.rgb = background.astype(np.float32).copy()
        self.person = np.zeros(background.shape[:2], np.float32)

    def paint(self, polys, fill, outline: int = 0, person: bool = True, opacity: float = 1.0):
        """Fill (or, with ``outline`` > 0, stroke) polygons.

        Args:
            polys: list of float point arrays [N, 2] in canvas pixels.
            fill: an RGB tuple, or a function ``f(xs, ys) -> [h, w, 3]`` of pixel coordinates (patterns).
            outline: stroke width in pixels; 0 fills the polygons.
            person: whether the painted pixels belong to the person mask.
            opacity: how much the paint covers what is below.
        """
        h, w = self.person.shape
        allp = np.concatenate(polys)
        x0, y0 = np.floor(allp.min(0) - outline - 2).astype(int)
        x1, y1 = np.ceil(allp.max(0) + outline + 2).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shifted = [_fixed(p - (x0, y0)) for p in polys]
        if outline:
            cv2.polylines(mask, shifted, True, 255, int(outline), cv2.LINE_AA, _SHIFT)
        else:
            cv2.fillPoly(mask, shifted, 255, cv2.LINE_AA, _SHIFT)
        a = mask.astype(np.float32)[..., None] * (opacity / 255.0)
        if callable(fill):
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            colour = fill(xs, ys)
        else:
            colour = np.asarray(fill, np.float32)
        region = self.rgb[y0:y1, x0:x1]
        region *= 1.0 - a
        region += a * colour
        if person:
            pr = self.person[y0:y1, x0:x1]
            pr += a[..., 0] * (1.0 - pr)


def background(identity: Identity, side: int) -> np.ndarray:
    """The identity's static backdrop, [side, side, 3] float32 (a pure function of the identity)."""
    rng = np.random.default_rng(identity.bg_seed)
    c0, c1, c2 = (np.asarray(c, np.float32) for c in identity.bg_colours)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    ang = rng.uniform(0, 2 * np.pi)
    g = np.clip(0.5 + (xs - 0.5) * np.cos(ang) + (ys - 0.5) * np.sin(ang), 0, 1)[..., None]
    img = c0 * (1 - g) + c1 * g
    canvas = Canvas(img)
    kind = identity.background
    if kind == "shapes":
        for _ in range(int(rng.integers(4, 9))):
            col = np.clip(c2 + rng.uniform(-50, 50, 3), 0, 255)
            cx, cy, r = rng.uniform(0, side, 2).tolist() + [rng.uniform(0.05, 0.2) * side]
            if rng.random() < 0.5:
                poly = circle_points((cx, cy), r, 32)
            else:
                ang2 = rng.uniform(0, np.pi)
                rot = np.array([[np.cos(ang2), -np.sin(ang2)], [np.sin(ang2), np.cos(ang2)]])
                poly = np.array([[-1, -0.6], [1, -0.6], [1, 0.6], [-1, 0.6]]) * r @ rot.T + (cx, cy)
            canvas.paint([poly], tuple(col), person=False, opacity=float(rng.uniform(0.5, 0.9)))
    elif kind == "stripes":
        period = rng.uniform(0.08, 0.2)
        ang2 = rng.uniform(0, np.pi)
        phase = (xs * np.cos(ang2) + ys * np.sin(ang2)) / period
        stripe = (0.5 + 0.5 * np.sin(2 * np.pi * phase))[..., None]
        canvas.rgb = canvas.rgb * (1 - 0.4 * stripe) + c2 * 0.4 * stripe
    elif kind == "room":
        horizon = rng.uniform(0.6, 0.72) * side
        floor = np.clip(c1 * (0.75 + 0.25 * (1 - ys[..., None])), 0, 255)
        canvas.rgb = np.where((ys * side < horizon)[..., None], c0 + 0 * floor, floor).astype(np.float32)
        wx, wy = rng.uniform(0.1, 0.6) * side, rng.uniform(0.08, 0.25) * side
        ww, wh = rng.uniform(0.15, 0.3) * side, rng.uniform(0.15, 0.25) * side
        window = np.array([[wx, wy], [wx + ww, wy], [wx + ww, wy + wh], [wx, wy + wh]])
        canvas.paint([window], tuple(c2), person=False)
        canvas.paint([window], tuple(c0 * 0.5), outline=max(1, side // 96), person=False)
        for k in range(1, 6):
            y = horizon + (side - horizon) * (k / 6) ** 1.3
            canvas.paint([np.array([[0, y], [side, y]])], tuple(c1 * 0.6), outline=1, person=False,
                         opacity=0.6)
    return canvas.rgb


def _shade(rgb, f):
    return tuple(float(np.clip(c * f, 0, 255)) for c in rgb)


def _pattern(identity: Identity, centre, period):
    top, top2 = np.asarray(identity.top, np.float32), np.asarray(identity.top2, np.float32)
    kind = identity.pattern
    if kind == "plain":
        return identity.top

    def fill(xs, ys):
        u, v = (xs - centre[0]) / period, (ys - centre[1]) / period
        if kind == "stripes":
            on = np.clip((np.abs((v % 1.0) - 0.5) - 0.25) * 4 + 0.5, 0, 1)
        elif kind == "checks":
            on = (((np.floor(u) + np.floor(v)) % 2) == 0).astype(np.float32)
        else:  # dots
            d = np.hypot((u % 1.0) - 0.5, (v % 1.0) - 0.5)
            on = np.clip((0.3 - d) * period + 0.5, 0, 1)
        on = on[..., None]
        return top * (1 - on) + top2 * on

    return fill


class _Head:
    """Head-local coordinates: (a, b) in units of the half width and half height, b down, turned by yaw."""

    def __init__(self, centre, up2d, rx, ry, yaw):
        self.c, self.rx, self.ry = np.asarray(centre), rx, ry
        n = np.hypot(*up2d)
        self.ey = -np.asarray(up2d) / max(n, 1e-6)
        self.ex = np.array([-self.ey[1], self.ey[0]])
        self.cos, self.sin = np.cos(yaw), np.sin(yaw)

    def at(self, a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return self.c + (a * self.rx)[..., None] * self.ex + (b * self.ry)[..., None] * self.ey

    def on_face(self, a, b):
        """A point on the front of the head sphere, turned by the yaw (features move and squash)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        depth = np.sqrt(np.clip(1 - a * a - b * b, 0, 1))
        return self.at(a * self.cos + depth * self.sin * 0.95, b)

    def ellipse(self, a0, b0, ra, rb, n=16, on_face=True):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        a, b = a0 + ra * np.cos(t), b0 + rb * np.sin(t)
        return self.on_face(a, b) if on_face else self.at(a, b)


def _hair_cap(head: _Head, style: str, n=40):
    """The hair covering the skull: an outline cut at a hairline that drops towards the back of the head."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    grow = 1.14 if style == "curly" else 1.07
    radius = grow * (1 + (0.06 * np.sin(9 * t) if style == "curly" else 0))
    a, b = radius * np.cos(t), radius * np.sin(t)
    back = 0.5 * (1 - head.cos)
    base = (-0.2 if style == "curly" else -0.38) + 1.3 * back
    line = base + 0.55 * a * a - 0.9 * head.sin * a
    return head.at(a, np.minimum(b, line))


def draw_frame(canvas: Canvas, identity: Identity, p: dict, z: dict, scale: float, yaw: float,
               mouth_open: float, smile: float, eye_open: float):
    """Paint one person onto ``canvas``.

    Args:
        p, z: projected canvas positions [2] and depths of the skeleton points (from ``skeleton``), one frame.
        scale: canvas pixels per body unit. yaw: body turn. mouth_open, smile, eye_open: expression in [0, 1].
    Returns:
        The face box (x0, y0, x1, y1) in canvas pixels, or None when the face is not visible.
    """
    idn, s = identity, scale
    parts = []  # (depth, order, painter)
    skin, top, bottom = idn.skin, idn.top, idn.bottom_colour

    def add(depth, polys, fill, **kw):
        parts.append((depth, len(parts), polys, fill, kw))

    # Legs: behind the torso unless kicked well forward.
    for side in ("l", "r"):
        hip, knee, ankle, toe = p[f"{side}_hip"], p[f"{side}_knee"], p[f"{side}_ankle"], p[f"{side}_toe"]
        dl = 0.5 * (z[f"{side}_hip"] + z[f"{side}_knee"]) - 0.05
        thigh_fill = skin if idn.bottom == "skirt" else bottom
        add(dl, [blob([hip, knee], [idn.thigh_r * s, idn.shin_r * 1.1 * s])], thigh_fill)
        if idn.bottom == "shorts":
            add(dl + 1e-4, [blob([hip, hip + 0.55 * (knee - hip)], [idn.thigh_r * 1.12 * s,
                                                                   idn.thigh_r * 1.05 * s])], bottom)
        ds = 0.5 * (z[f"{side}_knee"] + z[f"{side}_ankle"]) - 0.05
        add(ds, [blob([knee, ankle], [idn.shin_r * 1.05 * s, idn.shin_r * 0.75 * s])],
            bottom if idn.bottom == "pants" else skin)
        add(ds + 1e-4, [blob([ankle, toe], [idn.shin_r * 0.9 * s, idn.shin_r * 0.7 * s])], idn.shoe_colour)
    # Hips of the trousers/skirt, just behind the shirt.
    hips = [p["l_hip"], p["r_hip"], p["pelvis"] + 0.35 * (p["chest"] - p["pelvis"])]
    if idn.bottom == "skirt":
        knees = [p["l_hip"] + 0.75 * (p["l_knee"] - p["l_hip"]), p["r_hip"] + 0.75 * (p["r_knee"] - p["r_hip"])]
        flare = np.array([1.0, 0.0]) * idn.thigh_r * 0.6 * s
        # Behind the shirt, in front of the legs unless a knee is lifted towards the camera.
        add(-0.01,
            [blob(hips + [knees[0] + flare, knees[1] - flare], [idn.thigh_r * s] * 3 + [idn.thigh_r * s] * 2)],
            bottom)
    else:
        add(-0.045, [blob(hips, [idn.thigh_r * s, idn.thigh_r * s, idn.torso_r * s])], bottom)
    # Torso with the shirt pattern, which moves with the chest.
    mid = 0.5 * (p["chest"] + p["pelvis"])
    torso = blob([p["l_shoulder"], p["r_shoulder"], mid, p["l_hip"], p["r_hip"]],
                 [idn.arm_r * 1.25 * s, idn.arm_r * 1.25 * s, idn.torso_r * 1.25 * s, idn.torso_r * 1.1 * s,
                  idn.torso_r * 1.1 * s])
    add(0.0, [torso], _pattern(idn, p["chest"], idn.pattern_scale * s))
    # Arms: sleeves, skin, hands.
    for side in ("l", "r"):
        sh, el, wr = p[f"{side}_shoulder"], p[f"{side}_elbow"], p[f"{side}_wrist"]
        du = 0.5 * (z[f"{side}_shoulder"] + z[f"{side}_elbow"])
        df = 0.5 * (z[f"{side}_elbow"] + z[f"{side}_wrist"])
        upper = blob([sh, el], [idn.arm_r * s, idn.forearm_r * 1.05 * s])
        if idn.long_sleeves:
            add(du, [upper], top)
            add(df, [blob([el, wr], [idn.forearm_r * 1.05 * s, idn.forearm_r * 0.85 * s])], top)
        else:
            add(du, [upper], skin)
            add(du + 1e-4, [blob([sh, sh + 0.55 * (el - sh)], [idn.arm_r * 1.2 * s, idn.arm_r * 1.1 * s])], top)
            add(df, [blob([el, wr], [idn.forearm_r * s, idn.forearm_r * 0.8 * s])], skin)
        hand = wr + 0.45 * (wr - el) * (0.045 / max(idn.forearm, 1e-6))
        add(z[f"{side}_wrist"] + 1e-4, [blob([wr, hand], [idn.forearm_r * 0.95 * s, idn.forearm_r * 1.1 * s])],
            _shade(skin, 0.97))
    # Head group: neck, hair behind, skull, hair cap, face.
    up2d = p["head_top"] - p["neck"]
    head = _Head(p["head"], up2d, 0.5 * idn.head_w * s, 0.5 * idn.head_h * s, yaw)
    dh = z["head"] + 0.05
    add(dh - 0.02, [blob([p["chest"], p["neck"]], [0.2 * idn.head_w * s, 0.22 * idn.head_w * s])],
        _shade(skin, 0.9))
    hair = idn.hair_colour
    if idn.hair_style == "long":
        add(z["hair_back"], [blob([p["head"], p["hair_l"], p["hair_r"]],
                                  [0.55 * idn.head_w * s, 0.3 * idn.head_w * s, 0.3 * idn.head_w * s])],
            _shade(hair, 0.9))
    elif idn.hair_style == "ponytail":
        add(z["hair_back"], [blob([p["tail_top"], p["tail_end"]], [0.18 * idn.head_w * s, 0.1 * idn.head_w * s])],
            _shade(hair, 0.9))
    elif idn.hair_style == "bun":
        add(z["bun"] + 0.05, [circle_points(p["bun"], 0.28 * idn.head_w * s)], _shade(hair, 0.95))
    add(dh, [head.ellipse(0, 0, 1, 1, 32, on_face=False)], skin)
    add(dh + 1e-3, [_hair_cap(head, idn.hair_style)], hair)
    box = None
    if face_visible(np.asarray(yaw)):
        face = _face_parts(idn, head, mouth_open, smile, eye_open)
        for k, (polys, fill, kw) in enumerate(face):
            add(dh + 2e-3 + 1e-5 * k, polys, fill, **kw)
        e = head.ellipse(0, 0, 1, 1, 32, on_face=False)
        box = (*e.min(0), *e.max(0))
    for _, _, polys, fill, kw in sorted(parts, key=lambda q: (q[0], q[1])):
        canvas.paint(polys, fill, **kw)
    return box


def _face_parts(idn: Identity, head: _Head, mouth_open: float, smile: float, eye_open: float):
    out = []
    px = max(1.0, head.rx / 7.0)  # stroke width that stays visible at small sizes
    # Light falls on the front of the face: a soft highlight gives the shading face detectors look for.
    lit = tuple(min(255.0, c * 1.18 + 22) for c in idn.skin)
    out.append(([head.ellipse(0, -0.05, 0.62, 0.7, 20)], lit, {"opacity": 0.45}))
    out.append(([head.ellipse(0, -0.05, 0.4, 0.5, 16)], lit, {"opacity": 0.35}))
    dark = (30, 22, 20)
    for sgn in (-1, 1):
        ea = sgn * idn.eye_spacing
        if eye_open > 0.35:
            out.append(([head.ellipse(ea, 0.02, 0.2 * idn.eye_size, 0.15 * idn.eye_size * eye_open)],
                        (245, 245, 240), {}))
            out.append(([head.ellipse(ea, 0.03, 0.11 * idn.eye_size, 0.11 * idn.eye_size * eye_open)],
                        idn.eye_colour, {}))
            out.append(([head.ellipse(ea, 0.03, 0.05 * idn.eye_size, 0.05 * idn.eye_size * eye_open, 8)],
                        dark, {}))
        else:
            out.append(([head.on_face(np.array([ea - 0.18, ea + 0.18]), np.array([0.05, 0.05]))],
                        _shade(idn.skin, 0.55), {"outline": int(px)}))
        # Brows rise slightly towards the outside of the face.
        brow = head.on_face(np.array([ea - 0.2, ea + 0.2]), np.array([-0.27 + 0.03 * sgn, -0.27 - 0.03 * sgn]))
        out.append(([brow], _shade(idn.hair_colour, 0.7), {"outline": max(1, int(round(px * idn.brow_thick)))}))
    out.append(([head.on_face(np.array([0.0, 0.05, -0.05]), np.array([0.05, 0.05 + idn.nose_len * 1.6,
                                                                         0.05 + idn.nose_len * 1.6]))],
                _shade(idn.skin, 0.78), {}))
    w = idn.mouth_w
    a = np.linspace(-w, w, 9)
    top_edge = 0.55 - smile * 0.14 * (a / w) ** 2  # a smile lifts the corners
    height = (0.07 + 0.32 * mouth_open) * np.sqrt(np.clip(1 - (a / w) ** 2, 0, 1)) + 0.02
    mouth = head.on_face(np.concatenate([a, a[::-1]]), np.concatenate([top_edge, (top_edge + height)[::-1]]))
    colour = tuple(np.asarray(idn.lip_colour) * (1 - mouth_open) + np.asarray((70, 15, 25)) * mouth_open)
    out.append(([mouth], colour, {}))
    if idn.glasses:
        rings = [head.ellipse(sgn * idn.eye_spacing, 0.03, 0.3, 0.24, 14) for sgn in (-1, 1)]
        bridge = head.on_face(np.array([-idn.eye_spacing + 0.3, idn.eye_spacing - 0.3]), np.array([0.0, 0.0]))
        # Half-transparent: at small sizes the rims blur into tinted lenses that would hide the eyes.
        out.append((rings + [bridge], idn.glasses_colour, {"outline": int(px), "opacity": 0.55}))
    return out


def draw_clip(identity: Identity, track: MotionTrack, size: int, upsample: int = 2):
    """Render ``identity`` performing the sampled motion ``track`` in a ``size`` x ``size`` frame.

    Args:
        identity: who. track: the sampled motion (``sample_motion``). size: frame side in pixels.
        upsample: supersampling factor (drawn at ``size * upsample`` then area-downsampled).
    Returns:
        (frames [T, size, size, 3] uint8, masks [T, size, size] float32 in [0, 1], face_boxes [T, 4] float32
        with NaN rows where the face is not visible).
    """
    side = size * upsample
    bg = background(identity, side)
    sk = skeleton(identity, track)
    # Extra anchors for hair that hangs behind the head (they turn with the body).
    hu = sk["head_up"]
    back = np.array([0.0, 0.0, -1.0])
    w = identity.head_w
    sk["hair_back"] = sk["head"] + 0.08 * back
    sk["hair_l"] = sk["head"] - 0.95 * identity.head_h * hu + np.array([0.5 * w, 0, -0.05])
    sk["hair_r"] = sk["head"] - 0.95 * identity.head_h * hu + np.array([-0.5 * w, 0, -0.05])
    sk["tail_top"] = sk["head"] + 0.1 * identity.head_h * hu + 0.55 * w * back
    sk["tail_end"] = sk["head"] - 0.8 * identity.head_h * hu + 0.7 * w * back
    sk["bun"] = sk["head"] + 0.5 * identity.head_h * hu + 0.35 * w * back
    del sk["head_up"]
    view = make_view(identity, track, upsample)
    names = list(sk)
    xy, depth = view.project(np.stack([sk[n] for n in names], 1))
    t_count = xy.shape[0]
    frames = np.empty((t_count, size, size, 3), np.uint8)
    masks = np.empty((t_count, size, size), np.float32)
    boxes = np.full((t_count, 4), np.nan, np.float32)
    for t in range(t_count):
        canvas = Canvas(bg)
        p = {n: xy[t, i] for i, n in enumerate(names)}
        z = {n: float(depth[t, i]) for i, n in enumerate(names)}
        box = draw_frame(canvas, identity, p, z, float(view.scale[t]), float(track.yaw[t]),
                         float(track.mouth_open[t]), float(track.smile[t]), float(track.eye_open[t]))
        img = cv2.resize(canvas.rgb, (size, size), interpolation=cv2.INTER_AREA)
        frames[t] = np.clip(np.round(img), 0, 255).astype(np.uint8)
        masks[t] = np.clip(cv2.resize(canvas.person, (size, size), interpolation=cv2.INTER_AREA), 0, 1)
        if box is not None:
            b = np.clip(np.asarray(box, np.float64) / upsample, 0, size)
            if b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
                boxes[t] = b
    return frames, masks, boxes
