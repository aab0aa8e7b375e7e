"""Step caching through diffusers' own cache hooks: reuse work of earlier denoising steps instead of recomputing it.

Three of the caches diffusers 0.42 ships apply to CogVideoX-style blocks and are offered by name:

- ``"first-block"`` (First Block Cache, TeaCache's generic form): the first block always runs; when its residual
  changed by less than ``threshold`` (relative absolute mean) since the last full step, every other block is skipped
  and the residual cached at that step is added instead. Knob: ``threshold`` (default 0.1; 0 never skips).
- ``"taylorseer"`` (TaylorSeer): every block runs once every ``interval`` steps (after 3 warm-up steps); between
  those steps its outputs (vision tokens, text tokens *and* the cue streams) are extrapolated by a first-order
  Taylor series. Knob: ``interval`` (an integer, default 4; 1 never skips).
- ``"pab"`` (Pyramid Attention Broadcast): each block's self-attention runs every ``skip_range`` steps while the
  timestep is in (100, 800) and its last output is reused in between. Knob: ``skip_range`` (integer, default 2;
  1 never skips). Its state is not keyed by the cache context, so it serves one generation window only.

Not offered: MagCache needs magnitude ratios calibrated per checkpoint (none are published for this model);
FasterCache runs the unconditional CFG branch from cached differences and needs the CFG passes split its way.

How the cue streams pass the hooks: ``CueFusionBlock.forward`` returns ``(hidden, encoder, next_cue_tokens)``.
diffusers' ``TransformerBlockRegistry`` entry (``register_cue_blocks``) names indices 0 and 1 as the hidden states,
as for ``CogVideoXBlock``; a block skipped by First Block Cache returns only those two (or ``None`` at index 2), and
``CueFusionTransformer3DModel.forward`` then keeps the cue streams it has, which is exact for First Block Cache: once
the first block decides to skip, every later block is skipped too, so no computed block sees a stale stream.

The pipeline (``DirectAnimatorPipeline(cache=..., cache_threshold=...)``) names one cache context per generation
window (the CFG passes run as one batch, so both branches share a context and each sample of the batch is compared
with its own earlier value), and resets the cache state at the start and end of every call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from directanimator.errors import InputError

__all__ = ["CACHES", "DEFAULT_CACHE_SETTINGS", "cache_config", "check_cache", "count_computations",
           "register_cue_blocks"]

#: The cache names accepted by the pipeline, the CLI and the app.
CACHES = ("first-block", "taylorseer", "pab")
#: Each cache's one knob (its meaning is in the module docstring) and its default.
DEFAULT_CACHE_SETTINGS = {"first-block": 0.1, "taylorseer": 4, "pab": 2}
_KNOB = {"first-block": "threshold", "taylorseer": "interval", "pab": "skip range"}


def register_cue_blocks() -> None:
    """Make ``CueFusionBlock`` known to diffusers' ``TransformerBlockRegistry`` (which cache hooks read to find the
    hidden states among a block's arguments and outputs). Idempotent; ``CueFusionTransformer3DModel.enable_cache``
    calls it, so ``model.enable_cache(FirstBlockCacheConfig(...))`` works directly too."""
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

    from directanimator.cue_blocks import CueFusionBlock

    if CueFusionBlock not in TransformerBlockRegistry._registry:
        TransformerBlockRegistry.register(
            CueFusionBlock,
            TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1),
        )


def check_cache(name: str | None, setting: float | None) -> float | None:
    """Validate a cache name and its knob; returns the knob (its default when ``None``). Bad input: ``InputError``."""
    if name is None:
        if setting is not None:
            raise InputError("a cache threshold needs a cache: give cache='first-block', 'taylorseer' or 'pab'")
        return None
    if name not in CACHES:
        raise InputError(f"unknown cache {name!r}; choose one of {', '.join(CACHES)}")
    if setting is None:
        return DEFAULT_CACHE_SETTINGS[name]
    if name == "first-block":
        if not setting >= 0:
            raise InputError(f"the first-block cache threshold must be >= 0, got {setting}")
        return float(setting)
    if float(setting) != int(setting) or int(setting) < 1:
        raise InputError(f"the {name} cache {_KNOB[name]} must be a whole number >= 1, got {setting}")
    return int(setting)


def cache_config(name: str, setting: float | None = None, current_timestep: Callable[[], int] | None = None):
    """The diffusers cache config of ``name`` with its knob ``setting`` (see the module docstring); ``pab`` needs
    ``current_timestep``, a callable returning the timestep being denoised (the pipeline's ``current_timestep``)."""
    from diffusers.hooks import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    setting = check_cache(name, setting)
    if name == "first-block":
        return FirstBlockCacheConfig(threshold=setting)
    if name == "taylorseer":
        # whole blocks: a predicted step skips the block (cue streams included), not only its attention
        return TaylorSeerCacheConfig(cache_interval=setting, disable_cache_before_step=3, max_order=1,
                                     taylor_factors_dtype=torch.float32,
                                     cache_identifiers=[r"transformer_blocks\.\d+"])
    if current_timestep is None:
        raise InputError("the pab cache needs current_timestep (a callable returning the current timestep)")
    return PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=setting, spatial_attention_timestep_skip_range=(100, 800),
        spatial_attention_block_identifiers=(r"^transformer_blocks\.\d+\.attn1$",),
        temporal_attention_block_identifiers=(), cross_attention_block_identifiers=(),
        current_timestep_callback=current_timestep,
    )


@dataclass
class Computations:
    """Counts of work the transformer really did: ``blocks`` (block bodies run) and ``attention`` (self-attentions
    run); ``calls`` counts block calls whether or not the body ran."""

    blocks: int = 0
    attention: int = 0
    calls: int = 0

    def skipped_share(self, total_blocks: int) -> float:
        """Share of ``total_blocks`` block computations that were skipped."""
        return 1.0 - self.blocks / total_blocks if total_blocks else 0.0


@contextlib.contextmanager
def count_computations(model: torch.nn.Module):
    """Count block bodies and self-attentions that actually run inside ``model`` (yields a ``Computations``).

    Torch forward hooks on ``norm1`` (first module of a block body) and ``attn1.to_q`` (first layer of the
    attention) fire only when that code runs: a cache hook that skips a block or reuses an attention output never
    reaches them. A forward pre-hook on each block counts the calls."""
    counts = Computations()
    handles = []

    def bump(field):
        def hook(*_):
            setattr(counts, field, getattr(counts, field) + 1)
        return hook

    for block in model.transformer_blocks:
        handles.append(block.register_forward_pre_hook(bump("calls")))
        handles.append(block.norm1.register_forward_pre_hook(bump("blocks")))
        handles.append(block.attn1.to_q.register_forward_pre_hook(bump("attention")))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()
