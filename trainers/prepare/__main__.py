"""``python -m trainers.prepare RAW_DIR --out DATASET_DIR``: see :mod:`trainers.prepare`."""

from __future__ import annotations

import sys

from directanimator.errors import run_cli
from trainers.cli_checks import ArgumentParser, integer, nonnegative, nonnegative_int, number, positive, positive_int
from trainers.prepare import __doc__ as DOC
from trainers.prepare.captions import DEFAULT_PROMPT


def build_parser() -> ArgumentParser:
    """The command line of ``python -m trainers.prepare``."""
    parser = ArgumentParser(prog="python -m trainers.prepare", description=DOC.split("\n\n")[0])
    parser.add_argument("raw_dir", metavar="RAW_DIR", help="folder of raw videos, RAW_DIR/<identity>/*.mp4")
    parser.add_argument("--out", required=True, help="the dataset folder to write (new, empty, or an unfinished "
                                                     "run of the same command to continue)")
    parser.add_argument("--identities", default=None, metavar="CSV",
                        help="CSV with the columns file,identity (file relative to RAW_DIR) instead of the folders")
    parser.add_argument("--identity-from", choices=("folders", "cluster"), default="folders",
                        help="folders: RAW_DIR/<identity>/ (default); cluster: group the clips by the ArcFace "
                             "embedding of their reference face (needs --arcface)")
    parser.add_argument("--arcface", default=None, metavar="ONNX",
                        help="ArcFace model for --identity-from cluster (InsightFace's w600k_r50.onnx, buffalo_l)")
    parser.add_argument("--cluster-threshold", type=number(-1, 1), default=0.5,
                        help="cosine similarity of two faces at which their clips are one identity")
    parser.add_argument("--min-seconds", type=positive, default=5.0, help="shortest clip kept (seconds)")
    parser.add_argument("--max-seconds", type=positive, default=20.0, help="longer shots are trimmed to this")
    parser.add_argument("--fps", type=number(1, 120), default=8.0, help="frame rate of the written clips")
    parser.add_argument("--long-side", type=integer(64, 2048), default=512,
                        help="long side of the written clips in pixels at most (never upscaled)")
    parser.add_argument("--crf", type=integer(0, 51), default=18, help="x264 quality of the clips")
    parser.add_argument("--caption", default="", help="caption given to every clip (default: none)")
    parser.add_argument("--caption-model", default=None, metavar="DIR_OR_REPO",
                        help="caption every clip with this Qwen2-VL-family model (transformers; e.g. "
                             "Qwen/Qwen2-VL-7B-Instruct), on the GPU when there is one")
    parser.add_argument("--caption-prompt", default=DEFAULT_PROMPT, help="the question the caption model answers")
    parser.add_argument("--caption-batch", type=integer(1, 256), default=8, help="clips captioned per batch")
    parser.add_argument("--min-brightness", type=number(0, 255), default=40.0,
                        help="shots with a darker median gray level are dropped as too dark")
    parser.add_argument("--min-sharpness", type=nonnegative, default=60.0,
                        help="shots with a lower median Laplacian variance (at 160 px) are dropped as too blurry")
    parser.add_argument("--min-motion", type=nonnegative, default=0.3,
                        help="shots whose frames change less (mean gray levels per frame) are dropped as static")
    parser.add_argument("--person-samples", type=integer(1, 64), default=6,
                        help="frames of each clip searched for people")
    parser.add_argument("--segmenter", default="mediapipe", help="person segmenter (mediapipe | grounded-sam)")
    parser.add_argument("--face-detector", default="mediapipe", help="face detector (mediapipe | insightface)")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes to start on this machine")
    parser.add_argument("--process-index", type=nonnegative_int, default=0,
                        help="this process's share (with --num-processes; default: RANK from accelerate launch)")
    parser.add_argument("--num-processes", type=positive_int, default=None,
                        help="how many processes share the sources (default: WORLD_SIZE from accelerate launch)")
    parser.add_argument("--limit-sources", type=nonnegative_int, default=None,
                        help="finish at most this many source videos in this run, then stop (the folder stays "
                             "unfinished; rerun to continue)")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO",
                        help="upload the finished dataset to this Hub dataset repo (org/name) with huggingface_hub")
    parser.add_argument("--hub-dry-run", action="store_true",
                        help="with --push-to-hub: list what would be uploaded, upload nothing")
    parser.add_argument("--hub-private", action="store_true", help="with --push-to-hub: create the repo private")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_args(argv=None):
    """Parse the command line (bad values are one-line ``InputError`` s)."""
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    """CLI entry: prepare the dataset, print one line; bad input is one ``error:`` line and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def work():
        from trainers.prepare.run import prepare_dataset

        return prepare_dataset(parse_args(argv), argv)

    return run_cli(work, done="{}")


if __name__ == "__main__":
    sys.exit(main())
