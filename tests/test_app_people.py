"""The app's people pickers (``ui.people``), their handlers called directly on real two-person inputs: extract,
see who was found, click another person (the cues are extracted again for them and the choice is saved in the cue
folder), click on background ("no person there", the cues stay), and the picture they are chosen on."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from browser.people_media import astronaut, two_portraits, two_walkers, walker
from ui import cue_handlers, people, server
from ui.hosting import Hosting

SETTINGS = ("mediapipe", "mediapipe", 0.5, 1.6, 16, 5, 0)  # segmenter ... max_frames, fps (as the tab's inputs)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people-media")
    return two_walkers(folder), two_portraits(folder)


@pytest.fixture(autouse=True)
def app_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "OUTPUT_DIR", tmp_path)
    monkeypatch.setattr(server, "HOSTING", Hosting())


def click(x, y):
    """What gradio hands a .select listener for a click at (x, y) image pixels on a gr.Image."""
    return gr.SelectData(None, {"index": [x, y], "value": None})


def centre(box):
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2


def mask_centre_x(mask):
    return float(np.nonzero(mask > 0.5)[1].mean())


@pytest.mark.slow
def test_click_on_the_second_walker_makes_her_drive(media, tmp_path):
    from directanimator.cues import DrivingCues

    drv = media[0]
    session = cue_handlers.extract_cues(astronaut(), drv, *SETTINGS, None)[0]
    first = session.cues
    found = first.settings["person"]
    assert found["chosen"] == 1 and len(found["people"]) == 2
    boxes = found["people"]
    assert boxes[0][2] <= 310 and boxes[1][0] >= 280  # person 1 the large walker on the left, 2 the one on the right
    line, driving_picture, reference_picture = people.show_people(session)
    assert line["visible"] and "**2 people** in the first driving frame; person 1 drives" in line["value"]
    assert driving_picture["visible"] and driving_picture["value"].shape == first.driving[0].shape
    assert not reference_picture["visible"]  # one person in the reference: nothing to choose there

    out = people.choose_driving_person(astronaut(), drv, *SETTINGS, session, "longest", click(*centre(boxes[1])))
    assert out[0] is session and session.cues is not first
    chosen = session.cues.settings["person"]
    assert chosen["chosen"] == 2 and chosen["spec"] == pytest.approx(list(centre(boxes[1])))
    kept = ~session.cues.dropped
    assert kept.sum() >= 4
    assert all(mask_centre_x(m) > 300 for m in session.cues.driving_masks[kept])  # followed through the clip
    assert all(mask_centre_x(m) < 300 for m in first.driving_masks[~first.dropped])
    assert "person 2 drives" in people.show_people(session)[0]["value"]
    # Saved in the cue folder (and its zip) with the rest of the settings.
    assert DrivingCues.load(session.cues.save(tmp_path / "cues")).settings["person"]["chosen"] == 2

    after = session.cues
    with pytest.raises(gr.Error, match=r"no person there at \(20, 20\).*click on the 2 people outlined"):
        people.choose_driving_person(astronaut(), drv, *SETTINGS, session, "longest", click(20, 20))  # the black bar on top
    assert session.cues is after  # the current cues stay
    with pytest.raises(gr.Error, match="changed since the cues were extracted"):
        people.choose_driving_person(astronaut(), walker(), *SETTINGS, session, "longest", click(*centre(boxes[0])))
    assert session.cues is after


@pytest.mark.slow
def test_click_on_the_other_reference_person_animates_her(media):
    ref = media[1]
    session = cue_handlers.extract_cues(ref, walker(), *SETTINGS, None)[0]
    first = session.cues
    found = first.settings["reference_person"]
    assert found["chosen"] == 1 and len(found["people"]) == 2
    line, driving_picture, reference_picture = people.show_people(session)
    assert "**2 people** in the reference photo; person 1 is animated" in line["value"]
    assert reference_picture["visible"] and not driving_picture["visible"]
    other = found["people"][1]
    people.choose_reference_person(ref, walker(), *SETTINGS, session, "longest", click(*centre(other)))
    assert session.cues.settings["reference_person"]["chosen"] == 2
    assert session.cues.settings["person"]["chosen"] == 1  # the driving side keeps its person
    x0, _, x1, _ = other
    assert x0 <= mask_centre_x(session.cues.reference_mask) <= x1
    assert not x0 <= mask_centre_x(first.reference_mask) <= x1
    assert "person 2 is animated" in people.show_people(session)[0]["value"]


@pytest.mark.slow
def test_one_person_each_side_shows_no_picker():
    session = cue_handlers.extract_cues(astronaut(), walker(), *SETTINGS[:-2], 3, 0, None)[0]
    line, driving_picture, reference_picture = people.show_people(session)
    assert not line["visible"] and not driving_picture["visible"] and not reference_picture["visible"]


def test_people_picture_outlines_and_numbers_everyone():
    from directanimator.cues.preview import MASK_COLOUR

    image = np.full((200, 240, 3), 90, np.uint8)
    mask = np.zeros((200, 240), np.float32)
    mask[60:150, 150:200] = 1
    boxes = [[10, 20, 110, 190], [140, 50, 210, 160]]
    picture = people.people_picture(image, boxes, chosen=2, mask=mask)
    assert picture.shape == image.shape and (image == 90).all()  # drawn on a copy
    assert tuple(picture[120, 10]) == (255, 255, 255)  # person 1's left edge: white
    assert tuple(picture[120, 210]) == MASK_COLOUR  # the chosen person's right edge: the mask colour
    assert tuple(picture[100, 150]) == MASK_COLOUR and (picture[100, 175] == 90).all()  # its mask outlined
    assert (picture[75, 120] == 90).all()  # background stays as it was

    def tag(rows, cols, colour):
        """Pixels of a number tag: its fill in the box's colour, and the dark strokes of the number."""
        patch = picture[rows, cols].reshape(-1, 3)
        return (patch == colour).all(axis=1).sum(), (patch.max(axis=1) < 100).sum()

    fill, number = tag(slice(33, 46), slice(140, 156), MASK_COLOUR)  # person 2's tag: just above the box
    assert fill > 40 and number > 5
    fill, number = tag(slice(22, 40), slice(10, 26), (255, 255, 255))  # person 1's box touches the top: inside
    assert fill > 40 and number > 5
    assert (picture[2:15, 10:30] == 90).all()  # nothing above that box
    with_number_1 = people.people_picture(image, boxes, chosen=1)
    assert tuple(with_number_1[120, 10]) == MASK_COLOUR and tuple(with_number_1[120, 210]) == (255, 255, 255)
