"""Tiny configurations of the real DirectAnimator / diffusers / transformers classes with random weights.

Used by the test suite, the benchmarks and the app's "tiny random-weights model" (which checks the plumbing of
generation in seconds on a CPU; its output is noise). Keep the names and meanings stable:

- ``tiny_transformer_config(style="1.5", **overrides) -> dict``: a ``CueFusionTransformer3DModel`` config.
  ``"1.5"``: CogVideoX1.5-I2V style (``patch_size_t=2``, ``ofs_embed_dim``, RoPE, image latent on channels);
  ``"1.0"``: CogVideoX-5b-I2V style (Conv2d patches, learned positional embeddings, no ofs).
  Latent channels are ``TINY_LATENT_CHANNELS`` (4) so ``in_channels = 8`` (noise + image latents).
- ``tiny_transformer(style="1.5", seed=0, cls=CueFusionTransformer3DModel, **overrides)``: a built model.
- ``tiny_vae(seed=0)``: an ``AutoencoderKLCogVideoX`` with 4 blocks of width 8 (8x spatial, 4x temporal compression).
- ``tiny_text_encoder(seed=0)`` / ``tiny_tokenizer()``: a ``T5EncoderModel`` from a small ``T5Config`` and a
  ``T5Tokenizer`` built in memory (no files).
- ``tiny_scheduler()``: ``CogVideoXDPMScheduler`` with CogVideoX's settings.
- ``make_tiny_pipeline(tmp_dir=None, style="1.5", seed=0)``: a ``DirectAnimatorPipeline`` of the above; with
  ``tmp_dir`` it is also saved there (safetensors) so tests can ``from_pretrained(tmp_dir)``.
- ``tiny_driving_cues(num_frames=9, height=32, width=48, seed=0) -> DrivingCues``: random but well-formed cues
  (a moving bright blob as pose cue and body mask, a face crop, a face box) at the tiny pipeline's size.
- ``tiny_forward_inputs(model, batch=1, latent_frames=2, latent_hw=(4, 6), seed=0, cues=True) -> dict``: keyword
  arguments for the model's forward (random latents, text, timestep, ofs, RoPE, cue latents and masks).

Working resolution of the tiny pipeline: multiples of 16 px (8x VAE x 2 patch), frames 1 + 4k.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from directanimator.cues import DrivingCues, SimilarityTransform
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.pipeline import DirectAnimatorPipeline

TINY_LATENT_CHANNELS = 4
TINY_TEXT_DIM = 16
TINY_TEXT_LEN = 8


def tiny_transformer_config(style: str = "1.5", **overrides) -> dict:
    """Config dict for a tiny ``CueFusionTransformer3DModel`` (also valid for ``CogVideoXTransformer3DModel``
    once the cue keys ``cue_in_channels`` / ``cue_fusion`` are removed)."""
    config = dict(
        num_attention_heads=2,
        attention_head_dim=16,  # 3D RoPE splits the head dim 4/6/6: needs 16
        in_channels=2 * TINY_LATENT_CHANNELS,
        out_channels=TINY_LATENT_CHANNELS,
        time_embed_dim=8,
        text_embed_dim=TINY_TEXT_DIM,
        num_layers=3,
        sample_width=12,
        sample_height=8,
        sample_frames=5,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=TINY_TEXT_LEN,
        cue_in_channels=TINY_LATENT_CHANNELS,
    )
    if style == "1.5":
        # sample_frames is the pipeline's default window (17 frames = 5 latents)
        config.update(patch_size_t=2, ofs_embed_dim=8, use_rotary_positional_embeddings=True, patch_bias=False,
                      sample_frames=17)
    elif style == "1.0":
        # learned positional embeddings (CogVideoX-5b-I2V) fix the latent size to sample_height x sample_width
        config.update(use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True,
                      sample_height=4, sample_width=6)
    else:
        raise ValueError(f"style must be '1.0' or '1.5', got {style!r}")
    config.update(overrides)
    return config


def base_config(config: dict) -> dict:
    """The same config without the cue keys, for the plain ``CogVideoXTransformer3DModel``."""
    return {k: v for k, v in config.items() if k not in ("cue_in_channels", "cue_fusion", "cue_injection")}


def tiny_transformer(style: str = "1.5", seed: int = 0, cls=None, **overrides):
    """A tiny transformer with seeded random weights (``cls`` defaults to ``CueFusionTransformer3DModel``)."""

    cls = cls or CueFusionTransformer3DModel
    config = tiny_transformer_config(style, **overrides)
    if cls is not CueFusionTransformer3DModel:
        config = base_config(config)
    torch.manual_seed(seed)
    return cls(**config).eval()


def tiny_vae(seed: int = 0):
    """A tiny ``AutoencoderKLCogVideoX`` (latent channels ``TINY_LATENT_CHANNELS``)."""

    torch.manual_seed(seed)
    return AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=TINY_LATENT_CHANNELS,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    ).eval()


def tiny_tokenizer():
    """A ``T5Tokenizer`` over letters, built in memory."""

    pieces = "▁abcdefghijklmnopqrstuvwxyz"
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -float(i)) for i, c in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_text_encoder(seed: int = 0):
    """A tiny ``T5EncoderModel`` (d_model ``TINY_TEXT_DIM``)."""

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=32, d_model=TINY_TEXT_DIM, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
    )
    return T5EncoderModel(config).eval()


def tiny_scheduler():
    """``CogVideoXDPMScheduler`` with the settings CogVideoX ships."""

    return CogVideoXDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        timestep_spacing="trailing",
    )


def make_tiny_pipeline(tmp_dir: str | os.PathLike | None = None, style: str = "1.5", seed: int = 0):
    """A tiny ``DirectAnimatorPipeline`` on CPU; saved to ``tmp_dir`` (safetensors) when given."""

    pipe = DirectAnimatorPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_text_encoder(seed),
        vae=tiny_vae(seed),
        transformer=tiny_transformer(style, seed),
        scheduler=tiny_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    if tmp_dir is not None:
        pipe.save_pretrained(os.fspath(tmp_dir), safe_serialization=True)
    return pipe


def tiny_forward_inputs(model, batch: int = 1, latent_frames: int = 2, latent_hw=(4, 6), seed: int = 0,
                        cues: bool = True) -> dict:
    """Random forward kwargs for a (tiny) transformer, including RoPE and ofs when its config uses them."""

    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    c = cfg.in_channels
    inputs = dict(
        hidden_states=torch.randn(batch, latent_frames, c, h, w, generator=g),
        encoder_hidden_states=torch.randn(batch, cfg.max_text_seq_length, cfg.text_embed_dim, generator=g),
        timestep=torch.full((batch,), 500, dtype=torch.long),
    )
    if cfg.ofs_embed_dim:
        inputs["ofs"] = torch.full((1,), 2.0)
    if cfg.use_rotary_positional_embeddings:
        p, p_t = cfg.patch_size, cfg.patch_size_t
        t = latent_frames if p_t is None else latent_frames // p_t
        grid = (h // p, w // p)
        inputs["image_rotary_emb"] = get_3d_rotary_pos_embed(
            embed_dim=cfg.attention_head_dim, crops_coords=((0, 0), grid) if p_t is None else None,
            grid_size=grid, temporal_size=t, grid_type="linspace" if p_t is None else "slice",
            max_size=None if p_t is None else grid,
        )
    if cues:
        cc = cfg.get("cue_in_channels", TINY_LATENT_CHANNELS)
        inputs.update(
            pose_latents=torch.randn(batch, latent_frames, cc, h, w, generator=g),
            body_mask=torch.rand(batch, latent_frames, 1, h, w, generator=g),
            face_latents=torch.randn(batch, latent_frames, cc, h, w, generator=g),
            face_mask=torch.rand(batch, latent_frames, 1, h, w, generator=g),
        )
    return inputs


def tiny_driving_cues(num_frames: int = 9, height: int = 32, width: int = 48, seed: int = 0, fps: float = 8.0):
    """Well-formed ``DrivingCues`` with a moving blob (pose cue, masks) and a face box; no extraction run."""


    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    cx = np.linspace(width * 0.3, width * 0.7, num_frames, dtype=np.float32)
    body = np.stack([((xx - x) ** 2 / (width * 0.15) ** 2 + (yy - height / 2) ** 2 / (height * 0.35) ** 2 < 1)
                     for x in cx]).astype(np.float32)
    face = np.stack([((xx - x) ** 2 + (yy - height * 0.25) ** 2 < (height * 0.12) ** 2) for x in cx]).astype(np.float32)
    driving = (rng.integers(0, 60, (num_frames, height, width, 3)) + 180 * body[..., None]).astype(np.uint8)
    boxes = np.stack([cx - height * 0.12, np.full_like(cx, height * 0.13), cx + height * 0.12,
                      np.full_like(cx, height * 0.37)], axis=1).astype(np.float32)
    return DrivingCues(
        reference=rng.integers(0, 255, (height, width, 3)).astype(np.uint8),
        reference_mask=body[0].copy(),
        driving=driving,
        driving_masks=body.copy(),
        pose_cue=(body * 200).astype(np.uint8),
        face_cue=rng.integers(0, 255, (num_frames, height, width, 3)).astype(np.uint8),
        body_location=body,
        face_location=face,
        face_boxes=boxes,
        dropped=np.zeros(num_frames, bool),
        no_face=np.zeros(num_frames, bool),
        transform=SimilarityTransform(1.0, 0.0, 0.0),
        fps=fps,
        settings={"size": max(height, width)},
    )
