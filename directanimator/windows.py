"""Long driving videos in overlapping windows: which latent frames each generation window covers and how
neighbouring windows are cross-faded.

Windows are denoised together: at every step each window predicts its slice of one shared latent video and the
predictions are blended linearly over the overlap before a single scheduler step (MultiDiffusion-style latent
blending), so the windows agree on one video instead of ghosting where finished pixels would be cross-faded. A
window's first latent is a one-frame latent for the model while in the long video it stands for four frames, so it
gets weight 0 in the blend.
"""

from __future__ import annotations

import math

import numpy as np

from directanimator.errors import InputError
from directanimator.latents import latent_frame_count

__all__ = ["generation_windows", "plan_windows"]


def plan_windows(num_latents: int, window_latents: int, overlap_latents: int) -> list[tuple[int, np.ndarray]]:
    """Overlapping windows over ``num_latents`` latent frames and their blend weights.

    Windows have ``window_latents`` latents, are spread evenly (each overlap is at least ``overlap_latents``), and
    the last one ends at the last latent. Weights ramp linearly over each overlap (0 at a window's first latent,
    which the model sees as a one-frame latent) so that, normalised, neighbours cross-fade.

    Returns:
        ``[(start, weights[window_latents])]``; a single window ``(0, ones)`` when the video fits in one.
    """
    if num_latents <= window_latents:
        return [(0, np.ones(num_latents, np.float32))]
    stride = window_latents - overlap_latents
    count = math.ceil((num_latents - window_latents) / stride) + 1
    starts = np.round(np.linspace(0, num_latents - window_latents, count)).astype(int).tolist()
    plans = []
    m = np.arange(window_latents, dtype=np.float32)
    for k, start in enumerate(starts):
        w = np.ones(window_latents, np.float32)
        if k > 0:
            o = starts[k - 1] + window_latents - start
            w = np.where(m < o, m / o, w)
        if k < len(starts) - 1:
            o = start + window_latents - starts[k + 1]
            j = m - (window_latents - o)
            w = np.where(j >= 0, w * (o - j) / o, w)
        plans.append((start, w.astype(np.float32)))
    return plans


def generation_windows(num_frames: int, total_latents: int, window_frames: int | None, window_overlap: int | None,
                       tc: int, sample_frames: int) -> list[tuple[int, np.ndarray]]:
    """The windows (``plan_windows``) of a video of ``num_frames`` frames (``total_latents`` latents), checked.

    Args:
        window_frames: frames per window, 1 + ``tc``k (default ``sample_frames``, the model's training length).
        window_overlap: frames shared by neighbours, a multiple of ``tc`` (default 16, or about half a short window).
        tc: the VAE's temporal compression.

    Raises:
        InputError: a window length or overlap that cannot work, with the values that would.
    """
    if window_frames is None:
        window_frames = int(sample_frames)
    window_frames = int(window_frames)
    if window_frames < tc + 1 or (window_frames - 1) % tc:
        raise InputError(f"window_frames must be 1 + {tc}k (e.g. 49, 81), got {window_frames}")
    window_latents = latent_frame_count(window_frames, tc)
    overlap_latents = 0
    explicit_overlap = window_overlap is not None
    if window_overlap is None:
        window_overlap = max(2 * tc, min(16, (window_frames - 1) // 2 // tc * tc))
    if total_latents > window_latents and window_frames < 3 * tc + 1:
        raise InputError(
            f"{num_frames} frames need several windows, but windows of {window_frames} frames are too short to "
            f"overlap; use window_frames >= {3 * tc + 1} or num_frames <= {window_frames}"
        )
    if total_latents > window_latents or explicit_overlap:
        # the overlap's first latent gets weight 0 (see plan_windows), so a cross-fade needs two latents
        if window_overlap % tc or not 2 * tc <= window_overlap <= window_frames - 1 - tc:
            raise InputError(
                f"window_overlap must be a multiple of {tc} in [{2 * tc}, {window_frames - 1 - tc}] frames, "
                f"got {window_overlap}; use longer windows or another overlap"
            )
        overlap_latents = window_overlap // tc
    return plan_windows(total_latents, window_latents, overlap_latents)
