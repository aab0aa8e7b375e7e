"""The evaluation CLI (``python -m directanimator.evaluate``) on tiny folders of videos written with write_video."""

import json

import numpy as np
import pytest

from directanimator import evaluate as E
from directanimator.video import write_video
from eval_weights import write_arcface_onnx, write_inception_weights, write_lpips_weights, write_scrfd_onnx

from PIL import Image


def _clip(seed, t=5, side=64):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, size=(1, side, side, 3))
    drift = rng.integers(-8, 9, size=(t, 1, 1, 3))
    return np.clip(base + drift, 0, 255).astype(np.uint8)


@pytest.fixture()
def folders(tmp_path):
    """Two datasets ("tiktok": 2 videos, "unseen": 1): ground truth, generated = ground truth + noise (one video
    identical), references (the first ground-truth frame)."""
    gen, gt, ref = tmp_path / "gen", tmp_path / "gt", tmp_path / "ref"
    rng = np.random.default_rng(0)
    for i, name in enumerate(("tiktok/a", "tiktok/b", "unseen/c")):
        truth = _clip(i)
        noisy = truth if name == "tiktok/a" else np.clip(truth + rng.integers(-20, 21, truth.shape), 0, 255).astype(np.uint8)
        write_video(gt / f"{name}.mp4", truth, fps=8, crf=0)
        write_video(gen / f"{name}.mp4", noisy, fps=8, crf=0)
        (ref / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(truth[0]).save(ref / f"{name}.png")
    return tmp_path


def test_cli_writes_results_and_tables_per_dataset_and_overall(folders, capsys):
    out = folders / "results"
    rc = E.main(["--generated", str(folders / "gen"), "--ground-truth", str(folders / "gt"),
                 "--references", str(folders / "ref"), "--out", str(out), "--name", "tiny"])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    assert set(data["datasets"]) == {"tiktok", "unseen"} and data["overall"]["videos"] == 3
    assert set(data["videos"]) == {"tiktok/a", "tiktok/b", "unseen/c"}
    tik = data["datasets"]["tiktok"]["metrics"]
    assert 0 < tik["ssim"]["mean"] < 1 and tik["l1"]["mean"] > 0
    # mean over the dataset's videos
    per = [data["videos"][n]["metrics"]["ssim"] for n in ("tiktok/a", "tiktok/b")]
    assert tik["ssim"]["mean"] == pytest.approx(np.mean(per))
    assert data["videos"]["tiktok/a"]["metrics"]["ssim"] > 0.99  # identical up to the codec
    # absent metrics: named with a reason, never a number
    absent = data["overall"]["absent"]
    assert {"fid", "fvd", "lpips", "fis", "fts"} <= set(absent)
    assert "alexnet-owt-7be5be79.pth" in absent["lpips"] and "pt_inception-2015-12-05" in absent["fid"]
    assert "i3d_pretrained_400.pt" in absent["fvd"]
    assert not set(absent) & set(data["overall"]["metrics"])
    # random-noise frames hold no person: PLC/FLC are absent for that reason, not NaN
    assert "no frame had a body" in absent["plc"]
    assert "NaN" not in (out / "results.json").read_text()
    table = (out / "results.md").read_text()
    assert "| Dataset | Videos | FID ↓ | SSIM ↑ | PSNR ↑ | LPIPS ↓ | L1(E-04) ↓ | FIS ↑ | FTS ↑ | FVD ↓ |" in table
    assert "| Dataset | Videos | PLC ↓ | FLC ↓ |" in table
    assert "| tiktok | 2 |" in table and "| unseen | 1 |" in table and "| overall | 3 |" in table
    assert "n/a [" in table and " nan" not in table.lower()
    printed = capsys.readouterr()
    assert "results.json" in printed.out and "lpips" in printed.err  # missing weights are warned about


def test_cli_runs_fid_lpips_and_face_metrics_when_their_weights_are_present(folders, tmp_path):
    pytest.importorskip("onnxruntime")
    wdir = tmp_path / "weights"
    write_lpips_weights(wdir)
    write_inception_weights(wdir / "pt_inception-2015-12-05-6726825d.pth")
    (wdir / "buffalo_l").mkdir()
    write_arcface_onnx(wdir / "buffalo_l" / "w600k_r50.onnx")
    write_scrfd_onnx(wdir / "buffalo_l" / "det_10g.onnx", 640, np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7],
                                                                         [41.5, 92.4], [70.7, 92.2]]) * 4)
    out = tmp_path / "res"
    rc = E.main(["--generated", str(folders / "gen"), "--ground-truth", str(folders / "gt"), "--references",
                 str(folders / "ref"), "--out", str(out), "--weights-dir", str(wdir),
                 "--metrics", "fid,lpips,fis,fts,ssim"])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    m = data["overall"]["metrics"]
    assert set(m) == {"fid", "lpips", "fis", "fts", "ssim"} and not data["missing_weights"]
    # FID is one number per dataset over its frames (not a mean of per-video numbers): unseen has 1 video
    assert m["fid"]["videos"] == 3 and data["datasets"]["unseen"]["metrics"]["fid"]["videos"] == 1
    assert m["fid"]["mean"] > 0 and "fid" not in data["videos"]["tiktok/a"]["metrics"]
    assert "features" not in data["videos"]["tiktok/a"]
    assert data["videos"]["tiktok/a"]["metrics"]["lpips"] < 0.01 < data["videos"]["tiktok/b"]["metrics"]["lpips"]
    assert -1 <= m["fis"]["mean"] <= 1 and m["fts"]["mean"] > 0.5
    assert "lpips" in data["seconds"]["per_video_by_stage"]


