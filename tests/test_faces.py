"""Face detection backends and box smoothing, run for real (MediaPipe's BlazeFace ships in the wheel; the SCRFD
decoder runs a small ONNX graph built here with SCRFD's output layout)."""

import numpy as np
import pytest

from directanimator.cues.faces import (FACE_DETECTORS, FaceTrack, InsightFaceDetector, MediaPipeFaceDetector,
                                       get_face_detector, smooth_boxes, upper_body_square)
from directanimator.cues.segment import MediaPipeSegmenter
from directanimator.errors import InputError


def astronaut():
    import skimage.data

    return skimage.data.astronaut()


def grace_hopper():
    import matplotlib.cbook
    from PIL import Image

    return np.array(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))


@pytest.fixture(scope="module")
def detector():
    det = MediaPipeFaceDetector()
    yield det
    det.close()


@pytest.fixture(scope="module")
def segmenter():
    seg = MediaPipeSegmenter()
    yield seg
    seg.close()


def _mask_bbox(mask):
    ys, xs = np.nonzero(mask > 0.5)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut"])
def test_face_found_in_upper_part_of_person(detector, segmenter, name):
    image = grace_hopper() if name == "grace_hopper" else astronaut()
    h, w = image.shape[:2]
    mask = segmenter.segment_image(image).masks
    track = detector.detect(image[None], mask)
    assert track.boxes.shape == (1, 4) and track.boxes.dtype == np.float32
    assert track.found[0] and track.scores[0] > 0.5
    x0, y0, x1, y1 = track.boxes[0]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # A portrait's face: 15-60 % of the width, roughly square.
    assert 0.15 * w < x1 - x0 < 0.6 * w
    assert 0.6 < (y1 - y0) / (x1 - x0) < 1.7
    # Inside the person, in the upper half of the mask.
    mx0, my0, mx1, my1 = _mask_bbox(mask[0])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert mask[0][int(cy), int(cx)] > 0.5
    assert mx0 <= cx <= mx1 and my0 <= cy <= my0 + 0.5 * (my1 - my0)
    # Without masks the same face is found.
    plain = detector.detect(image)
    assert plain.found[0]
    assert np.abs(plain.boxes[0] - track.boxes[0]).max() < 0.1 * w


def test_small_face_found_through_person_crop(detector, segmenter):
    # A full-frame portrait shrunk into a wide, empty frame: the face is ~25 px.
    import cv2

    image = astronaut()
    big = detector.detect(image)
    assert big.found[0]
    small_side = 112
    s = small_side / image.shape[0]
    canvas = np.full((512, 640, 3), 118, np.uint8)
    ox, oy = 400, 300
    canvas[oy:oy + small_side, ox:ox + small_side] = cv2.resize(image, (small_side, small_side),
                                                                interpolation=cv2.INTER_AREA)
    mask = np.zeros((1, 512, 640), np.float32)
    mask[0, oy:oy + small_side, ox:ox + small_side] = cv2.resize(segmenter.segment_image(image).masks[0],
                                                                 (small_side, small_side))
    # BlazeFace alone misses a face this small; the upscaled upper-body crop finds it.
    assert not detector.detect(canvas).found[0]
    track = detector.detect(canvas[None], mask)
    assert track.found[0]
    expected = big.boxes[0] * s + [ox, oy, ox, oy]
    assert np.abs(track.boxes[0] - expected).max() < 6, (track.boxes[0], expected)


def test_face_of_the_masked_person_wins_over_bystander(detector, segmenter):
    import cv2

    left = cv2.resize(grace_hopper(), (512, 512))
    right = astronaut()
    pair = np.concatenate([left, right], axis=1)
    mask = np.zeros((1, 512, 1024), np.float32)
    mask[0, :, 512:] = segmenter.segment_image(right).masks[0]
    track = detector.detect(pair, mask)
    cx = (track.boxes[0, 0] + track.boxes[0, 2]) / 2
    assert track.found[0] and cx > 512
    # Without the mask, the most confident face anywhere is returned.
    assert detector.detect(pair).found[0]


def test_flat_frames_have_no_face(detector):
    frames = np.full((3, 96, 128, 3), 128, np.uint8)
    track = detector.detect(frames, np.zeros((3, 96, 128), np.float32))
    assert track.boxes.shape == (3, 4) and np.isnan(track.boxes).all()
    assert (track.scores == 0).all() and not track.found.any()


