"""Identities by face (``--identity-from cluster``): an ArcFace embedding of each clip's reference face and a
grouping of the clips whose faces are alike, for raw footage that is not sorted by person.

The embedder runs an ArcFace ONNX model with onnxruntime (InsightFace's ``w600k_r50.onnx`` of the ``buffalo_l``
pack, which the user downloads; the ``insightface`` pip package is not used, as for the SCRFD face detector). Its
input is the face box made square, enlarged by :data:`FACE_MARGIN`, resized to the model's input size and scaled to
[-1, 1] (ArcFace was trained on crops aligned on 5 landmarks, which the box-only face detectors here do not give:
the crop is an approximation, good enough to group a person's clips, not for face recognition). The clips are
grouped by linking every two whose embeddings have a cosine similarity of at least ``--cluster-threshold``
(connected components, so the result does not depend on the order of the clips); a clip whose reference shows no
face is an identity of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from directanimator.errors import InputError

__all__ = ["FACE_MARGIN", "FaceEmbedder", "cluster_identities"]

FACE_MARGIN = 1.2
"""The square crop's side, in face-box sides (the aligned ArcFace crop shows the whole face and some hair)."""


class FaceEmbedder:
    """An ArcFace ONNX model: one L2-normalised embedding per face.

    Args:
        path: the ``.onnx`` file (or a folder holding ``w600k_r50.onnx``).

    Raises:
        InputError: a missing or unreadable model, or one whose input is not an image batch ``[N, 3, H, W]``.
    """

    def __init__(self, path: str | os.PathLike):
        try:
            import onnxruntime as ort  # lazy: optional dependency, as for the insightface face detector
        except ImportError as exc:
            raise InputError("--identity-from cluster needs onnxruntime: pip install onnxruntime") from exc

        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "w600k_r50.onnx"
        if not path.is_file():
            raise InputError(f"--arcface {path} is missing; give InsightFace's w600k_r50.onnx (buffalo_l pack) or the "
                             "folder that holds it")
        try:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for broken files
            raise InputError(f"--arcface {path} cannot be loaded ({type(exc).__name__}); re-download it") from None
        spec = self.session.get_inputs()[0]
        shape = spec.shape
        if len(shape) != 4 or shape[1] != 3 or not all(isinstance(v, int) for v in shape[2:]):
            raise InputError(f"--arcface {path} takes {shape}, not an image batch [N, 3, H, W]; give an ArcFace model")
        self.input, self.size = spec.name, (int(shape[3]), int(shape[2]))

    def embed(self, image: np.ndarray, box) -> np.ndarray:
        """The embedding of the face in ``box`` (x0, y0, x1, y1) of an ``[H, W, 3]`` uint8 RGB image."""
        x0, y0, x1, y1 = (float(v) for v in box)
        side = FACE_MARGIN * max(x1 - x0, y1 - y0, 1.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        scale_x, scale_y = self.size[0] / side, self.size[1] / side
        affine = np.float32([[scale_x, 0, self.size[0] / 2 - cx * scale_x], [0, scale_y, self.size[1] / 2 - cy * scale_y]])
        crop = cv2.warpAffine(image, affine, self.size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        vector = np.asarray(self.session.run(None, {self.input: blob})[0], np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


def cluster_identities(embeddings: list, threshold: float) -> list[str]:
    """An identity name per clip (``person_0000``, ... numbered in order of first appearance) from the clips'
    face embeddings (None: no face, an identity of its own), linking clips at cosine similarity >= ``threshold``."""
    count = len(embeddings)
    parent = list(range(count))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    faces = [i for i, e in enumerate(embeddings) if e is not None]
    if faces:
        matrix = np.asarray([embeddings[i] for i in faces], np.float64)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        similar = matrix @ matrix.T >= threshold
        for a in range(len(faces)):
            for b in np.flatnonzero(similar[a, a + 1:]) + a + 1:
                parent[root(faces[a])] = root(faces[int(b)])
    names, out = {}, []
    for i in range(count):
        out.append(names.setdefault(root(i), f"person_{len(names):04d}"))
    return out
