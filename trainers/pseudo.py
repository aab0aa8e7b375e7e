"""Pseudo cross-ID driving videos made with our own stage-1 model, filtered automatically.

    python -m trainers.pseudo --hub-dataset ID_OR_DIR --same-id-checkpoint STAGE1_OUT --output-dir NEW_DATASET \
        [--per-clip 2 --min-mask-iou 0.5 --num-inference-steps 25 --seed 0]

The paper (A.3) renders other identities performing each training clip's motion with external skeleton-driven
models (StableAnimator, MimicMotion) and filters the results by hand. Here the stage-1 DirectAnimator model does the
rendering: for each train clip A, a reference image of another identity B is animated with A's own driving cues
(cues extracted against A's reference, so the location cue keeps the person where A is: the pseudo video stays
spatially aligned with A's clip, as A.2 requires; the trainer adds the synthetic misalignment later).

Automatic filters (the paper leaves automatic filtering to future work):
- motion: mean per-frame IoU between the person masks of the generated video and of A's clip (the segmenter of the
  cue extraction), at least ``--min-mask-iou``;
- identity: the colour statistics of the generated person (HSV histogram of the masked pixels) must be closer to
  B's reference than to A's (``--appearance-check``): catches renders that copied the driver's appearance.

Output: a new dataset folder with the original files (hard links where possible, else copies), every candidate
video in ``pseudo/``, a ``metadata.jsonl`` whose train rows (and test rows, with ``--splits train,test``: the
driving videos of the paper's cross-ID evaluation protocol) gain the ACCEPTED ``pseudo_driving`` entries, the
dataset card, and ``pseudo_report.json`` with every candidate's scores. Resumable: candidates already in the report
are not generated again, and the filters are re-applied from the stored scores on every run (so thresholds can be
changed without regenerating).

Many processes (``accelerate launch --num_processes N -m trainers.pseudo ...``, one GPU each; or
``--process-index/--num-processes`` by hand): the candidate list is the same in every process (it depends on the
seed only), process ``i`` of ``k`` generates candidates ``i, i + k, ...`` with the same per-candidate seeds as one
process would, and writes their scores to its own shard ``pseudo_shards/<i>-of-<k>.json`` after each candidate.
The process that finds every candidate scored (in the report and the shards together, whatever the process count
of earlier runs) merges them into ``pseudo_report.json`` and writes the dataset: the same as one process's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from directanimator.cues import extract_cues
from directanimator.cues.faces import get_face_detector
from directanimator.cues.segment import get_segmenter
from directanimator.errors import InputError, run_cli
from directanimator.files import atomic_write_json
from directanimator.pipeline import DirectAnimatorPipeline
from directanimator.video import read_image, read_video, write_video
from trainers.args import CUE_DEFAULTS
from trainers.checkpoints import resolve_same_id_checkpoint
from trainers.cli_checks import (
    ArgumentParser,
    check_output_dir,
    fraction,
    integer,
    nonnegative,
    nonnegative_int,
    number,
    positive_int,
    random_seed,
    writing,
)
from trainers.components import load_components
from trainers.dataset import (
    SPLITS,
    clip_to_row,
    load_dataset,
    write_dataset_card,
    write_metadata,
)

REPORT = "pseudo_report.json"
SHARDS = "pseudo_shards"


def _read_scores(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({exc}); delete it to generate its candidates again, or choose "
                         "another --output-dir") from None


def read_candidates(out: Path) -> dict:
    """Every candidate scored so far: ``pseudo_report.json`` and all shards of ``pseudo_shards/`` together."""
    scores = _read_scores(out / REPORT)
    shards = out / SHARDS
    if shards.is_dir():
        for path in sorted(shards.glob("*.json")):
            scores.update(_read_scores(path))
    return scores


def is_accepted(scores: dict, args: argparse.Namespace) -> bool:
    """Whether a candidate passes the filters of ``args`` (from its stored scores)."""
    return bool(scores["mask_iou"] >= args.min_mask_iou
                and (not args.appearance_check or scores["similarity_new_identity"] >= scores["similarity_driver"]))


def process_share(args: argparse.Namespace) -> tuple[int, int]:
    """``(process index, process count)``: ``--process-index/--num-processes``, else ``RANK`` / ``WORLD_SIZE`` as
    ``accelerate launch`` (or torchrun) sets them, else ``(0, 1)``."""
    if args.process_index and not args.num_processes:
        raise InputError("--process-index needs --num-processes (how many processes share the candidates)")
    if args.num_processes:
        index, count = args.process_index, args.num_processes
    else:
        index, count = int(os.environ.get("RANK", 0) or 0), max(1, int(os.environ.get("WORLD_SIZE", 1) or 1))
    if not 0 <= index < count:
        raise InputError(f"--process-index {index} must be in 0..{count - 1} (--num-processes {count})")
    return index, count


def mask_iou(generated: np.ndarray, driving: np.ndarray, threshold: float = 0.5) -> float:
    """Mean IoU over frames of two [T,H,W] mask videos (frames empty in both are left out; 0 if all are)."""
    a, b = generated > threshold, driving > threshold
    inter = (a & b).reshape(len(a), -1).sum(1)
    union = (a | b).reshape(len(a), -1).sum(1)
    valid = union > 0
    return float((inter[valid] / union[valid]).mean()) if valid.any() else 0.0


def appearance_histogram(frames: np.ndarray, masks: np.ndarray, bins=(16, 8)) -> np.ndarray | None:
    """Normalised HSV (hue, saturation) histogram of the masked person pixels of [T,H,W,3] frames (None if empty)."""
    frames = frames.reshape(-1, *frames.shape[-3:])
    masks = masks.reshape(-1, *masks.shape[-2:])
    hist = np.zeros(bins, np.float32)
    for frame, mask in zip(frames, masks):
        m = (mask > 0.5).astype(np.uint8)
        if m.any():
            hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
            hist += cv2.calcHist([hsv], [0, 1], m, list(bins), [0, 180, 0, 256])
    total = hist.sum()
    return hist / total if total > 0 else None


def _similarity(h1, h2) -> float:
    if h1 is None or h2 is None:
        return -1.0
    return float(cv2.compareHist(h1, h2, cv2.HISTCMP_CORREL))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _identity_references(clips) -> dict[str, object]:
    """identity -> a reference image (its first clip's reference file, else that clip's first frame)."""
    refs = {}
    for clip in clips:
        if clip.identity in refs:
            continue
        if clip.reference_path is not None:
            refs[clip.identity] = read_image(str(clip.reference_path))
        else:
            refs[clip.identity] = read_video(str(clip.path), max_frames=1).frames[0]
    return refs


def _splits(value: str) -> tuple[str, ...]:
    """The ``--splits`` comma list, checked (``train``, ``test`` or both)."""
    names = tuple(dict.fromkeys(v.strip() for v in str(value).split(",") if v.strip()))
    bad = [n for n in names if n not in SPLITS]
    if not names or bad:
        raise InputError(f"--splits is a comma list of {', '.join(SPLITS)}, got {value!r}")
    return names


def make_pseudo_dataset(args: argparse.Namespace, progress=None) -> Path:
    """Generate, filter and write the pseudo cross-ID dataset; return its folder. See the module docstring."""
    dataset = load_dataset(args.hub_dataset, revision=args.hub_revision)
    splits = _splits(args.splits)
    train = dataset.split("train")
    identities = sorted({c.identity for c in train})
    if len(identities) < 2:
        raise InputError("pseudo cross-ID videos need at least two identities in the train split")
    for name in splits:
        if not dataset.split(name):
            raise InputError(f"--splits {args.splits}: the dataset has no {name} clips")
    transformer_path, recorded = resolve_same_id_checkpoint(args.same_id_checkpoint)
    pretrained = args.pretrained or recorded
    if not pretrained:
        raise InputError("pass --pretrained (the pipeline folder used by stage 1); the checkpoint does not record it")
    out = check_output_dir(args.output_dir)
    if out.resolve() == dataset.root.resolve():
        raise InputError("--output-dir must be a new folder, not the source dataset")
    report_path = out / REPORT
    index, count = process_share(args)
    report = read_candidates(out)  # before loading any model: a damaged file is refused first
    shard_path = out / SHARDS / f"{index:05d}-of-{count:05d}.json"
    shard = _read_scores(shard_path)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    comp = load_components(pretrained, transformer_path=transformer_path)
    pipe = DirectAnimatorPipeline(tokenizer=comp.tokenizer, text_encoder=comp.text_encoder, vae=comp.vae,
                                  transformer=comp.transformer.eval(), scheduler=comp.scheduler).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)

    segmenter, detector = get_segmenter(args.segmenter), get_face_detector(args.face_detector)
    # The train split's candidates come first, from the same random stream, so asking for the test split too
    # leaves every train candidate (and its seed) as it was; a test clip's other identities are those of train and
    # test (a test split of one held-out identity still gets pseudo videos of the train identities).
    refs = _identity_references(train + dataset.split("test") if "test" in splits else train)
    rng = np.random.default_rng(args.seed)
    plan = []
    for name in ("train", "test"):
        if name not in splits:
            continue
        pool = identities if name == "train" else sorted(refs)
        for clip in dataset.split(name):
            others = [i for i in pool if i != clip.identity]
            picks = rng.permutation(len(others))[: args.per_clip]
            plan.extend((clip, others[int(k)]) for k in picks)

    # the same plan in every process; this one takes every count-th candidate (the seeds are the plan's numbers)
    mine = [(n, clip, other) for n, (clip, other) in enumerate(plan) if n % count == index]
    rels = [f"pseudo/{Path(clip.file_name).stem}__{other}.mp4" for clip, other in plan]
    bar = tqdm(total=len(mine), initial=sum(rels[n] in report for n, _, _ in mine), disable=progress is not None,
               desc="pseudo" if count == 1 else f"pseudo {index + 1}/{count}", unit="candidate")

    def show():
        scored = {**read_candidates(out), **report} if count > 1 else report  # the other shards' too
        accepted = sum(is_accepted(scored[r], args) for r in rels if r in scored)
        done = sum(r in scored for r in rels)
        bar.set_postfix_str(f"all processes: {done}/{len(rels)} done, {accepted} accepted "
                            f"({accepted / max(done, 1):.0%})")

    show()
    for k, (n, clip, other) in enumerate(mine):
        if progress is not None:
            progress(k / max(1, len(mine)), f"{clip.file_name} as {other}")
        rel = rels[n]
        if rel in report:
            continue
        own_reference = read_image(str(clip.reference_path)) if clip.reference_path else read_video(
            str(clip.path), max_frames=1).frames[0]
        cues = extract_cues(own_reference, str(clip.path), segmenter=segmenter, face_detector=detector,
                            lowpass=args.lowpass, face_enlarge=args.face_enlarge, grid=args.grid,
                            size=args.long_side, num_frames=args.num_frames,
                            shot="all")  # frame for frame with the clip it is paired with in training
        generator = torch.Generator(device="cpu").manual_seed(args.seed + n)
        # one window over the whole clip: the model was trained on clips of exactly this length
        result = pipe(image=refs[other], cues=cues, prompt=clip.caption, num_inference_steps=args.num_inference_steps,
                      guidance_scale=args.guidance_scale, generator=generator, output_type="np",
                      window_frames=cues.num_frames)
        frames = (np.asarray(result.frames[0]) * 255).round().clip(0, 255).astype(np.uint8)
        masks = segmenter.segment_video(frames).masks
        iou = mask_iou(np.asarray(masks), cues.driving_masks)
        gen_hist = appearance_histogram(frames, np.asarray(masks))
        other_mask = segmenter.segment_image(refs[other]).masks
        sim_new = _similarity(gen_hist, appearance_histogram(refs[other][None], np.asarray(other_mask)))
        sim_driver = _similarity(gen_hist, appearance_histogram(cues.reference[None], cues.reference_mask[None]))
        # every candidate is kept on disk so another threshold can be applied later without regenerating
        with writing(f"{out / rel}", out, partial=out / rel,
                     kept=f"the {len(report)} candidates scored so far are kept: rerun to continue"):
            write_video(str(out / rel), frames, fps=cues.fps or 8)
            shard[rel] = {"clip": clip.file_name, "identity": other, "seed": args.seed + n, "mask_iou": iou,
                          "similarity_new_identity": sim_new, "similarity_driver": sim_driver}
            report[rel] = shard[rel]
            shard_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(shard_path, shard)
        show()
        bar.update(1)
    bar.close()

    # the last process to finish merges: every candidate of the plan scored, by any process of any run
    report = read_candidates(out)
    left = sum(r not in report for r in rels)
    if left:
        print(f"pseudo: this process's {len(mine)} candidates are done; {left} of {len(rels)} are left to the other "
              f"processes (the last one to finish writes {out})", file=sys.stderr)
        return out

    # the filters are applied here, from the stored scores, so a rerun with other thresholds re-filters at once
    for r in report.values():
        r["accepted"] = is_accepted(r, args)
    # a full disk here leaves the report (written whole, by rename) and every candidate video for a rerun
    with writing(f"the dataset {out}", out, kept=f"the candidates in {REPORT} are kept: rerun to finish"):
        atomic_write_json(report_path, report)

        # the new dataset: original files, the pseudo videos, a new metadata.jsonl (accepted ones only) and card
        rows = []
        for clip in dataset.clips:
            _link_or_copy(clip.path, out / clip.file_name)
            if clip.reference_path is not None:
                _link_or_copy(clip.reference_path, out / clip.reference)
            for p in clip.pseudo_driving:
                _link_or_copy(p.path, out / p.file_name)
            row = clip_to_row(clip)
            new = [{"file_name": rel, "identity": r["identity"]} for rel, r in sorted(report.items())
                   if r["clip"] == clip.file_name and r["accepted"]]
            if new:
                row["pseudo_driving"] = row.get("pseudo_driving", []) + new
            rows.append(row)
        write_metadata(out, rows)
        accepted = sum(r["accepted"] for r in report.values())
        write_dataset_card(
            out, pretty_name="DirectAnimator clips with pseudo cross-ID driving videos",
            description=f"Made from `{dataset.source}` by `python -m trainers.pseudo` with the stage-1 model "
                        f"`{transformer_path}`.",
            extra_sections=(
                "## Pseudo driving videos\n\n"
                f"{accepted} of {len(report)} generated candidates kept (mask IoU >= {args.min_mask_iou}"
                f"{', appearance closer to the new identity than to the driver' if args.appearance_check else ''}); "
                f"scores of every candidate are in `{REPORT}`."
            ),
        )
    if progress is not None:
        progress(1.0, "done")
    return out


def main(argv=None) -> int:
    """CLI entry: parse, generate, print one-line errors (exit code 2)."""
    parser = ArgumentParser(prog="python -m trainers.pseudo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub-dataset", required=True, help="dataset folder or Hub dataset repo id")
    parser.add_argument("--hub-revision", default=None)
    parser.add_argument("--same-id-checkpoint", required=True, help="stage-1 output folder or checkpoint")
    parser.add_argument("--pretrained", default=None, help="pipeline folder (default: the one stage 1 used)")
    parser.add_argument("--output-dir", required=True, help="the new dataset folder")
    parser.add_argument("--per-clip", type=positive_int, default=2, help="other identities tried per clip")
    parser.add_argument("--splits", default="train",
                        help="the splits whose clips get pseudo driving videos, comma list: train (stage 2's data; "
                             "the default) and/or test (the paper's cross-ID evaluation: python -m "
                             "directanimator.evaluate protocol)")
    parser.add_argument("--min-mask-iou", type=fraction, default=0.5, help="motion filter threshold in [0, 1]")
    parser.add_argument("--appearance-check", action=argparse.BooleanOptionalAction, default=True,
                        help="keep only renders that look more like the new identity than the driver")
    parser.add_argument("--num-inference-steps", type=positive_int, default=25)
    parser.add_argument("--guidance-scale", type=nonnegative, default=1.0)
    parser.add_argument("--num-frames", type=positive_int, default=49)
    # the ranges of the cue settings are extract_cues' own
    parser.add_argument("--long-side", type=integer(32, 2048), default=512)
    parser.add_argument("--segmenter", default="mediapipe")
    parser.add_argument("--face-detector", default="mediapipe")
    parser.add_argument("--lowpass", type=fraction, default=CUE_DEFAULTS.lowpass)
    parser.add_argument("--face-enlarge", type=number(1, 4), default=CUE_DEFAULTS.face_enlarge)
    parser.add_argument("--grid", type=integer(0, 256), default=CUE_DEFAULTS.grid)
    parser.add_argument("--seed", type=random_seed, default=0)
    parser.add_argument("--process-index", type=nonnegative_int, default=0,
                        help="this process's share of the candidates (with --num-processes; default: RANK as "
                             "accelerate launch sets it)")
    parser.add_argument("--num-processes", type=positive_int, default=None,
                        help="how many processes share the candidates (default: WORLD_SIZE from accelerate launch)")
    return run_cli(lambda: make_pseudo_dataset(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
