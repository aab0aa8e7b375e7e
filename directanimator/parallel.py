"""Context parallelism of the CF-DiT: one denoising call split over several processes along the token sequence.

The plan (``CONTEXT_PARALLEL_PLAN``, the model's ``_cp_plan``) follows the tokens through CogVideoX's joint
attention, where text and vision tokens form one sequence:

- at the input of ``transformer_blocks.0`` (after the patch embedding, which sees the whole text and video): the
  vision tokens ``hidden_states`` [B, N, D] and the text tokens ``encoder_hidden_states`` [B, L, D] are split on the
  sequence dimension, and the stacked cue streams ``cue_tokens`` [K, B, N, D] on theirs (dim 2), so cue token ``i``
  stays on the process of vision token ``i``. Every block returns its three streams sharded the same way.
- the RoPE tables ``image_rotary_emb`` (cos, sin) [N, head_dim] are split at the model's input, so every block
  rotates its own shard of the vision tokens.
- the text is split too, not replicated: attention gathers keys and values from every process (Ulysses all-to-all
  or ring), and a replicated text would enter the softmax once per process. Each process's joint sequence is
  [its text shard, its vision shard]; attention does not depend on the order of the keys, and the positions are in
  the RoPE already, so the result is that of the whole sequence.
- the output of ``proj_out`` is gathered along the tokens; unpatchify runs on the whole video on every process.

Split sizes must divide evenly (text length, vision tokens), or use ``ContextParallelConfig(ulysses_anything=True)``.
The Ulysses degree must divide the number of heads (48 at CogVideoX1.5 size). The step caches take their skip
decision per process and are not combined with context parallelism.

``enable_context_parallel`` applies it: diffusers' ``ModelMixin.enable_parallelism`` for the context-parallel part,
adapted to take the device from the process group, so that it also runs on CPU processes (gloo; diffusers looks
the device up as ``rank % torch.accelerator.device_count()``, which is 0 without an accelerator).
"""

from __future__ import annotations

import torch
from diffusers.models._modeling_parallel import (ContextParallelConfig, ContextParallelInput, ContextParallelOutput,
                                                 ParallelConfig)

__all__ = ["CONTEXT_PARALLEL_PLAN", "enable_context_parallel", "init_distributed"]

CONTEXT_PARALLEL_PLAN = {
    "": {
        "image_rotary_emb": (ContextParallelInput(split_dim=0, expected_dims=2),
                             ContextParallelInput(split_dim=0, expected_dims=2)),
    },
    "transformer_blocks.0": {
        "hidden_states": ContextParallelInput(split_dim=1, expected_dims=3),
        "encoder_hidden_states": ContextParallelInput(split_dim=1, expected_dims=3),
        "cue_tokens": ContextParallelInput(split_dim=2, expected_dims=4),
    },
    "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
}


def init_distributed(device: str | None = None) -> tuple[int, int, str]:
    """Join the process group of a ``torchrun`` launch (NCCL on CUDA, gloo on CPUs; an already initialised group is
    used as it is). Returns ``(rank, world_size, device)``, the device being ``cuda:<local rank>`` with CUDA unless
    ``device`` says otherwise. Outside torchrun: ``InputError``."""
    import os

    from directanimator.errors import InputError

    if not torch.distributed.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise InputError("--context-parallel splits one video over several processes: launch with "
                             "`torchrun --nproc-per-node N -m directanimator.animate ...`")
        cuda = torch.cuda.is_available() and not (device or "").startswith("cpu")
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    if device is None or device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = f"cuda:{local % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    return rank, world, device


# Adapted from diffusers 0.42.x (ModelMixin.enable_parallelism and _resolve_parallel_config, context-parallel part)
def enable_context_parallel(model, config: ContextParallelConfig, device: torch.device | str | None = None) -> None:
    """Split ``model``'s forward over the processes of the default process group (``torch.distributed`` must be
    initialised: ``torchrun`` / ``accelerate launch``). ``device``: this process's device (default: ``cuda:<local
    rank>`` with CUDA, else the CPU). The attention backend must support context parallelism (``native``,
    ``_native_cudnn``, ``flash``, ...: diffusers checks it)."""
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        raise RuntimeError("context parallelism needs torch.distributed initialised (launch with torchrun)")
    if getattr(model, "_parallel_config", None) is not None:
        raise RuntimeError("parallelism is already applied to this model")
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    if device is None:
        device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    mesh = config.mesh or torch.distributed.device_mesh.init_device_mesh(
        device_type=device.type, mesh_shape=config.mesh_shape, mesh_dim_names=config.mesh_dim_names)
    parallel = ParallelConfig(context_parallel_config=config)
    parallel.setup(rank, world, device, mesh=mesh)
    processors = [p for p in model.attn_processors.values() if hasattr(p, "_parallel_config")]
    for processor in processors:
        backend = processor._attention_backend
        backend = (_AttentionBackendRegistry.get_active_backend()[0] if backend is None
                   else AttentionBackendName(backend))
        if not _AttentionBackendRegistry._is_context_parallel_available(backend):
            raise ValueError(f"attention backend {backend.value} does not support context parallelism; use one of "
                             f"{sorted(b.value for b in _AttentionBackendRegistry._supports_context_parallel)}")
        processor._parallel_config = parallel
    model._parallel_config = parallel
    apply_context_parallel(model, config, CONTEXT_PARALLEL_PLAN)
