"""``python -m directanimator.cues``: writes a loadable cue folder and a preview; bad input -> one line, exit 2."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from directanimator.cues import DrivingCues
from directanimator.cues.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"
ASTRONAUT = ROOT / "examples" / "reference_astronaut.jpg"


def test_cli_writes_cue_folder_and_preview(tmp_path, capsys):
    out = tmp_path / "out" / "cues"
    code = main([str(ASTRONAUT), str(WALK), "--out", str(out), "--frames", "4", "--size", "192", "--lowpass", "0.7",
                 "--grid", "8"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["cues.json", "cues.safetensors", "frames", "preview.mp4"]
    cues = DrivingCues.load(out)
    assert cues.num_frames == 4 and (cues.height, cues.width) == (192, 192)
    assert cues.settings["lowpass"] == 0.7 and cues.settings["grid"] == 8
    assert cues.settings["driving_path"].endswith("driving_walk.mp4")
    for stage in ("segment", "faces", "pose", "face", "location", "preview", "triplet"):
        assert stage in captured.out
    assert "dropped frames: 0/4" in captured.out
    # the alignment mode used, and why (the astronaut photo is cut by its bottom edge)
    assert f"alignment used: {cues.settings['alignment_used']} (" in captured.out
    assert "reference cut by the bottom edge" in captured.out and cues.settings["alignment"] == "auto"
    # nothing else left next to the output (no temp folders)
    assert [p.name for p in out.parent.iterdir()] == ["cues"]
    # running again replaces the earlier cue folder
    assert main([str(ASTRONAUT), str(WALK), "--out", str(out), "--frames", "3", "--size", "128",
                 "--no-preview", "--threads", "1"]) == 0
    assert DrivingCues.load(out).num_frames == 3 and not (out / "preview.mp4").exists()


def _bad(tmp_path, capsys, argv):
    out = tmp_path / "out"
    code = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert len(lines) == 1 and "Traceback" not in err
    assert "%|" not in err or "no person" in lines[0]  # fast input errors print no progress bar
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return lines[0]


def test_cli_missing_file(tmp_path, capsys):
    line = _bad(tmp_path, capsys, [str(ASTRONAUT), str(tmp_path / "nope.mp4")])
    assert "nope.mp4" in line
    line = _bad(tmp_path, capsys, [str(tmp_path / "nope.png"), str(WALK)])
    assert "nope.png" in line


def test_cli_corrupt_files(tmp_path, capsys):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    _bad(tmp_path, capsys, [str(ASTRONAUT), str(video)])
    image = tmp_path / "broken.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _bad(tmp_path, capsys, [str(image), str(WALK)])
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    assert "tiny.png" in _bad(tmp_path, capsys, [str(tiny), str(WALK)])
    unsupported = tmp_path / "notes.txt"
    unsupported.write_text("hello")
    _bad(tmp_path, capsys, [str(ASTRONAUT), str(unsupported)])


def test_cli_no_person(tmp_path, capsys):
    from directanimator.video import write_video

    empty = tmp_path / "lawn.mp4"
    write_video(empty, np.full((4, 96, 96, 3), 120, np.uint8), 10.0)
    line = _bad(tmp_path, capsys, [str(ASTRONAUT), str(empty)])
    assert "no person found in the driving video" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lawn.mp4"]


def test_cli_bad_settings_and_foreign_out_folder(tmp_path, capsys):
    line = _bad(tmp_path, capsys, [str(ASTRONAUT), str(WALK), "--lowpass", "3"])
    assert "low-pass" in line
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep")
    assert main([str(ASTRONAUT), str(WALK), "--out", str(foreign), "--frames", "2"]) == 2
    assert "not a cue folder" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("argv", [["--help"]])
def test_cli_runs_as_module(argv):
    result = subprocess.run([sys.executable, "-m", "directanimator.cues", *argv], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "--face-enlarge" in result.stdout


def test_cli_streams_with_stream_flag(tmp_path, capsys):
    out = tmp_path / "cues"
    code = main([str(ASTRONAUT), str(WALK), "--out", str(out), "--size", "64", "--stream", "--no-preview"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    cues = DrivingCues.load(out)
    assert cues.settings["streamed"] and cues.num_frames == 49 and "store" in captured.out
    # resampled while streaming: the frames --fps picks, at the new rate
    assert main([str(ASTRONAUT), str(WALK), "--out", str(tmp_path / "x"), "--size", "64", "--stream", "--fps", "5",
                 "--no-preview"]) == 0
    slow = DrivingCues.load(tmp_path / "x")
    assert slow.settings["streamed"] and slow.fps == 5.0 and slow.num_frames == math.ceil(49 * 5 / cues.fps - 1e-9)


def test_cli_long_clip_with_two_people_falls_back_to_memory(tmp_path, capsys, monkeypatch):
    # following one of several people is not streamed yet: a long clip showing two is extracted in memory, with a
    # note; with --stream it is one error line and nothing written
    from people_scenes import draw_people

    from directanimator.video import write_video

    monkeypatch.setattr("directanimator.cues.__main__.STREAM_FROM", 4)
    frames, _ = draw_people([(1, 0, 0.28, 1.0), (2, 1, 0.72, 0.85)], 12, 128)
    clip = write_video(tmp_path / "two.mp4", frames, fps=12)
    out = tmp_path / "cues"
    assert main([str(ASTRONAUT), clip, "--out", str(out), "--size", "64", "--no-preview", "--person", "2"]) == 0
    captured = capsys.readouterr()
    assert "note: the driving video shows 2 people" in captured.err and "extracted in memory" in captured.err
    cues = DrivingCues.load(out)
    assert not cues.settings.get("streamed") and cues.settings["person"]["chosen"] == 2
    assert main([str(ASTRONAUT), clip, "--out", str(tmp_path / "s"), "--size", "64", "--stream"]) == 2
    assert "2 people in its first frame" in capsys.readouterr().err and not (tmp_path / "s").exists()
