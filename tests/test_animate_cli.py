"""python -m directanimator.animate: a cue folder + a tiny model folder -> mp4; clear errors (exit 2)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

from directanimator.animate import main
from directanimator.video import read_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_tiny_pipeline(root / "model")
    tiny_driving_cues(num_frames=9, fps=8.0).save(root / "cues")
    return root


def test_cli_on_a_cue_folder_writes_an_mp4(folders, capsys):
    out = folders / "result.mp4"
    code = main(["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out", str(out),
                 "--steps", "2", "--seed", "1", "--cue-scale", "1,0.5"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    video = read_video(str(out))
    assert video.frames.shape == (9, 32, 48, 3) and abs(video.fps - 8.0) < 1e-3
    out7 = folders / "result7.mp4"
    assert main(["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out", str(out7),
                 "--steps", "1", "--frames", "7"]) == 0
    assert read_video(str(out7)).frames.shape[0] == 7
    # the same call through another attention kernel gives the same video (to codec noise)
    out_math = folders / "result_math.mp4"
    assert main(["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out", str(out_math),
                 "--steps", "1", "--frames", "7", "--attention-backend", "_native_math"]) == 0
    diff = read_video(str(out_math)).frames.astype(int) - read_video(str(out7)).frames.astype(int)
    assert abs(diff).max() <= 2


def test_two_identical_calls_in_one_process_give_the_same_video(folders):
    # before write_video turned x264's mbtree off (it reads an uninitialised stack value), the second of two
    # identical calls could be encoded differently: demo-model videos 1-1.7/255 apart on average
    videos = []
    for name in ("same_a.mp4", "same_b.mp4"):
        out = folders / name
        assert main(["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out", str(out),
                     "--steps", "2", "--seed", "5"]) == 0
        videos.append(read_video(str(out)).frames)
    assert videos[0].shape == (9, 32, 48, 3)
    assert np.array_equal(videos[0], videos[1])
    assert (folders / "same_a.mp4").read_bytes() == (folders / "same_b.mp4").read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--model", "{root}/nowhere"], "does not exist"),
    (["--model", "nobody/not-cached"], "Hugging Face cache"),
    (["--steps", "0"], "--steps"),
    (["--cue-scale", "a,b"], "--cue-scale"),
    (["--window-frames", "10"], "--window-frames must be 1 + 4k"),
    (["--window-frames", "13", "--window-overlap", "2"], "window_overlap"),
    (["--attention-backend", "fastest"], "unknown attention backend"),
    (["--attention-backend", "_native_cudnn", "--device", "cpu"], "needs a CUDA GPU"),
])
def test_cli_errors_are_one_line_exit_2(folders, capsys, extra, message):
    args = {"--driving": str(folders / "cues"), "--model": str(folders / "model"),
            "--out": str(folders / "bad.mp4"), "--steps": "1"}
    for k, v in zip(extra[::2], extra[1::2]):
        args[k] = v.format(root=folders)
    code = main([x for kv in args.items() for x in kv])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]  # model loading may draw progress bars on stderr before the check
    assert last.startswith("error: ") and message in last and "Traceback" not in err
    assert not (folders / "bad.mp4").exists()


def test_cli_video_without_reference_and_module_entry_point(folders):
    proc = subprocess.run(
        [sys.executable, "-m", "directanimator.animate", "--driving", os.path.join(ROOT, "examples",
         "driving_synthetic.mp4"), "--model", str(folders / "model"), "--out", str(folders / "x.mp4")],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --reference is needed when --driving is a video (only cue folders carry one)"
    assert not np.any([p.name == "x.mp4" for p in folders.iterdir()])


@pytest.mark.slow
def test_cli_on_a_driving_video_extracts_cues_and_keeps_audio(folders):
    out = folders / "from_video.mp4"
    code = main(["--reference", os.path.join(ROOT, "examples", "reference_synthetic.png"),
                 "--driving", os.path.join(ROOT, "examples", "driving_synthetic.mp4"),
                 "--model", str(folders / "model"), "--out", str(out), "--steps", "1", "--frames", "5",
                 "--size", "64", "--save-cues", str(folders / "video_cues")])
    assert code == 0
    video = read_video(str(out))
    source = read_video(os.path.join(ROOT, "examples", "driving_synthetic.mp4"), max_frames=5)
    assert video.frames.shape[0] == 5 and max(video.frames.shape[1:3]) == 64
    assert video.has_audio == source.has_audio
    assert (folders / "video_cues" / "cues.json").is_file()

    # the cue folder names its inputs by file name only, so it keeps the sound itself: a result made from the
    # folder alone, moved away from the driving video, still has it
    assert source.has_audio and (folders / "video_cues" / "audio.m4a").is_file()
    moved = folders / "elsewhere" / "cues"
    moved.parent.mkdir()
    os.replace(folders / "video_cues", moved)
    out2 = folders / "from_folder.mp4"
    assert main(["--driving", str(moved), "--model", str(folders / "model"), "--out", str(out2), "--steps", "1",
                 "--size", "64"]) == 0
    assert read_video(str(out2)).has_audio


@pytest.mark.slow
def test_cli_streams_a_long_driving_video_through_a_scratch_cue_folder(folders, monkeypatch, tmp_path):
    # clips over STREAM_FROM frames are extracted chunk by chunk into a cue folder (here a scratch one, removed
    # afterwards, or --save-cues) and the result is decoded and written a VAE batch at a time
    monkeypatch.setattr("directanimator.cues.stream.STREAM_FROM", 4)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    args = ["--reference", os.path.join(ROOT, "examples", "reference_synthetic.png"),
            "--driving", os.path.join(ROOT, "examples", "driving_synthetic.mp4"),
            "--model", str(folders / "model"), "--steps", "1", "--frames", "9", "--size", "64"]
    out = folders / "streamed.mp4"
    assert main([*args, "--out", str(out)]) == 0
    assert read_video(str(out)).frames.shape[0] == 9
    assert list(tmp_path.iterdir()) == []  # the scratch cue folder is gone
    saved = folders / "streamed_cues"
    assert main([*args, "--out", str(folders / "streamed2.mp4"), "--save-cues", str(saved)]) == 0
    meta = json.loads((saved / "cues.json").read_text())
    assert meta["settings"]["streamed"] and meta["num_frames"] == 9
    assert np.array_equal(read_video(str(folders / "streamed2.mp4")).frames, read_video(str(out)).frames)
