"""One training step's inputs: a cached batch padded as the pipeline pads at inference, with dropped cues and
captions, noised at random timesteps, and the CueFusion transformer called on it."""

from __future__ import annotations

import torch

from directanimator.errors import InputError
from directanimator.latents import pad_latent_frames

__all__ = ["DROPPABLE_CUES", "drop_captions", "drop_cues", "pad_batch_frames", "parse_drop_cues", "prepare_step",
           "run_model"]


_FRAME_KEYS = ("latents", "pose_latents", "face_latents", "body_mask", "face_mask", "pseudo_pose_latents",
               "pseudo_face_latents")


def pad_batch_frames(batch: dict, patch_size_t: int | None) -> dict:
    """Make the latent frame count a multiple of ``patch_size_t`` exactly as the pipeline does at inference
    (``directanimator.latents.pad_latent_frames``: first frame repeated in front; the image latent then sits in
    that first slot)."""
    out = dict(batch)
    for key in _FRAME_KEYS:
        if key in batch:
            out[key] = pad_latent_frames(batch[key], patch_size_t, mode="repeat")[0]
    return out


def prepare_step(batch: dict, scheduler, dtype, generator=None) -> dict:
    """Noise, timesteps and the I2V input for one batch (shared by student and teacher)."""
    latents = batch["latents"].to(dtype)
    bsz = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (bsz,), generator=generator,
                              device=latents.device).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    image = batch["image_latents"].to(dtype)
    padding = image.new_zeros(bsz, latents.shape[1] - image.shape[1], *image.shape[2:])
    model_input = torch.cat([noisy, torch.cat([image, padding], dim=1)], dim=2)
    return {"latents": latents, "noisy": noisy, "timesteps": timesteps, "model_input": model_input}


def run_model(model, step: dict, batch: dict, prefix: str, dtype, rope, block: int | None = None,
              stop: bool = False):
    """Call a CueFusion transformer on a prepared step with the cues ``<prefix>pose_latents`` etc."""
    # a DeepSpeed engine has a ``config`` of its own (its JSON dict): read the wrapped model's, as for DDP
    config = getattr(model, "module", model).config
    ofs = step["model_input"].new_full((1,), 2.0) if config.ofs_embed_dim else None

    def get(key):  # a cue left out by --drop-cues is absent from the batch: the model gets None
        return batch[key].to(dtype) if key in batch else None

    return model(
        hidden_states=step["model_input"],
        encoder_hidden_states=batch["prompt_embeds"].to(dtype),
        timestep=step["timesteps"],
        pose_latents=get(prefix + "pose_latents"),
        body_mask=get("body_mask"),
        face_latents=get(prefix + "face_latents"),
        face_mask=get("face_mask"),
        ofs=ofs,
        image_rotary_emb=rope,
        return_block_tokens=block,
        stop_at_block=stop,
        return_dict=True,
    )


DROPPABLE_CUES = {"face": ("face_latents", "pseudo_face_latents", "face_mask"),
                  "location": ("body_mask", "face_mask")}


def parse_drop_cues(text: str) -> set[str]:
    """The cue names of ``--drop-cues`` ("" -> none); InputError for an unknown name."""
    names = {t.strip() for t in (text or "").split(",") if t.strip()}
    unknown = names - set(DROPPABLE_CUES)
    if unknown:
        raise InputError(f"--drop-cues: unknown cue(s) {sorted(unknown)}; use a comma list of {sorted(DROPPABLE_CUES)}")
    return names


def drop_captions(batch: dict, empty: torch.Tensor, probability: float) -> dict:
    """Replace each sample's ``prompt_embeds`` by ``empty`` (the empty caption's [L, D]) with ``probability``.

    The draw uses the global RNG of the batch's device, which ``save_state`` stores, so resume stays exact.
    """
    if probability <= 0:
        return batch
    embeds = batch["prompt_embeds"]
    drop = torch.rand(embeds.shape[0], device=embeds.device) < probability
    return {**batch, "prompt_embeds": torch.where(drop[:, None, None], empty.to(embeds), embeds)}


def drop_cues(batch: dict, names: set[str]) -> dict:
    """The batch without the tensors of the dropped cues (the model then treats them as absent)."""
    gone = {key for name in names for key in DROPPABLE_CUES[name]}
    return {k: v for k, v in batch.items() if k not in gone} if gone else batch
