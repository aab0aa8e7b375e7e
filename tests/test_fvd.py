"""Tests for FVD: the pure-torch I3D (directanimator.metrics.i3d) in the layout of ``i3d_pretrained_400.pt``, its
input convention and 16-frame clips, and FVD in the evaluator."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from directanimator.errors import InputError
from directanimator.metrics import i3d, weights
from directanimator.metrics.suite import Evaluator
from eval_weights import write_i3d_weights


def _video(seed=0, t=16, h=24, w=32):
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


def test_layout_matches_the_pytorch_i3d_state_dict():
    model = i3d.InceptionI3D()
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    # the published parameter count of the piergiaj pytorch-i3d RGB network (400 classes)
    assert sum(p.numel() for p in model.parameters()) == 12_697_264
    for key, shape in {"Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7), "Conv3d_1a_7x7.bn.running_var": (64,),
                       "Conv3d_2b_1x1.conv3d.weight": (64, 64, 1, 1, 1), "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
                       "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1), "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
                       "Mixed_3c.b3b.conv3d.weight": (64, 256, 1, 1, 1), "Mixed_4b.b2a.conv3d.weight": (16, 480, 1, 1, 1),
                       "Mixed_4f.b1b.bn.bias": (320,), "Mixed_5b.b0.conv3d.weight": (256, 832, 1, 1, 1),
                       "Mixed_5c.b2b.conv3d.weight": (128, 48, 3, 3, 3), "logits.conv3d.weight": (400, 1024, 1, 1, 1),
                       "logits.conv3d.bias": (400,)}.items():
        assert state[key] == shape, key
    assert len([k for k in state if k.endswith("conv3d.weight")]) == 3 + 9 * 6 + 1
    assert not any(k.endswith("conv3d.bias") for k in state if not k.startswith("logits."))


def test_tf_same_padding_and_a_unit_against_explicit_padding():
    # TensorFlow SAME: output ceil(n / s); the odd pixel of padding goes after
    assert i3d.same_padding(224, 7, 2) == (2, 3)
    assert i3d.same_padding(16, 7, 2) == (2, 3)
    assert i3d.same_padding(112, 3, 2) == (0, 1)
    assert i3d.same_padding(8, 2, 2) == (0, 0)
    assert i3d.same_padding(7, 3, 1) == (1, 1)
    unit = i3d._Unit(2, 3, (3, 3, 3), (2, 2, 2))
    unit.bn.running_mean.normal_()
    unit.bn.bias.data.normal_()
    x = torch.randn(1, 2, 5, 6, 7)
    ref = F.relu(unit.bn(F.conv3d(F.pad(x, (1, 1, 0, 1, 1, 1)), unit.conv3d.weight, stride=2)))
    assert unit(x).shape == (1, 3, 3, 3, 4) and torch.allclose(unit(x), ref)


def test_preprocess_and_clips():
    flat = np.full((16, 24, 32, 3), 51, np.uint8)
    x = i3d.InceptionI3D.preprocess(flat)
    assert x.shape == (3, 16, 224, 224) and torch.allclose(x, torch.full_like(x, (51 / 255 - 0.5) * 2))
    ramp = np.broadcast_to(np.arange(32, dtype=np.uint8)[None, None, :, None] * 8, (16, 24, 32, 3)).copy()
    y = i3d.InceptionI3D.preprocess(ramp)
    assert y.shape == (3, 16, 224, 224) and y.min() >= -1 and y.max() <= 1
    assert y[0, 0, 0, 0] > -1 and y[0, 0, 0, -1] < (248 / 255 - 0.5) * 2  # a centre crop of the 299-wide resize
    assert [len(c) for c in i3d.video_clips(_video(t=49))] == [16, 16, 16]
    with pytest.raises(InputError, match="at least 16 frames"):
        i3d.video_clips(_video(t=15))


def test_known_output_with_weights_we_set(tmp_path):
    """Zero convolutions, BatchNorm biases set: every unit outputs relu(its bias), so the features are
    ``logits.W @ concat(Mixed_5c's b0, b1b, b2b, b3b biases, relu'd) + logits.b`` for every clip."""
    path = write_i3d_weights(tmp_path / "i3d_pretrained_400.pt")
    state = torch.load(path, weights_only=True)
    g = torch.Generator().manual_seed(3)
    for key in state:
        if key.endswith("conv3d.weight") and not key.startswith("logits."):
            state[key].zero_()
        elif key.endswith("bn.bias"):
            state[key] = torch.randn(state[key].shape, generator=g)
    torch.save(state, path)
    model = i3d.load_i3d(path)
    feats = model.video_features(_video(t=33), batch_size=2)  # 33 frames: 2 clips
    relu = torch.cat([state[f"Mixed_5c.{b}.bn.bias"].clamp(min=0) for b in ("b0", "b1b", "b2b", "b3b")])
    expected = state["logits.conv3d.weight"].reshape(400, 1024) @ relu + state["logits.conv3d.bias"]
    assert feats.shape == (2, 400)
    np.testing.assert_allclose(feats, expected.double().numpy()[None].repeat(2, 0), rtol=1e-4, atol=1e-4)


def test_fvd_in_the_evaluator_loading_and_errors(tmp_path):
    wdir = tmp_path / "w"
    wdir.mkdir()
    path = write_i3d_weights(wdir / "i3d_pretrained_400.pt")
    weights.convert(str(path))  # the .safetensors twin is preferred
    assert weights.find_weight("i3d", [wdir]) == wdir / "i3d_pretrained_400.safetensors"
    ev = Evaluator([wdir], device="cpu", metrics=["fvd"])
    assert ev.status["fvd"]["ready"] and not ev.missing_weights()
    a, b = _video(1, t=32), _video(2, t=32)
    same = ev.evaluate_video(a, a)
    assert same["features"]["fvd"][0].shape == (2, 400) and "fvd" not in same["metrics"]  # a dataset's number
    value, why = ev.per_set_of([same], "fvd")
    assert why == "" and value == pytest.approx(0.0, abs=1e-6)
    other = ev.evaluate_video(a, b)
    value, _ = ev.per_set_of([other], "fvd")
    assert value > 0
    short = ev.evaluate_video(a[:10], b[:10])
    assert "at least 16 frames" in short["skipped"]["fvd"] and "fvd" not in short["features"]
    one = ev.evaluate_video(a[:16], b[:16])  # one clip: no covariance
    value, why = ev.per_set_of([one], "fvd")
    assert value is None and "FVD over 1 16-frame clips" in why and "N >= 2" in why
    # a damaged or foreign file: one line naming it
    state = torch.load(path, weights_only=True)
    del state["Mixed_4d.b1b.bn.running_var"]
    torch.save(state, tmp_path / "cut.pt")
    with pytest.raises(InputError, match="cut.pt is not the expected weight file: it lacks Mixed_4d.b1b.bn.running_var"):
        i3d.load_i3d(tmp_path / "cut.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read the weights .*bad.pt"):
        i3d.load_i3d(tmp_path / "bad.pt")
