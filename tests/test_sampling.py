"""SchedulerStepper (directanimator.sampling): bit-identical to diffusers' scheduler.step, alone and in the pipeline."""

import functools
import json
import os

import numpy as np
import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

from directanimator.sampling import SchedulerStepper
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _demo_config(**overrides) -> dict:
    """The scheduler config CogVideoX1.5 ships (v-prediction, trailing, zero-SNR), as the demo model holds it."""
    with open(os.path.join(ROOT, "models", "demo", "scheduler", "scheduler_config.json")) as f:
        config = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    return {**config, **overrides}


def _stock_loop(scheduler, outputs, sample, generator):
    """The loop as diffusers' CogVideoX pipelines write it."""
    timesteps = scheduler.timesteps
    old, samples = None, []
    for i, t in enumerate(timesteps):
        sample, old = scheduler.step(outputs[i], old, t, timesteps[i - 1] if i > 0 else None, sample,
                                     eta=0.0, generator=generator, return_dict=False)
        samples.append(sample)
    return samples


def _stepper_loop(scheduler, outputs, sample, generator, **kwargs):
    stepper = SchedulerStepper(scheduler, scheduler.timesteps, generator=generator, **kwargs)
    samples = []
    for i in range(len(scheduler.timesteps)):
        sample = stepper.step(i, outputs[i], sample)
        samples.append(sample)
    return samples


@pytest.mark.parametrize("steps", [50, 5])
@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
@pytest.mark.parametrize("sample_dtype", [torch.float32, torch.bfloat16])
def test_dpm_step_is_bit_identical_to_diffusers(steps, prediction_type, sample_dtype):
    # the pipeline gives float32 model outputs and latents in the model's dtype (bf16 on a GPU)
    shape = (1, 3, 4, 4, 6)
    g = torch.Generator().manual_seed(7)
    outputs = [torch.randn(shape, generator=g) for _ in range(steps)]
    start = torch.randn(shape, generator=g).to(sample_dtype)
    runs = []
    for fn in (_stock_loop, _stepper_loop):
        # epsilon: x0 = (x - sqrt(1 - a) eps) / sqrt(a) is NaN at a zero-SNR first step, so without the rescale
        zero_snr = prediction_type == "v_prediction"
        scheduler = CogVideoXDPMScheduler(**_demo_config(prediction_type=prediction_type,
                                                         rescale_betas_zero_snr=zero_snr))
        scheduler.set_timesteps(steps)
        gen = torch.Generator().manual_seed(42)
        runs.append((fn(scheduler, outputs, start, gen), gen.get_state()))
    (stock, stock_state), (ours, our_state) = runs
    assert len(stock) == len(ours) == steps
    for i, (a, b) in enumerate(zip(stock, ours)):  # first, middle and last step (prev_timestep < 0)
        assert a.dtype == b.dtype and torch.equal(a, b), f"step {i} differs"
    # the generator made exactly as many draws (diffusers' discarded one included), so later draws match too
    assert torch.equal(stock_state, our_state)
    assert not torch.equal(stock[-1], stock[-2])  # the steps do something


def test_dpm_step_noise_comes_from_the_generator_stream():
    # a stepper that skipped diffusers' discarded draw would already differ at the second step
    scheduler = CogVideoXDPMScheduler(**_demo_config())
    scheduler.set_timesteps(5)
    g = torch.Generator().manual_seed(1)
    outputs = [torch.randn(2, 3, generator=g) for _ in range(5)]
    start = torch.randn(2, 3, generator=g)
    a = _stepper_loop(scheduler, outputs, start, torch.Generator().manual_seed(0))
    b = _stepper_loop(scheduler, outputs, start, torch.Generator().manual_seed(1))
    assert not torch.equal(a[1], b[1])


def test_dpm_step_without_generator_uses_the_global_rng_like_diffusers():
    scheduler = CogVideoXDPMScheduler(**_demo_config())
    scheduler.set_timesteps(4)
    outputs = [torch.full((2, 5), 0.1 * i) for i in range(4)]
    torch.manual_seed(3)
    stock = _stock_loop(scheduler, outputs, torch.ones(2, 5), None)
    torch.manual_seed(3)
    ours = _stepper_loop(scheduler, outputs, torch.ones(2, 5), None)
    assert all(torch.equal(a, b) for a, b in zip(stock, ours))


