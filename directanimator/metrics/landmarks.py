"""PLC and FLC (paper appendix A.4): how closely the generated body pose and face landmarks follow the driving
video. Landmarks come from MediaPipe Pose / Face Mesh (models inside the mediapipe wheel, so this runs offline); the
paper used DWPose, so these numbers are not comparable with its Table 2.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..progress import ProgressFn
from ..quiet import QuietGraph
from .pixels import as_video as _as_video

__all__ = ["face_landmark_consistency", "face_landmarks", "landmark_consistency", "pose_landmark_consistency",
           "pose_landmarks"]


def landmark_consistency(lm_gen, lm_drv, pck_threshold: float = 0.05, mask=None) -> dict:
    """Normalised landmark distance between two landmark tracks.

    Each per-landmark L2 distance is divided by the diagonal of the driving landmarks' bounding box in that frame,
    so the number does not depend on image or subject size.

    Args:
        lm_gen: ``[T, K, 2]`` landmark (x, y) of the generated video (pixels); NaN marks "not detected".
        lm_drv: ``[T, K, 2]`` landmarks of the driving video.
        pck_threshold: a landmark counts as correct when its normalised distance is below this.
        mask: optional ``[T, K]`` bool, which landmarks to score (e.g. visible ones).

    Returns:
        ``{"nme": mean normalised distance (lower is better), "pck": fraction correct (higher is better),
        "frames_used": frames where both tracks had landmarks, "frames_total": T}``. ``nme``/``pck`` are NaN when
        no frame could be scored.
    """
    g, d = np.asarray(lm_gen, np.float64), np.asarray(lm_drv, np.float64)
    if g.shape != d.shape or g.ndim != 3 or g.shape[-1] < 2:
        raise InputError(f"landmarks must both be [T, K, 2]; got {g.shape} and {d.shape}")
    g, d = g[..., :2], d[..., :2]
    valid = np.isfinite(g).all(-1) & np.isfinite(d).all(-1)
    if mask is not None:
        valid &= np.asarray(mask, bool).reshape(valid.shape)
    dists, used = [], 0
    for t in range(g.shape[0]):
        k = valid[t]
        if not k.any():
            continue
        pts = d[t][np.isfinite(d[t]).all(-1)]
        diag = float(np.linalg.norm(pts.max(0) - pts.min(0)))
        if diag <= 0:
            continue
        dists.append(np.linalg.norm(g[t][k] - d[t][k], axis=1) / diag)
        used += 1
    if not dists:
        return {"nme": math.nan, "pck": math.nan, "frames_used": 0, "frames_total": int(g.shape[0])}
    all_d = np.concatenate(dists)
    return {
        "nme": float(all_d.mean()),
        "pck": float((all_d < pck_threshold).mean()),
        "frames_used": used,
        "frames_total": int(g.shape[0]),
    }


def pose_landmarks(frames, min_detection_confidence: float = 0.5, progress: ProgressFn | None = None) -> np.ndarray:
    """33 MediaPipe Pose body landmarks per frame (model shipped in the mediapipe wheel; "full" complexity).

    Each frame is processed on its own (static-image mode) so the result of a frame does not depend on the others.

    Args:
        frames: uint8 video ``[T, H, W, 3]`` (RGB) or one image.
        min_detection_confidence: MediaPipe's person-detection threshold.
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        ``[T, 33, 3]`` float array of (x pixels, y pixels, visibility); all NaN for frames without a person.
    """
    import mediapipe as mp  # lazy: ~1 s to import, and only the landmark metrics need it

    video = _as_video(frames, "frames")
    out = np.full((video.shape[0], 33, 3), np.nan)
    h, w = video.shape[1:3]
    # model_complexity=1: the lite/heavy models are not in the wheel and mediapipe would try to download them.
    with QuietGraph(mp.solutions.pose.Pose, static_image_mode=True, model_complexity=1,
                    min_detection_confidence=min_detection_confidence) as pose:
        for t, frame in enumerate(video):
            res = pose.process(frame)
            if res.pose_landmarks is not None:
                out[t] = [(p.x * w, p.y * h, p.visibility) for p in res.pose_landmarks.landmark]
            if progress is not None:
                progress((t + 1) / len(video), "pose landmarks")
    return out


def face_landmarks(frames, min_detection_confidence: float = 0.5, progress: ProgressFn | None = None) -> np.ndarray:
    """468 MediaPipe Face Mesh landmarks of the most prominent face per frame (model shipped in the wheel).

    Args:
        frames: uint8 video ``[T, H, W, 3]`` (RGB) or one image.
        min_detection_confidence: MediaPipe's face-detection threshold.
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        ``[T, 468, 2]`` float array of (x, y) in pixels; all NaN for frames without a face.
    """
    import mediapipe as mp  # lazy: ~1 s to import, and only the landmark metrics need it

    video = _as_video(frames, "frames")
    out = np.full((video.shape[0], 468, 2), np.nan)
    h, w = video.shape[1:3]
    with QuietGraph(mp.solutions.face_mesh.FaceMesh, static_image_mode=True, max_num_faces=1,
                    refine_landmarks=False, min_detection_confidence=min_detection_confidence) as mesh:
        for t, frame in enumerate(video):
            res = mesh.process(frame)
            if res.multi_face_landmarks:
                out[t] = [(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark]
            if progress is not None:
                progress((t + 1) / len(video), "face landmarks")
    return out


def _check_same_length(gen, drv):
    vg, vd = _as_video(gen, "generated"), _as_video(drv, "driving")
    if vg.shape[0] != vd.shape[0]:
        raise InputError(f"generated has {vg.shape[0]} frames but driving has {vd.shape[0]}; trim them to the same frames")
    return vg, vd


def pose_landmark_consistency(gen, drv, min_visibility: float = 0.5, pck_threshold: float = 0.05,
                              progress: ProgressFn | None = None) -> dict:
    """PLC: how closely the generated body pose follows the driving pose (lower ``nme`` is better).

    MediaPipe Pose landmarks of both videos (frames may differ in size: distances are normalised by the driving
    body's bounding-box diagonal); only landmarks visible (>= ``min_visibility``) in the driving frame are scored.
    Returns ``landmark_consistency``'s dict.
    """
    vg, vd = _check_same_length(gen, drv)
    sub = (lambda a, b: (lambda f, d: progress(a + (b - a) * f, d))) if progress else (lambda a, b: None)
    lg = pose_landmarks(vg, progress=sub(0.0, 0.5))
    ld = pose_landmarks(vd, progress=sub(0.5, 1.0))
    # Bring the generated landmarks into the driving frame's pixel scale when sizes differ.
    scale = np.array([vd.shape[2] / vg.shape[2], vd.shape[1] / vg.shape[1]])
    mask = np.nan_to_num(ld[..., 2], nan=0.0) >= min_visibility
    return landmark_consistency(lg[..., :2] * scale, ld[..., :2], pck_threshold=pck_threshold, mask=mask)


def face_landmark_consistency(gen, drv, pck_threshold: float = 0.05, progress: ProgressFn | None = None) -> dict:
    """FLC: how closely generated facial landmarks (expression, mouth shape) follow the driving ones (lower ``nme``
    is better). MediaPipe Face Mesh landmarks, normalised by the driving face's bounding-box diagonal. Returns
    ``landmark_consistency``'s dict."""
    vg, vd = _check_same_length(gen, drv)
    sub = (lambda a, b: (lambda f, d: progress(a + (b - a) * f, d))) if progress else (lambda a, b: None)
    lg = face_landmarks(vg, progress=sub(0.0, 0.5))
    ld = face_landmarks(vd, progress=sub(0.5, 1.0))
    scale = np.array([vd.shape[2] / vg.shape[2], vd.shape[1] / vg.shape[1]])
    return landmark_consistency(lg * scale, ld, pck_threshold=pck_threshold)
