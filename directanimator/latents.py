"""Latent-space helpers shared by the pipeline and the trainers: frames -> VAE latents, masks -> latent grid,
CogVideoX1.5 latent-frame padding.

Conventions (the pipeline and the trainers must agree on them, or a trained model sees other inputs at inference):

- Video tensors for the VAE are ``[B, 3, T, H, W]`` in [-1, 1]; latents are returned as ``[B, F, C, h, w]``
  (the transformer's layout) and scaled by ``vae.config.scaling_factor``.
- The CogVideoX VAE encodes ``T = 1 + 4k`` frames into ``F = 1 + k`` latents: latent 0 is frame 0 alone, latent
  ``j >= 1`` covers frames ``4j-3 .. 4j``; spatially it downsamples 8x.
- Pose cues are grayscale; they are repeated to 3 channels before encoding (the VAE takes RGB).
- The reference image latent follows CogVideoX I2V, including ``invert_scale_latents`` (CogVideoX1.5's VAE config
  sets it: the image latent is divided by the scaling factor instead of multiplied). The pipeline and the trainers
  both take the posterior mode (deterministic) for the reference and the cues.
- Location masks go to the latent grid with :func:`masks_to_latent_grid`: the same temporal grouping as the VAE
  (frame 0 alone, then groups of 4 averaged) and 8x8 area averaging, so a soft mask stays soft.
- CogVideoX1.5 (``patch_size_t=2``) needs an even latent count. Like diffusers' CogVideoX1.5 I2V pipeline, one
  frame is *prepended* and dropped after denoising: noise for the video latents, the image latent moves to that
  slot (``[image, 0, 0, ...]``), and cue latents / masks repeat their first frame there
  (:func:`pad_latent_frames`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from directanimator.errors import InputError

__all__ = [
    "frames_to_tensor",
    "encode_video",
    "encode_image_latents",
    "masks_to_latent_grid",
    "pad_latent_frames",
    "latent_frame_count",
    "check_frame_count",
    "vae_compression",
]


def vae_compression(config) -> tuple[int, int]:
    """(spatial, temporal) compression of a CogVideoX VAE from its config: a loaded VAE's ``vae.config`` or the
    dict of its ``config.json``. Spatial is 2 per down block after the first; a config without the keys gets
    CogVideoX's 8 and 4."""
    blocks = config.get("block_out_channels") or (0,) * 4
    return 2 ** (len(blocks) - 1), int(config.get("temporal_compression_ratio") or 4)


def latent_frame_count(num_frames: int, temporal_compression: int = 4) -> int:
    """Latent frames for ``num_frames`` video frames (``1 + 4k`` frames -> ``1 + k`` latents)."""
    return (int(num_frames) - 1) // temporal_compression + 1


