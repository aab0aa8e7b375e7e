"""Shot cuts in driving videos: ``directanimator.shots`` on synthetic and real clips with known cuts, the shot
choice and its errors, ``extract_cues(shot=...)`` and the CLIs' ``--shot``."""

import json
from pathlib import Path

import numpy as np
import pytest

from directanimator.cues import DrivingCues, extract_cues, rebuild_cues
from directanimator.errors import InputError
from directanimator.shots import Shot, choose_shot, detect_shots, parse_shot, pick_shot
from directanimator.video import fit_frames, read_video, write_video
from trainers.synthetic.world import render_clip

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"  # real footage: one woman walking, one shot, 10 fps
ASTRONAUT = ROOT / "examples" / "reference_astronaut.jpg"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # OpenCV's sample: a street, one static shot
needs_vtest = pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc's vtest.avi is not installed")


def world_clip(index, frames, size=96):
    """A synthetic-world dance: identity and motion ``index`` (each identity has its own background)."""
    return render_clip(index, index, frames=frames, size=size, seed=0)[0]


def cuts(shots):
    return [s.start for s in shots[1:]]


@pytest.fixture(scope="module")
def walk():
    return read_video(WALK)


@pytest.fixture(scope="module")
def vtest():
    return read_video(VTEST, max_frames=60)


@pytest.fixture(scope="module")
def two_shot(walk, vtest):
    """A real two-shot clip at 10 fps: 30 frames of the walk (the person), then 20 of the street of vtest.avi,
    cropped and resized to the walk's 512x512."""
    street = fit_frames(vtest.frames[:20], walk.height, walk.width, policy="crop")
    return np.concatenate([walk.frames[:30], street])


# --- detect_shots -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lengths", [(14, 14), (12, 9, 15), (10, 10, 10, 10)])
def test_synthetic_cuts_are_found_where_they_are(lengths):
    clip = np.concatenate([world_clip(i, n) for i, n in enumerate(lengths)])
    found = cuts(detect_shots(clip, fps=8.0))
    expected = list(np.cumsum(lengths)[:-1])
    assert len(found) == len(expected), found
    assert all(abs(a - b) <= 1 for a, b in zip(found, expected)), (found, expected)


def test_shots_cover_the_clip_and_a_clip_without_cut_is_one_shot(walk):
    shots = detect_shots(walk.frames, walk.fps)
    assert shots == [Shot(0, walk.num_frames)]
    clip = np.concatenate([world_clip(0, 10), world_clip(1, 7)])
    shots = detect_shots(clip, 8.0)
    assert shots[0].start == 0 and shots[-1].end == len(clip)
    assert all(a.end == b.start for a, b in zip(shots[:-1], shots[1:]))


@needs_vtest
def test_real_single_shot_clip(vtest):
    assert detect_shots(vtest.frames, vtest.fps) == [Shot(0, vtest.num_frames)]


@needs_vtest
def test_real_two_shot_clip(two_shot):
    assert cuts(detect_shots(two_shot, 10.0)) == [30]


MEGAMIND = VTEST.parent / "Megamind.avi"  # OpenCV's sample trailer: 270 frames with three hard cuts


@pytest.mark.skipif(not MEGAMIND.is_file(), reason="opencv-doc's Megamind.avi is not installed")
def test_real_trailer_cuts():
    video = read_video(MEGAMIND, max_side=512)
    # checked by eye on the frames either side: a woman at a table, a man, her again, him in close-up
    assert cuts(detect_shots(video.frames, video.fps)) == [98, 154, 200]


def test_a_stream_gives_the_same_shots_as_the_array(walk):
    clip = np.concatenate([walk.frames[:20], world_clip(2, 12, size=128)[:, :, :, ::-1].repeat(4, 1).repeat(4, 2)])
    frames = (f for f in clip)  # a generator: no length, no indexing
    assert detect_shots(frames, 10.0) == detect_shots(clip, 10.0) == [Shot(0, 20), Shot(20, 32)]


