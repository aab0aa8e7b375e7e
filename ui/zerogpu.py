"""ZeroGPU ahead-of-time compilation of the transformer's blocks (``torch.compile`` does not work there: each GPU
task is a fresh process). On a ZeroGPU Space, when the app loads a pipeline with memory mode "none",
``compile_blocks`` runs one GPU task (``spaces.GPU``, ``COMPILE_SECONDS``) that cuts a real pipeline call at the
model's default frames / resolution short at its first block (``directanimator.aot.capture_block_call``), exports
that ``CueFusionBlock`` with the token count dynamic, and compiles it with AOTInductor (``spaces.aoti_compile``).
The compiled package comes back to the app's process (pickled) and every block gets it with its own weights, the
way ``spaces.aoti_blocks_load`` does it for a Hub package (``LazyAOTIModel`` + ``spaces.aoti_patch``), behind
``directanimator.aot.CompiledBlockForward`` (calls with another signature, e.g. another CFG batch or only one cue,
run eagerly). Any failure, at compile time or later, leaves the blocks eager with one log line: generation never
depends on it. Off a ZeroGPU Space (``SPACES_ZERO_GPU`` unset, as ``spaces.config`` reads it) or with
``DIRECTANIMATOR_AOT=0`` nothing happens. The ``spaces`` package is not in requirements.txt: a Space's own
environment has it.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

#: Seconds of GPU asked for the compile task (capture + export + AOTInductor of one block; the blog's regional
#: compilation of FLUX takes ~30 s, a CogVideoX1.5 block is of the same order).
COMPILE_SECONDS = 300

#: Per pipeline key: the ``CompiledState`` of its blocks, or the reason they stay eager.
STATUS: dict = {}


def on_zero_gpu(env=None) -> bool:
    """Whether this process is the app of a ZeroGPU Space: ``SPACES_ZERO_GPU`` true, as ``spaces.config`` reads it."""
    env = os.environ if env is None else env
    return (env.get("SPACES_ZERO_GPU") or "").lower() in ("1", "t", "true")


def aot_wanted(memory_mode: str, env=None) -> bool:
    """Compile ahead of time: on ZeroGPU, unless ``DIRECTANIMATOR_AOT=0``, and only for a resident model (offload
    hooks and FP8 layerwise casting change the weights under the compiled code)."""
    env = os.environ if env is None else env
    return on_zero_gpu(env) and env.get("DIRECTANIMATOR_AOT", "1") != "0" and memory_mode == "none"


def example_settings(model: str) -> tuple:
    """(cues, settings) for the capture call at the model's default frames, resolution and prompts: well-formed
    random cues (``directanimator.tiny.tiny_driving_cues``, numpy only) and one denoising step."""
    from directanimator.tiny import tiny_driving_cues
    from ui.generation import DEFAULT_FRAMES, DEFAULT_PROMPTS, RESOLUTIONS

    frames, size = DEFAULT_FRAMES[model], RESOLUTIONS[model][0]
    prompt, negative = DEFAULT_PROMPTS[model]
    cues = tiny_driving_cues(num_frames=frames, height=size, width=size)
    settings = dict(prompt=prompt, negative_prompt=negative, num_frames=frames, height=size, width=size,
                    num_inference_steps=1)
    return cues, settings


def capture_and_export(pipe, cues, settings):
    """Cut one pipeline call short at its first block; returns (exported program, captured args)."""
    import torch

    from directanimator.aot import capture_block_call, export_block

    block = pipe.transformer.transformer_blocks[0]
    with capture_block_call(block) as call:
        pipe(cues=cues, generator=torch.Generator("cpu").manual_seed(0), output_type="np", **settings)
    if not call.captured:
        raise RuntimeError("the pipeline call never reached the transformer's first block")
    return export_block(block, call.args), call.args


def _compile_task(key, cues, settings):
    """The GPU task: capture, export, AOTInductor. Returns (package archive, call signature): both pickle."""
    import spaces

    from directanimator.aot import call_signature
    from ui.generation import _PIPELINES

    exported, args = capture_and_export(_PIPELINES[key], cues, settings)
    compiled = spaces.aoti_compile(exported)
    return compiled.archive_file, call_signature(args)


try:
    import spaces

    _compile_on_gpu = spaces.GPU(duration=COMPILE_SECONDS)(_compile_task)
except ImportError:
    _compile_on_gpu = None


def compile_blocks(key, pipe) -> bool:
    """On a ZeroGPU Space, compile ``pipe``'s blocks ahead of time (see the module text); ``key`` is the app's
    pipeline key (model, path, transformer path, memory mode). Returns whether the compiled blocks are in place;
    False with one log line on any failure, and False without a word off ZeroGPU."""
    if not aot_wanted(key[3]):
        return False
    try:
        if _compile_on_gpu is None:
            raise RuntimeError("the spaces package is not installed")
        from spaces.zero.torch.aoti import LazyAOTIModel

        from directanimator.aot import apply_compiled_blocks

        archive, signature = _compile_on_gpu(key, *example_settings(key[0]))
        package = LazyAOTIModel(archive)

        def with_weights(block):
            spaces.aoti_patch(block, package)  # sets block.forward to the package with this block's weights
            compiled = block.forward
            del block.forward
            return compiled

        STATUS[key] = apply_compiled_blocks(pipe.transformer, with_weights, signature)
        logger.info("ZeroGPU: transformer blocks compiled ahead of time")
        return True
    except Exception as e:  # noqa: BLE001 -- compilation is an optimisation: generation goes on eagerly
        STATUS[key] = f"{type(e).__name__}: {e}"
        logger.warning("ZeroGPU ahead-of-time compilation failed (%s); the blocks run eagerly",
                       STATUS[key].splitlines()[0][:300])
        return False
