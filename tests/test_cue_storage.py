"""Compact cue folders (``directanimator/cues/storage.py``): chunked video streams, lazily decoded; version-1 raw
folders still load; the pipeline decodes only the frames of its windows."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from directanimator.cues import DrivingCues
from directanimator.cues.storage import CHUNK, FrameArray
from directanimator.errors import InputError
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

PER_FRAME = ("driving", "driving_masks", "pose_cue", "face_cue", "body_location", "face_location")


def _smooth_cues(num_frames, height=48, width=64):
    """Tiny cues whose frames look like video (smooth, moving), so that the codecs meet what they are made for."""
    cues = tiny_driving_cues(num_frames=num_frames, height=height, width=width)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    base = 120 + 60 * np.sin(xx / 7.0 + t / 5.0) * np.cos(yy / 9.0)
    cues.driving = np.stack([base, base * 0.8 + 30, 255 - base], axis=-1).clip(0, 255).astype(np.uint8)
    cues.face_cue = cues.driving[:, ::-1].copy()
    cues.driving_masks = np.round(cues.driving_masks * 200.0) / np.float32(255.0)  # soft values on the 1/255 grid
    return cues


def test_compact_folder_round_trip_and_size(tmp_path):
    cues = _smooth_cues(CHUNK + 9)  # two chunks, the last one short
    cues.save(tmp_path / "c")
    meta = json.loads((tmp_path / "c" / "cues.json").read_text())
    assert meta["version"] == 2
    loaded = DrivingCues.load(tmp_path / "c")
    for name in PER_FRAME:
        x, y = getattr(cues, name), getattr(loaded, name)
        assert isinstance(y, FrameArray) and y.shape == x.shape and y.dtype == x.dtype, name
        record = meta["storage"]["arrays"][name]
        error = np.abs(np.asarray(y, np.float64) - np.asarray(x, np.float64)).max()
        if name in ("driving", "face_cue"):  # near-lossless: the loss the writer measured, and small
            assert record["max_abs_error"] == error and 0 < error <= 3, name
        else:  # FFV1: exact (masks were on the 1/255 grid already)
            assert error == 0 and record["max_abs_error"] == 0, name
    raw = sum(np.asarray(getattr(cues, n)).astype(np.uint8).nbytes for n in PER_FRAME)
    assert meta["storage"]["bytes_per_frame"] * cues.num_frames < raw / 4
    for name in ("reference", "reference_mask", "dropped", "no_face"):
        np.testing.assert_array_equal(getattr(cues, name), getattr(loaded, name))
    np.testing.assert_array_equal(cues.face_boxes, loaded.face_boxes)


def test_frame_array_decodes_only_the_chunks_it_touches(tmp_path):
    cues = _smooth_cues(2 * CHUNK + 5)
    cues.save(tmp_path / "c", lossless=True)
    pose = DrivingCues.load(tmp_path / "c").pose_cue
    np.testing.assert_array_equal(pose[CHUNK + 3], cues.pose_cue[CHUNK + 3])
    assert pose.decoded == CHUNK  # one chunk, not the clip
    np.testing.assert_array_equal(pose.frames(CHUNK - 2, CHUNK + 4), cues.pose_cue[CHUNK - 2:CHUNK + 4])
    assert pose.decoded == 2 * CHUNK  # chunk 1 came from the cache
    masks = DrivingCues.load(tmp_path / "c").driving_masks
    for key in (-1, slice(3, 9), slice(None, None, 7), [0, CHUNK, -1], np.arange(len(masks)) % 3 == 0,
                (slice(1, 4), 5), (2, slice(None), 7)):
        np.testing.assert_array_equal(masks[key], cues.driving_masks[key], err_msg=str(key))
    with pytest.raises(IndexError):
        masks[len(masks)]
    np.testing.assert_array_equal(np.asarray(masks), cues.driving_masks)


def test_version_1_raw_folders_still_load(tmp_path):
    """A folder as the code before storage.py wrote it: every array raw in cues.safetensors, masks as uint8."""
    cues = tiny_driving_cues(num_frames=5)
    folder = tmp_path / "old"
    folder.mkdir()
    tensors = {}
    for name in ("reference", "reference_mask", *PER_FRAME, "face_boxes", "dropped", "no_face"):
        value = np.asarray(getattr(cues, name))
        if value.dtype == np.float32 and name != "face_boxes":
            value = np.round(value * 255.0).astype(np.uint8)
        tensors[name] = value.astype(np.uint8) if value.dtype == np.bool_ else np.ascontiguousarray(value)
    save_file(tensors, str(folder / "cues.safetensors"))
    meta = {"format": "directanimator-cues", "version": 1, "num_frames": 5, "height": 32, "width": 48, "fps": 8.0,
            "transform": cues.transform.to_dict(), "mask_encoding": "uint8/255", "settings": cues.settings}
    (folder / "cues.json").write_text(json.dumps(meta))
    old = DrivingCues.load(folder)
    for name in PER_FRAME:
        assert isinstance(getattr(old, name), np.ndarray), name
        np.testing.assert_array_equal(getattr(old, name), getattr(cues, name), err_msg=name)
    old.save(tmp_path / "new")  # and is written in the new format
    assert json.loads((tmp_path / "new" / "cues.json").read_text())["version"] == 2


def test_missing_or_corrupt_chunk_is_one_clear_error(tmp_path):
    cues = _smooth_cues(CHUNK + 2)
    cues.save(tmp_path / "c")
    (tmp_path / "c" / "frames" / "pose_cue" / "000001.mkv").unlink()
    with pytest.raises(InputError, match="incomplete"):
        DrivingCues.load(tmp_path / "c")
    cues.save(tmp_path / "c")
    chunk = tmp_path / "c" / "frames" / "face_cue" / "000000.mkv"
    chunk.write_bytes(chunk.read_bytes()[:200])
    loaded = DrivingCues.load(tmp_path / "c")  # lazily: the error comes when the chunk is read
    with pytest.raises(InputError, match="re-extract"):
        loaded.face_cue[0]


def test_pipeline_reads_only_the_windows_it_needs(tmp_path):
    pipe = make_tiny_pipeline()
    cues = tiny_driving_cues(num_frames=3 * CHUNK + 4)
    cues.save(tmp_path / "c")
    lazy = DrivingCues.load(tmp_path / "c")
    run = dict(num_frames=25, num_inference_steps=1, window_frames=13, window_overlap=8, output_type="latent")
    out = pipe(cues=lazy, generator=torch.Generator().manual_seed(0), **run).frames
    for name in ("pose_cue", "face_cue", "body_location", "face_location"):
        assert getattr(lazy, name).decoded == CHUNK, name  # frames 0..24 are in the first chunk
    assert lazy.driving.decoded == 0 and lazy.driving_masks.decoded == 0
    import dataclasses

    whole = dataclasses.replace(lazy, **{n: np.asarray(getattr(lazy, n)) for n in PER_FRAME})
    again = pipe(cues=whole, generator=torch.Generator().manual_seed(0), **run).frames
    torch.testing.assert_close(out, again, rtol=0, atol=0)