def test_a_slow_pan_and_a_fade_are_not_cuts(walk):
    image = walk.frames[0]
    pan = np.stack([image[100:356, 4 * t:4 * t + 256] for t in range(60)])  # 4 px a frame, 240 px in all
    assert detect_shots(pan, 10.0) == [Shot(0, 60)]
    ramp = np.linspace(1.0, 0.0, 20)[:, None, None, None]  # a fade out to black at the end of the clip
    fade = (walk.frames[24].astype(np.float32) * ramp).round().astype(np.uint8)
    assert detect_shots(np.concatenate([walk.frames[:24], fade, fade[-1:].repeat(5, 0)]), 10.0) == [Shot(0, 49)]
    # a fade to black and a fade in from it is one change of shot, not a string of cuts (nor a black shot)
    other = np.repeat(np.repeat(world_clip(3, 20, size=128), 4, 1), 4, 2)
    ramp = np.linspace(1.0, 0.0, 10)[:, None, None, None]
    out = (walk.frames[23].astype(np.float32) * ramp).round().astype(np.uint8)
    into = (other[0].astype(np.float32) * ramp[::-1]).round().astype(np.uint8)
    shots = detect_shots(np.concatenate([walk.frames[:24], out, into[1:], other]), 10.0)
    assert len(shots) == 2 and abs(shots[1].start - 34) <= 1, shots  # at the first visible frame after black
    # nor is a cross-fade between two shots over 10 frames
    mix = np.linspace(0.0, 1.0, 10)[:, None, None, None]
    dissolve = (walk.frames[19] * (1 - mix) + other[0] * mix).round().astype(np.uint8)
    assert len(detect_shots(np.concatenate([walk.frames[:20], dissolve, other]), 10.0)) <= 2


def test_detect_shots_bad_input():
    with pytest.raises(InputError, match="no frames"):
        detect_shots(np.zeros((0, 32, 32, 3), np.uint8), 10.0)
    with pytest.raises(InputError, match=r"frame 0 .* uint8"):
        detect_shots(np.zeros((2, 32, 32, 3), np.float32), 10.0)
    with pytest.raises(InputError, match="fps"):
        detect_shots(np.zeros((2, 32, 32, 3), np.uint8), 0.0)
    assert detect_shots(np.zeros((1, 32, 32, 3), np.uint8), 10.0) == [Shot(0, 1)]


# --- choose_shot --------------------------------------------------------------------------------------------------


def test_choose_shot_rules():
    shots = [Shot(0, 12), Shot(12, 40), Shot(40, 68), Shot(68, 70)]
    assert choose_shot(shots) == choose_shot(shots, "longest") == Shot(12, 40)  # the first of two equals
    assert choose_shot(shots, "all") == Shot(0, 70)
    assert choose_shot(shots, 3) == choose_shot(shots, "3") == Shot(40, 68)
    assert choose_shot(shots, 4) == Shot(68, 70)  # asked for by number: used even though it is short
    assert choose_shot([Shot(0, 5)]) == Shot(0, 5)  # a short clip of one shot is not "all cuts"
    assert parse_shot(" Longest ") == "longest" and parse_shot("ALL") == "all" and parse_shot(np.int64(2)) == 2


def test_choose_shot_errors():
    shots = [Shot(0, 12), Shot(12, 40)]
    with pytest.raises(InputError) as e:
        choose_shot(shots, 3)
    assert str(e.value) == ("there is no shot 3: the driving video has 2 shots (1: frames 0-11 (12 frames); "
                            "2: frames 12-39 (28 frames))")
    cut_up = [Shot(0, 6), Shot(6, 14), Shot(14, 18)]
    with pytest.raises(InputError) as e:
        choose_shot(cut_up)
    assert str(e.value).startswith("the driving video is all cuts: its longest shot is frames 6-13 (8 frames) of 3")
    assert choose_shot(cut_up, "all") == Shot(0, 18)  # asked for: every frame
    for bad in ("0", 0, -1, "first", "1.5", ""):
        with pytest.raises(InputError, match="shot must be 'longest', 'all' or a shot number"):
            choose_shot(shots, bad)


def test_pick_shot_records_the_choice():
    clip = np.concatenate([world_clip(0, 10), world_clip(1, 16)])
    frames, choice = pick_shot(clip, 8.0)
    assert frames.shape[0] == 16 and np.shares_memory(frames, clip)
    np.testing.assert_array_equal(frames, clip[10:])
    assert choice.to_dict() == {"mode": "longest", "found": [[0, 10], [10, 26]], "used": [10, 26], "source_fps": 8.0}
    assert choice.warning() == ("the driving video has 2 shots; using shot 2 (frames 10-25, 2.0 s), the longest; "
                                "--shot all keeps every frame")
    _, single = pick_shot(clip[:10], 8.0)
    assert single.warning() is None