def test_detector_rejects_bad_input(detector):
    with pytest.raises(InputError):
        detector.detect(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(InputError):
        detector.detect(np.zeros((2, 8, 8, 3), np.uint8), masks=np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InputError):
        get_face_detector("nope")


def test_upper_body_square():
    mask = np.zeros((100, 100), np.float32)
    mask[20:90, 40:60] = 1.0
    x0, y0, x1, y1 = upper_body_square(mask)
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert y0 < 25 and y1 < 90 and x0 < 40 and x1 > 60
    assert upper_body_square(np.zeros((10, 10))) is None


# ---------------------------------------------------------------------------------------------------------------
# smooth_boxes


def _track(n=60, seed=0, missing=(10, 11, 30)):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cx, cy = 100 + 0.5 * t, 80 + 5 * np.sin(t / 10)
    size = 40 + 0.1 * t
    true = np.stack([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], 1)
    noisy = true + np.repeat(rng.normal(0, 2.0, (n, 2)), 2, axis=1) * [1, 1, 1, 1]
    noisy += rng.normal(0, 1.0, (n, 4))
    noisy[list(missing)] = np.nan
    scores = np.where(np.isnan(noisy[:, 0]), 0.0, 0.9)
    return true.astype(np.float32), FaceTrack(boxes=noisy.astype(np.float32), scores=scores.astype(np.float32))


def test_smoothing_reduces_jitter_and_keeps_missing_frames():
    true, track = _track()
    out = smooth_boxes(track, window=5)
    assert out.boxes.shape == track.boxes.shape and out.boxes.dtype == np.float32
    missing = ~track.found
    assert np.isnan(out.boxes[missing]).all()
    assert np.isfinite(out.boxes[~missing]).all()
    jitter = lambda b: np.nanstd(np.diff(b[:, 0] + b[:, 2]))  # noqa: E731
    assert jitter(out.boxes) < 0.6 * jitter(track.boxes)
    err_in = np.nanmean(np.abs(track.boxes - true))
    err_out = np.nanmean(np.abs(out.boxes - true))
    assert err_out < err_in
    np.testing.assert_array_equal(out.scores, track.scores)


def test_smoothing_window_one_and_all_missing():
    _, track = _track()
    np.testing.assert_array_equal(smooth_boxes(track, window=1).boxes, track.boxes)
    empty = FaceTrack(boxes=np.full((4, 4), np.nan, np.float32), scores=np.zeros(4, np.float32))
    assert np.isnan(smooth_boxes(empty).boxes).all()


# ---------------------------------------------------------------------------------------------------------------
# InsightFace (SCRFD through onnxruntime)


def test_insightface_missing_models_says_what_to_download(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(InputError, match=r"buffalo_l.*non-commercial"):
        get_face_detector("insightface", model_dir=str(tmp_path))


def _scrfd_like_onnx(path, size, face):
    """An ONNX graph with SCRFD's 9 outputs (scores, box distances, keypoints for strides 8/16/32, 2 anchors)
    that reports one face: anchor 0 of cell (col, row) at ``face['stride']`` with distances ``face['dist']``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes, outputs = [], []
    tensors = {}
    for stride in (8, 16, 32):
        cells = (size // stride) ** 2 * 2
        score = np.full((cells, 1), 0.01, np.float32)
        dist = np.ones((cells, 4), np.float32)
        if stride == face["stride"]:
            i = (face["row"] * (size // stride) + face["col"]) * 2
            score[i] = 0.95
            dist[i] = face["dist"]
        tensors[f"score_{stride}"] = score
        tensors[f"bbox_{stride}"] = dist
        tensors[f"kps_{stride}"] = np.zeros((cells, 10), np.float32)
    for kind in ("score", "bbox", "kps"):
        for stride in (8, 16, 32):
            name = f"{kind}_{stride}"
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(tensors[name])))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(tensors[name].shape)))
    graph = helper.make_graph(nodes, "scrfd_like", [helper.make_tensor_value_info(
        "input.1", TensorProto.FLOAT, [1, 3, size, size])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_insightface_scrfd_decoding(tmp_path):
    pytest.importorskip("onnxruntime")
    size = 64
    # Anchor centre (16*1, 16*2) = (16, 32); distances 1,1,2,1 strides -> box (0, 16, 48, 48) on the canvas.
    _scrfd_like_onnx(tmp_path / "det_10g.onnx", size, dict(stride=16, col=1, row=2, dist=[1, 1, 2, 1]))
    det = get_face_detector("insightface", model_dir=str(tmp_path), input_size=size)
    assert det.name == "insightface"
    # A 128x96 frame is letterboxed at scale 0.5: canvas box (0,16,48,48) -> frame (0,32,96,96).
    frames = np.zeros((2, 96, 128, 3), np.uint8)
    track = det.detect(frames)
    np.testing.assert_allclose(track.boxes[0], [0, 32, 96, 96], atol=1e-4)
    assert track.scores[0] == pytest.approx(0.95, abs=1e-6)
    # A mask elsewhere: the face (centre outside it) is still the only candidate and is returned.
    masks = np.zeros((2, 96, 128), np.float32)
    masks[:, :, 100:] = 1.0
    assert det.detect(frames, masks).found.all()


def test_insightface_rejects_non_scrfd_graph(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "det_bad.onnx"))
    with pytest.raises(InputError, match="SCRFD"):
        InsightFaceDetector(model_dir=str(tmp_path))


def test_registry():
    assert set(FACE_DETECTORS) == {"mediapipe", "insightface"}


def test_old_face_cue_module_name_still_imports_with_a_deprecation_warning():
    import importlib
    import sys

    from directanimator.cues import face_cue

    sys.modules.pop("directanimator.cues.face", None)
    with pytest.warns(DeprecationWarning, match="directanimator.cues.face_cue"):
        module = importlib.import_module("directanimator.cues.face")
    assert all(getattr(module, name) is getattr(face_cue, name) for name in face_cue.__all__)
