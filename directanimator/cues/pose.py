"""Pose cue (paper section 3.1, appendix A.2): the person's foreground, in grayscale, low-passed in frequency.

The low-pass keeps a disc of low spatial frequencies and drops the rest (as in the paper's figure 7): clothing
and hair textures go, the silhouette and coarse shading stay. Inside the disc the weights fall from 1 at DC to 0
at the rim as a raised cosine (a Hann window), because a hard-edged disc rings: it draws ripples and a ~20 %
overshoot around every edge and corner of the silhouette. Nothing beyond the disc is kept either way.

Strength -> cutoff: ``cutoff = CUTOFF_AT_FULL_STRENGTH ** strength`` as a fraction of the Nyquist frequency
(0.5 cycles/pixel), the disc being round in cycles/pixel whatever the aspect. So strength 0 keeps everything
(the filter is skipped), 0.5 keeps frequencies up to 0.3 x Nyquist (half amplitude at 0.15 x Nyquist: details
finer than ~13 px go), 1 keeps up to 0.09 x Nyquist (half amplitude at a ~44 px wavelength: blobs only). The
cutoff is in pixels of the working frame, so the same strength blurs the same number of pixels at any size.

Borders: the frame is zero-padded by two wavelengths of the cutoff before the FFT (``padding_for_strength``),
so a person cut by one edge does not bleed into the opposite one (the FFT is periodic). Only the axes along
which content comes that near a border are padded (padding makes the 512-long row FFTs ~2x slower).

Speed: the disc only touches the lowest ``kx`` columns of the half spectrum, so instead of a full rfft2/irfft2
the filter runs an rfft along the frame's rows, keeps ``kx`` bins, transforms those columns, weights, and goes
back (exactly the same result, about half the work). Frames are processed a few at a time so that the working set
stays in cache. The FFTs use torch's intra-op threads as the caller set them; on a CPU shared with other busy
processes one thread is several times faster than two (OpenMP threads wait for each other), so set
``torch.set_num_threads(1)`` there.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import torch

CUTOFF_AT_FULL_STRENGTH = 0.09
"""Disc radius (fraction of Nyquist) at strength 1."""

PAD_WAVELENGTHS = 2.0
"""Zero padding around the frame, in wavelengths of the cutoff frequency (see ``padding_for_strength``)."""

_CHUNK = 4  # frames per FFT batch: 4 x 512 x 512 float32 = 4 MB, cache-friendly.


def cutoff_for_strength(strength: float) -> float:
    """Disc radius as a fraction of Nyquist for a user-facing ``strength`` in [0, 1] (strength 0 skips the filter)."""
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"low-pass strength must be in [0, 1], got {strength}")
    return CUTOFF_AT_FULL_STRENGTH**strength


def _fast_length(n: int) -> int:
    """The smallest even ``2^a 3^b 5^c >= n``: FFT lengths that MKL and pocketfft handle fastest."""
    best, p2 = None, 2
    while True:
        p3 = p2
        while True:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = p5 if best is None else min(best, p5)
            if p3 >= n:
                break
            p3 *= 3
        if p2 >= n:
            break
        p2 *= 2
    return best


def padding_for_strength(strength: float) -> int:
    """Zero padding (pixels, per axis) that keeps the filter from wrapping around the frame.

    The FFT filters periodically: a person cut by the bottom edge would bleed into the top rows (a grey ghost
    band). Padding by ``PAD_WAVELENGTHS`` wavelengths of the cutoff on each side makes it an ordinary (linear)
    filtering with zeros outside the frame, like the black background of the foreground.
    """
    return int(math.ceil(PAD_WAVELENGTHS / (0.5 * cutoff_for_strength(strength))))


@functools.lru_cache(maxsize=32)
def _disc(height: int, width: int, strength: float, pad_height: bool = True,
          pad_width: bool = True) -> tuple[torch.Tensor, int, int, int]:
    """FFT plan for ``height x width`` frames: ``(disc, kx, padded_height, padded_width)``.

    ``disc`` holds the weights of the first ``kx`` columns of the padded rfft half spectrum, transposed to
    ``[kx, padded_height]`` (complex64). ``pad_height`` / ``pad_width``: whether that axis is zero-padded.
    """
    cutoff = cutoff_for_strength(strength)
    pad = 2 * padding_for_strength(strength)
    p_height = _fast_length(height + pad) if pad_height else height
    p_width = _fast_length(width + pad) if pad_width else width
    fy = torch.fft.fftfreq(p_height, dtype=torch.float64).abs()[:, None] * 2.0  # 1.0 = Nyquist
    fx = torch.fft.rfftfreq(p_width, dtype=torch.float64)[None, :] * 2.0
    radius = torch.sqrt(fy**2 + fx**2)
    # Raised-cosine (Hann) weights over the disc: a hard-edged disc rings (ripples and ~20 % overshoot around
    # every edge and corner of the silhouette, which the model would read as structure); this one does not.
    disc = torch.where(radius <= cutoff, 0.5 * (1.0 + torch.cos(torch.pi * radius / cutoff)), 0.0)
    kx = max(1, int((fx[0] <= cutoff).sum()))
    return disc[:, :kx].T.to(torch.complex64).contiguous(), kx, p_height, p_width


def _lowpass_block(block: torch.Tensor, plan, half: torch.Tensor | None = None) -> torch.Tensor:
    """Low-pass a few frames ``[t, H, W]`` with a plan from ``_disc`` (moved to the block's device).

    The frame sits at the top-left of the zero-padded FFT domain (``n=`` pads at the end; with the padding at
    least twice the kernel reach, one side is enough), and only the frame's own rows are transformed along the
    rows in both directions.

    ``half``: optional zeroed ``[t, H, padded_width // 2 + 1]`` complex64 buffer reused across calls (only its
    first ``kx`` columns are ever written, so the rest stays zero).
    """
    disc, kx, p_height, p_width = plan
    num, height, width = block.shape
    spec = torch.fft.rfft(block, n=p_width, dim=-1)[..., :kx]
    # The column transforms run on the transposed [t, kx, H] block: contiguous rows are ~5x faster in MKL than
    # strided columns, and the block is small (kx << W/2).
    spec = torch.fft.fft(spec.transpose(-1, -2), n=p_height, dim=-1)
    spec *= disc
    spec = torch.fft.ifft(spec, dim=-1)[..., :height].transpose(-1, -2)
    if half is None or half.shape[0] != num:
        half = torch.zeros((num, height, p_width // 2 + 1), dtype=spec.dtype, device=spec.device)
    # irfft(n=...) from only kx bins pads internally and is ~1.7x slower than from a full-width zeroed spectrum.
    half[..., :kx] = spec
    return torch.fft.irfft(half, n=p_width, dim=-1)[..., :width]


def _near_border(block: torch.Tensor, pad: int) -> tuple[bool, bool]:
    """Whether the frames have content (> half a gray level) within ``pad`` pixels of the top/bottom and of the
    left/right borders: only then can the periodic FFT wrap it around to the opposite side."""
    height, width = block.shape[-2:]
    if 2 * pad >= min(height, width):
        return True, True
    rows = block.abs().amax(dim=(0, 2)) > 0.5
    cols = block.abs().amax(dim=(0, 1)) > 0.5
    return bool(rows[:pad].any() or rows[-pad:].any()), bool(cols[:pad].any() or cols[-pad:].any())


def _filter_chunk(block: torch.Tensor, strength: float, buffers: dict) -> torch.Tensor:
    """Low-pass a few frames, zero-padding only the axes along which content comes near a border.

    Without content near the border, padding changes only the kernel tails (< 0.25 gray level) and
    costs: a padded row length is no longer 512 and the row FFTs get ~2x slower. ``buffers`` caches the
    reusable zeroed half-spectrum buffers by shape.
    """
    num, height, width = block.shape
    pad_height, pad_width = _near_border(block, padding_for_strength(strength))
    disc, kx, p_height, p_width = _disc(height, width, strength, pad_height, pad_width)
    plan = (disc.to(block.device), kx, p_height, p_width)  # works on GPU tensors too (training-time cue building)
    shape = (num, height, p_width // 2 + 1)
    if shape not in buffers:
        buffers[shape] = torch.zeros(shape, dtype=torch.complex64, device=block.device)
    return _lowpass_block(block, plan, buffers[shape])


def lowpass(gray: torch.Tensor, strength: float) -> torch.Tensor:
    """Frequency-domain disc low-pass of a batch of grayscale frames.

    Args:
        gray: ``[T, H, W]`` (or ``[H, W]``) float tensor, any range, on any device.
        strength: user-facing low-pass strength in [0, 1]; 0 returns the input unchanged, 1 is the strongest
            (see the module docstring for the mapping to the cutoff radius).

    Returns:
        Float32 tensor of the same shape: the frames zero-padded by ``padding_for_strength(strength)`` pixels
        (so nothing wraps around the borders; skipped along an axis where no content comes that close to the
        border), their spectrum weighted by a raised cosine over the disc of radius
        ``cutoff_for_strength(strength)`` x Nyquist and zero beyond it, transformed back and cropped.
        A uniform frame keeps its value away from the borders (DC gain 1).
    """
    if gray.ndim not in (2, 3):
        raise ValueError(f"lowpass expects [T,H,W] or [H,W], got shape {tuple(gray.shape)}")
    strength = float(strength)
    cutoff_for_strength(strength)  # validates the range
    gray = gray.float()
    if strength == 0.0:
        return gray.clone()
    squeeze = gray.ndim == 2
    if squeeze:
        gray = gray[None]
    num, height, width = gray.shape
    out = torch.empty((num, height, width), dtype=torch.float32, device=gray.device)
    buffers = {}
    for i in range(0, num, _CHUNK):
        out[i : i + _CHUNK] = _filter_chunk(gray[i : i + _CHUNK], strength, buffers)
    return out[0] if squeeze else out


def foreground_gray(frames: np.ndarray, masks: np.ndarray) -> torch.Tensor:
    """Grayscale (ITU-R 601 luma) of ``frames`` [T,H,W,3] uint8 times ``masks`` [T,H,W] -> float32 [T,H,W]."""
    # OpenCV's SIMD colour conversion is ~10x faster than a float matmul over [T,H,W,3]; its uint8 rounding is
    # far below what the low-pass keeps.
    gray = np.empty(frames.shape[:3], dtype=np.uint8)
    for i, frame in enumerate(frames):
        cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY, dst=gray[i])
    gray = torch.from_numpy(gray).float()
    gray *= torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))
    return gray


def pose_cue(
    frames: np.ndarray,
    masks: np.ndarray,
    strength: float = 0.5,
    dropped: np.ndarray | None = None,
) -> np.ndarray:
    """Pose cue frames: grayscale foreground, low-passed, dropped frames all zero.

    Args:
        frames: driving frames ``[T, H, W, 3]`` uint8 RGB.
        masks: person masks ``[T, H, W]`` float32 in [0, 1] (soft masks weight the pixels).
        strength: low-pass strength in [0, 1] (0 = grayscale foreground only).
        dropped: optional ``[T]`` bool; True frames come out all zero (the model leans on their neighbours).

    Returns:
        ``[T, H, W]`` uint8.
    """
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    if frames.ndim != 4 or frames.shape[-1] != 3 or masks.shape != frames.shape[:3]:
        raise ValueError(f"pose_cue expects frames [T,H,W,3] and masks [T,H,W], got {frames.shape}, {masks.shape}")
    strength = float(strength)
    cutoff_for_strength(strength)  # validates the range
    num, height, width = masks.shape
    keep = np.ones(num, dtype=bool) if dropped is None else ~np.asarray(dropped, dtype=bool).reshape(num)
    cue = np.zeros((num, height, width), dtype=np.uint8)
    buffers = {}
    # Colour conversion, masking, filtering and quantisation run chunk by chunk so the working set stays in
    # cache; dropped frames are not computed at all.
    index = np.flatnonzero(keep)
    for i in range(0, len(index), _CHUNK):
        chunk = index[i : i + _CHUNK]
        gray = foreground_gray(frames[chunk], masks[chunk])
        if strength > 0.0:
            gray = _filter_chunk(gray, strength, buffers)
        cue[chunk] = gray.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return cue


def rgb_pose_cue(frames: np.ndarray, masks: np.ndarray, dropped: np.ndarray | None = None) -> np.ndarray:
    """The paper's "RGB pose cue" ablation (Table 3, S3): the raw colour foreground, no grayscale, no low-pass.

    Args:
        frames: driving frames ``[T, H, W, 3]`` uint8 RGB.
        masks: person masks ``[T, H, W]`` float32 in [0, 1] (soft masks weight the pixels).
        dropped: optional ``[T]`` bool; True frames come out all zero, as in ``pose_cue``.

    Returns:
        ``[T, H, W, 3]`` uint8 (the pipeline and the trainers encode it like any RGB video).
    """
    frames = np.asarray(frames)
    masks = np.asarray(masks, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3 or masks.shape != frames.shape[:3]:
        raise ValueError(f"rgb_pose_cue expects frames [T,H,W,3] and masks [T,H,W], got {frames.shape}, {masks.shape}")
    cue = np.rint(frames.astype(np.float32) * masks[..., None]).clip(0, 255).astype(np.uint8)
    if dropped is not None:
        cue[np.asarray(dropped, dtype=bool).reshape(len(cue))] = 0
    return cue


def skeleton_pose_cue(masks: np.ndarray, dropped: np.ndarray | None = None) -> np.ndarray:
    """A skeleton-like pose cue for the paper's skeleton-map ablation (Table 3, S5): the body mask thinned to
    one-pixel lines (Zhang-Suen thinning, ``cv2.ximgproc.thinning``) and thickened to a few pixels, white on black.

    Not a keypoint skeleton: no pose estimator runs (none ships offline), so limbs are not labelled and front and
    back look alike; it keeps what the ablation is about, a sparse line drawing of the pose instead of pixels.

    Args:
        masks: person masks ``[T, H, W]`` float32 in [0, 1] (thresholded at 0.5).
        dropped: optional ``[T]`` bool; True frames come out all zero, as in ``pose_cue``.

    Returns:
        ``[T, H, W]`` uint8 (0 or 255); lines ``2 * max(1, round(min(H, W) / 128)) + 1`` pixels wide.
    """
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim != 3:
        raise ValueError(f"skeleton_pose_cue expects masks [T,H,W], got {masks.shape}")
    num, height, width = masks.shape
    keep = np.ones(num, dtype=bool) if dropped is None else ~np.asarray(dropped, dtype=bool).reshape(num)
    width_px = 2 * max(1, round(min(height, width) / 128)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width_px, width_px))
    cue = np.zeros((num, height, width), dtype=np.uint8)
    for t in np.flatnonzero(keep):
        binary = np.where(masks[t] > 0.5, 255, 0).astype(np.uint8)
        if binary.any():
            cue[t] = cv2.dilate(cv2.ximgproc.thinning(binary), kernel)
    return cue
