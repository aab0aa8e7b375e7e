"""Alternative cue injections for the injection ablation of the paper's Table 5 (DC and CA injection).

``CueFusionTransformer3DModel(cue_injection=...)`` picks how the pose and face cues reach the vision tokens:

- ``"cuefusion"`` (default): the CF-DiT block of the paper (eqs. 1-3), ``directanimator.modeling.CueFusion``.
- ``"concat"`` (DC injection): the cue latents and their masks are concatenated on channels with the noisy latents
  (and the image latent) before the vision patch embedding. A patch embedding is linear in its input channels, so
  ``embed([video, pose, body_mask, face, face_mask]) = embed_video(video) + embed_pose([pose, body_mask]) +
  embed_face([face, face_mask])``: the model keeps CogVideoX's ``patch_embed`` untouched (its weights still load)
  and holds the extra input channels' weights as ``pose_patch_embed`` / ``face_patch_embed`` without a bias,
  zero at initialisation (identity), whose tokens ``concat_injection`` adds to the vision tokens. No block changes.
- ``"cross_attention"`` (CA injection): every block gets a ``CueCrossAttention`` right after its self-attention:
  the vision tokens (queries) attend to the cue tokens (the per-cue patch embeddings, one token per vision token
  per cue, concatenated as keys/values), and the result is added through a zero-initialised output projection
  (identity). No CueFusion modulation; the cue tokens are the same in every block.

``cue_scale`` keeps its meaning where it can: for ``"concat"`` it scales each cue's tokens (0 = cue off exactly);
for ``"cross_attention"`` it scales each cue's values (0 for every cue = exactly the base model; 0 for one cue
removes its values, but its keys still take a share of the attention).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb
from torch import nn

from directanimator.errors import InputError

__all__ = ["CUE_INJECTIONS", "CueCrossAttention", "check_cue_injection", "concat_injection"]

#: The values of ``CueFusionTransformer3DModel(cue_injection=...)``; the first is the default.
CUE_INJECTIONS = ("cuefusion", "concat", "cross_attention")


def check_cue_injection(value: Any) -> str:
    """Return ``value`` if it names a cue injection, else raise an ``InputError`` naming the allowed ones."""
    if value not in CUE_INJECTIONS:
        raise InputError(f"cue_injection must be one of {', '.join(CUE_INJECTIONS)}, got {value!r}")
    return value


def _is_one(scale: Any) -> bool:
    return isinstance(scale, (int, float)) and scale == 1


def concat_injection(
    tokens: torch.Tensor, cue_tokens: torch.Tensor, cue_ids: tuple[int, ...], cue_scale: tuple[Any, ...]
) -> torch.Tensor:
    """DC injection: add the cue channels' share of the patch embedding to the vision tokens.

    Args:
        tokens: output of CogVideoX's ``patch_embed``, text tokens then vision tokens [B, L + N, D].
        cue_tokens: stacked cue tokens [K, B or 1, N, D] from the bias-free cue patch embeddings.
        cue_ids: which cue (index into ``CUE_NAMES``) each of the K tokens is.
        cue_scale: one strength per cue in ``CUE_NAMES`` (float, or a tensor broadcastable to [B, N, D]).

    Returns:
        ``tokens`` with ``sum_k scale_k * cue_tokens[k]`` added to its last N (vision) tokens.
    """
    num_vision = cue_tokens.shape[2]
    added = None
    for j, cue in enumerate(cue_ids):
        term = cue_tokens[j] if _is_one(cue_scale[cue]) else cue_tokens[j] * cue_scale[cue]
        added = term if added is None else added + term
    return torch.cat([tokens[:, :-num_vision], tokens[:, -num_vision:] + added], dim=1)


class CueCrossAttention(nn.Module):
    """CA injection: vision tokens attend to the cue tokens; the result is added through a zero projection.

    Pre-norm (LayerNorm on the vision tokens and on the cue tokens), per-head LayerNorm on queries and keys as in
    CogVideoX's attention, and the vision tokens' RoPE on both queries and keys (cue token ``i`` of every cue takes
    the position of vision token ``i``): without it a query could not tell which cue token lies under it, since the
    cue tokens carry no position of their own. The output projection has no bias and starts at zero, so the module
    adds exactly zero until trained. Plain ``nn.Linear`` layers and ``scaled_dot_product_attention``: no diffusers
    ``Attention`` processor, so ``set_attn_processor`` / ``fuse_qkv_projections`` on the model leave it alone.

    Args:
        dim: transformer width.
        num_heads: attention heads.
        head_dim: width per head (``num_heads * head_dim`` is the attention width).
        eps: LayerNorm epsilon of the pre-norms.
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.norm_hidden = nn.LayerNorm(dim, eps=eps)
        self.norm_cues = nn.LayerNorm(dim, eps=eps)
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.norm_q = nn.LayerNorm(head_dim, eps=1e-6)
        self.norm_k = nn.LayerNorm(head_dim, eps=1e-6)
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init everywhere, except the output projection: zero (identity at initialisation)."""
        for module in (self.norm_hidden, self.norm_cues, self.to_q, self.to_k, self.to_v, self.norm_q, self.norm_k):
            module.reset_parameters()
        nn.init.zeros_(self.to_out.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cue_tokens: torch.Tensor,
        cue_ids: tuple[int, ...],
        cue_scale: tuple[Any, ...],
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Return ``hidden_states + to_out(attention(hidden_states -> cue tokens))``.

        Args:
            hidden_states: vision tokens [B, N, D].
            cue_tokens: stacked cue tokens [K, B or 1, N, D] (batch 1 is shared by the batch).
            cue_ids: which cue (index into ``CUE_NAMES``) each of the K tokens is.
            cue_scale: one strength per cue in ``CUE_NAMES``; scales that cue's values.
            image_rotary_emb: the vision tokens' RoPE (cos, sin), each [N, head_dim], or ``None``.
        """
        batch, num_vision, _ = hidden_states.shape
        num_cues = cue_tokens.shape[0]
        query = self._heads(self.to_q(self.norm_hidden(hidden_states)))  # [B, H, N, d]
        cues = self.norm_cues(cue_tokens)
        key, value = self.to_k(cues), self.to_v(cues)  # [K, B or 1, N, inner]
        key = key.expand(num_cues, batch, -1, -1)
        value = value.expand(num_cues, batch, -1, -1)
        if not all(_is_one(cue_scale[cue]) for cue in cue_ids):
            value = torch.stack([value[j] * cue_scale[cue] for j, cue in enumerate(cue_ids)])
        # [K, B, N, inner] -> [B, K * N, inner]: the cues' tokens one after the other
        key = self._heads(key.transpose(0, 1).flatten(1, 2))
        value = self._heads(value.transpose(0, 1).flatten(1, 2))
        query, key = self.norm_q(query), self.norm_k(key)
        if image_rotary_emb is not None:
            cos, sin = image_rotary_emb
            query = apply_rotary_emb(query, (cos, sin))
            key = apply_rotary_emb(key, (cos.repeat(num_cues, 1), sin.repeat(num_cues, 1)))
        out = F.scaled_dot_product_attention(query, key, value)
        out = out.transpose(1, 2).flatten(2)
        return hidden_states + self.to_out(out)
