"""The paper's cross-ID protocol in one command (``python -m directanimator.evaluate protocol``): a dataset in the
training format, a tiny pipeline, real cue extraction on real footage, generation, then the evaluator."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from directanimator import evaluate as E
from directanimator.tiny import make_tiny_pipeline
from directanimator.video import read_video, write_video

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "tiktok_like"
    walk = read_video(str(EXAMPLES / "driving_walk.mp4"), max_side=128, max_frames=12).frames
    write_video(root / "clips" / "a.mp4", walk[:9], fps=8)
    write_video(root / "clips" / "b.mp4", walk[3:12], fps=8)
    write_video(root / "clips" / "c.mp4", walk[2:11], fps=8)
    write_video(root / "pseudo" / "a_by_b.mp4", walk[1:10], fps=8)  # "identity B" doing A's motion
    (root / "refs").mkdir()
    shutil.copy(EXAMPLES / "reference_grace_hopper.jpg", root / "refs" / "a.jpg")
    rows = [{"file_name": "clips/a.mp4", "identity": "id_a", "reference": "refs/a.jpg", "split": "test",
             "caption": "a person walking", "pseudo_driving": [{"file_name": "pseudo/a_by_b.mp4", "identity": "id_b"},
                                                               {"file_name": "clips/a.mp4", "identity": "id_a"}]},
            {"file_name": "clips/b.mp4", "identity": "id_b", "split": "test"},
            {"file_name": "clips/c.mp4", "identity": "id_b", "split": "train",
             "pseudo_driving": [{"file_name": "pseudo/a_by_b.mp4", "identity": "id_a"}]}]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_protocol_generates_the_cross_id_pairs_and_evaluates_them(dataset, tmp_path, capsys):
    model = tmp_path / "model"
    make_tiny_pipeline(model, seed=0)
    out = tmp_path / "out"
    argv = ["protocol", "--dataset", str(dataset), "--model", str(model), "--out", str(out), "--steps", "1",
            "--frames", "5", "--size", "64", "--metrics", "ssim,psnr,l1,fts"]
    assert E.main(argv) == 0, capsys.readouterr().err
    listing = json.loads((out / "pairs.json").read_text())
    # only the test clip's pseudo video of ANOTHER identity is a pair; the train row and same-ID entries are not
    assert [p["name"] for p in listing["pairs"]] == ["clips_a_by_id_b"] and not listing["left_out"]
    name = "tiktok_like/clips_a_by_id_b"
    gen = read_video(str(out / "generated" / f"{name}.mp4"), max_side=None).frames
    gt = read_video(str(out / "ground_truth" / f"{name}.mp4"), max_side=None).frames
    drv = read_video(str(out / "driving" / f"{name}.mp4"), max_side=None).frames
    assert gen.shape == gt.shape == drv.shape and len(gen) == 5
    assert (out / "references" / "tiktok_like" / "clips_a_by_id_b.png").is_file()
    # the ground truth is A's own clip (fitted like the driving frames), not the pseudo video
    walk = read_video(str(dataset / "clips" / "a.mp4"), max_side=None).frames[:5]
    from directanimator.video import fit_frames

    expected = fit_frames(walk, gt.shape[1], gt.shape[2], policy="pad").astype(int)
    assert np.abs(gt.astype(int) - expected).mean() < 3
    res = json.loads((out / "results" / "results.json").read_text())
    assert set(res["datasets"]) == {"tiktok_like"} and res["inputs"]["driving"].endswith("driving")
    assert {"ssim", "psnr", "l1"} <= set(res["overall"]["metrics"]) and "fts" in res["overall"]["absent"]
    assert "| tiktok_like | 1 |" in (out / "results" / "results.md").read_text()
    # a rerun resumes: nothing is generated again
    stamp = (out / "generated" / f"{name}.mp4").stat().st_mtime_ns
    assert E.main(argv) == 0
    assert (out / "generated" / f"{name}.mp4").stat().st_mtime_ns == stamp


def test_protocol_bad_input_is_one_line(dataset, tmp_path, capsys):
    no_pseudo = tmp_path / "np"
    shutil.copytree(dataset, no_pseudo)
    rows = [json.loads(line) for line in (no_pseudo / "metadata.jsonl").read_text().splitlines()]
    rows[0]["pseudo_driving"] = rows[0]["pseudo_driving"][1:]  # same identity only
    (no_pseudo / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for argv, message in (
            (["--dataset", str(no_pseudo)], "has a pseudo driving video of another identity"),
            (["--dataset", str(tmp_path / "missing")], "missing"),
            (["--dataset", str(dataset), "--steps", "0"], "--steps must be at least 1")):
        code = E.main(["protocol", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o"), *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
