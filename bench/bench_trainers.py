"""Benchmark: Same2X step time vs same-ID step time, and the share of step time spent waiting for data.

Both stages run through the real CLIs (checkpoint writing left out: --stop-at-step ends each run one step early) (``trainers.same_id.main`` / ``trainers.same2x.main``) in one process, on the same model config and the same
precompute cache (entries written in the cache format with random content, so no cue extraction / VAE time is
counted: that is the point of the cache). Weights are random; speed does not depend on them.

    python bench/bench_trainers.py --preset cpu-mid          # CPU, about a minute
    python bench/bench_trainers.py --preset gpu-42l          # GPU: 42 blocks, D=10, 49 frames at 480x720

Targets (issue 4): Same2X / same-ID step time <= 1.25 (the teacher runs D blocks forward only, without backward);
data wait < 5% of the step time with the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = {
    # name: transformer overrides, frames, height, width, align depth
    "cpu-tiny": (dict(num_layers=6, num_attention_heads=2, attention_head_dim=16), 9, 32, 48, 2),
    "cpu-mid": (dict(num_layers=12, num_attention_heads=4, attention_head_dim=16, time_embed_dim=32, ofs_embed_dim=32,
                     sample_height=16, sample_width=24), 13, 64, 96, 3),
    # CogVideoX1.5's depth (42 blocks) and the paper's D=10, narrower blocks (1536 wide) so it fits any GPU quickly
    "gpu-42l": (dict(num_layers=42, num_attention_heads=24, attention_head_dim=64, time_embed_dim=512, ofs_embed_dim=512,
                     text_embed_dim=4096, max_text_seq_length=226, sample_height=60, sample_width=90,
                     cue_in_channels=16, in_channels=32, out_channels=16), 49, 480, 720, 10),
}


def _build(workdir: Path, preset: str, clips: int, layers=None, frames=None, size=None):
    import torch

    from directanimator.tiny import tiny_scheduler, tiny_text_encoder, tiny_tokenizer, tiny_transformer_config, tiny_vae
    from directanimator.modeling import CueFusionTransformer3DModel
    from trainers.dataset import write_metadata
    from trainers.components import load_components
    from trainers.precompute import Precomputer, PrecomputeSettings, _atomic_save
    from trainers.dataset import load_dataset

    overrides, p_frames, p_height, p_width, depth = PRESETS[preset]
    overrides = dict(overrides, **({"num_layers": layers} if layers else {}))
    depth = min(depth, overrides["num_layers"])
    frames = frames or p_frames
    height, width = size or (p_height, p_width)
    pipe = workdir / "pipe"
    cfg = tiny_transformer_config("1.5", **overrides)
    torch.manual_seed(0)
    CueFusionTransformer3DModel(**cfg).save_pretrained(pipe / "transformer", safe_serialization=True)
    tiny_vae().save_pretrained(pipe / "vae", safe_serialization=True)
    tiny_text_encoder().save_pretrained(pipe / "text_encoder", safe_serialization=True)
    tiny_tokenizer().save_pretrained(pipe / "tokenizer")
    tiny_scheduler().save_pretrained(pipe / "scheduler")

    ds = workdir / "ds"
    rows = []
    for i in range(clips):
        for kind in ("clips", "pseudo"):
            (ds / kind).mkdir(parents=True, exist_ok=True)
            (ds / kind / f"{i:04d}.mp4").write_bytes(f"{kind}-{i}".encode())  # content only feeds the cache key
        rows.append({"file_name": f"clips/{i:04d}.mp4", "identity": f"id_{i:04d}",
                     "pseudo_driving": [{"file_name": f"pseudo/{i:04d}.mp4", "identity": f"id_{(i + 1) % clips:04d}"}]})
    write_metadata(ds, rows)

    # the loop loads the encoders in bf16 on GPUs, and the cache keys include that (bf16 latents differ)
    c = load_components(str(pipe), encoder_dtype=torch.bfloat16 if torch.cuda.is_available() else None)
    settings = PrecomputeSettings(num_frames=frames, long_side=max(height, width),
                                  max_text_length=cfg["max_text_seq_length"], storage_dtype="bfloat16")
    pre = Precomputer(workdir / "cache", settings, c.vae, c.tokenizer, c.text_encoder)
    f, ch, h, w = (frames - 1) // 4 + 1, cfg["cue_in_channels"], height // 8, width // 8
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(torch.bfloat16)

    for clip in load_dataset(ds, check_readable=False).clips:
        t = {k: rnd(f, ch, h, w) for k in ("latents", "pose_latents", "face_latents")}
        t.update(image_latents=rnd(1, ch, h, w), prompt_embeds=rnd(cfg["max_text_seq_length"], cfg["text_embed_dim"]),
                 body_mask=torch.rand(f, 1, h, w, generator=g).to(torch.bfloat16),
                 face_mask=torch.rand(f, 1, h, w, generator=g).to(torch.bfloat16))
        _atomic_save(t, pre.path_for(pre.sample_key(clip)), {"kind": "sample", "bucket": [frames, height, width]})
        for p in clip.pseudo_driving:
            _atomic_save({k: rnd(f, ch, h, w) for k in ("pose_latents", "face_latents")},
                         pre.path_for(pre.pseudo_key(clip, p)), {"kind": "pseudo", "bucket": [frames, height, width]})
    return pipe, ds, frames, max(height, width), depth


def _stats(out: Path, warmup: int) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = rows[warmup:]  # no checkpoint is written (--stop-at-step before --max-steps)
    steps = [r["time/step_s"] for r in rows]
    waits = [r["time/data_wait_s"] for r in rows]
    return {"steps_measured": len(steps), "step_s_median": statistics.median(steps), "step_s_mean": statistics.mean(steps),
            "data_wait_share": sum(waits) / sum(steps)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu-mid", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per stage (incl. warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="dataloader workers (default: the trainer's)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--layers", type=int, default=None, help="override the preset's block count")
    parser.add_argument("--frames", type=int, default=None, help="override the preset's frame count (4k+1)")
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="override the size")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from trainers.same2x import main as same2x_main
    from trainers.same_id import main as same_id_main

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        pipe, ds, frames, long_side, depth = _build(work, args.preset, args.clips, args.layers, args.frames,
                                                    tuple(args.size) if args.size else None)
        common = ["--hub-dataset", str(ds), "--cache-dir", str(work / "cache"), "--num-frames", str(frames),
                  "--long-side", str(long_side), "--max-steps", str(args.steps + 1), "--stop-at-step",
                  str(args.steps), "--checkpointing-steps", str(10**9), "--report-to", "none", "--no-verify-media",
                  "--lr-warmup-steps", "1", "--seed", "0"]
        if args.workers is not None:
            common += ["--dataloader-num-workers", str(args.workers)]
        if args.gradient_checkpointing:
            common.append("--gradient-checkpointing")
        setup_s = time.perf_counter() - t0
        assert same_id_main(common + ["--pretrained", str(pipe), "--output-dir", str(work / "s1")]) == 0
        assert same2x_main(common + ["--pretrained", str(pipe), "--output-dir", str(work / "s2"),
                                              "--same-id-checkpoint", str(pipe / "transformer"),
                                              "--align-depth", str(depth), "--s2x-weight", "0.5"]) == 0
        s1, s2 = _stats(work / "s1", args.warmup), _stats(work / "s2", args.warmup)

    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    result = {
        "preset": args.preset, "layers": args.layers, "frames": frames, "long_side": long_side, "align_depth": depth,
        "device": device, "setup_s": round(setup_s, 1),
        "same_id": s1, "same2x": s2,
        "same2x_over_same_id": s2["step_s_median"] / s1["step_s_median"],
        "targets": {"same2x_over_same_id": "<= 1.25", "data_wait_share": "< 0.05"},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
