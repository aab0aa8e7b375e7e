"""Tests for directanimator.metrics: pixel metrics, Fréchet distance, FIS/FTS, landmark consistency (MediaPipe)."""

import math
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from directanimator import metrics as M
from directanimator.errors import InputError
from directanimator.metrics import arcface, convert_weights, inception, lpips, weights
from eval_weights import (ALEXNET_LAYOUT, LPIPS_ALEX_LAYOUT, arcface_reference_forward, write_arcface_onnx,
                          write_inception_weights, write_lpips_weights, write_scrfd_onnx)

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
    assert m["plc"] == 0.0 and m["flc"] == 0.0 and out["details"]["flc"]["against"] == "driving"
    # no weights in this environment: absent with what to download; FID/FVD absent with why; never a number
    assert set(skipped) == {"fid", "fvd", "lpips", "fis", "fts", "moving_l1"}
    assert "alexnet-owt-7be5be79.pth" in skipped["lpips"] and "w600k_r50.onnx" in skipped["fis"]
    assert "pt_inception-2015-12-05-6726825d.pth" in skipped["fid"] and "i3d_pretrained_400.pt" in skipped["fvd"]
    assert "reference" in skipped["moving_l1"]
    assert not set(skipped) & set(m)
    assert calls and calls[-1] == 1.0
    # without a driving video PLC/FLC compare with the ground truth
    assert M.evaluate(clip, clip)["details"]["flc"]["against"] == "ground_truth"


def test_frechet_too_few_samples_for_a_covariance_is_a_clear_error():
    with pytest.raises(InputError, match="N >= 2"):
        M.frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(InputError, match="do not match"):
        M.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ---------------------------------------------------------------------------------------------------------------
# LPIPS (pure torch, published layouts)


def test_lpips_layout_matches_the_published_files():
    model = lpips.LPIPS()
    own = {k: tuple(v.shape) for k, v in model.net.state_dict().items()}
    assert own == {k: s for k, s in ALEXNET_LAYOUT.items() if k.startswith("features.")}
    lins = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("lin")}
    assert lins == LPIPS_ALEX_LAYOUT
    assert set(model.state_dict()) == {f"net.{k}" for k in own} | set(lins)  # the scaling constants are not weights
    assert lpips.LPIPS_SHIFT == (-0.030, -0.088, -0.188) and lpips.LPIPS_SCALE == (0.458, 0.448, 0.450)


def test_lpips_loads_published_layout_identical_is_zero_and_converts(tmp_path):
    alex, lin = write_lpips_weights(tmp_path, classifier=True)  # the real file also holds the classifier
    model = lpips.load_lpips(alex, lin)
    v = _video(t=2, h=64, w=64)
    assert np.allclose(model.video_distance(v, v), 0.0)
    other = _video(seed=9, t=2, h=64, w=64)
    d = model.video_distance(v, other)
    assert d.shape == (2,) and (d > 0).all()
    # .safetensors twin: same numbers, and find_weight prefers it
    assert convert_weights.main([str(alex)]) == 0
    st = alex.with_suffix(".safetensors")
    assert weights.find_weight("alexnet", [tmp_path]) == st
    assert np.allclose(lpips.load_lpips(st, lin).video_distance(v, other), d)


def test_lpips_closed_form_with_weights_we_set():
    """Layer 1 reads only the centre pixel of R and G; all later layers are zero. For constant images the
    normalised features are (R', G') / |(R', G')| with R' = (x - shift) / scale, so the distance is
    lin0 . (difference of the unit vectors)^2, exactly."""
    model = lpips.LPIPS()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        conv = model.net.features[0]
        conv.weight[0, 0, 5, 5] = 1.0
        conv.weight[1, 1, 5, 5] = 1.0
        model.lin0.model[1].weight[0, 0] = 2.0
        model.lin0.model[1].weight[0, 1] = 3.0
    shift, scale = np.array(lpips.LPIPS_SHIFT), np.array(lpips.LPIPS_SCALE)

    def image(r, g):  # a constant image whose scaled R, G are (r, g)
        x = torch.zeros(1, 3, 40, 40)
        x[:, 0], x[:, 1], x[:, 2] = r * scale[0] + shift[0], g * scale[1] + shift[1], 0.0
        return x

    got = float(model(image(0.6, 0.8), image(0.8, 0.6)))
    assert got == pytest.approx(2.0 * 0.2**2 + 3.0 * 0.2**2, rel=1e-5)
    assert float(model(image(0.6, 0.8), image(1.2, 1.6))) == pytest.approx(0.0, abs=1e-7)  # same direction


