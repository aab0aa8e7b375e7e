"""Cue-injection variants of CueFusionTransformer3DModel (the paper's Table 5 ablation): identity at init, the cues
act once trained, DC injection equals a wider patch embedding over concatenated channels, save/load, from_cogvideox,
early exit at block D, gradient checkpointing, the demo-pipeline CLI option (tiny configs of the real classes)."""

import json

import numpy as np
import pytest
import torch
from diffusers import CogVideoXTransformer3DModel

from directanimator.errors import InputError
from directanimator.injection import CUE_INJECTIONS, CueCrossAttention
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.tiny import base_config, tiny_forward_inputs, tiny_transformer, tiny_transformer_config
from equivalence import assert_same_outputs, assert_same_parameters

CUE_KEYS = ("pose_latents", "body_mask", "face_latents", "face_mask")
VARIANTS = ("concat", "cross_attention")


def _no_cues(inputs):
    return {k: v for k, v in inputs.items() if k not in CUE_KEYS}


def _perturb_cues(model, seed=1):
    """Give the cue modules non-trivial weights (a model 'after training')."""
    g = torch.Generator().manual_seed(seed)
    names = set(model.cue_parameter_names())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in names:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _base_twin(model, style):
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config(style))).eval()
    missing, _ = base.load_state_dict(model.state_dict(), strict=False)
    assert missing == []
    return base


def test_unknown_injection_is_a_clear_error():
    with pytest.raises(InputError, match="cue_injection must be one of cuefusion, concat, cross_attention"):
        tiny_transformer(cue_injection="film")
    assert CUE_INJECTIONS[0] == "cuefusion"
    assert tiny_transformer().cue_injection == "cuefusion"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("style", ("1.5", "1.0"))
def test_identity_at_init_and_cues_act_once_trained(variant, style):
    model = tiny_transformer(style, cue_injection=variant)
    assert model.cue_injection == variant and model.config.cue_injection == variant
    base = _base_twin(model, style)
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        ref = base(**_no_cues(inputs)).sample
        assert torch.equal(model(**inputs).sample, ref)
        assert torch.equal(model(**_no_cues(inputs)).sample, ref)
        _perturb_cues(model)
        full = model(**inputs).sample
        off = model(**inputs, cue_scale=0.0).sample
        half = model(**inputs, cue_scale=0.5).sample
        other_cues = model(**{**inputs, "pose_latents": inputs["pose_latents"].flip(0)}).sample
    assert (full - ref).abs().max() > 1e-3
    assert torch.equal(off, ref)  # scale 0 for every cue = no injection at all
    assert (half - full).abs().max() > 1e-4
    assert (other_cues - full).abs().max() > 1e-4


@pytest.mark.parametrize("style", ("1.5", "1.0"))
def test_concat_equals_a_wider_patch_embedding_over_concatenated_channels(style):
    """DC injection = CogVideoX with in_channels + 2 * (cue + mask) channels, the cue channels' weights appended."""
    model = _perturb_cues(tiny_transformer(style, cue_injection="concat"))
    config = base_config(tiny_transformer_config(style))
    cue_channels = 2 * (tiny_transformer_config(style)["cue_in_channels"] + 1)  # (latents + mask) per cue
    wide = CogVideoXTransformer3DModel(**{**config, "in_channels": config["in_channels"] + cue_channels}).eval()
    state = model.state_dict()
    state["patch_embed.proj.weight"] = torch.cat(
        [state["patch_embed.proj.weight"], state["pose_patch_embed.proj.weight"],
         state["face_patch_embed.proj.weight"]], dim=1)
    missing, _ = wide.load_state_dict(state, strict=False)
    assert missing == []
    inputs = tiny_forward_inputs(model, batch=2)
    stacked = torch.cat([inputs["hidden_states"], *(inputs[k] for k in CUE_KEYS)], dim=2)
    with torch.no_grad():
        ours = model(**inputs).sample
        ref = wide(**{**_no_cues(inputs), "hidden_states": stacked}).sample
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameters_are_base_plus_variant_modules(variant):
    model = tiny_transformer("1.5", cue_injection=variant)
    base = set(CogVideoXTransformer3DModel(**base_config(tiny_transformer_config("1.5"))).state_dict())
    extra = set(model.state_dict()) - base
    assert base <= set(model.state_dict())
    assert extra == set(model.cue_parameter_names())
    assert not any(".cue_fusion." in k for k in extra)
    blocks = {k for k in extra if ".cue_attention." in k}
    if variant == "concat":
        assert extra == {"pose_patch_embed.proj.weight", "face_patch_embed.proj.weight"}  # no bias of their own
        assert all(float(model.get_parameter(k).detach().abs().sum()) == 0 for k in extra)
    else:
        assert len(blocks) == 3 * 15 and all(isinstance(b.cue_attention, CueCrossAttention)
                                             for b in model.transformer_blocks)
    plain = CueFusionTransformer3DModel(**tiny_transformer_config("1.5", cue_fusion=False, cue_injection=variant))
    assert set(plain.state_dict()) == base


