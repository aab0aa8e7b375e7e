"""``Trainer``: the training loop of the same-ID stage, on accelerate; ``trainers.same2x.Same2XTrainer`` specialises
it with the frozen teacher and the S2X term (the shape of CogVideo's fine-tuning trainer: set-up, resume, ``fit``,
``compute_loss``, checkpointing).

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

import json
import logging
import os
import pickle
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs, ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from directanimator.errors import InputError, run_cli
from directanimator.losses import denoising_loss
from directanimator.quiet import set_verbose
from directanimator.rope import vision_rotary_embedding
from trainers.args import build_parser
from trainers.batch import drop_captions, drop_cues, pad_batch_frames, parse_drop_cues, prepare_step, run_model
from trainers.checkpoints import ARGS_FILE, STATE_FILE, _kept, save_checkpoint, save_final_transformer, \
    truncate_metrics
from trainers.cli_checks import check_training_run, loading, writing
from trainers.components import load_components, whole_models
from trainers.dataset import load_dataset
from trainers.precompute import CachedSamples, Precomputer, PrecomputeSettings, collate, encode_prompt
from trainers.sampler import BucketBatchSampler, ContinuousBatches
from trainers.validation import write_validation_video

__all__ = ["Trainer", "TrainingStopped", "accelerator_placement", "run"]

logger = logging.getLogger("trainers")


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (too many non-finite steps in a row); nothing poisoned was saved."""


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
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    if environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return {"cpu": False, "kwargs_handlers": [InitProcessGroupKwargs(backend="gloo")]}
    return {"cpu": True}


def _make_optimizer(args, params):
    if args.use_8bit_adam:
        try:
            import bitsandbytes as bnb  # optional (GPU only)
        except ImportError as exc:
            raise InputError("--use-8bit-adam needs bitsandbytes: pip install bitsandbytes (GPU only)") from exc
        cls = bnb.optim.AdamW8bit
    else:
        cls = torch.optim.AdamW
    return cls(params, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
               weight_decay=args.adam_weight_decay, eps=args.adam_epsilon)


def default_cache_dir() -> str:
    """Where precomputed samples go without ``--cache-dir``: ``$XDG_CACHE_HOME/directanimator/precompute``."""
    return os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "directanimator",
                        "precompute")


