"""Ahead-of-time block compilation without ZeroGPU (directanimator.aot, ui.zerogpu): the capture of a block call from
a real tiny pipeline call, torch.export of the CueFusion block and of the plain block with the token count dynamic
(the program AOTInductor compiles) against eager, the exported program run as every block's code in a pipeline
(each block's own weights), the eager fallback, and that nothing happens off a ZeroGPU Space."""

import importlib.util
import logging

import numpy as np
import pytest
import torch
from torch.func import functional_call

from directanimator.aot import (apply_compiled_blocks, call_signature, capture_block_call, export_block,
                                remove_compiled_blocks)
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues, tiny_transformer
from ui import zerogpu

SETTINGS = dict(prompt="", negative_prompt="", height=32, width=48, num_inference_steps=2)


@pytest.fixture(scope="module")
def pipe():
    pipe = make_tiny_pipeline()
    torch.manual_seed(1)
    for block in pipe.transformer.transformer_blocks:  # the cue modules start at identity: give them weights
        for p in block.cue_fusion.parameters():
            p.data.normal_(0, 0.3)
    return pipe


def _run(pipe, frames=9, **kw):
    out = pipe(cues=tiny_driving_cues(frames), num_frames=frames, generator=torch.Generator().manual_seed(0),
               output_type="np", **{**SETTINGS, **kw})
    return np.asarray(out.frames[0])


def _capture(pipe, frames):
    return zerogpu.capture_and_export(pipe, tiny_driving_cues(frames), dict(SETTINGS, num_frames=frames))


def _same(a, b, tol=1e-5):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


@pytest.fixture(scope="module")
def exported(pipe):
    return _capture(pipe, 9)


