"""Ahead-of-time compilation of the transformer's repeated block (regional compilation), torch side.

``torch.compile`` compiles just in time, in the process that runs the model; on a ZeroGPU Space every GPU task runs
in a fresh process, so that work would be thrown away each time. Ahead of time instead: capture one real call of a
``CueFusionBlock`` (the model repeats that one class: with cues it is the CueFusion block, with ``num_cues=0`` /
``cue_injection="concat"`` the plain CogVideoX block), ``torch.export`` it with the vision-token count dynamic (it
follows frames and resolution), compile the exported program with AOTInductor once, and give every block of the
model the compiled code with that block's own weights. ``ui.zerogpu`` does the compiling and the loading through the
``spaces`` package; this module is what they rest on and what runs (and is tested) without a GPU:

- ``capture_block_call(block)``: a context manager that stops a real pipeline call at the block's first call and
  keeps its arguments (the trick of ``spaces.aoti_capture``: the patched forward raises, the context swallows it).
- ``block_call_args(block, args, kwargs)``: one block call as the 8 positional arguments of
  ``CueFusionBlock.forward``, cue strengths as tensors (a float would be baked into the exported program as a
  constant; a 0-d tensor is an input, so any strength runs the same compiled code).
- ``export_block(block, args)``: ``torch.export.export`` with the token dimension dynamic.
- ``call_signature(args)``: what a compiled block is specialised on (shapes but the token count, dtypes, devices,
  which cues are present, the argument structure); ``CompiledBlockForward`` only calls the compiled code when a
  call has the captured signature and no diffusers hook sits inside the block (Pyramid Attention Broadcast's on
  the attention; the step caches on the block itself work with it), and runs the block eagerly otherwise, and a compiled call that raises switches
  every block of the model back to eager with one log line.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Callable

import torch
import torch.utils._pytree as pytree

__all__ = ["BLOCK_ARGS", "CapturedCall", "capture_block_call", "block_call_args", "block_dynamic_shapes",
           "export_block", "call_signature", "CompiledState", "CompiledBlockForward", "apply_compiled_blocks",
           "remove_compiled_blocks"]

logger = logging.getLogger(__name__)

#: The arguments of ``CueFusionBlock.forward`` in order (the model's block loop passes them positionally).
BLOCK_ARGS = ("hidden_states", "encoder_hidden_states", "temb", "image_rotary_emb", "attention_kwargs", "cue_tokens",
              "cue_ids", "cue_scale")
#: Range of the dynamic vision-token count. 2 and not 1: torch.export specialises sizes 0 and 1.
MIN_TOKENS, MAX_TOKENS = 2, 1 << 20


class CapturedCall:
    """The arguments of one captured block call (``args``: the 8 of ``BLOCK_ARGS``), empty until captured."""

    def __init__(self):
        self.args: tuple = ()

    @property
    def captured(self) -> bool:
        return bool(self.args)


class _Captured(Exception):
    def __init__(self, args, kwargs):
        super().__init__("block call captured")
        self.call = (args, kwargs)


def block_call_args(block: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
    """One call of ``block`` as the positional ``BLOCK_ARGS``, with defaults filled in and cue strengths as tensors
    on the hidden states' device (float32 0-d; per-sample tensors stay as they are)."""
    bound = inspect.signature(type(block).forward).bind(block, *args, **kwargs)
    bound.apply_defaults()
    values = [bound.arguments[name] for name in BLOCK_ARGS]
    device = values[0].device
    values[-1] = tuple(s if isinstance(s, torch.Tensor) else torch.tensor(float(s), device=device)
                       for s in values[-1])
    values[-2] = tuple(int(i) for i in values[-2])
    return tuple(values)


@contextlib.contextmanager
def capture_block_call(block: torch.nn.Module):
    """Within the context, the first call of ``block`` is recorded in the yielded ``CapturedCall`` and aborts the
    code that made it (typically one pipeline call, cut short at its first block); afterwards ``block.forward`` is
    what it was."""
    captured = CapturedCall()
    had_own = "forward" in block.__dict__
    own = block.__dict__.get("forward")

    def capture(*args, **kwargs):
        raise _Captured(args, kwargs)

    block.forward = capture
    try:
        yield captured
    except _Captured as e:
        captured.args = block_call_args(block, *e.call)
    finally:
        if had_own:
            block.forward = own
        else:
            del block.forward


def block_dynamic_shapes(args: tuple, tokens: torch.export.Dim | None = None) -> tuple:
    """``dynamic_shapes`` for ``torch.export.export(block, args)``: the vision-token dimension (hidden states dim 1,
    RoPE cos/sin dim 0, stacked cue streams dim 2) is dynamic, everything else static."""
    tokens = tokens or torch.export.Dim("tokens", min=MIN_TOKENS, max=MAX_TOKENS)
    spec = list(pytree.tree_map(lambda _: None, args))
    spec[0] = {1: tokens}
    if args[3] is not None:
        spec[3] = tuple({0: tokens} for _ in args[3])
    if args[5] is not None:
        spec[5] = {2: tokens}
    return tuple(spec)


