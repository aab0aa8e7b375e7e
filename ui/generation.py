"""The Animate tab's generation: the model choices and their presets, the frame counts and sizes they allow, the
pipeline cache, and the generate / cancel handlers.

torch and the pipeline modules are imported inside the functions that load or run a model: they take seconds to
import and the page must come up without them.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

from directanimator.video import to_uint8_frames
from ui import server
from ui.cue_handlers import write_mp4
from ui.server import owner_only, server_path, ui_errors
from ui.session import Session, need_cues
from ui.text import eta_text

DEMO_DIR = server.ROOT / "models" / "demo"
DEMO_MODEL = "embedded demo model (models/demo: small, trained on synthetic figures, 64 px)"
TINY_MODEL = "tiny random-weights model (checks the plumbing, output is noise)"
FOLDER_MODEL = "local folder or Hub repo id"
MODELS = ([DEMO_MODEL] if (DEMO_DIR / "model_index.json").is_file() else []) + [TINY_MODEL, FOLDER_MODEL]
MEMORY_MODES = ["none", "model CPU offload", "group offload", "sequential CPU offload", "FP8 weights",
                "FP8 weights + group offload", "VAE tiling + slicing"]
# the app's memory modes as directanimator.memory tiers (offload tiers need CUDA: without it the pipeline stays
# resident, as before), and the step caches of directanimator.caching ("off" or a name, each at its default knob)
_TIERS = {"model CPU offload": "model-offload", "group offload": "group-offload",
          "sequential CPU offload": "sequential-offload", "FP8 weights + group offload": "group-offload"}
CACHE_CHOICES = ["off", "first-block", "taylorseer", "pab"]
RESOLUTIONS = {DEMO_MODEL: [64], TINY_MODEL: [64, 96, 128], FOLDER_MODEL: [480, 720, 768, 1024, 1360]}
MAX_FRAMES = {DEMO_MODEL: 49, TINY_MODEL: 17, FOLDER_MODEL: 121}
DEFAULT_FRAMES = {DEMO_MODEL: 17, TINY_MODEL: 9, FOLDER_MODEL: 49}
DEFAULT_STEPS = {DEMO_MODEL: 25, TINY_MODEL: 4, FOLDER_MODEL: 50}
# (prompt, negative prompt): the demo and tiny models have random text encoders and were trained with empty captions,
# so any text is noise to them; equal prompts also skip the unconditional pass.
DEFAULT_PROMPTS = {DEMO_MODEL: ("", ""), TINY_MODEL: ("", ""),
                   FOLDER_MODEL: ("a person dancing, high quality", "blurry, distorted, low quality")}
MAX_SEED = 2**31 - 1


def gpu_duration(key, cues, settings, report=None, on_step=None) -> int:
    """Seconds to ask ZeroGPU for one ``run_pipeline`` call (``spaces.GPU(duration=...)`` calls it with the same
    arguments): a CogVideoX1.5-size step costs 0.42 s at 49 frames 512x512 with CFG on an H100/H200 (measured,
    bench/bench_model.py), scaled by the vision tokens (attention makes it grow a little faster than linearly) and
    halved without CFG; plus decoding and a margin. The small demo / tiny models ask for the floor of 60 s; the
    answer is capped at 300 s (a longer request only waits longer in ZeroGPU's queue)."""
    if key[0] in (DEMO_MODEL, TINY_MODEL):
        return 60
    frames = int(settings.get("num_frames") or getattr(cues, "num_frames", 49))
    height, width = int(settings.get("height") or 512), int(settings.get("width") or 512)
    steps = int(settings.get("num_inference_steps", 50))
    cfg = float(settings.get("guidance_scale", 6.0)) > 1 and settings.get("prompt") != settings.get("negative_prompt")
    tokens = ((frames - 1) // 4 + 2) // 2 * (height // 16) * (width // 16)  # CogVideoX1.5: 4x time, 2x2x2 patches
    per_step = 0.42 * (tokens / 7168) ** 1.2 * (1.0 if cfg else 0.5)
    decode = 0.15 * frames * height * width / 512**2
    return int(min(300, max(60, 20 + steps * per_step + decode)))


try:  # On a ZeroGPU Space, GPU work must run inside a spaces.GPU function; elsewhere this is a no-op.
    import spaces

    gpu = spaces.GPU(duration=gpu_duration)
    # ZeroGPU runs that function in another process and pickles what crosses over: no closures (progress and
    # cancel callbacks) go there, so generation shows gradio's own progress bar and cannot stop half-way.
    CROSS_PROCESS = bool(os.environ.get("SPACES_ZERO_GPU"))
except ImportError:
    CROSS_PROCESS = False

    def gpu(fn):
        return fn


# --- model choices ------------------------------------------------------------------------------------------------


def valid_num_frames(n: int, temporal_compression: int = 4) -> int:
    """The largest frame count <= n of the form k*temporal_compression + 1 (the CogVideoX VAE rule), at least 1+tc."""
    tc = max(1, int(temporal_compression))
    return max(tc + 1, ((int(n) - 1) // tc) * tc + 1)


def frame_choices(max_frames: int, temporal_compression: int = 4, available: int | None = None) -> list[int]:
    """Frame counts offered in the UI: valid counts up to ``max_frames`` (and up to the driving clip's length)."""
    top = max_frames if available is None else min(max_frames, max(available, temporal_compression + 1))
    picks = {valid_num_frames(x, temporal_compression) for x in (9, 13, 17, 25, 33, 49, 81, 121) if x <= top}
    picks.add(valid_num_frames(top, temporal_compression))
    return sorted(picks)


def working_hw(height: int, width: int, long_side: int, multiple: int = 16) -> tuple[int, int]:
    """(h, w) keeping the aspect of height x width, long side ``long_side``, both multiples of ``multiple``."""
    s = long_side / max(height, width)
    return tuple(max(multiple, round(v * s / multiple) * multiple) for v in (height, width))


def models(allowed):
    """The Model choices: the folder / Hub model only for those who may name server folders."""
    return [m for m in MODELS if allowed or m != FOLDER_MODEL]


def model_changed(model):
    """Presets that fit the chosen model: resolutions, frame counts (1 + 4k, the VAE's rule), steps and prompts."""
    res = RESOLUTIONS[model]
    frames = frame_choices(MAX_FRAMES[model])
    prompt, negative = DEFAULT_PROMPTS[model]
    return (gr.update(visible=model == FOLDER_MODEL), gr.update(choices=res, value=res[0]),
            gr.update(choices=frames, value=DEFAULT_FRAMES[model]), gr.update(value=DEFAULT_STEPS[model]),
            gr.update(value=prompt), gr.update(value=negative))


# --- pipelines ----------------------------------------------------------------------------------------------------

_PIPELINES: dict = {}
_PIPELINE_LOCK = threading.Lock()


def load_pipeline(model, path, transformer_path, memory_mode):
    """Load the pipeline for a model choice once and cache it (one at a time, to bound memory); returns its cache
    key. A trained transformer folder (a checkpoint of the Train tab) replaces the pipeline's transformer."""
    import torch

    key = (model, (path or "").strip(), (transformer_path or "").strip(), memory_mode)
    with _PIPELINE_LOCK:
        if key not in _PIPELINES:
            _PIPELINES.clear()
            cuda = torch.cuda.is_available()
            dtype = torch.bfloat16 if cuda else torch.float32
            extra = {}
            if key[2]:
                from directanimator.modeling import CueFusionTransformer3DModel

                if not os.path.isfile(os.path.join(key[2], "config.json")):
                    raise gr.Error(f"{key[2]}: not a transformer folder (no config.json); pick a checkpoint's "
                                   "transformer folder.")
                extra["transformer"] = CueFusionTransformer3DModel.from_pretrained(
                    key[2], dtype=dtype, use_safetensors=True)
            if model == TINY_MODEL:
                pipe = tiny_pipeline()
                if extra:
                    pipe.register_modules(**extra)
            else:
                from directanimator.pipeline import DirectAnimatorPipeline

                folder = str(DEMO_DIR) if model == DEMO_MODEL else key[1]
                if not folder:
                    raise gr.Error("Type a local model folder or a Hub repo id (e.g. your-name/directanimator).")
                pipe = DirectAnimatorPipeline.from_pretrained(folder, dtype=dtype, use_safetensors=True,
                                                              **extra)
            pipe.set_progress_bar_config(disable=True)
            from directanimator.memory import apply_memory_mode

            tier = _TIERS.get(memory_mode, "resident") if cuda else "resident"
            apply_memory_mode(pipe, tier, "cuda" if cuda else "cpu", fp8=memory_mode.startswith("FP8"))
            if memory_mode == "VAE tiling + slicing":
                pipe.vae.enable_tiling()
                pipe.vae.enable_slicing()
            _PIPELINES[key] = pipe
            # on a ZeroGPU Space: the blocks compiled ahead of time, in a GPU task that finds the pipeline in
            # _PIPELINES (a no-op elsewhere; a failure leaves them eager)
            from ui.zerogpu import compile_blocks
            compile_blocks(key, pipe)
        return key


def tiny_pipeline():
    """The tiny random-weights pipeline of the test suite: it exercises every step of generation in seconds on a
    CPU, and its output is noise (it checks the plumbing, not the method)."""
    from directanimator.tiny import make_tiny_pipeline

    return make_tiny_pipeline()


@gpu
def run_pipeline(key, cues, settings, report=None, on_step=None):
    """The GPU part of generation (a ZeroGPU slot on Spaces): denoise and decode with the cached pipeline ``key``."""
    import torch

    settings = dict(settings)
    generator = torch.Generator("cpu").manual_seed(settings.pop("seed"))
    out = _PIPELINES[key](cues=cues, generator=generator, output_type="np", progress=report,
                          callback_on_step_end=on_step, **settings)
    return out.frames[0]


# --- handlers -----------------------------------------------------------------------------------------------------


def zip_folder(folder: str | os.PathLike, zip_path: str | os.PathLike) -> str:
    """Zip ``folder`` into ``zip_path`` (atomically) and return the path."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as tmp:
        made = shutil.make_archive(os.path.join(tmp, "cues"), "zip", root_dir=folder)
        os.replace(made, zip_path)
    return str(zip_path)


@ui_errors
def generate(session, model, model_path, transformer_path, prompt, negative_prompt, steps, guidance, seed,
             randomize, num_frames, resolution, pose_scale, face_scale, memory_mode, cache="off",
             profile: gr.OAuthProfile | None = None, progress=gr.Progress()):
    """Animate the reference with the current cues; returns the mp4 (driving audio kept), the side-by-side mp4,
    the cue folder zip, the seed used and a summary line."""
    from directanimator.cues.preview import side_by_side_video  # (directanimator.cues imports torch)

    if model == FOLDER_MODEL or (model_path or "").strip():
        owner_only(profile, "Loading a model folder or Hub repo")
    if (transformer_path or "").strip():
        owner_only(profile, "Loading a trained transformer folder")
    c = need_cues(session)
    session.cancel.clear()
    seed = random.randint(0, MAX_SEED) if randomize else int(seed)
    progress(0, desc="loading the model")
    key = load_pipeline(model, server_path(model_path), server_path(transformer_path), memory_mode)
    if session.cancel.is_set():
        raise gr.Error("Generation cancelled.", print_exception=False)
    num_frames = min(int(num_frames), c.num_frames)
    height, width = working_hw(c.height, c.width, int(resolution))
    start = time.monotonic()

    def report(fraction, desc):
        progress(fraction, desc=eta_text(fraction, time.monotonic() - start, desc))

    def on_step(pipeline, i, t, kwargs):
        if session.cancel.is_set():
            raise gr.Error("Generation cancelled.", print_exception=False)
        return {}

    settings = dict(prompt=prompt or "", negative_prompt=negative_prompt or "", num_frames=num_frames,
                    height=height, width=width, num_inference_steps=int(steps), guidance_scale=float(guidance),
                    cue_scale=(float(pose_scale), float(face_scale)), seed=seed,
                    cache=None if cache in (None, "off") else cache)
    callbacks = () if CROSS_PROCESS else (report, on_step)
    frames = to_uint8_frames(run_pipeline(key, c, settings, *callbacks))
    progress(1, desc="writing the videos")
    result = write_mp4(session, "result.mp4", frames, c.fps, audio_from=c.audio_source,
                       preset="medium")
    n = len(frames)
    columns = [c.driving[:n], c.pose_cue[:n], c.face_cue[:n], frames]
    side = write_mp4(session, "side-by-side.mp4", side_by_side_video(columns, c.height), c.fps,
                     audio_from=c.audio_source)
    cue_dir = session.dir / "cues"
    c.save(cue_dir)
    zipped = zip_folder(cue_dir, session.path("cues.zip"))
    info = f"Seed {seed} · {n} frames at {width}×{height} · {time.monotonic() - start:.1f} s"
    return result, side, zipped, seed, info


def cancel_generation(session):
    """Stop this session's generation at the next denoising step (gradio's cancel alone cannot stop a thread)."""
    if isinstance(session, Session):
        session.cancel.set()
