"""Stage 2, Same2X: ``python -m trainers.same2x --hub-dataset ID_OR_DIR --same-id-checkpoint DIR --output-dir DIR
--align-depth 10 --s2x-weight 0.5``.

The trained model sees pseudo cross-ID driving cues (another identity performing the clip's motion, pose cue
synthetically misaligned as in the paper's A.2, location cue kept aligned); the frozen stage-1 model sees the clip's
own cues and runs only its first D blocks without gradients. Loss = denoising + lambda * S2X (eq. 4).
"""

import sys

from trainers.loop import main

if __name__ == "__main__":
    sys.exit(main("same2x"))
