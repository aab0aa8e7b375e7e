"""Quality cost of the step caches (directanimator.caching) with the embedded demo model on a CPU (not a test).

    python bench/bench_cache.py                  # 50 steps, 3 held-out reference/driving pairs, 17 frames at 64 px
    python bench/bench_cache.py --steps 20 --pairs 1 --frames 9     # quicker

Every cache setting is run with the same seed as the uncached call and compared with *its* output (not with the
ground truth: the question is what the cache changes): PSNR and SSIM (directanimator.metrics), moving L1 (mean
absolute error on the pixels where the uncached video differs from the reference held still,
trainers.experiments.reproduce_eval.moving_l1), the share of block computations skipped (self-attentions for pab,
counted by directanimator.caching.count_computations) and the wall time of the call. The demo model is tiny (6
blocks, 128 wide): the skipped share carries over to the real size, the time saved does not (here the VAE, text
encoder and Python overhead are a large part of a call). The machine load is printed beside the times: on a shared
machine they are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from directanimator.caching import count_computations  # noqa: E402
from directanimator.metrics import psnr, ssim  # noqa: E402

DEMO = ROOT / "models" / "demo"
SIZE = 64
# held-out identities and motions of the synthetic world (as tests/test_demo_model.py uses them)
PAIRS = [(41, 42, 80), (42, 43, 81), (43, 41, 82)]
SETTINGS = [("first-block", 0.05), ("first-block", 0.1), ("first-block", 0.2), ("first-block", 0.3),
            ("first-block", 0.4), ("taylorseer", 2), ("taylorseer", 3), ("taylorseer", 4), ("pab", 2), ("pab", 3)]


def demo_cues(ref_identity: int, drive_identity: int, motion: int, frames: int):
    """Cues of ``drive_identity`` dancing ``motion`` for a reference of ``ref_identity`` from the synthetic world's
    ground truth (no segmentation backend runs)."""
    from directanimator.cues import DrivingCues, SimilarityTransform, rebuild_cues
    from trainers.synthetic import render_clip, render_reference

    image, ref_mask, _ = render_reference(ref_identity, motion, frames=frames, size=SIZE)
    driving, masks, boxes = render_clip(drive_identity, motion, frames=frames, size=SIZE)
    masks = masks.astype(np.float32)
    placeholder = DrivingCues(
        reference=image, reference_mask=ref_mask.astype(np.float32), driving=driving, driving_masks=masks,
        pose_cue=np.zeros(masks.shape, np.uint8), face_cue=np.zeros_like(driving), body_location=masks,
        face_location=masks, face_boxes=boxes.astype(np.float32), dropped=np.zeros(frames, bool),
        no_face=np.zeros(frames, bool), transform=SimilarityTransform(1.0, 0.0, 0.0), fps=8.0,
        settings={"size": SIZE},
    )
    return rebuild_cues(placeholder, transform="auto")


def generate(pipe, cues, steps: int, cache=None, setting=None):
    """One call, same seed every time: (uint8 frames, seconds, Computations)."""
    with count_computations(pipe.transformer) as counts:
        start = time.perf_counter()
        out = pipe(image=cues.reference, cues=cues, num_inference_steps=steps, guidance_scale=1.0,
                   generator=torch.Generator().manual_seed(0), output_type="np", cache=cache,
                   cache_threshold=setting)
        seconds = time.perf_counter() - start
    return (np.clip(out.frames[0], 0, 1) * 255).round().astype(np.uint8), seconds, counts


def run(steps: int, pairs: int, frames: int, settings=SETTINGS) -> list[dict]:
    """The table's rows: one per setting (the uncached row first), each averaged over ``pairs``."""
    from directanimator.pipeline import DirectAnimatorPipeline
    from trainers.experiments.reproduce_eval import moving_l1

    pipe = DirectAnimatorPipeline.from_pretrained(str(DEMO), use_safetensors=True, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    layers = len(pipe.transformer.transformer_blocks)
    per = {None: []}
    for ref, drive, motion in PAIRS[:pairs]:
        cues = demo_cues(ref, drive, motion, frames)
        generate(pipe, cues, 1)  # warm-up
        base, base_s, base_counts = generate(pipe, cues, steps)
        per[None].append(dict(psnr=float("inf"), ssim=1.0, moving_l1=0.0, skipped=0.0, seconds=base_s))
        for name, setting in settings:
            video, seconds, counts = generate(pipe, cues, steps, name, setting)
            done = counts.attention if name == "pab" else counts.blocks
            per.setdefault((name, setting), []).append(dict(
                psnr=float(psnr(video, base)), ssim=float(ssim(video, base)),
                moving_l1=moving_l1(video, base, cues.reference), skipped=1.0 - done / base_counts.calls,
                seconds=seconds))
        # the uncached call again, last: how much the time moves between two identical calls (machine noise)
        again, again_s, _ = generate(pipe, cues, steps)
        assert np.array_equal(again, base)  # caching left nothing behind
        per.setdefault(("off (again)", ""), []).append(dict(psnr=float("inf"), ssim=1.0, moving_l1=0.0, skipped=0.0,
                                                             seconds=again_s))
        assert base_counts.calls == steps * layers
    rows = []
    for key, values in per.items():
        mean = {k: statistics.fmean(v[k] for v in values) for k in values[0]}
        rows.append({"cache": "off" if key is None else key[0], "setting": "" if key is None else key[1], **mean})
    return rows[:1] + rows[-1:] + rows[1:-1]


def markdown(rows: list[dict], steps: int, pairs: int, frames: int) -> str:
    load = os.getloadavg()
    lines = [f"demo model, {steps} steps, {pairs} pair(s) x {frames} frames at {SIZE} px, CPU, torch "
             f"{torch.__version__}, {torch.get_num_threads()} thread(s), load average {load[0]:.2f} / {load[1]:.2f} "
             f"on {os.cpu_count()} cores", "",
             "| cache | setting | PSNR vs uncached (dB) ↑ | SSIM ↑ | moving L1 ↓ | skipped | time (s) | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    base = rows[0]["seconds"]
    for r in rows:
        p = "∞ (same)" if r["psnr"] == float("inf") else f"{r['psnr']:.1f}"
        what = "self-attentions" if r["cache"] == "pab" else "" if r["cache"].startswith("off") else "blocks"
        lines.append(f"| {r['cache']} | {r['setting']} | {p} | {r['ssim']:.4f} | {r['moving_l1']:.4f} | "
                     f"{100 * r['skipped']:.0f}% {what} | {r['seconds']:.2f} | "
                     f"{base / r['seconds']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    p.add_argument("--pairs", type=int, default=3, choices=range(1, len(PAIRS) + 1),
                   help="reference/driving pairs (default 3)")
    p.add_argument("--frames", type=int, default=17, help="frames, 1 + 4k (default 17, the demo model's)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    if args.steps < 2 or (args.frames - 1) % 4:
        p.error("--steps must be >= 2 and --frames 1 + 4k")
    torch.set_num_threads(args.threads)
    print(markdown(run(args.steps, args.pairs, args.frames), args.steps, args.pairs, args.frames))


if __name__ == "__main__":
    main()
