"""The paper's cross-ID evaluation protocol on a dataset in the training format, in one command:

    python -m directanimator.evaluate protocol --dataset DIR --model M --out OUT [--steps 50 --frames 49 ...]

For every clip A of the test split (``"split": "test"`` in ``metadata.jsonl``, see ``trainers/dataset.py``) and each
of its ``pseudo_driving`` videos (another identity B performing A's motion, as ``python -m trainers.pseudo``
makes them): the reference is A's (identity A), the driving cues are extracted from B's pseudo video, and the
ground truth is A's own clip, so the generated video should show A performing the motion. Each pair is generated
with the model (a pipeline folder, a Hub repo id or a training run folder) and the whole set is then scored by
``directanimator.evaluate`` (``run_evaluation``) against:

- the ground truth A's clip, fitted to the generated frames the way cue extraction fits the driving video
  (``fit_frames(..., policy="pad")``; the clip and its pseudo videos share their frame size and rate);
- the driving frames as the cues hold them (PLC/FLC follow the driving person);
- the reference image as the cues hold it (FIS, moving L1).

OUT holds ``generated/``, ``ground_truth/``, ``driving/``, ``references/`` (one subfolder named after the dataset,
the paper's TikTok / Unseen rows), ``pairs.json`` (every pair, and the ones left out with why) and ``results/``
(``results.json`` and ``results.md``). Generated pairs already in ``generated/`` are kept (a rerun resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .errors import InputError
from .files import atomic_write_json

__all__ = ["build_protocol_parser", "protocol_pairs", "run_protocol"]


def build_protocol_parser() -> argparse.ArgumentParser:
    """The ``protocol`` subcommand's interface."""
    p = argparse.ArgumentParser(
        prog="python -m directanimator.evaluate protocol",
        description="The paper's cross-ID protocol: animate each test clip's reference with the pseudo driving "
        "video of another identity, then score the results against the clip (results.json, results.md).")
    p.add_argument("--dataset", required=True, help="dataset folder in the training format (metadata.jsonl)")
    p.add_argument("--model", required=True, help="pipeline folder, Hub repo id or training run folder")
    p.add_argument("--out", required=True, help="output folder (created; a rerun resumes)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    p.add_argument("--guidance", type=float, default=6.0, help="classifier-free guidance (default 6)")
    p.add_argument("--seed", type=int, default=42, help="random seed of pair 0; pair i uses seed + i (default 42)")
    p.add_argument("--frames", type=int, default=49, help="frames per pair (default 49, the paper's clips)")
    p.add_argument("--size", type=int, default=None, help="working long side in pixels (default: the model's)")
    p.add_argument("--max-pairs", type=int, default=None, help="use only the first N pairs (a quick look)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--weights-dir", action="append", default=[], help="metric weights folder (may be repeated)")
    p.add_argument("--metrics", default=None, help="comma-separated subset of the metrics (default: all)")
    p.add_argument("--landmarks", default="auto", choices=("auto", "dwpose", "mediapipe"),
                   help="PLC/FLC's estimator (default: DWPose when its files are present)")
    return p


def protocol_pairs(dataset) -> list[dict]:
    """The cross-ID pairs of a loaded dataset (``trainers.dataset.VideoDataset``): ``{"name", "clip",
    "reference", "driving", "caption", "identity", "driver"}`` per (test clip, pseudo driving video).

    Raises:
        InputError: no test clip, or no test clip with a pseudo driving video of another identity.
    """
    test = dataset.split("test")
    if not test:
        raise InputError(f"{dataset.source or dataset.root} has no test clips; mark held-out rows \"split\": \"test\"")
    pairs = []
    for clip in test:
        for k, pseudo in enumerate(clip.pseudo_driving):
            if pseudo.identity == clip.identity:
                continue
            stem = Path(clip.file_name).with_suffix("").as_posix().replace("/", "_")
            pairs.append({"name": f"{stem}_by_{pseudo.identity}" + (f"_{k}" if k else ""), "clip": str(clip.path),
                          "reference": str(clip.reference_path) if clip.reference_path else None,
                          "driving": str(pseudo.path), "caption": clip.caption, "identity": clip.identity,
                          "driver": pseudo.identity})
    if not pairs:
        raise InputError(f"none of the {len(test)} test clips of {dataset.source or dataset.root} has a pseudo "
                         "driving video of another identity (\"pseudo_driving\"); make them with "
                         "`python -m trainers.pseudo --splits train,test`")
    return pairs


def _check_args(args):
    for flag, value, low in (("--steps", args.steps, 1), ("--frames", args.frames, 1)):
        if value < low:
            raise InputError(f"{flag} must be at least {low}, got {value}")
    if args.max_pairs is not None and args.max_pairs < 1:
        raise InputError(f"--max-pairs must be at least 1, got {args.max_pairs}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")


def run_protocol(args, show_progress: bool = True) -> dict:
    """Generate every cross-ID pair of ``args.dataset`` with ``args.model`` and evaluate them (see the module
    docstring); returns ``run_evaluation``'s result."""
    _check_args(args)
    from trainers.dataset import load_dataset  # the training format's own loader and validator

    dataset = load_dataset(args.dataset)
    pairs = protocol_pairs(dataset)[: args.max_pairs]
    name = Path(dataset.root).resolve().name if os.path.isdir(args.dataset) else args.dataset.replace("/", "_")
    out = Path(args.out)
    folders = {k: out / k / name for k in ("generated", "ground_truth", "driving", "references")}

    import torch

    from .cues import extract_cues
    from .evaluate import run_evaluation
    from .model_folders import resolve_model_folder, resolve_run_folder
    from .pipeline import DirectAnimatorPipeline, check_pipeline_folder
    from .video import fit_frames, read_video, to_uint8_frames, write_video

    run = resolve_run_folder(args.model)
    model_dir = run[0] if run else resolve_model_folder(args.model, component="pipeline")
    check_pipeline_folder(model_dir)
    if args.size is None:
        from .animate import native_long_side

        args.size = native_long_side(model_dir)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = None
    done, left_out = [], []
    for i, pair in enumerate(pairs):
        target = folders["generated"] / f"{pair['name']}.mp4"
        if target.is_file() and (folders["ground_truth"] / f"{pair['name']}.mp4").is_file():
            done.append(pair)
            continue
        try:
            cues = extract_cues(pair["reference"] or pair["clip"], pair["driving"], size=args.size,
                                max_frames=args.frames, shot="all")
        except InputError as exc:  # e.g. no person found in the pseudo video: left out, said in pairs.json
            left_out.append({**pair, "reason": str(exc)})
            print(f"warning: pair {pair['name']} left out: {exc}", file=sys.stderr)
            continue
        if pipe is None:
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            pipe = DirectAnimatorPipeline.from_pretrained(args.model if run else model_dir, dtype=dtype).to(device)
            pipe.set_progress_bar_config(disable=not show_progress, desc=f"pair {i + 1}/{len(pairs)}")
        generator = torch.Generator("cpu").manual_seed(args.seed + i)
        result = pipe(image=None, cues=cues, prompt=pair["caption"] or "", num_inference_steps=args.steps,
                      guidance_scale=args.guidance, generator=generator, output_type="np")
        frames = to_uint8_frames(result.frames[0])
        n, h, w = frames.shape[:3]
        truth = read_video(pair["clip"], max_side=None).frames[:n]
        if len(truth) < n:
            left_out.append({**pair, "reason": f"the clip has {len(truth)} frames, fewer than the {n} generated"})
            continue
        truth = fit_frames(truth, h, w, policy="pad")
        driving = fit_frames(np.asarray(cues.driving[:n]), h, w, policy="pad")
        reference = fit_frames(np.asarray(cues.reference), h, w, policy="crop")
        for key, video in (("driving", driving), ("ground_truth", truth)):
            write_video(folders[key] / f"{pair['name']}.mp4", video, fps=cues.fps, crf=10)
        folders["references"].mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.fromarray(reference).save(folders["references"] / f"{pair['name']}.png")
        write_video(target, frames, fps=cues.fps, crf=10)  # last: its presence marks the pair done
        done.append(pair)
    atomic_write_json(out / "pairs.json", {"dataset": str(args.dataset), "model": str(args.model),
                                           "pairs": done, "left_out": left_out}, indent=1)
    if not done:
        raise InputError(f"no pair of {args.dataset} could be generated (see {out / 'pairs.json'})")
    keep = {p["name"] for p in done}
    stale = [f for f in folders["generated"].glob("*.mp4") if f.stem not in keep]
    if stale:
        raise InputError(f"{folders['generated']} holds videos of other pairs ({stale[0].name}); use a new --out")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    return run_evaluation(out / "generated", out / "results", ground_truth=str(out / "ground_truth"),
                          driving=str(out / "driving"), references=str(out / "references"),
                          weights_dirs=args.weights_dir, metrics=metrics, name=Path(str(args.model)).name,
                          device=args.device, landmarks=args.landmarks, show_progress=show_progress)
