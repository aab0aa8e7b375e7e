"""directanimator.cues.preview's drawing on plain arrays: panels side by side and the app's frame scrubber (the CLI's
preview video is tested with real cues in test_cues.py)."""

import dataclasses

import numpy as np

from directanimator.cues.preview import compose_preview, label, side_by_side_video, to_rgb
from directanimator.tiny import tiny_driving_cues


def test_side_by_side_video():
    a = np.zeros((3, 64, 48, 3), np.uint8)
    b = np.zeros((3, 32, 32), np.uint8)
    out = side_by_side_video([a, b], 64)
    assert out.shape == (3, 64, 48 + 4 + 64, 3)


def test_to_rgb_and_label_leave_their_input_alone():
    mask = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    np.testing.assert_array_equal(to_rgb(mask)[..., 0], [[0, 128], [255, 64]])
    image = np.zeros((48, 64, 3), np.uint8)
    labelled = label(image, "x")
    assert labelled.any() and not image.any()


def test_compose_preview_panels_and_flags():
    cues = tiny_driving_cues(num_frames=3, height=64, width=48)
    cues = dataclasses.replace(cues, dropped=np.array([False, True, False]), no_face=np.array([False, False, True]))
    plain = compose_preview(cues, 0, 64)
    assert plain.shape == (64, 4 * 48 + 3 * 4, 3) and plain.dtype == np.uint8
    with_alignment = compose_preview(cues, 1, 64, warped_mask=cues.driving_masks[1])
    assert with_alignment.shape == (64, 5 * 48 + 4 * 4, 3)
    pose_panel = with_alignment[:, 52:100]
    assert ((pose_panel[..., 0] > 200) & (pose_panel[..., 1] < 80) & (pose_panel[..., 2] < 80)).sum() > 5  # DROPPED
