"""Step caching through diffusers' hooks (directanimator.caching) on the tiny real pipeline: each cache skips work
on repeated steps (counted), is exact when it never triggers, resets between calls and keeps windows apart."""

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig

from directanimator.caching import CACHES, cache_config, check_cache, count_computations
from directanimator.errors import InputError
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues, tiny_forward_inputs

STEPS = 6
# settings that skip on the tiny random model (its steps differ a lot: first-block needs a loose threshold)
SKIPPING = {"first-block": 1.0, "taylorseer": 2, "pab": 3}
NEVER = {"first-block": 0.0, "taylorseer": 1, "pab": 1}


@pytest.fixture(scope="module")
def pipe():
    pipe = make_tiny_pipeline()
    with torch.no_grad():  # non-zero cue weights, so the cue streams matter to the output
        g = torch.Generator().manual_seed(3)
        for name, p in pipe.transformer.named_parameters():
            if name in pipe.transformer.cue_parameter_names():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return pipe


@pytest.fixture(scope="module")
def cues():
    return tiny_driving_cues(num_frames=9)


def _run(pipe, cues, **kwargs):
    with count_computations(pipe.transformer) as counts:
        out = pipe(cues=cues, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0),
                   output_type="latent", **kwargs).frames
    return out, counts


@pytest.fixture(scope="module")
def uncached(pipe, cues):
    return _run(pipe, cues)


@pytest.mark.parametrize("name", CACHES)
def test_each_cache_skips_work_and_resets_between_calls(pipe, cues, uncached, name):
    base, full = uncached
    layers = len(pipe.transformer.transformer_blocks)
    assert (full.blocks, full.attention, full.calls) == (STEPS * layers,) * 3
    out, counts = _run(pipe, cues, cache=name, cache_threshold=SKIPPING[name])
    assert counts.calls == full.calls
    skipped = counts.attention if name == "pab" else counts.blocks
    assert skipped < full.blocks  # work was reused on repeated steps
    assert torch.isfinite(out).all() and not torch.equal(out, base)
    assert not pipe.transformer.is_cache_enabled  # the call's hooks are gone again
    again, counts2 = _run(pipe, cues, cache=name, cache_threshold=SKIPPING[name])
    assert torch.equal(out, again) and counts2 == counts  # no state carried over from the first call


@pytest.mark.parametrize("name", CACHES)
def test_a_cache_that_never_triggers_is_exact(pipe, cues, uncached, name):
    out, counts = _run(pipe, cues, cache=name, cache_threshold=NEVER[name])
    assert torch.equal(out, uncached[0]) and counts == uncached[1]


def test_first_block_cache_passes_the_cue_streams(pipe):
    """A block skipped by First Block Cache returns no cue streams; the model keeps its own (no crash, and a
    never-skipping cache equals the plain forward with cues)."""
    model = pipe.transformer
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        plain = model(**inputs, return_dict=False)[0]
        model.enable_cache(FirstBlockCacheConfig(threshold=0.0))
        try:
            with model.cache_context("a"):
                first = model(**inputs, return_dict=False)[0]
            model.disable_cache()
            model.enable_cache(FirstBlockCacheConfig(threshold=1e9))  # skips from the 2nd call on
            with count_computations(model) as counts, model.cache_context("b"):
                model(**inputs, return_dict=False)
                skipped = model(**inputs, return_dict=False)[0]
        finally:
            model.disable_cache()
    assert torch.equal(first, plain)
    assert counts.blocks == len(model.transformer_blocks) + 1  # 2nd call: the first block only
    torch.testing.assert_close(skipped, plain)  # same input twice: the cached residual is the exact one


def test_windows_keep_their_own_cache_state():
    """Three windows per step: each has its own cache context, so TaylorSeer's step count per window is the
    single-window one (a shared context would count 3 calls per step and skip in another pattern)."""
    pipe = make_tiny_pipeline()
    long = tiny_driving_cues(num_frames=27)
    run = dict(window_frames=13, window_overlap=8)
    windowed, counts = _run(pipe, long, cache="taylorseer", cache_threshold=2, **run)
    _, single = _run(pipe, tiny_driving_cues(num_frames=13), cache="taylorseer", cache_threshold=2)
    assert counts.calls == 3 * single.calls and counts.blocks == 3 * single.blocks < counts.calls
    exact, _ = _run(pipe, long, cache="first-block", cache_threshold=0.0, **run)
    plain, _ = _run(pipe, long, **run)
    assert torch.equal(exact, plain) and torch.isfinite(windowed).all()


def test_bad_cache_settings_are_clear(pipe, cues):
    with pytest.raises(InputError, match="unknown cache 'tea'"):
        check_cache("tea", None)
    with pytest.raises(InputError, match="whole number"):
        check_cache("taylorseer", 1.5)
    with pytest.raises(InputError, match=">= 0"):
        check_cache("first-block", -1)
    with pytest.raises(InputError, match="needs a cache"):
        check_cache(None, 0.2)
    with pytest.raises(InputError, match="one generation window"):
        pipe(cues=tiny_driving_cues(num_frames=27), num_inference_steps=1, window_frames=13, window_overlap=8,
             cache="pab")
    pipe.transformer.enable_cache(cache_config("first-block"))
    try:
        with pytest.raises(InputError, match="already enabled"):
            pipe(cues=cues, num_inference_steps=1, cache="first-block")
    finally:
        pipe.transformer.disable_cache()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_caches_match_their_cpu_skip_counts(pipe, cues):
    """On the GPU each cache skips the same computations as on the CPU (the decisions do not depend on the
    device beyond rounding), and a never-triggering cache is exact."""
    cpu_counts = {name: _run(pipe, cues, cache=name, cache_threshold=SKIPPING[name])[1] for name in ("taylorseer",
                                                                                                  "pab")}
    gpu = make_tiny_pipeline()
    gpu.transformer.load_state_dict(pipe.transformer.state_dict())  # the fixture's (perturbed) weights
    gpu.to("cuda")
    plain, _ = _run(gpu, cues)
    exact, _ = _run(gpu, cues, cache="first-block", cache_threshold=0.0)
    assert torch.equal(plain, exact)
    for name, counts in cpu_counts.items():  # fixed schedules: the same counts on any device
        assert _run(gpu, cues, cache=name, cache_threshold=SKIPPING[name])[1] == counts
