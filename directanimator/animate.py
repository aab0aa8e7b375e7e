"""Animate a reference image with a driving video from the command line.

    python -m directanimator.animate --reference ref.jpg --driving dance.mp4 --model ./directanimator-model \\
        --out result.mp4 [--steps 50 --guidance 6 --seed 42 --frames 49 --fps 8 --lowpass 0.5 ...]

``--driving`` is a video (cues are extracted first, with the offline mediapipe backends by default) or a cue folder
written by ``python -m directanimator.cues`` / the app (then ``--reference`` is optional: the folder has one). The
result is an H.264 mp4 that keeps the driving video's audio. ``--model`` is a DirectAnimator pipeline folder (or a
Hub repo id already in the local cache); it defaults to the embedded demo model (``models/demo``: a small model of
drawn figures, 64 px, trained on CPU — it shows the method running, it does not animate real people well).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from directanimator.cues.people import parse_person_spec, people_summary
from directanimator.cues.settings import add_cue_arguments, cue_settings_from_args
from directanimator.errors import InputError, run_cli
from directanimator.shots import add_shot_argument

DEMO_MODEL = Path(__file__).resolve().parent.parent / "models" / "demo"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m directanimator.animate",
        description="Animate the person in a reference image with the motion and expressions of a driving video "
        "(DirectAnimator). Writes an mp4 with the driving video's audio.",
    )
    p.add_argument("--reference", help="reference image of the person to animate (optional with a cue folder)")
    p.add_argument("--driving", required=True, help="driving video, or a cue folder from `python -m directanimator.cues`")
    p.add_argument("--model", default=str(DEMO_MODEL),
                   help="DirectAnimator pipeline folder (model_index.json + safetensors), a training run folder "
                   "(--output-dir of trainers.same_id / same2x, or a checkpoint in it) or a cached Hub repo id "
                   "(default: the embedded demo model, models/demo: drawn figures at 64 px)")
    p.add_argument("--out", required=True, help="output mp4 path")
    g = p.add_argument_group("generation")
    g.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    g.add_argument("--guidance", type=float, default=6.0,
                   help="classifier-free guidance on the prompt (default 6; only acts when prompt != negative)")
    g.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    g.add_argument("--prompt", default="", help="optional text prompt")
    g.add_argument("--negative-prompt", default="", help="optional negative prompt")
    g.add_argument("--cue-scale", default="1.0",
                   help="cue strength: one number or 'pose,face' (default 1.0; 0 switches a cue off)")
    g.add_argument("--window-frames", type=int, default=None,
                   help="frames per generation window, 1+4k (default: the model's training length)")
    g.add_argument("--window-overlap", type=int, default=None, help="frames shared by neighbouring windows (default 16)")
    g.add_argument("--height", type=int, default=None, help="output height, multiple of 16 (default: working size)")
    g.add_argument("--width", type=int, default=None, help="output width, multiple of 16 (default: working size)")
    c = p.add_argument_group("driving cues (when --driving is a video)")
    c.add_argument("--frames", type=int, default=None,
                   help="use at most this many driving frames (from the start of the shot used)")
    c.add_argument("--fps", type=float, default=None,
                   help="resample the driving video to this frame rate first (e.g. 8 or 16; default: keep)")
    c.add_argument("--size", type=int, default=None,
                   help="working long side in pixels (default: the model's native size, e.g. 64 for the demo model)")
    c.add_argument("--segmenter", default="mediapipe", help="mediapipe (offline default) or grounded-sam")
    c.add_argument("--face-detector", default="mediapipe", help="mediapipe (offline default) or insightface")
    c.add_argument("--save-cues", default=None, help="also save the extracted cues to this folder")
    add_shot_argument(c)
    c.add_argument("--person", default=None, metavar="largest|central|N",
                   help="who drives when the driving video shows several people (numbered largest first in its "
                   "first frame): largest (default), central, or person number N")
    c.add_argument("--reference-person", default=None, metavar="largest|central|N",
                   help="who is animated when the reference image shows several people (as --person)")
    add_cue_arguments(p)
    m = p.add_argument_group("memory and device")
    m.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype (default: bfloat16 on CUDA, float32 on CPU)")
    m.add_argument("--memory", default=None,
                   choices=["resident", "model-offload", "group-offload", "sequential-offload"],
                   help="memory tier (directanimator.memory): resident (default), model-offload, group-offload "
                        "(transformer blocks streamed from the CPU) or sequential-offload (least memory, slowest)")
    m.add_argument("--cpu-offload", action="store_true", help="same as --memory model-offload (CUDA only)")
    m.add_argument("--fp8", action="store_true",
                   help="store the transformer's weights in float8_e4m3fn, compute in --dtype (layerwise casting)")
    m.add_argument("--cache", default=None, choices=["first-block", "taylorseer", "pab"],
                   help="step cache (directanimator.caching): reuse work of earlier steps; faster, slightly different")
    m.add_argument("--context-parallel", action="store_true",
                   help="split each denoising call over the processes of a torchrun launch (Ulysses attention): "
                        "torchrun --nproc-per-node N -m directanimator.animate ... --context-parallel")
    m.add_argument("--cache-threshold", type=float, default=None,
                   help="the cache's knob: first-block threshold (default 0.1), taylorseer interval (4), "
                        "pab skip range (2)")
    m.add_argument("--vae-tiling", action="store_true", help="VAE tiling and slicing (lower decode memory)")
    m.add_argument("--attention-backend", default=None,
                   help="attention kernel, a diffusers backend name: _native_cudnn, _native_flash, flash, _flash_3 "
                        "(flash-attn installed), sage, ... (default: PyTorch's choice, cuDNN on Hopper GPUs)")
    m.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer blocks (regional): the first step pays ~15-25 s of "
                        "compilation, then denoising is ~1.5x faster on a GPU (H100: 0.58 -> 0.38 s per step)")
    p.add_argument("--verbose", action="store_true",
                   help="also show MediaPipe's native log lines (hidden by default; or DIRECTANIMATOR_VERBOSE=1)")
    return p


def _cue_scale(text: str):
    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise InputError(f"--cue-scale must be a number or 'pose,face', got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise InputError(f"--cue-scale must be a number or 'pose,face', got {text!r}")


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (2 for bad input, with one `error: ...` line on stderr)."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        from directanimator.quiet import set_verbose

        set_verbose()
    return run_cli(lambda: _run(args), done=None)


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", leave=False)

    def update(fraction, text=""):
        bar.n = int(round(100 * max(0.0, min(1.0, float(fraction)))))
        if text:
            bar.set_postfix_str(str(text)[:40])
        bar.refresh()

    return bar, update


def _run(args) -> int:
    # cheap checks first, so a wrong command fails before torch and the models are imported
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise InputError(f"--out {args.out} is a folder; give a file path such as {os.path.join(args.out, 'out.mp4')}")
    if args.steps < 1:
        raise InputError(f"--steps must be at least 1, got {args.steps}")
    if args.frames is not None and args.frames < 1:
        raise InputError(f"--frames must be at least 1, got {args.frames}")
    cue_scale = _cue_scale(args.cue_scale)
    if args.window_frames is not None and (args.window_frames < 5 or (args.window_frames - 1) % 4):
        raise InputError(f"--window-frames must be 1 + 4k (e.g. 49, 81), got {args.window_frames}")
    if not os.path.isdir(args.driving) and args.reference is None:
        raise InputError("--reference is needed when --driving is a video (only cue folders carry one)")
    person = parse_person_spec(args.person, "--person")
    reference_person = parse_person_spec(args.reference_person, "--reference-person")
    if os.path.isdir(args.driving) and (person is not None or reference_person is not None):
        raise InputError("--person and --reference-person choose people when cues are extracted; a cue folder "
                         "already holds its choice (extract it again with python -m directanimator.cues --person N)")

    import torch

    from directanimator.attention import check_attention_backend
    from directanimator.caching import check_cache
    from directanimator.cues import DrivingCues, extract_cues
    from directanimator.cues.stream import STREAM_FROM
    from directanimator.model_folders import resolve_run_folder
    from directanimator.modeling import resolve_model_folder
    from directanimator.pipeline import check_pipeline_folder
    from directanimator.shots import shot_summary
    from directanimator.video import probe_video, read_video

    cache_threshold = check_cache(args.cache, args.cache_threshold)
    if args.cpu_offload and args.memory not in (None, "model-offload"):
        raise InputError(f"--cpu-offload is --memory model-offload; it cannot go with --memory {args.memory}")

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world = 0, 1
    if args.context_parallel:
        from directanimator.parallel import init_distributed

        if args.cache:
            raise InputError("--cache cannot go with --context-parallel (each process would decide what to skip)")
        rank, world, device = init_distributed(args.device)
        if world < 2:
            raise InputError("--context-parallel needs at least 2 processes (torchrun --nproc-per-node 2 or more)")
    check_attention_backend(args.attention_backend, device)
    # check the model folder before the (slow) cue extraction
    run = resolve_run_folder(args.model)  # a training run folder: its transformer on the base it was trained from
    model_dir = run[0] if run else resolve_model_folder(args.model, component="pipeline")
    check_pipeline_folder(model_dir)
    size = args.size or native_long_side(model_dir)

    start = time.monotonic()
    scratch = None  # the cue folder of a long driving video streamed without --save-cues (removed at the end)
    num_frames = None
    if os.path.isdir(args.driving):
        cues = DrivingCues.load(args.driving)
        if args.frames is not None and args.frames < cues.num_frames:
            num_frames = args.frames  # the pipeline reads only the windows of these frames
    else:
        streamed = None
        if probe_video(args.driving).num_frames > STREAM_FROM:
            streamed = _streamed_cues(args, size, person, reference_person)
        if streamed is not None:
            cues, scratch = streamed
        else:
            video = read_video(args.driving, max_side=1024)
            bar, update = _progress_bar("extracting cues")
            try:
                # the shot is chosen on the clip as decoded, then it is resampled to --fps and cut to --frames
                cues = extract_cues(
                    args.reference, video, cue_settings_from_args(args), segmenter=args.segmenter,
                    face_detector=args.face_detector, size=size, fps=args.fps or None, max_frames=args.frames,
                    shot=args.shot, person=person or "largest", reference_person=reference_person or "largest",
                    progress=update,
                )
            finally:
                bar.close()
            if args.save_cues:
                cues.save(args.save_cues)
        for line in shot_summary(cues.settings["shots"]) + people_summary(cues.settings):
            print(line)
    try:
        return _generate(args, cues, cues.audio_source, num_frames, model_dir, run, device, rank, world, cue_scale,
                         cache_threshold, start, out)
    finally:
        if scratch is not None:
            scratch.cleanup()


def _streamed_cues(args, size, person, reference_person):
    """``(cues, scratch)``: a long driving video extracted chunk by chunk into a cue folder (``--save-cues``, or the
    ``TemporaryDirectory`` ``scratch``, removed by the caller once the video is written) and read back lazily;
    ``None`` when it shows several people (following one of them is not streamed yet: the caller extracts in
    memory)."""
    from directanimator.cues.stream import SeveralPeople, extract_cues_to_folder

    scratch = None if args.save_cues else tempfile.TemporaryDirectory(prefix="directanimator-cues-")
    bar, update = _progress_bar("extracting cues")
    try:
        cues = extract_cues_to_folder(
            args.reference, args.driving, args.save_cues or os.path.join(scratch.name, "cues"),
            cue_settings_from_args(args), segmenter=args.segmenter, face_detector=args.face_detector, size=size,
            fps=args.fps, max_frames=args.frames, shot=args.shot, person=person or "largest",
            reference_person=reference_person or "largest", progress=update,
        )
    except BaseException as e:
        if scratch is not None:
            scratch.cleanup()
        if not isinstance(e, SeveralPeople):
            raise
        print(f"note: {e.args[0].split(';')[0]}: following one of them is not streamed yet, so the clip is "
              "extracted in memory (about 8.6 MB a frame at 512 px)", file=sys.stderr)
        return None
    finally:
        bar.close()
    return cues, scratch


def _generate(args, cues, audio, num_frames, model_dir, run, device, rank, world, cue_scale, cache_threshold,
              start, out) -> int:
    import torch

    from directanimator.attention import set_attention_backend
    from directanimator.memory import apply_memory_mode
    from directanimator.pipeline import DirectAnimatorPipeline
    from directanimator.video import read_image, write_video

    image = read_image(args.reference) if args.reference and os.path.isdir(args.driving) else None

    dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    pipe = DirectAnimatorPipeline.from_pretrained(args.model if run else model_dir, dtype=dtype)
    # --cpu-offload off CUDA runs resident, as it always did; an explicit --memory offload on the CPU is an error
    memory = args.memory or ("model-offload" if args.cpu_offload and device.startswith("cuda") else "resident")
    apply_memory_mode(pipe, memory, device, fp8=args.fp8)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()
    if args.attention_backend:
        set_attention_backend(pipe.transformer, args.attention_backend)
    if args.context_parallel:
        from diffusers.models._modeling_parallel import ContextParallelConfig

        from directanimator.parallel import enable_context_parallel

        # uneven splits allowed: the text (226 tokens at CogVideoX size) need not divide by the process count
        enable_context_parallel(pipe.transformer, ContextParallelConfig(ulysses_degree=world, ulysses_anything=True),
                                device)
    if args.compile:
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    pipe.set_progress_bar_config(desc="denoising")

    generator = torch.Generator("cpu").manual_seed(args.seed)
    latents = pipe(
        image=image, cues=cues, prompt=args.prompt, negative_prompt=args.negative_prompt, num_frames=num_frames,
        num_inference_steps=args.steps, guidance_scale=args.guidance, cue_scale=cue_scale, generator=generator,
        height=args.height, width=args.width, window_frames=args.window_frames, window_overlap=args.window_overlap,
        output_type="latent", cache=args.cache, cache_threshold=cache_threshold,
    ).frames
    if rank:
        return 0  # every process computed the same video; the first one writes it
    # decoded a VAE batch at a time and encoded as it comes: a long video is never held whole
    count = num_frames or cues.num_frames
    bar, update = _progress_bar("decoding and writing")
    try:
        write_video(out, pipe.iter_frames(latents, count), fps=cues.fps, audio_from=audio, num_frames=count,
                    progress=update)
    finally:
        bar.close()
    height, width = (n * pipe.vae_scale_factor_spatial for n in latents.shape[-2:])
    print(f"wrote {out}: {count} frames at {width}x{height}, {cues.fps:g} fps ({time.monotonic() - start:.1f} s)")
    return 0


def native_long_side(model_dir: str, default: int = 512) -> int:
    """The long side in pixels a pipeline folder was built for: the transformer's ``sample_height/width`` (latent
    units, the default size of CogVideoX pipelines) times the VAE's spatial compression."""
    try:
        with open(os.path.join(model_dir, "transformer", "config.json")) as f:
            transformer = json.load(f)
        with open(os.path.join(model_dir, "vae", "config.json")) as f:
            vae = json.load(f)
    except (OSError, ValueError):
        return default
    latent = max(transformer.get("sample_height") or 0, transformer.get("sample_width") or 0)
    from directanimator.latents import vae_compression

    return int(latent * vae_compression(vae)[0]) or default


if __name__ == "__main__":
    sys.exit(main())
