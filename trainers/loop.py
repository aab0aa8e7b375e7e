"""One training loop for both stages (same-ID and Same2X), on accelerate.

``python -m trainers.same_id`` and ``python -m trainers.same2x`` parse their arguments and call ``train()``; the
loop is the same, the Same2X stage adds a frozen teacher and the S2X term.

What the loop guarantees:
- bf16 autocast on GPUs (fp32 on CPU), gradient accumulation, optional gradient checkpointing, AdamW (8-bit when
  bitsandbytes is importable and asked for), warm-up + schedule (diffusers' ``get_scheduler``), optional EMA,
  gradient clipping; ``loss/denoise``, ``loss/s2x``, ``loss/total``, ``grad_norm`` and ``lr`` go to TensorBoard and to
  ``<output>/metrics.jsonl`` (one JSON per optimizer step, which the app can plot).
- Checkpoints ``<output>/checkpoints/checkpoint-<step>``: ``accelerator.save_state`` + a ``transformer/`` folder
  (``save_pretrained``, loadable by the pipeline) + ``trainer_state.json``; written to a temp folder and renamed,
  the last ``--checkpoints-total-limit`` kept.
- ``--resume latest|PATH`` restores weights, optimizer, LR schedule, EMA, every RNG and the data position, so the
  loss curve continues exactly as if the run had not been interrupted.
- A NaN/inf loss or gradient skips the optimizer step (on every rank), warns, and the run stops after
  ``--max-nan-steps`` skipped steps in a row; a checkpoint is never written from non-finite weights.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pickle
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from directanimator.errors import InputError, close_progress_bars
from directanimator.quiet import set_verbose
from directanimator.rope import vision_rotary_embedding
from trainers.cli_checks import (
    ArgumentParser, check_model_folder, check_training_run, fraction, integer, loading, nonnegative, nonnegative_int,
    number, positive, positive_int, random_seed, writing)

logger = logging.getLogger("trainers")


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (too many non-finite steps in a row); nothing poisoned was saved."""

STATE_FILE = "trainer_state.json"
ARGS_FILE = "training_args.json"


# ------------------------------------------------------------------------------------------------ arguments

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
    g.add_argument("--lowpass", type=fraction, default=0.5, help="pose cue low-pass strength in [0, 1]")
    g.add_argument("--face-enlarge", type=number(1, 4), default=1.6, help="face cue crop enlargement in [1, 4]")
    g.add_argument("--grid", type=integer(0, 256), default=16, help="location cue softening grid (0: off)")
    g.add_argument("--pose-cue", default="gray", choices=["gray", "rgb", "skeleton"],
                   help="pose cue: gray (low-passed grayscale foreground, the paper's), rgb (raw colour "
                        "foreground, the Table 3 S3 ablation) or skeleton (the thinned body mask, for the S5 "
                        "ablation together with --drop-cues face,location)")
    g.add_argument("--face-cue", default="centred", choices=["centred", "in-place"],
                   help="face cue: centred (the face crop enlarged and centred, the paper's) or in-place (the same "
                        "region left where it is, the Table 3 S2 ablation)")
    g.add_argument("--drop-cues", default="",
                   help="ablations: comma list of cues the model never sees: face (face cue and face mask), "
                        "location (body and face masks); generate with the same cues left out")
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


# ------------------------------------------------------------------------------------------------ models

@dataclass
class Components:
    """Frozen encoders, the noise scheduler and the trained transformer."""

    vae: torch.nn.Module
    tokenizer: object
    text_encoder: torch.nn.Module
    scheduler: object
    transformer: torch.nn.Module
    root: str


