"""CueFusionTransformer3DModel: identity init, base-key compatibility, patch layout, save/load, from_cogvideox,
gradient checkpointing, early exit at block D, torch.compile (tiny configs of the real classes)."""

import os

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import CogVideoXPatchEmbed
from safetensors.torch import load_file, save_file

from directanimator.tiny import base_config, tiny_forward_inputs, tiny_transformer, tiny_transformer_config

from directanimator.errors import InputError
from directanimator.modeling import CuePatchEmbed, CueFusionTransformer3DModel
from equivalence import assert_same_outputs, assert_same_parameters

CUE_KEYS = ("pose_latents", "body_mask", "face_latents", "face_mask")
STYLES = ("1.5", "1.0")


def _no_cues(inputs):
    return {k: v for k, v in inputs.items() if k not in CUE_KEYS}


def _perturb_cues(model, seed=1):
    """Give the cue modules non-trivial weights (a model 'after training')."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in model.cue_parameter_names():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _base_twin(model, style):
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config(style))).eval()
    missing, unexpected = base.load_state_dict(model.state_dict(), strict=False)
    assert missing == []
    return base


@pytest.mark.parametrize("style", STYLES)
def test_identity_at_init_matches_base_exactly(style):
    model = tiny_transformer(style)
    base = _base_twin(model, style)
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        ours = model(**inputs).sample
        ref = base(**_no_cues(inputs)).sample
        plain = model(**_no_cues(inputs)).sample
    assert ours.shape == ref.shape == inputs["hidden_states"][:, :, :4].shape
    assert torch.equal(ours, ref)
    assert torch.equal(plain, ref)


@pytest.mark.parametrize("style", STYLES)
def test_cues_change_output_once_trained_and_cue_scale_switches_them(style):
    model = _perturb_cues(tiny_transformer(style))
    base = _base_twin(model, style)
    inputs = tiny_forward_inputs(model)
    with torch.no_grad():
        ref = base(**_no_cues(inputs)).sample
        full = model(**inputs).sample
        off = model(**inputs, cue_scale=0.0).sample
        pose_only = model(**inputs, cue_scale=(1.0, 0.0)).sample
        no_face = model(**{**inputs, "face_latents": None, "face_mask": None}).sample
        half = model(**inputs, cue_scale=0.5).sample
    assert (full - ref).abs().max() > 1e-3
    assert torch.equal(off, ref)  # scale 0 = no injection at all
    # the face cue's stream still differs from "absent" only through its injection; with its scale 0 and pose on,
    # the result equals dropping the face cue
    torch.testing.assert_close(pose_only, no_face)
    assert (half - full).abs().max() > 1e-4


def test_shared_batch1_cues_and_timestep_equal_the_expanded_batch():
    """CFG shares cues and t: batch-1 cues with a batch-1 timestep give what the expanded batch gives."""
    model = _perturb_cues(tiny_transformer("1.5"))
    inputs = tiny_forward_inputs(model, batch=2)
    shared = {**inputs, "timestep": inputs["timestep"][:1]}
    for key in CUE_KEYS:
        shared[key] = inputs[key][:1]
    expanded = {**inputs}
    for key in CUE_KEYS:
        expanded[key] = inputs[key][:1].expand_as(inputs[key])
    with torch.no_grad():
        a = model(**shared).sample
        b = model(**expanded).sample
        c = model(**{**shared, "timestep": inputs["timestep"]}).sample  # batch-1 cues, per-sample timesteps
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c, b)
    with pytest.raises(InputError, match="batch"):
        model(**{**inputs, "pose_latents": torch.cat([inputs["pose_latents"]] * 2)[:3]})


def test_per_sample_cue_scale():
    model = _perturb_cues(tiny_transformer("1.5"))
    base = _base_twin(model, "1.5")
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        mixed = model(**inputs, cue_scale=torch.tensor([0.0, 1.0])).sample
        full = model(**inputs).sample
        ref = base(**_no_cues(inputs)).sample
    torch.testing.assert_close(mixed[0], ref[0])
    torch.testing.assert_close(mixed[1], full[1])


def test_state_dict_keys_are_base_keys_plus_cue_keys():
    model = tiny_transformer("1.5")
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config("1.5")))
    ours, theirs = set(model.state_dict()), set(base.state_dict())
    assert theirs <= ours
    extra = ours - theirs
    assert extra == set(model.cue_parameter_names())
    assert all(k.startswith(("pose_patch_embed.", "face_patch_embed.")) or ".cue_fusion." in k for k in extra)
    plain = CueFusionTransformer3DModel(**tiny_transformer_config("1.5", cue_fusion=False))
    assert set(plain.state_dict()) == theirs
    assert model.config.num_layers == len(model.transformer_blocks) == 3


@pytest.mark.parametrize("style", STYLES)
def test_cue_patch_embed_matches_cogvideox_patch_layout(style):
    cfg = tiny_transformer_config(style)
    p_t = cfg.get("patch_size_t")
    channels, dim = 5, 12
    torch.manual_seed(0)
    ours = CuePatchEmbed(2, p_t, channels, dim, bias=True)
    ref = CogVideoXPatchEmbed(
        patch_size=2, patch_size_t=p_t, in_channels=channels, embed_dim=dim, text_embed_dim=4,
        use_positional_embeddings=False, use_learned_positional_embeddings=False,
    )
    ref.proj.load_state_dict(ours.proj.state_dict())
    x = torch.randn(2, 4, channels, 6, 8)
    text = torch.zeros(2, 3, 4)
    expected = ref(text, x)[:, 3:]
    got = ours(x)
    assert got.shape == expected.shape == (2, (4 // (p_t or 1)) * 3 * 4, dim)
    torch.testing.assert_close(got, expected)

    # a spatially and temporally localised input lands on the same token index
    spot = torch.zeros(1, 4, channels, 6, 8)
    spot[0, 3, :, 4, 6] = 1.0
    with torch.no_grad():
        for m in (ours.proj, ref.proj):
            m.bias.zero_()
    hit_ours = ours(spot).abs().sum(-1)[0].nonzero().flatten().tolist()
    hit_ref = ref(text[:1], spot)[:, 3:].abs().sum(-1)[0].nonzero().flatten().tolist()
    assert hit_ours == hit_ref and len(hit_ours) == 1


@pytest.mark.parametrize("style", STYLES)
def test_save_load_round_trip(tmp_path, style):
    model = _perturb_cues(tiny_transformer(style, cue_in_channels=4))
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert os.path.isfile(tmp_path / "diffusion_pytorch_model.safetensors")
    loaded = CueFusionTransformer3DModel.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.cue_in_channels == 4 and loaded.config.cue_fusion is True
    assert loaded.config.num_layers == 3
    assert type(loaded.transformer_blocks[0]).__name__ == "CueFusionBlock"
    assert_same_parameters(model, loaded)
    assert_same_parameters(loaded, model)
    inputs = tiny_forward_inputs(model)
    with torch.no_grad():
        assert_same_outputs(loaded(**inputs).sample, model(**inputs).sample)


def test_from_cogvideox_folder_instance_and_errors(tmp_path):
    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config("1.5"))).eval()
    folder = tmp_path / "cogvideox" / "transformer"
    base.save_pretrained(folder, safe_serialization=True)
    inputs = tiny_forward_inputs(base)
    with torch.no_grad():
        ref = base(**_no_cues(inputs)).sample

    # the pipeline folder (parent) and the transformer folder both work
    for source in (folder, tmp_path / "cogvideox"):
        model = CueFusionTransformer3DModel.from_cogvideox(source, cue_in_channels=4).eval()
        assert model.config.cue_in_channels == 4
        assert_same_parameters(base, model)
        with torch.no_grad():
            assert_same_outputs(model(**inputs).sample, ref)
        assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
        assert all(float(b.cue_fusion.gain.detach().abs().sum()) == 0 for b in model.transformer_blocks)

    from_instance = CueFusionTransformer3DModel.from_cogvideox(base, cue_in_channels=4).eval()
    with torch.no_grad():
        assert torch.equal(from_instance(**inputs).sample, ref)

    # a checkpoint missing a non-cue weight is refused, naming the key
    state = load_file(folder / "diffusion_pytorch_model.safetensors")
    del state["transformer_blocks.1.attn1.to_q.weight"]
    save_file(state, folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(InputError, match="transformer_blocks.1.attn1.to_q.weight"):
        CueFusionTransformer3DModel.from_cogvideox(folder, cue_in_channels=4)

    # weightless / missing folders
    os.remove(folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(InputError, match="no weights"):
        CueFusionTransformer3DModel.from_cogvideox(folder, cue_in_channels=4)
    with pytest.raises(InputError, match="does not exist"):
        CueFusionTransformer3DModel.from_cogvideox(tmp_path / "nope")
    with pytest.raises(InputError, match="Hugging Face cache"):
        CueFusionTransformer3DModel.from_cogvideox("nobody/not-a-cached-model")


def _loss_and_grads(model, inputs):
    model.zero_grad(set_to_none=True)
    out = model(**inputs).sample
    loss = (out ** 2).mean()
    loss.backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_same_outputs_and_grads():
    model = _perturb_cues(tiny_transformer("1.5")).train()
    inputs = tiny_forward_inputs(model)
    out_a, grads_a = _loss_and_grads(model, inputs)
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    out_b, grads_b = _loss_and_grads(model, inputs)
    torch.testing.assert_close(out_a, out_b)
    assert grads_a.keys() == grads_b.keys()
    assert any("cue_fusion" in k for k in grads_a) and any("pose_patch_embed" in k for k in grads_a)
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], msg=k)


def test_training_starts_from_identity_init():
    """Zero gain gets a gradient at step 0; after one step every cue parameter gets one."""
    model = tiny_transformer("1.5").train()
    inputs = tiny_forward_inputs(model)
    _, grads = _loss_and_grads(model, inputs)
    assert all(float(grads[f"transformer_blocks.{i}.cue_fusion.gain"].abs().sum()) > 0 for i in range(3))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in grads:
                p -= 0.1 * grads[n]
    _, grads = _loss_and_grads(model, inputs)
    for name in model.cue_parameter_names():
        # the last block's gamma only feeds blocks that do not exist: the gate part of its MLP has no gradient
        assert name in grads and float(grads[name].abs().sum()) > 0, name


@pytest.mark.parametrize("depth", [1, 2])
def test_stop_at_block_matches_full_run(depth):
    model = _perturb_cues(tiny_transformer("1.5"))
    inputs = tiny_forward_inputs(model)
    with torch.no_grad():
        full = model(**inputs, return_block_tokens=depth)
        early = model(**inputs, return_block_tokens=depth, stop_at_block=True)
        plain = model(**inputs).sample
        tup = model(**inputs, return_block_tokens=depth, return_dict=False)
    assert early.sample is None
    assert full.block_tokens.shape == (1, 1 * 2 * 3, model.config.num_attention_heads * model.config.attention_head_dim)
    assert torch.equal(early.block_tokens, full.block_tokens)
    assert torch.equal(full.sample, plain)
    assert len(tup) == 2 and torch.equal(tup[1], full.block_tokens)
    with pytest.raises(InputError):
        model(**inputs, return_block_tokens=4)
    with pytest.raises(InputError):
        model(**inputs, stop_at_block=True)


def test_torch_compile_fullgraph_no_graph_breaks():
    # backend="eager" traces with dynamo (fullgraph=True fails on any graph break) without inductor's slow codegen
    model = _perturb_cues(tiny_transformer("1.5"))
    inputs = tiny_forward_inputs(model)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).sample, model(**inputs).sample)


def test_regional_compile_of_repeated_blocks():
    model = _perturb_cues(tiny_transformer("1.5"))
    inputs = tiny_forward_inputs(model)
    with torch.no_grad():
        expected = model(**inputs).sample
    model.compile_repeated_blocks(backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).sample, expected)
        torch.testing.assert_close(model(**inputs, cue_scale=(1.0, 0.5)).sample,
                                   model(**inputs, cue_scale=(1.0, 0.5)).sample)


def test_bad_cue_shape_is_a_clear_error():
    model = tiny_transformer("1.5")
    inputs = tiny_forward_inputs(model)
    inputs["pose_latents"] = inputs["pose_latents"][:, :, :, :2]
    with pytest.raises(InputError, match="pose_latents"):
        model(**inputs)
