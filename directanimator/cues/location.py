"""Location cue (paper section 3.1, appendix A.2, eqs. 9-12): driving masks aligned to the reference, softened.

One similarity transform (isotropic scale + translation) is estimated for the whole clip from the person boxes,
so the aligned masks do not jitter; the body masks are then softened on a coarse grid so that they carry where
and how big the person is, not the exact outline of the driving person (which would leak their identity).

Coordinates are OpenCV's: pixel (x, y) is the centre of column x, row y.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError


@dataclass
class SimilarityTransform:
    """``T(x) = scale * x + (tx, ty)``: driving-frame pixel coordinates -> reference pixel coordinates (eq. 11)."""

    scale: float
    tx: float
    ty: float

    def matrix(self) -> np.ndarray:
        """The 2x3 float64 affine matrix (OpenCV's forward convention, as used by ``cv2.warpAffine``)."""
        return np.array([[self.scale, 0.0, self.tx], [0.0, self.scale, self.ty]], dtype=np.float64)

    def inverse(self) -> "SimilarityTransform":
        """``T^-1(y) = (y - t) / s``."""
        return SimilarityTransform(1.0 / self.scale, -self.tx / self.scale, -self.ty / self.scale)

    def apply(self, points) -> np.ndarray:
        """Map points ``[..., 2]`` (x, y) with ``T``."""
        points = np.asarray(points, dtype=np.float64)
        return points * self.scale + np.array([self.tx, self.ty])

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {"scale": float(self.scale), "tx": float(self.tx), "ty": float(self.ty)}

    def adjusted(self, scale: float, dx: float, dy: float, centre, frame_hw) -> "SimilarityTransform":
        """This transform scaled by ``scale`` about ``centre`` and then shifted by ``(dx, dy)`` times the frame
        size: ``T'(x) = scale * (T(x) - c) + c + (dx * W, dy * H)`` (the app's alignment sliders on top of the
        automatic alignment, ``c`` the reference person's centre).

        Args:
            scale: factor on the scale (1: unchanged).
            dx, dy: shifts as fractions of the frame width and height.
            centre: ``(x, y)`` the scaling keeps in place, in reference pixels (e.g. :func:`mask_centre`).
            frame_hw: ``(height, width)`` of the reference frame.
        """
        k, (cx, cy), (height, width) = float(scale), centre, frame_hw
        return SimilarityTransform(self.scale * k, k * self.tx + (1 - k) * cx + float(dx) * width,
                                   k * self.ty + (1 - k) * cy + float(dy) * height)

    @classmethod
    def identity(cls) -> "SimilarityTransform":
        """The transform that changes nothing."""
        return cls(1.0, 0.0, 0.0)


def per_frame(masks):
    """``masks`` as an array to read frame by frame: a lazily decoded cue array (``cues.storage.FrameArray``, which
    decodes a frame's chunk when it is indexed) stays as it is, anything else becomes an ndarray."""
    return masks if hasattr(masks, "frames") and hasattr(masks, "shape") else np.asarray(masks)


def mask_box(mask: np.ndarray, threshold: float = 0.5) -> tuple[float, float, float, float] | None:
    """Tight box ``(x_min, x_max, y_min, y_max)`` of ``mask > threshold`` in pixel indices; None when empty."""
    on = np.asarray(mask) > threshold
    rows = np.flatnonzero(on.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return float(cols[0]), float(cols[-1]), float(rows[0]), float(rows[-1])


def mask_centre(mask: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` centre of the tight box of ``mask > 0.5`` (the frame centre when the mask is empty)."""
    box = mask_box(mask)
    if box is None:
        return (mask.shape[1] - 1) / 2.0, (mask.shape[0] - 1) / 2.0
    return (box[0] + box[1]) / 2.0, (box[2] + box[3]) / 2.0


def estimate_alignment(
    ref_mask: np.ndarray,
    masks: np.ndarray,
    valid: np.ndarray | None = None,
    scale: float | None = None,
) -> SimilarityTransform:
    """One similarity transform aligning the driving person to the reference person (eqs. 9-10; the ``"paper"``
    alignment mode, and ``"auto"``'s while no image edge cuts a person: ``directanimator.cues.framing``).

    ``s = median_t(h_ref / h_t)`` and ``t = c_ref - s * mean_t(c_t)``, with ``c`` the centre and ``h`` the
    height of the tight box of ``mask > 0.5``. The height is counted in pixels (``y_max - y_min + 1``, the
    extent of the rows the person covers): the paper's ``y_max - y_min`` on pixel indices is one pixel short,
    which biases the scale by ~1/h.

    Args:
        ref_mask: reference person mask ``[H, W]`` in [0, 1].
        masks: driving person masks ``[T, H', W']`` in [0, 1].
        valid: optional ``[T]`` bool; only True frames are used (e.g. not dropped). Frames with an empty mask are
            skipped as well.
        scale: use this scale instead of the median ratio (eq. 9); the translation still follows eq. 10, so
            the person stays centred on the reference person (the app's manual scale slider).

    Raises:
        InputError: the reference mask is empty, or no driving frame has a usable person mask.
    """
    ref_box = mask_box(ref_mask)
    if ref_box is None:
        raise InputError("no person found in the reference image; use a photo in which one person is clearly visible")
    masks = per_frame(masks)
    valid = np.ones(len(masks), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    ratios, centres = [], []
    h_ref = ref_box[3] - ref_box[2] + 1.0
    c_ref = np.array([(ref_box[0] + ref_box[1]) / 2.0, (ref_box[2] + ref_box[3]) / 2.0])
    for t in np.flatnonzero(valid):
        box = mask_box(masks[t])
        if box is None:
            continue
        ratios.append(h_ref / (box[3] - box[2] + 1.0))
        centres.append(((box[0] + box[1]) / 2.0, (box[2] + box[3]) / 2.0))
    if not ratios:
        raise InputError("no person found in the driving video; use a clip in which one person is clearly visible")
    scale = float(np.median(ratios)) if scale is None else float(scale)
    t = c_ref - scale * np.mean(np.asarray(centres), axis=0)
    return SimilarityTransform(scale, float(t[0]), float(t[1]))


def warp_masks(masks: np.ndarray, transform: SimilarityTransform, out_hw: tuple[int, int]) -> np.ndarray:
    """Aligned masks ``M~_t(x) = M_t(T^-1(x))`` (eq. 12) on an ``out_hw`` canvas; outside is 0.

    Args:
        masks: ``[T, H, W]`` (or ``[H, W]``) float32 in [0, 1], driving-frame pixels.
        transform: driving -> reference similarity transform.
        out_hw: ``(height, width)`` of the reference frame.
    """
    masks = np.asarray(masks, dtype=np.float32)
    squeeze = masks.ndim == 2
    if squeeze:
        masks = masks[None]
    out_h, out_w = out_hw
    matrix = transform.matrix()
    out = np.empty((len(masks), out_h, out_w), dtype=np.float32)
    for i, mask in enumerate(masks):
        # cv2.warpAffine samples dst(x) = src(M^-1 x) for a forward M, which is exactly eq. 12.
        cv2.warpAffine(mask, matrix, (out_w, out_h), dst=out[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    return out[0] if squeeze else out


def grid_shape(height: int, width: int, grid: int) -> tuple[int, int]:
    """Cells ``(rows, cols)`` for a ``grid`` along the longer side, so that cells are about square."""
    if height >= width:
        return grid, max(1, int(round(grid * width / height)))
    return max(1, int(round(grid * height / width))), grid


def soften_grid(masks: np.ndarray, grid: int = 16, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Grid-based softening: coarse per-cell coverage, smoothed over neighbouring cells, upsampled bilinearly.

    The result keeps where the person is and roughly how big (the silhouette at cell resolution) but not the
    exact outline, which would carry the driving person's body shape into the animation.

    Args:
        masks: ``[T, H, W]`` (or ``[H, W]``) float32 in [0, 1].
        grid: number of cells along the longer side (the shorter side gets proportionally fewer, so cells are
            about square); 0 turns softening off (hard masks, the paper's ablation S7).
        out_hw: size of the result (default: the input size); the cells are computed on the input and upsampled
            to this size, so a reduced-resolution input gives (nearly) the same result for less work.

    Returns:
        Float32 masks ``[T, *out_hw]`` (or ``out_hw``) in [0, 1].
    """
    masks = np.asarray(masks, dtype=np.float32)
    squeeze = masks.ndim == 2
    if squeeze:
        masks = masks[None]
    height, width = out_hw if out_hw is not None else masks.shape[1:]
    if grid is None or int(grid) <= 0:
        if (height, width) == masks.shape[1:]:
            out = masks.copy()
        else:
            out = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in masks])
        return out[0] if squeeze else out
    rows, cols = grid_shape(height, width, int(grid))
    cells = np.stack([cv2.resize(m, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols) for m in masks])
    cells = _blur_cells(cells)
    out = np.empty((len(masks), height, width), dtype=np.float32)
    for i, cell in enumerate(cells):
        cv2.resize(cell, (width, height), dst=out[i], interpolation=cv2.INTER_LINEAR)
    np.clip(out, 0.0, 1.0, out=out)
    return out[0] if squeeze else out


def align_and_soften(masks: np.ndarray, transform: SimilarityTransform, out_hw: tuple[int, int],
                     grid: int = 16) -> np.ndarray:
    """``soften_grid(warp_masks(masks, transform, out_hw), grid)``, computed at a reduced resolution.

    The softening only keeps per-cell coverage, so the warp runs on masks downscaled until a grid cell is about
    8 px (exact area averaging, then one composed affine warp); only the final bilinear upsampling of the cells
    touches every output pixel. 2-4x less work than warping at full size, with the same result to within
    ~1 % of a cell's coverage. With ``grid`` 0 (hard masks) it is exactly ``warp_masks``.
    """
    masks = np.asarray(masks, dtype=np.float32)
    out_h, out_w = out_hw
    if grid is None or int(grid) <= 0:
        return warp_masks(masks, transform, out_hw)
    rows, cols = grid_shape(out_h, out_w, int(grid))
    factor = max(1, int(min(out_h / rows, out_w / cols) // 8))
    in_h, in_w = masks.shape[-2:]
    if factor == 1 or min(in_h, in_w) < 4 * factor:
        return soften_grid(warp_masks(masks, transform, out_hw), grid)
    small_in = (max(1, round(in_h / factor)), max(1, round(in_w / factor)))
    small_out = (max(1, round(out_h / factor)), max(1, round(out_w / factor)))
    # Pixel-centre maps between sizes: x_big = (x_small + 0.5) * big / small - 0.5.
    sx_in, sy_in = in_w / small_in[1], in_h / small_in[0]
    sx_out, sy_out = out_w / small_out[1], out_h / small_out[0]
    s = transform.scale
    a_x, a_y = s * sx_in / sx_out, s * sy_in / sy_out
    b_x = (s * (0.5 * sx_in - 0.5) + transform.tx + 0.5) / sx_out - 0.5
    b_y = (s * (0.5 * sy_in - 0.5) + transform.ty + 0.5) / sy_out - 0.5
    matrix = np.array([[a_x, 0.0, b_x], [0.0, a_y, b_y]], dtype=np.float64)
    squeeze = masks.ndim == 2
    frames = masks[None] if squeeze else masks
    small = np.empty((len(frames),) + small_out, dtype=np.float32)
    for i, mask in enumerate(frames):
        reduced = cv2.resize(mask, (small_in[1], small_in[0]), interpolation=cv2.INTER_AREA)
        cv2.warpAffine(reduced, matrix, (small_out[1], small_out[0]), dst=small[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out = soften_grid(small, grid, out_hw=out_hw)
    return out[0] if squeeze else out


def transform_boxes(boxes: np.ndarray, transform: SimilarityTransform) -> np.ndarray:
    """Map boxes ``[T, 4]`` (continuous x0, y0, x1, y1; NaN rows stay NaN) with ``transform``.

    A similarity transform keeps boxes axis-aligned, so this is exact. ``transform`` works on pixel-centre
    coordinates (OpenCV's), boxes on continuous ones (pixel i spans [i, i + 1)), hence the half-pixel shifts.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    shift = np.array([transform.tx, transform.ty, transform.tx, transform.ty])
    return ((boxes - 0.5) * transform.scale + shift + 0.5).astype(np.float32)


def _blur_cells(cells: np.ndarray) -> np.ndarray:
    """[1 2 1]/4 blur over neighbouring cells (edge-replicated): rounds off the staircase of the coverage."""
    padded = np.pad(cells, ((0, 0), (1, 1), (0, 0)), mode="edge")
    cells = 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]
    padded = np.pad(cells, ((0, 0), (0, 0), (1, 1)), mode="edge")
    cells = 0.25 * padded[..., :-2] + 0.5 * padded[..., 1:-1] + 0.25 * padded[..., 2:]
    return np.ascontiguousarray(cells, dtype=np.float32)


def box_masks(boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Filled rectangles ``[T, H, W]`` float32 for boxes ``[T, 4]`` (x0, y0, x1, y1); NaN rows give empty masks.

    These are the driving face masks of the location cue (before alignment).
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    height, width = hw
    out = np.zeros((len(boxes), height, width), dtype=np.float32)
    for t, box in enumerate(boxes):
        if not np.isfinite(box).all():
            continue
        # Continuous box edges (pixel i spans [i, i + 1)): every pixel the box overlaps is in.
        x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
        x1, y1 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
        if x1 > x0 and y1 > y0:
            out[t, y0:y1, x0:x1] = 1.0
    return out