def load_components(pretrained: str, transformer_path: str | None = None, encoder_dtype=None) -> Components:
    """Load the parts of a CogVideoX(1.5) I2V or DirectAnimator pipeline folder (or cached repo id).

    Args:
        pretrained: folder with vae/, text_encoder/, tokenizer/, scheduler/ and transformer/.
        transformer_path: a transformer folder that replaces the pipeline's (stage-1 checkpoint for stage 2).
            A plain CogVideoX transformer is turned into a CueFusion one (``from_cogvideox``).
        encoder_dtype: dtype of the frozen VAE and text encoder (bf16 on GPUs halves T5-XXL's 19 GB); the
            transformer keeps its float32 master weights (mixed precision runs the matmuls in bf16).
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import AutoTokenizer, T5EncoderModel

    from directanimator.modeling import CueFusionTransformer3DModel

    root, tpath = check_components(pretrained, transformer_path)
    with loading(f"the VAE in {root}/vae"):
        vae = AutoencoderKLCogVideoX.from_pretrained(root, subfolder="vae", use_safetensors=True,
                                                     dtype=encoder_dtype)
    with loading(f"the text encoder in {root}/text_encoder"):
        text_encoder = T5EncoderModel.from_pretrained(os.path.join(root, "text_encoder"), use_safetensors=True,
                                                      dtype=encoder_dtype)
    with loading(f"the tokenizer in {root}/tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
    with loading(f"the scheduler in {root}/scheduler"):
        scheduler = CogVideoXDPMScheduler.from_pretrained(root, subfolder="scheduler")
    with loading(f"the transformer in {tpath}"):
        with open(os.path.join(tpath, "config.json")) as fh:
            config = json.load(fh)
        if config.get("_class_name") == "CueFusionTransformer3DModel" or "cue_in_channels" in config:
            transformer = CueFusionTransformer3DModel.from_pretrained(tpath, use_safetensors=True)
        else:
            transformer = CueFusionTransformer3DModel.from_cogvideox(tpath,
                                                                     cue_in_channels=vae.config.latent_channels)
    for module in (vae, text_encoder):
        module.requires_grad_(False).eval()
    return Components(vae, tokenizer, text_encoder, scheduler, transformer, root)


def check_components(pretrained: str, transformer_path: str | None = None) -> tuple[str, str]:
    """(pipeline folder, transformer folder) that ``load_components`` would load, each checked for safetensors
    weights (the animate CLI's check), or an ``InputError`` before anything is loaded."""
    from directanimator.modeling import resolve_model_folder

    root = resolve_model_folder(pretrained)
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        if not os.path.isdir(os.path.join(root, part)):
            raise InputError(
                f"{pretrained} has no {part}/ folder; pass a CogVideoX1.5 I2V or DirectAnimator pipeline folder"
            )
    check_model_folder(root, ["vae", "text_encoder"] + ([] if transformer_path else ["transformer"]))
    tpath = resolve_model_folder(transformer_path or root, component="transformer")
    if transformer_path:
        check_model_folder(tpath)
    return root, tpath


@contextlib.contextmanager
def whole_models(accelerator):
    """Load models whole under DeepSpeed ZeRO-3.

    accelerate registers its DeepSpeed config with transformers whatever ``zero3_init_flag`` says, and under ZeRO-3
    transformers' ``from_pretrained`` then builds every model inside ``deepspeed.zero.Init``: the frozen T5 would
    be partitioned although no DeepSpeed engine ever gathers it (empty weights at encode time). The frozen models
    (VAE, text encoder, Same2X teacher) and the trained transformer, which ``prepare`` shards itself, are loaded
    with the registration lifted.
    """
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None or plugin.zero_stage != 3:
        yield
        return
    from transformers.integrations import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        plugin.set_deepspeed_weakref()


def resolve_same_id_checkpoint(path: str) -> tuple[str, str | None]:
    """(transformer folder, pretrained pipeline recorded by stage 1 or None) of a stage-1 output/checkpoint."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"--same-id-checkpoint {path} does not exist; pass the stage-1 --output-dir")
    recorded = None
    for state in (p / ARGS_FILE, p.parent / ARGS_FILE, p.parent.parent / ARGS_FILE):
        if state.is_file():
            with loading(f"--same-id-checkpoint {path}: {state}", hint="pass --pretrained, or rerun stage 1"):
                recorded = json.loads(state.read_text()).get("pretrained")
            break
    if (p / "config.json").is_file():
        found = p
    elif (p / "transformer" / "config.json").is_file():
        found = p / "transformer"
    elif (latest := latest_checkpoint(p / "checkpoints")) is not None:
        found = latest / "transformer"
    else:
        raise InputError(f"--same-id-checkpoint {path} holds no transformer/ and no checkpoints/; pass the stage-1 "
                         "output")
    check_model_folder(found, hint="pass another checkpoint of the stage-1 run, or rerun stage 1")
    return str(found), recorded


# ------------------------------------------------------------------------------------------------ inputs

_FRAME_KEYS = ("latents", "pose_latents", "face_latents", "body_mask", "face_mask", "pseudo_pose_latents",
               "pseudo_face_latents")


def pad_batch_frames(batch: dict, patch_size_t: int | None) -> dict:
    """Make the latent frame count a multiple of ``patch_size_t`` exactly as the pipeline does at inference
    (``directanimator.latents.pad_latent_frames``: first frame repeated in front; the image latent then sits in
    that first slot)."""
    from directanimator.latents import pad_latent_frames

    out = dict(batch)
    for key in _FRAME_KEYS:
        if key in batch:
            out[key] = pad_latent_frames(batch[key], patch_size_t, mode="repeat")[0]
    return out


def prepare_step(batch: dict, scheduler, dtype, generator=None) -> dict:
    """Noise, timesteps and the I2V input for one batch (shared by student and teacher)."""
    latents = batch["latents"].to(dtype)
    bsz = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (bsz,), generator=generator,
                              device=latents.device).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    image = batch["image_latents"].to(dtype)
    padding = image.new_zeros(bsz, latents.shape[1] - image.shape[1], *image.shape[2:])
    model_input = torch.cat([noisy, torch.cat([image, padding], dim=1)], dim=2)
    return {"latents": latents, "noisy": noisy, "timesteps": timesteps, "model_input": model_input}


def run_model(model, step: dict, batch: dict, prefix: str, dtype, rope, block: int | None = None,
              stop: bool = False):
    """Call a CueFusion transformer on a prepared step with the cues ``<prefix>pose_latents`` etc."""
    # a DeepSpeed engine has a ``config`` of its own (its JSON dict): read the wrapped model's, as for DDP
    config = getattr(model, "module", model).config
    ofs = step["model_input"].new_full((1,), 2.0) if config.ofs_embed_dim else None

    def get(key):  # a cue left out by --drop-cues is absent from the batch: the model gets None
        return batch[key].to(dtype) if key in batch else None

    return model(
        hidden_states=step["model_input"],
        encoder_hidden_states=batch["prompt_embeds"].to(dtype),
        timestep=step["timesteps"],
        pose_latents=get(prefix + "pose_latents"),
        body_mask=get("body_mask"),
        face_latents=get(prefix + "face_latents"),
        face_mask=get("face_mask"),
        ofs=ofs,
        image_rotary_emb=rope,
        return_block_tokens=block,
        stop_at_block=stop,
        return_dict=True,
    )


DROPPABLE_CUES = {"face": ("face_latents", "pseudo_face_latents", "face_mask"),
                  "location": ("body_mask", "face_mask")}


def parse_drop_cues(text: str) -> set[str]:
    """The cue names of ``--drop-cues`` ("" -> none); InputError for an unknown name."""
    names = {t.strip() for t in (text or "").split(",") if t.strip()}
    unknown = names - set(DROPPABLE_CUES)
    if unknown:
        raise InputError(f"--drop-cues: unknown cue(s) {sorted(unknown)}; use a comma list of {sorted(DROPPABLE_CUES)}")
    return names


def drop_captions(batch: dict, empty: torch.Tensor, probability: float) -> dict:
    """Replace each sample's ``prompt_embeds`` by ``empty`` (the empty caption's [L, D]) with ``probability``.

    The draw uses the global RNG of the batch's device, which ``save_state`` stores, so resume stays exact.
    """
    if probability <= 0:
        return batch
    embeds = batch["prompt_embeds"]
    drop = torch.rand(embeds.shape[0], device=embeds.device) < probability
    return {**batch, "prompt_embeds": torch.where(drop[:, None, None], empty.to(embeds), embeds)}


def drop_cues(batch: dict, names: set[str]) -> dict:
    """The batch without the tensors of the dropped cues (the model then treats them as absent)."""
    gone = {key for name in names for key in DROPPABLE_CUES[name]}
    return {k: v for k, v in batch.items() if k not in gone} if gone else batch


# ------------------------------------------------------------------------------------------------ checkpoints

def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint-<step> folder with the highest step in ``folder`` (temp folders ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and (p / STATE_FILE).is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None


def _owned_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the CPU, holding its own storage.

    DeepSpeed's ZeRO-3 gathered state dict takes ``param.cpu()``, which copies nothing on CPU processes: the values
    stay views into the flat buffer the parameters were gathered in, which safetensors refuses to write.
    """
    tensor = tensor.detach().to("cpu").contiguous()
    return tensor if tensor.untyped_storage().nbytes() == tensor.nbytes else tensor.clone()


