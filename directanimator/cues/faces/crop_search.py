"""The search both backends share: with person masks, look for the face inside an upscaled crop of the upper body
first (detectors miss ~25 px faces on the full frame), then on the whole frame; keep the candidate inside the person."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .protocol import FaceTrack, Progress, _check, _report

__all__ = ["upper_body_square"]

def upper_body_square(mask: np.ndarray, frac: float = 0.45) -> tuple[float, float, float, float] | None:
    """Square around the upper part of a person mask (where the head is), or None for an empty mask.

    Args:
        mask: ``[H, W]`` person mask.
        frac: fraction of the mask's height, from its top, that the square covers (at least its width).
    """
    binary = mask > 0.5
    ys = np.flatnonzero(binary.any(axis=1))
    if ys.size == 0:
        return None
    y0, y1 = ys[0], ys[-1] + 1
    top = binary[y0 : y0 + max(1, int((y1 - y0) * frac))]
    xs = np.flatnonzero(top.any(axis=0))
    x0, x1 = xs[0], xs[-1] + 1
    side = max((y1 - y0) * frac, x1 - x0) * 1.15 + 4
    cx = (x0 + x1) / 2
    cy = y0 + side / 2 - 0.08 * side
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def _centre_in(box: np.ndarray, mask: np.ndarray) -> bool:
    h, w = mask.shape
    cx = int(np.clip((box[0] + box[2]) / 2, 0, w - 1))
    cy = int(np.clip((box[1] + box[3]) / 2, 0, h - 1))
    return bool(mask[cy, cx] > 0.5)


def _pick(cands: list[tuple[np.ndarray, float]], mask: np.ndarray | None) -> tuple[np.ndarray, float] | None:
    """Most confident candidate, preferring those whose centre lies inside the person mask."""
    if not cands:
        return None
    if mask is not None and (mask > 0.5).any():
        inside = [c for c in cands if _centre_in(c[0], mask)]
        if inside:
            cands = inside
    return max(cands, key=lambda c: c[1])


class _CropSearch:
    """Shared logic: look in the upscaled upper-body crop first (small faces), then the whole frame."""

    crop_size = 256
    full_frame_fallback = True
    # MediaPipe graphs / onnxruntime sessions are used by one caller at a time (the app may serve two users).
    _lock = threading.Lock()

    def _detect_image(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        raise NotImplementedError

    def _detect_frame(self, frame, mask):
        h, w = frame.shape[:2]
        cands: list[tuple[np.ndarray, float]] = []
        square = upper_body_square(mask) if mask is not None else None
        if square is not None and (square[2] - square[0]) < 0.6 * max(h, w):
            # Small person: a face of 10-20 px is below the detectors' reach; upscale the head region.
            x0, y0, x1, y1 = square
            s = self.crop_size / (x1 - x0)
            a = np.array([[s, 0, -s * x0], [0, s, -s * y0]], np.float32)
            crop = cv2.warpAffine(frame, a, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
            for box, score in self._detect_image(crop):
                cands.append((np.array([box[0] / s + x0, box[1] / s + y0, box[2] / s + x0, box[3] / s + y0],
                                       np.float32), score))
            picked = _pick(cands, mask)
            if picked is not None or not self.full_frame_fallback:
                return picked
            # BlazeFace sometimes finds a profile / turned head at the original scale that it misses upscaled;
            # only faces on the person count here (a bystander's face is worse than none).
            inside = [c for c in self._detect_image(frame) if _centre_in(c[0], mask)]
            return max(inside, key=lambda c: c[1]) if inside else None
        return _pick(self._detect_image(frame), mask)

    def detect(self, frames: np.ndarray, masks: np.ndarray | None = None, progress: Progress = None) -> FaceTrack:
        """One face box per frame: the most confident, preferring faces inside the person mask.

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB (a single ``[H, W, 3]`` image is accepted as ``T == 1``).
            masks: optional ``[T, H, W]`` person masks; used to search the upper body first and to prefer the
                driving person's face over bystanders'.
            progress: optional ``progress(fraction, desc)`` callback.
        """
        frames, masks = _check(frames, masks)
        with self._lock:
            return self._detect(frames, masks, progress)

    def _detect(self, frames, masks, progress):
        t_len, h, w = frames.shape[:3]
        boxes = np.full((t_len, 4), np.nan, np.float32)
        scores = np.zeros(t_len, np.float32)
        for t in range(t_len):
            mask = masks[t] if masks is not None else None
            picked = self._detect_frame(frames[t], mask)
            if picked is not None:
                box = np.clip(picked[0], 0, [w, h, w, h])
                if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                    boxes[t], scores[t] = box, picked[1]
            _report(progress, (t + 1) / t_len, f"detecting faces ({self.name})")
        return FaceTrack(boxes=boxes, scores=scores)
