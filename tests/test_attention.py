"""CueFusionAttnProcessor: CogVideoX's attention through diffusers' dispatcher (attention backends selectable)."""

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel

from directanimator.attention import CueFusionAttnProcessor, check_attention_backend, set_attention_backend
from directanimator.errors import InputError
from directanimator.modeling import CueFusionTransformer3DModel
from directanimator.tiny import base_config, tiny_forward_inputs, tiny_transformer, tiny_transformer_config


@pytest.mark.parametrize("style", ["1.5", "1.0"])
def test_processor_equals_diffusers_own(style):
    """The plain CogVideoX model gives the same output with its own processor and with ours."""
    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config(style))).eval()
    inputs = {k: v for k, v in tiny_forward_inputs(base).items()
              if k not in ("pose_latents", "body_mask", "face_latents", "face_mask")}
    with torch.no_grad():
        ref = base(**inputs).sample
        base.set_attn_processor(CueFusionAttnProcessor())
        ours = base(**inputs).sample
        set_attention_backend(base, "_native_math")
        math = base(**inputs).sample
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(math, ref, rtol=1e-5, atol=1e-5)


def test_cf_dit_uses_it_after_build_and_load(tmp_path):
    model = tiny_transformer()
    assert all(isinstance(p, CueFusionAttnProcessor) for p in model.attn_processors.values())
    model.save_pretrained(tmp_path)
    loaded = CueFusionTransformer3DModel.from_pretrained(tmp_path)
    assert all(isinstance(p, CueFusionAttnProcessor) for p in loaded.attn_processors.values())


def test_backend_choice_reaches_the_kernel():
    """cuDNN attention cannot run on a CPU: if the choice is honoured, the forward fails there."""
    model = tiny_transformer().eval()
    inputs = tiny_forward_inputs(model)
    for block in model.transformer_blocks:  # bypass the CPU check on purpose: prove the dispatcher is used
        block.attn1.processor._attention_backend = "_native_cudnn"
    with pytest.raises(RuntimeError, match="No viable backend"), torch.no_grad():
        model(**inputs)
    set_attention_backend(model, None)
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).sample).all()


def test_clear_errors():
    with pytest.raises(InputError, match="unknown attention backend"):
        check_attention_backend("fastest")
    with pytest.raises(InputError, match="needs a CUDA GPU"):
        check_attention_backend("_native_flash", "cpu")
    check_attention_backend("_native_math", "cpu")
    plain = CogVideoXTransformer3DModel(**base_config(tiny_transformer_config()))
    with pytest.raises(InputError, match="dispatcher"):
        set_attention_backend(plain, "_native_math")