def test_capture_cuts_a_pipeline_call_at_the_first_block(pipe, exported):
    _, args = exported
    block = pipe.transformer.transformer_blocks[0]
    assert "forward" not in block.__dict__  # the block's own forward again
    hidden, _, temb, rope, attention_kwargs, cue_tokens, cue_ids, scales = args
    tokens = 2 * (32 // 16) * (48 // 16)  # 9 frames: 3 latent frames, padded to 4, in 2 x 2 x 2 patches
    assert hidden.shape[0] == 1 and hidden.ndim == 3 and rope[0].shape[0] == hidden.shape[1]
    assert cue_tokens.shape[:3] == (2, 1, hidden.shape[1]) and cue_ids == (0, 1)
    assert all(isinstance(s, torch.Tensor) and s.ndim == 0 for s in scales)
    assert hidden.shape[1] == tokens
    with capture_block_call(block) as call:  # outside a call that reaches the block nothing is captured
        pass
    assert not call.captured and "forward" not in block.__dict__


def test_exported_cuefusion_block_matches_eager_at_other_token_counts(pipe, exported):
    program, args = exported
    block = pipe.transformer.transformer_blocks[0]
    _, longer = _capture(pipe, 17)  # more frames: more tokens through the same program
    assert longer[0].shape[1] > args[0].shape[1]
    with torch.no_grad():
        for a in (args, longer):
            out = program.module()(*a)
            assert len(out) == 3
            _same(out, block(*a))
        # a cue strength is an input of the program, not a constant baked into it
        weaker = longer[:7] + ((torch.tensor(0.3), torch.tensor(1.7)),)
        _same(program.module()(*weaker), block(*weaker))
        assert not torch.allclose(block(*weaker)[0], block(*longer)[0])


def test_exported_plain_block_matches_eager(pipe, exported):
    _, args = exported
    plain = tiny_transformer(cue_injection="concat").transformer_blocks[0]
    assert plain.cue_fusion is None and plain.cue_attention is None
    no_cues = args[:5] + (None, (), args[7])
    program = export_block(plain, no_cues)
    _, longer = _capture(pipe, 17)
    with torch.no_grad():
        for a in (no_cues, longer[:5] + (None, (), longer[7])):
            out = program.module()(*a)
            assert len(out) == 2
            _same(out, plain(*a))


def test_one_program_runs_every_block_with_its_weights(pipe, exported):
    program, args = exported
    module = program.module()
    eager = _run(pipe)
    eager_scaled = _run(pipe, cue_scale=(0.5, 1.5))
    # what the loaded AOTInductor package does: one program, each block's weights loaded as its constants
    state = apply_compiled_blocks(pipe.transformer, lambda b: lambda *a: functional_call(module, b.state_dict(), a),
                                  call_signature(args))
    try:
        np.testing.assert_allclose(_run(pipe), eager, atol=1e-5)
        np.testing.assert_allclose(_run(pipe, frames=13), _run_eager(pipe, frames=13), atol=1e-5)
        np.testing.assert_allclose(_run(pipe, cue_scale=(0.5, 1.5)), eager_scaled, atol=1e-5)
        assert state.compiled_calls > 0 and state.eager_calls == 0 and state.failed is None
        # another signature (CFG: batch 2) runs the blocks eagerly
        cfg = dict(prompt="a", negative_prompt="b", guidance_scale=6.0)
        compiled_calls = state.compiled_calls
        with_cfg = _run(pipe, **cfg)
        assert state.eager_calls > 0 and state.compiled_calls == compiled_calls and state.failed is None
    finally:
        assert remove_compiled_blocks(pipe.transformer) == 3
    np.testing.assert_allclose(with_cfg, _run(pipe, **cfg), atol=1e-6)


def _run_eager(pipe, **kw):
    restore = {b: b.__dict__.pop("forward") for b in pipe.transformer.transformer_blocks if "forward" in b.__dict__}
    try:
        return _run(pipe, **kw)
    finally:
        for b, f in restore.items():
            b.forward = f


def test_failing_compiled_code_falls_back_to_eager_with_one_log_line(pipe, exported, caplog):
    _, args = exported
    block = pipe.transformer.transformer_blocks[0]
    with torch.no_grad():  # exported without dynamic dims: another token count fails the program's own guards
        static = torch.export.export(block, args, strict=False).module()
    eager = _run(pipe, frames=17)
    state = apply_compiled_blocks(pipe.transformer, lambda b: static, call_signature(args))
    try:
        with caplog.at_level(logging.WARNING, logger="directanimator.aot"):
            out = _run(pipe, frames=17)
    finally:
        remove_compiled_blocks(pipe.transformer)
    np.testing.assert_allclose(out, eager, atol=1e-6)
    assert state.failed and state.compiled_calls == 0
    assert len([r for r in caplog.records if "eagerly" in r.message]) == 1


def test_nothing_happens_off_a_zerogpu_space(pipe, monkeypatch):
    assert not zerogpu.on_zero_gpu({}) and not zerogpu.on_zero_gpu({"SPACES_ZERO_GPU": "false"})
    assert zerogpu.on_zero_gpu({"SPACES_ZERO_GPU": "true"})
    assert zerogpu.aot_wanted("none", {"SPACES_ZERO_GPU": "true"})
    assert not zerogpu.aot_wanted("none", {"SPACES_ZERO_GPU": "true", "DIRECTANIMATOR_AOT": "0"})
    assert not zerogpu.aot_wanted("group offload", {"SPACES_ZERO_GPU": "true"})
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    key = ("tiny", "", "", "none")
    assert zerogpu.compile_blocks(key, pipe) is False and key not in zerogpu.STATUS
    assert not any("forward" in b.__dict__ for b in pipe.transformer.transformer_blocks)


@pytest.mark.skipif(importlib.util.find_spec("spaces") is not None, reason="the spaces package is installed here")
def test_on_zerogpu_without_spaces_the_app_stays_eager(pipe, monkeypatch, caplog):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    key = ("tiny", "", "", "none")
    with caplog.at_level(logging.WARNING, logger="ui.zerogpu"):
        assert zerogpu.compile_blocks(key, pipe) is False
    assert "not installed" in zerogpu.STATUS.pop(key)
    assert len(caplog.records) == 1 and "eagerly" in caplog.records[0].message
    assert not any("forward" in b.__dict__ for b in pipe.transformer.transformer_blocks)
    # the app's own loading path on a "ZeroGPU Space" without spaces: the pipeline loads and generates eagerly
    from ui import generation
    loaded = generation.load_pipeline(generation.TINY_MODEL, "", "", "none")
    try:
        assert "not installed" in zerogpu.STATUS.pop(loaded)
        blocks = generation._PIPELINES[loaded].transformer.transformer_blocks
        assert not any("forward" in b.__dict__ for b in blocks)
    finally:
        generation._PIPELINES.clear()


def test_compile_task_arguments_and_answer_cross_a_process_boundary(exported):
    import io
    import pickle

    from ui.generation import TINY_MODEL
    _, args = exported
    cues, settings = zerogpu.example_settings(TINY_MODEL)
    key = (TINY_MODEL, "", "", "none")
    k, back, s = pickle.loads(pickle.dumps((key, cues, settings)))
    assert k == key and s == settings
    np.testing.assert_array_equal(back.pose_cue, cues.pose_cue)
    answer = (io.BytesIO(b"PK package bytes"), call_signature(args))
    archive, signature = pickle.loads(pickle.dumps(answer))
    assert archive.getvalue() == b"PK package bytes" and signature == answer[1]


def test_example_settings_are_the_models_defaults():
    from ui.generation import DEFAULT_FRAMES, TINY_MODEL
    cues, settings = zerogpu.example_settings(TINY_MODEL)
    assert settings["num_frames"] == DEFAULT_FRAMES[TINY_MODEL] == cues.num_frames
    assert settings["num_inference_steps"] == 1 and cues.height == settings["height"]


@pytest.mark.parametrize("cache, compiled", [("first-block", True), ("pab", False)])
def test_step_caches_with_compiled_blocks(pipe, exported, cache, compiled):
    """A cache hook on the block (First Block Cache) wraps the compiled forward; one inside it (Pyramid Attention
    Broadcast on the attention) would be bypassed by compiled code, so those calls run eagerly."""
    program, args = exported
    module = program.module()
    eager = _run(pipe, cache=cache, num_inference_steps=4)
    state = apply_compiled_blocks(pipe.transformer, lambda b: lambda *a: functional_call(module, b.state_dict(), a),
                                  call_signature(args))
    try:
        out = _run(pipe, cache=cache, num_inference_steps=4)
    finally:
        remove_compiled_blocks(pipe.transformer)
    np.testing.assert_allclose(out, eager, atol=1e-5)
    assert (state.compiled_calls > 0) == compiled and (state.eager_calls > 0) != compiled
