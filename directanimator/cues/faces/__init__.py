"""Face detection backends: one face box per frame, and temporal smoothing of the box track.

The face cue (paper A.2) crops an enlarged, centred square around the driving face, so the box must be found even
when the face is small (full-body shots) and must not jitter. Two backends sit behind one protocol (``protocol.py``),
chosen by name with :func:`get_face_detector`; both search with ``crop_search.py``:

- ``"mediapipe"`` (offline default): MediaPipe's full-range BlazeFace (shipped inside the mediapipe wheel). With
  person masks, it looks inside an upscaled crop of the person's upper body first, which finds small faces.
- ``"insightface"`` (the paper's): InsightFace's SCRFD detector (``det_10g.onnx`` of the ``buffalo_l`` pack) run
  with onnxruntime. The ``insightface`` pip package is not used: it depends on ``opencv-python`` (which clashes with
  mediapipe's ``opencv-contrib-python``) and pulls numpy 2; its detector is a plain ONNX file that onnxruntime runs.

:func:`smooth_boxes` smooths centre and size over time; frames without a face stay NaN.
"""

from __future__ import annotations

from directanimator.errors import InputError

from .crop_search import upper_body_square
from .insightface_scrfd import DEFAULT_INSIGHTFACE_DIR, InsightFaceDetector
from .mediapipe_face import MediaPipeFaceDetector
from .protocol import FaceDetector, FaceTrack, Progress
from .smoothing import smooth_boxes

__all__ = ["DEFAULT_INSIGHTFACE_DIR", "FACE_DETECTORS", "FaceDetector", "FaceTrack", "InsightFaceDetector",
           "MediaPipeFaceDetector", "Progress", "get_face_detector", "smooth_boxes", "upper_body_square"]

FACE_DETECTORS: dict[str, type] = {
    "mediapipe": MediaPipeFaceDetector,
    "insightface": InsightFaceDetector,
}


def get_face_detector(name: str = "mediapipe", **kwargs) -> FaceDetector:
    """Build a face detection backend by name.

    Args:
        name: one of ``FACE_DETECTORS`` ("mediapipe": offline default; "insightface": the paper's, needs models).
        **kwargs: passed to the backend's constructor.

    Raises:
        InputError: unknown name, or the backend's models are missing.
    """
    if name not in FACE_DETECTORS:
        raise InputError(f"unknown face detector '{name}': choose one of {', '.join(FACE_DETECTORS)}")
    return FACE_DETECTORS[name](**kwargs)
