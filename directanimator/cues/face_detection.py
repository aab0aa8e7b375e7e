"""Face detection backends: one face box per frame, and temporal smoothing of the box track.

The face cue (paper A.2) crops an enlarged, centred square around the driving face, so the box must be found even
when the face is small (full-body shots) and must not jitter. Two backends sit behind one protocol, chosen by name
with :func:`get_face_detector`:

- ``"mediapipe"`` (offline default): MediaPipe's full-range BlazeFace (shipped inside the mediapipe wheel). With
  person masks, it looks inside an upscaled crop of the person's upper body first, which finds small faces.
- ``"insightface"`` (the paper's): InsightFace's SCRFD detector (``det_10g.onnx`` of the ``buffalo_l`` pack) run
  with onnxruntime. The ``insightface`` pip package is not used: it depends on ``opencv-python`` (which clashes with
  mediapipe's ``opencv-contrib-python``) and pulls numpy 2; its detector is a plain ONNX file that onnxruntime runs.

:func:`smooth_boxes` smooths centre and size over time; frames without a face stay NaN.
"""

from __future__ import annotations

import glob
import os
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from directanimator.errors import InputError
from directanimator.quiet import QuietGraph

__all__ = ["DEFAULT_INSIGHTFACE_DIR", "FACE_DETECTORS", "FaceDetector", "FaceTrack", "InsightFaceDetector",
           "MediaPipeFaceDetector", "get_face_detector", "smooth_boxes", "upper_body_square"]

Progress = Callable[[float, str], None] | None


@dataclass
class FaceTrack:
    """One face box per frame.

    Attributes:
        boxes: float32 ``[T, 4]`` ``(x0, y0, x1, y1)`` in frame pixels; a NaN row means no face in that frame.
        scores: float32 ``[T]`` detection confidence, 0 where there is no face.
    """

    boxes: np.ndarray
    scores: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """bool ``[T]``: True where the frame has a face box."""
        return np.isfinite(self.boxes).all(axis=1)


class FaceDetector(Protocol):
    """What every face detection backend provides."""

    name: str

    def detect(self, frames: np.ndarray, masks: np.ndarray | None = None, progress: Progress = None) -> FaceTrack:
        """One face per frame of ``frames`` (uint8 ``[T, H, W, 3]``), preferring faces inside ``masks``."""


def _check(frames, masks):
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be a uint8 RGB array [T,H,W,3], got {frames.dtype} {frames.shape}")
    if masks is not None:
        masks = np.asarray(masks, np.float32)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.shape != frames.shape[:3]:
            raise InputError(f"masks {masks.shape} do not match frames {frames.shape[:3]}")
    return np.ascontiguousarray(frames), masks


def _report(progress: Progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), desc)


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
        import cv2

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
        import mediapipe as mp

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


# ----------------------------------------------------------------------------------------------------------------
# InsightFace SCRFD through onnxruntime (the paper's detector)
# ----------------------------------------------------------------------------------------------------------------

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
            import onnxruntime as ort
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

    def _detect_image(self, image):
        import cv2

        h, w = image.shape[:2]
        size = self.input_size
        # Letterbox into the top-left of a square canvas (SCRFD's training layout), keep the scale to map back.
        s = size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)
        outs = self._session.run(None, {self._input: blob})
        boxes, scores = [], []
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
        boxes = np.concatenate(boxes) / s
        scores = np.concatenate(scores)
        if len(scores) == 0:
            return []
        return [(boxes[i].astype(np.float32), float(scores[i])) for i in _nms(boxes, scores, self.nms_iou)]


# ----------------------------------------------------------------------------------------------------------------

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


def smooth_boxes(track: FaceTrack, window: int = 5) -> FaceTrack:
    """Smooth a face box track over time so that the face crop does not jitter.

    Centre and size (width, height) are each averaged over the frames with a face inside a centred window of
    ``window`` frames; frames without a face are ignored in the averages and stay NaN.

    Args:
        track: the per-frame boxes.
        window: window length in frames (odd; even values are rounded up); 1 returns the track unchanged.
    """
    boxes = np.asarray(track.boxes, np.float64)
    half = max(0, int(window) // 2)
    valid = np.isfinite(boxes).all(axis=1)
    if half == 0 or valid.sum() < 2:
        return FaceTrack(boxes=np.asarray(track.boxes, np.float32).copy(), scores=np.asarray(track.scores).copy())
    feats = np.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, boxes[:, 2] - boxes[:, 0],
         boxes[:, 3] - boxes[:, 1]], axis=1)
    feats[~valid] = 0.0
    # Windowed sums of values and of the valid count via cumulative sums (no loop over frames).
    pad = lambda a: np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])  # noqa: E731
    csum, ccount = pad(feats), pad(valid.astype(np.float64))
    t = np.arange(len(boxes))
    lo, hi = np.clip(t - half, 0, len(boxes)), np.clip(t + half + 1, 0, len(boxes))
    count = ccount[hi] - ccount[lo]
    mean = (csum[hi] - csum[lo]) / np.maximum(count, 1)[:, None]
    cx, cy, bw, bh = mean.T
    out = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
    out[~valid] = np.nan
    return FaceTrack(boxes=out, scores=np.asarray(track.scores, np.float32).copy())