def test_unknown_and_ddim_schedulers_use_their_own_step():
    class MyDPM(CogVideoXDPMScheduler):  # a subclass may change step(): it is called, not reimplemented
        pass

    g = torch.Generator().manual_seed(5)
    outputs = [torch.randn(1, 2, 3, generator=g) for _ in range(5)]
    start = torch.randn(1, 2, 3, generator=g)

    scheduler = MyDPM(**_demo_config())
    scheduler.set_timesteps(5)
    assert SchedulerStepper(scheduler, scheduler.timesteps)._mode == "stock"
    stock = _stock_loop(scheduler, outputs, start, torch.Generator().manual_seed(0))
    ours = _stepper_loop(scheduler, outputs, start, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(stock, ours))

    # CogVideoXDDIMScheduler: its own step(), given the timestep as a CPU tensor (no sync, same values)
    scheduler = CogVideoXDDIMScheduler(**_demo_config())
    scheduler.set_timesteps(5)
    stepper = SchedulerStepper(scheduler, scheduler.timesteps)
    assert stepper._mode == "ddim"
    ours = stock = start
    for i, t in enumerate(scheduler.timesteps):
        ours = stepper.step(i, outputs[i], ours)
        stock = scheduler.step(outputs[i], t, stock, return_dict=False)[0]
        assert torch.equal(ours, stock)
    assert not torch.equal(ours, start)


@pytest.fixture(scope="module")
def cues():
    return tiny_driving_cues(num_frames=9)


def _frames(pipe, cues, sync_free, **kwargs):
    """Frames of one call, and how often it called scheduler.step (a counting pass-through, the real step runs)."""
    calls = []
    real_step = pipe.scheduler.step

    @functools.wraps(real_step)  # keeps step()'s signature, which the pipeline inspects for `generator`
    def counting_step(*args, **kw):
        calls.append(1)
        return real_step(*args, **kw)

    pipe._sync_free_steps = sync_free
    pipe.scheduler.step = counting_step
    try:
        out = pipe(cues=cues, generator=torch.Generator().manual_seed(11), output_type="np", **kwargs).frames
    finally:
        del pipe.scheduler.step
        del pipe._sync_free_steps
    return out, len(calls)


def test_pipeline_frames_identical_to_stock_scheduler_path(cues):
    pipe = make_tiny_pipeline()
    # CFG with a real negative prompt and dynamic CFG (reads the timestep as a number every step)
    kwargs = dict(num_inference_steps=4, guidance_scale=6.0, prompt="a person", negative_prompt="blurry",
                  use_dynamic_cfg=True)
    stock, stock_calls = _frames(pipe, cues, False, **kwargs)
    ours, our_calls = _frames(pipe, cues, True, **kwargs)
    assert stock_calls == 4 and our_calls == 0  # the switch really picks the two paths
    np.testing.assert_array_equal(ours, stock)
    other = pipe(cues=cues, generator=torch.Generator().manual_seed(12), **kwargs).frames
    assert np.abs(other - ours).max() > 1e-4  # the seed matters, so equal frames mean equal noise


def test_pipeline_long_video_windows_identical_to_stock():
    pipe = make_tiny_pipeline()
    long_cues = tiny_driving_cues(num_frames=17)
    kwargs = dict(num_inference_steps=3, window_frames=13, window_overlap=8)
    stock, _ = _frames(pipe, long_cues, False, **kwargs)
    ours, _ = _frames(pipe, long_cues, True, **kwargs)
    np.testing.assert_array_equal(ours, stock)


def test_pipeline_with_ddim_scheduler_identical_to_stock(cues):
    pipe = make_tiny_pipeline()
    pipe.scheduler = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config)
    stock, stock_calls = _frames(pipe, cues, False, num_inference_steps=3)
    ours, our_calls = _frames(pipe, cues, True, num_inference_steps=3)
    assert stock_calls == our_calls == 3  # DDIM: its own step() in both paths
    np.testing.assert_array_equal(ours, stock)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: pinned, non-blocking noise copies")
def test_cuda_pinned_noise_is_bit_identical_to_diffusers():
    shape = (1, 4, 16, 12, 20)
    g = torch.Generator().manual_seed(7)
    outputs = [torch.randn(shape, generator=g).cuda() for _ in range(10)]
    start = torch.randn(shape, generator=g).to("cuda", torch.bfloat16)
    runs = []
    for fn in (_stock_loop, _stepper_loop):
        scheduler = CogVideoXDPMScheduler(**_demo_config())
        scheduler.set_timesteps(10, device="cuda")
        gen = torch.Generator().manual_seed(42)
        runs.append((fn(scheduler, outputs, start, gen), gen.get_state()))
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0]))
    assert torch.equal(runs[0][1], runs[1][1])
