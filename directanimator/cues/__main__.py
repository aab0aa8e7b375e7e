"""Extract the driving cues of a clip: ``python -m directanimator.cues REFERENCE DRIVING --out DIR``.

Writes the cue folder (``frames/`` + ``cues.safetensors`` + ``cues.json``, loadable with ``DrivingCues.load``) and
``preview.mp4`` (driving | pose cue | face cue | location over the reference) into DIR, all at once at the end.
Clips longer than ``STREAM_FROM`` frames (or any with ``--stream``) go through the streaming extraction
(``stream.py``: bounded memory), resampled by ``--fps`` / ``--frames`` as they are decoded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import InputError, run_cli
from ..files import atomic_folder
from ..quiet import set_verbose
from ..shots import add_shot_argument, shot_summary
from ..video import probe_video
from .driving_cues import is_cue_folder
from .extract import extract_cues
from .people import parse_person_spec, people_summary
from .preview import render_preview
from .segment import get_segmenter
from .settings import add_cue_arguments, cue_settings_from_args
from .stream import STREAM_FROM, SeveralPeople, extract_cues_to_folder


STAGES = ("read", "shots", "load_models", "segment_reference", "segment", "faces", "pose", "face", "location",
          "store", "preview")  # "store": the streaming extraction's writing and reading of the folder's streams


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m directanimator.cues",
        description="Extract the driving cue triplet (pose, face, location) of a driving video for a reference "
        "image, and write the cue folder plus a preview video.",
    )
    parser.add_argument("reference", help="reference image (PNG/JPEG/WebP) of the person to animate")
    parser.add_argument("driving", help="driving video (mp4/mov/webm/avi/gif) of someone moving")
    parser.add_argument("--out", required=True, help="output folder (created; an earlier cue folder is replaced)")
    parser.add_argument("--backend", default="mediapipe", choices=["mediapipe", "grounded-sam"],
                        help="person segmentation: mediapipe (offline, default) or grounded-sam (downloaded weights)")
    parser.add_argument("--face-backend", default="mediapipe", choices=["mediapipe", "insightface"],
                        help="face detection: mediapipe (offline, default) or insightface (downloaded models)")
    add_cue_arguments(parser)
    parser.add_argument("--person", default="largest", metavar="largest|central|N",
                        help="who drives when the driving video shows several people (found in its first frame, "
                        "numbered largest first): largest (default), central, or person number N")
    parser.add_argument("--reference-person", default="largest", metavar="largest|central|N",
                        help="who is animated when the reference image shows several people (as --person)")
    parser.add_argument("--size", type=int, default=512, help="working long side in pixels (default 512)")
    parser.add_argument("--fps", type=float, default=None, help="resample the driving clip to this frame rate")
    parser.add_argument("--frames", type=int, default=None, help="resample the driving clip to this many frames")
    add_shot_argument(parser)
    parser.add_argument("--stream", action="store_true",
                        help=f"extract chunk by chunk in bounded memory (the default for clips over {STREAM_FROM} "
                        "frames; not with --fps / --frames)")
    parser.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); the pose low-pass always runs on 1 thread, "
                        "the fastest on a CPU that other busy processes share")
    parser.add_argument("--workers", type=int, default=1,
                        help="mediapipe backend: processes the clip's segmentation is split over (default 1; 2 is "
                        "faster only when 2 cores are idle)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show MediaPipe's native log lines (hidden by default; or DIRECTANIMATOR_VERBOSE=1)")
    return parser


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        set_verbose()
    return run_cli(lambda: _run(args), done=None)


def _run(args) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    person = parse_person_spec(args.person, "--person")
    reference_person = parse_person_spec(args.reference_person, "--reference-person")
    segmenter = args.backend
    if args.backend == "mediapipe" and args.workers > 1:
        segmenter = get_segmenter("mediapipe", workers=args.workers)
    out = Path(args.out)
    if not is_cue_folder(out, empty_ok=True):
        raise InputError(f"{out} exists and is not a cue folder; choose another --out folder or remove it")
    # delay: a run that fails on its inputs (missing or corrupt file) ends before any bar is drawn, so the
    # error is the only line printed.
    bar = tqdm(total=1000, desc="cues", unit="", bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
               file=sys.stderr, delay=1.0)
    extract_share = 1.0 if args.no_preview else 0.9  # the preview takes the last tenth of the bar

    def advance(fraction, desc=""):
        if desc and desc != bar.desc:
            bar.set_description_str(desc, refresh=False)
        bar.update(max(0, int(round(fraction * bar.total)) - bar.n))

    def progress(fraction, desc=""):
        advance(fraction * extract_share, desc)

    stream = args.stream or probe_video(args.driving).num_frames > STREAM_FROM

    def preview(cues, folder):
        if not args.no_preview:
            start = time.perf_counter()
            render_preview(cues, Path(folder) / "preview.mp4", progress=lambda f, d="": advance(0.9 + 0.1 * f, d))
            cues.settings["timings_ms"]["preview"] = round((time.perf_counter() - start) * 1000.0, 2)

    try:
        if stream:
            try:
                cues = extract_cues_to_folder(
                    args.reference, args.driving, out, cue_settings_from_args(args), segmenter=segmenter,
                    face_detector=args.face_backend, size=args.size, fps=args.fps, num_frames=args.frames,
                    shot=args.shot, person=person,
                    reference_person=reference_person, progress=progress, before_close=preview)
            except SeveralPeople as e:
                if args.stream:
                    raise
                tqdm.write(f"note: {e.args[0].split(';')[0]}: following one of them is not streamed yet, so the "
                           "clip is extracted in memory (about 8.6 MB a frame at 512 px)", file=sys.stderr)
                stream = False
        if not stream:
            cues = extract_cues(
                args.reference, args.driving, cue_settings_from_args(args), segmenter=segmenter,
                face_detector=args.face_backend, size=args.size, fps=args.fps,
                num_frames=args.frames, shot=args.shot, person=person, reference_person=reference_person,
                progress=progress,
            )
            with atomic_folder(out, replaceable=lambda p: is_cue_folder(p, empty_ok=True)) as tmp:
                preview(cues, tmp)
                cues.write_into(tmp)  # after the preview, so that cues.json records its time too
        advance(1.0, "done")
    except BaseException:
        bar.leave = False  # erase the bar so that the error line stands alone
        raise
    finally:
        bar.close()

    num = cues.num_frames
    timings = cues.settings.get("timings_ms", {})
    print(f"wrote {out} ({num} frames, {cues.height}x{cues.width}, {cues.fps:g} fps)")
    for line in shot_summary(cues.settings.get("shots", {})):
        print(line)
    print("stage timings (ms total, ms/frame):")
    for stage in STAGES:
        if stage in timings:
            print(f"  {stage:<17} {timings[stage]:9.1f} {timings[stage] / max(num, 1):8.2f}")
    triplet = sum(timings.get(s, 0.0) for s in ("segment", "faces", "pose", "face", "location"))
    print(f"  {'triplet':<17} {triplet:9.1f} {triplet / max(num, 1):8.2f}   (segment + faces + pose + face + location)")
    print(f"dropped frames: {int(cues.dropped.sum())}/{num}; frames without a face: {int(cues.no_face.sum())}/{num}")
    t = cues.transform
    print(f"alignment: scale {t.scale:.3f}, offset ({t.tx:.1f}, {t.ty:.1f}) px")
    if cues.settings.get("alignment_used"):
        print(f"alignment used: {cues.settings['alignment_used']} ({cues.settings.get('alignment_reason', '')})")
    for line in people_summary(cues.settings):
        print(line)
    for warning in cues.settings.get("warnings", []):
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
