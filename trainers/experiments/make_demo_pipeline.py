"""Assemble an initial DirectAnimator pipeline folder around a trained VAE (the start of the demo model's training).

    python -m trainers.experiments.make_demo_pipeline --vae runs/demo/vae/vae --out runs/demo/init [--size 64 --frames 17
        --layers 4 --heads 4 --head-dim 32 --text-dim 32 --text-length 32 --seed 0
        --cue-injection {cuefusion,concat,cross_attention}]

Writes ``model_index.json`` + ``vae/`` (the given VAE), ``text_encoder/`` (a small ``T5EncoderModel`` from a config
with seeded random weights: the demo's captions carry little, and no T5 weights can be downloaded here),
``tokenizer/`` (a character-level ``T5Tokenizer`` built in memory and saved as ``tokenizer.json``), ``transformer/``
(a fresh small ``CueFusionTransformer3DModel`` in the CogVideoX1.5-I2V layout: patch 2x2x2, RoPE, ofs embedding) and
``scheduler/`` (``CogVideoXDPMScheduler`` with CogVideoX's settings). Every weight file is safetensors. The stage CLIs
(``trainers.same_id --pretrained OUT``) then train the transformer. ``--cue-injection concat`` / ``cross_attention``
builds the DC / CA injection variant of the paper's Table 5 ablation instead of CueFusion
(``directanimator.injection``); every variant starts as the plain transformer (identity initialisation).
"""

from __future__ import annotations

import os
import string
import sys
from pathlib import Path

import torch

from directanimator.files import atomic_folder
from directanimator.errors import InputError, run_cli
from directanimator.injection import CUE_INJECTIONS, check_cue_injection
from trainers.cli_checks import (
    ArgumentParser, check_model_folder, check_output_dir, integer, loading, positive_int, random_seed, writing)

# characters of the synthetic captions (lower-case words, spaces, hyphens); anything else maps to <unk>
CHARACTERS = "▁" + string.ascii_lowercase + string.digits + "-,.'"


