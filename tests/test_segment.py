"""Person segmentation backends and frame dropping, run for real (MediaPipe models ship in the wheel; the
Grounded-SAM path runs tiny random-weight transformers models saved to a local folder)."""

import os

import numpy as np
import pytest

from directanimator.cues.segment import (SEGMENTERS, GroundedSamSegmenter, MediaPipeSegmenter, Segmentation,
                                         drop_bad_frames, get_segmenter)
from directanimator.errors import InputError

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
WALK = os.path.join(os.path.dirname(__file__), "..", "examples", "driving_walk.mp4")


def astronaut():
    import skimage.data

    return skimage.data.astronaut()


def grace_hopper():
    import matplotlib.cbook
    from PIL import Image

    return np.array(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))


def bbox(mask):
    ys, xs = np.nonzero(mask > 0.5)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.fixture(scope="module")
def segmenter():
    seg = MediaPipeSegmenter()
    yield seg
    seg.close()


# ---------------------------------------------------------------------------------------------------------------
# MediaPipe on real photos and real footage


@pytest.mark.parametrize("name,area_range", [("astronaut", (0.25, 0.65)), ("grace_hopper", (0.35, 0.8))])
def test_mediapipe_person_in_real_photo(segmenter, name, area_range):
    image = astronaut() if name == "astronaut" else grace_hopper()
    seg = segmenter.segment_image(image)
    h, w = image.shape[:2]
    assert seg.masks.shape == (1, h, w) and seg.masks.dtype == np.float32
    assert seg.scores.shape == (1,) and seg.scores.dtype == np.float32
    assert 0.0 <= seg.masks.min() and seg.masks.max() <= 1.0
    area = float(seg.areas[0])
    assert area_range[0] < area < area_range[1], area
    x0, y0, x1, y1 = bbox(seg.masks[0])
    # Head near the top, body down to the bottom edge (both are head-and-shoulders portraits).
    assert y0 < 0.15 * h and y1 > 0.9 * h
    assert x1 - x0 > 0.4 * w
    assert seg.scores[0] > 0.6
    assert not drop_bad_frames(seg)[0]


def test_mediapipe_flat_frame_is_empty_and_dropped(segmenter):
    seg = segmenter.segment_image(np.full((240, 320, 3), 128, np.uint8))
    assert seg.masks.shape == (1, 240, 320)
    assert seg.masks.max() <= 0.5 and seg.scores[0] == 0.0
    assert drop_bad_frames(seg)[0]


def test_mediapipe_person_in_some_frames_only(segmenter):
    person = astronaut()
    gray = np.full_like(person, 128)
    # A person walks in, leaves for three frames, comes back (small shifts so it is a video, not a still).
    frames = np.stack([np.roll(person, 3 * i, axis=1) for i in range(4)] + [gray] * 3
                      + [np.roll(person, 3 * i, axis=1) for i in range(4)])
    seg = segmenter.segment_video(frames)
    assert seg.masks.shape == frames.shape[:3] and seg.scores.shape == (len(frames),)
    dropped = drop_bad_frames(seg)
    assert dropped[4:7].all()
    assert (seg.scores[4:7] == 0).all() and seg.masks[4:7].max() <= 0.5
    assert not dropped[:4].any() and not dropped[7:].any()
    assert (seg.areas[:4] > 0.25).all() and (seg.areas[7:] > 0.25).all()


def _read(path, n):
    import cv2

    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        s = 512 / max(h, w)
        frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (round(w * s), round(h * s)),
                                 interpolation=cv2.INTER_AREA))
    cap.release()
    return np.stack(frames)


