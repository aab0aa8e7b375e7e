"""Face cue: square, enlarged, centred crops; NaN boxes give zero frames."""

import cv2
import numpy as np
import pytest

from directanimator.cues.face_cue import crop_square, face_cue


def _disc_frame(hw, cx, cy, r):
    frame = np.zeros(hw + (3,), np.uint8)
    cv2.circle(frame, (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)), (255, 200, 100), -1,
               lineType=cv2.LINE_AA, shift=4)
    return frame


def _centre_of_mass(img):
    w = img.astype(np.float64).sum(axis=-1)
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    return (xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()


@pytest.mark.parametrize("cx,cy,r", [(60.0, 40.0, 10.0), (100.3, 70.6, 16.0), (8.0, 10.0, 9.0)])
def test_face_crops_are_centred(cx, cy, r):
    hw = (96, 128)
    frame = _disc_frame(hw, cx, cy, r)
    # cv2 draws at pixel-centre coordinates; boxes are continuous (pixel i spans [i, i + 1)), hence + 0.5
    box = np.array([cx + 0.5 - r, cy + 0.5 - r, cx + 0.5 + r, cy + 0.5 + r], np.float32)
    cue, no_face = face_cue(frame[None], box[None], enlarge=1.6, out_hw=(64, 80))
    assert cue.shape == (1, 64, 80, 3) and not no_face[0]
    # the square sits centred in the out frame (80 wide, 64 high -> 8 px bars left and right)
    assert (cue[0, :, :8] == 0).all() and (cue[0, :, 72:] == 0).all()
    mx, my = _centre_of_mass(cue[0])
    assert abs(mx - 40.0) < 1.0 and abs(my - 32.0) < 1.0  # centred (even when clipped at the image border)
    # the disc fills 1/1.6 of the square side
    radius = np.sqrt((cue[0, ..., 0] > 127).sum() / np.pi)
    assert abs(radius - 32.0 / 1.6) < 1.5


def test_nan_boxes_give_zero_frames_and_flags():
    frames = np.full((3, 40, 40, 3), 200, np.uint8)
    boxes = np.array([[10, 10, 20, 20], [np.nan] * 4, [5, 5, 5, 9]], np.float32)  # last: degenerate
    cue, no_face = face_cue(frames, boxes)
    assert cue.shape == (3, 40, 40, 3)
    assert no_face.tolist() == [False, True, True]
    assert cue[0].any() and not cue[1].any() and not cue[2].any()


def test_crop_square_pads_with_zeros_at_border():
    frame = np.full((20, 20, 3), 9, np.uint8)
    crop = crop_square(frame, np.array([0, 0, 10, 10], np.float32), 2.0)
    assert crop.shape == (20, 20, 3)
    assert (crop[:5] == 0).all() and (crop[:, :5] == 0).all() and (crop[5:, 5:] == 9).all()
