"""CueSettings (one object for how cues are made) and the model's cue inputs per mode (directanimator.cues.variants)."""

import numpy as np
import pytest

from directanimator.cues import CueSettings, cue_inputs, rebuild_cues
from directanimator.cues.face_cue import in_place_face_cue
from directanimator.cues.pose import rgb_pose_cue, skeleton_pose_cue
from directanimator.errors import InputError
from directanimator.tiny import tiny_driving_cues


def test_settings_are_checked_normalised_and_round_trip():
    s = CueSettings(lowpass=1, grid=8.0, face_cue="in-place", drop=["location", "face", "face"])
    assert (s.lowpass, s.grid, s.face_cue, s.drop) == (1.0, 8, "in_place", ("face", "location"))
    assert CueSettings.from_dict({**s.to_dict(), "size": 512, "warnings": []}) == s
    # the paper's settings write only what cue folders and cache keys held before the modes existed; the default
    # alignment ("auto", framing-robust) is written, and a dict without it reads as the paper's (eqs. 9-10)
    paper = CueSettings(alignment="paper")
    assert paper.to_dict() == {"lowpass": 0.5, "face_enlarge": 1.6, "grid": 16}
    assert CueSettings().to_dict() == {"lowpass": 0.5, "face_enlarge": 1.6, "grid": 16, "alignment": "auto"}
    assert CueSettings.from_dict({"lowpass": 0.5, "face_enlarge": 1.6, "grid": 16}) == paper
    assert CueSettings.from_dict(CueSettings().to_dict()) == CueSettings()
    assert CueSettings().replace(grid=None, lowpass=0.2) == CueSettings(lowpass=0.2)
    for bad, words in ((dict(lowpass=1.5), "low-pass"), (dict(face_enlarge=0.5), "enlarge"), (dict(grid=2.5), "grid"),
                       (dict(pose_cue="depth"), "pose cue"), (dict(face_cue="sideways"), "face cue"),
                       (dict(drop=("pose",)), "dropped"), (dict(lowpass=True), "low-pass"),
                       (dict(alignment="faces"), "alignment")):
        with pytest.raises(InputError, match=words):
            CueSettings(**bad)


def test_cue_inputs_build_each_mode_and_leave_out_dropped_cues():
    cues = tiny_driving_cues(num_frames=5)
    paper = cue_inputs(cues, CueSettings())
    assert sorted(paper) == ["body_location", "face_cue", "face_location", "pose_cue"]
    assert paper["pose_cue"] is cues.pose_cue and paper["face_cue"] is cues.face_cue
    rgb = cue_inputs(cues, CueSettings(pose_cue="rgb"))["pose_cue"]
    np.testing.assert_array_equal(rgb, rgb_pose_cue(cues.driving, cues.driving_masks, cues.dropped))
    in_place = cue_inputs(cues, CueSettings(face_cue="in_place", face_enlarge=2.0))["face_cue"]
    np.testing.assert_array_equal(in_place, in_place_face_cue(cues.driving, cues.face_boxes, enlarge=2.0))
    assert sorted(cue_inputs(cues, CueSettings(drop=("face",)))) == ["body_location", "pose_cue"]
    assert sorted(cue_inputs(cues, CueSettings(drop=("location",)))) == ["face_cue", "pose_cue"]
    skeleton = cue_inputs(cues, CueSettings(pose_cue="skeleton", drop=("face", "location")))
    assert list(skeleton) == ["pose_cue"]
    np.testing.assert_array_equal(skeleton["pose_cue"], skeleton_pose_cue(cues.driving_masks, cues.dropped))


def test_rebuild_records_the_settings_it_used():
    cues = tiny_driving_cues(num_frames=5)
    rebuilt = rebuild_cues(cues, CueSettings(lowpass=0.9, grid=0, pose_cue="rgb"))
    assert rebuilt.cue_settings == CueSettings(lowpass=0.9, grid=0, pose_cue="rgb")
    assert rebuild_cues(rebuilt, CueSettings(lowpass=0.9, grid=0)).cue_settings.pose_cue == "gray"  # a mode goes back
