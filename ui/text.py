"""The lines the app writes for the user: frame reports and time left. Pure."""

from __future__ import annotations

import numpy as np


def frame_ranges(flags) -> str:
    """Indices where ``flags`` is True as compact ranges, e.g. ``"3-5, 9"`` ("none" when there are none)."""
    idx = np.flatnonzero(np.asarray(flags, bool))
    if idx.size == 0:
        return "none"
    parts, start = [], idx[0]
    for a, b in zip(idx, list(idx[1:]) + [None]):
        if b is None or b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(parts)


def frame_report(dropped, no_face, num_frames: int, fps: float) -> str:
    """Markdown summary of which frames were dropped (bad segmentation) and which had no face."""
    d, f = int(np.sum(dropped)), int(np.sum(no_face))
    return (
        f"**{num_frames} frames** at {fps:.3g} fps. "
        f"Dropped (bad or empty person mask, pose cue blank): **{d}** ({frame_ranges(dropped)}). "
        f"No face found (face cue blank): **{f}** ({frame_ranges(no_face)})."
    )


def shot_report(shots: dict | None) -> str:
    """Markdown note on the shot used, when the driving video has more than one (else empty)."""
    found = (shots or {}).get("found", [])
    if len(found) < 2:
        return ""
    start, end = shots["used"]
    if shots.get("mode") == "all":
        return f" The driving video has **{len(found)} shots**; every frame is used (Shot: all), so shots are mixed."
    number = found.index([start, end]) + 1 if [start, end] in found else "?"
    how = "the longest" if shots.get("mode") == "longest" else "as chosen"
    return (f" The driving video has **{len(found)} shots**; **shot {number}** (source frames {start}-{end - 1}) "
            f"is used, {how} (Shot: all keeps every frame).")


def eta_text(fraction: float, elapsed: float, desc: str = "") -> str:
    """``desc`` plus the time left, extrapolated from the fraction done so far, e.g. 'denoising 3/20 · 4 s left'."""
    if fraction <= 0.02 or elapsed < 0.5:
        return desc
    left = elapsed / fraction * (1.0 - fraction)
    return f"{desc} · {left:.0f} s left" if left < 120 else f"{desc} · {left / 60:.1f} min left"
