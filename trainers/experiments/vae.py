"""Train a small CogVideoX VAE from scratch on a video dataset (for the CPU demo model).

    python -m trainers.experiments.vae --hub-dataset data/synthetic --output-dir runs/vae [--widths 16,32,32,32
        --latent-channels 8 --size 64 --clip-frames 9 --image-fraction 0.5 --max-steps 2000 --learning-rate 2e-3]

The pipeline's VAE class (diffusers' ``AutoencoderKLCogVideoX``) with small ``block_out_channels``: 4 blocks keep its
8x spatial / 4x temporal compression, which the pipeline and the precompute cache assume. The loss is L1 + MSE
reconstruction plus a small KL term (the latents must stay a smooth, unit-scale space the transformer can denoise).
Grayscale copies of some clips are mixed in because the same VAE also encodes the gray pose cue videos. Half the
steps see single frames (many cheap optimizer steps teach the spatial code), half see short windows (the 4x
temporally compressed latents).

After training, ``scaling_factor`` in the saved config is set to 1 / std of the posterior means over the training
clips, so scaled latents have unit variance as the diffusion noise schedule expects (CogVideoX's 1.15 is specific to
its own VAE). Writes ``<output-dir>/vae/`` (``save_pretrained``, safetensors) and ``<output-dir>/metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from directanimator.files import atomic_folder
from directanimator.errors import InputError, run_cli
from trainers.cli_checks import (
    ArgumentParser, check_output_dir, fraction, integer, nonnegative, nonnegative_int, positive, positive_int,
    random_seed, writing)


def build_vae(widths=(16, 32, 32, 32), latent_channels: int = 8, norm_groups: int = 4, seed: int = 0):
    """A fresh ``AutoencoderKLCogVideoX`` with 4 blocks of the given widths (8x spatial, 4x temporal compression).

    Args:
        widths: ``block_out_channels``; exactly 4 values, each divisible by ``norm_groups``.
        latent_channels: channels of the latent (the transformer's ``out_channels`` and ``cue_in_channels``).
        norm_groups: GroupNorm groups.
        seed: weight initialisation seed.
    """
    from diffusers import AutoencoderKLCogVideoX

    widths = tuple(int(w) for w in widths)
    if len(widths) != 4:
        raise InputError(f"--widths needs 4 values (8x spatial compression, as the pipeline assumes), got {widths}")
    if any(w % norm_groups for w in widths):
        raise InputError(f"--widths must be multiples of {norm_groups} (GroupNorm groups), got {widths}")
    torch.manual_seed(seed)
    return AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=widths, latent_channels=latent_channels, layers_per_block=1,
        norm_num_groups=norm_groups, temporal_compression_ratio=4,
    )


def load_clips(dataset_dir: str, size: int, split: str = "train", progress=None) -> list[np.ndarray]:
    """Decode every clip of one split of a Hub-format dataset, fitted to ``size`` x ``size`` (uint8 [T,H,W,3]).

    Args:
        dataset_dir: dataset folder (or cached Hub repo id) with metadata.jsonl.
        size: square working size (clips are padded to fit, as the cue extraction does).
        split: "train" or "test".
        progress: optional ``progress(fraction, desc)``.
    """
    from directanimator.video import fit_frames, read_video
    from trainers.dataset import load_dataset

    dataset = load_dataset(dataset_dir, check_readable=False)
    clips = dataset.split(split)
    if not clips:
        raise InputError(f"{dataset_dir} has no {split} clips")
    out = []
    for i, clip in enumerate(clips):
        video = read_video(str(clip.path))
        out.append(fit_frames(video.frames, size, size, policy="pad"))
        if progress:
            progress((i + 1) / len(clips), f"decoded {clip.file_name}")
    return out


def sample_batch(clips: list[np.ndarray], batch_size: int, frames: int, gray_fraction: float,
                 rng: np.random.Generator) -> torch.Tensor:
    """A batch [B, 3, T, H, W] in [-1, 1] of random windows of random clips (some grayscale, some flipped)."""
    items = []
    for _ in range(batch_size):
        clip = clips[rng.integers(len(clips))]
        start = rng.integers(0, max(1, clip.shape[0] - frames + 1))
        x = clip[start:start + frames].astype(np.float32)
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        if rng.random() < gray_fraction:
            x = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
        items.append(torch.from_numpy(np.ascontiguousarray(x)).permute(3, 0, 1, 2) / 127.5 - 1.0)
    return torch.stack(items)


def kl_per_element(posterior) -> torch.Tensor:
    """Mean KL(q || N(0, 1)) per latent element (independent of the latent size, unlike diffusers' sum)."""
    return 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()


@torch.no_grad()
def latent_std(vae, clips: list[np.ndarray], frames: int) -> float:
    """Standard deviation of the posterior means over the first ``frames`` frames of every clip."""
    values = []
    for clip in clips:
        x = torch.from_numpy(clip[:frames].astype(np.float32)).permute(3, 0, 1, 2)[None] / 127.5 - 1.0
        values.append(vae.encode(x).latent_dist.mode().flatten())
    return float(torch.cat(values).std())


def train_vae(args: argparse.Namespace) -> Path:
    """Train, calibrate ``scaling_factor`` and write ``<output-dir>/vae``; return that folder."""
    if (args.clip_frames - 1) % 8:
        # 1+4k frames with k odd give an even latent count, which CogVideoX's decoder expands to 4k+4 frames
        raise InputError(f"--clip-frames must be 1 + 8k (e.g. 9, 17), got {args.clip_frames}")
    if args.size % 8:
        raise InputError(f"--size must be a multiple of 8, got {args.size}")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = check_output_dir(args.output_dir)
    try:
        widths = [int(w) for w in str(args.widths).split(",")]
    except ValueError:
        raise InputError(f"--widths must be 4 comma-separated integers, got {args.widths!r}") from None
    if any(w < 1 for w in widths):
        raise InputError(f"--widths must be positive, got {args.widths!r}")
    vae = build_vae(widths, args.latent_channels, args.norm_groups, args.seed)
    clips = load_clips(args.hub_dataset, args.size)
    if min(c.shape[0] for c in clips) < args.clip_frames:
        raise InputError(f"clips are shorter than --clip-frames {args.clip_frames}")
    # nothing is written before the arguments and the dataset have passed
    with writing(f"the run folder {out}", out):
        out.mkdir(parents=True, exist_ok=True)
        return _train(args, vae, clips, out, rng)


def _train(args, vae, clips, out: Path, rng) -> Path:
    """The training loop of ``train_vae`` on checked arguments, into the folder ``out``."""
    from tqdm.auto import tqdm

    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, args.warmup_steps))
        * (0.5 * (1 + np.cos(np.pi * min(1.0, s / max(1, args.max_steps)))) * 0.9 + 0.1))
    metrics = open(out / "metrics.jsonl", "w")
    bar = tqdm(range(args.max_steps), desc="vae")
    start = time.perf_counter()
    for step in bar:
        t0 = time.perf_counter()
        # most steps on single frames (cheap: many optimizer steps), the rest on short windows so the temporal
        # (4x compressed) latents are trained too
        if rng.random() < args.image_fraction:
            x = sample_batch(clips, args.image_batch_size, 1, args.gray_fraction, rng)
        else:
            x = sample_batch(clips, args.batch_size, args.clip_frames, args.gray_fraction, rng)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        l1 = (recon - x).abs().mean()
        mse = (recon - x).pow(2).mean()
        kl = kl_per_element(posterior)
        loss = l1 + mse + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        row = {"step": step + 1, "loss": loss.item(), "l1": l1.item(), "mse": mse.item(), "kl": kl.item(),
               "grad_norm": float(grad_norm), "lr": sched.get_last_lr()[0], "time/step_s": time.perf_counter() - t0}
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        bar.set_postfix(l1=f"{row['l1']:.4f}", kl=f"{row['kl']:.2f}")
    metrics.close()
    vae.eval()
    full = 1 + (min(c.shape[0] for c in clips) - 1) // 4 * 4  # whole clips, as the trainers encode them
    std = latent_std(vae, clips, full)
    vae.register_to_config(scaling_factor=1.0 / std, invert_scale_latents=False)
    with writing(f"the VAE {out / 'vae'}", out), atomic_folder(out / "vae", replaceable=lambda p: True) as tmp:
        vae.save_pretrained(str(tmp), safe_serialization=True)
    summary = {"train_minutes": (time.perf_counter() - start) / 60, "latent_std": std, "scaling_factor": 1.0 / std,
               "params": sum(p.numel() for p in vae.parameters()), "args": vars(args)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out / "vae"


def main(argv=None) -> int:
    """CLI entry: train the VAE; InputError -> one line on stderr, exit code 2."""
    p = ArgumentParser(prog="python -m trainers.experiments.vae", description=__doc__.split("\n\n")[0])
    p.add_argument("--hub-dataset", required=True, help="dataset folder (metadata.jsonl + clips) or cached Hub repo id")
    p.add_argument("--output-dir", required=True, help="run folder: vae/, metrics.jsonl, summary.json")
    p.add_argument("--widths", default="16,32,32,32", help="block_out_channels, 4 comma-separated values")
    p.add_argument("--latent-channels", type=positive_int, default=8, help="latent channels (default 8)")
    p.add_argument("--norm-groups", type=positive_int, default=4, help="GroupNorm groups (default 4)")
    p.add_argument("--size", type=integer(8, 2048), default=64,
                   help="square training size in pixels, multiple of 8 (default 64)")
    p.add_argument("--clip-frames", type=positive_int, default=9,
                   help="frames per training window, 1+8k: an odd latent count decodes to the same length (default 9)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="windows per clip step (default 1)")
    p.add_argument("--image-fraction", type=fraction, default=0.5,
                   help="share of steps on single frames instead of windows (default 0.5)")
    p.add_argument("--image-batch-size", type=positive_int, default=4, help="frames per single-frame step (default 4)")
    p.add_argument("--max-steps", type=positive_int, default=2000)
    p.add_argument("--learning-rate", type=positive, default=2e-3)
    p.add_argument("--warmup-steps", type=nonnegative_int, default=20)
    p.add_argument("--kl-weight", type=nonnegative, default=1e-3,
                   help="weight of the per-element KL term (default 1e-3)")
    p.add_argument("--gray-fraction", type=fraction, default=0.25,
                   help="share of grayscale windows (the VAE also encodes gray pose cues; default 0.25)")
    p.add_argument("--seed", type=random_seed, default=0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    return run_cli(lambda: train_vae(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