def save_transformer(model, state_dict: dict, folder: Path) -> None:
    """Write a ``from_pretrained``-loadable transformer folder (config + safetensors shards) from a FULL state dict.

    diffusers' ``save_pretrained`` reads ``model.state_dict()`` itself, which under FSDP2 / ZeRO-3 holds only this
    process's shards; ``accelerator.get_state_dict`` gathers the whole one, written here in diffusers' layout.
    """
    from huggingface_hub import save_torch_state_dict

    folder.mkdir(parents=True, exist_ok=True)
    model.save_config(str(folder))
    tensors = {k: _owned_cpu(v) for k, v in state_dict.items()}
    save_torch_state_dict(tensors, folder, filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
                          max_shard_size="10GB", metadata={"format": "pt"})


def _params_finite(model) -> bool:
    """Every parameter finite (this process's shards for FSDP2 DTensors)."""
    return all(bool(torch.isfinite(p.to_local() if hasattr(p, "to_local") else p).all()) for p in model.parameters())


def save_checkpoint(accelerator, transformer, ema, output_dir: Path, state: dict, total_limit: int) -> Path | None:
    """Write checkpoint-<step> atomically: save_state + transformer/ (+ transformer_ema/) + trainer_state.json."""
    unwrapped = accelerator.unwrap_model(transformer)
    finite = torch.tensor(1.0 if _params_finite(unwrapped) else 0.0, device=accelerator.device)
    if accelerator.reduce(finite, "min").item() < 1:
        logger.warning("weights are not finite at step %d: checkpoint NOT written", state["global_step"])
        return None
    folder = output_dir / "checkpoints"
    final = folder / f"checkpoint-{state['global_step']:07d}"
    tmp = folder / f".tmp-checkpoint-{state['global_step']:07d}"
    # a full disk: the half-written temp folder goes, the previous checkpoint stays, one error line says so
    with writing(f"checkpoint {final}", folder, partial=tmp, kept=lambda: _kept(output_dir)):
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "accelerate"))
        state_dict = accelerator.get_state_dict(transformer)
        if accelerator.is_main_process:
            save_transformer(unwrapped, state_dict, tmp / "transformer")
            if ema is not None:
                ema.store(unwrapped.parameters())
                ema.copy_to(unwrapped.parameters())
                unwrapped.save_pretrained(str(tmp / "transformer_ema"), safe_serialization=True)
                ema.restore(unwrapped.parameters())
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        keep = sorted((p for p in folder.iterdir() if p.name.startswith("checkpoint-")),
                      key=lambda p: int(p.name.split("-")[1]))
        for old in keep[: max(0, len(keep) - total_limit)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


# ------------------------------------------------------------------------------------------------ validation

def write_validation_video(accelerator, components: Components, transformer, cues_dir: Path, caption: str,
                           path: Path, steps: int, seed: int, ema=None) -> None:
    """Run the pipeline on the held-out sample's cues and write an mp4 (main process, RNG untouched; the EMA
    weights when EMA is on)."""
    from directanimator.cues import DrivingCues
    from directanimator.pipeline import DirectAnimatorPipeline
    from directanimator.video import write_video

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


# ------------------------------------------------------------------------------------------------ the loop

def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def accelerator_placement(environ=os.environ) -> dict:
    """``Accelerator`` arguments that place the processes (device + process-group backend) for this launch.

    environ: the environment ``accelerate launch`` set (``ACCELERATE_USE_DEEPSPEED``) for this process.
    With CUDA or MPS, accelerate's own choice stands (empty dict). Without one, ``cpu=True`` makes a
    torchrun/``accelerate launch`` multi-process run use gloo (MULTI_CPU), except under a DeepSpeed launch: there
    ``cpu=True`` would silently drop DeepSpeed (accelerate then trains plain DDP), so DeepSpeed keeps the process
    group and is told to use gloo, without which accelerate finds no backend and every process believes it is alone.
    """
    from accelerate.utils import InitProcessGroupKwargs

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    if environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return {"cpu": False, "kwargs_handlers": [InitProcessGroupKwargs(backend="gloo")]}
    return {"cpu": True}


def _make_optimizer(args, params):
    if args.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise InputError("--use-8bit-adam needs bitsandbytes: pip install bitsandbytes (GPU only)") from exc
        cls = bnb.optim.AdamW8bit
    else:
        cls = torch.optim.AdamW
    return cls(params, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
               weight_decay=args.adam_weight_decay, eps=args.adam_epsilon)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past ``step`` (written by a run that died after its last checkpoint)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if _metric_step(ln) <= step]
    path.write_text("".join(ln + "\n" for ln in lines))


