"""DirectAnimatorPipeline with tiny real components: end to end, determinism, CFG, windows, save/load, loading
CogVideoX folders, clear errors; plus the latent helpers shared with the trainers."""

import json
import os

import numpy as np
import pytest
import torch

from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

from directanimator.errors import InputError
from directanimator.latents import check_frame_count, masks_to_latent_grid, pad_latent_frames
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.pipeline import DirectAnimatorPipeline, plan_windows
from equivalence import assert_same_outputs, assert_same_parameters


@pytest.fixture(scope="module")
def pipe():
    return make_tiny_pipeline()


@pytest.fixture(scope="module")
def cues():
    return tiny_driving_cues(num_frames=9)


def _seed(s=0):
    return torch.Generator().manual_seed(s)


def _count_calls(pipe):
    calls = []
    handle = pipe.transformer.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(kwargs["hidden_states"].shape), with_kwargs=True)
    return calls, handle


def _perturbed(pipe):
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for name, p in pipe.transformer.named_parameters():
            if name in pipe.transformer.cue_parameter_names():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_end_to_end_frames_and_size(pipe, cues):
    out = pipe(cues=cues, num_inference_steps=2, generator=_seed())
    assert out.frames.shape == (1, 9, 32, 48, 3) and out.frames.dtype == np.float32
    assert 0.0 <= out.frames.min() and out.frames.max() <= 1.0
    out = pipe(cues=cues, num_frames=6, height=16, width=32, num_inference_steps=2, output_type="pt")
    assert tuple(out.frames.shape) == (1, 6, 3, 16, 32)
    out = pipe(cues=cues, num_frames=5, num_inference_steps=1, output_type="pil")
    assert len(out.frames[0]) == 5 and out.frames[0][0].size == (48, 32)
    out = pipe(cues=cues, num_inference_steps=1, output_type="latent")
    assert tuple(out.frames.shape) == (1, 3, 4, 4, 6)  # 9 frames -> 3 latents, padding latent not returned


def test_arrays_instead_of_cues_and_seed_determinism(pipe, cues):
    kwargs = dict(image=cues.reference, pose_cue=cues.pose_cue, face_cue=cues.face_cue,
                  body_location=cues.body_location, face_location=cues.face_location, num_inference_steps=2)
    a = pipe(**kwargs, generator=_seed(1)).frames
    b = pipe(cues=cues, num_inference_steps=2, generator=_seed(1)).frames
    c = pipe(**kwargs, generator=_seed(2)).frames
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_cues_and_cue_scale_reach_the_model():
    pipe = make_tiny_pipeline()
    cues = tiny_driving_cues()
    fresh_on = pipe(cues=cues, num_inference_steps=2, generator=_seed()).frames
    fresh_off = pipe(cues=cues, num_inference_steps=2, generator=_seed(), cue_scale=0.0).frames
    np.testing.assert_array_equal(fresh_on, fresh_off)  # identity init: cues change nothing yet
    _perturbed(pipe)
    on = pipe(cues=cues, num_inference_steps=2, generator=_seed()).frames
    off = pipe(cues=cues, num_inference_steps=2, generator=_seed(), cue_scale=0.0).frames
    pose_only = pipe(cues=cues, num_inference_steps=2, generator=_seed(), cue_scale=(1.0, 0.0)).frames
    np.testing.assert_array_equal(off, fresh_off)
    assert np.abs(on - off).max() > 1e-3 and np.abs(on - pose_only).max() > 1e-4


def test_cfg_passes(pipe, cues):
    calls, handle = _count_calls(pipe)
    try:
        pipe(cues=cues, num_inference_steps=2, guidance_scale=6.0, prompt="a person", negative_prompt="blurry")
        assert [s[0] for s in calls] == [2, 2]  # uncond + cond in one batch
        calls.clear()
        pipe(cues=cues, num_inference_steps=2, guidance_scale=6.0)  # prompt == negative: identical passes
        assert [s[0] for s in calls] == [1, 1]
        calls.clear()
        pipe(cues=cues, num_inference_steps=2, guidance_scale=1.0, prompt="a person", negative_prompt="blurry")
        assert [s[0] for s in calls] == [1, 1]
    finally:
        handle.remove()


def test_plan_windows_cover_and_cross_fade():
    for total, window, overlap in [(3, 5, 2), (13, 5, 2), (21, 13, 4), (14, 5, 2), (30, 21, 4), (8, 4, 2)]:
        plans = plan_windows(total, window, overlap)
        cover = np.zeros(total)
        for start, w in plans:
            assert start + len(w) <= total
            cover[start:start + len(w)] += w
        assert plans[0][0] == 0 and plans[-1][0] + len(plans[-1][1]) == total
        assert np.all(cover > 0)
        for k, (start, w) in enumerate(plans[1:], 1):
            assert w[0] == 0.0  # a window's one-frame first latent never enters the blend
            prev_start, prev_w = plans[k - 1]
            assert prev_start + len(prev_w) - start >= min(overlap, window)  # at least the requested overlap
        if len(plans) == 2:
            np.testing.assert_allclose(cover, 1.0, atol=1e-6)  # linear cross-fade: weights sum to one


