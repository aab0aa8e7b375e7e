"""Benchmark of ``python -m trainers.prepare`` (not a test): source minutes prepared per wall-clock minute, and
where the time goes.

    python bench/bench_prepare.py [RAW_DIR] [--workers 1] [--keep OUT]

Without ``RAW_DIR`` it prepares the real footage shipped here: OpenCV's ``vtest.avi`` (80 s street, 768x576,
several people), ``Megamind.avi`` (11 s, 720x528, animated, several shots) and ``tree.avi`` from opencv-doc,
and the walk example (one person), each in a folder of its own, with the default settings but
``--min-seconds 2`` (the walk is 4.9 s long, Megamind's shots 2-5 s). It prints the wall
time, the source minutes per wall minute, and the split summed over the sources from their reports: decode (both
streamed passes), shot detection, frame statistics, person checks (segmenter and face detector) and writing,
with the shots/decode ratio (target: under 15%). Process start-up and model loading are in the wall time only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainers.prepare.__main__ import main as prepare_main  # noqa: E402

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
FOOTAGE = {"street": DATA / "vtest.avi", "megamind": DATA / "Megamind.avi", "tree": DATA / "tree.avi",
           "walker": ROOT / "examples" / "driving_walk.mp4"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", nargs="?", help="a raw footage folder (default: the shipped real footage)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--keep", default=None, help="write the dataset here and keep it (default: a temp folder)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more trainers.prepare options after --")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        raw = Path(args.raw_dir) if args.raw_dir else work / "raw"
        if not args.raw_dir:
            for identity, path in FOOTAGE.items():
                if path.is_file():
                    (raw / identity).mkdir(parents=True)
                    os.symlink(path, raw / identity / path.name)
        out = Path(args.keep) if args.keep else work / "out"
        extra = [a for a in args.extra if a != "--"] or (["--min-seconds", "2"] if not args.raw_dir else [])
        start = time.perf_counter()
        status = prepare_main([str(raw), "--out", str(out), "--workers", str(args.workers), "--quiet", *extra])
        wall = time.perf_counter() - start
        summary_path = out / "prepare_report.json"
        if not summary_path.is_file():
            print(f"no summary (exit status {status})")
            return 1
        summary = json.loads(summary_path.read_text())
        t = summary["timing"]
        minutes = summary["source_seconds"] / 60
        print(f"{summary['sources']} sources, {minutes:.2f} source min, {summary['shots']} shots, "
              f"{summary['clips']} clips kept, dropped {summary['dropped']}")
        print(f"wall {wall:.1f} s with {args.workers} worker(s): {minutes / (wall / 60):.2f} source min per wall min")
        total = sum(t.values())
        for key in ("decode", "shots", "quality", "people", "writing"):
            print(f"  {key:8s} {t.get(key, 0):7.2f} s  {100 * t.get(key, 0) / max(total, 1e-9):5.1f}%")
        print(f"  shots / decode = {100 * t['shots'] / max(t['decode'], 1e-9):.1f}% (target < 15%)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