def _metric_step(line: str) -> float:
    """The step of a metrics.jsonl line; inf for a line cut short by a kill or a full disk (dropped on resume)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


def _kept(output_dir: Path) -> str:
    """What a failed write leaves intact, for its error line."""
    last = latest_checkpoint(output_dir / "checkpoints")
    return (f"the last checkpoint {last} is intact: rerun with --resume latest" if last is not None
            else "no checkpoint was written yet")


def train(args: argparse.Namespace, stage: str) -> Path:
    """Run one stage ("same_id" or "same2x") to ``args.max_steps``; return the final transformer folder."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from directanimator.losses import denoising_loss, s2x_loss
    from trainers.dataset import load_dataset
    from trainers.precompute import CachedSamples, Precomputer, PrecomputeSettings, collate, encode_prompt
    from trainers.sampler import BucketBatchSampler, ContinuousBatches

    same2x = stage == "same2x"
    output_dir = Path(args.output_dir)
    dropped_cues = parse_drop_cues(getattr(args, "drop_cues", ""))
    # the paths, model folders and the checkpoint to resume from, before anything is loaded or written
    teacher_path, resume_from = check_training_run(args, stage)
    with loading("the accelerate launch configuration", extra=(ValueError, ImportError),
                 hint="check the --config_file given to `accelerate launch` (working ones are in configs/accelerate/)"):
        accelerator = Accelerator(
            **accelerator_placement(),
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            mixed_precision=_mixed_precision(args.mixed_precision),
            log_with=None if args.report_to == "none" else args.report_to,
            project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        )
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    set_seed(args.seed, device_specific=True)  # different noise on each rank
    weight_dtype = torch.bfloat16 if accelerator.mixed_precision == "bf16" else torch.float32
    device = accelerator.device

    # ---- data + models
    dataset = load_dataset(args.hub_dataset, require_pseudo=same2x, revision=args.hub_revision,
                           check_readable=not args.no_verify_media)
    with whole_models(accelerator):
        components = load_components(args.pretrained,
                                     transformer_path=teacher_path or getattr(args, "transformer", None),
                                     encoder_dtype=weight_dtype)
    transformer = components.transformer
    teacher = None
    if same2x:
        n_blocks = len(transformer.transformer_blocks)
        if not 1 <= args.align_depth <= n_blocks:
            raise InputError(f"--align-depth must be in 1..{n_blocks} for this model, got {args.align_depth}")
        # the frozen same-ID model: a separate copy of the stage-1 weights, never wrapped, never optimised
        with whole_models(accelerator), loading(f"the stage-1 transformer in {teacher_path}"):
            teacher = type(transformer).from_pretrained(teacher_path, use_safetensors=True, dtype=weight_dtype)
        teacher.requires_grad_(False).eval().to(device)

    settings = PrecomputeSettings(
        num_frames=args.num_frames, long_side=args.long_side, fps=args.fps, segmenter=args.segmenter,
        face_detector=args.face_detector, lowpass=args.lowpass, face_enlarge=args.face_enlarge, grid=args.grid,
        max_text_length=transformer.config.max_text_seq_length, storage_dtype=args.cache_dtype,
        pose_mode=getattr(args, "pose_cue", "gray"),
        face_mode=getattr(args, "face_cue", "centred").replace("-", "_"),
    )
    cache_dir = args.cache_dir or os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")),
                                               "directanimator", "precompute")
    components.vae.to(device)
    components.text_encoder.to(device)
    pre = Precomputer(cache_dir, settings, components.vae, components.tokenizer, components.text_encoder)
    train_clips = dataset.split("train")
    bar = tqdm(total=100, desc="precompute", disable=not accelerator.is_local_main_process)

    def progress(fraction, desc):
        bar.n = int(100 * fraction)
        bar.set_postfix_str(desc[-40:])
        bar.refresh()

    with writing(f"the precompute cache in {cache_dir}", cache_dir, kept="the entries already written are kept"):
        entries = pre.run(train_clips, with_pseudo=same2x, rank=accelerator.process_index,
                          world_size=accelerator.num_processes, progress=progress,
                          barrier=accelerator.wait_for_everyone, max_failed=args.max_skipped_clips)
    bar.close()
    validation_clip = (dataset.split("test") or train_clips)[0]
    # keyed like the cache, so a changed setting never validates on stale cues
    validation_key = pre.sample_key(validation_clip)
    validation_cues = Path(cache_dir) / "validation" / f"cues-{validation_key}"
    if args.validation_steps and accelerator.is_main_process and not (validation_cues / "cues.json").exists():
        pre.compute_sample(validation_clip, Path(cache_dir) / "validation" / f"{validation_key}.safetensors",
                           cues_dir=validation_cues)
    accelerator.wait_for_everyone()
    empty_caption = None
    if args.caption_dropout > 0:
        with torch.no_grad():
            empty_caption = encode_prompt(components.tokenizer, components.text_encoder, "",
                                          max_length=transformer.config.max_text_seq_length).to(device)
    # the encoders are only needed again for validation: keep them off the accelerator
    components.vae.to("cpu")
    components.text_encoder.to("cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()

    if args.dataloader_num_workers is None:
        args.dataloader_num_workers = 2 if device.type == "cuda" else 0
    samples = CachedSamples(entries, with_pseudo=same2x, seed=args.seed)
    try:
        sampler = BucketBatchSampler([e.bucket for e in entries], args.train_batch_size,
                                     num_replicas=accelerator.num_processes, rank=accelerator.process_index,
                                     seed=args.seed)
    except ValueError as exc:
        raise InputError(f"--train-batch-size {args.train_batch_size}: {exc}") from exc
    loader = torch.utils.data.DataLoader(
        samples, batch_sampler=ContinuousBatches(sampler, start=0), collate_fn=collate, num_workers=args.dataloader_num_workers,
        pin_memory=device.type == "cuda", persistent_workers=args.dataloader_num_workers > 0,
        generator=torch.Generator().manual_seed(args.seed),  # keeps the global RNG untouched (exact resume)
    )

    # ---- optimisation
    if args.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.requires_grad_(True).train()
    transformer.to(device)
    params = [p for p in transformer.parameters() if p.requires_grad]
    if teacher is not None:  # the frozen teacher must never be optimised (it is a separate copy)
        assert not {id(p) for p in teacher.parameters()} & {id(p) for p in params}
    optimizer = _make_optimizer(args, params)
    # accelerate steps a prepared scheduler once per process per optimizer step (diffusers examples do the same)
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=args.max_steps * accelerator.num_processes)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = args.train_batch_size
    transformer, optimizer, lr_scheduler = accelerator.prepare(transformer, optimizer, lr_scheduler)
    # FSDP2 swaps the parameters for sharded ones: clip what the optimizer now holds
    params = [p for p in transformer.parameters() if p.requires_grad]
    ema = None
    sharded = accelerator.distributed_type == DistributedType.FSDP or (
        accelerator.distributed_type == DistributedType.DEEPSPEED
        and accelerator.state.deepspeed_plugin.zero_stage == 3)
    if args.use_ema and sharded:
        raise InputError("--use-ema needs whole weights on each process: use it with one GPU, DDP or ZeRO-2, "
                         "not FSDP or ZeRO-3")
    if args.use_ema:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(accelerator.unwrap_model(transformer).parameters(), decay=args.ema_decay)
        ema.to(device)
        accelerator.register_for_checkpointing(ema)

    # ---- resume
    global_step, micro_step, nan_streak = 0, 0, 0
    metrics_path = output_dir / "metrics.jsonl"
    if args.resume:
        ckpt = resume_from
        if ckpt is None:
            logger.info("--resume latest: no checkpoint in %s, starting fresh", output_dir / "checkpoints")
        else:
            # a checkpoint of another model or a damaged file fails here (RuntimeError: size mismatch, bad zip)
            with loading(f"the checkpoint {ckpt}", extra=(RuntimeError, KeyError, ValueError, pickle.UnpicklingError),
                         hint="resume from an earlier checkpoint or start again without --resume"):
                accelerator.load_state(str(ckpt / "accelerate"))
            state = json.loads((ckpt / STATE_FILE).read_text())
            global_step, micro_step, nan_streak = state["global_step"], state["micro_step"], state["nan_streak"]
            logger.info("resumed from %s at step %d", ckpt, global_step)
    if accelerator.is_main_process:
        with writing(f"the run folder {output_dir}", output_dir):
            output_dir.mkdir(parents=True, exist_ok=True)
            _truncate_metrics(metrics_path, global_step)
            saved = {k: v for k, v in vars(args).items()}
            saved["stage"] = stage
            (output_dir / ARGS_FILE).write_text(json.dumps(saved, indent=2, default=str))
            accelerator.init_trackers(f"directanimator-{stage}", config={k: v for k, v in saved.items()
                                                                          if isinstance(v, (int, float, str, bool))})

    batches_per_epoch = len(sampler)
    config = accelerator.unwrap_model(transformer).config
    alphas_cumprod = components.scheduler.alphas_cumprod.to(device)
    progress_bar = tqdm(total=args.max_steps, initial=global_step, desc=stage,
                        disable=not accelerator.is_local_main_process)
    window = {"denoise": [], "s2x": []}
    poisoned = False
    data_wait = 0.0
    step_start = time.perf_counter()
    stop_at = args.stop_at_step if args.stop_at_step is not None else args.max_steps

    def state_dict_for_save():
        return {"global_step": global_step, "micro_step": micro_step, "nan_streak": nan_streak, "stage": stage,
                "pretrained": args.pretrained, "batches_per_epoch": batches_per_epoch}

    loader.batch_sampler.start = micro_step  # resume: the same stream of batches, from where it stopped
    batches = iter(loader)
    while global_step < stop_at:
        fetch_start = time.perf_counter()
        batch = next(batches)
        data_wait += time.perf_counter() - fetch_start
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        batch = pad_batch_frames(drop_cues(batch, dropped_cues), config.patch_size_t)
        if empty_caption is not None:
            batch = drop_captions(batch, empty_caption, args.caption_dropout)
        with accelerator.accumulate(transformer):
            step = prepare_step(batch, components.scheduler, weight_dtype)
            h, w = step["latents"].shape[-2:]
            rope = vision_rotary_embedding(config, step["latents"].shape[1], h, w, device)
            with accelerator.autocast():
                out = run_model(transformer, step, batch, "pseudo_" if same2x else "", weight_dtype, rope,
                                block=args.align_depth if same2x else None)
                loss_denoise = denoising_loss(out.sample, step["noisy"], step["latents"], step["timesteps"],
                                              alphas_cumprod)
                loss = loss_denoise
                loss_s2x = torch.zeros((), device=device)
                if same2x:
                    with torch.no_grad():
                        teacher_out = run_model(teacher, step, batch, "", weight_dtype, rope,
                                                block=args.align_depth, stop=True)
                    loss_s2x = s2x_loss(out.block_tokens, teacher_out.block_tokens)
                    loss = loss + args.s2x_weight * loss_s2x
            bad = torch.tensor(0.0 if torch.isfinite(loss).item() else 1.0, device=device)
            if accelerator.num_processes > 1:
                bad = accelerator.reduce(bad, "max")
            if bad.item() > 0:
                poisoned = True  # every rank skips backward and the whole accumulation window
            else:
                accelerator.backward(loss)
                window["denoise"].append(loss_denoise.detach().float())
                window["s2x"].append(loss_s2x.detach().float())
            grad_norm = None
            if accelerator.sync_gradients:
                if not poisoned:
                    grad_norm = accelerator.clip_grad_norm_(params, args.max_grad_norm)
                    if grad_norm is not None and not torch.isfinite(torch.as_tensor(grad_norm)).all():
                        poisoned = True
                if not poisoned:
                    optimizer.step()
                    lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        micro_step += 1
        if accelerator.sync_gradients:
            if poisoned:
                nan_streak += 1
                logger.warning("non-finite loss or gradient: optimizer step skipped (%d in a row)", nan_streak)
                poisoned = False
                window = {"denoise": [], "s2x": []}
                if nan_streak >= args.max_nan_steps:
                    accelerator.end_training()
                    raise TrainingStopped(
                        f"stopped: {nan_streak} non-finite steps in a row (--max-nan-steps); no checkpoint "
                        "was written from them. Lower --learning-rate or check the data."
                    )
            else:
                nan_streak = 0
                global_step += 1
                if ema is not None:
                    ema.step(accelerator.unwrap_model(transformer).parameters())
                logs = {
                    "loss/denoise": accelerator.reduce(torch.stack(window["denoise"]).mean(), "mean").item(),
                    "loss/s2x": accelerator.reduce(torch.stack(window["s2x"]).mean(), "mean").item(),
                    "lr": lr_scheduler.get_last_lr()[0],
                    "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                }
                logs["loss/total"] = logs["loss/denoise"] + (args.s2x_weight * logs["loss/s2x"] if same2x else 0.0)
                if not same2x:
                    logs.pop("loss/s2x")
                elapsed = time.perf_counter() - step_start
                logs["time/step_s"] = elapsed
                logs["time/data_wait_s"] = data_wait
                step_start, data_wait = time.perf_counter(), 0.0
                window = {"denoise": [], "s2x": []}
                accelerator.log(logs, step=global_step)
                if accelerator.is_main_process:
                    with writing(str(metrics_path), output_dir, kept=lambda: _kept(output_dir)), \
                            open(metrics_path, "a") as fh:
                        fh.write(json.dumps({"step": global_step, **logs}) + "\n")
                progress_bar.update(1)
                progress_bar.set_postfix(loss=f"{logs['loss/total']:.4f}")
                if global_step % args.checkpointing_steps == 0 or global_step == args.max_steps:
                    save_checkpoint(accelerator, transformer, ema, output_dir, state_dict_for_save(),
                                    args.checkpoints_total_limit)
                if args.validation_steps and global_step % args.validation_steps == 0:
                    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
                        logger.warning("validation videos are skipped with sharded weights (FSDP/DeepSpeed)")
                    elif accelerator.is_main_process:
                        write_validation_video(accelerator, components, transformer, validation_cues,
                                               validation_clip.caption,
                                               output_dir / "validation" / f"step-{global_step:07d}.mp4",
                                               args.validation_inference_steps, args.seed, ema=ema)
                    accelerator.wait_for_everyone()
    progress_bar.close()
    del batches  # stops the dataloader workers

    final = output_dir / "transformer"
    if global_step >= args.max_steps:
        unwrapped = accelerator.unwrap_model(transformer)
        state_dict = accelerator.get_state_dict(transformer)
        if accelerator.is_main_process and all(bool(torch.isfinite(v).all()) for v in state_dict.values()
                                               if v.is_floating_point()):
            tmp = output_dir / ".tmp-transformer"
            with writing(f"the final transformer {final}", output_dir, partial=tmp, kept=lambda: _kept(output_dir)):
                shutil.rmtree(tmp, ignore_errors=True)
                save_transformer(unwrapped, state_dict, tmp)
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def main(stage: str, argv=None) -> int:
    """CLI entry for a stage: parse, train, print errors as one line (exit code 2)."""
    parser = ArgumentParser(
        prog=f"python -m trainers.{stage}",
        description={"same_id": "Stage 1 (same-ID): reference and cues from the same clip, denoising loss.",
                     "same2x": "Stage 2 (Same2X): pseudo cross-ID cues + S2X alignment to the frozen stage-1 model."}[stage],
    )
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
    try:
        args = parser.parse_args(argv)
        if args.verbose:
            set_verbose()
        final = train(args, stage)
    except InputError as exc:
        close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done: {final}")
    return 0
