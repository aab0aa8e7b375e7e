"""CogVideoX's joint text-video attention, routed through diffusers' attention dispatcher.

diffusers 0.42's ``CogVideoXAttnProcessor2_0`` calls ``F.scaled_dot_product_attention`` itself, so
``model.set_attention_backend(...)`` has no effect on CogVideoX models, and it writes the rotated vision queries and
keys back into slices of the projected tensors (an in-place copy per block that ``torch.compile`` cannot fuse away).
``CueFusionAttnProcessor`` computes the same function -- the same projections, QK LayerNorms and RoPE on the vision
tokens only (diffusers' own ``apply_rotary_emb``) -- in the ``[batch, tokens, heads, head_dim]`` layout that
``dispatch_attention_fn`` takes, so that

- ``transformer.set_attention_backend("_native_cudnn")`` (cuDNN's fused attention, the fastest native kernel on
  Hopper GPUs), ``"_native_flash"``, ``"flash"`` / ``"_flash_3"`` (when the flash-attn packages are installed) or
  ``"sage"`` switch kernels with one call, as for diffusers' newer models;
- the rotated vision tokens are concatenated to the text tokens instead of copied into them.

The CF-DiT installs it in every block (``CueFusionTransformer3DModel`` built or loaded); its outputs equal the base
processor's up to float rounding order (tests compare the two).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import (AttentionBackendName, _check_attention_backend_requirements,
                                                 _maybe_download_kernel_for_backend, dispatch_attention_fn)
from diffusers.models.embeddings import apply_rotary_emb

from .errors import InputError

__all__ = ["CueFusionAttnProcessor", "ATTENTION_BACKENDS", "CPU_ATTENTION_BACKENDS", "check_attention_backend",
           "set_attention_backend"]

# The backends worth naming to users of this model (all of diffusers' names are accepted).
ATTENTION_BACKENDS = ("native", "_native_cudnn", "_native_flash", "_native_efficient", "flash", "_flash_3", "sage")

# The ones that run without a GPU.
CPU_ATTENTION_BACKENDS = ("native", "_native_math", "flex")


def check_attention_backend(backend: str | None, device: str = "cuda") -> None:
    """Raise ``InputError`` for a backend name diffusers does not know, or one that cannot run on ``device``."""
    if backend is None:
        return
    if backend not in {b.value for b in AttentionBackendName}:
        raise InputError(f"unknown attention backend {backend!r}; use one of {', '.join(ATTENTION_BACKENDS)} "
                         "(or another name of diffusers' AttentionBackendName)")
    if not str(device).startswith("cuda") and backend not in CPU_ATTENTION_BACKENDS:
        raise InputError(f"attention backend {backend!r} needs a CUDA GPU; on {device} use one of "
                         f"{', '.join(CPU_ATTENTION_BACKENDS)}")


class CueFusionAttnProcessor:
    """Joint attention over ``[text tokens, vision tokens]`` with RoPE on the vision tokens (CogVideoX's block)."""

    _attention_backend = None  # set by ``ModelMixin.set_attention_backend``
    _parallel_config = None

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None,
                 image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None):
        text_length = encoder_hidden_states.size(1)
        tokens = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        batch, length, _ = tokens.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])

        query = attn.to_q(tokens).unflatten(2, (attn.heads, -1))  # [B, S, H, D]
        key = attn.to_k(tokens).unflatten(2, (attn.heads, -1))
        value = attn.to_v(tokens).unflatten(2, (attn.heads, -1))
        if attn.norm_q is not None:  # LayerNorm over head_dim: the same in either layout
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            query = _rotate_vision(query, image_rotary_emb, text_length)
            if not attn.is_cross_attention:
                key = _rotate_vision(key, image_rotary_emb, text_length)

        out = dispatch_attention_fn(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                    backend=self._attention_backend, parallel_config=self._parallel_config)
        out = out.flatten(2).type_as(query)
        out = attn.to_out[1](attn.to_out[0](out))  # projection, dropout
        encoder_out, vision_out = out.split([text_length, length - text_length], dim=1)
        return vision_out, encoder_out


def _rotate_vision(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], text_length: int) -> torch.Tensor:
    return torch.cat([x[:, :text_length], apply_rotary_emb(x[:, text_length:], rope, sequence_dim=1)], dim=1)


def set_attention_backend(transformer, backend: str | None) -> None:
    """Select the attention kernel of a CF-DiT's blocks (``None``: PyTorch's SDPA chooses, as by default).

    Like diffusers' ``ModelMixin.set_attention_backend`` (the same requirement checks), but it sets only this
    model's processors: diffusers' method also changes the process-wide default backend, which would reach every
    other model in the process. A CogVideoX model without ``CueFusionAttnProcessor`` fails loudly instead of
    silently keeping its kernel.
    """
    check_attention_backend(backend, str(transformer.device))
    processors = list(transformer.attn_processors.values())
    if not all(isinstance(p, CueFusionAttnProcessor) for p in processors):
        raise InputError("this transformer's attention does not go through diffusers' dispatcher; call "
                         "transformer.set_attn_processor(CueFusionAttnProcessor()) first")
    name = None
    if backend is not None:
        name = AttentionBackendName(backend)
        try:
            _check_attention_backend_requirements(name)
            _maybe_download_kernel_for_backend(name)
        except (ValueError, RuntimeError, ImportError) as exc:
            raise InputError(f"attention backend {backend!r} is not usable here: {exc}") from None
    for processor in processors:
        processor._attention_backend = name
