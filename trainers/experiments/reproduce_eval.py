"""Held-out cross-ID evaluation for ``python -m trainers.experiments.reproduce``.

The synthetic world renders every test identity performing every test motion, so a cross-ID test has an exact
ground truth: reference = identity A's photo for motion M, driving video = identity B performing M, ground truth =
A performing M. The cues of every (A, B, M) are extracted once (``prepare_pairs``) with the app's own
``extract_cues``; each cue ablation derives its cues from them the way its training did (``cue_inputs``).

    python -m trainers.experiments.reproduce_eval pairs WORLD OUT_DIR           (extract the test cues once)
    python -m trainers.experiments.reproduce_eval model PAIRS_DIR BASE TRANSFORMER OUT_JSON --ablation NAME --steps N
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch

from directanimator.files import atomic_write_json
from directanimator.cues import DrivingCues, extract_cues, rebuild_cues
from directanimator.cues.skeleton_video import SKELETON_VIDEO_MODES, read_skeleton_cue
from directanimator.cues.variants import cue_inputs as variant_inputs
from directanimator.errors import InputError, run_cli
from directanimator.metrics import Evaluator
from directanimator.model_folders import resolve_model_folder
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.pipeline import DirectAnimatorPipeline
from directanimator.video import read_video
from trainers.cli_checks import ArgumentParser, check_model_folder, integer, loading, positive_int, random_seed
from trainers.dataset import validate_dataset

_NAME = re.compile(r"id_(\d+)_mo_(\d+)")

# how each cue ablation changes the cue inputs (the same switches its training used)
ABLATIONS = ("none", "no_face", "no_location", "rgb_pose", "no_lowpass", "hard_mask", "face_in_place", "skeleton",
             "openpose", "openpose_noisy")


def test_pairs(world: str | os.PathLike) -> list[dict]:
    """Every ordered (A, B, M) of the world's test split with A != B: reference, driving and ground-truth paths."""
    rows = [json.loads(line) for line in open(Path(world) / "metadata.jsonl") if line.strip()]
    clips = {}
    for row in rows:
        if row.get("split") != "test":
            continue
        m = _NAME.search(row["file_name"])
        clips[(int(m.group(1)), int(m.group(2)))] = row
    pairs = []
    for (a, mo), row_a in sorted(clips.items()):
        for (b, mo_b), row_b in sorted(clips.items()):
            if mo_b == mo and b != a:
                pairs.append({"name": f"ref{a}_drv{b}_mo{mo}", "reference": row_a["reference"],
                              "driving": row_b["file_name"], "ground_truth": row_a["file_name"]})
    return pairs


def prepare_pairs(world: str, out_dir: str, size: int, num_frames: int) -> list[dict]:
    """Extract (once) and save the cues of every test pair under ``out_dir/<pair>/``; write ``pairs.json`` (the
    usable pairs) and ``skipped.json`` (pairs whose cues could not be extracted, e.g. no person found, with why)."""
    torch.set_num_threads(1)
    out = Path(out_dir)
    if not Path(world).is_dir():
        raise InputError(f"world folder {world} does not exist; make it with `python -m trainers.synthetic`")
    validate_dataset(world, check_readable=False)  # one clear error for a missing or malformed metadata.jsonl
    pairs = test_pairs(world)
    if not pairs:
        raise InputError(f"{world} has no cross-ID test pairs; make the world with >= 2 test identities")
    usable, skipped = [], []
    for pair in pairs:
        folder = out / pair["name"]
        if not (folder / "cues.json").exists():
            try:
                cues = extract_cues(str(Path(world) / pair["reference"]), str(Path(world) / pair["driving"]),
                                    # every frame: the metrics compare against the clip's own frames
                                    size=size, num_frames=num_frames, shot="all")
            except InputError as exc:  # e.g. a drawn figure the segmenter cannot find: leave the pair out, say so
                skipped.append({**pair, "reason": str(exc)})
                print(f"warning: test pair {pair['name']} left out: {exc}", file=sys.stderr)
                continue
            cues.save(str(folder))
        usable.append(pair)
    if not usable:
        raise InputError(f"no test pair of {world} has usable cues (see the warnings above)")
    for name, rows in (("skipped.json", skipped), ("pairs.json", usable)):
        atomic_write_json(out / name, rows, indent=1)
    return usable


