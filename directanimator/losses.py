"""Training losses: the CogVideoX denoising loss and the Same2X alignment loss (eq. 4).

Each term is a small separate function so the training loop can log them one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_sample(values: torch.Tensor, timesteps: torch.Tensor, ndim: int) -> torch.Tensor:
    """Pick ``values[timesteps]`` and shape it [B, 1, 1, ...] so it broadcasts against an ``ndim`` tensor."""
    picked = values.to(timesteps.device)[timesteps].flatten()
    return picked.reshape(picked.shape[0], *([1] * (ndim - 1)))


# Adapted from diffusers 0.42.1 (examples/cogvideo/train_cogvideox_image_to_video_lora.py and
# CogVideoXDPMScheduler.get_velocity): the model predicts v; the example turns it into an x0 estimate with
# get_velocity(v, x_t, t) = sqrt(a)*x_t - sqrt(1-a)*v and weights the x0 error by 1/(1-a). Since
# x0_hat - x0 = -sqrt(1-a) (v_hat - v), that weighted x0 error is exactly the plain v-prediction MSE.
def denoising_loss(
    model_output: torch.Tensor,
    noisy_latents: torch.Tensor,
    clean_latents: torch.Tensor,
    timesteps: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """CogVideoX v-prediction denoising loss, computed as diffusers' CogVideoX training examples do.

    Args:
        model_output: the transformer's prediction (v), [B, F, C, h, w].
        noisy_latents: ``scheduler.add_noise(clean_latents, noise, timesteps)``, same shape.
        clean_latents: the VAE latents of the target clip (already multiplied by the VAE scaling factor).
        timesteps: integer training timesteps, [B].
        alphas_cumprod: the scheduler's ``alphas_cumprod`` table ([num_train_timesteps]).
        reduction: ``"mean"`` (a scalar) or ``"none"`` (one value per sample, [B]).

    Returns:
        The loss in float32 (the weighting 1/(1-a) is large at small t, so it is never computed in bf16).
    """
    model_output = model_output.float()
    noisy_latents = noisy_latents.float()
    clean_latents = clean_latents.float()
    alphas = alphas_cumprod.float()
    ndim = model_output.ndim
    sqrt_alpha = _per_sample(alphas, timesteps, ndim).sqrt()
    sqrt_one_minus_alpha = _per_sample(1.0 - alphas, timesteps, ndim).sqrt()
    x0_pred = sqrt_alpha * noisy_latents - sqrt_one_minus_alpha * model_output
    weights = 1.0 / _per_sample(1.0 - alphas, timesteps, ndim)
    per_sample = (weights * (x0_pred - clean_latents) ** 2).reshape(model_output.shape[0], -1).mean(dim=1)
    if reduction == "none":
        return per_sample
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return per_sample.mean()


def s2x_loss(student_tokens: torch.Tensor, teacher_tokens: torch.Tensor) -> torch.Tensor:
    """Same2X alignment loss (eq. 4): minus the mean cosine similarity of matching vision tokens.

    Args:
        student_tokens: tokens after block D of the cross-ID model (pseudo cues), [B, N, C].
        teacher_tokens: tokens after block D of the frozen same-ID model (the clip's own cues), [B, N, C].
            They are detached here, so no gradient can reach the teacher even if a caller forgets ``no_grad``.

    Returns:
        A float32 scalar in [-1, 1]; -1 when every student token points the same way as its teacher token.
    """
    if student_tokens.shape != teacher_tokens.shape:
        raise ValueError(
            f"student and teacher tokens differ in shape: {tuple(student_tokens.shape)} vs "
            f"{tuple(teacher_tokens.shape)}"
        )
    similarity = F.cosine_similarity(student_tokens.float(), teacher_tokens.detach().float(), dim=-1)
    return -similarity.mean()