def _walking_clip(kind, n=16):
    """Real footage: the example walk (whole body), the same shrunk into a wide empty frame, or vtest.avi."""
    import cv2

    if kind == "vtest":
        if not os.path.exists(VTEST):
            pytest.skip("opencv-doc's vtest.avi is not installed")
        return _read(VTEST, n), None
    if not os.path.exists(WALK):
        pytest.skip("examples/driving_walk.mp4 is missing")
    frames = _read(WALK, n)
    if kind == "walk":
        return frames, None
    t, h, w = frames.shape[:3]
    small = np.full_like(frames, 118)
    region = (slice(h // 2, h // 2 + h // 4), slice(w // 3, w // 3 + w // 4))
    for i in range(t):
        small[i][region] = cv2.resize(frames[i], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    return small, region


@pytest.mark.parametrize("kind", ["walk", "walk_small", "vtest"])
def test_mediapipe_whole_body_in_real_footage(segmenter, kind):
    frames, region = _walking_clip(kind)
    seg = segmenter.segment_video(frames)
    dropped = drop_bad_frames(seg)
    assert (~dropped).mean() >= 0.8, (seg.areas, seg.scores)
    for t in np.flatnonzero(~dropped):
        x0, y0, x1, y1 = bbox(seg.masks[t])
        # A whole standing person: taller than wide, a sane size for the shot, not the whole frame.
        assert y1 - y0 > 1.3 * (x1 - x0)
        assert 0.0005 < seg.areas[t] < 0.3
        if region is not None:  # the small person's mask stays where the person is
            assert (seg.masks[t][region] > 0.5).sum() > 0.9 * (seg.masks[t] > 0.5).sum()
    # The person moves smoothly: frame-to-frame centre jumps stay small.
    centres = np.array([np.mean(bbox(seg.masks[t])[::2]) for t in np.flatnonzero(~dropped)])
    assert np.abs(np.diff(centres)).max() < 0.1 * frames.shape[2]


def test_mediapipe_rejects_bad_input(segmenter):
    with pytest.raises(InputError):
        segmenter.segment_video(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(InputError):
        segmenter.segment_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError):
        get_segmenter("nope")
    with pytest.raises(InputError):
        MediaPipeSegmenter(model_complexity=3)


def test_mediapipe_model_not_in_wheel_is_input_error(monkeypatch):
    import mediapipe as mp

    lite = os.path.join(os.path.dirname(mp.__file__), "modules", "pose_landmark", "pose_landmark_lite.tflite")
    if os.path.exists(lite):
        pytest.skip("the lite pose model is installed here")
    # Offline the fetch fails at once; make sure of it even where a network exists.
    import urllib.request

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(InputError, match="model_complexity=1"):
        MediaPipeSegmenter(model_complexity=0)
    assert not os.path.exists(lite)


# ---------------------------------------------------------------------------------------------------------------
# drop_bad_frames


def _boxes_seg(sizes, scores=None, hw=(64, 64)):
    masks = np.zeros((len(sizes),) + hw, np.float32)
    for t, s in enumerate(sizes):
        masks[t, :s, :s] = 1.0
    scores = np.full(len(sizes), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Segmentation(masks=masks, scores=scores)


def test_drop_area_jump():
    sizes = [20, 20, 21, 20, 40, 20, 21, 20, 20]  # frame 4's area is 4x its neighbours'
    dropped = drop_bad_frames(_boxes_seg(sizes))
    assert dropped.tolist() == [i == 4 for i in range(9)]


def test_drop_low_score_and_empty():
    sizes = [20, 20, 0, 20, 20, 20]
    scores = [0.9, 0.2, 0.9, 0.9, 0.9, 0.9]
    dropped = drop_bad_frames(_boxes_seg(sizes, scores))
    assert dropped.tolist() == [False, True, True, False, False, False]
    # Thresholds are parameters.
    assert not drop_bad_frames(_boxes_seg(sizes, scores), min_score=0.1)[1]


def test_drop_keeps_slow_change():
    sizes = list(range(20, 40, 2))  # a person walking towards the camera grows steadily
    assert not drop_bad_frames(_boxes_seg(sizes)).any()


# ---------------------------------------------------------------------------------------------------------------
# Grounded SAM (tiny random weights saved to a local folder, loaded through the real loading code)


def make_tiny_grounded_sam(root):
    """Save tiny random-weight Grounding DINO (+ tokenizer, PIL image processor) and SAM2-video folders."""
    import torch
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessorPil, Sam2VideoConfig, Sam2VideoModel, SwinConfig)

    det, sam = os.path.join(root, "gdino"), os.path.join(root, "sam2")
    # Grounding DINO looks for BERT's ids of [CLS], [SEP], "." and "?".
    special = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, "person": 1000, ".": 1012,
               "?": 1029}
    taken = set(special.values())
    vocab = {f"[unused{i}]": i for i in range(1030) if i not in taken}
    vocab.update(special)
    torch.manual_seed(0)
    det_cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                                   image_size=64, out_indices=[2, 3, 4]),
        text_config=BertConfig(vocab_size=1030, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=8, max_text_len=32,
        encoder_n_points=1, decoder_n_points=1)
    GroundingDinoForObjectDetection(det_cfg).save_pretrained(det)
    BertTokenizer(vocab=vocab).save_pretrained(det)
    GroundingDinoImageProcessorPil(size={"shortest_edge": 96, "longest_edge": 128}).save_pretrained(det)
    hid = 128  # SAM2-video needs a hidden size above its 64 memory channels
    sam_cfg = Sam2VideoConfig(
        vision_config=dict(
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=8, image_size=[128, 128],
                                 blocks_per_stage=[1, 2, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
                                 num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 2],
                                 global_attention_blocks=[4], window_positional_embedding_background_size=[2, 2]),
            backbone_channel_list=[64, 32, 16, 8], backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
            fpn_hidden_size=hid),
        prompt_encoder_config=dict(hidden_size=hid, image_size=128, patch_size=16),
        mask_decoder_config=dict(hidden_size=hid, mlp_dim=32, num_hidden_layers=1, num_attention_heads=2),
        image_size=128, num_maskmem=3, memory_attention_hidden_size=hid, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32, memory_attention_rope_feat_sizes=[8, 8],
        memory_encoder_hidden_size=hid, memory_encoder_output_channels=64, mask_downsampler_embed_dim=hid,
        memory_fuser_num_layers=1, memory_fuser_embed_dim=hid, memory_fuser_intermediate_dim=32)
    sam_model = Sam2VideoModel(sam_cfg)
    # Random weights put SAM2's "object present" logit near 0 and it then blanks every mask; a positive bias makes
    # the tiny model report the object so that masks (random shapes) flow through propagation and scoring.
    with torch.no_grad():
        sam_model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(4.0)
    sam_model.save_pretrained(sam)
    return det, sam