# What each ablation changes in the cue settings the pairs were extracted with (``CueSettings``)
ABLATION_CHANGES = {
    "none": {}, "no_face": {"drop": ("face",)}, "no_location": {"drop": ("location",)}, "rgb_pose": {"pose_cue": "rgb"},
    "no_lowpass": {"lowpass": 0.0}, "hard_mask": {"grid": 0}, "face_in_place": {"face_cue": "in_place"},
    "skeleton": {"pose_cue": "skeleton", "drop": ("face", "location")},  # the skeleton instead of the whole triplet
    # an OpenPose skeleton video read beside the driving video instead of the pixel pose cue; face and location kept
    "openpose": {"pose_cue": "openpose"}, "openpose_noisy": {"pose_cue": "openpose_noisy"},
}


def cue_inputs(cues, ablation: str, skeleton: np.ndarray | None = None) -> dict:
    """The pipeline's cue arguments for one ablation (absent cues are left out, as ``--drop-cues`` does in training),
    built by ``directanimator.cues.variants`` as the trainers' precompute builds them.

    Args:
        cues: ``DrivingCues`` of the pair (default settings).
        ablation: one of ``ABLATIONS``.
    """
    if ablation not in ABLATION_CHANGES:
        raise ValueError(f"unknown ablation {ablation!r}")
    extracted = cues.cue_settings
    settings = extracted.replace(**ABLATION_CHANGES[ablation])
    if (settings.lowpass, settings.grid) != (extracted.lowpass, extracted.grid):
        cues = rebuild_cues(cues, lowpass=settings.lowpass, grid=settings.grid)
    return variant_inputs(cues, settings, skeleton)


#: What the reproduction reports per pair (``directanimator.metrics`` keys, scored by its ``Evaluator``).
PAIR_METRICS = ("ssim", "psnr", "l1", "moving_l1")
#: Scored against the world's ground-truth person masks (``world_metrics``), when the world has them.
WORLD_METRICS = ("background_l1", "mask_iou", "pulse")


def _metrics(evaluator: Evaluator, generated: np.ndarray, truth: np.ndarray, reference: np.ndarray) -> dict:
    """The pair's ``PAIR_METRICS`` from the evaluator; moving L1 is NaN when nothing moves (averaged with nanmean)."""
    scored = evaluator.evaluate_video(generated, truth, reference=reference)["metrics"]
    return {k: float(scored.get(k, float("nan"))) for k in PAIR_METRICS}


def pulse_ratios(generated: np.ndarray, truth: np.ndarray, period: int = 4) -> np.ndarray:
    """Mean absolute frame-to-frame change of ``generated`` at each position of the ``period``-frame group,
    divided by the ground truth's at the same position ([period] floats; 1 = as steady as the truth). The VAE's
    4x temporal compression shows as a pulse: large ratios at some positions, small at others."""
    g = np.abs(np.diff(generated.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    t = np.abs(np.diff(truth.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    pos = np.arange(len(g)) % period
    return np.array([g[pos == k].mean() / max(t[pos == k].mean(), 1e-6) if (pos == k).any() else np.nan
                     for k in range(period)])


def world_metrics(generated: np.ndarray, truth: np.ndarray, truth_masks: np.ndarray, segmenter) -> dict:
    """The metrics the synthetic world's exact masks allow, for one generated video.

    Args:
        generated, truth: [T, H, W, 3] uint8. truth_masks: [T, H, W] ground-truth person coverage in [0, 1].
        segmenter: the cue extraction's segmenter (``directanimator.cues.segment.get_segmenter``): it finds the
            generated person, whose mask is compared with the true one.
    Returns:
        ``background_l1``: mean |generated - truth| / 255 over the pixels outside the true person (dilated by 2 px);
        ``mask_iou``: the mean over frames of the IoU of the segmented generated person with the true mask;
        ``pulse``: the largest ``pulse_ratios``.
    """
    import cv2

    from trainers.pseudo import mask_iou

    person = truth_masks > 0.5
    kernel = np.ones((5, 5), np.uint8)
    near = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in person])
    bg = ~near
    diff = np.abs(generated.astype(np.float32) - truth.astype(np.float32)).mean(-1) / 255.0
    background = float(diff[bg].mean()) if bg.any() else float("nan")
    found = segmenter.segment_video(generated).masks
    return {"background_l1": background, "mask_iou": mask_iou(np.asarray(found, np.float32), truth_masks),
            "pulse": float(np.nanmax(pulse_ratios(generated, truth)))}


def truth_masks(world, ground_truth: str, num_frames: int, height: int, width: int) -> np.ndarray | None:
    """The ground-truth person masks of a world video (its ``.npz`` sidecar), first ``num_frames``, resized to the
    working size; None when the world has no sidecar."""
    import cv2

    side = (Path(world) / ground_truth).with_suffix(".npz")
    if not side.is_file():
        return None
    with np.load(side) as z:
        masks = z["masks"][:num_frames].astype(np.float32) / 255.0
    if masks.shape[1:] != (height, width):
        masks = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA) for m in masks])
    return masks


