"""Several people: finding them (drawn scenes and a real surveillance clip), choosing one, following the chosen one
through a clip, and the ``person`` / ``reference_person`` choice in extract_cues and the CLIs (MediaPipe for real)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from directanimator.cues.people import (Person, choose_person, describe_people, find_people, parse_person_spec,
                                        person_spec_json)
from directanimator.cues.segment import MediaPipeSegmenter
from directanimator.errors import InputError
from people_scenes import draw_people, iou

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

TWO = [(1, 0, 0.28, 1.0), (2, 1, 0.72, 0.85)]  # pink checks on the left (larger), green checks on the right
THREE = [(1, 0, 0.18, 0.7), (2, 1, 0.5, 0.8), (3, 2, 0.82, 0.6)]


@pytest.fixture(scope="module")
def segmenter():
    seg = MediaPipeSegmenter()
    yield seg
    seg.close()


@pytest.fixture(scope="module")
def vtest_frame():
    if not os.path.exists(VTEST):
        pytest.skip("OpenCV's vtest.avi is not installed (opencv-doc)")
    from directanimator.video import read_video

    return read_video(VTEST, max_side=512).frames[200]


def _match(people, truth):
    """For each ground-truth mask, the IoU of the best-matching person and that person's number."""
    out = []
    for gt in truth:
        scores = [iou(p.mask, gt) for p in people]
        out.append((max(scores), people[int(np.argmax(scores))].number))
    return out


# ---------------------------------------------------------------------------------------------------------------
# find_people


@pytest.mark.parametrize("scene", [TWO, THREE], ids=["two", "three"])
def test_find_drawn_people(segmenter, scene):
    frames, truth = draw_people(scene, 1, 256)
    people = find_people(frames[0], segmenter)
    assert len(people) == len(scene)
    matches = _match(people, truth[:, 0])
    assert all(score > 0.8 for score, _ in matches), matches
    assert sorted(n for _, n in matches) == list(range(1, len(scene) + 1))  # one person per drawn figure
    # Numbered largest first; boxes, masks and areas agree.
    assert [p.number for p in people] == list(range(1, len(people) + 1))
    assert all(a.area >= b.area for a, b in zip(people, people[1:]))
    for p in people:
        assert p.mask.shape == (256, 256) and p.mask.dtype == np.float32
        assert 0.0 <= p.mask.min() and p.mask.max() <= 1.0
        assert p.area == pytest.approx(float((p.mask > 0.5).mean()))
        ys, xs = np.nonzero(p.mask > 0.5)
        assert p.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    # No pixel belongs to two people.
    assert (np.sum([p.mask > 0.5 for p in people], axis=0) <= 1).all()


def test_find_people_max_people_and_empty(segmenter):
    frames, truth = draw_people(THREE, 1, 256)
    people = find_people(frames[0], segmenter, max_people=2)
    assert len(people) == 2
    assert find_people(np.full((128, 128, 3), 120, np.uint8), segmenter) == []
    with pytest.raises(InputError, match="max_people"):
        find_people(frames[0], segmenter, max_people=0)
    with pytest.raises(InputError, match="uint8 RGB"):
        find_people(frames[0].astype(np.float32), segmenter)


def test_find_people_in_real_surveillance_frame(segmenter, vtest_frame):
    people = find_people(vtest_frame, segmenter, max_people=6)
    # Frame 200 shows six walkers 40-90 px tall; the peeling finds the larger ones, HOG windows the rest.
    assert len(people) >= 4
    for p in people:
        x0, y0, x1, y1 = p.box
        assert 0.001 < p.area < 0.02  # small people, not the lawn or the road
        assert y1 - y0 > 1.2 * (x1 - x0)  # upright
    assert (np.sum([p.mask > 0.5 for p in people], axis=0) <= 1).all()


# ---------------------------------------------------------------------------------------------------------------
# choose_person


def _person(number, x0, y0, x1, y1, hw=(100, 200)):
    mask = np.zeros(hw, np.float32)
    mask[y0:y1, x0:x1] = 1.0
    return Person(number=number, box=(x0, y0, x1, y1), mask=mask, area=float(mask.mean()))


PEOPLE = [_person(1, 10, 10, 60, 90), _person(2, 90, 30, 115, 80), _person(3, 150, 40, 170, 70)]