@pytest.fixture(scope="module")
def tiny_grounded_sam(tmp_path_factory):
    det, sam = make_tiny_grounded_sam(str(tmp_path_factory.mktemp("gsam")))
    # Thresholds at 0: random weights give low scores, the flow must still reach SAM2 propagation.
    return get_segmenter("grounded-sam", detector=det, sam=sam, box_threshold=0.0, text_threshold=0.0)


def test_grounded_sam_tiny_end_to_end(tiny_grounded_sam):
    frames = (np.random.default_rng(0).random((3, 48, 64, 3)) * 255).astype(np.uint8)
    calls = []
    seg = tiny_grounded_sam.segment_video(frames, progress=lambda f, d: calls.append((f, d)))
    assert seg.masks.shape == (3, 48, 64) and seg.masks.dtype == np.float32
    assert seg.scores.shape == (3,) and seg.scores.dtype == np.float32
    assert np.isfinite(seg.masks).all() and 0.0 <= seg.masks.min() and seg.masks.max() <= 1.0
    assert ((seg.scores >= 0) & (seg.scores <= 1)).all()
    # Non-empty masks get a positive score, empty ones 0.
    nonempty = (seg.masks > 0.5).any(axis=(1, 2))
    assert nonempty.any()
    assert ((seg.scores > 0) == nonempty).all()
    # The box was found and the mask propagated through every frame (forward and backward from the key frame).
    assert any("SAM2" in d for _, d in calls) and calls[-1][0] == pytest.approx(1.0)
    assert sum("SAM2" in d for _, d in calls) == 3
    box, score = tiny_grounded_sam.detect(frames[1])
    assert box.shape == (4,) and 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 48

    image = tiny_grounded_sam.segment_image(frames[0])
    assert image.masks.shape == (1, 48, 64) and image.scores.shape == (1,)


def test_grounded_sam_missing_weights_names_download(tmp_path):
    with pytest.raises(InputError, match=r"hf download IDEA-Research/grounding-dino-tiny"):
        get_segmenter("grounded-sam", cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match="does not exist"):
        GroundedSamSegmenter(detector=str(tmp_path / "nowhere"), sam=str(tmp_path / "nowhere"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="safetensors"):
        GroundedSamSegmenter(detector=str(tmp_path / "pickled"), sam=str(tmp_path / "pickled"))


def test_registry():
    assert set(SEGMENTERS) == {"mediapipe", "grounded-sam"}
