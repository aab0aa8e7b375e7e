"""RoPE for the vision tokens: the one function the pipeline and the trainers both call, so that a model is trained
and sampled with the same positions.

It is CogVideoX's image-to-video recipe: CogVideoX 1.0 (no temporal patch) fits the latent grid into the training
resolution (resize-crop region of the RoPE table); CogVideoX1.5 (``patch_size_t``) slices the table from its top-left
corner and refuses grids larger than the table.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import get_resize_crop_region_for_grid

from directanimator.errors import InputError


# Adapted from diffusers 0.42.1 (CogVideoXImageToVideoPipeline._prepare_rotary_positional_embeddings)
def vision_rotary_embedding(config, latent_frames: int, latent_height: int, latent_width: int, device=None,
                            vae_scale_factor: int = 8) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RoPE ``(cos, sin)`` for the vision tokens of a ``latent_frames x latent_height x latent_width`` latent video
    (``latent_frames`` as the transformer receives them, CogVideoX1.5's padding frames included); ``None`` when the
    transformer ``config`` uses no RoPE.

    Raises:
        InputError: the size is larger than a CogVideoX1.5 model's RoPE table (``vae_scale_factor`` turns the sizes
            of the message into pixels).
    """
    if not config.use_rotary_positional_embeddings:
        return None
    p, p_t = config.patch_size, config.patch_size_t
    grid_h, grid_w = latent_height // p, latent_width // p
    base_h, base_w = config.sample_height // p, config.sample_width // p
    if p_t is None:
        crops = get_resize_crop_region_for_grid((grid_h, grid_w), base_w, base_h)
        return get_3d_rotary_pos_embed(embed_dim=config.attention_head_dim, crops_coords=crops,
                                       grid_size=(grid_h, grid_w), temporal_size=latent_frames, device=device)
    if grid_h > base_h or grid_w > base_w:
        s = vae_scale_factor
        raise InputError(
            f"{latent_height * s}x{latent_width * s} is larger than this model's RoPE table "
            f"({config.sample_height * s}x{config.sample_width * s}); use a smaller resolution "
            "(--size when animating, --long-side when training)"
        )
    return get_3d_rotary_pos_embed(embed_dim=config.attention_head_dim, crops_coords=None,
                                   grid_size=(grid_h, grid_w), temporal_size=(latent_frames + p_t - 1) // p_t,
                                   grid_type="slice", max_size=(base_h, base_w), device=device)