class Trainer:
    """The same-ID stage: reference and cues from the same clip, the denoising loss only.

    ``Trainer(args).fit()`` runs ``setup()`` (accelerator, data, models, the precompute cache, the data loader, the
    optimiser, resume) and trains to ``--max-steps``; it returns the final ``transformer/`` folder. Subclasses change
    ``stage``, ``with_pseudo`` (the dataset's pseudo cross-ID videos), ``cue_prefix`` (which cues the trained model
    sees), ``student_block`` and ``compute_loss``.
    """

    stage = "same_id"
    with_pseudo = False
    cue_prefix = ""
    loss_names = ("denoise",)

    def __init__(self, args):
        self.args = args
        self.output_dir = Path(args.output_dir)
        self.dropped_cues = parse_drop_cues(getattr(args, "drop_cues", ""))
        # the paths, model folders and the checkpoint to resume from, before anything is loaded or written
        self.teacher_path, self.resume_from = check_training_run(args, self.stage)
        self.global_step = self.micro_step = self.nan_streak = 0

    # ------------------------------------------------------------------------------------------------ set-up

    def setup(self) -> None:
        self.setup_accelerator()
        self.load_models()
        self.prepare_data()
        self.setup_optimisation()
        self.resume()
        self.start_run_folder()

    def setup_accelerator(self) -> None:
        args = self.args
        with loading("the accelerate launch configuration", extra=(ValueError, ImportError),
                     hint="check the --config_file given to `accelerate launch` (working ones are in "
                          "configs/accelerate/)"):
            self.accelerator = Accelerator(
                **accelerator_placement(),
                gradient_accumulation_steps=args.gradient_accumulation_steps,
                mixed_precision=_mixed_precision(args.mixed_precision),
                log_with=None if args.report_to == "none" else args.report_to,
                project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                    logging_dir=str(self.output_dir / "logs")),
            )
        logging.basicConfig(level=logging.INFO if self.accelerator.is_main_process else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(message)s")
        set_seed(args.seed, device_specific=True)  # different noise on each rank
        self.weight_dtype = torch.bfloat16 if self.accelerator.mixed_precision == "bf16" else torch.float32
        self.device = self.accelerator.device

    def initial_transformer_path(self) -> str | None:
        """The transformer folder to start from (``--transformer``), instead of the pipeline's own."""
        return getattr(self.args, "transformer", None)

    def load_models(self) -> None:
        args = self.args
        self.dataset = load_dataset(args.hub_dataset, require_pseudo=self.with_pseudo, revision=args.hub_revision,
                                    check_readable=not args.no_verify_media)
        with whole_models(self.accelerator):
            self.components = load_components(args.pretrained, transformer_path=self.initial_transformer_path(),
                                              encoder_dtype=self.weight_dtype)
        self.transformer = self.components.transformer

    def prepare_data(self) -> None:
        """Precompute (or find in the cache) every training sample's latents, then build the data loader."""
        args, accelerator, components, device = self.args, self.accelerator, self.components, self.device
        transformer = self.transformer
        settings = PrecomputeSettings(
            num_frames=args.num_frames, long_side=args.long_side, fps=args.fps, segmenter=args.segmenter,
            face_detector=args.face_detector, lowpass=args.lowpass, face_enlarge=args.face_enlarge, grid=args.grid,
            max_text_length=transformer.config.max_text_seq_length, storage_dtype=args.cache_dtype,
            pose_mode=getattr(args, "pose_cue", "gray"),
            face_mode=getattr(args, "face_cue", "centred").replace("-", "_"),
        )
        cache_dir = args.cache_dir or default_cache_dir()
        components.vae.to(device)
        components.text_encoder.to(device)
        pre = Precomputer(cache_dir, settings, components.vae, components.tokenizer, components.text_encoder)
        train_clips = self.dataset.split("train")
        bar = tqdm(total=100, desc="precompute", disable=not accelerator.is_local_main_process)

        def progress(fraction, desc):
            bar.n = int(100 * fraction)
            bar.set_postfix_str(desc[-40:])
            bar.refresh()

        with writing(f"the precompute cache in {cache_dir}", cache_dir, kept="the entries already written are kept"):
            entries = pre.run(train_clips, with_pseudo=self.with_pseudo, rank=accelerator.process_index,
                              world_size=accelerator.num_processes, progress=progress,
                              barrier=accelerator.wait_for_everyone, max_failed=args.max_skipped_clips)
        bar.close()
        self.validation_clip = (self.dataset.split("test") or train_clips)[0]
        # keyed like the cache, so a changed setting never validates on stale cues
        validation_key = pre.sample_key(self.validation_clip)
        self.validation_cues = Path(cache_dir) / "validation" / f"cues-{validation_key}"
        if args.validation_steps and accelerator.is_main_process and not (self.validation_cues / "cues.json").exists():
            pre.compute_sample(self.validation_clip, Path(cache_dir) / "validation" / f"{validation_key}.safetensors",
                               cues_dir=self.validation_cues)
        accelerator.wait_for_everyone()
        self.empty_caption = None
        if args.caption_dropout > 0:
            with torch.no_grad():
                self.empty_caption = encode_prompt(components.tokenizer, components.text_encoder, "",
                                                   max_length=transformer.config.max_text_seq_length).to(device)
        # the encoders are only needed again for validation: keep them off the accelerator
        components.vae.to("cpu")
        components.text_encoder.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()

        if args.dataloader_num_workers is None:
            args.dataloader_num_workers = 2 if device.type == "cuda" else 0
        samples = CachedSamples(entries, with_pseudo=self.with_pseudo, seed=args.seed)
        try:
            self.sampler = BucketBatchSampler([e.bucket for e in entries], args.train_batch_size,
                                              num_replicas=accelerator.num_processes, rank=accelerator.process_index,
                                              seed=args.seed)
        except ValueError as exc:
            raise InputError(f"--train-batch-size {args.train_batch_size}: {exc}") from exc
        self.loader = torch.utils.data.DataLoader(
            samples, batch_sampler=ContinuousBatches(self.sampler, start=0), collate_fn=collate,
            num_workers=args.dataloader_num_workers, pin_memory=device.type == "cuda",
            persistent_workers=args.dataloader_num_workers > 0,
            generator=torch.Generator().manual_seed(args.seed),  # keeps the global RNG untouched (exact resume)
        )

    def trained_parameters(self) -> list:
        return [p for p in self.transformer.parameters() if p.requires_grad]

    def setup_optimisation(self) -> None:
        args, accelerator, transformer = self.args, self.accelerator, self.transformer
        if args.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        transformer.requires_grad_(True).train()
        transformer.to(self.device)
        optimizer = _make_optimizer(args, self.trained_parameters())
        # accelerate steps a prepared scheduler once per process per optimizer step (diffusers examples do the same)
        lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                     num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
                                     num_training_steps=args.max_steps * accelerator.num_processes)
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            ds = accelerator.state.deepspeed_plugin.deepspeed_config
            ds["train_micro_batch_size_per_gpu"] = args.train_batch_size
        self.transformer, self.optimizer, self.lr_scheduler = accelerator.prepare(transformer, optimizer,
                                                                                  lr_scheduler)
        # FSDP2 swaps the parameters for sharded ones: clip what the optimizer now holds
        self.params = self.trained_parameters()
        self.ema = None
        sharded = accelerator.distributed_type == DistributedType.FSDP or (
            accelerator.distributed_type == DistributedType.DEEPSPEED
            and accelerator.state.deepspeed_plugin.zero_stage == 3)
        if args.use_ema and sharded:
            raise InputError("--use-ema needs whole weights on each process: use it with one GPU, DDP or ZeRO-2, "
                             "not FSDP or ZeRO-3")
        if args.use_ema:
            self.ema = EMAModel(accelerator.unwrap_model(self.transformer).parameters(), decay=args.ema_decay)
            self.ema.to(self.device)
            accelerator.register_for_checkpointing(self.ema)

    def resume(self) -> None:
        """Restore weights, optimiser, schedule, EMA, every RNG and the data position of ``--resume``."""
        if not self.args.resume:
            return
        ckpt = self.resume_from
        if ckpt is None:
            logger.info("--resume latest: no checkpoint in %s, starting fresh", self.output_dir / "checkpoints")
            return
        # a checkpoint of another model or a damaged file fails here (RuntimeError: size mismatch, bad zip)
        with loading(f"the checkpoint {ckpt}", extra=(RuntimeError, KeyError, ValueError, pickle.UnpicklingError),
                     hint="resume from an earlier checkpoint or start again without --resume"):
            self.accelerator.load_state(str(ckpt / "accelerate"))
        state = json.loads((ckpt / STATE_FILE).read_text())
        self.global_step, self.micro_step, self.nan_streak = state["global_step"], state["micro_step"], \
            state["nan_streak"]
        logger.info("resumed from %s at step %d", ckpt, self.global_step)

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / "metrics.jsonl"

    def start_run_folder(self) -> None:
        """The run folder, its arguments file and the trackers (main process); the metrics log is cut back to the
        step the run resumes at."""
        if not self.accelerator.is_main_process:
            return
        with writing(f"the run folder {self.output_dir}", self.output_dir):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            truncate_metrics(self.metrics_path, self.global_step)
            saved = {k: v for k, v in vars(self.args).items()}
            saved["stage"] = self.stage
            (self.output_dir / ARGS_FILE).write_text(json.dumps(saved, indent=2, default=str))
            self.accelerator.init_trackers(f"directanimator-{self.stage}",
                                           config={k: v for k, v in saved.items()
                                                   if isinstance(v, (int, float, str, bool))})

    # ------------------------------------------------------------------------------------------------ one step

    @property
    def student_block(self) -> int | None:
        """The block whose vision tokens the trained model also returns (Same2X's D), or None."""
        return None

    def compute_loss(self, step: dict, batch: dict, rope) -> tuple[torch.Tensor, dict[str, torch.Tensor], object]:
        """(loss to back-propagate, its named parts as logged, the trained model's output) for one micro-batch."""
        out = run_model(self.transformer, step, batch, self.cue_prefix, self.weight_dtype, rope,
                        block=self.student_block)
        denoise = denoising_loss(out.sample, step["noisy"], step["latents"], step["timesteps"], self.alphas_cumprod)
        return denoise, {"denoise": denoise}, out

    def total_loss(self, logs: dict) -> float:
        """``loss/total`` of a logged step from its parts."""
        return logs["loss/denoise"]

    def prepare_batch(self, batch: dict) -> dict:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch = pad_batch_frames(drop_cues(batch, self.dropped_cues), self.model_config.patch_size_t)
        if self.empty_caption is not None:
            batch = drop_captions(batch, self.empty_caption, self.args.caption_dropout)
        return batch

    def training_step(self, batch: dict) -> float | None:
        """Forward, backward and (at the end of an accumulation window) the optimizer step; returns the clipped
        gradient norm of an optimizer step, else None. A non-finite loss or gradient poisons the window."""
        accelerator, args = self.accelerator, self.args
        with accelerator.accumulate(self.transformer):
            step = prepare_step(batch, self.components.scheduler, self.weight_dtype)
            h, w = step["latents"].shape[-2:]
            rope = vision_rotary_embedding(self.model_config, step["latents"].shape[1], h, w, self.device)
            with accelerator.autocast():
                loss, parts, _ = self.compute_loss(step, batch, rope)
            bad = torch.tensor(0.0 if torch.isfinite(loss).item() else 1.0, device=self.device)
            if accelerator.num_processes > 1:
                bad = accelerator.reduce(bad, "max")
            if bad.item() > 0:
                self.poisoned = True  # every rank skips backward and the whole accumulation window
            else:
                accelerator.backward(loss)
                for name in self.loss_names:
                    self.window[name].append(parts[name].detach().float())
            grad_norm = None
            if accelerator.sync_gradients:
                if not self.poisoned:
                    grad_norm = accelerator.clip_grad_norm_(self.params, args.max_grad_norm)
                    if grad_norm is not None and not torch.isfinite(torch.as_tensor(grad_norm)).all():
                        self.poisoned = True
                if not self.poisoned:
                    self.optimizer.step()
                    self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    # ------------------------------------------------------------------------------------------------ the loop

    def fit(self) -> Path:
        """Set up, train to ``--max-steps`` (or the test-only ``--stop-at-step``) and return the final
        ``transformer/`` folder (written only when the run reached ``--max-steps``)."""
        self.setup()
        args, accelerator = self.args, self.accelerator
        self.model_config = accelerator.unwrap_model(self.transformer).config
        self.alphas_cumprod = self.components.scheduler.alphas_cumprod.to(self.device)
        self.progress_bar = tqdm(total=args.max_steps, initial=self.global_step, desc=self.stage,
                                 disable=not accelerator.is_local_main_process)
        self.window = {name: [] for name in self.loss_names}
        self.poisoned = False
        self.data_wait = 0.0
        self.step_start = time.perf_counter()
        stop_at = args.stop_at_step if args.stop_at_step is not None else args.max_steps
        self.loader.batch_sampler.start = self.micro_step  # resume: the same stream of batches, from there on
        batches = iter(self.loader)
        while self.global_step < stop_at:
            fetch_start = time.perf_counter()
            batch = next(batches)
            self.data_wait += time.perf_counter() - fetch_start
            grad_norm = self.training_step(self.prepare_batch(batch))
            self.micro_step += 1
            if accelerator.sync_gradients:
                self.end_optimizer_step(grad_norm)
        self.progress_bar.close()
        del batches  # stops the dataloader workers
        final = self.output_dir / "transformer"
        if self.global_step >= args.max_steps:
            final = save_final_transformer(accelerator, self.transformer, self.output_dir)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return final

    def end_optimizer_step(self, grad_norm) -> None:
        """After an accumulation window: count a skipped (non-finite) step, or log the step, update the EMA, and
        write the checkpoint and the validation video when they are due."""
        args, accelerator = self.args, self.accelerator
        if self.poisoned:
            self.nan_streak += 1
            logger.warning("non-finite loss or gradient: optimizer step skipped (%d in a row)", self.nan_streak)
            self.poisoned = False
            self.window = {name: [] for name in self.loss_names}
            if self.nan_streak >= args.max_nan_steps:
                accelerator.end_training()
                raise TrainingStopped(
                    f"stopped: {self.nan_streak} non-finite steps in a row (--max-nan-steps); no checkpoint "
                    "was written from them. Lower --learning-rate or check the data."
                )
            return
        self.nan_streak = 0
        self.global_step += 1
        if self.ema is not None:
            self.ema.step(accelerator.unwrap_model(self.transformer).parameters())
        self.log_step(grad_norm)
        if self.global_step % args.checkpointing_steps == 0 or self.global_step == args.max_steps:
            self.save_checkpoint()
        if args.validation_steps and self.global_step % args.validation_steps == 0:
            self.validate()

    def log_step(self, grad_norm) -> None:
        """The step's losses (mean over the window and the processes), lr, gradient norm and timings, to the
        trackers, ``metrics.jsonl`` and the progress bar."""
        accelerator = self.accelerator
        logs = {f"loss/{name}": accelerator.reduce(torch.stack(self.window[name]).mean(), "mean").item()
                for name in self.loss_names}
        logs["lr"] = self.lr_scheduler.get_last_lr()[0]
        logs["grad_norm"] = float(grad_norm) if grad_norm is not None else float("nan")
        logs["loss/total"] = self.total_loss(logs)
        logs["time/step_s"] = time.perf_counter() - self.step_start
        logs["time/data_wait_s"] = self.data_wait
        self.step_start, self.data_wait = time.perf_counter(), 0.0
        self.window = {name: [] for name in self.loss_names}
        accelerator.log(logs, step=self.global_step)
        if accelerator.is_main_process:
            with writing(str(self.metrics_path), self.output_dir, kept=lambda: _kept(self.output_dir)), \
                    open(self.metrics_path, "a") as fh:
                fh.write(json.dumps({"step": self.global_step, **logs}) + "\n")
        self.progress_bar.update(1)
        self.progress_bar.set_postfix(loss=f"{logs['loss/total']:.4f}")

    def state(self) -> dict:
        """What ``trainer_state.json`` records (with accelerate's state, all a resume needs)."""
        return {"global_step": self.global_step, "micro_step": self.micro_step, "nan_streak": self.nan_streak,
                "stage": self.stage, "pretrained": self.args.pretrained, "batches_per_epoch": len(self.sampler)}

    def save_checkpoint(self) -> Path | None:
        return save_checkpoint(self.accelerator, self.transformer, self.ema, self.output_dir, self.state(),
                               self.args.checkpoints_total_limit)

    def validate(self) -> None:
        accelerator = self.accelerator
        if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            logger.warning("validation videos are skipped with sharded weights (FSDP/DeepSpeed)")
        elif accelerator.is_main_process:
            write_validation_video(accelerator, self.components, self.transformer, self.validation_cues,
                                   self.validation_clip.caption,
                                   self.output_dir / "validation" / f"step-{self.global_step:07d}.mp4",
                                   self.args.validation_inference_steps, self.args.seed, ema=self.ema)
        accelerator.wait_for_everyone()


def run(trainer_class: type[Trainer], argv=None) -> int:
    """The CLI of a stage: parse, train, print errors as one line (exit code 2; 1 for a run stopped on purpose)."""
    parser = build_parser(trainer_class.stage)

    def work():
        args = parser.parse_args(argv)
        if args.verbose:
            set_verbose()
        return trainer_class(args).fit()

    return run_cli(work, stopped=(TrainingStopped,))