@pytest.mark.parametrize("variant", CUE_INJECTIONS)
def test_save_load_round_trip_keeps_the_variant(tmp_path, variant):
    model = _perturb_cues(tiny_transformer("1.5", cue_injection=variant))
    model.save_pretrained(tmp_path, safe_serialization=True)
    saved = json.loads((tmp_path / "config.json").read_text())
    # the default leaves config.json as it was before the option existed
    assert saved.get("cue_injection") == (None if variant == "cuefusion" else variant)
    loaded = CueFusionTransformer3DModel.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.cue_injection == variant
    assert_same_parameters(model, loaded)
    assert_same_parameters(loaded, model)
    inputs = tiny_forward_inputs(model)
    with torch.no_grad():
        assert_same_outputs(loaded(**inputs).sample, model(**inputs).sample)


def test_from_config_switches_the_variant():
    """The reproduction harness builds a variant from a CueFusion model's config."""
    model = tiny_transformer("1.5")
    assert "cue_injection" not in model.config and "cue_injection" not in model.config["_use_default_values"]
    for variant in CUE_INJECTIONS:
        built = CueFusionTransformer3DModel.from_config({**dict(model.config), "cue_injection": variant})
        assert built.cue_injection == variant
        assert (built.transformer_blocks[0].cue_fusion is not None) == (variant == "cuefusion")
        assert (built.transformer_blocks[0].cue_attention is not None) == (variant == "cross_attention")


@pytest.mark.parametrize("variant", VARIANTS)
def test_from_cogvideox_builds_each_variant_at_identity(tmp_path, variant):
    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config("1.5"))).eval()
    base.save_pretrained(tmp_path, safe_serialization=True)
    inputs = tiny_forward_inputs(base)
    with torch.no_grad():
        ref = base(**_no_cues(inputs)).sample
    model = CueFusionTransformer3DModel.from_cogvideox(tmp_path, cue_in_channels=4, cue_injection=variant).eval()
    assert model.cue_injection == variant
    assert all(p.device.type == "cpu" and not p.is_meta for p in model.parameters())
    assert_same_parameters(base, model)
    with torch.no_grad():
        assert_same_outputs(model(**inputs).sample, ref)
    with pytest.raises(InputError, match="cue_injection must be one of"):
        CueFusionTransformer3DModel.from_cogvideox(base, cue_injection="adapter")

    # from a trained CueFusion model (instance or folder): the same base weights, fresh identity cue modules
    cuefusion = _perturb_cues(CueFusionTransformer3DModel.from_cogvideox(base, cue_in_channels=4))
    cuefusion.save_pretrained(tmp_path / "cf", safe_serialization=True)
    for source in (cuefusion, tmp_path / "cf"):
        model = CueFusionTransformer3DModel.from_cogvideox(source, cue_injection=variant).eval()
        assert model.cue_injection == variant
        assert_same_parameters(base, model)
        with torch.no_grad():
            assert_same_outputs(model(**inputs).sample, ref)


@pytest.mark.parametrize("variant", VARIANTS)
def test_stop_at_block_matches_full_run(variant):
    model = _perturb_cues(tiny_transformer("1.5", cue_injection=variant))
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        full = model(**inputs, return_block_tokens=2)
        early = model(**inputs, return_block_tokens=2, stop_at_block=True)
        plain = model(**inputs).sample
        base_tokens = model(**_no_cues(inputs), return_block_tokens=2, stop_at_block=True).block_tokens
    assert early.sample is None
    assert torch.equal(early.block_tokens, full.block_tokens)
    assert torch.equal(full.sample, plain)
    assert (full.block_tokens - base_tokens).abs().max() > 1e-4  # the cues reach block D