# --- extract_cues -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cut_cues(walk, vtest):
    """Cues of a 20 + 12 frame real clip: the walking woman, then the street: the longest shot is the first."""
    street = fit_frames(vtest.frames[:12], walk.height, walk.width, policy="crop")
    clip = np.concatenate([walk.frames[:20], street])
    return clip, extract_cues(str(ASTRONAUT), clip, size=128, fps=10.0)


@needs_vtest
def test_extract_cues_uses_the_longest_shot_and_records_it(cut_cues, tmp_path):
    clip, cues = cut_cues
    assert cues.num_frames == 20
    assert cues.settings["shots"] == {"mode": "longest", "found": [[0, 20], [20, 32]], "used": [0, 20],
                                      "source_fps": 10.0}
    assert cues.settings["warnings"][0] == ("the driving video has 2 shots; using shot 1 (frames 0-19, 2.0 s), the "
                                            "longest; --shot all keeps every frame")
    single = extract_cues(str(ASTRONAUT), clip[:20], size=128, fps=10.0)
    np.testing.assert_array_equal(single.pose_cue, cues.pose_cue)  # the same frames as the shot alone
    assert single.settings["shots"]["found"] == [[0, 20]] and not any("shot" in w for w in single.settings["warnings"])
    # the record survives save/load and rebuild_cues; a folder written before shots were recorded still loads
    cues.save(tmp_path / "cut")
    assert DrivingCues.load(tmp_path / "cut").settings["shots"] == cues.settings["shots"]
    assert rebuild_cues(cues, lowpass=0.2).settings["shots"] == cues.settings["shots"]
    meta = json.loads((tmp_path / "cut" / "cues.json").read_text())
    del meta["settings"]["shots"]
    (tmp_path / "cut" / "cues.json").write_text(json.dumps(meta))
    old = DrivingCues.load(tmp_path / "cut")
    assert "shots" not in old.settings and old.num_frames == 20


@needs_vtest
def test_extract_cues_other_shots_and_resampling(cut_cues):
    clip, _ = cut_cues
    with pytest.raises(InputError, match="no person found in the driving video"):  # shot 2 alone: the street
        extract_cues(str(ASTRONAUT), clip, size=128, fps=10.0, shot=2)
    drawn = np.concatenate([clip[:20], np.repeat(np.repeat(world_clip(1, 12, size=128), 4, 1), 4, 2)])
    second = extract_cues(str(ASTRONAUT), drawn, size=128, fps=10.0, shot="2")
    assert second.num_frames == 12 and second.settings["shots"]["used"] == [20, 32]
    assert "using shot 2 (frames 20-31, 1.2 s), as asked" in second.settings["warnings"][0]
    mixed = extract_cues(str(ASTRONAUT), clip, size=128, fps=10.0, shot="all", max_frames=25)
    assert mixed.num_frames == 25 and mixed.settings["shots"]["used"] == [0, 32]
    assert any("every frame is kept: the motion mixes shots" in w for w in mixed.settings["warnings"])
    # the shot is chosen at the clip's own rate, then resampled: 20 frames at 10 fps -> 10 at 5 fps
    video = read_video(clip)
    half = extract_cues(str(ASTRONAUT), type(video)(clip, 10.0), size=128, fps=5.0)
    assert half.num_frames == 10 and half.fps == 5.0 and half.settings["shots"]["found"] == [[0, 20], [20, 32]]
    with pytest.raises(InputError, match="there is no shot 3"):
        extract_cues(str(ASTRONAUT), clip, size=128, fps=10.0, shot=3)


def test_a_single_frame_is_one_shot(walk):
    cues = extract_cues(str(ASTRONAUT), walk.frames[:1], size=64)  # a bare array: taken at the fallback 25 fps
    assert cues.num_frames == 1
    assert cues.settings["shots"] == {"mode": "longest", "found": [[0, 1]], "used": [0, 1], "source_fps": 25.0}


def all_cuts_clip(path):
    """5 shots of 4 frames each (every one too short to carry a motion), written as an mp4 at 8 fps."""
    frames = np.concatenate([world_clip(i, 4, size=128) for i in range(5)])
    return write_video(path, frames, 8.0)


