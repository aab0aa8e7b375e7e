"""Tests for directanimator.metrics: pixel metrics, Fréchet distance, FIS/FTS, landmark consistency (MediaPipe)."""

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from directanimator import metrics as M
from directanimator.errors import InputError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _video(seed=0, t=3, h=32, w=40):
    return np.random.default_rng(seed).integers(20, 236, size=(t, h, w, 3), dtype=np.uint8)


def test_psnr_identical_is_inf_and_known_value():
    a = _video()
    assert M.psnr(a, a) == math.inf
    # +-10 alternating noise: MSE = (10/255)^2 exactly, so PSNR = 20 log10(25.5).
    noise = np.where(np.indices(a.shape).sum(0) % 2 == 0, 10, -10)
    b = (a.astype(int) + noise).astype(np.uint8)
    assert M.psnr(a, b) == pytest.approx(20 * math.log10(25.5), abs=1e-9)
    per = M.psnr(a, b, per_frame=True)
    assert per.shape == (3,) and np.allclose(per, 20 * math.log10(25.5))


def test_l1_known_value():
    a = _video() // 2  # values below 128, so +51 never clips
    b = a + np.uint8(51)
    assert M.l1(a, b) == pytest.approx(0.2)
    assert M.l1(a, a) == 0.0
    assert M.l1(a, b, per_frame=True) == pytest.approx([0.2] * 3)


def test_ssim_identity_noise_symmetry():
    rng = np.random.default_rng(1)
    # A smooth image, so SSIM is meaningful (random pixels have little structure).
    y, x = np.mgrid[0:48, 0:48]
    base = (127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)).astype(np.uint8)
    a = np.repeat(base[None, :, :, None], 3, axis=-1).repeat(2, axis=0)
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim(a, a, channels="rgb") == pytest.approx(1.0)
    scores = []
    for sd in (5, 20, 60):
        b = (a + rng.normal(0, sd, a.shape)).clip(0, 255).astype(np.uint8)
        s_ab, s_ba = M.ssim(a, b), M.ssim(b, a)
        assert s_ab == pytest.approx(s_ba, abs=1e-12)
        scores.append(s_ab)
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    g1 = rng.integers(0, 256, (40, 36), dtype=np.uint8)
    g2 = (g1 + rng.normal(0, 25, g1.shape)).clip(0, 255).astype(np.uint8)
    ref = skm.structural_similarity(g1 / 255.0, g2 / 255.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
    a, b = (np.repeat(g[..., None], 3, -1) for g in (g1, g2))
    assert M.ssim(a, b, channels="rgb") == pytest.approx(ref, abs=1e-6)


def test_pixel_metrics_reject_bad_input():
    a = _video()
    with pytest.raises(InputError, match="differ in shape"):
        M.psnr(a, a[:2])
    with pytest.raises(InputError, match="uint8"):
        M.ssim(a.astype(np.float32), a)


def test_frechet_identical_and_shifted():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(200, 8))
    assert M.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)
    # Shifting a set changes only the mean: FD = |delta|^2 exactly.
    delta = np.arange(8) * 0.3
    assert M.frechet_distance(feats, feats + delta) == pytest.approx(float(delta @ delta), rel=1e-9)
    # Diagonal Gaussians: |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert M.frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_frechet_general_covariance_matches_scipy():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert M.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_fis_fts_on_hand_made_embeddings():
    ref = np.array([1.0, 0.0, 0.0])
    gen = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [np.nan] * 3])
    # cosines with ref: 1, 0, 1/sqrt2; the NaN row (no face) is skipped.
    assert M.face_identity_similarity(gen, ref) == pytest.approx((1 + 0 + 2**-0.5) / 3)
    # adjacent pairs: (0), (1/sqrt2); the pair with the NaN row is skipped.
    assert M.face_temporal_similarity(gen) == pytest.approx((0 + 2**-0.5) / 2)
    assert M.face_temporal_similarity(np.tile(ref, (5, 1))) == pytest.approx(1.0)
    with pytest.raises(InputError):
        M.face_temporal_similarity(ref)


def test_landmark_consistency_identical_and_shifted():
    rng = np.random.default_rng(5)
    lm = rng.uniform(0, 100, size=(4, 10, 2))
    res = M.landmark_consistency(lm, lm)
    assert res["nme"] == 0.0 and res["pck"] == 1.0 and res["frames_used"] == 4
    box = np.array([[[0.0, 0.0], [30.0, 40.0]]])  # bbox diagonal 50
    res = M.landmark_consistency(box + [3.0, 4.0], box)  # each point 5 px off: 0.1 of the diagonal
    assert res["nme"] == pytest.approx(0.1) and res["pck"] == 0.0
    missing = lm.copy()
    missing[1] = np.nan
    assert M.landmark_consistency(missing, lm)["frames_used"] == 3


def test_weights_needed_metrics_raise_clear_errors():
    v = _video()
    for fn, words in ((lambda: M.inception_features(v), "FID needs Inception-v3"),
                      (lambda: M.i3d_features(v), "FVD needs I3D"),
                      (lambda: M.lpips(v, v), "LPIPS needs"),
                      (lambda: M.arcface_embeddings(v), "FIS/FTS needs ArcFace")):
        with pytest.raises(InputError, match=words):
            fn()


def test_pose_landmarks_on_photo_and_plc():
    img = iio.imread(EXAMPLES / "reference_astronaut.jpg")[..., :3]
    clip = np.stack([img, img[:, ::-1].copy()])
    lm = M.pose_landmarks(clip)
    assert lm.shape == (2, 33, 3) and np.isfinite(lm).all()
    assert (lm[..., 0] >= -50).all() and (lm[..., 0] <= img.shape[1] + 50).all()
    same = M.pose_landmark_consistency(clip, clip)
    assert same["nme"] == 0.0 and same["pck"] == 1.0 and same["frames_used"] == 2
    moved = np.roll(clip, 40, axis=2)
    assert M.pose_landmark_consistency(moved, clip)["nme"] > 0.02


def test_face_landmarks_and_flc_and_evaluate():
    img = iio.imread(EXAMPLES / "reference_grace_hopper.jpg")[..., :3]
    clip = img[None]
    lm = M.face_landmarks(clip)
    assert lm.shape == (1, 468, 2) and np.isfinite(lm).all()
    assert M.face_landmark_consistency(clip, clip)["nme"] == 0.0
    calls = []
    out = M.evaluate(clip, clip, driving=clip, progress=lambda f, d: calls.append(f))
    m, skipped = out["metrics"], out["skipped"]
    assert m["psnr"] == math.inf and m["ssim"] == pytest.approx(1.0) and m["l1"] == 0.0
    assert m["plc"]["nme"] == 0.0 and m["flc"]["nme"] == 0.0
    assert set(skipped) == {"fid", "fvd", "lpips", "fis", "fts"} and "Inception-v3" in skipped["fid"]
    assert calls and calls[-1] == 1.0
    assert set(M.evaluate(clip, clip)["skipped"]) >= {"plc", "flc"}