@pytest.mark.parametrize("variant", VARIANTS)
def test_shared_batch1_cues_and_per_sample_scale(variant):
    """The pipeline's CFG layout (batch-1 cues and timestep) and per-sample strengths work in every variant."""
    model = _perturb_cues(tiny_transformer("1.5", cue_injection=variant))
    inputs = tiny_forward_inputs(model, batch=2)
    shared = {**inputs, "timestep": inputs["timestep"][:1], **{k: inputs[k][:1] for k in CUE_KEYS}}
    expanded = {**inputs, **{k: inputs[k][:1].expand_as(inputs[k]) for k in CUE_KEYS}}
    with torch.no_grad():
        torch.testing.assert_close(model(**shared).sample, model(**expanded).sample)
        mixed = model(**inputs, cue_scale=torch.tensor([0.0, 1.0])).sample
        full = model(**inputs).sample
        off = model(**inputs, cue_scale=0.0).sample
    torch.testing.assert_close(mixed[0], off[0])
    torch.testing.assert_close(mixed[1], full[1])


def _loss_and_grads(model, inputs):
    model.zero_grad(set_to_none=True)
    out = model(**inputs).sample
    (out ** 2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_starts_at_identity_and_checkpointing_agrees(variant):
    model = tiny_transformer("1.5", cue_injection=variant).train()
    inputs = tiny_forward_inputs(model)
    _, grads = _loss_and_grads(model, inputs)
    # the zero-initialised weights get a gradient at step 0, so training moves away from identity at once
    zero_init = (["pose_patch_embed.proj.weight", "face_patch_embed.proj.weight"] if variant == "concat"
                 else [f"transformer_blocks.{i}.cue_attention.to_out.weight" for i in range(3)])
    assert all(float(grads[name].abs().sum()) > 0 for name in zero_init)

    _perturb_cues(model)
    out_a, grads_a = _loss_and_grads(model, inputs)
    model.enable_gradient_checkpointing()
    out_b, grads_b = _loss_and_grads(model, inputs)
    torch.testing.assert_close(out_a, out_b)
    assert grads_a.keys() == grads_b.keys() and set(model.cue_parameter_names()) <= grads_a.keys()
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], msg=k)


@pytest.mark.parametrize("variant", VARIANTS)
def test_compiles_without_graph_breaks(variant):
    # backend="eager" traces with dynamo (fullgraph=True fails on any graph break) without inductor's slow codegen
    model = _perturb_cues(tiny_transformer("1.5", cue_injection=variant))
    inputs = tiny_forward_inputs(model)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).sample, model(**inputs).sample)


def test_make_demo_pipeline_cue_injection_option(tmp_path, capsys):
    from directanimator.tiny import tiny_vae
    from trainers.experiments.make_demo_pipeline import main

    tiny_vae().save_pretrained(tmp_path / "vae", safe_serialization=True)
    args = ["--vae", str(tmp_path / "vae"), "--size", "32", "--frames", "9", "--layers", "2", "--heads", "2",
            "--head-dim", "16", "--text-dim", "16", "--text-length", "8"]
    assert main([*args, "--out", str(tmp_path / "ca"), "--cue-injection", "cross_attention"]) == 0
    model = CueFusionTransformer3DModel.from_pretrained(tmp_path / "ca" / "transformer")
    assert model.cue_injection == "cross_attention" and model.transformer_blocks[1].cue_attention is not None
    assert main([*args, "--out", str(tmp_path / "bad"), "--cue-injection", "film"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("variant", VARIANTS)
def test_pipeline_runs_each_variant(variant):
    """The pipeline needs no change: at init a variant animates exactly as CueFusion at init (both are the base
    model); once trained, CFG with shared cues and per-cue strengths runs and the cues change the frames."""
    from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

    pipe = make_tiny_pipeline()
    cues = tiny_driving_cues(num_frames=5)
    reference = pipe(cues=cues, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).frames
    model = tiny_transformer("1.5", cue_injection=variant)
    base_keys = set(model.state_dict()) - set(model.cue_parameter_names())
    model.load_state_dict({k: v for k, v in pipe.transformer.state_dict().items() if k in base_keys}, strict=False)
    pipe.transformer = model
    kwargs = dict(cues=cues, num_inference_steps=2, guidance_scale=3.0, prompt="a", negative_prompt="")
    assert np.array_equal(pipe(cues=cues, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).frames,
                          reference)
    _perturb_cues(model)
    trained = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    weaker = pipe(**kwargs, cue_scale=(1.0, 0.0), generator=torch.Generator().manual_seed(0)).frames
    assert np.isfinite(trained).all() and np.abs(trained - weaker).max() > 1e-4