def test_corrupt_or_wrong_weight_files_name_the_file(tmp_path):
    alex, lin = write_lpips_weights(tmp_path)
    bad = tmp_path / "broken.pth"
    bad.write_bytes(alex.read_bytes()[:1000])
    with pytest.raises(InputError, match="broken.pth"):
        lpips.load_lpips(bad, lin)
    with pytest.raises(InputError, match=r"alex.pth is not the expected weight file: it lacks features.0.bias"):
        lpips.load_lpips(lin, lin)
    # a pickle that carries code is refused (weights_only=True), not run
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "obj": Path("x")}, evil)
    with pytest.raises(InputError, match="evil.pth"):
        weights.load_state_dict(evil)


def test_weight_search_order_env_and_subfolders(tmp_path, monkeypatch):
    (tmp_path / "env" / "buffalo_l").mkdir(parents=True)
    (tmp_path / "env" / "buffalo_l" / "w600k_r50.onnx").write_bytes(b"x")
    (tmp_path / "flag").mkdir()
    (tmp_path / "flag" / "w600k_r50.onnx").write_bytes(b"x")
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.find_weight("arcface") == tmp_path / "env" / "buffalo_l" / "w600k_r50.onnx"
    assert weights.find_weight("arcface", [tmp_path / "flag"]) == tmp_path / "flag" / "w600k_r50.onnx"
    monkeypatch.delenv(weights.ENV_VAR)
    assert weights.find_weight("arcface") is None
    with pytest.raises(InputError, match=r"w600k_r50.onnx, not found: download .*buffalo_l.zip"):
        weights.require_weight("arcface")


# ---------------------------------------------------------------------------------------------------------------
# ArcFace (FIS / FTS)


def test_arcface_template_and_keypoint_order_are_insightfaces():
    # InsightFace's published 112x112 template, in SCRFD's order: left eye, right eye, nose, left/right mouth corner
    assert arcface.ARCFACE_TEMPLATE.tolist() == [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                                 [41.5493, 92.3655], [70.7299, 92.2041]]
    t = arcface.ARCFACE_TEMPLATE
    assert t[0, 0] < t[2, 0] < t[1, 0] and t[3, 0] < t[4, 0] and t[:2, 1].max() < t[2, 1] < t[3:, 1].min()


def test_similarity_transform_recovers_a_known_one():
    t = arcface.ARCFACE_TEMPLATE
    assert np.allclose(arcface.similarity_transform(t, t), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    a, s, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = (t - shift) @ np.linalg.inv(rot).T  # points that rot @ p + shift maps onto the template
    m = arcface.similarity_transform(src, t)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)
    with pytest.raises(InputError, match="one point"):
        arcface.similarity_transform(np.ones((5, 2)), t)


def _face_weights(folder, frame_side=160, seed=0):
    """Tiny ArcFace + SCRFD models in buffalo_l's layout; the face's keypoints are the template at half size,
    moved by (20, 10) in frame pixels, so the alignment is exactly x2 then -(40, 20)."""
    pack = folder / "buffalo_l"
    pack.mkdir(parents=True)
    w = write_arcface_onnx(pack / "w600k_r50.onnx", seed=seed)
    kps_frame = arcface.ARCFACE_TEMPLATE / 2 + [20.0, 10.0]
    write_scrfd_onnx(pack / "det_10g.onnx", 640, kps_frame * (640 / frame_side))
    return w, pack


