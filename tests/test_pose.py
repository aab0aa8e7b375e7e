"""Pose cue: the FFT disc low-pass and the grayscale-foreground cue."""

import numpy as np
import pytest
import torch

from directanimator.cues.pose import cutoff_for_strength, foreground_gray, lowpass, padding_for_strength, pose_cue


def _weights(radius, cutoff):
    return np.where(radius <= cutoff, 0.5 * (1 + np.cos(np.pi * radius / cutoff)), 0.0)


def _radial_frequency(height, width):
    fy = np.fft.fftfreq(height)[:, None] * 2.0
    fx = np.fft.fftfreq(width)[None, :] * 2.0
    return np.sqrt(fy**2 + fx**2)  # 1.0 = Nyquist


def _reference_lowpass(gray, strength):
    """NumPy version of the documented filter: zero-pad, weight the spectrum, transform back, crop."""
    from directanimator.cues.pose import _disc

    height, width = gray.shape[-2:]
    _, _, p_height, p_width = _disc(height, width, strength)
    padded = np.zeros(gray.shape[:-2] + (p_height, p_width))
    padded[..., :height, :width] = gray
    radius = _radial_frequency(p_height, p_width)
    out = np.real(np.fft.ifft2(np.fft.fft2(padded) * _weights(radius, cutoff_for_strength(strength))))
    return out[..., :height, :width]


@pytest.mark.parametrize("strength", [0.3, 0.5, 1.0])
@pytest.mark.parametrize("hw", [(160, 160), (150, 200), (171, 163)])
def test_lowpass_removes_energy_above_cutoff_and_keeps_dc(strength, hw):
    rng = np.random.default_rng(0)
    border = padding_for_strength(strength)
    gray = np.zeros((2,) + hw, np.float32)  # a textured "person" with a black surround, like a foreground
    gray[:, border : hw[0] - border, border : hw[1] - border] = rng.uniform(0, 255, (2, hw[0] - 2 * border,
                                                                                    hw[1] - 2 * border))
    out = lowpass(torch.from_numpy(gray), strength).numpy()
    assert out.shape == gray.shape and out.dtype == np.float32
    radius = _radial_frequency(*hw)
    cutoff = cutoff_for_strength(strength)
    spec_in = np.fft.fft2(gray.astype(np.float64))
    spec_out = np.fft.fft2(out.astype(np.float64))
    above = radius > cutoff * 1.05
    # Energy above the cutoff is gone (what is left is the kernel tail cut at the frame border)...
    assert (np.abs(spec_out[:, above]) ** 2).sum() < 1e-4 * (np.abs(spec_in[:, above]) ** 2).sum()
    # ... the lowest frequencies pass untouched, and the total (DC) is kept
    low = radius < cutoff * 0.05
    np.testing.assert_allclose(spec_out[:, low], spec_in[:, low], rtol=0.02, atol=1e-3 * np.abs(spec_in).max())
    np.testing.assert_allclose(out.sum(axis=(1, 2)), gray.sum(axis=(1, 2)), rtol=2e-3)
    assert above.sum() > (~above).sum()  # the test is not vacuous


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_padding_skipped_away_from_borders_changes_nothing_visible(strength):
    # content far from every border is filtered without padding: same result as the padded filter
    rng = np.random.default_rng(5)
    border = padding_for_strength(strength) + 1
    gray = np.zeros((2, 200, 240), np.float32)
    gray[:, border:-border, border:-border] = rng.uniform(0, 255, (2, 200 - 2 * border, 240 - 2 * border))
    out = lowpass(torch.from_numpy(gray), strength).numpy()
    assert np.abs(out - _reference_lowpass(gray, strength)).max() < 0.25  # well under one 8-bit level


def test_lowpass_does_not_wrap_around():
    # a person cut by the bottom edge must not bleed into the top rows (the periodic FFT would)
    gray = np.zeros((1, 128, 96), np.float32)
    gray[0, 80:, 30:70] = 200.0
    out = lowpass(torch.from_numpy(gray), 1.0).numpy()[0]
    assert np.abs(out[:20]).max() < 0.5
    assert out[120, 50] > 100


def test_lowpass_strength_zero_is_identity_and_stronger_removes_more():
    rng = np.random.default_rng(1)
    gray = torch.from_numpy(rng.uniform(0, 255, size=(2, 40, 56)).astype(np.float32))
    assert torch.equal(lowpass(gray, 0.0), gray)
    residual = [float((lowpass(gray, s) - gray).pow(2).mean()) for s in (0.2, 0.5, 0.9)]
    assert residual[0] < residual[1] < residual[2]
    assert cutoff_for_strength(0.0) == 1.0 and cutoff_for_strength(1.0) < cutoff_for_strength(0.5) < 1.0
    # one frame [H, W] works as well
    np.testing.assert_allclose(lowpass(gray[0], 0.5).numpy(), lowpass(gray, 0.5)[0].numpy(), atol=1e-3)
    with pytest.raises(ValueError):
        lowpass(gray, 1.5)


def test_lowpass_does_not_ring_at_edges():
    # A bright box on black: a hard-edged disc would overshoot ~20 % at the corners and ripple around the box.
    gray = np.zeros((1, 128, 128), np.float32)
    gray[0, 40:90, 30:100] = 200.0
    out = lowpass(torch.from_numpy(gray), 0.5).numpy()[0]
    assert out.max() < 200.0 * 1.03 and out.min() > -200.0 * 0.03


def test_lowpass_matches_reference_implementation():
    rng = np.random.default_rng(2)
    gray = rng.uniform(0, 255, size=(5, 32, 40)).astype(np.float32)
    for strength in (0.2, 0.4, 1.0):
        np.testing.assert_allclose(lowpass(torch.from_numpy(gray), strength).numpy(),
                                   _reference_lowpass(gray, strength), atol=1e-2)


def test_pose_cue_is_grayscale_foreground_and_dropped_frames_are_zero():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((4, 32, 32), np.float32)
    masks[:, 8:24, 10:22] = 1.0
    dropped = np.array([False, True, False, False])
    cue = pose_cue(frames, masks, strength=0.0, dropped=dropped)
    assert cue.shape == (4, 32, 32) and cue.dtype == np.uint8
    assert (cue[1] == 0).all()
    assert (cue[0][masks[0] == 0] == 0).all()  # background removed
    luma = frames[0, 8:24, 10:22].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(cue[0, 8:24, 10:22].astype(np.float32) - luma).max() <= 1.0
    smooth = pose_cue(frames, masks, strength=0.8, dropped=dropped)
    assert (smooth[1] == 0).all()
    roughness = [np.abs(np.diff(c[0].astype(float), axis=1)).mean() for c in (smooth, cue)]
    assert roughness[0] < roughness[1]
    assert foreground_gray(frames, masks).shape == (4, 32, 32)