def test_choose_person_specs():
    assert choose_person(PEOPLE, "largest", (100, 200)).number == 1
    assert choose_person(PEOPLE, "central", (100, 200)).number == 2  # centre (102.5, 55) near (100, 50)
    assert choose_person(PEOPLE, 3, (100, 200)).number == 3
    assert choose_person(PEOPLE, np.int64(2), (100, 200)).number == 2
    assert choose_person(PEOPLE, (160, 50), (100, 200)).number == 3  # a click on person 3
    assert choose_person(PEOPLE, [100.5, 60.0], (100, 200)).number == 2
    assert choose_person(PEOPLE, (61.5, 50), (100, 200)).number == 1  # just off the edge: still person 1


def test_choose_person_errors():
    with pytest.raises(InputError, match="no person found in the reference image"):
        choose_person([], "largest", (100, 200), what="the reference image")
    with pytest.raises(InputError, match=r"there is no person 4: found 3 people .*\(1: .*; 2: .*; 3: "):
        choose_person(PEOPLE, 4, (100, 200))
    with pytest.raises(InputError, match=r"no person there at \(130, 10\).*click on the 3 people outlined"):
        choose_person(PEOPLE, (130, 10), (100, 200))
    with pytest.raises(InputError, match="no person there"):
        choose_person(PEOPLE, (500, 500), (100, 200))  # outside the image
    for bad in ("biggest", 0, -1, True, 2.5, (1, 2, 3), ("a", "b"), None):
        with pytest.raises(InputError, match="'largest', 'central', a person number"):
            choose_person(PEOPLE, bad, (100, 200))


