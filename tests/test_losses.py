import pytest
import torch
from diffusers import CogVideoXDPMScheduler

from directanimator.losses import denoising_loss, s2x_loss


def _scheduler():
    return CogVideoXDPMScheduler(snr_shift_scale=1.0, timestep_spacing="trailing", prediction_type="v_prediction")


def test_denoising_loss_matches_diffusers_example_and_v_mse():
    torch.manual_seed(0)
    scheduler = _scheduler()
    clean = torch.randn(2, 3, 4, 5, 6)
    noise = torch.randn_like(clean)
    t = torch.tensor([10, 900])
    noisy = scheduler.add_noise(clean, noise, t)
    v_pred = torch.randn_like(clean)

    # the diffusers CogVideoX example, written out with the scheduler's own get_velocity
    x0_pred = scheduler.get_velocity(v_pred, noisy, t)
    w = (1 / (1 - scheduler.alphas_cumprod[t])).reshape(2, 1, 1, 1, 1)
    expected = torch.mean((w * (x0_pred - clean) ** 2).reshape(2, -1), dim=1).mean().float()
    got = denoising_loss(v_pred, noisy, clean, t, scheduler.alphas_cumprod)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)

    # ... which equals the MSE against the true velocity
    v_true = scheduler.get_velocity(clean, noise, t)
    torch.testing.assert_close(got, ((v_pred - v_true) ** 2).mean(), rtol=1e-4, atol=1e-4)
    # and is zero for a perfect prediction
    assert denoising_loss(v_true, noisy, clean, t, scheduler.alphas_cumprod).item() < 1e-8
    assert denoising_loss(v_pred, noisy, clean, t, scheduler.alphas_cumprod, reduction="none").shape == (2,)


def test_s2x_loss_is_minus_one_when_aligned_and_gives_teacher_no_grad():
    torch.manual_seed(0)
    teacher = torch.randn(2, 7, 16, requires_grad=True)
    student = (teacher.detach() * 3.0).requires_grad_(True)  # same direction, other scale
    loss = s2x_loss(student, teacher)
    assert loss.item() == pytest.approx(-1.0, abs=1e-6)
    loss_opposite = s2x_loss(-student, teacher)
    assert loss_opposite.item() == pytest.approx(1.0, abs=1e-6)

    other = torch.randn(2, 7, 16, requires_grad=True)
    s2x_loss(other, teacher).backward()
    assert teacher.grad is None
    assert other.grad is not None and other.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        s2x_loss(torch.randn(1, 3, 4), torch.randn(1, 3, 5))