def export_block(block: torch.nn.Module, args: tuple) -> torch.export.ExportedProgram:
    """``torch.export`` one block at the captured ``args`` (from ``capture_block_call``), token count dynamic: the
    program AOTInductor compiles. Non-strict export (the block's Python is traced as it runs, as diffusers' own
    attention dispatch needs)."""
    with torch.no_grad():
        return torch.export.export(block, args, dynamic_shapes=block_dynamic_shapes(args), strict=False)


#: Which dimension of each argument (by position in ``BLOCK_ARGS``) is the dynamic token count.
_TOKEN_DIM = {0: 1, 3: 0, 5: 2}


def _leaf_signature(path, x):
    if isinstance(x, torch.Tensor):
        dim = _TOKEN_DIM.get(path[0].idx)
        return ("tensor", x.dtype, x.device.type, tuple(None if i == dim else n for i, n in enumerate(x.shape)))
    return ("value", x)


def call_signature(args: tuple) -> tuple:
    """What the compiled program of ``args`` is specialised on: the argument structure and, per leaf, a tensor's
    dtype, device type and shape (the token dimension left out) or a value (which cues, attention kwargs)."""
    leaves, spec = pytree.tree_flatten_with_path(args)
    return (str(spec), tuple(_leaf_signature(path, x) for path, x in leaves))


def _tokens_in_range(args: tuple) -> bool:
    return MIN_TOKENS <= args[0].shape[1] <= MAX_TOKENS


def _inner_hooks(block: torch.nn.Module) -> bool:
    """Whether a diffusers hook sits on a module inside ``block`` (Pyramid Attention Broadcast hooks the attention):
    the compiled code never calls those modules, so such a call runs eagerly. A hook on the block itself (First
    Block Cache, TaylorSeer) calls the block's forward and works with the compiled one."""
    return any(getattr(getattr(m, "_diffusers_hook", None), "hooks", None) for m in block.modules() if m is not block)


class CompiledState:
    """Shared by the blocks of one model: the captured signature, and whether the compiled code has failed."""

    def __init__(self, signature: tuple):
        self.signature = signature
        self.failed: str | None = None
        self.compiled_calls = 0
        self.eager_calls = 0


class CompiledBlockForward:
    """A block's ``forward`` that runs ``compiled`` (the AOTInductor program with this block's weights) on calls
    with the captured signature, and the block's own eager forward on any other call, with gradients enabled, with
    a diffusers hook inside the block, or once a compiled call has raised (logged once per model)."""

    def __init__(self, block: torch.nn.Module, compiled: Callable, state: CompiledState):
        self.block = block
        self.compiled = compiled
        self.state = state

    def eager(self, *args, **kwargs):
        return type(self.block).forward(self.block, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        state = self.state
        if state.failed is None and not torch.is_grad_enabled() and not _inner_hooks(self.block):
            call = block_call_args(self.block, args, kwargs)
            if _tokens_in_range(call) and call_signature(call) == state.signature:
                try:
                    out = self.compiled(*call)
                    state.compiled_calls += 1
                    return tuple(out) if isinstance(out, list) else out
                except Exception as e:  # noqa: BLE001 -- any failure of compiled code: eager from now on
                    state.failed = f"{type(e).__name__}: {e}"
                    logger.warning("ahead-of-time compiled blocks failed (%s); running the blocks eagerly",
                                   state.failed.splitlines()[0][:300])
        state.eager_calls += 1
        return self.eager(*args, **kwargs)


def apply_compiled_blocks(transformer: torch.nn.Module, make_compiled: Callable[[torch.nn.Module], Callable],
                          signature: tuple, block_class: str = "CueFusionBlock") -> CompiledState:
    """Give every ``block_class`` block of ``transformer`` a ``CompiledBlockForward`` whose compiled code is
    ``make_compiled(block)`` (the one compiled program loaded with that block's weights). Returns the shared
    state (counters, failure)."""
    state = CompiledState(signature)
    for block in transformer.modules():
        if type(block).__name__ == block_class:
            block.forward = CompiledBlockForward(block, make_compiled(block), state)
    return state


def remove_compiled_blocks(transformer: torch.nn.Module) -> int:
    """Undo ``apply_compiled_blocks``: the blocks run their own forward again. Returns how many were restored."""
    n = 0
    for block in transformer.modules():
        if isinstance(block.__dict__.get("forward"), CompiledBlockForward):
            del block.forward
            n += 1
    return n


