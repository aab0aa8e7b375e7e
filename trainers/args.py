"""The trainers' command lines: the flags both stages share, Same2X's own, and ``build_parser(stage)``.

Every numeric flag is range-checked by its ``type`` (``trainers.cli_checks``), so a bad value is one ``error:`` line
before anything is loaded or written. The cue settings' defaults are ``CueSettings``'s.
"""

from __future__ import annotations

import argparse

from directanimator.cues.settings import CueSettings, add_ablation_arguments
from trainers.cli_checks import (ArgumentParser, fraction, integer, nonnegative, nonnegative_int, number, positive,
                                 positive_int, random_seed)

__all__ = ["add_common_args", "add_same2x_args", "build_parser"]

CUE_DEFAULTS = CueSettings()
DESCRIPTIONS = {"same_id": "Stage 1 (same-ID): reference and cues from the same clip, denoising loss.",
                "same2x": "Stage 2 (Same2X): pseudo cross-ID cues + S2X alignment to the frozen stage-1 model."}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by both stages."""
    g = parser.add_argument_group("data")
    g.add_argument("--hub-dataset", required=True, help="dataset folder or Hugging Face Hub dataset repo id")
    g.add_argument("--hub-revision", default=None, help="branch/tag/commit of the Hub dataset (default main)")
    g.add_argument("--cache-dir", default=None,
                   help="precompute cache folder (default ~/.cache/directanimator/precompute); shared safely")
    g.add_argument("--num-frames", type=positive_int, default=49, help="frames per clip (4k+1; see README)")
    # the ranges of the cue settings are extract_cues' own
    g.add_argument("--long-side", type=integer(32, 2048), default=512, help="working resolution long side in pixels")
    g.add_argument("--fps", type=positive, default=None, help="resample clips to this frame rate first")
    g.add_argument("--segmenter", default="mediapipe", help="person segmentation backend for cue extraction")
    g.add_argument("--face-detector", default="mediapipe", help="face detection backend for cue extraction")
    g.add_argument("--lowpass", type=fraction, default=CUE_DEFAULTS.lowpass, help="pose cue low-pass strength in [0, 1]")
    g.add_argument("--face-enlarge", type=number(1, 4), default=CUE_DEFAULTS.face_enlarge, help="face cue crop enlargement in [1, 4]")
    g.add_argument("--grid", type=integer(0, 256), default=CUE_DEFAULTS.grid, help="location cue softening grid (0: off)")
    add_ablation_arguments(g)
    g.add_argument("--max-skipped-clips", type=fraction, default=0.1,
                   help="clips whose cues cannot be extracted (no person found, ...) are left out with a warning; "
                        "more than this fraction of them stops the run (default 0.1)")
    g.add_argument("--caption-dropout", type=fraction, default=0.0,
                   help="probability of training a sample on the empty caption instead of its own, so that "
                        "classifier-free guidance on the prompt has an unconditional model to contrast (CogVideoX "
                        "fine-tunes commonly use 0.1; default 0: always the caption)")
    g.add_argument("--cache-dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                   help="dtype of cached latents")
    g.add_argument("--dataloader-num-workers", type=nonnegative_int, default=None,
                   help="cache-reading worker processes (default: 2 with a GPU, 0 on CPU where they would compete "
                        "with training for the same cores)")
    g.add_argument("--no-verify-media", action="store_true",
                   help="skip decoding one frame of every file during validation (large datasets you trust)")

    g = parser.add_argument_group("optimisation")
    g.add_argument("--output-dir", required=True, help="run folder: checkpoints, logs, metrics, final transformer")
    g.add_argument("--seed", type=random_seed, default=0)
    g.add_argument("--train-batch-size", type=positive_int, default=1, help="samples per process per micro-batch")
    g.add_argument("--gradient-accumulation-steps", type=positive_int, default=1)
    g.add_argument("--max-steps", type=positive_int, default=10000, help="optimizer steps")
    g.add_argument("--learning-rate", type=positive, default=2e-5, help="paper: 2e-5 for both stages")
    g.add_argument("--lr-scheduler", default="constant_with_warmup",
                   help="diffusers get_scheduler name: constant, constant_with_warmup, cosine, linear, ...")
    g.add_argument("--lr-warmup-steps", type=nonnegative_int, default=100)
    g.add_argument("--adam-beta1", type=number(0, 1, high_open=True), default=0.9)
    g.add_argument("--adam-beta2", type=number(0, 1, high_open=True), default=0.95)
    g.add_argument("--adam-weight-decay", type=nonnegative, default=1e-4)
    g.add_argument("--adam-epsilon", type=positive, default=1e-8)
    g.add_argument("--use-8bit-adam", action="store_true", help="bitsandbytes AdamW8bit (must be installed)")
    g.add_argument("--max-grad-norm", type=positive, default=1.0)
    g.add_argument("--gradient-checkpointing", action="store_true")
    g.add_argument("--use-ema", action="store_true", help="keep an EMA of the weights (saved as transformer_ema/)")
    g.add_argument("--ema-decay", type=fraction, default=0.999)
    # fp16 is left out on purpose: its loss scaler expects inf steps, which the NaN guard would count as failures
    g.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16"],
                   help="auto: bf16 on GPUs, fp32 on CPU")
    g.add_argument("--max-nan-steps", type=positive_int, default=5, help="stop after this many skipped non-finite steps in a row")

    g = parser.add_argument_group("checkpoints, logging, validation")
    g.add_argument("--checkpointing-steps", type=positive_int, default=500)
    g.add_argument("--checkpoints-total-limit", type=positive_int, default=3, help="keep the last N checkpoints")
    g.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    g.add_argument("--report-to", default="tensorboard", choices=["tensorboard", "none"])
    g.add_argument("--validation-steps", type=nonnegative_int, default=0, help="write a validation video every N steps (0: off)")
    g.add_argument("--validation-inference-steps", type=positive_int, default=25)
    g.add_argument("--stop-at-step", type=nonnegative_int, default=None, help=argparse.SUPPRESS)  # tests: simulate a kill
    g.add_argument("--verbose", action="store_true", help="show MediaPipe's log lines (or DIRECTANIMATOR_VERBOSE=1)")


def add_same2x_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of the Same2X stage."""
    g = parser.add_argument_group("Same2X")
    g.add_argument("--same-id-checkpoint", required=True,
                   help="stage-1 output folder, one of its checkpoints, or a transformer folder")
    g.add_argument("--align-depth", type=positive_int, default=10, help="D: align tokens after this block (paper: 10)")
    g.add_argument("--s2x-weight", type=nonnegative, default=0.5, help="lambda of the S2X loss (paper: 0.5)")


def build_parser(stage: str) -> ArgumentParser:
    """The command line of ``python -m trainers.<stage>`` (``"same_id"`` or ``"same2x"``)."""
    parser = ArgumentParser(prog=f"python -m trainers.{stage}", description=DESCRIPTIONS[stage])
    add_common_args(parser)
    if stage == "same_id":
        parser.add_argument("--pretrained", required=True,
                            help="CogVideoX1.5 I2V (or DirectAnimator pipeline) folder or cached repo id")
        parser.add_argument("--transformer", default=None,
                            help="initial transformer folder instead of the pipeline's transformer/ (the VAE, text "
                                 "encoder and cache stay the pipeline's: several fresh models share one cache)")
    else:
        parser.add_argument("--pretrained", default=None,
                            help="pipeline folder for the VAE/text encoder (default: the one stage 1 used)")
        add_same2x_args(parser)
    return parser
