"""ArcFace face embeddings for FIS / FTS, as the paper computes them: InsightFace's ``w600k_r50.onnx`` (the
``buffalo_l`` pack) run with onnxruntime on faces found by the pack's SCRFD detector (``det_10g.onnx``) and aligned
with its 5 keypoints to the standard 112x112 ArcFace template.

The alignment is a least-squares similarity transform (Umeyama 1991: rotation, uniform scale, translation) from the
detected keypoints to ``ARCFACE_TEMPLATE``; the crop is normalised as InsightFace does, ``(x - 127.5) / 127.5`` on
RGB, ``[N, 3, 112, 112]``.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import InputError
from ..progress import ProgressFn, report

__all__ = ["ARCFACE_SIZE", "ARCFACE_TEMPLATE", "ArcFaceEmbedder", "align_face", "similarity_transform"]

ARCFACE_SIZE = 112
#: Where the 5 keypoints land in a 112x112 ArcFace crop (InsightFace's published template), in SCRFD's keypoint
#: order: left eye, right eye, nose tip, left mouth corner, right mouth corner (left/right as seen in the image).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, translation) that maps ``src`` points onto ``dst``
    with the least squared error (Umeyama's closed form, no reflection).

    Args:
        src: ``[K, 2]`` points, K >= 2, not all equal.
        dst: ``[K, 2]`` target points.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s <= 0:
        raise InputError("face keypoints are all at one point; cannot align the face")
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sv) @ sign)) / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The 112x112 ArcFace crop of ``image`` (uint8 ``[H, W, 3]``) for a face's 5 keypoints ``[5, 2]``."""
    m = similarity_transform(keypoints, ARCFACE_TEMPLATE)
    return cv2.warpAffine(image, m, (ARCFACE_SIZE, ARCFACE_SIZE), flags=cv2.INTER_LINEAR, borderValue=0)


class ArcFaceEmbedder:
    """Face embeddings of video frames: SCRFD detection + 5-point alignment + ArcFace (both ONNX, onnxruntime).

    Args:
        model_path: the ArcFace recognition model (``w600k_r50.onnx``): input ``[N, 3, 112, 112]``, one output of
            512 (any D) numbers per face.
        detector_path: the SCRFD detector with keypoints (``det_10g.onnx``, 9 outputs).
        providers: onnxruntime execution providers (default: CUDA when available, else CPU).
        batch_size: faces per ArcFace run.
    """

    def __init__(self, model_path: str | os.PathLike, detector_path: str | os.PathLike,
                 providers: list[str] | None = None, batch_size: int = 32):
        from ..cues.faces.insightface_scrfd import InsightFaceDetector

        try:
            import onnxruntime as ort  # lazy: only the face metrics need it
        except ImportError as exc:
            raise InputError("FIS/FTS need onnxruntime: pip install onnxruntime") from exc
        self.model_path = str(model_path)
        available = ort.get_available_providers()
        providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        if not os.path.isfile(self.model_path):
            raise InputError(f"ArcFace model {self.model_path} does not exist")
        try:
            self._session = ort.InferenceSession(self.model_path, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for damaged files
            raise InputError(f"cannot load the ArcFace model {self.model_path}: {exc}".splitlines()[0][:300]
                             + "; download it again") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or shape[1:] != [3, ARCFACE_SIZE, ARCFACE_SIZE] or len(outputs) != 1:
            raise InputError(f"{self.model_path} is not an ArcFace model (expected one input [N, 3, 112, 112] and one "
                             f"output, got inputs {[list(i.shape) for i in inputs]}, {len(outputs)} outputs)")
        self._input = inputs[0].name
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.batch_size = int(batch_size)
        self.detector = InsightFaceDetector(str(detector_path), providers=providers)
        if not self.detector.has_keypoints:
            raise InputError(f"{detector_path} gives no face keypoints (a 6-output SCRFD); FIS/FTS need the "
                             "keypoint model det_10g.onnx of buffalo_l")

    def keypoints(self, image: np.ndarray) -> np.ndarray | None:
        """The 5 keypoints ``[5, 2]`` of the most confident face in ``image``, or None when there is none."""
        with self.detector._lock:
            faces = self.detector.detect_faces(image)
        return faces[0][2] if faces else None

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """ArcFace embeddings ``[N, D]`` (not normalised) of aligned uint8 crops ``[N, 112, 112, 3]`` (RGB)."""
        blob = ((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        step = self._fixed_batch or self.batch_size
        out = []
        for i in range(0, len(blob), step):
            part = blob[i : i + step]
            if self._fixed_batch and len(part) < step:  # a model exported with a fixed batch: pad, then drop
                part = np.concatenate([part, np.zeros((step - len(part),) + part.shape[1:], np.float32)])
            out.append(np.asarray(self._session.run(None, {self._input: np.ascontiguousarray(part)})[0])
                       .reshape(len(part), -1)[: min(step, len(blob) - i)])
        return np.concatenate(out).astype(np.float64)

    def embed(self, frames: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        """Embeddings ``[T, D]`` of the most confident face of each frame (uint8 ``[T, H, W, 3]`` or one image);
        rows of NaN for frames without a face (``face_identity_similarity`` skips them)."""
        video = np.asarray(frames)
        if video.ndim == 3:
            video = video[None]
        crops, rows = [], []
        for t, frame in enumerate(video):
            kps = self.keypoints(frame)
            if kps is not None:
                crops.append(align_face(frame, kps))
                rows.append(t)
            report(progress, (t + 1) / len(video), "face embeddings")
        if not crops:
            return np.full((len(video), 1), np.nan)
        emb = self.embed_crops(np.stack(crops))
        out = np.full((len(video), emb.shape[1]), np.nan)
        out[rows] = emb
        return out
