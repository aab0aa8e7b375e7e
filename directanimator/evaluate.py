"""Evaluate generated videos the way the paper does (Tables 1 and 2):

    python -m directanimator.evaluate --generated DIR --ground-truth DIR [--driving DIR] [--references DIR] --out RESULTS_DIR
    python -m directanimator.evaluate --check [--weights-dir DIR]
    python -m directanimator.evaluate protocol --dataset DIR --model M --out OUT   (generate, then evaluate)

Videos pair by name (``directanimator.metrics.folders``; subfolders are datasets). Every metric whose weights are
present runs (SSIM, PSNR, L1 and the MediaPipe PLC/FLC need none); the others are listed with the file to download
and where to put it, and are absent from the results, never 0 or NaN. Writes ``results.json`` (per video, per
dataset and overall) and ``results.md`` (the tables) into ``--out``. Nothing is downloaded.

PLC/FLC compare the generated landmarks with the driving video's when ``--driving`` is given, else with the ground
truth's, with DWPose (the paper's estimator) when ``yolox_l.onnx`` and ``dw-ll_ucoco_384.onnx`` are found, else
MediaPipe (``--landmarks`` chooses); every PLC/FLC number says which estimator produced it. FIS needs
``--references`` (the reference image of each video); moving L1 too.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from .errors import InputError, run_cli
from .files import atomic_write_json, atomic_write_text
from .metrics.folders import pair_folders
from .metrics.registry import METRICS, NOT_AVAILABLE
from .metrics.suite import Evaluator, check_weights
from .metrics.tables import markdown_tables, summarize
from .video import read_image, read_video

__all__ = ["build_parser", "main", "run_evaluation"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m directanimator.evaluate",
        description="Score generated videos against their ground truth with the paper's metrics, per dataset "
        "(subfolder) and overall; write results.json and results.md. Nothing is downloaded.")
    p.add_argument("--generated", help="folder of generated videos (subfolders: one dataset each)")
    p.add_argument("--ground-truth", help="folder of ground-truth videos, named as the generated ones")
    p.add_argument("--driving", help="folder of driving videos for PLC/FLC (default: compare with the ground truth)")
    p.add_argument("--references", help="folder of reference images, named as the videos (FIS, moving L1)")
    p.add_argument("--out", help="folder to write results.json and results.md into (created)")
    p.add_argument("--weights-dir", action="append", default=[],
                   help="folder holding weight files (may be repeated; also $DIRECTANIMATOR_WEIGHTS)")
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated subset of {','.join(m.key for m in METRICS)} (default: all)")
    p.add_argument("--trim", action="store_true",
                   help="pairs with different frame counts: use the first frames of each (default: an error)")
    p.add_argument("--name", default=None, help="the model's name in the tables (default: the generated folder's)")
    p.add_argument("--device", default=None, help="torch device for LPIPS (default: cuda when available)")
    p.add_argument("--landmarks", default="auto", choices=("auto", "dwpose", "mediapipe"),
                   help="PLC/FLC's estimator: DWPose (the paper's; needs yolox_l.onnx and dw-ll_ucoco_384.onnx) or "
                   "MediaPipe (in its wheel); auto: DWPose when its files are present (default)")
    p.add_argument("--check", action="store_true", help="print which metrics are ready to run and exit")
    return p


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (2 for bad input). ``protocol ...`` runs the paper's cross-ID protocol
    (``directanimator.protocol``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["protocol"]:
        from .protocol import build_protocol_parser, run_protocol

        args = build_protocol_parser().parse_args(argv[1:])
        return run_cli(lambda: _print_summary(run_protocol(args), Path(args.out) / "results"), done=None)
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(lambda: _run(args), done=None)


def _run(args) -> int:
    if args.check:
        return _print_check(args.weights_dir, args.landmarks)
    if not args.generated or not args.out:
        raise InputError("give --generated DIR and --out DIR (and --ground-truth DIR), or --check")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    result = run_evaluation(args.generated, args.out, ground_truth=args.ground_truth, driving=args.driving,
                            references=args.references, weights_dirs=args.weights_dir, metrics=metrics,
                            trim=args.trim, name=args.name, device=args.device, landmarks=args.landmarks,
                            show_progress=True)
    return _print_summary(result, Path(args.out))


def _print_summary(result: dict, out: Path) -> int:
    overall = result["overall"]
    print(f"wrote {out / 'results.json'} and results.md ({overall['videos']} videos)")
    for key, entry in overall["metrics"].items():
        print(f"  {key:<10} {entry['mean']:.4f}" + (f"  ({entry['videos']} videos)" if entry["videos"] < overall["videos"] else ""))
    for key, reason in overall["absent"].items():
        print(f"  {key:<10} absent: {reason}")
    return 0


def _print_check(weights_dirs, landmarks: str = "auto") -> int:
    rows = check_weights(weights_dirs, landmarks)
    for key, row in rows.items():
        print(f"{row['state']:<8} {key:<10} {row['detail']}")
    ready = sum(r["state"] == "ready" for r in rows.values())
    print(f"{ready} of {len(rows)} metrics ready")
    return 0


def _json_safe(value):
    """inf (PSNR of identical videos) as the string "inf": JSON has no infinity."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _trimmed(pair, gen: np.ndarray, others: dict, trim: bool):
    n = min([len(gen)] + [len(v) for v in others.values() if v is not None])
    for label, video in others.items():
        if video is not None and len(video) != len(gen) and not trim:
            raise InputError(f"{pair.name}: generated has {len(gen)} frames, {label} {len(video)}; trim them to the "
                             "same frames or pass --trim")
    return gen[:n], {k: (None if v is None else v[:n]) for k, v in others.items()}


