"""The models a training run loads: the frozen VAE and text encoder, the tokenizer, the noise scheduler and the
trained CueFusion transformer, from a CogVideoX(1.5) I2V or DirectAnimator pipeline folder, checked first."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
from transformers import AutoTokenizer, T5EncoderModel
from transformers.integrations import unset_hf_deepspeed_config

from directanimator.errors import InputError
from directanimator.model_folders import resolve_model_folder
from directanimator.modeling import CueFusionTransformer3DModel
from trainers.cli_checks import check_model_folder, loading

__all__ = ["Components", "check_components", "load_components", "whole_models"]


@dataclass
class Components:
    """Frozen encoders, the noise scheduler and the trained transformer."""

    vae: torch.nn.Module
    tokenizer: object
    text_encoder: torch.nn.Module
    scheduler: object
    transformer: torch.nn.Module
    root: str


def load_components(pretrained: str, transformer_path: str | None = None, encoder_dtype=None) -> Components:
    """Load the parts of a CogVideoX(1.5) I2V or DirectAnimator pipeline folder (or cached repo id).

    Args:
        pretrained: folder with vae/, text_encoder/, tokenizer/, scheduler/ and transformer/.
        transformer_path: a transformer folder that replaces the pipeline's (stage-1 checkpoint for stage 2).
            A plain CogVideoX transformer is turned into a CueFusion one (``from_cogvideox``).
        encoder_dtype: dtype of the frozen VAE and text encoder (bf16 on GPUs halves T5-XXL's 19 GB); the
            transformer keeps its float32 master weights (mixed precision runs the matmuls in bf16).
    """

    root, tpath = check_components(pretrained, transformer_path)
    with loading(f"the VAE in {root}/vae"):
        vae = AutoencoderKLCogVideoX.from_pretrained(root, subfolder="vae", use_safetensors=True,
                                                     dtype=encoder_dtype)
    with loading(f"the text encoder in {root}/text_encoder"):
        text_encoder = T5EncoderModel.from_pretrained(os.path.join(root, "text_encoder"), use_safetensors=True,
                                                      dtype=encoder_dtype)
    with loading(f"the tokenizer in {root}/tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
    with loading(f"the scheduler in {root}/scheduler"):
        scheduler = CogVideoXDPMScheduler.from_pretrained(root, subfolder="scheduler")
    with loading(f"the transformer in {tpath}"):
        with open(os.path.join(tpath, "config.json")) as fh:
            config = json.load(fh)
        if config.get("_class_name") == "CueFusionTransformer3DModel" or "cue_in_channels" in config:
            transformer = CueFusionTransformer3DModel.from_pretrained(tpath, use_safetensors=True)
        else:
            transformer = CueFusionTransformer3DModel.from_cogvideox(tpath,
                                                                     cue_in_channels=vae.config.latent_channels)
    for module in (vae, text_encoder):
        module.requires_grad_(False).eval()
    return Components(vae, tokenizer, text_encoder, scheduler, transformer, root)


def check_components(pretrained: str, transformer_path: str | None = None) -> tuple[str, str]:
    """(pipeline folder, transformer folder) that ``load_components`` would load, each checked for safetensors
    weights (the animate CLI's check), or an ``InputError`` before anything is loaded."""
    root = resolve_model_folder(pretrained)
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        if not os.path.isdir(os.path.join(root, part)):
            raise InputError(
                f"{pretrained} has no {part}/ folder; pass a CogVideoX1.5 I2V or DirectAnimator pipeline folder"
            )
    check_model_folder(root, ["vae", "text_encoder"] + ([] if transformer_path else ["transformer"]))
    tpath = resolve_model_folder(transformer_path or root, component="transformer")
    if transformer_path:
        check_model_folder(tpath)
    return root, tpath


@contextlib.contextmanager
def whole_models(accelerator):
    """Load models whole under DeepSpeed ZeRO-3.

    accelerate registers its DeepSpeed config with transformers whatever ``zero3_init_flag`` says, and under ZeRO-3
    transformers' ``from_pretrained`` then builds every model inside ``deepspeed.zero.Init``: the frozen T5 would
    be partitioned although no DeepSpeed engine ever gathers it (empty weights at encode time). The frozen models
    (VAE, text encoder, Same2X teacher) and the trained transformer, which ``prepare`` shards itself, are loaded
    with the registration lifted.
    """
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None or plugin.zero_stage != 3:
        yield
        return
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        plugin.set_deepspeed_weakref()