@torch.no_grad()
def vae_round_trip(vae, frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``frames`` [T, H, W, 3] uint8 at ``height x width``, encoded (posterior mode) and decoded by ``vae``, as
    uint8; T is padded to 1 + 4k with the last frame, as generation pads, and cut back."""
    from directanimator.latents import encode_video

    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2) / 255.0
    if x.shape[-2:] != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", antialias=True)
    t = len(frames)
    padded = (t - 1 + 3) // 4 * 4 + 1
    x = torch.cat([x, x[-1:].expand(padded - t, -1, -1, -1)]) if padded > t else x
    video = (x * 2 - 1).permute(1, 0, 2, 3)[None]
    latents = encode_video(vae, video)
    out = vae.decode(latents.permute(0, 2, 1, 3, 4) / vae.config.scaling_factor).sample[0, :, :t]
    return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()


def evaluate_model(pairs_dir: str, world: str, base: str, transformer: str | None, out_json: str,
                   ablation: str = "none", steps: int = 10, seed: int = 0, world_extras: bool = False) -> dict:
    """Generate every test pair with one trained transformer and write the metrics (mean and per pair) as JSON.

    Args:
        pairs_dir: folder written by ``prepare_pairs``.
        world: the world folder (ground-truth clips).
        base: pipeline folder for the VAE, text encoder, tokenizer and scheduler.
        transformer: trained transformer folder; None evaluates the trivial "static reference" baseline, ``"vae"``
            the autoencoder's ceiling: the ground truth itself encoded and decoded by the base's VAE (what a
            transformer that predicted the true latents exactly would score).
        out_json: where the result goes (written atomically).
        ablation: which cue inputs the model was trained with (``ABLATIONS``).
        steps: inference steps.
        seed: base seed of the generation noise (pair i uses seed + i).
        world_extras: also score ``WORLD_METRICS`` against the world's ground-truth masks (segments every
            generated frame: slower).
    """
    torch.set_num_threads(1)
    listing = Path(pairs_dir) / "pairs.json"
    if not listing.is_file():
        raise InputError(f"{pairs_dir} has no pairs.json; make it with `python -m trainers.experiments.reproduce_eval pairs`")
    with loading(str(listing), hint="make it again with `python -m trainers.experiments.reproduce_eval pairs`"):
        pairs = json.loads(listing.read_text())
    pipe = vae = None
    if transformer == "vae":
        from diffusers import AutoencoderKLCogVideoX

        with loading(f"the VAE in {base}"):
            vae = AutoencoderKLCogVideoX.from_pretrained(str(Path(base) / "vae"), use_safetensors=True).eval()
    elif transformer is not None:
        transformer = resolve_model_folder(transformer, component="transformer")
        check_model_folder(transformer, hint="pass a trained transformer folder (a run's transformer/)")
        with loading(f"the transformer in {transformer}"):
            model = CueFusionTransformer3DModel.from_pretrained(transformer, use_safetensors=True)
        pipe = DirectAnimatorPipeline.from_pretrained(base, transformer=model)
        pipe.set_progress_bar_config(disable=True)
    evaluator = Evaluator(device="cpu", metrics=PAIR_METRICS)
    segmenter = None
    per_pair = {}
    for i, pair in enumerate(pairs):
        cues = DrivingCues.load(str(Path(pairs_dir) / pair["name"]))
        skeleton = None
        if ABLATION_CHANGES[ablation].get("pose_cue") in SKELETON_VIDEO_MODES:
            skeleton = read_skeleton_cue(Path(world) / pair["driving"], ABLATION_CHANGES[ablation]["pose_cue"],
                                         cues.height, cues.width, num_frames=cues.num_frames)
        truth = read_video(str(Path(world) / pair["ground_truth"])).frames[: cues.num_frames]
        if vae is not None:
            generated = vae_round_trip(vae, truth, *cues.reference.shape[:2])
        elif pipe is None:
            generated = np.repeat(cues.reference[None], len(truth), axis=0)
        else:
            generator = torch.Generator().manual_seed(seed + i)
            out = pipe(image=cues.reference, **cue_inputs(cues, ablation, skeleton), num_frames=cues.num_frames,
                       num_inference_steps=steps, guidance_scale=1.0, generator=generator, output_type="np")
            frames = np.asarray(out.frames[0])
            generated = frames if frames.dtype == np.uint8 else (frames * 255).round().clip(0, 255).astype(np.uint8)
        n = min(len(truth), len(generated))
        per_pair[pair["name"]] = _metrics(evaluator, generated[:n], truth[:n], cues.reference)
        masks = truth_masks(world, pair["ground_truth"], n, *generated.shape[1:3]) if world_extras else None
        if masks is not None:
            if segmenter is None:
                from directanimator.cues.segment import get_segmenter

                segmenter = get_segmenter("mediapipe")
            per_pair[pair["name"]].update(world_metrics(generated[:n], truth[:n], masks, segmenter))
    keys = [k for k in PAIR_METRICS + WORLD_METRICS if all(k in m for m in per_pair.values())]
    mean = {k: float(np.nanmean([m[k] for m in per_pair.values()])) for k in keys}
    result = {"mean": mean, "pairs": per_pair, "ablation": ablation, "steps": steps, "transformer": transformer}
    atomic_write_json(out_json, result, indent=1)
    return result


def main(argv=None) -> int:
    """CLI used by the reproduce scheduler (one subprocess per job)."""
    p = ArgumentParser(prog="python -m trainers.experiments.reproduce_eval")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("pairs")
    q.add_argument("world")
    q.add_argument("out_dir")
    q.add_argument("--size", type=integer(32, 2048), default=64)
    q.add_argument("--num-frames", type=positive_int, default=17)
    q = sub.add_parser("model")
    q.add_argument("pairs_dir")
    q.add_argument("world")
    q.add_argument("base")
    q.add_argument("transformer", help="transformer folder, 'none' for the static-reference baseline, or 'vae' for "
                                       "the autoencoder's ceiling (the ground truth through the base's VAE)")
    q.add_argument("out_json")
    q.add_argument("--ablation", default="none", choices=ABLATIONS)
    q.add_argument("--steps", type=positive_int, default=10)
    q.add_argument("--seed", type=random_seed, default=0)
    q.add_argument("--world-metrics", action="store_true",
                   help="also background L1, mask IoU (segmenter vs the world's true masks) and the 4-frame pulse")

    def work():
        args = p.parse_args(argv)
        if args.cmd == "pairs":
            prepare_pairs(args.world, args.out_dir, args.size, args.num_frames)
        else:
            evaluate_model(args.pairs_dir, args.world, args.base,
                           None if args.transformer == "none" else args.transformer, args.out_json,
                           args.ablation, args.steps, args.seed, world_extras=args.world_metrics)

    return run_cli(work, done=None)


if __name__ == "__main__":
    sys.exit(main())
