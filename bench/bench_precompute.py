"""Benchmark of the precompute (not a test): what one training clip's cache entry costs at the paper's settings
(49 frames, 512 px), split into cue extraction and VAE encoding.

    python bench/bench_precompute.py [--clip examples/driving_walk.mp4] [--vae-frames 9] [--device cpu]

1. The cue extraction of ``Precomputer.compute_sample`` (offline mediapipe backends, loaded beforehand), timed
   alone, and the whole ``compute_sample`` with the tiny test models (``directanimator.tiny``) for reading,
   saving and the calls around the models.
2. The real CogVideoX VAE architecture (``AutoencoderKLCogVideoX()``'s default config, random weights: the cost
   does not depend on the values) encoding ``--vae-frames`` frames at 512x512 with tiling, as the precompute
   calls it, scaled linearly to the 3 videos of 49 frames an entry encodes (clip, pose cue, face cue).

The precompute splits clips across processes by rank (clip i on rank i % world size; tested in
tests/test_trainers_precompute.py), so N GPUs divide the wall time by N.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(ROOT / "examples" / "driving_walk.mp4"))
    parser.add_argument("--vae-frames", type=int, default=9,
                        help="frames the real-size VAE encodes (4k+1; 0: skip it)")
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    import torch
    from diffusers import AutoencoderKLCogVideoX

    from directanimator.latents import encode_video
    from directanimator.tiny import tiny_text_encoder, tiny_tokenizer, tiny_vae
    from trainers.dataset import Clip
    from trainers.precompute import Precomputer, PrecomputeSettings, _extract, _reference_for

    clip = Clip(index=0, file_name=Path(args.clip).name, identity="a", path=Path(args.clip))
    with tempfile.TemporaryDirectory() as tmp:
        settings = PrecomputeSettings(num_frames=49, long_side=512, max_text_length=8)
        pre = Precomputer(tmp, settings, tiny_vae(), tiny_tokenizer(), tiny_text_encoder())
        pre.compute_sample(clip, Path(tmp) / "warm.pt")  # backends loaded once, outside the timing
        start = time.perf_counter()
        _extract(_reference_for(clip, settings), clip.path, settings, pre.backends())
        cues = time.perf_counter() - start
        start = time.perf_counter()
        pre.compute_sample(clip, Path(tmp) / "entry.pt")
        whole = time.perf_counter() - start
    print(f"cue extraction, 49 frames 512 px: {cues:.2f} s ({1000 * cues / 49:.1f} ms/frame); the whole entry with "
          f"the tiny models: {whole:.2f} s")
    if args.vae_frames <= 0:
        return 0

    vae = AutoencoderKLCogVideoX().to(args.device, torch.bfloat16 if args.device == "cuda" else torch.float32).eval()
    vae.enable_tiling()
    frames = torch.rand(args.vae_frames, 512, 512, 3).mul(255).to(torch.uint8).numpy()
    with torch.no_grad():
        encode_video(vae, frames[:5], device=args.device)  # warm-up
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        encode_video(vae, frames, device=args.device)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    per_entry = seconds / args.vae_frames * 49 * 3
    print(f"real-size VAE on {args.device}: {args.vae_frames} frames 512x512 in {seconds:.2f} s -> "
          f"~{per_entry:.0f} s for an entry's 3 x 49 frames")
    print(f"per clip at the paper's settings on {args.device}: ~{cues + per_entry:.0f} s "
          f"(cues {cues:.1f} s + VAE ~{per_entry:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
