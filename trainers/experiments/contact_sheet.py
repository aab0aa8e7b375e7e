"""A contact sheet of one held-out test pair: what a model makes of it beside what it should make.

    python -m trainers.experiments.contact_sheet PAIRS_DIR WORLD BASE --pair ref24_drv25_mo60 \\
        --model "stage 1=runs/repro2/train/s1-base-s0/transformer" [--model ...] --out sheet.png [--steps 10]

Rows, every ``--every``-th frame: the driving video, the ground truth (the reference's identity doing the motion),
the ground truth through the base's VAE (the ceiling of any transformer on that VAE), then one row per ``--model``
(``LABEL=TRANSFORMER_FOLDER``, generated as the reproduction's evaluation generates: same seed, steps, no
guidance); the reference photo heads each row. Written as a PNG (``reproduce_eval`` pairs: ``prepare_pairs``).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from directanimator.cues import DrivingCues
from directanimator.errors import InputError, run_cli
from directanimator.files import atomic_path
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.pipeline import DirectAnimatorPipeline
from directanimator.video import read_video, to_uint8_frames
from trainers.cli_checks import ArgumentParser, check_model_folder, loading, positive_int
from trainers.experiments.reproduce_eval import cue_inputs, vae_round_trip

LABEL_WIDTH = 110


def _row(label: str, reference: np.ndarray, frames: np.ndarray) -> np.ndarray:
    h = reference.shape[0]
    tag = Image.new("RGB", (LABEL_WIDTH, h), (255, 255, 255))
    ImageDraw.Draw(tag).multiline_text((4, 4), textwrap.fill(label, 16), fill=(0, 0, 0))
    return np.concatenate([np.asarray(tag), reference, *frames], axis=1)


def contact_sheet(pairs_dir, world, base, pair: str, models: list[tuple[str, str]], out, steps: int = 10,
                  every: int = 2, seed: int = 0) -> str:
    """Write the sheet (see the module docstring) to ``out``; returns its path."""
    folder = Path(pairs_dir) / pair
    listing = {p["name"]: p for p in json.loads((Path(pairs_dir) / "pairs.json").read_text())}
    if pair not in listing or not (folder / "cues.json").is_file():
        raise InputError(f"no test pair {pair!r} in {pairs_dir}; pairs are named like {', '.join(list(listing)[:6])}")
    cues = DrivingCues.load(folder)
    truth = read_video(str(Path(world) / listing[pair]["ground_truth"])).frames[:cues.num_frames]
    ref = np.asarray(cues.reference)
    pick = slice(0, None, every)
    pipe = DirectAnimatorPipeline.from_pretrained(base)
    pipe.set_progress_bar_config(disable=True)
    rows = [_row("driving", ref, np.asarray(cues.driving)[pick]), _row("ground truth", ref, truth[pick]),
            _row("VAE ceiling", ref, vae_round_trip(pipe.vae, truth, *ref.shape[:2])[pick])]
    for label, transformer in models:
        check_model_folder(transformer, hint="pass a trained transformer folder (a run's transformer/)")
        with loading(f"the transformer in {transformer}"):
            pipe.transformer = CueFusionTransformer3DModel.from_pretrained(transformer, use_safetensors=True)
        frames = pipe(image=ref, **cue_inputs(cues, "none"), num_frames=cues.num_frames, num_inference_steps=steps,
                      guidance_scale=1.0, generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
        rows.append(_row(label, ref, to_uint8_frames(frames)[pick]))
    with atomic_path(out, suffix=".png") as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    return str(out)


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m trainers.experiments.contact_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("pairs_dir")
    p.add_argument("world")
    p.add_argument("base", help="pipeline folder (VAE, text encoder, tokenizer, scheduler)")
    p.add_argument("--pair", required=True, help="test pair name (a folder of PAIRS_DIR)")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=FOLDER",
                   help="a trained transformer folder to show, with its row label (repeatable)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--steps", type=positive_int, default=10)
    p.add_argument("--every", type=positive_int, default=2, help="show every N-th frame (default 2)")

    def work():
        args = p.parse_args(argv)
        models = []
        for spec in args.model:
            if "=" not in spec:
                raise InputError(f"--model {spec!r}: give LABEL=TRANSFORMER_FOLDER")
            label, folder = spec.split("=", 1)
            models.append((label.strip(), folder.strip()))
        return contact_sheet(args.pairs_dir, args.world, args.base, args.pair, models, args.out, args.steps,
                             args.every)

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
