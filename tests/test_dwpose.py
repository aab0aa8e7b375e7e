"""Tests for DWPose PLC/FLC (directanimator.metrics.dwpose): SimCC decoding, the detector / pose-model layouts
(tiny ONNX graphs with the published input and output names and shapes), the crop geometry, and the evaluator
saying which estimator produced each number."""

import numpy as np
import pytest

from directanimator import evaluate as E
from directanimator.errors import InputError
from directanimator.metrics import dwpose
from directanimator.metrics.suite import Evaluator
from directanimator.metrics.tables import markdown_tables, summarize
from eval_weights import write_arcface_onnx, write_dwpose_onnx, write_yolox_onnx

W, H = 320, 240
BOX = (100, 40, 180, 200)  # the person, frame pixels; the detector canvas is 2x (640 / 320)
FIXED = {0: (50, 60), 2: (200, 300), 4: (240, 80), 23: (40, 40), 25: (250, 350)}  # crop pixels
DOT = (139.5, 119.5)


def _crop_to_frame(u, v):
    # box centre (140, 120), 80x160 grown 1.25x -> 100x200, widened to 288:384 -> 150x200: 1.92 crop px per frame px
    return (u - 144) / 1.92 + 140, (v - 192) / 1.92 + 120


def _frames(dx=0, t=2):
    f = np.full((t, H, W, 3), 20, np.uint8)
    f[:, 118:122, 138 + dx : 142 + dx] = 255
    return f


@pytest.fixture(scope="module")
def wdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    (d / "dwpose").mkdir()
    write_yolox_onnx(d / "dwpose" / "yolox_l.onnx", [2 * c for c in BOX])
    write_dwpose_onnx(d / "dwpose" / "dw-ll_ucoco_384.onnx", FIXED)
    return d


def test_decode_simcc():
    sx, sy = np.zeros((3, 576)), np.zeros((3, 768))
    sx[0, 101], sy[0, 40] = 0.9, 0.6  # (50.5, 20), score min(0.9, 0.6)
    sx[1, 575], sy[1, 767] = 0.2, 0.7
    sx[2] -= 1  # nothing positive: not found
    locs, score = dwpose.decode_simcc(sx, sy)
    assert locs[0].tolist() == [50.5, 20.0] and locs[1].tolist() == [287.5, 383.5]
    assert score[:2].tolist() == pytest.approx([0.6, 0.2]) and np.isnan(locs[2]).all()
    assert (dwpose.BODY.start, dwpose.BODY.stop, dwpose.FACE.start, dwpose.FACE.stop) == (0, 17, 23, 91)


def test_detector_and_pose_model_geometry(wdir):
    model = dwpose.DWPose(wdir / "dwpose" / "yolox_l.onnx", wdir / "dwpose" / "dw-ll_ucoco_384.onnx")
    frame = _frames(t=1)[0]
    assert model.detect(frame) == pytest.approx(BOX, abs=1e-3)
    kp = model.keypoints(frame)
    assert kp.shape == (133, 3)
    for k, (u, v) in FIXED.items():
        assert kp[k, :2] == pytest.approx(_crop_to_frame(u, v), abs=1e-3), k
        assert kp[k, 2] > 100
    moving = [k for k in range(133) if k not in FIXED]
    assert np.abs(kp[moving, :2] - DOT).max() < 1.5 and (kp[moving, 2] > 5).all()


def test_wrong_or_damaged_models_name_the_file(wdir, tmp_path):
    write_arcface_onnx(tmp_path / "arc.onnx")
    det = wdir / "dwpose" / "yolox_l.onnx"
    with pytest.raises(InputError, match="arc.onnx is not the DWPose whole-body model"):
        dwpose.DWPose(det, tmp_path / "arc.onnx")
    with pytest.raises(InputError, match="arc.onnx is not the DWPose YOLOX detector"):
        dwpose.DWPose(tmp_path / "arc.onnx", wdir / "dwpose" / "dw-ll_ucoco_384.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot load the DWPose pose model .*bad.onnx"):
        dwpose.DWPose(det, tmp_path / "bad.onnx")


def test_plc_flc_with_dwpose_in_the_evaluator(wdir, monkeypatch):
    monkeypatch.delenv("DIRECTANIMATOR_WEIGHTS", raising=False)
    ev = Evaluator([wdir], device="cpu", metrics=["plc", "flc"])
    assert ev.landmarks == "dwpose"
    drv = _frames()
    same = ev.evaluate_video(drv, drv)
    assert same["metrics"] == {"plc": 0.0, "flc": 0.0}
    assert same["details"]["plc"]["estimator"] == "dwpose" and same["details"]["flc"]["frames_used"] == 2
    shifted = ev.evaluate_video(_frames(dx=40), drv, driving=drv)
    # body: 3 fixed keypoints + 14 on the dot, which moved 40 px; normalised by the driving body's box diagonal
    body = np.array([_crop_to_frame(*FIXED[k]) for k in (0, 2, 4)] + [DOT])
    diag = np.linalg.norm(body.max(0) - body.min(0))
    assert shifted["metrics"]["plc"] == pytest.approx(14 * 40 / (17 * diag), rel=0.03)
    face = np.array([_crop_to_frame(*FIXED[k]) for k in (23, 25)] + [DOT])
    diag = np.linalg.norm(face.max(0) - face.min(0))
    assert shifted["metrics"]["flc"] == pytest.approx(66 * 40 / (68 * diag), rel=0.03)
    assert shifted["details"]["flc"]["against"] == "driving"
    # the summaries and the table say which estimator produced the numbers
    summary = summarize({"a": same, "b": shifted}, ["plc", "flc"])
    assert summary["metrics"]["plc"]["estimator"] == "dwpose" and summary["metrics"]["flc"]["videos"] == 2
    table = markdown_tables({"set": summary, "overall": summary}, "m")
    assert "PLC from dwpose; FLC from dwpose; dwpose: DWPose (yolox_l + dw-ll_ucoco_384" in table
    # forced MediaPipe: the same videos (no real person) give no landmarks, and say so
    mp = Evaluator([wdir], device="cpu", metrics=["plc"], landmarks="mediapipe").evaluate_video(drv, drv)
    assert "plc" not in mp["metrics"] and "(mediapipe)" in mp["skipped"]["plc"]


def test_dwpose_asked_for_without_its_files_and_check(wdir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DIRECTANIMATOR_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ev = Evaluator([tmp_path], device="cpu", metrics=["plc"], landmarks="dwpose")
    out = ev.evaluate_video(_frames(), _frames())
    assert "yolox_l.onnx" in out["skipped"]["plc"] and "huggingface.co/yzd-v/DWPose" in out["skipped"]["plc"]
    assert Evaluator([tmp_path], metrics=["plc"]).landmarks == "mediapipe"  # auto falls back
    assert E.main(["--check", "--weights-dir", str(wdir)]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if len(line.split()) > 1}
    assert lines["plc"].startswith("ready") and "dw-ll_ucoco_384.onnx" in lines["plc"] and "dwpose:" in lines["flc"]
    # the Hugging Face cache is a usual home
    snap = tmp_path / "hf" / "hub" / "models--yzd-v--DWPose" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    for name in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx"):
        (snap / name).write_bytes((wdir / "dwpose" / name).read_bytes())
    assert Evaluator([], metrics=["plc"]).landmarks == "dwpose"
