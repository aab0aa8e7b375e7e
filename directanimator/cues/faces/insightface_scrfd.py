"""The paper's face detector: InsightFace's SCRFD (``det_10g.onnx`` of the ``buffalo_l`` pack) run with
onnxruntime. The ``insightface`` pip package is not used: it depends on ``opencv-python`` (which clashes with
mediapipe's ``opencv-contrib-python``) and pulls numpy 2; its detector is a plain ONNX file."""

from __future__ import annotations

import glob
import os

import cv2
import numpy as np

from directanimator.errors import InputError

from .crop_search import _CropSearch

__all__ = ["DEFAULT_INSIGHTFACE_DIR", "InsightFaceDetector"]

DEFAULT_INSIGHTFACE_DIR = "~/.insightface/models/buffalo_l"


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        ratio = inter / np.maximum(area[i] + area[order[1:]] - inter, 1e-9)
        order = order[1:][ratio <= iou]
    return keep


class InsightFaceDetector(_CropSearch):
    """InsightFace's SCRFD face detector (the paper's choice), run with onnxruntime from a local model folder.

    The ``buffalo_l`` pack (``det_10g.onnx``) or any SCRFD ONNX export with the usual 6 or 9 outputs (scores and
    box distances, optionally 5 keypoints, for strides 8/16/32 with 2 anchors per cell) works.

    Args:
        model_dir: folder holding the detector (``det_*.onnx`` or ``scrfd*.onnx``), or the ``.onnx`` file itself.
        min_confidence: minimum detection score.
        input_size: square network input size (SCRFD is trained at 640).
        nms_iou: IoU above which overlapping boxes are merged.
        crop_size: side of the upscaled upper-body crop used for small people.
        full_frame_fallback: when the crop finds no face, also look at the whole frame (faces on the person only).
        providers: onnxruntime execution providers (default: CUDA when available, else CPU).
    """

    name = "insightface"

    def __init__(
        self,
        model_dir: str = DEFAULT_INSIGHTFACE_DIR,
        min_confidence: float = 0.5,
        input_size: int = 640,
        nms_iou: float = 0.4,
        crop_size: int = 256,
        full_frame_fallback: bool = True,
        providers: list[str] | None = None,
    ):
        path = os.path.expanduser(model_dir)
        if os.path.isfile(path):
            model = path
        else:
            found = sorted(glob.glob(os.path.join(path, "det_*.onnx")) + glob.glob(os.path.join(path, "scrfd*.onnx")))
            if not found:
                raise InputError(
                    f"InsightFace face detector not found in '{path}': download buffalo_l.zip from "
                    "https://github.com/deepinsight/insightface/releases (v0.7) and unzip it there, or pass "
                    "model_dir=; note the InsightFace models are licensed for non-commercial research use only"
                )
            model = found[0]
        try:
            import onnxruntime as ort  # lazy: optional dependency, only this backend needs it
        except ImportError as exc:
            raise InputError("the insightface face detector needs onnxruntime: pip install onnxruntime") from exc
        available = ort.get_available_providers()
        providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self._session = ort.InferenceSession(model, providers=providers)
        except Exception as exc:
            raise InputError(f"cannot load the InsightFace detector '{model}': {exc}".splitlines()[0]) from exc
        self._input = self._session.get_inputs()[0].name
        n_out = len(self._session.get_outputs())
        if n_out not in (6, 9):
            raise InputError(f"'{model}' is not an SCRFD detector (expected 6 or 9 outputs, got {n_out})")
        self._levels = 3
        self._strides = (8, 16, 32)
        self._anchors = 2
        self.model_path = model
        self.min_confidence = float(min_confidence)
        self.input_size = int(input_size)
        self.nms_iou = float(nms_iou)
        self.crop_size = int(crop_size)
        self.full_frame_fallback = bool(full_frame_fallback)
        self._centers: dict[tuple[int, int, int], np.ndarray] = {}

    def _anchor_centers(self, fh: int, fw: int, stride: int) -> np.ndarray:
        key = (fh, fw, stride)
        if key not in self._centers:
            ys, xs = np.mgrid[:fh, :fw]
            centers = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            self._centers[key] = np.repeat(centers, self._anchors, axis=0)
        return self._centers[key]

    @property
    def has_keypoints(self) -> bool:
        """Whether the model gives the 5 face keypoints (9-output SCRFD such as ``det_10g.onnx``)."""
        return len(self._session.get_outputs()) == 9

    def _detect_image(self, image):
        return [(box, score) for box, score, _ in self.detect_faces(image)]

    def detect_faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray | None]]:
        """Every face in one RGB ``[H, W, 3]`` uint8 image, most confident first: ``(box [4] x0,y0,x1,y1, score,
        keypoints [5, 2] or None)`` in image pixels. The 5 keypoints (left eye, right eye, nose, left and right
        mouth corner, as seen in the image) come from 9-output SCRFD models such as ``det_10g.onnx``."""
        h, w = image.shape[:2]
        size = self.input_size
        # Letterbox into the top-left of a square canvas (SCRFD's training layout), keep the scale to map back.
        s = size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)
        outs = self._session.run(None, {self._input: blob})
        with_kps = len(outs) == 9
        boxes, scores, kpss = [], [], []
        for level, stride in enumerate(self._strides):
            score = np.asarray(outs[level]).reshape(-1)
            dist = np.asarray(outs[level + self._levels]).reshape(-1, 4) * stride
            centers = self._anchor_centers(size // stride, size // stride, stride)
            if len(centers) != len(score):
                raise InputError(f"'{self.model_path}' outputs do not match SCRFD's layout at stride {stride}")
            keep = score >= self.min_confidence
            c, d = centers[keep], dist[keep]
            boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
            scores.append(score[keep])
            if with_kps:
                k = np.asarray(outs[level + 2 * self._levels]).reshape(-1, 5, 2)[keep] * stride
                kpss.append(c[:, None, :] + k)
        boxes = np.concatenate(boxes) / s
        scores = np.concatenate(scores)
        if len(scores) == 0:
            return []
        kps = np.concatenate(kpss) / s if with_kps else None
        return [(boxes[i].astype(np.float32), float(scores[i]), None if kps is None else kps[i].astype(np.float32))
                for i in _nms(boxes, scores, self.nms_iou)]
