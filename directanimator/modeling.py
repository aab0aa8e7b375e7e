"""CueFusion DiT: CogVideoX's transformer with the pose and face cues injected in every block (paper eqs. 1-3).

``CueFusionTransformer3DModel`` subclasses diffusers' ``CogVideoXTransformer3DModel``: every base parameter keeps its
name, so CogVideoX / CogVideoX1.5 image-to-video weights load unchanged and only the cue modules are new:

- ``pose_patch_embed`` / ``face_patch_embed`` (``CuePatchEmbed``): cue latents + their location mask (16 + 1 channels)
  patchified exactly like CogVideoX patchifies the video latents, so cue token ``i`` sits on vision token ``i``. No
  extra tokens enter attention, the cost is a few linear layers.
- ``transformer_blocks.{i}.cue_fusion`` (``CueFusion``): per cue, ``alpha, beta, gamma = Linear(SiLU(temb))`` (eq. 1),
  ``e^M = LN(e) * (1 + alpha) + beta`` (eq. 2) is added to the normalised vision tokens right before attention, and
  ``e^G = e + gamma * e^M`` (eq. 3) is the cue stream the next block receives.

Identity at initialisation: the added term is ``gain * e^M`` with ``gain`` a per-channel vector that starts at zero
(a diagonal "zero projection", as ControlNet's zero convolutions), and the modulation MLP starts at zero (adaLN-Zero,
so ``e^M = LN(e)`` and ``e^G = e``). A fresh model therefore returns exactly the base model's output, yet training
starts at once: the gradient of ``gain`` at step 0 is ``LN(e) * dL/dh`` (non-zero), and once ``gain`` has moved the
MLP and the patch embeddings receive gradients too. A full ``dim x dim`` zero projection would add ``2 * 42 * dim^2``
(~0.8 B) parameters at CogVideoX1.5 size; the vector costs ``2 * 42 * dim``.

The cue modules (``CuePatchEmbed``, ``CueFusion``, ``CueFusionBlock``) are defined in ``directanimator.cue_blocks`` and
re-exported here; model folders are resolved and read by ``directanimator.model_folders``.

``cue_injection="concat"`` / ``"cross_attention"`` swap the CueFusion modules for the DC / CA injections of the
paper's Table 5 ablation (``directanimator.injection``); the default ``"cuefusion"`` is the model described above.

Written against diffusers 0.42.1 (the block's and the model's forward are adapted from it; requirements pin
``diffusers>=0.42.1,<0.43``): the subclass relies on the base constructor's arguments, ``CogVideoXBlock``'s attribute
names and ``_gradient_checkpointing_func``, which a later diffusers may change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers.configuration_utils import FrozenDict, register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (see below)
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from diffusers.utils import BaseOutput, apply_lora_scale
from torch import nn

from directanimator.errors import InputError
from directanimator.injection import CueCrossAttention, check_cue_injection, concat_injection
from directanimator.attention import CueFusionAttnProcessor
from directanimator.cue_blocks import CUE_NAMES, CueFusion, CueFusionBlock, CuePatchEmbed
from directanimator.model_folders import load_safetensors_folder, resolve_model_folder
from directanimator.parallel import CONTEXT_PARALLEL_PLAN

# ``model_index.json`` records this module as the transformer's library (["directanimator.modeling",
# "CueFusionTransformer3DModel"]). DiffusionPipeline.from_pretrained resolves such a library from ``sys.modules``
# (importing directanimator.pipeline imports this module; nothing is imported because a folder names it) and finds
# the load method by looking up base-class names such as ``ModelMixin`` in it: hence the import above.

__all__ = [
    "CUE_NAMES",
    "CuePatchEmbed",
    "CueFusion",
    "CueFusionBlock",
    "CueFusionTransformer3DModel",
    "CueFusionTransformerOutput",
    "load_safetensors_folder",
    "resolve_model_folder",
]

@dataclass
class CueFusionTransformerOutput(BaseOutput):
    """Output of ``CueFusionTransformer3DModel``.

    Args:
        sample: predicted latents [B, F, C, H, W] (``None`` when the forward stopped at a block).
        block_tokens: vision tokens [B, N, D] after block ``return_block_tokens`` (``None`` unless requested).
    """

    sample: torch.Tensor | None = None
    block_tokens: torch.Tensor | None = None


def _normalise_cue_scale(cue_scale) -> tuple[Any, Any]:
    if isinstance(cue_scale, (tuple, list)):
        if len(cue_scale) != len(CUE_NAMES):
            raise InputError(f"cue_scale must be one number or a (pose, face) pair, got {len(cue_scale)} values")
        scales = tuple(cue_scale)
    else:
        scales = (cue_scale,) * len(CUE_NAMES)
    out = []
    for s in scales:
        if isinstance(s, torch.Tensor) and s.ndim == 1:
            s = s[:, None, None]  # one strength per sample
        out.append(s)
    return tuple(out)


class CueFusionTransformer3DModel(CogVideoXTransformer3DModel):
    """CogVideoX transformer with CueFusion blocks (DirectAnimator's CF-DiT).

    All arguments of ``CogVideoXTransformer3DModel`` are accepted and mean the same; the extra ones are:

    Args:
        cue_in_channels: latent channels of each cue video (the VAE's latent channels, 16 for CogVideoX); one mask
            channel is added on top, so each ``CuePatchEmbed`` sees ``cue_in_channels + 1`` channels.
        cue_fusion: build the cue modules. ``False`` gives a model with exactly the base parameters (an ablation /
            baseline that ignores cues), whatever ``cue_injection`` says.
        cue_injection: how the cues enter (``directanimator.injection``): ``"cuefusion"`` (default, the paper's
            CF-DiT), ``"concat"`` (DC injection: cue channels concatenated with the video latents before the patch
            embedding) or ``"cross_attention"`` (CA injection: a cross-attention to the cue tokens in every block).
            Every variant starts as the exact base model. Read it back as ``model.cue_injection``: the default is
            not written to the config, so configs of CueFusion models are the same as before the option existed.
    """

    _no_split_modules = ["CueFusionBlock", "CogVideoXBlock", "CogVideoXPatchEmbed", "CuePatchEmbed"]
    # regional compilation: ``model.compile_repeated_blocks(fullgraph=True)`` compiles one block and reuses it
    _repeated_blocks = ["CueFusionBlock"]
    # context parallelism (text, vision tokens and cue streams split along the sequence): directanimator.parallel
    _cp_plan = CONTEXT_PARALLEL_PLAN

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        use_learned_positional_embeddings: bool = False,
        patch_bias: bool = True,
        cue_in_channels: int = 16,
        cue_fusion: bool = True,
        cue_injection: str = "cuefusion",
    ):
        check_cue_injection(cue_injection)
        # The base is built with no blocks (num_layers=0) so that the CueFusionBlocks below are the only ones
        # allocated; the config keeps the real num_layers (restored right after).
        super().__init__(
            num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim, in_channels=in_channels,
            out_channels=out_channels, flip_sin_to_cos=flip_sin_to_cos, freq_shift=freq_shift,
            time_embed_dim=time_embed_dim, ofs_embed_dim=ofs_embed_dim, text_embed_dim=text_embed_dim, num_layers=0,
            dropout=dropout, attention_bias=attention_bias, sample_width=sample_width, sample_height=sample_height,
            sample_frames=sample_frames, patch_size=patch_size, patch_size_t=patch_size_t,
            temporal_compression_ratio=temporal_compression_ratio, max_text_seq_length=max_text_seq_length,
            activation_fn=activation_fn, timestep_activation_fn=timestep_activation_fn,
            norm_elementwise_affine=norm_elementwise_affine, norm_eps=norm_eps,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings, patch_bias=patch_bias,
        )
        self.register_to_config(num_layers=num_layers)
        inner_dim = num_attention_heads * attention_head_dim
        num_cues = len(CUE_NAMES) if cue_fusion and cue_injection != "concat" else 0
        # Same arguments as CogVideoXTransformer3DModel passes to CogVideoXBlock in diffusers 0.42.1.
        self.transformer_blocks = nn.ModuleList(
            [
                CueFusionBlock(
                    dim=inner_dim,
                    num_attention_heads=num_attention_heads,
                    attention_head_dim=attention_head_dim,
                    time_embed_dim=time_embed_dim,
                    dropout=dropout,
                    activation_fn=activation_fn,
                    attention_bias=attention_bias,
                    norm_elementwise_affine=norm_elementwise_affine,
                    norm_eps=norm_eps,
                    num_cues=num_cues,
                    cue_injection=cue_injection,
                )
                for _ in range(num_layers)
            ]
        )
        self._cue_injection = cue_injection
        if cue_injection == "cuefusion":
            # The default leaves no trace in the config: a CueFusion model's config stays as it always was. Out of
            # "_use_default_values" too, else from_config({**model.config, "cue_injection": ...}) would drop the key.
            config = {k: v for k, v in self._internal_dict.items() if k != "cue_injection"}
            if "_use_default_values" in config:
                config["_use_default_values"] = [k for k in config["_use_default_values"] if k != "cue_injection"]
            self._internal_dict = FrozenDict(config)
        if cue_fusion:
            # concat: the extra input channels of the vision patch embedding, whose bias is the base's
            bias = patch_bias and cue_injection != "concat"

            def cue_embed():
                return CuePatchEmbed(patch_size, patch_size_t, cue_in_channels + 1, inner_dim, bias)

            self.pose_patch_embed = cue_embed()
            self.face_patch_embed = cue_embed()
            if cue_injection == "concat":
                self.init_cue_weights()
        else:
            self.pose_patch_embed = None
            self.face_patch_embed = None
        # CogVideoX's attention through diffusers' dispatcher: set_attention_backend() works, and the rotated vision
        # tokens are concatenated rather than copied into slices (same outputs; see directanimator/attention.py)
        self.set_attn_processor(CueFusionAttnProcessor())

    @property
    def cue_injection(self) -> str:
        """How the cues enter the model: ``"cuefusion"``, ``"concat"`` or ``"cross_attention"``."""
        return self._cue_injection

    def enable_cache(self, config) -> None:
        """``CacheMixin.enable_cache`` with ``CueFusionBlock`` registered in diffusers' block registry first (the
        cache hooks look the block class up there); ``directanimator.caching`` names the caches that apply."""
        from directanimator.caching import register_cue_blocks

        register_cue_blocks()
        super().enable_cache(config)

    # ---------------------------------------------------------------------------------------------------- weights

    def cue_parameter_names(self) -> list[str]:
        """Names (state-dict keys) of every parameter that the base CogVideoX model does not have."""
        return [n for n, _ in self.named_parameters() if _is_cue_key(n)]

    def init_cue_weights(self) -> None:
        """(Re)initialise the cue modules: patch embeddings with PyTorch's default init (zero for ``"concat"``),
        CueFusion / cross-attention to identity."""
        for module in self.modules():
            if isinstance(module, CuePatchEmbed):
                module.proj.reset_parameters()
                if self._cue_injection == "concat":
                    nn.init.zeros_(module.proj.weight)  # identity at init (no bias in this variant)
            elif isinstance(module, (CueFusion, CueCrossAttention)):
                module.reset_parameters()

    @classmethod
    def from_cogvideox(
        cls,
        path_or_model: str | os.PathLike | CogVideoXTransformer3DModel,
        subfolder: str | None = None,
        dtype: torch.dtype | None = None,
        **cue_kwargs,
    ) -> "CueFusionTransformer3DModel":
        """Build a CF-DiT from a CogVideoX transformer; only the cue weights are new (identity-initialised).

        Args:
            path_or_model: a ``CogVideoXTransformer3DModel`` instance (its tensors are shared, not copied), a folder
                with ``config.json`` + ``*.safetensors`` (a pipeline folder works too: its ``transformer/`` is
                used), or a Hub repo id that is in the local Hugging Face cache. A ``CueFusionTransformer3DModel``
                of another ``cue_injection`` works too: only its base weights are taken.
            subfolder: folder inside ``path_or_model`` that holds the transformer.
            dtype: cast the model to this dtype (default: keep the dtype of the loaded weights).
            **cue_kwargs: cue arguments of the constructor (``cue_in_channels``, ``cue_fusion``,
                ``cue_injection``).

        Raises:
            InputError: the path is missing or weightless, or the checkpoint misses or adds non-cue weights.
        """

        if isinstance(path_or_model, CogVideoXTransformer3DModel):
            config = dict(path_or_model.config)
            state = path_or_model.state_dict()
            source = type(path_or_model).__name__
        else:
            folder = resolve_model_folder(path_or_model, subfolder=subfolder, component="transformer")
            with open(os.path.join(folder, "config.json")) as f:
                config = json.load(f)
            state = load_safetensors_folder(folder)
            source = folder
        base_keys = set(CogVideoXTransformer3DModel._get_init_keys(CogVideoXTransformer3DModel)) - {"self"}
        own_keys = set(cls._get_init_keys(cls)) - {"self"}
        unknown = set(cue_kwargs) - (own_keys - base_keys)
        if unknown:
            raise InputError(f"from_cogvideox got unknown cue arguments {sorted(unknown)}")
        init_kwargs = {k: v for k, v in config.items() if k in own_keys}
        init_kwargs.update(cue_kwargs)
        if "cue_in_channels" in config and init_kwargs.get("cue_injection", "cuefusion") != config.get(
                "cue_injection", "cuefusion"):
            # a DirectAnimator model of another injection variant: its cue weights mean nothing to this one, which
            # starts from the same base weights with fresh (identity) cue modules
            state = {k: v for k, v in state.items() if not _is_cue_key(k)}

        # Empty (meta) parameters: the base weights are assigned from the checkpoint without a random init first.
        with init_empty_weights():
            model = cls(**init_kwargs)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        bad_missing = [k for k in missing if not _is_cue_key(k)]
        if bad_missing or unexpected:
            parts = []
            if bad_missing:
                parts.append(f"missing non-cue weights {_short_list(bad_missing)}")
            if unexpected:
                parts.append(f"unexpected weights {_short_list(unexpected)}")
            raise InputError(
                f"{source} is not a CogVideoX transformer checkpoint matching its config ({'; '.join(parts)}); "
                "pass the transformer of a CogVideoX / CogVideoX1.5 image-to-video model"
            )
        reference = model.proj_out.weight
        if missing:
            cue_types = (CuePatchEmbed, CueFusion, CueCrossAttention)
            cue_modules = [m for m in model.modules() if isinstance(m, cue_types)]
            for module in cue_modules:
                module.to_empty(device=reference.device, recurse=True)
            model.init_cue_weights()
            for module in cue_modules:
                module.to(dtype=reference.dtype)
        if dtype is not None and dtype != reference.dtype:
            model = model.to(dtype=dtype)
        return model

    # ---------------------------------------------------------------------------------------------------- forward

    def embed_cues(
        self,
        batch_size: int,
        latent_shape: tuple[int, int, int],
        pose_latents: torch.Tensor | None = None,
        body_mask: torch.Tensor | None = None,
        face_latents: torch.Tensor | None = None,
        face_mask: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor | None, tuple[int, ...]]:
        """Patch-embed the cues present into stacked tokens ``[K, B, N, D]`` and their ids (indices in ``CUE_NAMES``).

        Returns ``(None, ())`` when no cue is given or the model has no cue modules. A missing mask counts as all
        zeros (no location information). Cues of batch 1 are shared by the whole batch (broadcast, not copied).
        """
        if self.pose_patch_embed is None or (pose_latents is None and face_latents is None):
            return None, ()
        tokens, ids = [], []
        for cue_id, (name, embed, latents, mask) in enumerate((
            ("pose", self.pose_patch_embed, pose_latents, body_mask),
            ("face", self.face_patch_embed, face_latents, face_mask),
        )):
            if latents is None:
                continue
            if latents.ndim != 5 or tuple(latents.shape[1:2]) + tuple(latents.shape[3:]) != latent_shape:
                raise InputError(
                    f"{name}_latents has shape {tuple(latents.shape)} but the video latents need [B, "
                    f"{latent_shape[0]}, {self.config.cue_in_channels}, {latent_shape[1]}, {latent_shape[2]}]"
                )
            if mask is None:
                mask = latents.new_zeros(latents.shape[0], latents.shape[1], 1, *latents.shape[3:])
            if latents.shape[0] not in (1, batch_size):
                raise InputError(f"{name}_latents has batch {latents.shape[0]}; give 1 (shared) or {batch_size}")
            if mask.shape[0] != latents.shape[0]:
                mask = mask.expand(latents.shape[0], *mask.shape[1:])
            cue = torch.cat([latents, mask.to(latents.dtype)], dim=2)
            if dtype is not None:
                cue = cue.to(dtype)
            tokens.append(embed(cue))
            ids.append(cue_id)
        return torch.stack(tokens), tuple(ids)

    # Adapted from diffusers 0.42.1 (CogVideoXTransformer3DModel.forward): cue embedding, cue stream through the
    # blocks, and an early exit after block D.
    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: int | float | torch.LongTensor,
        pose_latents: torch.Tensor | None = None,
        body_mask: torch.Tensor | None = None,
        face_latents: torch.Tensor | None = None,
        face_mask: torch.Tensor | None = None,
        cue_scale: float | tuple[float, float] | torch.Tensor = 1.0,
        ofs: int | float | torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_block_tokens: int | None = None,
        stop_at_block: bool = False,
        return_dict: bool = True,
        timestep_cond: torch.Tensor | None = None,
    ):
        """Denoise ``hidden_states`` guided by the pose and face cues.

        Args:
            hidden_states: noisy video latents [B, F, C, H, W] (for image-to-video, with the image latents
                concatenated on channels, as CogVideoX I2V does).
            encoder_hidden_states: text embeddings [B, L, text_embed_dim].
            timestep: diffusion timestep(s) [B] or scalar.
            pose_latents: VAE latents of the pose cue video [B, F, cue_in_channels, H, W], or ``None``. Cues (and
                masks) of batch 1 are shared by all B samples; with a batch-1 ``timestep`` too (same t for all, as
                in CFG) the cue streams are computed once instead of B times.
            body_mask: body location mask on the latent grid [B, F, 1, H, W] (``None`` = zeros).
            face_latents: VAE latents of the face cue video [B, F, cue_in_channels, H, W], or ``None``.
            face_mask: face location mask on the latent grid [B, F, 1, H, W] (``None`` = zeros).
            cue_scale: strength of the injected cues: one number, a (pose, face) pair, or per-sample tensors [B].
                0 switches a cue off, 1 is as trained.
            ofs: CogVideoX1.5 I2V "ofs" conditioning (the pipeline passes 2.0).
            image_rotary_emb: RoPE (cos, sin) for the vision tokens, as CogVideoX pipelines compute it.
            attention_kwargs: passed to the attention processors (LoRA ``scale``).
            return_block_tokens: D in 1..num_layers: also return the vision tokens after the D-th block
                (1-based: D=1 is after the first block), as the Same2X loss needs.
            stop_at_block: with ``return_block_tokens``, skip the blocks after D and the output head; ``sample``
                is then ``None``.
            return_dict: return a ``CueFusionTransformerOutput`` (else a tuple ``(sample,)`` or
                ``(sample, block_tokens)``).
            timestep_cond: optional extra timestep conditioning, as in the base model.

        With no cue given the model computes exactly ``CogVideoXTransformer3DModel.forward``.
        """
        if stop_at_block and return_block_tokens is None:
            raise InputError("stop_at_block=True needs return_block_tokens=D (the block to stop after)")
        num_layers = len(self.transformer_blocks)
        if return_block_tokens is not None and not 1 <= return_block_tokens <= num_layers:
            raise InputError(f"return_block_tokens must be in 1..{num_layers}, got {return_block_tokens}")

        batch_size, num_frames, channels, height, width = hidden_states.shape

        # 1. Time embedding
        t_emb = self.time_proj(timestep)
        # time_proj always returns float32; the embedding may run in lower precision
        t_emb = t_emb.to(dtype=hidden_states.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)
        if self.ofs_embedding is not None:
            if ofs is None:
                raise InputError("this model has an ofs embedding (CogVideoX1.5 I2V): pass ofs (pipelines use 2.0)")
            ofs_emb = self.ofs_proj(ofs)
            ofs_emb = ofs_emb.to(dtype=hidden_states.dtype)
            emb = emb + self.ofs_embedding(ofs_emb)

        # 2. Patch embedding (vision + text) and cue embedding
        cue_tokens, cue_ids = self.embed_cues(
            batch_size, (num_frames, height, width), pose_latents, body_mask, face_latents, face_mask,
            dtype=hidden_states.dtype,
        )
        scales = _normalise_cue_scale(cue_scale)
        hidden_states = self.patch_embed(encoder_hidden_states, hidden_states)
        if cue_tokens is not None and self._cue_injection == "concat":
            hidden_states, cue_tokens = concat_injection(hidden_states, cue_tokens, cue_ids, scales), None
        hidden_states = self.embedding_dropout(hidden_states)
        text_seq_length = encoder_hidden_states.shape[1]
        encoder_hidden_states = hidden_states[:, :text_seq_length]
        hidden_states = hidden_states[:, text_seq_length:]

        # 3. Transformer blocks
        block_tokens = None
        for i, block in enumerate(self.transformer_blocks):
            args = (hidden_states, encoder_hidden_states, emb, image_rotary_emb, attention_kwargs, cue_tokens, cue_ids,
                    scales)
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                outputs = self._gradient_checkpointing_func(block, *args)
            else:
                outputs = block(*args)
            hidden_states, encoder_hidden_states = outputs[0], outputs[1]
            if cue_tokens is not None and len(outputs) > 2 and outputs[2] is not None:
                # a block skipped by First Block Cache returns no cue streams: the ones we have stay (the later
                # blocks are skipped too; see directanimator.caching)
                cue_tokens = outputs[2]
            if return_block_tokens is not None and i + 1 == return_block_tokens:
                block_tokens = hidden_states
                if stop_at_block:
                    break

        if stop_at_block:
            if not return_dict:
                return (None, block_tokens)
            return CueFusionTransformerOutput(sample=None, block_tokens=block_tokens)

        hidden_states = self.norm_final(hidden_states)

        # 4. Final block
        hidden_states = self.norm_out(hidden_states, temb=emb)
        hidden_states = self.proj_out(hidden_states)

        # 5. Unpatchify
        p = self.config.patch_size
        p_t = self.config.patch_size_t
        if p_t is None:
            output = hidden_states.reshape(batch_size, num_frames, height // p, width // p, -1, p, p)
            output = output.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        else:
            output = hidden_states.reshape(
                batch_size, (num_frames + p_t - 1) // p_t, height // p, width // p, -1, p_t, p, p
            )
            output = output.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)

        if not return_dict:
            return (output,) if return_block_tokens is None else (output, block_tokens)
        return CueFusionTransformerOutput(sample=output, block_tokens=block_tokens)


# -------------------------------------------------------------------------------------------------------- loading

_CUE_KEY_PARTS = ("pose_patch_embed.", "face_patch_embed.", ".cue_fusion.", ".cue_attention.")


def _is_cue_key(key: str) -> bool:
    return key.startswith(_CUE_KEY_PARTS[:2]) or any(part in key for part in _CUE_KEY_PARTS[2:])


def _short_list(keys, n: int = 5) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