def test_windowed_generation_covers_every_frame_once():
    pipe = make_tiny_pipeline()
    _perturbed(pipe)
    cues = tiny_driving_cues(num_frames=27)
    run = dict(num_inference_steps=2, window_frames=13, window_overlap=8, generator=_seed())
    calls, handle = _count_calls(pipe)
    try:
        out = pipe(cues=cues, **run, output_type="latent")
    finally:
        handle.remove()
    # 27 frames -> padded to 29 -> 8 latents; windows of 4 latents (13 frames) overlapping by 2 -> starts 0, 2, 4
    assert [s for s, _ in plan_windows(8, 4, 2)] == [0, 2, 4]
    assert tuple(out.frames.shape) == (1, 8, 4, 4, 6)
    assert len(calls) == 2 * 3 and all(s[1] == 4 for s in calls)
    frames = pipe(cues=cues, **{**run, "generator": _seed()}).frames
    assert frames.shape == (1, 27, 32, 48, 3)  # every frame once, the 2 padding frames dropped
    # blending couples the windows: cue frames only the last window sees (21..26) change the latent it shares with
    # the middle window (5) at the first step, and nothing reaches latent 0 within two steps
    changed = tiny_driving_cues(num_frames=27)
    changed.pose_cue[21:] = 255 - changed.pose_cue[21:]
    out2 = pipe(cues=changed, **{**run, "generator": _seed()}, output_type="latent")
    diff = (out.frames - out2.frames).abs().amax(dim=(0, 2, 3, 4))
    assert diff[7] > 1e-4 and diff[5] > 1e-6 and diff[4] > 1e-6
    assert float(diff[0]) == 0.0


def test_callback_progress_and_interrupt(pipe, cues):
    seen, fractions = [], []

    def on_step(p, i, t, kwargs):
        seen.append((i, tuple(kwargs["latents"].shape)))
        if i == 1:
            p._interrupt = True
        return {"latents": kwargs["latents"]}

    out = pipe(cues=cues, num_inference_steps=4, callback_on_step_end=on_step,
               progress=lambda f, d: fractions.append(f))
    assert seen == [(0, (1, 3, 4, 4, 6)), (1, (1, 3, 4, 4, 6))]
    assert out.frames.shape[1] == 9
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_save_and_from_pretrained_round_trip(tmp_path, cues):
    pipe = make_tiny_pipeline(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["transformer"] == ["directanimator.modeling", "CueFusionTransformer3DModel"]
    assert not list((tmp_path / "model").rglob("*.bin"))
    loaded = DirectAnimatorPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.transformer, CueFusionTransformer3DModel)
    for name in ("transformer", "vae", "text_encoder"):
        assert_same_parameters(getattr(pipe, name), getattr(loaded, name))
    a = pipe(cues=cues, num_inference_steps=2, generator=_seed()).frames
    b = loaded(cues=cues, num_inference_steps=2, generator=_seed()).frames
    assert_same_outputs(b, a)


def test_from_pretrained_converts_a_cogvideox_i2v_folder(tmp_path, cues):
    from diffusers import CogVideoXImageToVideoPipeline, CogVideoXTransformer3DModel

    tiny = make_tiny_pipeline()
    config = {k: v for k, v in tiny.transformer.config.items()
              if not k.startswith("_") and k not in ("cue_in_channels", "cue_fusion")}
    base = CogVideoXTransformer3DModel(**config)
    base.load_state_dict(tiny.transformer.state_dict(), strict=False)
    cog = CogVideoXImageToVideoPipeline(tokenizer=tiny.tokenizer, text_encoder=tiny.text_encoder, vae=tiny.vae,
                                        transformer=base, scheduler=tiny.scheduler)
    cog.save_pretrained(tmp_path / "cog", safe_serialization=True)
    loaded = DirectAnimatorPipeline.from_pretrained(tmp_path / "cog")
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.transformer, CueFusionTransformer3DModel)
    assert_same_parameters(base, loaded.transformer)  # the base weights; the cue weights start at identity
    for name in ("vae", "text_encoder"):
        assert_same_parameters(getattr(tiny, name), getattr(loaded, name))
    a = tiny(cues=cues, num_inference_steps=2, generator=_seed()).frames
    b = loaded(cues=cues, num_inference_steps=2, generator=_seed()).frames
    assert_same_outputs(b, a)


