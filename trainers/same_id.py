"""Stage 1, same-ID: ``python -m trainers.same_id --hub-dataset ID_OR_DIR --pretrained COGVIDEOX_DIR --output-dir DIR``.

The reference frame and the driving cues come from the same clip; the loss is the denoising loss only
(``trainers.trainer.Trainer``). Runs the same under ``accelerate launch`` (see configs/accelerate/).
"""

import sys

from trainers.trainer import Trainer, run


def main(argv=None) -> int:
    return run(Trainer, argv)


if __name__ == "__main__":
    sys.exit(main())
