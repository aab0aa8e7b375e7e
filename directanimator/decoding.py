"""Streaming VAE decoding: a latent video decoded a few frames at a time, equal to one ``vae.decode`` call.

CogVideoX's VAE decoder is causal in time and already decodes in batches of ``vae.num_latent_frames_batch_size``
latent frames, handing each batch's causal-convolution state (``conv_cache``) to the next; ``vae.decode`` only
concatenates the batches at the end. :func:`iter_decode` runs the same batches and yields each one as soon as it is
decoded, so a minutes-long video never exists as one float tensor (a 3-minute 512 px video is 14 GB of float32
frames), and the frames are bit-identical to ``vae.decode``'s, with or without tiling (``vae.enable_tiling()``:
every spatial tile keeps its own ``conv_cache`` across the batches; the tiles are blended frame by frame, as
``tiled_decode`` blends them).
"""

from __future__ import annotations

from typing import Iterator

import torch


def _batches(num_frames: int, batch: int) -> list[tuple[int, int]]:
    """The latent frame ranges ``vae._decode`` decodes one after another (the remainder goes to the first)."""
    count = max(num_frames // batch, 1)
    rest = num_frames % batch
    return [(batch * k + (0 if k == 0 else rest), batch * (k + 1) + rest) for k in range(count)]


def _decode_batch(vae, z: torch.Tensor, cache):
    if vae.post_quant_conv is not None:
        z = vae.post_quant_conv(z)
    return vae.decoder(z, conv_cache=cache)


def _tiles(vae, height: int, width: int) -> list[tuple[int, int]]:
    step_h = int(vae.tile_latent_min_height * (1 - vae.tile_overlap_factor_height))
    step_w = int(vae.tile_latent_min_width * (1 - vae.tile_overlap_factor_width))
    return [(i, j) for i in range(0, height, step_h) for j in range(0, width, step_w)]


# Adapted from diffusers 0.42.1 (AutoencoderKLCogVideoX.tiled_decode): the same tiles, blends and crops, for one
# batch of latent frames, each tile continuing from its own conv_cache.
def _decode_tiled_batch(vae, z: torch.Tensor, caches: dict) -> torch.Tensor:
    height, width = z.shape[-2:]
    blend_h = int(vae.tile_sample_min_height * vae.tile_overlap_factor_height)
    blend_w = int(vae.tile_sample_min_width * vae.tile_overlap_factor_width)
    keep_h, keep_w = vae.tile_sample_min_height - blend_h, vae.tile_sample_min_width - blend_w
    rows: dict[int, list[torch.Tensor]] = {}
    for i, j in _tiles(vae, height, width):
        tile = z[:, :, :, i:i + vae.tile_latent_min_height, j:j + vae.tile_latent_min_width]
        tile, caches[i, j] = _decode_batch(vae, tile, caches.get((i, j)))
        rows.setdefault(i, []).append(tile)
    grid = list(rows.values())
    out_rows = []
    for r, row in enumerate(grid):
        out_row = []
        for c, tile in enumerate(row):
            if r > 0:
                tile = vae.blend_v(grid[r - 1][c], tile, blend_h)
            if c > 0:
                tile = vae.blend_h(row[c - 1], tile, blend_w)
            out_row.append(tile[:, :, :, :keep_h, :keep_w])
        out_rows.append(torch.cat(out_row, dim=4))
    return torch.cat(out_rows, dim=3)


@torch.no_grad()
def iter_decode(vae, latents: torch.Tensor) -> Iterator[torch.Tensor]:
    """Decode ``latents`` (``[B, C, F, h, w]``, unscaled, as ``vae.decode`` takes them) batch by batch.

    Yields:
        ``[B, 3, n, H, W]`` samples in [-1, 1], in order; concatenated on dim 2 they equal
        ``vae.decode(latents).sample`` bit for bit (tiled or not, as ``vae.use_tiling`` says).
    """
    hook = getattr(vae, "_hf_hook", None)  # model CPU offload moves the VAE in before decode(); do the same
    if hook is not None and hasattr(hook, "pre_forward"):
        hook.pre_forward(vae)
    height, width = latents.shape[-2:]
    tiled = vae.use_tiling and (width > vae.tile_latent_min_width or height > vae.tile_latent_min_height)
    cache: object = {} if tiled else None
    for start, stop in _batches(latents.shape[2], vae.num_latent_frames_batch_size):
        z = latents[:, :, start:stop]
        if tiled:
            yield _decode_tiled_batch(vae, z, cache)
        else:
            sample, cache = _decode_batch(vae, z, cache)
            yield sample
