"""Several people: finding them (drawn scenes and a real surveillance clip), choosing one, following the chosen one
through a clip, and the ``person`` / ``reference_person`` choice in extract_cues and the CLIs (MediaPipe for real)."""

from __future__ import annotations

import argparse
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
    for bad in ("0", "-1", "biggest", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="largest, central or a person number"):
            parse_person_spec(bad)
    assert person_spec_json("central") == "central" and person_spec_json(np.int32(3)) == 3
    assert person_spec_json((10, 20.5)) == [10.0, 20.5]
    assert describe_people(PEOPLE[:1]) == "1: 20.0% of the frame at x 10-60, y 10-90"
