"""One RoPE for training and inference (directanimator.rope): the trainers' call, the pipeline's and diffusers'
CogVideoX image-to-video pipeline give identical embeddings for the same shapes."""

import pytest
import torch
from diffusers import CogVideoXImageToVideoPipeline

from directanimator.errors import InputError
from directanimator.rope import vision_rotary_embedding
from directanimator.tiny import make_tiny_pipeline, tiny_transformer


@pytest.mark.parametrize("style", ["1.5", "1.0"])
def test_trainer_pipeline_and_diffusers_get_identical_rope(style):
    pipe = make_tiny_pipeline()
    pipe.transformer = tiny_transformer(style, cue_in_channels=pipe.vae.config.latent_channels)
    cfg = pipe.transformer.config
    f = pipe.vae_scale_factor_spatial
    for height, width, latents in ((32, 48, 4), (16, 32, 2), (cfg.sample_height * f, cfg.sample_width * f, 6)):
        # the trainers call it with the latent video's shape (trainers.trainer.Trainer.training_step)
        trainer = vision_rotary_embedding(cfg, latents, height // f, width // f, "cpu")
        pipeline = pipe._rotary_embeddings(height, width, latents, "cpu")
        # diffusers' own method, with this pipeline as its ``self`` (it reads the same attributes)
        reference = CogVideoXImageToVideoPipeline._prepare_rotary_positional_embeddings(
            pipe, height, width, latents, torch.device("cpu"))
        for ours, theirs in ((trainer, pipeline), (pipeline, reference)):
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs)), (style, height, width, latents)


def test_a_size_past_the_rope_table_is_a_clear_error():
    model = tiny_transformer("1.5")
    cfg = model.config
    with pytest.raises(InputError, match="larger than this model's RoPE table"):
        vision_rotary_embedding(cfg, 2, cfg.sample_height + cfg.patch_size, cfg.sample_width, "cpu")
