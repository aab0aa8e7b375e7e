"""DWPose whole-body keypoints for PLC / FLC (the paper's estimator): the YOLOX-L person detector
(``yolox_l.onnx``) and the DWPose RTMPose-L model distilled on UBody + COCO-WholeBody (``dw-ll_ucoco_384.onnx``),
both run with onnxruntime.

Published layouts (checked when a model is loaded):

- detector: one input ``[1, 3, 640, 640]`` (``images``), the frame letterboxed to 640x640 (resized by
  ``min(640 / h, 640 / w)``, padded with 114 at the right and bottom), BGR, 0..255, as mmdet trains YOLOX; one output
  ``[1, 8400, 85]`` (``output``): per anchor of the stride-8/16/32 grids, (dx, dy, log w, log h) in grid units,
  objectness, 80 COCO class scores. Boxes decode as ``((dx, dy) + cell) * stride`` and ``exp(log w, log h) *
  stride``; a person is class 0 scored ``objectness * class score`` above 0.3. Only the most confident person is
  kept (the one NMS would keep first), so no NMS is run.
- pose model: one input ``[1, 3, 384, 288]`` (``input``): the person box's centre and size, grown 1.25x and to the
  288:384 aspect, warped to 288x384, RGB normalised with mean (123.675, 116.28, 103.53) and std
  (58.395, 57.12, 57.375); two SimCC outputs ``simcc_x [1, 133, 576]`` and ``simcc_y [1, 133, 768]`` (split ratio
  2): a keypoint sits at ``argmax / 2`` in the crop, its score is the smaller of the two maxima (as mmpose decodes).

The 133 COCO-WholeBody keypoints: 0-16 the COCO body, 17-22 the feet, 23-90 the 68 face landmarks, 91-111 the left
hand, 112-132 the right hand. PLC uses the 17 body keypoints, FLC the 68 face ones, each scored where the driving
frame's keypoint score is at least 0.3 (DWPose's drawing threshold), normalised as ``landmarks.landmark_consistency``
does.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import InputError
from ..progress import ProgressFn, report
from .landmarks import landmark_consistency
from .pixels import as_video

__all__ = ["BODY", "DWPose", "FACE", "KEYPOINTS", "SCORE_THRESHOLD", "decode_simcc", "dwpose_consistency"]

KEYPOINTS = 133
#: COCO-WholeBody index ranges of the parts PLC and FLC score.
BODY, FACE = slice(0, 17), slice(23, 91)
SCORE_THRESHOLD = 0.3
DET_SIZE = 640
POSE_SIZE = (288, 384)  # width, height
SIMCC_RATIO = 2.0
_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
_STD = np.array([58.395, 57.12, 57.375], np.float32)


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, ratio: float = SIMCC_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``[K, 2]`` (crop pixels) and scores ``[K]`` from SimCC vectors ``[K, W * ratio]``, ``[K, H * ratio]``:
    the argmax bin divided by ``ratio``; the score is the smaller maximum; a keypoint with score <= 0 is NaN."""
    x, y = np.argmax(simcc_x, axis=1), np.argmax(simcc_y, axis=1)
    score = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1)).astype(np.float64)
    locs = np.stack([x, y], axis=1).astype(np.float64) / ratio
    locs[score <= 0] = np.nan
    return locs, score