def test_arcface_embedder_aligns_normalises_and_embeds(tmp_path):
    pytest.importorskip("onnxruntime")
    w, pack = _face_weights(tmp_path)
    emb = arcface.ArcFaceEmbedder(pack / "w600k_r50.onnx", pack / "det_10g.onnx")
    frames = _video(seed=2, t=3, h=160, w=160)
    kps = emb.keypoints(frames[0])
    assert np.allclose(kps, arcface.ARCFACE_TEMPLATE / 2 + [20, 10], atol=1e-3)
    out = emb.embed(frames)
    assert out.shape == (3, 512) and np.isfinite(out).all()
    by_hand = np.array([[2.0, 0, -40.0], [0, 2.0, -20.0]])  # the transform onto the template, worked out
    for t in range(3):
        crop = cv2.warpAffine(frames[t], by_hand, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
        assert np.allclose(out[t], arcface_reference_forward(w, crop), rtol=1e-4, atol=1e-4)
    # FIS of a video against its own first frame; FTS of a still video is 1
    still = np.repeat(frames[:1], 3, axis=0)
    e = emb.embed(still)
    assert M.face_identity_similarity(e, emb.embed(frames[0])[0]) == pytest.approx(1.0)
    assert M.face_temporal_similarity(e) == pytest.approx(1.0)


def test_arcface_rejects_wrong_models(tmp_path):
    pytest.importorskip("onnxruntime")
    _, pack = _face_weights(tmp_path)
    with pytest.raises(InputError, match="is not an ArcFace model"):
        arcface.ArcFaceEmbedder(pack / "det_10g.onnx", pack / "det_10g.onnx")
    write_scrfd_onnx(tmp_path / "det_6.onnx", 640, np.zeros((5, 2)), with_keypoints=False)
    with pytest.raises(InputError, match="gives no face keypoints"):
        arcface.ArcFaceEmbedder(pack / "w600k_r50.onnx", tmp_path / "det_6.onnx")
    broken = tmp_path / "w600k_r50.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(InputError, match="cannot load the ArcFace model .*w600k_r50.onnx"):
        arcface.ArcFaceEmbedder(broken, pack / "det_10g.onnx")


# ---------------------------------------------------------------------------------------------------------------
# FID's Inception-v3 (pure torch, pytorch-fid's layout)


def test_inception_layout_matches_pt_inception():
    model = inception.FIDInceptionV3()
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    # torchvision documents inception_v3 at 27,161,264 parameters: that minus its AuxLogits head
    # (768->128 1x1 conv + BN, 128->768 5x5 conv + BN, 768->1000 fc) plus the 8 extra classes of the FID graph's
    # 1008-way fc is what pt_inception-2015-12-05 holds.
    aux = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
    assert sum(p.numel() for p in model.parameters()) == 27_161_264 - aux + 8 * 2048 + 8
    # the same check for AlexNet (torchvision: 61,100,840 parameters, features + classifier)
    assert sum(int(np.prod(s)) for s in ALEXNET_LAYOUT.values()) == 61_100_840
    for key, shape in {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_1a_3x3.bn.running_var": (32,),
                       "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3), "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
                       "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7), "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
                       "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3), "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
                       "Mixed_7c.branch3x3_2b.conv.weight": (384, 384, 3, 1), "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
                       "fc.weight": (1008, 2048), "fc.bias": (1008,)}.items():
        assert state[key] == shape, key
    assert len([k for k in state if k.endswith(".conv.weight")]) == 94  # Inception-v3's 94 convolutions
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool  # the FID graph's last pool branch


def test_inception_loads_published_layout_and_fid_of_a_set_with_itself_is_zero(tmp_path):
    path = write_inception_weights(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    model = inception.load_inception(path)
    frames = _video(seed=4, t=3, h=64, w=48)
    feats = model.video_features(frames, batch_size=2)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all() and (feats >= 0).all()
    assert M.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    assert M.frechet_distance(feats, model.video_features(frames[::-1].copy())) == pytest.approx(0.0, abs=1e-4)
    assert M.frechet_distance(feats, model.video_features(255 - frames)) > 0
    state = torch.load(path, weights_only=True)
    del state["Mixed_6c.branch1x1.bn.running_mean"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(InputError, match="cut.pth is not the expected weight file: it lacks Mixed_6c.branch1x1.bn.running_mean"):
        inception.load_inception(tmp_path / "cut.pth")
