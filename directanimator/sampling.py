"""Scheduler steps for the denoising loop that never make the CPU wait for the GPU.

Why: diffusers' ``CogVideoXDPMScheduler.step`` indexes its CPU ``alphas_cumprod`` with the timestep and tests
``prev_timestep >= 0`` as a Python bool; when the timesteps live on the GPU both are device->host syncs. It also draws
its noise with ``randn_tensor``; with a CPU generator (diffusers' convention for seeds that reproduce across devices)
that is a CPU ``randn`` followed by a copy from pageable memory, and such a copy synchronises the stream. So every
step the CPU waits for the forward to finish, and then the GPU idles while the CPU draws noise and launches the next
forward.

``SchedulerStepper`` does the same steps with every scalar coefficient computed on the CPU from integer timesteps
(through the scheduler's own ``alphas_cumprod``, ``get_variables`` and ``get_mult``, so the arithmetic stays
diffusers'), and draws the noise from the same generator, in the same order and number (including the draw diffusers
makes and then discards), into pinned memory that is copied to the GPU without blocking. The result is bit-identical
to ``scheduler.step``; the CPU simply runs ahead of the GPU, so drawing noise and launching kernels overlap the
forward. Schedulers it does not know are stepped by their own ``step``, unchanged.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler
from diffusers.utils.torch_utils import randn_tensor

__all__ = ["SchedulerStepper"]


class SchedulerStepper:
    """Runs ``scheduler``'s steps over ``timesteps`` for one denoising loop (holds the DPM solver's history).

    Args:
        scheduler: the pipeline's scheduler, after ``set_timesteps``.
        timesteps: ``scheduler.timesteps`` (on any device); read to the host once, here, before the loop.
        generator: the generator the pipeline's caller gave (``torch.Generator``, a list of them, or ``None``).
        eta: passed to ``scheduler.step`` when it accepts it (the CogVideoX schedulers ignore it).
        sync_free: ``False`` calls ``scheduler.step`` exactly as diffusers' CogVideoX pipelines do (the reference
            the sync-free path is tested and benchmarked against).
    """

    def __init__(self, scheduler, timesteps: torch.Tensor, generator=None, eta: float = 0.0, sync_free: bool = True):
        self.scheduler = scheduler
        self.timesteps = timesteps
        self.generator = generator
        # one device->host copy before the loop instead of one sync per step
        self.timestep_ints: list[int] = [int(t) for t in timesteps.tolist()]
        params = inspect.signature(scheduler.step).parameters
        self._step_kwargs = {**({"eta": eta} if "eta" in params else {}),
                             **({"generator": generator} if "generator" in params else {})}
        # exact classes only: a subclass may change step()
        kind = type(scheduler) if sync_free else None
        self._mode = {CogVideoXDPMScheduler: "dpm", CogVideoXDDIMScheduler: "ddim"}.get(kind, "stock")
        if self._mode == "dpm":
            # a trainer's add_noise may have moved it to the GPU; on the CPU it is the tensor stock step() indexes
            self._alphas_cumprod = scheduler.alphas_cumprod.detach().cpu()
        self._old_pred_original_sample = None

    def step(self, i: int, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Step ``i`` of the loop: the model's (guided) output at ``timesteps[i]`` and the current latents -> the
        latents for the next step (dtype as ``scheduler.step`` returns it)."""
        s = self.scheduler
        if self._mode == "dpm":
            return self._dpm_step(i, model_output, sample)
        if self._mode == "ddim":
            # deterministic step; a CPU timestep makes its alphas_cumprod lookup and `prev_timestep >= 0` host-only
            t = torch.tensor(self.timestep_ints[i])
            return s.step(model_output, t, sample, **self._step_kwargs, return_dict=False)[0]
        t = self.timesteps[i]
        if isinstance(s, CogVideoXDPMScheduler):
            out, self._old_pred_original_sample = s.step(
                model_output, self._old_pred_original_sample, t, self.timesteps[i - 1] if i > 0 else None, sample,
                **self._step_kwargs, return_dict=False,
            )
            return out
        return s.step(model_output, t, sample, **self._step_kwargs, return_dict=False)[0]

    # Adapted from diffusers 0.42.1 (CogVideoXDPMScheduler.step)
    def _dpm_step(self, i: int, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        s = self.scheduler
        if s.num_inference_steps is None:
            raise ValueError("Number of inference steps is 'None', you need to run 'set_timesteps' first")
        timestep = self.timestep_ints[i]
        timestep_back = self.timestep_ints[i - 1] if i > 0 else None
        prev_timestep = timestep - s.config.num_train_timesteps // s.num_inference_steps

        # 0-d CPU tensors, the same values diffusers gets: CUDA kernels read them as host scalars, no sync
        a = self._alphas_cumprod
        alpha_prod_t = a[timestep]
        alpha_prod_t_prev = a[prev_timestep] if prev_timestep >= 0 else s.final_alpha_cumprod
        alpha_prod_t_back = a[timestep_back] if timestep_back is not None else None
        beta_prod_t = 1 - alpha_prod_t

        prediction_type = s.config.prediction_type
        if prediction_type == "epsilon":
            pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        elif prediction_type == "sample":
            pred_original_sample = model_output
        elif prediction_type == "v_prediction":
            pred_original_sample = (alpha_prod_t**0.5) * sample - (beta_prod_t**0.5) * model_output
        else:
            raise ValueError(f"prediction_type given as {prediction_type} must be one of `epsilon`, `sample`, or "
                             "`v_prediction`")

        h, r, _, _ = s.get_variables(alpha_prod_t, alpha_prod_t_prev, alpha_prod_t_back)
        mult = list(s.get_mult(h, r, alpha_prod_t, alpha_prod_t_prev, alpha_prod_t_back))
        mult_noise = (1 - alpha_prod_t_prev) ** 0.5 * (1 - (-2 * h).exp()) ** 0.5

        old = self._old_pred_original_sample
        self._old_pred_original_sample = pred_original_sample
        if old is None or prev_timestep < 0:
            # first and last step: diffusers draws once and uses it
            noise = self._noise(sample)
            return mult[0] * sample - mult[1] * pred_original_sample + mult_noise * noise
        # diffusers draws a first noise here, computes a first-order sample with it and throws both away: the draw
        # is kept (it advances the generator, so seeds reproduce), the arithmetic is not
        self._noise(sample, used=False)
        denoised_d = mult[2] * pred_original_sample - mult[3] * old
        noise = self._noise(sample)
        return mult[0] * sample - mult[1] * denoised_d + mult_noise * noise

    def _noise(self, sample: torch.Tensor, used: bool = True) -> torch.Tensor | None:
        """The next noise of ``randn_tensor(sample.shape, generator, sample.device, sample.dtype)``, same values."""
        gen = self.generator
        if isinstance(gen, list) and len(gen) == 1:
            gen = gen[0]  # randn_tensor treats a one-generator list like the generator
        if isinstance(gen, torch.Generator) and gen.device.type == "cpu" and sample.device.type == "cuda":
            if not used:
                torch.randn(sample.shape, generator=gen, dtype=sample.dtype)
                return None
            # pinned: the copy is a DMA queued on the stream, the CPU goes on; the caching host allocator keeps the
            # block alive until the copy has run
            host = torch.randn(sample.shape, generator=gen, dtype=sample.dtype, pin_memory=True)
            return host.to(sample.device, non_blocking=True)
        # CPU sampling, a generator on the device, no generator: diffusers' own draw, which does not block a CUDA
        # stream (a list of several CPU generators keeps diffusers' blocking copy: rare, the latents have batch 1)
        return randn_tensor(sample.shape, generator=self.generator, device=sample.device, dtype=sample.dtype)