def make_tokenizer():
    """A character-level ``T5Tokenizer`` (no sentencepiece file needed; saves as ``tokenizer.json``)."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -float(i)) for i, c in enumerate(CHARACTERS)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def make_text_encoder(vocab_size: int, dim: int, seed: int = 0):
    """A small ``T5EncoderModel`` with seeded random weights (2 layers, ``dim`` wide)."""
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    config = T5Config(vocab_size=vocab_size, d_model=dim, d_kv=dim // 4, d_ff=2 * dim, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=16, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(config).eval()


def make_scheduler():
    """``CogVideoXDPMScheduler`` with the settings CogVideoX ships (v-prediction, zero-SNR, trailing spacing)."""
    from diffusers import CogVideoXDPMScheduler

    return CogVideoXDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        timestep_spacing="trailing", snr_shift_scale=1.0,
    )


def make_transformer(latent_channels: int, size: int, frames: int, layers: int, heads: int, head_dim: int,
                     text_dim: int, text_length: int, seed: int = 0, cue_injection: str = "cuefusion"):
    """A fresh ``CueFusionTransformer3DModel`` (CogVideoX1.5-I2V layout) for ``size`` x ``size`` windows of
    ``frames`` frames with an 8x VAE of ``latent_channels`` channels.

    Args:
        latent_channels: the VAE's latent channels (noise + image latent = 2x this on input; cues use this many).
        size: largest working side in pixels; sets the RoPE table (``sample_height/width`` = size / 8).
        frames: training window (``sample_frames``; the pipeline's default window).
        layers / heads / head_dim: depth, attention heads and head width (head_dim a multiple of 16 for 3D RoPE).
        text_dim / text_length: T5 width and the number of prompt tokens.
        seed: initialisation seed.
        cue_injection: ``"cuefusion"`` (default), ``"concat"`` or ``"cross_attention"`` (the injection ablation).
    """
    from directanimator.modeling import CueFusionTransformer3DModel

    check_cue_injection(cue_injection)
    if head_dim % 16:
        raise InputError(f"--head-dim must be a multiple of 16 (3D RoPE splits it), got {head_dim}")
    if size % 16:
        raise InputError(f"--size must be a multiple of 16, got {size}")
    dim = heads * head_dim
    torch.manual_seed(seed)
    return CueFusionTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=2 * latent_channels,
        out_channels=latent_channels, time_embed_dim=dim, ofs_embed_dim=dim, text_embed_dim=text_dim,
        num_layers=layers, sample_width=size // 8, sample_height=size // 8, sample_frames=frames, patch_size=2,
        patch_size_t=2, temporal_compression_ratio=4, max_text_seq_length=text_length, patch_bias=False,
        use_rotary_positional_embeddings=True, cue_in_channels=latent_channels, cue_injection=cue_injection,
    )


def assemble(vae_dir: str, out: str, size: int = 64, frames: int = 17, layers: int = 4, heads: int = 4,
             head_dim: int = 32, text_dim: int = 32, text_length: int = 32, seed: int = 0,
             cue_injection: str = "cuefusion") -> Path:
    """Write the initial pipeline folder ``out`` (atomically) and return it. Arguments as in ``make_transformer``."""
    from diffusers import AutoencoderKLCogVideoX

    from directanimator.latents import check_frame_count
    from directanimator.pipeline import DirectAnimatorPipeline

    if not os.path.isfile(os.path.join(vae_dir, "config.json")):
        raise InputError(f"--vae {vae_dir} is not a VAE folder (no config.json); run python -m trainers.experiments.vae first")
    check_model_folder(vae_dir, hint="pass the vae/ folder that python -m trainers.experiments.vae wrote")
    check_frame_count(frames, 4, what="--frames")
    final = check_output_dir(out, "--out")
    with loading(f"the VAE in {vae_dir}", hint="pass the vae/ folder that python -m trainers.experiments.vae wrote"):
        vae = AutoencoderKLCogVideoX.from_pretrained(vae_dir, use_safetensors=True)
    if len(vae.config.block_out_channels) != 4:
        raise InputError("the VAE must have 4 blocks (8x spatial compression)")
    tokenizer = make_tokenizer()
    pipe = DirectAnimatorPipeline(
        tokenizer=tokenizer,
        text_encoder=make_text_encoder(len(tokenizer), text_dim, seed),
        vae=vae,
        transformer=make_transformer(vae.config.latent_channels, size, frames, layers, heads, head_dim, text_dim,
                                     text_length, seed, cue_injection),
        scheduler=make_scheduler(),
    )
    with writing(f"the pipeline {final}", final.parent), atomic_folder(final, replaceable=lambda p: True) as tmp:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
    return final


def main(argv=None) -> int:
    """CLI entry; InputError -> one line on stderr, exit code 2."""
    p = ArgumentParser(prog="python -m trainers.experiments.make_demo_pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--vae", required=True, help="trained VAE folder (python -m trainers.experiments.vae writes OUTPUT/vae)")
    p.add_argument("--out", required=True, help="pipeline folder to write")
    p.add_argument("--size", type=integer(16, 2048), default=64,
                   help="largest working side in pixels (RoPE table; default 64)")
    p.add_argument("--frames", type=positive_int, default=17, help="training window in frames, 1+4k (default 17)")
    p.add_argument("--layers", type=positive_int, default=4, help="transformer blocks (default 4)")
    p.add_argument("--heads", type=positive_int, default=4, help="attention heads (default 4)")
    p.add_argument("--head-dim", type=integer(16), default=32, help="width per head, multiple of 16 (default 32)")
    # make_text_encoder gives T5 4 heads of text_dim // 4
    p.add_argument("--text-dim", type=integer(4), default=32, help="T5 width (default 32)")
    p.add_argument("--text-length", type=positive_int, default=32, help="prompt tokens (default 32)")
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--cue-injection", choices=CUE_INJECTIONS, default="cuefusion",
                   help="how the cues enter the transformer: cuefusion (the paper's CF-DiT, default), concat (DC "
                        "injection) or cross_attention (CA injection), for the Table 5 ablation")
    def work():
        args = p.parse_args(argv)
        return assemble(args.vae, args.out, args.size, args.frames, args.layers, args.heads, args.head_dim,
                        args.text_dim, args.text_length, args.seed, args.cue_injection)

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