def test_choose_on_found_people(segmenter):
    frames, truth = draw_people(TWO, 1, 256)
    people = find_people(frames[0], segmenter)
    left = _match(people, truth[:, 0])[0][1]
    ys, xs = np.nonzero(truth[0, 0] > 0.9)
    click = (float(xs[len(xs) // 2]) + 0.5, float(ys[len(ys) // 2]) + 0.5)
    assert choose_person(people, click, (256, 256)).number == left
    with pytest.raises(InputError, match="no person there"):
        choose_person(people, (128, 3), (256, 256))  # the sky between their heads


def test_parse_person_spec_and_json():
    assert parse_person_spec("largest") == "largest" and parse_person_spec(" Central ") == "central"
    assert parse_person_spec("2") == 2
    assert parse_person_spec(None) is None and parse_person_spec(3) == 3
    for bad in ("0", "-1", "biggest", "1.5", ""):
        with pytest.raises(InputError, match="--person must be largest, central or a person number"):
            parse_person_spec(bad)
    assert person_spec_json("central") == "central" and person_spec_json(np.int32(3)) == 3
    assert person_spec_json((10, 20.5)) == [10.0, 20.5]
    assert describe_people(PEOPLE[:1]) == "1: 20.0% of the frame at x 10-60, y 10-90"


# ---------------------------------------------------------------------------------------------------------------
# following the chosen person through a crossing

# Pink checks walk right at the back, green checks walk left in front of them: they cross in the middle frames.
CROSSING = [(1, 0, (0.2, 0.8), 0.9), (2, 1, (0.8, 0.2), 0.85)]
# A reference photo with two other people (the one on the right is larger: person 1).
TWO_REFERENCE = [(3, 0, 0.3, 0.8), (4, 1, 0.72, 0.95)]


@pytest.fixture(scope="module")
def crossing():
    return draw_people(CROSSING, 16, 192)


def _check_followed(masks, truth, k):
    """The masks stay on drawn person ``k`` before, during and after the crossing, never on the other one."""
    full = (truth[k] > 0.5).sum(axis=(1, 2)).max()
    for t in range(len(masks)):
        mine = masks[t] > 0.5
        visible = (truth[k, t] > 0.5).sum() / full
        on_other = (mine & (truth[1 - k, t] > 0.5)).sum() / max(1, mine.sum())
        assert on_other < 0.2, (t, on_other)
        if visible > 0.6:
            assert iou(masks[t], truth[k, t]) > 0.75, (t, iou(masks[t], truth[k, t]))
        # Hidden behind the other one: an empty mask (dropped later) or a mask on the visible part.
        elif mine.any():
            assert iou(masks[t], truth[k, t]) > 0.3, t


@pytest.mark.parametrize("k", [0, 1], ids=["back", "front"])
def test_follow_person_through_crossing(segmenter, crossing, k):
    from directanimator.cues.person_track import follow_person

    frames, truth = crossing
    people = find_people(frames[0], segmenter)
    assert len(people) == 2
    start = max(people, key=lambda p: iou(p.mask, truth[k, 0]))
    track = follow_person(frames, segmenter, start)
    seg = track.segmentation
    assert seg.masks.shape == truth.shape[1:] and seg.scores.shape == (16,) and seg.facing.shape == (16,)
    _check_followed(seg.masks, truth, k)
    # Found again after the crossing, in the last frames.
    assert track.found[-4:].all() and track.found[:4].all()
    assert np.isnan(track.boxes[~track.found]).all() and np.isfinite(track.boxes[track.found]).all()
    assert (seg.scores[~track.found] == 0).all() and (seg.scores[track.found] > 0.5).all()


@pytest.fixture(scope="module")
def crossing_cues(crossing):
    from directanimator.cues import extract_cues

    reference, _ = draw_people(TWO_REFERENCE, 1, 192)
    return extract_cues(reference[0], crossing[0], size=192, fps=8.0, person=2, reference_person=2)


def test_extract_cues_follows_person_2(crossing, crossing_cues):
    frames, truth = crossing
    cues = crossing_cues
    assert (cues.height, cues.width) == (192, 192)
    record = cues.settings["person"]
    assert record["spec"] == 2 and record["chosen"] == 2 and len(record["people"]) == 2
    # Person 2 is the smaller one, at the back (drawn first).
    (ax0, _, ax1, _), (bx0, _, bx1, _) = record["people"]
    assert (ax1 - ax0) > (bx1 - bx0) and bx0 < ax0
    _check_followed(cues.driving_masks, truth, 0)
    # The frames where the person is hidden are dropped, the others kept.
    assert 1 <= cues.dropped.sum() <= 6 and not cues.dropped[:4].any() and not cues.dropped[-4:].any()
    assert any(w.startswith("2 people in the driving video; person 2 (chosen) drives; --person N or a click")
               for w in cues.settings["warnings"])


def test_extract_cues_reference_person(crossing_cues):
    _, ref_truth = draw_people(TWO_REFERENCE, 1, 192)
    cues = crossing_cues
    record = cues.settings["reference_person"]
    assert record["spec"] == 2 and record["chosen"] == 2 and len(record["people"]) == 2
    assert iou(cues.reference_mask, ref_truth[0, 0]) > 0.85  # person 2: the smaller one on the left
    assert "2 people in the reference image; person 2 (chosen) is animated" in " ".join(cues.settings["warnings"])


def test_person_record_round_trip_and_preview(crossing_cues, tmp_path):
    from directanimator.cues import DrivingCues
    from directanimator.cues.preview import chosen_person_note, preview_frame

    crossing_cues.save(tmp_path / "cues")
    loaded = DrivingCues.load(tmp_path / "cues")
    for key in ("person", "reference_person"):
        assert loaded.settings[key] == crossing_cues.settings[key]
    assert chosen_person_note(loaded) == "person 2 of 2"
    frame = preview_frame(loaded, 0)
    assert frame.shape == (192, 4 * 192, 3)
    # The chosen person's outline is drawn on the driving panel (pink pixels that the frame does not have).
    pink = np.all(frame[:, :192] == (255, 40, 160), axis=-1)
    assert pink.sum() > 50


def test_extract_cues_person_errors(crossing):
    from directanimator.cues import extract_cues

    frames, truth = crossing
    reference, _ = draw_people(TWO_REFERENCE, 1, 192)
    with pytest.raises(InputError, match="'largest', 'central', a person number"):
        extract_cues(reference[0], frames[:2], size=192, fps=8.0, person="biggest")
    with pytest.raises(InputError, match=r"there is no person 3: found 2 people in the first frame of the driving"):
        extract_cues(reference[0], frames[:2], size=192, fps=8.0, person=3)
    with pytest.raises(InputError, match=r"no person there at \(96, 4\) in the reference image"):
        extract_cues(reference[0], frames[:2], size=192, fps=8.0, reference_person=(96, 4))


def test_extract_cues_point_choice(crossing):
    from directanimator.cues import extract_cues

    frames, truth = crossing
    ys, xs = np.nonzero(truth[1, 0] > 0.9)
    click = (float(xs.mean()), float(ys[len(ys) // 2]))
    reference, _ = draw_people(TWO_REFERENCE, 1, 192)
    cues = extract_cues(reference[0], frames[:3], size=192, fps=8.0, person=click)
    assert cues.settings["person"]["spec"] == [click[0], click[1]] and cues.settings["person"]["chosen"] == 1
    assert all(iou(cues.driving_masks[t], truth[1, t]) > 0.75 for t in range(3))
    assert "person 1 (clicked) drives" in " ".join(cues.settings["warnings"])


def test_one_person_path_is_the_segmenters_own(segmenter):
    """One person: the masks are segment_video's, bit for bit, and the record says so."""
    from directanimator.cues import extract_cues, quantize_mask
    from directanimator.video import fit_frames, read_video, working_size

    walk = os.path.join(os.path.dirname(__file__), "..", "examples", "driving_walk.mp4")
    video = read_video(walk, max_side=1024)
    h, w = working_size(video.frames.shape[1], video.frames.shape[2], long_side=160)
    frames = fit_frames(video.frames[:6], h, w, policy="pad")
    cues = extract_cues(frames[0], frames, size=160, fps=10.0, segmenter=segmenter)
    assert np.array_equal(cues.driving_masks, quantize_mask(segmenter.segment_video(frames).masks))
    assert np.array_equal(cues.reference_mask, quantize_mask(segmenter.segment_image(frames[0]).masks[0]))
    assert cues.settings["person"]["chosen"] == 1 and len(cues.settings["person"]["people"]) == 1
    assert not any("people in" in w for w in cues.settings["warnings"])


# ---------------------------------------------------------------------------------------------------------------
# the CLIs


@pytest.fixture(scope="module")
def crossing_files(crossing, tmp_path_factory):
    from PIL import Image

    from directanimator.video import write_video

    folder = tmp_path_factory.mktemp("crossing")
    write_video(folder / "crossing.mp4", crossing[0][:6], 8.0)
    reference, _ = draw_people(TWO_REFERENCE, 1, 192)
    Image.fromarray(reference[0]).save(folder / "two.png")
    return folder / "two.png", folder / "crossing.mp4"


def test_cues_cli_person(crossing_files, tmp_path, capsys):
    from directanimator.cues import DrivingCues
    from directanimator.cues.__main__ import main

    reference, driving = crossing_files
    out = tmp_path / "cues"
    code = main([str(reference), str(driving), "--out", str(out), "--size", "192", "--no-preview", "--person", "2",
                 "--reference-person", "central"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 people in the driving video (first frame) (1: x " in captured.out
    assert ": person 2 drives" in captured.out and "in the reference image (1: x " in captured.out
    cues = DrivingCues.load(out)
    assert cues.settings["person"]["chosen"] == 2 and cues.settings["reference_person"]["spec"] == "central"


@pytest.mark.parametrize("argv,message", [
    (["--person", "0"], "--person must be largest, central or a person number 1, 2, ..., got '0'"),
    (["--reference-person", "biggest"], "--reference-person must be largest, central or a person number"),
    (["--person", "3"], "there is no person 3: found 2 people in the first frame of the driving video (1: "),
])
def test_cues_cli_person_errors(crossing_files, tmp_path, capsys, argv, message):
    from directanimator.cues.__main__ import main

    reference, driving = crossing_files
    out = tmp_path / "cues"
    code = main([str(reference), str(driving), "--out", str(out), "--size", "192", "--no-preview", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0]
    assert not out.exists()


def test_animate_cli_person_errors(crossing_files, tmp_path, capsys):
    from directanimator.animate import main

    reference, driving = crossing_files
    code = main(["--reference", str(reference), "--driving", str(driving), "--out", str(tmp_path / "a.mp4"),
                 "--person", "-2"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --person must be largest, central or a person number 1, 2, ..., " \
                                        "got '-2'"
    folder = tmp_path / "cuefolder"
    folder.mkdir()
    code = main(["--driving", str(folder), "--out", str(tmp_path / "a.mp4"), "--reference-person", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "a cue folder already holds its choice" in err and len(err.strip().splitlines()) == 1
