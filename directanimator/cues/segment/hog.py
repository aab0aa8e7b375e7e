"""OpenCV's HOG people detector: candidate boxes of (small, upright) people in a frame, for any backend to
confirm with its own segmentation."""

from __future__ import annotations

import threading

import cv2
import numpy as np

__all__ = ["HogPeople"]


class HogPeople:
    """Candidate people boxes from OpenCV's default HOG + linear SVM people detector (64x128 window).

    The descriptor is built on first use; one instance may be shared by threads (a lock guards it).
    """

    def __init__(self):
        self._hog = None
        self._lock = threading.Lock()

    def boxes(self, frame: np.ndarray, upscale: float = 1.5) -> list[tuple[float, float, float, float]]:
        """Candidate people boxes ``(x0, y0, x1, y1)`` in ``frame`` pixels, best first.

        Args:
            frame: uint8 ``[H, W, 3]`` image.
            upscale: the frame is resized so its long side is ``upscale * 512`` before detection (HOG's window
                is 64x128: people ~60-130 px tall in a 512 px frame are found at 1.5x).

        Returns:
            boxes sorted by detector weight times box height (confident, large people first).
        """
        h, w = frame.shape[:2]
        s = upscale * 512 / max(h, w)
        big = cv2.resize(frame, (max(64, round(w * s)), max(128, round(h * s))), interpolation=cv2.INTER_LINEAR)
        with self._lock:
            if self._hog is None:
                self._hog = cv2.HOGDescriptor()
                self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            rects, weights = self._hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        weights = np.ravel(weights)
        order = np.argsort(-(weights * rects[:, 3]))
        return [tuple(float(v) for v in (x / s, y / s, (x + bw) / s, (y + bh) / s)) for x, y, bw, bh in rects[order]]
