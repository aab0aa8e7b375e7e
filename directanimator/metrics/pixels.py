"""Pixel metrics of a generated video against its ground truth: PSNR, SSIM, L1 and moving L1 (paper Table 1).

Videos are uint8 arrays ``[T, H, W, 3]`` (a single ``[H, W, 3]`` image counts as one frame); the metrics work in
[0, 1] units. No weights are needed.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import InputError

__all__ = ["MOVING_THRESHOLD", "as_video", "l1", "moving_l1", "psnr", "ssim"]


def as_video(x, name: str) -> np.ndarray:
    """Return ``x`` as a uint8 ``[T, H, W, 3]`` array, or raise ``InputError``."""
    arr = np.asarray(x)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise InputError(f"{name} must be a video [T,H,W,3] or an image [H,W,3], got shape {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 (0..255), got {arr.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)")
    if arr.shape[0] == 0:
        raise InputError(f"{name} has no frames")
    return np.ascontiguousarray(arr[..., :3])


def _pair(a, b, names=("generated", "ground_truth")) -> tuple[np.ndarray, np.ndarray]:
    """Check two videos match in shape and return them as uint8 ``[T, H, W, 3]`` arrays."""
    va, vb = as_video(a, names[0]), as_video(b, names[1])
    if va.shape != vb.shape:
        raise InputError(
            f"{names[0]} {tuple(va.shape)} and {names[1]} {tuple(vb.shape)} differ in shape; "
            "resize and trim them to the same frames and size first"
        )
    return va, vb


def _frame_diffs(a, b):
    """Per frame: the sums of |a - b| and (a - b)^2 over its pixels (exact integers), and the pixel count."""
    va, vb = _pair(a, b)
    abs_sum, sq_sum = np.empty(len(va)), np.empty(len(va))
    for t in range(len(va)):  # one frame at a time: a 49-frame 512² clip never sits in memory as float64
        d = va[t].astype(np.int32) - vb[t]
        abs_sum[t], sq_sum[t] = np.abs(d).sum(), (d * d).sum()
    return abs_sum, sq_sum, va[0].size


def _reduce(vals: np.ndarray, keep: bool):
    vals = np.asarray(vals, np.float64)
    return vals if keep else float(vals.mean())


def psnr(a, b, per_frame: bool = False):
    """Peak signal-to-noise ratio in dB, with a data range of 1 (pixels scaled to [0, 1]).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]`` (or one image ``[H, W, 3]``).
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array of per-frame values instead of their mean.

    Identical frames give ``inf`` (no cap); the mean is then ``inf`` too.
    """
    _, sq_sum, n = _frame_diffs(a, b)
    mse = sq_sum / n / 255.0**2
    with np.errstate(divide="ignore"):
        vals = np.where(mse > 0, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-300)), math.inf)
    return _reduce(vals, per_frame)


def l1(a, b, per_frame: bool = False):
    """Mean absolute error in [0, 1] units (the paper reports it ×1e-4).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]``.
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array instead of the mean.
    """
    abs_sum, _, n = _frame_diffs(a, b)
    return _reduce(abs_sum / n / 255.0, per_frame)


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a, b, per_frame: bool = False, channels: str = "luma", win_size: int = 11, sigma: float = 1.5):
    """Structural similarity (Wang et al. 2004) with a Gaussian window.

    Standard constants: K1 = 0.01, K2 = 0.03, data range 1, an 11×11 Gaussian window with sigma 1.5, population
    (co)variances, and only windows that lie fully inside the image (the same numbers as
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False, data_range=1)``).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]``; frames must be at least ``win_size`` pixels on each side.
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array instead of the mean.
        channels: ``"luma"`` (BT.601 Y of the RGB frames) or ``"rgb"`` (SSIM per channel, averaged).
        win_size: Gaussian window side (odd).
        sigma: Gaussian window standard deviation.
    """
    va, vb = _pair(a, b)
    if channels == "luma":
        weights = np.array([0.299, 0.587, 0.114])
    elif channels != "rgb":
        raise InputError(f"ssim channels must be 'luma' or 'rgb', got {channels!r}")
    if win_size % 2 != 1 or min(va.shape[1:3]) < win_size:
        raise InputError(f"ssim needs an odd win_size no larger than the frame; got {win_size} for {va.shape[1:3]}")
    g = _gaussian_window(win_size, sigma)
    pad = (win_size - 1) // 2

    def blur(x):  # separable Gaussian in float64 (OpenCV), keeping only windows fully inside the image
        out = cv2.sepFilter2D(x, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
        return out[pad : x.shape[0] - pad, pad : x.shape[1] - pad]

    def planes(frame):  # float64 [0, 1]: the luma plane, or the three colour planes (one frame at a time)
        f = frame.astype(np.float64) / 255.0
        return [f @ weights] if channels == "luma" else [np.ascontiguousarray(f[..., k]) for k in range(3)]

    c1, c2 = 0.01**2, 0.03**2
    values = []
    for fa, fb in zip(va, vb):
        means = []
        for ch_a, ch_b in zip(planes(fa), planes(fb)):
            mu_a, mu_b = blur(ch_a), blur(ch_b)
            var_a = blur(ch_a * ch_a) - mu_a**2
            var_b = blur(ch_b * ch_b) - mu_b**2
            cov = blur(ch_a * ch_b) - mu_a * mu_b
            smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
            means.append(smap.mean())
        values.append(float(np.mean(means)))
    return _reduce(np.array(values), per_frame)


MOVING_THRESHOLD = 40
"""A pixel "moves" where the true video differs from the reference held still by more than this (0..255, any
channel)."""


def moving_l1(generated, truth, reference) -> float:
    """Mean absolute error (in [0, 1]) over the pixels where the ground truth differs from the reference image held
    still: the error on the motion itself, which whole-frame metrics dilute with the static background. NaN when
    nothing moves.

    Args:
        generated: ``[T, H, W, 3]`` uint8 video.
        truth: ground truth of the same shape.
        reference: ``[H, W, 3]`` uint8 reference image of the same size as the frames.
    """
    gen, truth = as_video(generated, "generated"), as_video(truth, "ground_truth").astype(np.float32)
    reference = np.asarray(reference)
    if gen.shape != truth.shape or reference.shape[:2] != truth.shape[1:3]:
        raise InputError(f"moving L1 needs a generated video, ground truth and reference of one size; got "
                         f"{gen.shape}, {truth.shape} and {reference.shape}")
    moving = np.abs(truth - reference[..., :3].astype(np.float32)[None]).max(axis=-1) > MOVING_THRESHOLD
    if not moving.any():
        return float("nan")
    return float(np.abs(gen.astype(np.float32) - truth).mean(axis=-1)[moving].mean() / 255.0)
