"""Convert a published ``.pth`` state dict to ``.safetensors`` (read with ``torch.load(weights_only=True)``, written
atomically beside it unless told where); the evaluator then uses the ``.safetensors`` in its place:

    python -m directanimator.metrics.convert_weights FILE.pth [OUT.safetensors]
"""

from __future__ import annotations

import argparse
import sys

from ..errors import run_cli
from .weights import convert


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (2 for bad input)."""
    parser = argparse.ArgumentParser(prog="python -m directanimator.metrics.convert_weights",
                                     description="Convert a published .pth state dict to .safetensors; the "
                                     "evaluator then uses the .safetensors in its place.")
    parser.add_argument("src", help="the .pth file (a state dict of tensors)")
    parser.add_argument("dst", nargs="?", default=None, help="output (default: beside it, .safetensors)")
    args = parser.parse_args(argv)
    return run_cli(lambda: convert(args.src, args.dst), done="wrote {}")


if __name__ == "__main__":
    sys.exit(main())
