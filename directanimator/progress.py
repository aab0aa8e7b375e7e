"""Progress callbacks: ``progress(fraction, desc)`` with ``fraction`` in [0, 1], as the CLIs' tqdm bars and the
app's ``gr.Progress`` take them. Every long function of the library accepts one (or ``None``)."""

from __future__ import annotations

from typing import Callable

__all__ = ["ProgressFn", "report", "sub_progress"]

ProgressFn = Callable[[float, str], None]


def report(progress: ProgressFn | None, fraction: float, desc: str) -> None:
    """Call ``progress`` (when given) with ``fraction`` clamped to [0, 1]."""
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), desc)


def sub_progress(progress: ProgressFn | None, start: float, end: float) -> ProgressFn | None:
    """A callback that maps one stage's [0, 1] onto [start, end] of the whole run (``None`` stays ``None``)."""
    if progress is None:
        return None

    def sub(fraction, desc=""):
        progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0), desc)

    return sub
