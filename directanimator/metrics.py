"""Evaluation metrics for generated videos (paper section 4.1 and appendix A.4).

Videos are uint8 arrays ``[T, H, W, 3]`` (a single ``[H, W, 3]`` image counts as one frame). Pixel metrics work in
[0, 1] units.

What is computed here, with no downloaded weights:

- ``psnr``, ``ssim`` (Gaussian-window SSIM, Wang et al. 2004), ``l1`` — per frame or their mean.
- ``frechet_distance`` — the maths of FID / FVD on feature sets you extracted yourself.
- ``face_identity_similarity`` (FIS) and ``face_temporal_similarity`` (FTS) on face embeddings you computed.
- ``landmark_consistency`` — normalised landmark distance (NME) and PCK between two landmark tracks.
- ``pose_landmarks`` / ``face_landmarks`` with MediaPipe Pose / Face Mesh (their models ship inside the mediapipe
  wheel), and on top of them ``pose_landmark_consistency`` (PLC) and ``face_landmark_consistency`` (FLC).

The paper's feature extractors (Inception-v3 for FID, I3D for FVD, VGG/AlexNet for LPIPS, ArcFace for FIS/FTS,
DWpose for PLC) need weights that this package neither bundles nor downloads: ``inception_features``,
``i3d_features``, ``lpips`` and ``arcface_embeddings`` raise ``InputError`` saying which weights are needed and how
to use the weight-free maths above with features you extract elsewhere. PLC/FLC here use MediaPipe landmarks instead
of DWpose, so their numbers are not comparable with the paper's tables.

``evaluate`` computes everything available and lists what it skipped and why.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .progress import ProgressFn
from .quiet import QuietGraph


# ---------------------------------------------------------------------------------------------------------------
# input handling


def _as_video(x, name: str) -> np.ndarray:
    """Return ``x`` as a uint8 ``[T, H, W, 3]`` array, or raise ``InputError``."""
    arr = np.asarray(x)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise InputError(f"{name} must be a video [T,H,W,3] or an image [H,W,3], got shape {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 (0..255), got {arr.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)")
    if arr.shape[0] == 0:
        raise InputError(f"{name} has no frames")
    return np.ascontiguousarray(arr[..., :3])


def _pair(a, b, names=("generated", "ground_truth")) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two videos match in shape and return them as float64 tensors ``[T, 3, H, W]`` in [0, 1]."""
    va, vb = _as_video(a, names[0]), _as_video(b, names[1])
    if va.shape != vb.shape:
        raise InputError(
            f"{names[0]} {tuple(va.shape)} and {names[1]} {tuple(vb.shape)} differ in shape; "
            "resize and trim them to the same frames and size first"
        )
    # float64 keeps PSNR/SSIM exact enough to compare against reference implementations.
    ta = torch.from_numpy(va).permute(0, 3, 1, 2).double() / 255.0
    tb = torch.from_numpy(vb).permute(0, 3, 1, 2).double() / 255.0
    return ta, tb


def _reduce(per_frame: torch.Tensor, keep: bool):
    vals = per_frame.cpu().numpy().astype(np.float64)
    return vals if keep else float(vals.mean())


# ---------------------------------------------------------------------------------------------------------------
# pixel metrics


def psnr(a, b, per_frame: bool = False):
    """Peak signal-to-noise ratio in dB, with a data range of 1 (pixels scaled to [0, 1]).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]`` (or one image ``[H, W, 3]``).
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array of per-frame values instead of their mean.

    Identical frames give ``inf`` (no cap); the mean is then ``inf`` too.
    """
    ta, tb = _pair(a, b)
    mse = ((ta - tb) ** 2).flatten(1).mean(1)
    vals = torch.where(mse > 0, 10.0 * torch.log10(1.0 / mse.clamp_min(1e-300)), torch.full_like(mse, math.inf))
    return _reduce(vals, per_frame)


