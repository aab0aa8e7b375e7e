"""Validation videos during training: the pipeline run on the held-out clip's cues with the current (or EMA)
weights, written as an mp4, with every RNG left as it was (so a run with validation trains exactly as one without)."""

from __future__ import annotations

from pathlib import Path

import torch

from directanimator.cues import DrivingCues
from directanimator.pipeline import DirectAnimatorPipeline
from directanimator.video import write_video
from trainers.components import Components

__all__ = ["write_validation_video"]


def write_validation_video(accelerator, components: Components, transformer, cues_dir: Path, caption: str,
                           path: Path, steps: int, seed: int, ema=None) -> None:
    """Run the pipeline on the held-out sample's cues and write an mp4 (main process, RNG untouched; the EMA
    weights when EMA is on)."""
    cues = DrivingCues.load(str(cues_dir))
    model = accelerator.unwrap_model(transformer)
    # the encoders wait on the CPU between validations; the pipeline needs them beside the transformer
    components.vae.to(accelerator.device)
    components.text_encoder.to(accelerator.device)
    pipe = DirectAnimatorPipeline(tokenizer=components.tokenizer, text_encoder=components.text_encoder,
                                  vae=components.vae, transformer=model, scheduler=components.scheduler)
    pipe.set_progress_bar_config(disable=True)
    was_training = model.training
    model.eval()
    if ema is not None:
        ema.store(model.parameters())
        ema.copy_to(model.parameters())
    try:
        with torch.random.fork_rng(devices=[accelerator.device] if accelerator.device.type == "cuda" else []), \
                accelerator.autocast():
            generator = torch.Generator(device="cpu").manual_seed(seed)
            out = pipe(image=cues.reference, cues=cues, prompt=caption, num_inference_steps=steps,
                       generator=generator, output_type="np", window_frames=cues.num_frames)
    finally:
        if ema is not None:
            ema.restore(model.parameters())
        model.train(was_training)
    components.vae.to("cpu")
    components.text_encoder.to("cpu")
    frames = out.frames[0] if hasattr(out, "frames") else out[0]
    frames = (frames * 255).round().clip(0, 255).astype("uint8") if frames.dtype != "uint8" else frames
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), frames, fps=cues.fps or 8)
