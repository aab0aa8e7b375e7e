"""Stage 2, Same2X: ``python -m trainers.same2x --hub-dataset ID_OR_DIR --same-id-checkpoint DIR --output-dir DIR
--align-depth 10 --s2x-weight 0.5``.

The trained model sees pseudo cross-ID driving cues (another identity performing the clip's motion, pose cue
synthetically misaligned as in the paper's A.2, location cue kept aligned); the frozen stage-1 model sees the clip's
own cues and runs only its first D blocks without gradients. Loss = denoising + lambda * S2X (eq. 4).
"""

from __future__ import annotations

import sys

import torch
from accelerate import init_empty_weights

from directanimator.errors import InputError
from directanimator.model_folders import load_safetensors_folder, resolve_model_folder
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.losses import s2x_loss
from trainers.batch import run_model
from trainers.cli_checks import loading
from trainers.components import whole_models
from trainers.trainer import Trainer, run

__all__ = ["Same2XTrainer", "load_truncated_teacher", "main"]


def load_truncated_teacher(path: str, depth: int, dtype: torch.dtype | None = None,
                           cls: type = CueFusionTransformer3DModel) -> CueFusionTransformer3DModel:
    """The frozen Same2X teacher with only its first ``depth`` blocks: a ``cls`` of the folder's config with
    ``num_layers=depth`` whose weights are the folder's, read for blocks ``0..depth-1`` and the embeddings only
    (the later blocks' tensors are never loaded). ``forward(..., return_block_tokens=depth, stop_at_block=True)``
    gives the same block-``depth`` tokens as the whole model; the output head is kept (a few small layers) so the
    module stays a complete model of ``depth`` blocks.

    Raises ``InputError`` when ``depth`` is not in 1..num_layers or the folder's weights do not match its config.
    """
    folder = resolve_model_folder(path, component="transformer")
    config = dict(cls.load_config(folder))
    layers = int(config["num_layers"])
    if not 1 <= depth <= layers:
        raise InputError(f"--align-depth must be in 1..{layers} for this model, got {depth}")

    def keep(key: str) -> bool:
        return not key.startswith("transformer_blocks.") or int(key.split(".")[1]) < depth

    state = load_safetensors_folder(folder, keep=keep)
    with init_empty_weights():
        model = cls.from_config({**config, "num_layers": depth})
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise InputError(f"{folder}: weights do not match its config (missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})")
    model.register_to_config(num_layers=depth)
    return model.to(dtype=dtype) if dtype is not None else model


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
        # only its first D blocks run: only they are read from disk and kept (at CogVideoX1.5 size and D = 10,
        # ~1.5 GB of bf16 instead of ~11 GB)
        with whole_models(self.accelerator), loading(f"the stage-1 transformer in {self.teacher_path}"):
            self.teacher = load_truncated_teacher(self.teacher_path, self.args.align_depth, self.weight_dtype,
                                                  cls=type(self.transformer))
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
