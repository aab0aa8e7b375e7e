"""Benchmark of the shot detection (not a test): ``detect_shots`` against decoding the same clip.

    python bench/bench_shots.py [--repeats 5] [--frames 200] [CLIP ...]

For each clip (default: ``examples/driving_walk.mp4`` and OpenCV's ``vtest.avi`` when installed) it times
``read_video`` (PyAV decode, frames to RGB uint8, as ``extract_cues`` reads them) and ``detect_shots`` on the
decoded frames, best and median of ``--repeats`` interleaved rounds, and prints ms/frame and the ratio
detect / decode. Target (issue 15): shot detection well under 15% of decode time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from directanimator.shots import DETECT_SIDE, detect_shots  # noqa: E402
from directanimator.video import read_video  # noqa: E402

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help="video files (default: the walk example and vtest.avi)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--frames", type=int, default=200, help="decode at most this many frames (default 200)")
    args = parser.parse_args(argv)
    clips = args.clips or [str(ROOT / "examples" / "driving_walk.mp4")] + ([str(VTEST)] if VTEST.is_file() else [])
    detect_shots(read_video(clips[0], max_frames=2).frames, 10.0)  # imports scenedetect once, outside the timing
    print(f"detector copies: long side {DETECT_SIDE} px")
    for clip in clips:
        decode, detect = [], []
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            video = read_video(clip, max_frames=args.frames)
            decode.append((time.perf_counter() - start) * 1000.0 / video.num_frames)
            start = time.perf_counter()
            shots = detect_shots(video.frames, video.fps)
            detect.append((time.perf_counter() - start) * 1000.0 / video.num_frames)
        ratio = [b / a for a, b in zip(decode, detect)]
        print(f"{Path(clip).name}: {video.num_frames} frames {video.width}x{video.height} @ {video.fps:g} fps, "
              f"{len(shots)} shot(s)")
        print(f"  decode       best {min(decode):6.2f}  median {statistics.median(decode):6.2f} ms/frame")
        print(f"  detect_shots best {min(detect):6.2f}  median {statistics.median(detect):6.2f} ms/frame")
        print(f"  ratio detect/decode: median {statistics.median(ratio):.3f} (min {min(ratio):.3f}, "
              f"max {max(ratio):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
