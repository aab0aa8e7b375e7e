"""The Same2X teacher truncated to its first D blocks (trainers.same2x.load_truncated_teacher): only blocks 1..D are
read and kept, and its block-D tokens are exactly the whole model's."""

import pytest
import torch

from directanimator.errors import InputError
from directanimator.tiny import tiny_forward_inputs, tiny_transformer
from trainers.same2x import load_truncated_teacher


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    model = tiny_transformer(num_layers=4).eval()
    with torch.no_grad():  # non-zero cue weights: the cue streams feed the block tokens
        g = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if name in model.cue_parameter_names():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    folder = tmp_path_factory.mktemp("teacher") / "transformer"
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100KB")  # sharded, with an index
    return model, folder


@pytest.mark.parametrize("depth", [1, 3])
def test_truncated_teacher_gives_the_whole_models_block_tokens(whole, depth):
    model, folder = whole
    assert len(list(folder.glob("*.safetensors"))) > 1
    teacher = load_truncated_teacher(str(folder), depth, torch.float32)
    assert len(teacher.transformer_blocks) == depth and teacher.config.num_layers == depth
    assert not [k for k in teacher.state_dict() if k.startswith(f"transformer_blocks.{depth}.")]
    whole_params = sum(p.numel() for p in model.parameters())
    block_params = sum(p.numel() for p in model.transformer_blocks[0].parameters())
    assert sum(p.numel() for p in teacher.parameters()) == whole_params - (4 - depth) * block_params
    inputs = tiny_forward_inputs(model, batch=2)
    with torch.no_grad():
        ref = model(**inputs, return_block_tokens=depth, stop_at_block=True).block_tokens
        got = teacher(**inputs, return_block_tokens=depth, stop_at_block=True).block_tokens
    assert torch.equal(got, ref)


def test_truncated_teacher_bad_depth_is_clear(whole):
    with pytest.raises(InputError, match="--align-depth must be in 1..4"):
        load_truncated_teacher(str(whole[1]), 5)