def check_frame_count(num_frames: int, temporal_compression: int = 4, what: str = "num_frames") -> int:
    """Return ``num_frames`` if it is ``1 + 4k`` (k >= 1), else raise an ``InputError`` naming valid neighbours."""
    n = int(num_frames)
    tc = temporal_compression
    if n < tc + 1 or (n - 1) % tc:
        upper = max(tc + 1, -(-(n - 1) // tc) * tc + 1)
        lower = (n - 1) // tc * tc + 1
        use = f"{lower} or {upper}" if lower >= tc + 1 else f"{upper}"
        raise InputError(
            f"{what} must be 1 + {tc}k frames (e.g. 9, 13, 49, 81) for the CogVideoX VAE, got {n}; use {use}"
        )
    return n


def frames_to_tensor(frames, device=None, dtype=torch.float32) -> torch.Tensor:
    """uint8 frames -> ``[1, 3, T, H, W]`` in [-1, 1].

    Args:
        frames: ``[T, H, W, 3]`` RGB or ``[T, H, W]`` gray uint8 (numpy or torch); gray is repeated to 3 channels;
            float input is taken as [0, 1].
        device: target device.
        dtype: target dtype.
    """
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if x.ndim == 3:
        x = x[..., None].expand(*x.shape, 3)
    if x.ndim != 4:
        raise InputError(f"expected frames [T, H, W, 3] or [T, H, W], got shape {tuple(x.shape)}")
    x = x[..., :3]
    x = x.to(device=device, dtype=torch.float32)
    if frames is not None and (getattr(frames, "dtype", None) in (np.uint8, torch.uint8)):
        x = x / 127.5 - 1.0
    else:
        x = x * 2.0 - 1.0
    return x.permute(3, 0, 1, 2)[None].to(dtype)


def _retrieve(encoder_output, generator=None, sample: bool = False) -> torch.Tensor:
    dist = encoder_output.latent_dist
    return dist.sample(generator) if sample else dist.mode()


@torch.no_grad()
def encode_video(vae, frames, generator=None, sample: bool = False, device=None) -> torch.Tensor:
    """Encode a video with the CogVideoX VAE into scaled latents ``[B, F, C, h, w]``.

    Args:
        vae: ``AutoencoderKLCogVideoX``.
        frames: uint8 ``[T, H, W, 3]`` / ``[T, H, W]`` (gray) frames, or a ``[B, 3, T, H, W]`` tensor in [-1, 1].
            ``T`` must be ``1 + 4k`` (or 1).
        generator: RNG for ``sample=True``.
        sample: sample the posterior (training-time augmentation) instead of taking its mode (deterministic).
        device: where to run (default ``vae.device``; pipelines with CPU offload pass their execution device).
    """
    x = frames if isinstance(frames, torch.Tensor) and frames.ndim == 5 else frames_to_tensor(frames)
    x = x.to(device=device or vae.device, dtype=vae.dtype)
    t = x.shape[2]
    tc = vae.config.temporal_compression_ratio
    if t != 1:
        check_frame_count(t, int(tc), what="cue/video frame count")
    latents = _retrieve(vae.encode(x), generator, sample)
    return (latents * vae.config.scaling_factor).permute(0, 2, 1, 3, 4).contiguous()


@torch.no_grad()
def encode_image_latents(vae, image, generator=None, sample: bool = True, device=None) -> torch.Tensor:
    """The reference image latent of CogVideoX I2V: ``[B, 1, C, h, w]``.

    Args:
        vae: ``AutoencoderKLCogVideoX``.
        image: ``[H, W, 3]`` uint8, or a ``[B, 3, H, W]`` tensor in [-1, 1].
        generator: RNG for the posterior sample (diffusers' I2V pipeline samples it).
        sample: sample the posterior (as diffusers' pipeline does) or take its mode.
        device: where to run (default ``vae.device``).
    """
    if isinstance(image, torch.Tensor) and image.ndim == 4:
        x = image[:, :, None]
    else:
        x = frames_to_tensor(np.asarray(image)[None])
    x = x.to(device=device or vae.device, dtype=vae.dtype)
    latents = _retrieve(vae.encode(x), generator, sample).permute(0, 2, 1, 3, 4)
    if getattr(vae.config, "invert_scale_latents", False):
        return latents / vae.config.scaling_factor
    return latents * vae.config.scaling_factor


def masks_to_latent_grid(masks, spatial: int = 8, temporal: int = 4, device=None, dtype=torch.float32) -> torch.Tensor:
    """Bring location masks to the latent grid: ``[T, H, W]`` -> ``[F, 1, H/8, W/8]``.

    Temporal: frame 0 alone, then each group of ``temporal`` frames is averaged (the VAE's grouping).
    Spatial: ``spatial x spatial`` area average (H and W must be multiples of ``spatial``).

    Args:
        masks: ``[T, H, W]`` float in [0, 1] (numpy or torch), ``T = 1 + 4k``.
        spatial: VAE spatial downsampling.
        temporal: VAE temporal compression.
    """
    m = torch.as_tensor(np.asarray(masks, dtype=np.float32) if not isinstance(masks, torch.Tensor) else masks)
    m = m.to(device=device, dtype=torch.float32)
    if m.ndim != 3:
        raise InputError(f"masks must be [T, H, W], got shape {tuple(m.shape)}")
    t, h, w = m.shape
    if h % spatial or w % spatial:
        raise InputError(f"mask size {h}x{w} must be a multiple of {spatial}")
    if t > 1:
        check_frame_count(t, temporal, what="mask frame count")
        rest = m[1:].reshape((t - 1) // temporal, temporal, h, w).mean(dim=1)
        m = torch.cat([m[:1], rest], dim=0)
    m = F.avg_pool2d(m[:, None], kernel_size=spatial)
    return m.to(dtype)


def pad_latent_frames(latents: torch.Tensor, patch_size_t: int | None, mode: str = "repeat") -> tuple[torch.Tensor, int]:
    """Prepend frames so the latent count ``F`` (dim 1 of ``[B, F, ...]``) is a multiple of ``patch_size_t``.

    Args:
        latents: ``[B, F, ...]``.
        patch_size_t: the transformer's temporal patch size (``None``: no padding).
        mode: ``"repeat"`` (copies of the first frame, for cues and masks) or ``"zeros"``.

    Returns:
        ``(padded, added)``; drop ``padded[:, added:]`` to undo.
    """
    if not patch_size_t or latents.shape[1] % patch_size_t == 0:
        return latents, 0
    added = patch_size_t - latents.shape[1] % patch_size_t
    first = latents[:, :1]
    pad = first.expand(-1, added, *first.shape[2:]) if mode == "repeat" else torch.zeros_like(first).repeat(
        1, added, *([1] * (first.ndim - 2)))
    return torch.cat([pad, latents], dim=1), added
