"""Stage 2, Same2X: ``python -m trainers.same2x --hub-dataset ID_OR_DIR --same-id-checkpoint DIR --output-dir DIR
--align-depth 10 --s2x-weight 0.5``.

The trained model sees pseudo cross-ID driving cues (another identity performing the clip's motion, pose cue
synthetically misaligned as in the paper's A.2, location cue kept aligned); the frozen stage-1 model sees the clip's
own cues and runs only its first D blocks without gradients. Loss = denoising + lambda * S2X (eq. 4).
"""

from __future__ import annotations

import sys

import torch

from directanimator.errors import InputError
from directanimator.losses import s2x_loss
from trainers.batch import run_model
from trainers.cli_checks import loading
from trainers.components import whole_models
from trainers.trainer import Trainer, run

__all__ = ["Same2XTrainer", "main"]


class Same2XTrainer(Trainer):
    """The same-ID trainer with pseudo cross-ID cues for the trained model (started from the stage-1 weights) and
    the S2X term aligning its block-D tokens to those of a frozen copy of the stage-1 model on the clip's own cues."""

    stage = "same2x"
    with_pseudo = True
    cue_prefix = "pseudo_"
    loss_names = ("denoise", "s2x")

    def initial_transformer_path(self) -> str | None:
        return self.teacher_path  # the student starts from the stage-1 weights

    def load_models(self) -> None:
        super().load_models()
        n_blocks = len(self.transformer.transformer_blocks)
        if not 1 <= self.args.align_depth <= n_blocks:
            raise InputError(f"--align-depth must be in 1..{n_blocks} for this model, got {self.args.align_depth}")
        # the frozen same-ID model: a separate copy of the stage-1 weights, never wrapped, never optimised
        with whole_models(self.accelerator), loading(f"the stage-1 transformer in {self.teacher_path}"):
            self.teacher = type(self.transformer).from_pretrained(self.teacher_path, use_safetensors=True,
                                                                  dtype=self.weight_dtype)
        self.teacher.requires_grad_(False).eval().to(self.device)

    def trained_parameters(self) -> list:
        params = super().trained_parameters()
        # the frozen teacher must never be optimised (it is a separate copy)
        assert not {id(p) for p in self.teacher.parameters()} & {id(p) for p in params}
        return params

    @property
    def student_block(self) -> int:
        return self.args.align_depth

    def compute_loss(self, step, batch, rope):
        loss, parts, out = super().compute_loss(step, batch, rope)
        with torch.no_grad():
            teacher_out = run_model(self.teacher, step, batch, "", self.weight_dtype, rope,
                                    block=self.args.align_depth, stop=True)
        s2x = s2x_loss(out.block_tokens, teacher_out.block_tokens)
        return loss + self.args.s2x_weight * s2x, {**parts, "s2x": s2x}, out

    def total_loss(self, logs: dict) -> float:
        return logs["loss/denoise"] + self.args.s2x_weight * logs["loss/s2x"]


def main(argv=None) -> int:
    return run(Same2XTrainer, argv)


if __name__ == "__main__":
    sys.exit(main())
