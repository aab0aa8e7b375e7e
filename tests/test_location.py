"""Location cue: eqs. 9-12 alignment on synthetic figures with known scale/shift, warping and grid softening."""

import cv2
import numpy as np
import pytest

from directanimator.cues.location import (SimilarityTransform, align_and_soften, box_masks, estimate_alignment,
                                          mask_box, mask_centre, soften_grid, transform_boxes, warp_masks)
from directanimator.errors import InputError


def _figure(hw, cx, cy, scale):
    """A stick-figure-ish person (head, torso, legs, arms) centred at (cx, cy), height ~ 200 * scale px."""
    mask = np.zeros(hw, np.uint8)

    def pt(dx, dy):
        return int(round(cx + dx * scale)), int(round(cy + dy * scale))

    cv2.circle(mask, pt(0, -80), int(round(20 * scale)), 1, -1)
    cv2.rectangle(mask, pt(-25, -60), pt(25, 20), 1, -1)
    cv2.rectangle(mask, pt(-20, 20), pt(-5, 100), 1, -1)
    cv2.rectangle(mask, pt(5, 20), pt(20, 100), 1, -1)
    cv2.rectangle(mask, pt(-60, -55), pt(60, -45), 1, -1)
    return mask.astype(np.float32)


def test_transform_matrix_inverse_apply():
    tr = SimilarityTransform(1.5, 10.0, -4.0)
    pts = np.array([[0.0, 0.0], [2.0, 3.0]])
    np.testing.assert_allclose(tr.apply(pts), [[10.0, -4.0], [13.0, 0.5]])
    np.testing.assert_allclose(tr.inverse().apply(tr.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(tr.matrix(), [[1.5, 0, 10.0], [0, 1.5, -4.0]])


@pytest.mark.parametrize("true_scale,shift", [(0.6, (30.0, -20.0)), (1.35, (-45.0, 12.0)), (1.0, (0.0, 0.0))])
def test_alignment_recovers_known_scale_and_shift(true_scale, shift):
    hw = (480, 400)
    # The driving person walks (centre moves) and is drawn at size 1; the reference is the same figure scaled by
    # true_scale about the origin and shifted: T(x) = true_scale * x + shift maps the mean driving centre.
    centres = [(150.0 + 10 * t, 220.0 + 2 * (t % 3)) for t in range(7)]
    masks = np.stack([_figure(hw, cx, cy, 1.0) for cx, cy in centres])
    mean_c = np.mean(centres, axis=0)
    ref_c = true_scale * mean_c + np.array(shift)
    ref = _figure(hw, ref_c[0], ref_c[1], true_scale)
    tr = estimate_alignment(ref, masks)
    assert abs(tr.scale - true_scale) * 200 < 1.5  # within ~a pixel over the person's height
    np.testing.assert_allclose(tr.apply(mean_c), ref_c, atol=1.0)
    # the aligned masks land on the reference person: same box within a pixel or two
    aligned = warp_masks(masks, tr, hw)
    mid = aligned[3]
    moved = _figure(hw, *tr.apply(centres[3]), tr.scale)
    assert np.abs(np.array(mask_box(mid)) - np.array(mask_box(moved))).max() <= 2.0


def test_alignment_uses_valid_frames_only_and_median_scale():
    hw = (300, 300)
    masks = np.stack([_figure(hw, 150, 150, 0.5)] * 4 + [_figure(hw, 150, 150, 1.2)])  # one outlier frame
    ref = _figure(hw, 150, 150, 1.0)
    assert abs(estimate_alignment(ref, masks).scale - 2.0) < 0.02  # median ignores the outlier
    valid = np.array([False] * 4 + [True])
    assert abs(estimate_alignment(ref, masks, valid=valid).scale - 1.0 / 1.2) < 0.02
    fixed = estimate_alignment(ref, masks, scale=1.0)
    assert fixed.scale == 1.0 and abs(fixed.tx) < 1 and abs(fixed.ty) < 1


def test_alignment_errors():
    hw = (100, 100)
    person = _figure(hw, 50, 50, 0.3)[None]
    with pytest.raises(InputError, match="reference"):
        estimate_alignment(np.zeros(hw, np.float32), person)
    with pytest.raises(InputError, match="driving"):
        estimate_alignment(person[0], np.zeros((3,) + hw, np.float32))
    with pytest.raises(InputError, match="driving"):
        estimate_alignment(person[0], person, valid=np.array([False]))


def test_warp_uses_inverse_transform():
    mask = np.zeros((1, 100, 120), np.float32)
    mask[0, 20:30, 10:20] = 1.0  # pixel centres x 10..19, y 20..29
    tr = SimilarityTransform(2.0, 5.0, 7.0)
    out = warp_masks(mask, tr, (150, 160))
    assert out.shape == (1, 150, 160)
    x0, x1, y0, y1 = mask_box(out[0])
    # T maps the source box corners (9.5..19.5, 19.5..29.5 edge coords) to s*x + t
    assert abs(x0 - (2 * 9.5 + 5 + 0.5)) <= 1 and abs(x1 - (2 * 19.5 + 5 - 0.5)) <= 1
    assert abs(y0 - (2 * 19.5 + 7 + 0.5)) <= 1 and abs(y1 - (2 * 29.5 + 7 - 0.5)) <= 1
    assert abs(out.sum() - 4 * mask.sum()) / (4 * mask.sum()) < 0.05


def test_soften_grid_keeps_coverage_but_blurs_outline():
    hw = (256, 192)
    mask = _figure(hw, 96, 128, 0.9)
    soft = soften_grid(mask[None], grid=16)[0]
    assert soft.shape == hw and soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
    # coarse coverage kept: total mass and centre of mass close to the original
    assert abs(soft.sum() - mask.sum()) / mask.sum() < 0.1
    ys, xs = np.mgrid[: hw[0], : hw[1]]
    for coord in (ys, xs):
        assert abs((coord * soft).sum() / soft.sum() - (coord * mask).sum() / mask.sum()) < 2.0
    # the exact outline is gone: many fractional values, and the thin arm is no longer a crisp edge
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 5 * ((mask > 0.05) & (mask < 0.95)).sum() + 100
    edge = np.abs(np.diff(soft, axis=0)).max()
    assert edge < 0.5
    # a finer grid follows the outline more closely than a coarse one; grid=0 is a no-op
    err = [np.abs(soften_grid(mask, g) - mask).mean() for g in (8, 32)]
    assert err[1] < err[0]
    np.testing.assert_array_equal(soften_grid(mask, 0), mask)


def test_box_masks():
    boxes = np.array([[2.0, 3.0, 6.0, 8.0], [np.nan] * 4], np.float32)
    out = box_masks(boxes, (10, 10))
    assert out[0].sum() == 4 * 5 and out[0, 3:8, 2:6].all() and out[1].sum() == 0


@pytest.mark.parametrize("transform,hw,grid", [(SimilarityTransform(0.7, 30.3, -12.2), (240, 200), 12),
                                               (SimilarityTransform(1.3, -60.0, 5.0), (256, 192), 16),
                                               (SimilarityTransform(1.0, 0.0, 0.0), (256, 256), 0)])
def test_align_and_soften_matches_warp_then_soften(transform, hw, grid):
    masks = np.stack([_figure((256, 256), 120 + 5 * t, 128, 0.8) for t in range(3)])
    expected = soften_grid(warp_masks(masks, transform, hw), grid)
    got = align_and_soften(masks, transform, hw, grid)
    assert got.shape == expected.shape == (3,) + hw
    assert np.abs(got - expected).max() < 0.03
    assert abs(got.sum() - expected.sum()) < 0.01 * expected.sum()


def test_transform_boxes_matches_warped_box_masks():
    boxes = np.array([[40.0, 30.0, 80.0, 90.0], [np.nan] * 4], np.float32)
    tr = SimilarityTransform(1.5, -10.0, 20.0)
    moved = transform_boxes(boxes, tr)
    assert np.isnan(moved[1]).all()
    warped = warp_masks(box_masks(boxes, (128, 128)), tr, (200, 200))
    direct = box_masks(moved, (200, 200))
    assert ((warped[0] > 0.5) != (direct[0] > 0.5)).sum() <= 2 * (60 + 90)  # at most the one-pixel rim differs
    x0, x1, y0, y1 = mask_box(direct[0])
    # T acts on pixel centres: edge 40 is centre 39.5 -> 1.5 * 39.5 - 10 = 49.25 -> edge 49.75 (pixel 49 on)
    assert (x0, y0) == (49, 64) and (x1 + 1, y1 + 1) == (110, 155)


def test_adjusted_scales_about_the_centre_and_shifts_by_the_frame_size():
    auto = SimilarityTransform(0.8, 10.0, -5.0)
    centre, hw = (50.0, 60.0), (100, 200)
    adjusted = auto.adjusted(1.5, 0.1, -0.2, centre, hw)
    assert adjusted.scale == 0.8 * 1.5
    points = np.array([[0.0, 0.0], [30.0, 70.0], [123.0, 4.5]])
    expected = 1.5 * (auto.apply(points) - centre) + centre + np.array([0.1 * 200, -0.2 * 100])
    np.testing.assert_allclose(adjusted.apply(points), expected, atol=1e-9)
    assert auto.adjusted(1.0, 0.0, 0.0, centre, hw) == auto
    np.testing.assert_allclose(auto.adjusted(2.0, 0.0, 0.0, centre, hw).apply(auto.inverse().apply(centre)), centre)


def test_mask_centre():
    mask = np.zeros((10, 20), np.float32)
    assert mask_centre(mask) == (9.5, 4.5)  # empty: the frame centre
    mask[2:5, 4:9] = 1
    assert mask_centre(mask) == (6.0, 3.0)