def _session(path, what: str, providers):
    try:
        import onnxruntime as ort  # lazy: only the DWPose landmark metrics need it
    except ImportError as exc:
        raise InputError("DWPose PLC/FLC need onnxruntime: pip install onnxruntime") from exc
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"DWPose {what} {path} does not exist")
    available = ort.get_available_providers()
    providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    try:
        return ort.InferenceSession(path, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types for damaged files
        raise InputError(f"cannot load the DWPose {what} {path}: {exc}".splitlines()[0][:300]
                         + "; download it again") from exc


def _dims(shape) -> list:
    return [d if isinstance(d, int) else None for d in shape]


class DWPose:
    """Whole-body keypoints of the most confident person per frame.

    Args:
        detector_path: ``yolox_l.onnx``.
        pose_path: ``dw-ll_ucoco_384.onnx``.
        providers: onnxruntime execution providers (default: CUDA when available, else CPU).

    Raises:
        InputError: a file is missing, damaged, or not of the published layout (one line naming it).
    """

    def __init__(self, detector_path, pose_path, providers: list[str] | None = None):
        self.detector_path, self.pose_path = str(detector_path), str(pose_path)
        self._det = _session(detector_path, "detector", providers)
        ins, outs = self._det.get_inputs(), self._det.get_outputs()
        if (len(ins) != 1 or _dims(ins[0].shape)[1:] not in ([3, DET_SIZE, DET_SIZE], [3, None, None])
                or len(outs) != 1 or _dims(outs[0].shape)[-1:] not in ([85], [None])):
            raise InputError(f"{self.detector_path} is not the DWPose YOLOX detector (expected one input "
                             f"[1, 3, 640, 640] and one output [1, 8400, 85], got inputs {[i.shape for i in ins]}, "
                             f"outputs {[o.shape for o in outs]})")
        self._det_input = ins[0].name
        self._pose = _session(pose_path, "pose model", providers)
        ins, outs = self._pose.get_inputs(), self._pose.get_outputs()
        w, h = POSE_SIZE
        names = [o.name for o in outs]
        if (len(ins) != 1 or _dims(ins[0].shape)[1:] != [3, h, w] or len(outs) != 2
                or [_dims(o.shape)[1:] for o in outs] not in ([[KEYPOINTS, w * 2], [KEYPOINTS, h * 2]],
                                                              [[KEYPOINTS, h * 2], [KEYPOINTS, w * 2]])):
            raise InputError(f"{self.pose_path} is not the DWPose whole-body model (expected one input [1, 3, 384, 288] "
                             f"and outputs simcc_x [1, 133, 576], simcc_y [1, 133, 768], got inputs "
                             f"{[i.shape for i in ins]}, outputs {[(o.name, o.shape) for o in outs]})")
        self._pose_input = ins[0].name
        # simcc_x is the output of width 576 (names are simcc_x / simcc_y in the published file)
        self._x_first = _dims(outs[0].shape)[2] == w * 2
        self._pose_outputs = names

    def detect(self, frame: np.ndarray) -> np.ndarray | None:
        """The most confident person box ``[x1, y1, x2, y2]`` (frame pixels) of an RGB uint8 frame, or None."""
        h, w = frame.shape[:2]
        ratio = min(DET_SIZE / h, DET_SIZE / w)
        canvas = np.full((DET_SIZE, DET_SIZE, 3), 114, np.uint8)
        rw, rh = max(1, int(w * ratio)), max(1, int(h * ratio))
        canvas[:rh, :rw] = cv2.resize(np.ascontiguousarray(frame[..., ::-1]), (rw, rh), interpolation=cv2.INTER_LINEAR)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], np.float32)
        pred = np.asarray(self._det.run(None, {self._det_input: blob})[0], np.float64).reshape(-1, 85)
        cells, strides = [], []
        for stride in (8, 16, 32):
            n = DET_SIZE // stride
            ys, xs = np.mgrid[0:n, 0:n]
            cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full(n * n, stride))
        cells, strides = np.concatenate(cells), np.concatenate(strides)[:, None]
        if len(pred) != len(cells):
            raise InputError(f"{self.detector_path} gave {len(pred)} anchors, not the {len(cells)} of a 640x640 YOLOX")
        score = pred[:, 4] * pred[:, 5]
        best = int(np.argmax(score))
        if score[best] <= SCORE_THRESHOLD:
            return None
        centre = (pred[best, :2] + cells[best]) * strides[best]
        size = np.exp(pred[best, 2:4]) * strides[best]
        return np.concatenate([centre - size / 2, centre + size / 2]) / ratio

    def keypoints(self, frame: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """``[133, 3]`` (x, y in frame pixels, score) of the person in ``box`` (default: ``detect``); all NaN
        when there is no person."""
        box = self.detect(frame) if box is None else np.asarray(box, np.float64)
        if box is None:
            return np.full((KEYPOINTS, 3), np.nan)
        w, h = POSE_SIZE
        centre = (box[:2] + box[2:]) / 2
        bw, bh = (box[2:] - box[:2]) * 1.25
        if bw > bh * w / h:
            bh = bw * h / w
        else:
            bw = bh * w / h
        s = w / bw
        warp = np.array([[s, 0, w / 2 - s * centre[0]], [0, s, h / 2 - s * centre[1]]], np.float64)
        crop = cv2.warpAffine(np.ascontiguousarray(frame), warp, (w, h), flags=cv2.INTER_LINEAR)
        blob = ((crop.astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1)[None]
        a, b = self._pose.run(None, {self._pose_input: np.ascontiguousarray(blob)})
        sx, sy = (a, b) if self._x_first else (b, a)
        locs, score = decode_simcc(np.asarray(sx)[0], np.asarray(sy)[0])
        xy = (locs - [w / 2, h / 2]) / s + centre
        return np.concatenate([xy, score[:, None]], axis=1)

    def video_keypoints(self, frames, progress: ProgressFn | None = None) -> np.ndarray:
        """``[T, 133, 3]`` keypoints of each frame of a uint8 RGB video (each frame on its own)."""
        video = as_video(frames, "frames")
        out = np.empty((len(video), KEYPOINTS, 3))
        for t, frame in enumerate(video):
            out[t] = self.keypoints(frame)
            report(progress, (t + 1) / len(video), "DWPose keypoints")
        return out


def dwpose_consistency(kp_gen: np.ndarray, kp_drv: np.ndarray, part: slice, gen_size, drv_size,
                       pck_threshold: float = 0.05) -> dict:
    """PLC (``part=BODY``) or FLC (``part=FACE``) from DWPose keypoints ``[T, 133, 3]`` of the generated and driving
    videos: ``landmark_consistency`` on that part, the generated keypoints scaled to the driving frame size
    (``(width, height)`` each). Only the driving keypoints scored >= 0.3 count, both for the distances and for the
    bounding box that normalises them."""
    if len(kp_gen) != len(kp_drv):
        raise InputError(f"generated has {len(kp_gen)} frames but driving has {len(kp_drv)}; trim them to the same frames")
    scale = np.array([drv_size[0] / gen_size[0], drv_size[1] / gen_size[1]])
    g, d = kp_gen[:, part], kp_drv[:, part]
    confident = np.nan_to_num(d[..., 2], nan=0.0) >= SCORE_THRESHOLD
    d_xy = np.where(confident[..., None], d[..., :2], np.nan)
    return landmark_consistency(g[..., :2] * scale, d_xy, pck_threshold=pck_threshold)
