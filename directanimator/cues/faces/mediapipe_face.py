"""The offline default face detector: MediaPipe's full-range BlazeFace (shipped inside the mediapipe wheel)."""

from __future__ import annotations

import numpy as np

from directanimator.errors import InputError
from directanimator.quiet import QuietGraph

from .crop_search import _CropSearch

__all__ = ["MediaPipeFaceDetector"]

class MediaPipeFaceDetector(_CropSearch):
    """Offline face detection with MediaPipe BlazeFace (model ships inside the mediapipe wheel).

    Args:
        min_confidence: minimum detection score.
        model_selection: 1 = full-range model (faces up to ~5 m, the default), 0 = short-range (selfies).
        crop_size: side of the upscaled upper-body crop used for small people.
        full_frame_fallback: when the crop finds no face, also look at the whole frame (faces on the person
            only); finds more turned heads, costs a second detection on faceless frames.
    """

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5, model_selection: int = 1, crop_size: int = 256,
                 full_frame_fallback: bool = True):
        import mediapipe as mp  # lazy: about a second to import (see segment.mediapipe_pose)

        if model_selection not in (0, 1):
            raise InputError(f"model_selection must be 0 or 1, got {model_selection}")
        self.crop_size = int(crop_size)
        self.full_frame_fallback = bool(full_frame_fallback)
        self._fd = QuietGraph(mp.solutions.face_detection.FaceDetection,
                              min_detection_confidence=float(min_confidence), model_selection=model_selection)

    def _detect_image(self, image):
        h, w = image.shape[:2]
        result = self._fd.process(image)
        out = []
        for det in result.detections or []:
            r = det.location_data.relative_bounding_box
            box = np.array([r.xmin * w, r.ymin * h, (r.xmin + r.width) * w, (r.ymin + r.height) * h], np.float32)
            out.append((box, float(det.score[0]) if det.score else 0.0))
        return out

    def close(self) -> None:
        """Free the MediaPipe graph."""
        if self._fd is not None:
            self._fd.close()
            self._fd = None
