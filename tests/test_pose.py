"""Pose cue: the FFT disc low-pass and the grayscale-foreground cue."""

import numpy as np
import pytest
import torch

from directanimator.cues.pose import cutoff_for_strength, foreground_gray, lowpass, pose_cue


def _weights(radius, cutoff):
    return np.where(radius <= cutoff, 0.5 * (1 + np.cos(np.pi * radius / cutoff)), 0.0)


def _radial_frequency(height, width):
    fy = np.fft.fftfreq(height)[:, None] * 2.0
    fx = np.fft.fftfreq(width)[None, :] * 2.0
    return np.sqrt(fy**2 + fx**2)  # 1.0 = Nyquist


@pytest.mark.parametrize("strength", [0.3, 0.5, 1.0])
@pytest.mark.parametrize("hw", [(64, 64), (48, 80), (63, 50)])
def test_lowpass_removes_energy_above_cutoff_and_keeps_dc(strength, hw):
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, size=(3,) + hw).astype(np.float32)
    out = lowpass(torch.from_numpy(gray), strength).numpy()
    assert out.shape == gray.shape and out.dtype == np.float32
    radius = _radial_frequency(*hw)
    cutoff = cutoff_for_strength(strength)
    spec_in = np.fft.fft2(gray.astype(np.float64))
    spec_out = np.fft.fft2(out.astype(np.float64))
    above = radius > cutoff * 1.0001
    # Energy above the cutoff is gone (up to float32 round-off); inside the disc it is weighted as documented.
    assert np.abs(spec_out[:, above]).max() < 1e-3 * np.abs(spec_in[:, above]).max()
    np.testing.assert_allclose(spec_out, spec_in * _weights(radius, cutoff), atol=np.abs(spec_in).max() * 1e-5)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), gray.mean(axis=(1, 2)), rtol=1e-5)  # DC kept
    assert (~above).sum() < above.sum()  # the test is not vacuous


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


def test_lowpass_matches_full_fft_reference():
    rng = np.random.default_rng(2)
    gray = rng.uniform(0, 255, size=(5, 32, 40)).astype(np.float32)
    radius = _radial_frequency(32, 40)
    cutoff = cutoff_for_strength(0.4)
    expected = np.real(np.fft.ifft2(np.fft.fft2(gray) * _weights(radius, cutoff)))
    np.testing.assert_allclose(lowpass(torch.from_numpy(gray), 0.4).numpy(), expected, atol=1e-2)


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
    assert np.abs(np.diff(smooth[0].astype(float), axis=1)).mean() < np.abs(np.diff(cue[0].astype(float), axis=1)).mean()
    assert foreground_gray(frames, masks).shape == (4, 32, 32)
