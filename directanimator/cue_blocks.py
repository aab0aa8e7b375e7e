"""The cue modules of one CueFusion DiT block (paper eqs. 1-3): the cue patch embedding, the CueFusion modulation and
``CueFusionBlock``, diffusers' ``CogVideoXBlock`` with the cues added before attention. The model that stacks them
is ``directanimator.modeling.CueFusionTransformer3DModel``; its module text explains the identity initialisation.

Written against diffusers 0.42.1 (the block's forward is adapted from it).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from torch import nn

from directanimator.injection import CueCrossAttention, check_cue_injection

__all__ = ["CUE_NAMES", "CuePatchEmbed", "CueFusion", "CueFusionBlock"]

#: The cues, in the order their tokens travel through the blocks and in which a (pose, face) ``cue_scale`` is given.
CUE_NAMES = ("pose", "face")


class CuePatchEmbed(nn.Module):
    """Patchify one cue (VAE latents + location mask) into one token per vision token.

    The layout mirrors ``diffusers.models.embeddings.CogVideoXPatchEmbed`` exactly: CogVideoX 1.0
    (``patch_size_t=None``) runs a strided ``Conv2d`` on every latent frame; CogVideoX 1.5 (``patch_size_t`` set)
    gathers ``(C, p_t, p, p)`` blocks and applies one ``Linear``. Tokens are ordered frame, row, column, as the
    vision tokens are. No positional embedding is added: each cue token is added to a vision token that has one.

    Args:
        patch_size: spatial patch size of the transformer.
        patch_size_t: temporal patch size (CogVideoX 1.5) or ``None`` (CogVideoX 1.0).
        in_channels: channels of the cue input (latent channels + 1 mask channel).
        embed_dim: transformer width.
        bias: whether the projection has a bias.
    """

    def __init__(
        self, patch_size: int = 2, patch_size_t: int | None = None, in_channels: int = 17, embed_dim: int = 3072,
        bias: bool = True,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.patch_size_t = patch_size_t
        if patch_size_t is None:
            self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)
        else:
            self.proj = nn.Linear(in_channels * patch_size * patch_size * patch_size_t, embed_dim, bias=bias)

    def forward(self, cue: torch.Tensor) -> torch.Tensor:
        """Patchify ``cue`` [B, F, C, H, W] (latent grid) into tokens [B, F' * H/p * W/p, embed_dim]."""
        batch_size, num_frames, channels, height, width = cue.shape
        p = self.patch_size
        if self.patch_size_t is None:
            tokens = self.proj(cue.reshape(-1, channels, height, width))
            tokens = tokens.view(batch_size, num_frames, *tokens.shape[1:])
            return tokens.flatten(3).transpose(2, 3).flatten(1, 2)
        p_t = self.patch_size_t
        cue = cue.permute(0, 1, 3, 4, 2)
        cue = cue.reshape(batch_size, num_frames // p_t, p_t, height // p, p, width // p, p, channels)
        cue = cue.permute(0, 1, 3, 5, 7, 2, 4, 6).flatten(4, 7).flatten(1, 3)
        return self.proj(cue)


class CueFusion(nn.Module):
    """The cue half of a CF-DiT block (eqs. 1-3) for up to ``num_cues`` cues.

    The cue streams travel stacked as one tensor ``[K, B, N, D]`` (K = cues present), so LayerNorm, modulation and
    the gated residual are one kernel each for all cues, and the injection is fused into the add (``addcmul``):
    the cue work is memory-bound element-wise work, and fewer passes over the tokens is what keeps it cheap.

    Args:
        dim: transformer width.
        time_embed_dim: width of the timestep embedding ``temb``.
        num_cues: number of cue streams the module has parameters for (2: pose, face).
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, time_embed_dim: int, num_cues: int = 2, eps: float = 1e-5):
        super().__init__()
        self.num_cues = num_cues
        self.dim = dim
        self.eps = eps
        self.silu = nn.SiLU()
        # eq. 1: alpha, beta, gamma for every cue from one linear layer on SiLU(temb)
        self.linear = nn.Linear(time_embed_dim, 3 * num_cues * dim)
        # per-channel gain on the injected term; zero at init = exact identity (see module docstring)
        self.gain = nn.Parameter(torch.zeros(num_cues, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Identity initialisation: zero modulation MLP (adaLN-Zero) and zero injection gain."""
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        nn.init.zeros_(self.gain)

    def forward(
        self,
        norm_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        cue_tokens: torch.Tensor,
        cue_ids: tuple[int, ...],
        cue_scale: tuple[Any, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the modulated cues to the normalised vision tokens and advance the cue streams.

        Args:
            norm_hidden_states: vision tokens after the block's ``norm1`` [B, N, D].
            temb: timestep embedding [B, time_embed_dim].
            cue_tokens: stacked cue streams [K, B, N, D] of the cues ``cue_ids``.
            cue_ids: which cue (index into ``CUE_NAMES``) each of the K streams is.
            cue_scale: one strength per cue in ``CUE_NAMES`` (float, or a tensor broadcastable to [B, N, D]).

        Returns:
            ``(norm_hidden_states + sum_k gain_k * scale_k * e^M_k, e + gamma * e^M)``.
        """
        # the modulation follows temb's batch: cue streams of batch 1 with a batch-1 temb stay batch 1 (the CFG
        # passes share cues and timestep, so the pipeline computes the cue streams once for both)
        mod = self.linear(self.silu(temb)).view(temb.shape[0], self.num_cues, 3, 1, self.dim)
        if tuple(cue_ids) != tuple(range(self.num_cues)):
            mod = mod[:, list(cue_ids)]
        mod = mod.transpose(0, 1)  # [K, B, 3, 1, D]
        alpha, beta, gamma = mod.unbind(dim=2)
        # eq. 2: e^M = LN(e) * (1 + alpha) + beta
        modulated = torch.addcmul(beta, F.layer_norm(cue_tokens, (self.dim,), eps=self.eps), 1 + alpha)
        out = norm_hidden_states
        for j, cue in enumerate(cue_ids):
            gain = self.gain[cue]
            scale = cue_scale[cue]
            if not (isinstance(scale, (int, float)) and scale == 1):
                gain = gain * scale
            out = torch.addcmul(out, modulated[j], gain)
        # eq. 3: e^G = e + gamma * e^M
        return out, torch.addcmul(cue_tokens, gamma, modulated)


class CueFusionBlock(CogVideoXBlock):
    """``CogVideoXBlock`` with a ``cue_fusion`` module; base parameter names are unchanged.

    Takes the same arguments as ``CogVideoXBlock`` plus ``num_cues`` (0 builds no cue module: a plain block) and
    ``cue_injection``: ``"cuefusion"`` builds ``cue_fusion``, ``"cross_attention"`` builds ``cue_attention`` (a
    ``CueCrossAttention`` after the self-attention) instead, ``"concat"`` builds neither.
    """

    def __init__(self, *args, num_cues: int = 2, cue_injection: str = "cuefusion", **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.norm1.norm.normalized_shape[0]
        time_embed_dim = self.norm1.linear.in_features
        eps = self.norm1.norm.eps
        check_cue_injection(cue_injection)
        heads = self.attn1.heads
        self.cue_fusion = (
            CueFusion(dim, time_embed_dim, num_cues, eps) if num_cues and cue_injection == "cuefusion" else None
        )
        self.cue_attention = (
            CueCrossAttention(dim, heads, self.attn1.inner_dim // heads, eps)
            if num_cues and cue_injection == "cross_attention" else None
        )

    # Adapted from diffusers 0.42.1 (CogVideoXBlock.forward): the cue term is added between norm1 and attention.
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        cue_tokens: torch.Tensor | None = None,
        cue_ids: tuple[int, ...] = (),
        cue_scale: tuple[Any, ...] = (1.0, 1.0),
    ):
        """Run the block. Without ``cue_tokens`` it is ``CogVideoXBlock.forward`` and returns ``(hidden, encoder)``;
        with stacked ``cue_tokens`` [K, B, N, D] it returns ``(hidden, encoder, next_cue_tokens)``."""
        text_seq_length = encoder_hidden_states.size(1)
        attention_kwargs = attention_kwargs or {}

        norm_hidden_states, norm_encoder_hidden_states, gate_msa, enc_gate_msa = self.norm1(
            hidden_states, encoder_hidden_states, temb
        )
        next_cue_tokens = cue_tokens
        if cue_tokens is not None and self.cue_fusion is not None:
            norm_hidden_states, next_cue_tokens = self.cue_fusion(
                norm_hidden_states, temb, cue_tokens, cue_ids, cue_scale
            )

        attn_hidden_states, attn_encoder_hidden_states = self.attn1(
            hidden_states=norm_hidden_states,
            encoder_hidden_states=norm_encoder_hidden_states,
            image_rotary_emb=image_rotary_emb,
            **attention_kwargs,
        )
        hidden_states = hidden_states + gate_msa * attn_hidden_states
        encoder_hidden_states = encoder_hidden_states + enc_gate_msa * attn_encoder_hidden_states
        if cue_tokens is not None and self.cue_attention is not None:
            hidden_states = self.cue_attention(hidden_states, cue_tokens, cue_ids, cue_scale, image_rotary_emb)

        norm_hidden_states, norm_encoder_hidden_states, gate_ff, enc_gate_ff = self.norm2(
            hidden_states, encoder_hidden_states, temb
        )
        norm_hidden_states = torch.cat([norm_encoder_hidden_states, norm_hidden_states], dim=1)
        ff_output = self.ff(norm_hidden_states)
        hidden_states = hidden_states + gate_ff * ff_output[:, text_seq_length:]
        encoder_hidden_states = encoder_hidden_states + enc_gate_ff * ff_output[:, :text_seq_length]

        if cue_tokens is None:
            return hidden_states, encoder_hidden_states
        return hidden_states, encoder_hidden_states, next_cue_tokens
