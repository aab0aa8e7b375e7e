"""Seconds per 49-frame 512² video for the evaluator's metrics, through the real CLI code path.

    python bench/bench_evaluate.py [--weights-dir DIR] [--videos N]

Ground truth: ``examples/driving_walk.mp4`` (49 frames, 512², a walking person); generated: the same plus noise;
reference: its first frame. With no ``--weights-dir`` LPIPS, FID and FVD run with full-size AlexNet / Inception-v3 /
I3D weights at random init (the same compute as the published ones) and FIS/FTS with tiny stand-in ONNX models (NOT the cost of the real
w600k_r50 / det_10g: give the real buffalo_l folder through --weights-dir to measure those).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from directanimator.evaluate import run_evaluation  # noqa: E402
from directanimator.video import read_video, write_video  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--weights-dir", default=None)
parser.add_argument("--videos", type=int, default=2)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(args.threads)

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    truth = read_video(str(ROOT / "examples" / "driving_walk.mp4"), max_side=None).frames
    rng = np.random.default_rng(0)
    for i in range(args.videos):
        noisy = np.clip(truth.astype(int) + rng.integers(-12, 13, truth.shape), 0, 255).astype(np.uint8)
        write_video(tmp / "gen" / f"v{i}.mp4", noisy, fps=10)
        write_video(tmp / "gt" / f"v{i}.mp4", truth, fps=10)
        (tmp / "ref").mkdir(exist_ok=True)
        from PIL import Image

        Image.fromarray(truth[0]).save(tmp / "ref" / f"v{i}.png")
    wdir = args.weights_dir
    if wdir is None:
        from eval_weights import (write_arcface_onnx, write_i3d_weights, write_inception_weights, write_lpips_weights,
                                  write_scrfd_onnx)

        wdir = tmp / "weights"
        write_lpips_weights(wdir)  # full-size AlexNet features, random
        write_inception_weights(wdir / "pt_inception-2015-12-05-6726825d.pth")  # full-size Inception-v3, random
        write_i3d_weights(wdir / "i3d_pretrained_400.pt")  # full-size I3D, random
        (wdir / "buffalo_l").mkdir()
        write_arcface_onnx(wdir / "buffalo_l" / "w600k_r50.onnx")
        write_scrfd_onnx(wdir / "buffalo_l" / "det_10g.onnx", 640, np.array(
            [[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]]) * 2 + 150)
    start = time.perf_counter()
    res = run_evaluation(tmp / "gen", tmp / "res", ground_truth=str(tmp / "gt"), references=str(tmp / "ref"),
                         weights_dirs=[str(wdir)])
    total = time.perf_counter() - start
    print(json.dumps({"videos": args.videos, "frames": int(len(truth)), "size": list(truth.shape[1:3]),
                      "seconds_per_video_total": round(total / args.videos, 2),
                      "seconds_per_video_by_stage": {k: round(v, 2) for k, v in
                                                     res["seconds"]["per_video_by_stage"].items()},
                      "metrics": {k: round(v["mean"], 4) for k, v in res["overall"]["metrics"].items()},
                      "absent": list(res["overall"]["absent"]),
                      "stand_in_weights": args.weights_dir is None}, indent=1))
