"""Benchmark of the cue folder storage (not a test): size per frame and loss of each per-frame array.

    python bench/bench_storage.py CUE_FOLDER [--alternatives]

Loads ``CUE_FOLDER`` (any format version), saves it in the current format to a temporary folder, loads that back
and prints, for each per-frame array, kB/frame, max and mean abs error against the arrays it started from, and the
save / full-decode time per frame. ``--alternatives`` also encodes the first chunk with the codecs that were
considered (PNG, zlib, H.264 at other settings, FFV1 RGB) for comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from directanimator.cues import DrivingCues  # noqa: E402
from directanimator.cues.storage import CHUNK  # noqa: E402

PER_FRAME = ("driving", "driving_masks", "pose_cue", "face_cue", "body_location", "face_location")

ALTERNATIVES = {  # RGB arrays: (codec, pixel format, options)
    "x264 4:4:4 crf 12": ("libx264", "yuv444p", {"crf": "12", "preset": "veryfast"}),
    "x264 4:2:0 crf 12": ("libx264", "yuv420p", {"crf": "12", "preset": "veryfast"}),
    "x264rgb crf 12": ("libx264rgb", "rgb24", {"crf": "12", "preset": "veryfast"}),
    "x264rgb qp 0 (lossless)": ("libx264rgb", "rgb24", {"qp": "0", "preset": "ultrafast"}),
    "ffv1 rgb (lossless)": ("ffv1", "bgr0", {}),
}


def _video_size(frames: np.ndarray, codec: str, pix_fmt: str, options: dict) -> tuple[int, np.ndarray]:
    buffer = io.BytesIO()
    gray = frames.ndim == 3
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="gray" if gray else "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = buffer.getvalue()
    with av.open(io.BytesIO(data)) as container:
        back = np.stack([f.to_ndarray(format="gray" if gray else "rgb24") for f in container.decode(video=0)])
    return len(data), back


def _alternatives(cues) -> None:
    print(f"\nalternatives on the first {CHUNK} frames (kB/frame, max / mean abs error):")
    for name in PER_FRAME:
        x = np.asarray(getattr(cues, name)[:CHUNK])
        x = np.round(x * 255).astype(np.uint8) if x.dtype != np.uint8 else x
        gray = x.ndim == 3
        rows = [("zlib 6 (lossless)", len(zlib.compress(x.tobytes(), 6)), x),
                ("png (lossless)", sum(len(cv2.imencode(".png", f if gray else f[..., ::-1])[1]) for f in x), x)]
        for label, (codec, pix_fmt, options) in ({} if gray else ALTERNATIVES).items():
            size, back = _video_size(x, codec, pix_fmt, options)
            rows.append((label, size, back))
        for label, size, back in rows:
            err = np.abs(back.astype(np.int16) - x.astype(np.int16))
            print(f"  {name:14s} {label:26s} {size / len(x) / 1e3:8.1f}  {int(err.max()):3d} / {err.mean():.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a cue folder")
    parser.add_argument("--alternatives", action="store_true", help="also measure the codecs not chosen")
    args = parser.parse_args(argv)
    cues = DrivingCues.load(args.folder)
    num = cues.num_frames
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cues.save(Path(tmp) / "c")
        save_ms = (time.perf_counter() - start) * 1000 / num
        meta = json.loads((Path(tmp) / "c" / "cues.json").read_text())
        loaded = DrivingCues.load(Path(tmp) / "c")
        print(f"{num} frames at {cues.height}x{cues.width}; save {save_ms:.1f} ms/frame")
        print(f"{'array':14s} {'kB/frame':>9s} {'max err':>8s} {'mean err':>9s} {'decode ms/frame':>16s}  codec")
        for name in PER_FRAME:
            start = time.perf_counter()
            back = np.asarray(getattr(loaded, name), np.float64)
            decode_ms = (time.perf_counter() - start) * 1000 / num
            scale = 255.0 if np.asarray(getattr(cues, name)[:1]).dtype == np.float32 else 1.0
            err = np.abs(back - np.asarray(getattr(cues, name), np.float64)) * scale
            record = meta["storage"]["arrays"][name]
            print(f"{name:14s} {record['bytes'] / num / 1e3:9.1f} {err.max():8.2f} {err.mean():9.4f} "
                  f"{decode_ms:16.2f}  {record['codec']}")
        print(f"total {meta['storage']['bytes_per_frame'] / 1e3:.1f} kB/frame")
    if args.alternatives:
        _alternatives(cues)
    return 0


if __name__ == "__main__":
    sys.exit(main())