def test_check_lists_ready_missing_broken_and_not_available(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DIRECTANIMATOR_WEIGHTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    wdir = tmp_path / "w"
    alex, _ = write_lpips_weights(wdir)
    assert E.main(["--check", "--weights-dir", str(wdir)]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if len(line.split()) > 1}
    assert lines["ssim"].startswith("ready") and lines["lpips"].startswith("ready")
    assert lines["fis"].startswith("missing") and "buffalo_l.zip" in lines["fis"]
    assert lines["fid"].startswith("missing") and "pt_inception-2015-12-05-6726825d.pth" in lines["fid"]
    assert lines["fvd"].startswith("missing") and "i3d_pretrained_400.pt" in lines["fvd"]
    assert "mediapipe" in lines["plc"]
    alex.write_bytes(b"garbage")
    assert E.main(["--check", "--weights-dir", str(wdir)]) == 0
    broken = [line for line in capsys.readouterr().out.splitlines() if line.split()[1:2] == ["lpips"]][0]
    assert broken.startswith("broken") and "alexnet-owt-7be5be79.pth" in broken


def _run_error(argv, capsys):
    rc = E.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_bad_input_is_one_line_and_exit_2(folders, tmp_path, capsys):
    gen, gt = str(folders / "gen"), str(folders / "gt")
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = _run_error(["--generated", str(empty), "--ground-truth", gt, "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: no videos")
    # unmatched names are listed
    write_video(folders / "gen" / "unseen" / "extra.mp4", _clip(7), fps=8)
    rc, err = _run_error(["--generated", gen, "--ground-truth", gt, "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1 and "unseen/extra" in err[0] and "--ground-truth" in err[0]
    (folders / "gen" / "unseen" / "extra.mp4").unlink()
    # frame-count and size mismatches, per pair; --trim accepts the frame counts
    write_video(folders / "gt" / "unseen" / "c.mp4", _clip(2, t=7), fps=8, crf=0)
    write_video(folders / "gt" / "tiktok" / "b.mp4", _clip(1, side=96), fps=8)
    rc, err = _run_error(["--generated", gen, "--ground-truth", gt, "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1
    assert "tiktok/b (generated is 64x64, ground truth 96x96" in err[0] and "unseen/c (generated has 5 frames, ground truth 7" in err[0]
    write_video(folders / "gt" / "tiktok" / "b.mp4", _clip(1), fps=8)
    assert E.main(["--generated", gen, "--ground-truth", gt, "--out", str(tmp_path / "o"), "--trim",
                   "--metrics", "ssim"]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["videos"]["unseen/c"]["frames"] == 5
    # no inputs, unknown metric, --out a file
    rc, err = _run_error([], capsys)
    assert rc == 2 and len(err) == 1 and "--generated" in err[0]
    rc, err = _run_error(["--generated", gen, "--out", str(tmp_path / "o"), "--metrics", "fdi"], capsys)
    assert rc == 2 and len(err) == 1 and "unknown metric 'fdi'" in err[0]
    (tmp_path / "file").write_text("x")
    rc, err = _run_error(["--generated", gen, "--out", str(tmp_path / "file")], capsys)
    assert rc == 2 and "is a file" in err[0]
    assert not list(tmp_path.glob("**/.*.tmp*"))  # nothing half-written


def test_corrupt_weight_file_stops_the_run_with_one_line(folders, tmp_path, capsys):
    wdir = tmp_path / "w"
    alex, _ = write_lpips_weights(wdir)
    alex.write_bytes(alex.read_bytes()[:500])
    rc, err = _run_error(["--generated", str(folders / "gen"), "--ground-truth", str(folders / "gt"), "--out",
                          str(tmp_path / "o"), "--weights-dir", str(wdir), "--metrics", "lpips"], capsys)
    assert rc == 2 and len(err) == 1 and "alexnet-owt-7be5be79.pth" in err[0]
    assert not (tmp_path / "o" / "results.json").exists()