def l1(a, b, per_frame: bool = False):
    """Mean absolute error in [0, 1] units (the paper reports it ×1e-4).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]``.
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array instead of the mean.
    """
    ta, tb = _pair(a, b)
    return _reduce((ta - tb).abs().flatten(1).mean(1), per_frame)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a, b, per_frame: bool = False, channels: str = "luma", win_size: int = 11, sigma: float = 1.5):
    """Structural similarity (Wang et al. 2004) with a Gaussian window.

    Standard constants: K1 = 0.01, K2 = 0.03, data range 1, an 11×11 Gaussian window with sigma 1.5, population
    (co)variances, and only windows that lie fully inside the image (the same numbers as
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False, data_range=1)``).

    Args:
        a: generated video, uint8 ``[T, H, W, 3]``; frames must be at least ``win_size`` pixels on each side.
        b: ground-truth video of the same shape.
        per_frame: return a ``[T]`` array instead of the mean.
        channels: ``"luma"`` (BT.601 Y of the RGB frames) or ``"rgb"`` (SSIM per channel, averaged).
        win_size: Gaussian window side (odd).
        sigma: Gaussian window standard deviation.
    """
    ta, tb = _pair(a, b)
    if channels == "luma":
        w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
        ta, tb = (ta * w).sum(1, keepdim=True), (tb * w).sum(1, keepdim=True)
    elif channels != "rgb":
        raise InputError(f"ssim channels must be 'luma' or 'rgb', got {channels!r}")
    if win_size % 2 != 1 or min(ta.shape[-2:]) < win_size:
        raise InputError(f"ssim needs an odd win_size no larger than the frame; got {win_size} for {tuple(ta.shape[-2:])}")
    c = ta.shape[1]
    g = _gaussian_window(win_size, sigma)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, win_size, win_size).contiguous()

    def blur(x):
        return F.conv2d(x, kernel, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(ta), blur(tb)
    var_a = blur(ta * ta) - mu_a**2
    var_b = blur(tb * tb) - mu_b**2
    cov = blur(ta * tb) - mu_a * mu_b
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return _reduce(smap.flatten(1).mean(1), per_frame)


# ---------------------------------------------------------------------------------------------------------------
# Fréchet distance (FID / FVD maths)


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``. The trace term is computed as
    ``tr((sqrt(sigma1) sigma2 sqrt(sigma1))^(1/2))`` from symmetric eigendecompositions, which is stable for
    singular covariances (fewer samples than feature dimensions) and needs no scipy.

    Args:
        mu1: mean ``[D]`` of the first set.
        sigma1: covariance ``[D, D]`` of the first set.
        mu2: mean ``[D]`` of the second set.
        sigma2: covariance ``[D, D]`` of the second set.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError(f"Fréchet statistics do not match: means {mu1.shape}/{mu2.shape}, covariances {s1.shape}/{s2.shape}")
    r1 = _sqrtm_psd(s1)
    inner = r1 @ s2 @ r1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of a feature set ``[N, D]`` with N >= 2."""
    f = np.asarray(feats, np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or not np.isfinite(f).all():
        raise InputError(f"features must be a finite [N, D] array with N >= 2, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between two feature sets ``[N, D]`` and ``[M, D]`` (FID on Inception pool features, FVD on
    I3D logits). Each set is summarised by its mean and covariance; see ``frechet_distance_from_stats``."""
    return frechet_distance_from_stats(*feature_stats(feats_a), *feature_stats(feats_b))


# ---------------------------------------------------------------------------------------------------------------
# face identity (FIS / FTS)


def _unit_rows(emb, name: str) -> np.ndarray:
    e = np.asarray(emb, np.float64)
    if e.ndim == 1:
        e = e[None]
    if e.ndim != 2 or e.shape[0] == 0:
        raise InputError(f"{name} must be embeddings [T, D] (or one [D]), got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, e / norms, np.nan)


def face_identity_similarity(emb_gen, emb_ref) -> float:
    """FIS: mean cosine similarity between generated-frame face embeddings and the reference face embedding.

    Args:
        emb_gen: ``[T, D]`` embeddings of the generated frames (ArcFace in the paper); rows of NaN mark frames
            without a detected face and are skipped.
        emb_ref: ``[D]`` embedding of the reference image, or ``[T, D]`` for per-frame pairs.
    """
    g, r = _unit_rows(emb_gen, "emb_gen"), _unit_rows(emb_ref, "emb_ref")
    if g.shape[1] != r.shape[1] or r.shape[0] not in (1, g.shape[0]):
        raise InputError(f"emb_gen {g.shape} and emb_ref {r.shape} do not pair up")
    cos = (g * r).sum(1)
    cos = cos[np.isfinite(cos)]
    if cos.size == 0:
        raise InputError("FIS: no frame has a face embedding")
    return float(cos.mean())


def face_temporal_similarity(emb_gen) -> float:
    """FTS: mean cosine similarity between face embeddings of adjacent generated frames.

    Args:
        emb_gen: ``[T, D]`` embeddings, T >= 2; pairs touching a NaN row (no face) are skipped.
    """
    g = _unit_rows(emb_gen, "emb_gen")
    if g.shape[0] < 2:
        raise InputError("FTS needs at least 2 frames of embeddings")
    cos = (g[1:] * g[:-1]).sum(1)
    cos = cos[np.isfinite(cos)]
    if cos.size == 0:
        raise InputError("FTS: no two adjacent frames both have a face embedding")
    return float(cos.mean())


# ---------------------------------------------------------------------------------------------------------------
# landmark consistency (PLC / FLC)


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


# ---------------------------------------------------------------------------------------------------------------
# metrics whose feature extractors need weights we do not have

_NEEDS = {
    "FID": ("Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05)",
            "extract 2048-d pool features of generated and ground-truth frames with them and call "
            "frechet_distance(feats_gen, feats_gt)"),
    "FVD": ("I3D weights (Kinetics-400 i3d_torchscript or the TF-Hub i3d-kinetics-400 model)",
            "extract 400-d I3D logits per clip with them and call frechet_distance(feats_gen, feats_gt)"),
    "LPIPS": ("LPIPS weights (AlexNet/VGG backbone plus the lpips linear layers)",
              "install the lpips package with its weights and score the frames with it"),
    "FIS/FTS": ("ArcFace face-recognition weights (e.g. insightface buffalo_l w600k_r50.onnx)",
                "extract per-frame face embeddings with them and call face_identity_similarity / "
                "face_temporal_similarity"),
}


def _needs_weights(metric: str):
    weights, how = _NEEDS[metric]
    raise InputError(f"{metric} needs {weights}, which DirectAnimator neither bundles nor downloads; {how}")


def inception_features(frames):
    """FID features: always raises ``InputError`` naming the Inception-v3 weights needed (none ship here)."""
    _needs_weights("FID")


def i3d_features(videos):
    """FVD features: always raises ``InputError`` naming the I3D weights needed (none ship here)."""
    _needs_weights("FVD")


def lpips(a, b):
    """LPIPS: always raises ``InputError`` naming the network weights needed (none ship here)."""
    _needs_weights("LPIPS")


def arcface_embeddings(frames):
    """FIS/FTS face embeddings: always raises ``InputError`` naming the ArcFace weights needed (none ship here)."""
    _needs_weights("FIS/FTS")


# ---------------------------------------------------------------------------------------------------------------
# everything at once


def evaluate(generated, ground_truth, driving=None, progress: ProgressFn | None = None) -> dict:
    """Compute every metric available offline and list the rest with the reason they were skipped.

    Args:
        generated: generated video, uint8 ``[T, H, W, 3]``.
        ground_truth: ground-truth video of the same shape (for self-reconstruction evaluation).
        driving: optional driving video ``[T, H', W', 3]`` for PLC / FLC (MediaPipe landmarks).
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        ``{"metrics": {name: value}, "skipped": {name: reason}}``; PLC/FLC values are ``landmark_consistency`` dicts.
    """
    report = lambda f, d: progress(f, d) if progress else None  # noqa: E731
    metrics: dict = {}
    skipped: dict = {}
    metrics["psnr"] = psnr(generated, ground_truth)
    metrics["ssim"] = ssim(generated, ground_truth)
    metrics["l1"] = l1(generated, ground_truth)
    report(0.1, "pixel metrics")
    for name, fn in (("fid", lambda: inception_features(generated)), ("fvd", lambda: i3d_features(generated)),
                     ("lpips", lambda: lpips(generated, ground_truth)),
                     ("fis", lambda: arcface_embeddings(generated)), ("fts", lambda: arcface_embeddings(generated))):
        try:
            fn()
        except InputError as e:
            skipped[name] = str(e)
    if driving is None:
        skipped["plc"] = skipped["flc"] = "no driving video given"
    else:
        sub = lambda a, b: (lambda f, d: report(a + (b - a) * f, d))  # noqa: E731
        metrics["plc"] = pose_landmark_consistency(generated, driving, progress=sub(0.1, 0.55))
        metrics["flc"] = face_landmark_consistency(generated, driving, progress=sub(0.55, 1.0))
    report(1.0, "done")
    return {"metrics": metrics, "skipped": skipped}
