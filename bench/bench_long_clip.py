"""A minutes-long driving video through cues and windowed generation (not a test): peak RSS and time per frame.

    python bench/bench_long_clip.py [--seconds 180] [--fps 25] [--steps 4] [--out runs/long_clip]

1. makes the driving clip: the walk example (``examples/driving_walk.mp4``, 512 px) played back and forth for
   ``--seconds`` at ``--fps`` (H.264);
2. ``python -m directanimator.cues`` on it at 512 px (a clip this long streams: ``directanimator/cues/stream.py``),
   no preview;
3. ``python -m directanimator.animate`` with the demo model (``models/demo``, 64 px, windows of 17 frames) on the
   cue folder, ``--steps`` denoising steps.

Each step runs in its own process under ``/usr/bin/time``; the script prints its wall time, ms per frame and peak
RSS, and the cue folder's size per frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clip(path: Path, seconds: float, fps: int) -> int:
    import av
    import numpy as np

    from directanimator.video import read_video

    loop = read_video(ROOT / "examples" / "driving_walk.mp4", max_side=512).frames
    order = np.concatenate([np.arange(len(loop)), np.arange(len(loop))[::-1]])
    frames = int(round(seconds * fps))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = loop.shape[2], loop.shape[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for t in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(loop[order[t % len(order)]], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def timed(args: list[str]) -> tuple[float, float]:
    """Run ``args`` under /usr/bin/time; returns (wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    tail = [line for line in run.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    if run.returncode != 0 or not tail:
        sys.exit(f"failed: {' '.join(args)}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    print(run.stdout.strip()[-1500:], flush=True)
    return wall, int(tail[-1].split()[1]) / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default="runs/long_clip")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip, cues, video = out / "driving.mp4", out / "cues", out / "animated.mp4"
    start = time.perf_counter()
    frames = make_clip(clip, args.seconds, args.fps)
    print(f"clip: {frames} frames at {args.fps} fps, 512x512 ({time.perf_counter() - start:.0f} s)", flush=True)
    py = sys.executable
    wall, rss = timed([py, "-m", "directanimator.cues", "examples/reference_astronaut.jpg", str(clip), "--out",
                       str(cues), "--no-preview"])
    meta = json.loads((cues / "cues.json").read_text())
    size = sum(f.stat().st_size for f in cues.rglob("*") if f.is_file())
    print(f"cues: {wall:.0f} s, {1000 * wall / frames:.1f} ms/frame, peak RSS {rss:.0f} MB; folder "
          f"{size / 1e6:.0f} MB, {size / frames / 1e6:.3f} MB/frame "
          f"(streamed: {bool(meta['settings'].get('streamed'))})", flush=True)
    wall, rss = timed([py, "-m", "directanimator.animate", "--driving", str(cues), "--out", str(video),
                       "--steps", str(args.steps), "--height", "64", "--width", "64", "--device", "cpu"])
    print(f"generation (demo model, 64 px, {args.steps} steps): {wall:.0f} s, {1000 * wall / frames:.1f} ms/frame, "
          f"peak RSS {rss:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
