"""``DirectAnimatorPipeline``: reference image + driving cues -> animated video (a diffusers ``DiffusionPipeline``).

It follows diffusers' ``CogVideoXImageToVideoPipeline`` (components, prompt encoding, image latent on channels,
CogVideoX1.5 latent padding, scheduler loop, CFG, callbacks, output types) and adds the driving cues:

- the pose cue (grayscale, repeated to RGB) and the face cue are VAE-encoded; the body and face location masks are
  averaged onto the latent grid (``directanimator.latents``); all four go to ``CueFusionTransformer3DModel``;
- classifier-free guidance acts on the text prompt only: the cues and the reference image are given to both the
  conditional and the unconditional pass, so guidance does not push the motion away from the driving video. When
  ``prompt == negative_prompt`` (the default, both empty) the two passes are identical, so the second one is skipped
  (the result is exactly the same, at half the cost);
- **long driving videos** are generated in overlapping windows of ``window_frames`` frames that are denoised
  together: at every step each window predicts its slice of one shared latent video and the predictions are
  cross-faded linearly over the ``window_overlap`` frames before a single scheduler step (MultiDiffusion-style
  latent blending). Blending the model outputs at every step, instead of cross-fading finished pixels, makes the
  windows agree on one video (cross-fading two independent samples ghosts: two people half-transparent on top of
  each other). Every frame is decoded once from the shared latents. A window's first latent is a one-frame latent
  for the model while in the long video it stands for four frames, so it gets weight 0 in the blend.

``from_pretrained`` takes a DirectAnimator folder (``model_index.json`` naming ``CueFusionTransformer3DModel``) or a
CogVideoX / CogVideoX1.5 image-to-video folder, whose transformer is turned into a CF-DiT with fresh (identity)
cue weights. Weights load from safetensors only. Both local folders and Hub repo ids (local cache first) work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXDPMScheduler, DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import T5EncoderModel, T5Tokenizer

from directanimator.errors import InputError
from directanimator.progress import ProgressFn
from directanimator.latents import (
    encode_image_latents,
    encode_video,
    latent_frame_count,
    masks_to_latent_grid,
    pad_latent_frames,
    vae_compression,
)
from directanimator.model_folders import check_pipeline_folder, resolve_model_folder, resolve_run_folder
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.rope import vision_rotary_embedding
from directanimator.sampling import SchedulerStepper
from directanimator.caching import cache_config, check_cache
from directanimator.decoding import iter_decode
from directanimator.windows import generation_windows, plan_windows
from directanimator.video import read_image, to_uint8_frames

__all__ = ["DirectAnimatorPipeline", "DirectAnimatorPipelineOutput", "plan_windows", "check_pipeline_folder"]



@dataclass
class DirectAnimatorPipelineOutput(BaseOutput):
    """Output of ``DirectAnimatorPipeline``.

    Args:
        frames: the videos, as diffusers video pipelines return them: ``"np"``: float32 ``[B, T, H, W, 3]`` in
            [0, 1]; ``"pt"``: ``[B, T, 3, H, W]``; ``"pil"``: a list (batch) of lists of PIL images; ``"latent"``:
            latents ``[B, F, C, h, w]``. ``frames[0]`` is the one video this pipeline makes.
    """

    frames: Any


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N, C, H, W] float -> [N, C, height, width] (antialiased bilinear; identity when the size matches)."""
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def _as_array(value, name: str, ndim: tuple[int, ...]) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        a = value.detach().cpu().numpy()
    elif hasattr(value, "frames") and hasattr(value, "shape"):
        a = value  # a lazily decoded cue array (cues.storage.FrameArray): windows read only their frames
    else:
        a = np.asarray(value)
    if a.ndim not in ndim:
        raise InputError(f"{name} must have {' or '.join(str(n) for n in ndim)} dimensions, got shape {a.shape}")
    return a


@dataclass
class _VideoPlan:
    """Sizes and generation windows of one call: ``windows`` as ``plan_windows`` returns them."""

    height: int
    width: int
    num_frames: int
    padded_frames: int
    total_latents: int
    windows: list[tuple[int, np.ndarray]]


@dataclass
class _Window:
    """One generation window: its latent indices in the shared state (padding latents first), its blend weights,
    the image latent (reference in slot 0) and the RoPE of its length."""

    index: torch.Tensor
    weights: torch.Tensor
    image_latents: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor] | None


