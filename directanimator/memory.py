"""Memory tiers of generation: where the weights live while the pipeline runs, and in which precision they are stored.

From most to least GPU memory (and fastest to slowest):

- ``"resident"``: every component on the GPU (the default).
- ``"model-offload"``: diffusers' model CPU offload: one whole component (text encoder, transformer, VAE) on the
  GPU at a time; the transformer's full weights are still resident while it denoises.
- ``"group-offload"``: diffusers' group offloading of every component: the transformer's blocks are onloaded one
  group at a time (``offload_type="block_level"``, ``num_blocks_per_group`` blocks) or layer by layer
  (``"leaf_level"``); on CUDA the next group is copied on a side stream while the current one computes
  (``use_stream``), which hides most of the transfer. The tier between model offload and sequential offload.
- ``"sequential-offload"``: accelerate's sequential CPU offload, every leaf module onloaded for its own forward:
  the least memory, the slowest.

``fp8=True`` (any tier) stores the transformer's linear and convolution weights as ``float8_e4m3fn`` and upcasts
each layer to the compute dtype for its forward (diffusers' layerwise casting); the patch embeddings (cue ones
included) and the norms stay in the compute dtype, as diffusers does for CogVideoX. It halves the weight memory of
bf16 at a small cost in accuracy.
"""

from __future__ import annotations

import torch

from directanimator.errors import InputError

__all__ = ["MEMORY_MODES", "OFFLOAD_TYPES", "apply_memory_mode", "check_memory_mode", "enable_fp8_storage",
           "remove_offloading"]

MEMORY_MODES = ("resident", "model-offload", "group-offload", "sequential-offload")
OFFLOAD_TYPES = ("block_level", "leaf_level")
FP8_STORAGE = torch.float8_e4m3fn


def check_memory_mode(mode: str, offload_type: str = "block_level", num_blocks_per_group: int = 1) -> None:
    """Raise ``InputError`` (one line) for an unknown tier or group-offload setting."""
    if mode not in MEMORY_MODES:
        raise InputError(f"unknown memory mode {mode!r}; choose one of {', '.join(MEMORY_MODES)}")
    if offload_type not in OFFLOAD_TYPES:
        raise InputError(f"unknown offload type {offload_type!r}; choose block_level or leaf_level")
    if num_blocks_per_group < 1:
        raise InputError(f"num_blocks_per_group must be at least 1, got {num_blocks_per_group}")


def enable_fp8_storage(model, compute_dtype: torch.dtype | None = None) -> None:
    """Layerwise casting of a diffusers model: ``float8_e4m3fn`` storage, ``compute_dtype`` (default: the model's
    dtype) compute. Skips what the model class lists in ``_skip_layerwise_casting_patterns`` (patch embeddings,
    norms)."""
    compute_dtype = compute_dtype or model.dtype
    if compute_dtype == FP8_STORAGE:
        raise InputError("the model is already stored in fp8; load it in bfloat16 or float32")
    model.enable_layerwise_casting(storage_dtype=FP8_STORAGE, compute_dtype=compute_dtype)


def apply_memory_mode(pipe, mode: str = "resident", device: str | torch.device = "cuda", *, fp8: bool = False,
                      offload_type: str = "block_level", num_blocks_per_group: int = 1,
                      use_stream: bool | None = None) -> None:
    """Place ``pipe`` (a ``DirectAnimatorPipeline``, any ``DiffusionPipeline``) in a memory tier on ``device``.

    ``device`` is the compute device; ``"model-offload"`` and ``"sequential-offload"`` need an accelerator
    (accelerate's hooks), ``"group-offload"`` also runs with ``device="cpu"`` (offloading to the CPU itself: no memory
    saved, but the same hooks run, which is how the tests check it). ``use_stream`` defaults to "on CUDA".
    """
    check_memory_mode(mode, offload_type, num_blocks_per_group)
    device = torch.device(device)
    if mode in ("model-offload", "sequential-offload") and device.type == "cpu":
        raise InputError(f"memory mode {mode} needs a GPU (the CPU holds the weights anyway); use resident")
    if fp8:
        enable_fp8_storage(pipe.transformer)
    if mode == "resident":
        pipe.to(device)
    elif mode == "model-offload":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential-offload":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        if use_stream is None:
            use_stream = device.type == "cuda"
        pipe.enable_group_offload(
            onload_device=device, offload_device=torch.device("cpu"), offload_type=offload_type,
            num_blocks_per_group=num_blocks_per_group if offload_type == "block_level" else None,
            use_stream=use_stream, non_blocking=use_stream,
        )


# Adapted from diffusers 0.42.x (hooks.group_offloading._maybe_remove_and_reapply_group_offloading, without the
# re-apply)
def remove_offloading(pipe, device: str | torch.device | None = None) -> None:
    """Undo ``"model-offload"``, ``"sequential-offload"`` and ``"group-offload"`` on every component (accelerate's
    and diffusers' offloading hooks removed) and, with ``device``, move the pipeline there: back to ``"resident"``.
    fp8 storage stays (its casting is not undone)."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.group_offloading import (_GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER,
                                                  _LAZY_PREFETCH_GROUP_OFFLOADING)

    pipe.remove_all_hooks()
    for component in pipe.components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        registry = HookRegistry.check_if_exists_or_initialize(component)
        for name in (_GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER, _LAZY_PREFETCH_GROUP_OFFLOADING):
            registry.remove_hook(name, recurse=True)
        registry.invalidate_child_registries_cache()
    if device is not None:
        pipe.to(device)
