"""Memory tiers (directanimator.memory) on the tiny real pipeline, on CPU: group offload's hooks run (onload device
cpu) and leave the output bit-identical; fp8 layerwise casting stores float8_e4m3fn weights and stays close."""

import pytest
import torch

from directanimator.errors import InputError
from directanimator.memory import apply_memory_mode, check_memory_mode, remove_offloading
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues


@pytest.fixture(scope="module")
def cues():
    return tiny_driving_cues(num_frames=9)


def _run(pipe, cues):
    return pipe(cues=cues, num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                output_type="latent").frames


@pytest.fixture(scope="module")
def resident(cues):
    return _run(make_tiny_pipeline(), cues)


@pytest.mark.parametrize("offload_type", ["block_level", "leaf_level"])
def test_group_offload_runs_its_hooks_and_keeps_the_output(cues, resident, offload_type):
    pipe = make_tiny_pipeline()
    apply_memory_mode(pipe, "group-offload", device="cpu", offload_type=offload_type)
    hooked = [m for m in pipe.transformer.modules()
              if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.get_hook("group_offloading")]
    assert hooked  # diffusers' group offloading hooks are in place
    assert pipe._execution_device == torch.device("cpu")
    assert torch.equal(_run(pipe, cues), resident)
    remove_offloading(pipe, "cpu")  # back to resident: no hook left, same output
    assert not [m for m in pipe.transformer.modules()
                if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.get_hook("group_offloading")]
    assert torch.equal(_run(pipe, cues), resident)


def test_fp8_storage_stores_float8_and_stays_close(cues, resident):
    pipe = make_tiny_pipeline()
    apply_memory_mode(pipe, "resident", device="cpu", fp8=True)
    block = pipe.transformer.transformer_blocks[0]
    assert block.ff.net[2].weight.dtype == torch.float8_e4m3fn
    assert block.cue_fusion.linear.weight.dtype == torch.float8_e4m3fn
    assert pipe.transformer.pose_patch_embed.proj.weight.dtype == torch.float32  # patch embeddings skipped
    assert pipe.transformer.dtype == torch.float32  # the compute dtype
    out = _run(pipe, cues)
    assert not torch.equal(out, resident)
    assert (out - resident).norm() / resident.norm() < 0.05


def test_bad_memory_settings_are_clear():
    with pytest.raises(InputError, match="unknown memory mode 'gpu'"):
        check_memory_mode("gpu")
    with pytest.raises(InputError, match="offload type"):
        check_memory_mode("group-offload", offload_type="block")
    with pytest.raises(InputError, match="needs a GPU"):
        apply_memory_mode(make_tiny_pipeline(), "sequential-offload", device="cpu")


def test_app_memory_modes_and_cache_reach_the_pipeline(cues):
    """The app's Advanced panel: every memory mode loads (offload tiers stay resident without CUDA, FP8 stores
    float8 weights) and the step cache choice runs."""
    from ui.generation import CACHE_CHOICES, MEMORY_MODES, TINY_MODEL, _PIPELINES, load_pipeline, run_pipeline

    assert "group offload" in MEMORY_MODES and "first-block" in CACHE_CHOICES
    key = load_pipeline(TINY_MODEL, "", "", "FP8 weights + group offload")
    pipe = _PIPELINES[key]
    assert pipe.transformer.transformer_blocks[0].ff.net[2].weight.dtype == torch.float8_e4m3fn
    settings = dict(num_inference_steps=2, num_frames=9, seed=0, cache="first-block")
    frames = run_pipeline(key, cues, settings)
    assert frames.shape[0] == 9 and not pipe.transformer.is_cache_enabled
    _PIPELINES.clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: group offload with streams, fp8 on the GPU")
def test_cuda_group_offload_with_streams_and_fp8(cues):
    base = make_tiny_pipeline().to("cuda")
    resident = _run(base, cues)
    pipe = make_tiny_pipeline()
    apply_memory_mode(pipe, "group-offload", "cuda")  # block level, CUDA stream prefetching
    assert pipe._execution_device.type == "cuda"
    torch.testing.assert_close(_run(pipe, cues), resident)
    remove_offloading(pipe, "cuda")
    apply_memory_mode(pipe, "resident", "cuda", fp8=True)
    out = _run(pipe, cues)
    assert (out - resident).norm() / resident.norm() < 0.05