def test_extract_cues_refuses_a_clip_of_cuts(tmp_path):
    with pytest.raises(InputError, match=r"all cuts: its longest shot is frames \d+-\d+ \(4 frames\)"):
        extract_cues(str(ASTRONAUT), all_cuts_clip(tmp_path / "cuts.mp4"), size=128)


# --- the CLIs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["cues", "animate"])
@pytest.mark.parametrize("value", ["0", "-2", "second"])
def test_cli_shot_validation(module, value, tmp_path, capsys):
    if module == "cues":
        from directanimator.cues.__main__ import main

        argv = [str(ASTRONAUT), str(WALK), "--out", str(tmp_path / "o"), "--shot", value]
    else:
        from directanimator.animate import main

        argv = ["--reference", str(ASTRONAUT), "--driving", str(WALK), "--out", str(tmp_path / "o.mp4"),
                f"--shot={value}"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: --shot must be 'longest', 'all' or a shot number"), err


@needs_vtest
def test_cues_cli_all_cuts_and_shot_lines(tmp_path, capsys, walk, vtest):
    from directanimator.cues.__main__ import main

    code = main([str(ASTRONAUT), all_cuts_clip(tmp_path / "cuts.mp4"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and err.startswith("error: the driving video is all cuts"), err
    assert not (tmp_path / "o").exists()
    street = fit_frames(vtest.frames[:12], walk.height, walk.width, policy="crop")
    drv = write_video(tmp_path / "two.mp4", np.concatenate([walk.frames[:8:2], street[:8:2], walk.frames[20:40]]),
                      10.0)
    code = main([str(ASTRONAUT), drv, "--out", str(tmp_path / "o"), "--size", "128", "--no-preview"])
    out = capsys.readouterr().out
    assert code == 0
    assert ("the driving video has 3 shots:\n  shot 1: frames 0-3 (4 frames, 0.4 s)\n  shot 2: frames 4-7 (4 frames, "
            "0.4 s)\n  shot 3: frames 8-27 (20 frames, 2.0 s)  <- used\n") in out
    assert "warning: the driving video has 3 shots; using shot 3 (frames 8-27, 2.0 s), the longest" in out
    assert DrivingCues.load(tmp_path / "o").num_frames == 20


def test_a_later_shot_is_used_without_the_audio_that_does_not_line_up(tmp_path):
    synth = read_video(ROOT / "examples" / "driving_synthetic.mp4")  # a drawn figure, with an audio track
    assert synth.has_audio
    intro = fit_frames(world_clip(2, 6, size=128), synth.height, synth.width, policy="pad")
    drv = write_video(tmp_path / "intro.mp4", np.concatenate([intro, synth.frames[:24]]), synth.fps,
                      audio_from=synth.source)
    cues = extract_cues(str(ASTRONAUT), drv, size=64)
    assert cues.settings["shots"]["used"] == [6, 30] and cues.num_frames == 24
    assert not cues.settings["driving_has_audio"] and cues.audio_source is None
    assert any(w.startswith("the result is silent: the driving audio does not line up with a shot that starts at "
                            "0.4 s") for w in cues.settings["warnings"])
    first = extract_cues(str(ASTRONAUT), synth.source, size=64, max_frames=8)
    assert first.settings["driving_has_audio"] and first.audio_source == synth.source


@needs_vtest
def test_app_extraction_says_which_shot_and_offers_each(tmp_path, walk, vtest):
    from ui.cue_handlers import extract_cues as app_extract

    street = fit_frames(vtest.frames[:12], walk.height, walk.width, policy="crop")
    drv = write_video(tmp_path / "two.mp4", np.concatenate([walk.frames[:20], street]), 10.0)
    args = ("mediapipe", "mediapipe", 0.5, 1.6, 16, 0, 0, None)
    with pytest.warns(UserWarning, match="the driving video has 2 shots; using shot 1"):
        out = app_extract(str(ASTRONAUT), drv, *args, "longest", progress=lambda *a, **k: None)
    session, report, shot = out[0], out[5], out[-1]
    assert session.cues.num_frames == 20
    assert "The driving video has **2 shots**; **shot 1** (source frames 0-19) is used, the longest" in report
    assert shot["choices"] == ["longest", "all", "1", "2"]
    with pytest.warns(UserWarning, match="every frame is kept"):
        out = app_extract(str(ASTRONAUT), drv, *args, "all", progress=lambda *a, **k: None)
    assert out[0].cues.num_frames == 32 and "every frame is used (Shot: all)" in out[5]
