"""A prepare run split across processes: each process takes every k-th source file (``--workers N`` starts N
processes here; under ``accelerate launch`` or ``torchrun`` each launched process takes its share from ``RANK`` /
``WORLD_SIZE``; ``--process-index/--num-processes`` say it by hand, e.g. one job per machine), skips the sources
that already have a report, and the process that finds every source finished writes the merged dataset.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from directanimator.errors import InputError
from trainers.prepare.clips import Backends, ClipSettings, prepare_source
from trainers.prepare.folder import merge_reports, open_output, read_report
from trainers.prepare.hub import check_repo_id, push_dataset
from trainers.prepare.main_person import PersonLimits
from trainers.prepare.quality import QualityLimits
from trainers.prepare.sources import find_sources, identities_from_csv

__all__ = ["settings_from_args", "process_share", "prepare_dataset"]


def settings_from_args(args: argparse.Namespace) -> ClipSettings:
    """The :class:`ClipSettings` of the parsed command line."""
    return ClipSettings(
        min_seconds=args.min_seconds, max_seconds=args.max_seconds, fps=args.fps, long_side=args.long_side,
        crf=args.crf, caption=args.caption, caption_model=args.caption_model or "",
        caption_prompt=args.caption_prompt,
        quality=QualityLimits(min_seconds=args.min_seconds, min_brightness=args.min_brightness,
                              min_sharpness=args.min_sharpness, min_motion=args.min_motion),
        people=PersonLimits(samples=args.person_samples))


def _plan(args):
    raw = Path(args.raw_dir).expanduser()
    if not raw.is_dir():
        raise InputError(f"RAW_DIR {args.raw_dir} is {'a file' if raw.exists() else 'missing'}; give the folder of "
                         "raw videos (RAW_DIR/<identity>/*.mp4)")
    if args.min_seconds > args.max_seconds:
        raise InputError(f"--min-seconds {args.min_seconds:g} is more than --max-seconds {args.max_seconds:g}; "
                         "give a range that holds a clip")
    identities = identities_from_csv(args.identities) if args.identities else None
    sources, skipped = find_sources(raw.resolve(), identities)
    settings = settings_from_args(args)
    # the backends change what is kept: they are settings of the dataset too
    recorded = {**settings.to_dict(), "segmenter": args.segmenter, "face_detector": args.face_detector,
                "identity_from": "csv" if args.identities else args.identity_from}
    if args.identity_from == "cluster":
        recorded.update(arcface=str(Path(args.arcface).expanduser().resolve()), cluster_threshold=args.cluster_threshold)
    out = open_output(Path(args.out), raw, recorded)
    return out, sources, skipped, settings, recorded


def _share() -> tuple[int, int]:
    """(process index, process count) from the launcher's environment (accelerate launch, torchrun), else (0, 1)."""
    try:
        return int(os.environ.get("RANK", 0)), max(1, int(os.environ.get("WORLD_SIZE", 1)))
    except ValueError:
        return 0, 1


def process_share(args: argparse.Namespace, index: int, count: int) -> int:
    """Prepare this process's share of the sources (every ``count``-th from ``index``); return how many sources
    it finished in this run (``--limit-sources`` stops it early)."""
    out, sources, _, settings, _ = _plan(args)
    mine = [s for s in sources[index::count] if read_report(out, s) is None]
    backends = Backends(args.segmenter, args.face_detector, settings.caption_model, settings.caption_prompt,
                        args.caption_batch, args.arcface if args.identity_from == "cluster" else "")
    if settings.caption_model and mine:
        backends.captioner  # noqa: B018  (loaded before any work: a bad model is one error, not one per source)
    done, kept = 0, 0
    desc = f"prepare {index + 1}/{count}" if count > 1 else "prepare"
    with tqdm(total=len(mine), desc=desc, unit="video", position=index, disable=args.quiet) as bar:
        for source in mine:
            if args.limit_sources is not None and done >= args.limit_sources:
                break
            bar.set_postfix_str(source.rel[-40:])
            report = prepare_source(source, out, settings, backends)
            kept += len(report.get("rows", []))
            done += 1
            bar.update(1)
            bar.set_postfix(clips=kept)
    return done


def _worker(argv: list[str], index: int, count: int) -> None:
    from trainers.prepare.__main__ import parse_args
    from directanimator.errors import run_cli

    def work():
        process_share(parse_args(argv), index, count)  # (its count is not an exit status)

    sys.exit(run_cli(work, done=None))


def prepare_dataset(args: argparse.Namespace, argv: list[str]) -> str:
    """The whole command: check, prepare this process's share (or start ``--workers`` processes for all of it),
    then merge when every source is finished. Returns the line to print."""
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)  # before any work
    if args.caption_model:
        from trainers.prepare.captions import check_caption_model

        check_caption_model(args.caption_model)
    if args.identity_from == "cluster":
        if args.identities:
            raise InputError("--identities CSV and --identity-from cluster both say who is who; choose one")
        if not args.arcface:
            raise InputError("--identity-from cluster needs --arcface ONNX (InsightFace's w600k_r50.onnx from the "
                             "buffalo_l pack) to compare faces")
        from trainers.prepare.identities import FaceEmbedder

        FaceEmbedder(args.arcface)  # a missing or broken model is refused before anything is written
    out, sources, skipped, _, recorded = _plan(args)
    if args.workers > 1:
        ctx = multiprocessing.get_context("spawn")  # forking after mediapipe/torch started threads is unsafe
        procs = [ctx.Process(target=_worker, args=(argv, i, args.workers)) for i in range(args.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
        if failed:
            raise InputError(f"worker(s) {', '.join(map(str, failed))} stopped (see the error above); the finished "
                             f"sources are kept in {out}: rerun the same command to continue")
    else:
        if args.process_index and not args.num_processes:
            raise InputError("--process-index needs --num-processes (how many processes share the sources)")
        index, count = (args.process_index, args.num_processes) if args.num_processes else _share()
        if not 0 <= index < count:
            raise InputError(f"--process-index {index} must be in 0..{count - 1} (--num-processes {count})")
        process_share(args, index, count)
    summary = merge_reports(out, sources, skipped, recorded)
    if summary is None:
        left = sum(read_report(out, s) is None for s in sources)
        return (f"{len(sources) - left} of {len(sources)} source videos prepared in {out}; it stays marked "
                "unfinished: rerun the same command (or wait for the other processes) to finish it")
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    dropped = ", ".join(f"{n} {r}" for r, n in summary["dropped"].items()) or "none"
    line = (f"{summary['clips']} clips of {summary['identities']} identities from {summary['sources']} source "
            f"videos in {out} (shots dropped: {dropped}; unreadable sources: {len(summary['unreadable'])}, other "
            f"files skipped: {len(summary['skipped_files'])})")
    if args.push_to_hub:
        line += "\n" + push_dataset(out, args.push_to_hub, dry_run=args.hub_dry_run, private=args.hub_private)
    return line