class DirectAnimatorPipeline(DiffusionPipeline):
    r"""Human image animation driven by pose / face / location cues (DirectAnimator).

    Args:
        tokenizer: T5 tokenizer.
        text_encoder: T5 encoder (CogVideoX uses t5-v1_1-xxl).
        vae: ``AutoencoderKLCogVideoX``.
        transformer: ``CueFusionTransformer3DModel``.
        scheduler: ``CogVideoXDPMScheduler`` or ``CogVideoXDDIMScheduler``.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    # False steps with scheduler.step as diffusers' pipelines call it (same results, with host syncs): for tests and
    # bench/bench_model.py
    _sync_free_steps = True
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        tokenizer: T5Tokenizer,
        text_encoder: T5EncoderModel,
        vae: AutoencoderKLCogVideoX,
        transformer: CueFusionTransformer3DModel,
        scheduler: CogVideoXDPMScheduler | CogVideoXDDIMScheduler,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
        )
        self.vae_scale_factor_spatial, self.vae_scale_factor_temporal = vae_compression(self.vae.config)
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        self._interrupt = False
        self._guidance_scale = 1.0
        self._current_timestep = None

    # ------------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "DirectAnimatorPipeline":
        """Load a DirectAnimator (or CogVideoX image-to-video) pipeline folder or Hub repo id, safetensors only.

        Accepts the keyword arguments of ``DiffusionPipeline.from_pretrained`` (``dtype``, ...). A CogVideoX
        folder's transformer is converted with ``CueFusionTransformer3DModel.from_cogvideox`` (cue weights start at
        identity: the result animates nothing until fine-tuned).

        A training run folder (the trainers' ``--output-dir``, or a checkpoint in it) loads too: its transformer on
        the base pipeline recorded in its ``training_args.json`` (``model_folders.resolve_run_folder``).

        Raises:
            InputError: the folder or repo is missing, not a pipeline, or lacks safetensors weights; the message
                says what to download and where to put it.
        """
        if kwargs.pop("use_safetensors", True) is False:
            raise InputError("DirectAnimator loads safetensors weights only (use_safetensors=False is not supported)")
        if kwargs.get("trust_remote_code"):
            raise InputError("DirectAnimator never runs code from a model folder (trust_remote_code is refused)")
        run = resolve_run_folder(pretrained_model_name_or_path)
        if run is not None:  # a training run: its transformer on the base pipeline it was trained from
            pretrained_model_name_or_path, trained = run
            if "transformer" not in kwargs:
                dtypes = {k: kwargs[k] for k in ("dtype", "torch_dtype") if k in kwargs}
                kwargs["transformer"] = CueFusionTransformer3DModel.from_pretrained(trained, use_safetensors=True,
                                                                                    **dtypes)
        folder = resolve_model_folder(pretrained_model_name_or_path, component="pipeline")
        check_pipeline_folder(folder)
        try:
            pipe = super().from_pretrained(folder, use_safetensors=True, **kwargs)
        except (OSError, EnvironmentError) as e:
            raise InputError(f"could not load the pipeline in {folder} ({e}); re-download the model folder") from None
        if not isinstance(pipe.transformer, CueFusionTransformer3DModel):
            transformer = CueFusionTransformer3DModel.from_cogvideox(
                pipe.transformer, cue_in_channels=pipe.vae.config.latent_channels)
            pipe.register_modules(transformer=transformer)
        return pipe

    # ------------------------------------------------------------------------------------------------- text

    # Adapted from diffusers 0.42.1 (CogVideoXPipeline._get_t5_prompt_embeds)
    def _get_t5_prompt_embeds(self, prompt: list[str], max_sequence_length: int, device, dtype) -> torch.Tensor:
        text_inputs = self.tokenizer(
            prompt, padding="max_length", max_length=max_sequence_length, truncation=True,
            add_special_tokens=True, return_tensors="pt",
        )
        embeds = self.text_encoder(text_inputs.input_ids.to(device))[0]
        return embeds.to(dtype=dtype, device=device)

    def encode_prompt(self, prompt: str | list[str], negative_prompt: str | list[str] | None, do_cfg: bool,
                      max_sequence_length: int, device=None, dtype=None):
        """T5 embeddings of ``prompt`` (and of ``negative_prompt`` when ``do_cfg``): ``(embeds, negative|None)``."""
        device = device or self._execution_device
        dtype = dtype or self.transformer.dtype
        prompt = [prompt] if isinstance(prompt, str) else list(prompt)
        embeds = self._get_t5_prompt_embeds(prompt, max_sequence_length, device, dtype)
        negative = None
        if do_cfg:
            negative_prompt = negative_prompt or ""
            negative_prompt = [negative_prompt] * len(prompt) if isinstance(negative_prompt, str) else negative_prompt
            negative = self._get_t5_prompt_embeds(list(negative_prompt), max_sequence_length, device, dtype)
        return embeds, negative

    # ------------------------------------------------------------------------------------------------- helpers

    def _rotary_embeddings(self, height: int, width: int, num_latents: int, device):
        """The vision tokens' RoPE for a ``height x width`` video of ``num_latents`` latent frames (the trainers
        call the same ``directanimator.rope.vision_rotary_embedding``)."""
        f = self.vae_scale_factor_spatial
        return vision_rotary_embedding(self.transformer.config, num_latents, height // f, width // f, device=device,
                                       vae_scale_factor=f)

    def _check_size(self, height: int, width: int) -> None:
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            def near(v):
                return max(multiple, int(round(v / multiple)) * multiple)

            raise InputError(
                f"height and width must be positive multiples of {multiple}, got {height}x{width}; "
                f"use {near(height)}x{near(width)}"
            )
        cfg = self.transformer.config
        if cfg.use_learned_positional_embeddings:
            fixed = (cfg.sample_height * self.vae_scale_factor_spatial, cfg.sample_width * self.vae_scale_factor_spatial)
            if (height, width) != fixed:
                raise InputError(f"this model (learned positional embeddings) only generates {fixed[0]}x{fixed[1]}, "
                                 f"got {height}x{width}")

    def _gather_cues(self, cues, pose_cue, face_cue, body_location, face_location):
        if cues is not None:
            pose_cue = cues.pose_cue if pose_cue is None else pose_cue
            face_cue = cues.face_cue if face_cue is None else face_cue
            body_location = cues.body_location if body_location is None else body_location
            face_location = cues.face_location if face_location is None else face_location
        arrays = {}
        if pose_cue is not None:
            arrays["pose_cue"] = _as_array(pose_cue, "pose_cue", (3, 4))
        if face_cue is not None:
            arrays["face_cue"] = _as_array(face_cue, "face_cue", (4,))
        if body_location is not None:
            arrays["body_location"] = _as_array(body_location, "body_location", (3,))
        if face_location is not None:
            arrays["face_location"] = _as_array(face_location, "face_location", (3,))
        shapes = {k: v.shape[:3] for k, v in arrays.items()}
        if len(set(shapes.values())) > 1:
            raise InputError(f"the cues must share frame count and size [T, H, W], got {shapes}")
        return arrays

    def _cue_tensor(self, frames: np.ndarray, height: int, width: int, kind: str) -> torch.Tensor:
        """uint8 cue frames / float masks -> resized float tensor: video [1, 3, T, H, W] in [-1, 1], mask [T, H, W]."""
        x = torch.from_numpy(np.ascontiguousarray(frames))
        if kind == "mask":
            x = x.float().clamp(0, 1)[:, None]
            return _resize(x, height, width)[:, 0]
        x = x.float() / 255.0 if frames.dtype == np.uint8 else x.float()
        if x.ndim == 3:  # gray pose cue -> RGB
            x = x[..., None].expand(*x.shape, 3)
        x = _resize(x[..., :3].permute(0, 3, 1, 2), height, width)
        return (x * 2 - 1).permute(1, 0, 2, 3)[None]

    def _load_reference(self, image, cues) -> torch.Tensor:
        """The reference image as [1, 3, H, W] float in [0, 1] at its own size."""
        if image is None:
            if cues is None:
                raise InputError("give the reference image (image=...) or DrivingCues (cues=...)")
            image = cues.reference
        if isinstance(image, torch.Tensor):
            x = image.float()
            if x.ndim == 3:
                x = x[None]
            if x.shape[-1] == 3 and x.shape[1] != 3:
                x = x.permute(0, 3, 1, 2)
            x = x / 255.0 if image.dtype == torch.uint8 else x
        else:
            a = read_image(image, max_side=None)
            x = torch.from_numpy(np.array(a)).float().permute(2, 0, 1)[None] / 255.0
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"the reference image must be RGB [H, W, 3], got shape {tuple(image.shape)}")
        return x

    @property
    def guidance_scale(self) -> float:
        """The classifier-free guidance scale of the current call."""
        return self._guidance_scale

    @property
    def current_timestep(self) -> int | None:
        """The timestep being denoised (``None`` outside the loop); the pab cache reads it."""
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` (e.g. from a step callback) to stop denoising early."""
        return self._interrupt

    # ------------------------------------------------------------------------------------------------- call

    @torch.no_grad()
    def __call__(
        self,
        image=None,
        cues=None,
        pose_cue=None,
        face_cue=None,
        body_location=None,
        face_location=None,
        prompt: str | list[str] = "",
        negative_prompt: str | list[str] = "",
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 6.0,
        cue_scale: float | tuple[float, float] = 1.0,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        window_frames: int | None = None,
        window_overlap: int | None = None,
        use_dynamic_cfg: bool = False,
        eta: float = 0.0,
        latents: torch.Tensor | None = None,
        max_sequence_length: int | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
        progress: ProgressFn | None = None,
        cache: str | None = None,
        cache_threshold: float | None = None,
    ):
        """Animate the reference image with the driving cues.

        Args:
            image: reference image: path, PIL image, ``[H, W, 3]`` uint8 array or a tensor; default
                ``cues.reference``. It is resized to ``height x width`` (give it the cues' aspect ratio).
            cues: ``directanimator.cues.DrivingCues``; its pose/face/location cues are used unless given below.
            pose_cue: ``[T, H, W]`` uint8 grayscale pose cue (overrides ``cues.pose_cue``).
            face_cue: ``[T, H, W, 3]`` uint8 face cue.
            body_location: ``[T, H, W]`` float body location mask in [0, 1].
            face_location: ``[T, H, W]`` float face location mask in [0, 1].
            prompt: text prompt (optional; DirectAnimator is driven by the cues).
            negative_prompt: prompt for the unconditional CFG pass.
            num_frames: frames to generate, 1..T (default: all T cue frames). Any count works: the last cue
                frame is repeated up to the VAE's 1 + 4k frames and the extra frames are dropped.
            height: output height, a multiple of 16 (default: the cues' height, else the image's).
            width: output width, a multiple of 16 (default: the cues' width, else the image's).
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance on the prompt; <= 1 (or prompt == negative_prompt) runs one
                pass per step.
            cue_scale: strength of the cues: one number or a (pose, face) pair; 0 switches a cue off.
            generator: ``torch.Generator`` for the initial noise: same seed, same video.
            output_type: ``"np"``, ``"pil"``, ``"pt"`` or ``"latent"``.
            callback_on_step_end: ``callback(pipe, step, timestep, callback_kwargs) -> dict`` after each step; it
                may return a new ``"latents"`` tensor. Setting ``pipe._interrupt = True`` stops early.
            callback_on_step_end_tensor_inputs: names from ``_callback_tensor_inputs`` passed to the callback.
            window_frames: frames per generation window, 1 + 4k (default: the transformer's ``sample_frames``).
                Longer videos are generated in overlapping, blended windows (at least 13 frames each).
            window_overlap: frames shared by neighbouring windows, a multiple of 4, at least 8 and below
                ``window_frames`` (default: 16, or about half a short window).
            use_dynamic_cfg: CogVideoX's cosine-ramped guidance scale.
            eta: DDIM eta.
            latents: initial noise ``[1, F, C, h, w]`` (F = latent frames of the padded video) instead of sampling.
            max_sequence_length: prompt tokens (default: the transformer's ``max_text_seq_length``).
            attention_kwargs: passed to the attention processors (e.g. LoRA ``scale``).
            return_dict: return a ``DirectAnimatorPipelineOutput`` (else a tuple).
            progress: optional ``progress(fraction, desc)`` callback (the Gradio app's progress bar).
            cache: step cache for this call (``directanimator.caching``): ``"first-block"``, ``"taylorseer"`` or
                ``"pab"``; ``None`` (default) runs every block at every step, or keeps a cache enabled on the
                transformer beforehand (``pipe.transformer.enable_cache(config)``).
            cache_threshold: the cache's knob: first-block threshold (default 0.1), taylorseer interval (4), pab
                skip range (2).

        Returns:
            ``DirectAnimatorPipelineOutput`` with ``frames`` (see its docstring).
        """
        callback_on_step_end_tensor_inputs = self.check_inputs(
            prompt, output_type, num_inference_steps, callback_on_step_end, callback_on_step_end_tensor_inputs)
        cache_threshold = check_cache(cache, cache_threshold)
        if cache is not None and self.transformer.is_cache_enabled:
            raise InputError("a cache is already enabled on the transformer: pass cache=None or disable it first")
        cfg = self.transformer.config
        device = self._execution_device
        dtype = self.transformer.dtype
        self._guidance_scale = guidance_scale
        self._interrupt = False

        def report(fraction, desc):
            if progress is not None:
                progress(float(fraction), desc)

        # 1. Cues, sizes, frame counts and generation windows
        arrays = self._gather_cues(cues, pose_cue, face_cue, body_location, face_location)
        reference = self._load_reference(image, cues)
        plan = self._plan_video(arrays, cues, reference, height, width, num_frames, window_frames, window_overlap)

        # 2. Prompt
        do_cfg = guidance_scale > 1.0 and prompt != negative_prompt
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, negative_prompt, do_cfg, max_sequence_length or cfg.max_text_seq_length, device=device,
            dtype=dtype)

        # 3. Timesteps
        self.scheduler.set_timesteps(int(num_inference_steps), device=device)
        timesteps = self.scheduler.timesteps

        # 4. Reference latent and cue latents, one set per window (each window is encoded as a training clip)
        report(0.0, "encoding the reference and the cues")
        ref = _resize(reference, plan.height, plan.width) * 2 - 1
        # posterior mode, as the trainers encode the reference (diffusers' I2V pipeline samples it instead)
        image_latent = encode_image_latents(self.vae, ref, sample=False, device=device).to(dtype)
        window_inputs = self.prepare_cue_inputs(arrays, plan, device, dtype, report)

        # 5. Noise: the shared latent video plus one CogVideoX1.5 padding latent per window that needs one
        state, windows = self.prepare_latents(plan, image_latent, generator, latents, device, dtype)

        # 6. Denoising loop (with the step cache of this call, removed again afterwards)
        text = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
        if cache == "pab" and len(windows) > 1:
            raise InputError("the pab cache serves one generation window; use first-block or taylorseer for videos "
                             "longer than window_frames")
        if cache is not None:
            self.transformer.enable_cache(cache_config(cache, cache_threshold, lambda: self._current_timestep))
        try:
            state = self._denoise(
                state, windows, window_inputs, text, timesteps, plan, generator=generator, eta=eta,
                cue_scale=cue_scale, batch=2 if do_cfg else 1, guidance_scale=guidance_scale,
                use_dynamic_cfg=use_dynamic_cfg, attention_kwargs=attention_kwargs,
                callback_on_step_end=callback_on_step_end,
                callback_tensors={"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds},
                callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs, report=report)
        finally:
            if cache is not None:
                self.transformer.disable_cache()

        # 7. Decode the shared latents once, drop the frames added for the VAE
        video_latents = state[:, :plan.total_latents]
        if output_type == "latent":
            frames = video_latents
        else:
            report(0.9, "decoding")
            video = self.decode_latents(video_latents)[:, :, :plan.num_frames]
            frames = self.video_processor.postprocess_video(video=video, output_type=output_type)
        report(1.0, "done")
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return DirectAnimatorPipelineOutput(frames=frames)

    # ------------------------------------------------------------------------------------------------- stages

    def check_inputs(self, prompt, output_type, num_inference_steps, callback_on_step_end,
                     callback_on_step_end_tensor_inputs) -> list[str]:
        """Refuse arguments that cannot work (``InputError``); returns the tensor names the step callback gets."""
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        bad = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if bad:
            raise InputError(f"callback_on_step_end_tensor_inputs {bad} not in {self._callback_tensor_inputs}")
        if output_type not in ("np", "pil", "pt", "latent"):
            raise InputError(f"output_type must be 'np', 'pil', 'pt' or 'latent', got {output_type!r}")
        if int(num_inference_steps) < 1:
            raise InputError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        if not isinstance(prompt, str) and len(prompt) != 1:
            raise InputError("DirectAnimatorPipeline makes one video per call: give one prompt")
        return callback_on_step_end_tensor_inputs

    def _plan_video(self, arrays, cues, reference, height, width, num_frames, window_frames,
                    window_overlap) -> "_VideoPlan":
        """Output size, frame counts (the VAE's 1 + 4k) and the overlapping generation windows of one call."""
        tc = self.vae_scale_factor_temporal
        cfg = self.transformer.config
        available = next(iter(arrays.values())).shape[0] if arrays else None
        if arrays:
            cue_h, cue_w = next(iter(arrays.values())).shape[1:3]
        elif cues is not None:
            cue_h, cue_w = cues.height, cues.width
        else:
            cue_h = cue_w = None
        height = int(height or (cue_h if cue_h is not None else reference.shape[-2]))
        width = int(width or (cue_w if cue_w is not None else reference.shape[-1]))
        self._check_size(height, width)

        if num_frames is None:
            if available is None:
                raise InputError("without cues, give num_frames")
            num_frames = available
        num_frames = int(num_frames)
        if num_frames < 1:
            raise InputError(f"num_frames must be at least 1, got {num_frames}")
        if available is not None and num_frames > available:
            raise InputError(f"num_frames={num_frames} but the cues have only {available} frames; use at most "
                             f"{available} or longer driving cues")
        padded_frames = (num_frames - 1 + tc - 1) // tc * tc + 1  # the VAE needs 1 + 4k frames
        total_latents = latent_frame_count(padded_frames, tc)

        windows = generation_windows(num_frames, total_latents, window_frames, window_overlap, tc,
                                     int(cfg.sample_frames))
        if cfg.use_learned_positional_embeddings and windows[0][1].shape[0] != latent_frame_count(cfg.sample_frames,
                                                                                                    tc):
            raise InputError(f"this model (learned positional embeddings) only generates windows of "
                             f"{cfg.sample_frames} frames; give at least that many frames")
        return _VideoPlan(height, width, num_frames, padded_frames, total_latents, windows)

    def prepare_cue_inputs(self, arrays: dict, plan: "_VideoPlan", device, dtype,
                           report: ProgressFn) -> list[dict[str, torch.Tensor]]:
        """The transformer's cue inputs (pose / face latents, body / face masks on the latent grid) per window."""
        tc = self.vae_scale_factor_temporal
        p_t = self.transformer.config.patch_size_t
        num_frames, padded_frames = plan.num_frames, plan.padded_frames

        def window_frames(a, first, stop):  # frames first..stop; a clip short of padded_frames repeats frame T-1
            if a.shape[0] >= padded_frames:
                return np.asarray(a[first:stop])
            part = np.asarray(a[first:min(stop, num_frames)])
            if stop > num_frames:
                last = np.asarray(a[num_frames - 1:num_frames])
                part = np.concatenate([part] + [last] * (stop - max(first, num_frames)))
            return part

        window_inputs = []
        blank = {}  # the latents of an all-black cue window (a face cue without a face), encoded once per length
        for w, (start, weights) in enumerate(plan.windows):
            length = weights.shape[0]
            first = 0 if start == 0 else start * tc  # latent j >= 1 ends at frame 4j; a window starts there
            stop = first + (length - 1) * tc + 1
            padded = {name: window_frames(a, first, stop) for name, a in arrays.items()}
            inputs = {}
            for name, key, latent_key in (("pose_cue", "body_location", "pose_latents"),
                                          ("face_cue", "face_location", "face_latents")):
                if name in padded:
                    empty = not padded[name].any()
                    if empty and (name, length) in blank:
                        inputs[latent_key] = blank[name, length]
                    else:
                        video = self._cue_tensor(padded[name], plan.height, plan.width, "video")
                        lat = encode_video(self.vae, video, device=device).to(dtype)
                        inputs[latent_key] = pad_latent_frames(lat, p_t)[0]
                        if empty:
                            blank[name, length] = inputs[latent_key]
                mask_key = "body_mask" if key == "body_location" else "face_mask"
                if key in padded:
                    mask = self._cue_tensor(padded[key], plan.height, plan.width, "mask")
                    grid = masks_to_latent_grid(mask, self.vae_scale_factor_spatial, tc, device=device, dtype=dtype)
                    inputs[mask_key] = pad_latent_frames(grid[None], p_t)[0]
            window_inputs.append(inputs)
            report(0.1 * (w + 1) / len(plan.windows), "encoding the reference and the cues")
        return window_inputs

    def prepare_latents(self, plan: "_VideoPlan", image_latent: torch.Tensor, generator, latents, device,
                        dtype) -> tuple[torch.Tensor, list["_Window"]]:
        """The initial noise of the shared latent video (plus CogVideoX1.5's padding latents, one set per window
        that needs them) and each window's latent indices, blend weights, image latent and RoPE."""
        cfg = self.transformer.config
        p_t = cfg.patch_size_t
        total_latents = plan.total_latents
        channels = cfg.out_channels or cfg.in_channels // 2
        h, w_lat = plan.height // self.vae_scale_factor_spatial, plan.width // self.vae_scale_factor_spatial
        index, pads = [], 0
        for start, weights in plan.windows:
            idx = list(range(start, start + weights.shape[0]))
            if p_t and len(idx) % p_t:
                extra = p_t - len(idx) % p_t
                idx = list(range(total_latents + pads, total_latents + pads + extra)) + idx
                pads += extra
            index.append(torch.tensor(idx, device=device))
        state_shape = (1, total_latents + pads, channels, h, w_lat)
        if latents is None:
            state = randn_tensor(state_shape, generator=generator, device=device, dtype=dtype)
        else:
            if latents.shape[1] == total_latents and pads:
                extra = randn_tensor((1, pads, channels, h, w_lat), generator=generator, device=device, dtype=dtype)
                latents = torch.cat([latents.to(device, dtype), extra], dim=1)
            if tuple(latents.shape) != state_shape:
                raise InputError(f"latents must have shape {(1, total_latents, channels, h, w_lat)}, "
                                 f"got {tuple(latents.shape)}")
            state = latents.to(device, dtype)
        state = state * self.scheduler.init_noise_sigma

        image_inputs, rotary, windows = {}, {}, []
        for (start, weights), idx in zip(plan.windows, index):
            n = len(idx)
            full = torch.ones(n, device=device)
            full[n - weights.shape[0]:] = torch.from_numpy(weights).to(device)
            if n not in image_inputs:
                zeros = image_latent.new_zeros(1, n - 1, *image_latent.shape[2:])
                image_inputs[n] = torch.cat([image_latent, zeros], dim=1)
                rotary[n] = self._rotary_embeddings(plan.height, plan.width, n, device)
            windows.append(_Window(idx, full, image_inputs[n], rotary[n]))
        return state, windows

    def _denoise(self, state, windows, window_inputs, text, timesteps, plan, *, generator, eta, cue_scale, batch,
                 guidance_scale, use_dynamic_cfg, attention_kwargs, callback_on_step_end, callback_tensors,
                 callback_on_step_end_tensor_inputs, report) -> torch.Tensor:
        """The denoising loop: every window predicts its slice of the shared latents, the predictions are blended
        (normalised by the summed window weights) and one scheduler step moves the whole video."""
        cfg = self.transformer.config
        weight_sum = torch.zeros(state.shape[1], device=state.device)
        for window in windows:
            weight_sum.index_add_(0, window.index, window.weights)
        ofs = state.new_full((1,), 2.0) if cfg.ofs_embed_dim else None
        # the scheduler steps without host syncs or blocking noise copies, bit-identical to scheduler.step
        # (directanimator.sampling), so the CPU runs ahead and the GPU never idles between forwards
        stepper = SchedulerStepper(self.scheduler, timesteps, generator=generator, eta=eta,
                                   sync_free=self._sync_free_steps)
        caching = self.transformer.is_cache_enabled
        if caching:
            # no state from an earlier call (or window layout) carries over: same seed, same video
            self.transformer._reset_stateful_cache()
        try:
            return self._denoise_steps(state, windows, window_inputs, text, timesteps, plan, stepper, weight_sum,
                                       ofs, batch, guidance_scale, use_dynamic_cfg, cue_scale, attention_kwargs,
                                       callback_on_step_end, callback_tensors, callback_on_step_end_tensor_inputs,
                                       report)
        finally:
            self._current_timestep = None
            if caching:
                self.transformer._reset_stateful_cache()  # frees the cached residuals

    def _denoise_steps(self, state, windows, window_inputs, text, timesteps, plan, stepper, weight_sum, ofs, batch,
                       guidance_scale, use_dynamic_cfg, cue_scale, attention_kwargs, callback_on_step_end,
                       callback_tensors, callback_on_step_end_tensor_inputs, report) -> torch.Tensor:
        dtype = state.dtype
        num_inference_steps = len(timesteps)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                t_int = stepper.timestep_ints[i]  # t.item() would wait for the GPU
                self._current_timestep = t_int
                if use_dynamic_cfg:
                    self._guidance_scale = 1 + guidance_scale * (
                        (1 - math.cos(math.pi * ((num_inference_steps - t_int) / num_inference_steps) ** 5.0)) / 2
                    )
                pred = torch.zeros_like(state, dtype=torch.float32)
                for w, (window, inputs) in enumerate(zip(windows, window_inputs)):
                    x = state[:, window.index]
                    x = torch.cat([x] * batch) if batch > 1 else x
                    x = self.scheduler.scale_model_input(x, t)
                    x = torch.cat([x, window.image_latents.expand(batch, -1, -1, -1, -1)], dim=2)
                    # one cache context per window: a window's cached residuals are compared with its own; the
                    # CFG passes run as one batch, so both branches share it (a cache decides on the batch as a whole)
                    with self.transformer.cache_context(f"window{w}/cond_uncond", step_index=i,
                                                        num_inference_steps=num_inference_steps, timestep=t_int):
                        # batch-1 cues and timestep: both CFG passes share them, so the cue streams run once
                        noise = self.transformer(
                            hidden_states=x, encoder_hidden_states=text, timestep=t.reshape(1),
                            **inputs, cue_scale=cue_scale, ofs=ofs, image_rotary_emb=window.rotary,
                            attention_kwargs=attention_kwargs, return_dict=False,
                        )[0].float()
                    if batch > 1:
                        uncond, cond = noise.chunk(2)
                        noise = uncond + self._guidance_scale * (cond - uncond)
                    pred.index_add_(1, window.index, noise * window.weights[None, :, None, None, None])
                pred = pred / weight_sum[None, :, None, None, None]

                state = stepper.step(i, pred, state).to(dtype)

                if callback_on_step_end is not None:
                    local = {"latents": state[:, :plan.total_latents], **callback_tensors}
                    out = callback_on_step_end(self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs})
                    if out and out.get("latents") is not None:
                        state = torch.cat([out["latents"].to(state), state[:, plan.total_latents:]], dim=1)
                progress_bar.update()
                report(0.1 + 0.8 * (i + 1) / num_inference_steps, f"denoising step {i + 1}/{num_inference_steps}")
        return state

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``[B, F, C, h, w]`` -> video ``[B, 3, T, H, W]`` in [-1, 1]."""
        latents = latents.permute(0, 2, 1, 3, 4) / self.vae.config.scaling_factor
        return self.vae.decode(latents.to(self.vae.dtype)).sample

    @torch.no_grad()
    def iter_frames(self, latents: torch.Tensor, num_frames: int | None = None) -> Iterator[np.ndarray]:
        """The video of ``latents`` as uint8 ``[n, H, W, 3]`` chunks, decoded a few frames at a time.

        For long videos: ``pipe(..., output_type="latent")`` then ``write_video(path, pipe.iter_frames(latents,
        num_frames), fps)`` never holds more than one VAE batch of frames (``directanimator.decoding``); the frames
        equal ``to_uint8_frames`` of what ``output_type="np"`` returns, bit for bit.

        Args:
            latents: ``[1, F, C, h, w]``, as ``output_type="latent"`` returns them (``frames``).
            num_frames: stop after this many frames: the call's ``num_frames`` (a video is generated padded to
                the VAE's 1 + 4k frames; default: every decoded frame).
        """
        if latents.ndim != 5 or latents.shape[0] != 1:
            raise InputError(f"latents must be one video [1, F, C, h, w], got shape {tuple(latents.shape)}")
        left = None if num_frames is None else int(num_frames)
        z = (latents.permute(0, 2, 1, 3, 4) / self.vae.config.scaling_factor).to(self.vae.dtype)
        for sample in iter_decode(self.vae, z):
            frames = to_uint8_frames(self.video_processor.postprocess_video(video=sample, output_type="np")[0])
            if left is not None:
                frames, left = frames[:left], left - min(left, len(frames))
            if len(frames):
                yield frames
            if left == 0:
                break