def test_bad_model_paths_are_clear(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        DirectAnimatorPipeline.from_pretrained(tmp_path / "missing")
    with pytest.raises(InputError, match="Hugging Face cache"):
        DirectAnimatorPipeline.from_pretrained("someone/not-downloaded-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="model_index.json"):
        DirectAnimatorPipeline.from_pretrained(tmp_path / "empty")
    make_tiny_pipeline(tmp_path / "model")
    os.remove(tmp_path / "model" / "transformer" / "diffusion_pytorch_model.safetensors")
    torch.save({}, tmp_path / "model" / "transformer" / "diffusion_pytorch_model.bin")
    with pytest.raises(InputError, match=r"transformer/ \(only pickled weights, refused\)"):
        DirectAnimatorPipeline.from_pretrained(tmp_path / "model")
    with pytest.raises(InputError, match="safetensors"):
        DirectAnimatorPipeline.from_pretrained(tmp_path / "model", use_safetensors=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_frames=10), "only 9 frames"),
    (dict(num_frames=0), "at least 1"),
    (dict(height=20), "multiples of 16"),
    (dict(window_frames=8), "window_frames must be 1 \\+ 4k"),
    (dict(window_frames=5, window_overlap=6), "too short to overlap"),
    (dict(window_frames=13, window_overlap=4), "window_overlap"),
    (dict(window_frames=13, window_overlap=6), "window_overlap"),
    (dict(output_type="gif"), "output_type"),
    (dict(num_inference_steps=0), "num_inference_steps"),
])
def test_bad_settings_are_clear(pipe, cues, kwargs, message):
    with pytest.raises(InputError, match=message):
        pipe(cues=cues, **{"num_inference_steps": 1, **kwargs})


def test_mismatched_cues_and_no_reference_are_clear(pipe, cues):
    with pytest.raises(InputError, match="share frame count"):
        pipe(image=cues.reference, pose_cue=cues.pose_cue, face_cue=cues.face_cue[:5], num_inference_steps=1)
    with pytest.raises(InputError, match="reference image"):
        pipe(pose_cue=cues.pose_cue, num_inference_steps=1)


def test_latent_helpers():
    masks = np.zeros((9, 16, 24), np.float32)
    masks[0, :8, :8] = 1.0  # frame 0 alone -> latent 0
    masks[1:5, 8:, 16:] = 1.0  # frames 1-4 -> latent 1
    masks[5, :, :] = 1.0  # one of frames 5-8 -> latent 2 at 1/4
    grid = masks_to_latent_grid(masks)
    assert tuple(grid.shape) == (3, 1, 2, 3)
    assert grid[0, 0, 0, 0] == 1 and grid[0].sum() == 1
    assert grid[1, 0, 1, 2] == 1 and grid[1].sum() == 1
    torch.testing.assert_close(grid[2], torch.full((1, 2, 3), 0.25))
    x = torch.arange(3.0).view(1, 3, 1)
    padded, added = pad_latent_frames(x, 2)
    assert added == 1 and padded.flatten().tolist() == [0.0, 0.0, 1.0, 2.0]
    assert pad_latent_frames(x, None)[1] == 0
    with pytest.raises(InputError, match="use 49 or 53"):
        check_frame_count(50)


def test_vae_tiling_and_slicing_keep_the_output_shape(cues):
    pipe = make_tiny_pipeline()
    # tiles of 32 px with overlap over a 64x96 video: encoding and decoding both go through several tiles
    pipe.vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32, tile_overlap_factor_height=0.25,
                           tile_overlap_factor_width=0.25)
    pipe.vae.enable_slicing()
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    out = pipe(cues=cues, height=64, width=96, num_inference_steps=1, generator=_seed())
    assert out.frames.shape == (1, 9, 64, 96, 3) and np.isfinite(out.frames).all()


def test_blank_face_cue_windows_are_encoded_once(monkeypatch):
    # a face cue without a face is black: its windows' latents are the same, encoded once per window length
    import directanimator.pipeline as pipeline_module
    from directanimator.latents import encode_video

    pipe = make_tiny_pipeline()
    cues = tiny_driving_cues(num_frames=27)
    cues.face_cue[:] = 0
    calls = []

    def counting(vae, video, **kwargs):
        calls.append(video.shape)
        return encode_video(vae, video, **kwargs)

    monkeypatch.setattr(pipeline_module, "encode_video", counting)
    arrays = pipe._gather_cues(cues, None, None, None, None)
    plan = pipe._plan_video(arrays, cues, pipe._load_reference(None, cues), None, None, None, 13, 8)
    inputs = pipe.prepare_cue_inputs(arrays, plan, "cpu", torch.float32, lambda f, d: None)
    assert len(plan.windows) == 3 and len(calls) == 3 + 1  # three pose windows, one blank face window
    blank = pipe._cue_tensor(np.zeros((13, 32, 48, 3), np.uint8), 32, 48, "video")
    expected = pad_latent_frames(encode_video(pipe.vae, blank), pipe.transformer.config.patch_size_t)[0]
    assert all(torch.equal(w["face_latents"], expected) for w in inputs)