def run_evaluation(generated, out, ground_truth=None, driving=None, references=None, weights_dirs=(), metrics=None,
                   trim: bool = False, name: str | None = None, device: str | None = None,
                   landmarks: str = "auto", show_progress: bool = False) -> dict:
    """Evaluate a folder of generated videos and write ``results.json`` and ``results.md`` into ``out``.

    Args: as the CLI's flags (``metrics``: a list of metric keys or None for all). Returns what ``results.json``
    holds (before infinities become strings).
    """
    from tqdm import tqdm

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    pairs = pair_folders(generated, ground_truth, driving, references, trim=trim)
    if any(p.dataset == "overall" for p in pairs):
        raise InputError("a dataset subfolder is called 'overall', the name of the all-datasets row; rename it")
    evaluator = Evaluator(weights_dirs, device=device, metrics=metrics, landmarks=landmarks)
    missing = evaluator.missing_weights()
    for how in dict.fromkeys(missing.values()):  # FIS and FTS need the same files: said once
        keys = "/".join(k for k, v in missing.items() if v == how)
        print(f"warning: {keys} skipped, weights missing: {how}", file=sys.stderr)
    videos: dict[str, dict] = {}
    bar = tqdm(pairs, desc="evaluate", unit="video", file=sys.stderr, disable=not show_progress, delay=0.5)
    start = time.perf_counter()
    try:
        for pair in bar:
            bar.set_postfix_str(pair.name, refresh=False)
            gen = read_video(str(pair.generated), max_side=None).frames
            others = {"ground truth": None if pair.ground_truth is None else read_video(str(pair.ground_truth), max_side=None).frames,
                      "driving": None if pair.driving is None else read_video(str(pair.driving), max_side=None).frames}
            gen, others = _trimmed(pair, gen, others, trim)
            ref = None if pair.reference is None else read_image(str(pair.reference), max_side=None)
            res = evaluator.evaluate_video(gen, others["ground truth"], others["driving"], ref)
            res["dataset"] = pair.dataset
            res["frames"] = len(gen)
            videos[pair.name] = res
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    keys = [k for k in [m.key for m in METRICS] + list(NOT_AVAILABLE)
            if k in evaluator.wanted or k in evaluator.unavailable]
    datasets = sorted({v["dataset"] for v in videos.values()})
    groups = {d: {n: v for n, v in videos.items() if v["dataset"] == d} for d in datasets}
    groups["overall"] = videos
    summaries = {d: summarize(group, keys, {m.key: evaluator.per_set_of(list(group.values()), m.key)
                                            for m in METRICS if m.per_set and m.key in keys})
                 for d, group in groups.items()}
    for v in videos.values():
        v.pop("features", None)  # FID's per-frame and FVD's per-clip features are not part of results.json
    stages = sorted({s for v in videos.values() for s in v["seconds"]})
    result = {
        "method": name or Path(generated).resolve().name,
        "inputs": {"generated": str(generated), "ground_truth": ground_truth, "driving": driving,
                   "references": references, "trim": trim},
        "landmarks": {"estimator": evaluator.landmarks, "against": "driving" if driving else "ground_truth"},
        "lpips_backbone": "alex (v0.1)",
        "missing_weights": evaluator.missing_weights(),
        "datasets": {d: summaries[d] for d in datasets},
        "overall": summaries["overall"],
        "seconds": {"total": elapsed, "per_video": elapsed / len(videos),
                    "per_video_by_stage": {s: float(np.mean([v["seconds"].get(s, 0.0) for v in videos.values()]))
                                           for s in stages}},
        "videos": videos,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", _json_safe(result))
    atomic_write_text(out / "results.md", markdown_tables(summaries, result["method"]))
    return result


if __name__ == "__main__":
    sys.exit(main())
