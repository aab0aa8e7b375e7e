"""The precompute cache on real cue extraction (mediapipe backends on drawn synthetic people), and both stages
trained from it with a validation video."""

import json

import numpy as np
import pytest
import torch

from test_trainers import _save_tiny_pipeline
from trainers.dataset import load_dataset
from trainers.components import load_components
from trainers.same2x import main as same2x_main
from trainers.same_id import main as same_id_main
from trainers.precompute import (
    Precomputer, PrecomputeSettings, load_entry, misalign_frames, random_misalignment, read_metadata)


def test_misalign_frames_scales_about_centre_and_shifts():
    frames = np.zeros((2, 32, 32), np.uint8)
    frames[:, 12:20, 12:20] = 255
    moved = misalign_frames(frames, 1.0, (3.0, -2.0))
    assert moved[0, 10:18, 15:23].min() == 255 and moved[0, :10].max() == 0
    small = misalign_frames(frames, 0.5, (0.0, 0.0))
    assert abs((small[0] > 127).sum() - 16) <= 4  # 8x8 square -> about 4x4, still centred
    ys, xs = np.nonzero(small[0] > 127)
    assert abs(ys.mean() - 15.5) < 1 and abs(xs.mean() - 15.5) < 1
    s, (dx, dy) = random_misalignment("ab" * 16, 64, 96, 0.15, 0.1)
    assert 0.85 <= s <= 1.15 and abs(dx) <= 9.6 and abs(dy) <= 6.4
    assert random_misalignment("ab" * 16, 64, 96, 0.15, 0.1) == (s, (dx, dy))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from trainers.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("pre")
    _save_tiny_pipeline(root / "pipe")
    generate_dataset(root / "ds", identities=3, motions=2, frames=9, size=64, pseudo_per_clip=1,
                     test_identities=1, test_motions=1, show_progress=False)
    return root


def test_real_precompute_keys_ranks_and_resume(synthetic):
    ds = load_dataset(synthetic / "ds", require_pseudo=True)
    train = ds.split("train")
    c = load_components(str(synthetic / "pipe"))
    settings = PrecomputeSettings(num_frames=9, long_side=64, max_text_length=8, storage_dtype="float32")
    pre = Precomputer(synthetic / "cache", settings, c.vae, c.tokenizer, c.text_encoder)

    # rank 0 of 2 computes only clip 0 (and its pseudo entry); the index needs everything, so it says so
    with pytest.raises(Exception, match="missing after precompute"):
        pre.run(train, with_pseudo=True, rank=0, world_size=2)
    assert pre.path_for(pre.sample_key(train[0])).is_file()
    assert not pre.path_for(pre.sample_key(train[1])).is_file()
    entries = pre.run(train, with_pseudo=True, rank=1, world_size=2)  # the other rank's share

    stamps = {e.path: e.path.stat().st_mtime_ns for e in entries}
    again = pre.run(train, with_pseudo=True)  # resumable: nothing recomputed
    assert {e.path: e.path.stat().st_mtime_ns for e in again} == stamps

    first = load_entry(entries[0].path)
    assert entries[0].bucket == (9, 64, 64)
    assert first["latents"].shape == (3, 4, 8, 8) and first["image_latents"].shape == (1, 4, 8, 8)
    assert first["body_mask"].shape == (3, 1, 8, 8) and first["prompt_embeds"].shape == (8, 16)
    assert first["body_mask"].max() > 0.2  # mediapipe found the drawn person
    meta = read_metadata(entries[0].pseudo_paths[0])
    assert meta["kind"] == "pseudo" and 0.85 <= meta["misalign"][0] <= 1.15
    pseudo = load_entry(entries[0].pseudo_paths[0])
    assert not torch.equal(pseudo["pose_latents"], first["pose_latents"])

    # a changed setting never reuses an entry; a changed misalignment only touches pseudo entries
    other = Precomputer(synthetic / "cache", PrecomputeSettings(**{**settings.__dict__, "lowpass": 0.7}),
                        c.vae, c.tokenizer, c.text_encoder)
    assert other.sample_key(train[0]) != pre.sample_key(train[0])
    shifted = Precomputer(synthetic / "cache", PrecomputeSettings(**{**settings.__dict__, "misalign_shift": 0.2}),
                          c.vae, c.tokenizer, c.text_encoder)
    assert shifted.sample_key(train[0]) == pre.sample_key(train[0])
    assert shifted.pseudo_key(train[0], train[0].pseudo_driving[0]) != pre.pseudo_key(train[0], train[0].pseudo_driving[0])
    torch.manual_seed(1)
    c.vae.decoder.conv_in.conv.weight.data.add_(0.01)  # other VAE weights, same config
    assert Precomputer(synthetic / "cache", settings, c.vae, c.tokenizer, c.text_encoder).sample_key(train[0]) \
        != pre.sample_key(train[0])


def test_both_stages_on_real_cues_with_validation_video(synthetic):
    common = ["--hub-dataset", str(synthetic / "ds"), "--cache-dir", str(synthetic / "cache"), "--num-frames", "9",
              "--long-side", "64", "--cache-dtype", "float32", "--dataloader-num-workers", "0",
              "--report-to", "none", "--max-steps", "2", "--checkpointing-steps", "2"]
    out = synthetic / "s1"
    assert same_id_main(common + ["--pretrained", str(synthetic / "pipe"), "--output-dir", str(out),
                                     "--validation-steps", "2", "--validation-inference-steps", "2"]) == 0
    video = out / "validation" / "step-0000002.mp4"
    assert video.is_file()
    from directanimator.video import read_video

    assert read_video(str(video)).frames.shape[1:3] == (64, 64)
    assert same2x_main(common + ["--same-id-checkpoint", str(out), "--output-dir", str(synthetic / "s2"),
                                    "--align-depth", "1"]) == 0
    logs = [json.loads(line) for line in (synthetic / "s2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2] and all(-1 <= r["loss/s2x"] <= 1 for r in logs)


def test_pseudo_videos_are_generated_filtered_and_written_as_a_dataset(synthetic):
    from trainers.pseudo import main as pseudo_main

    out = synthetic / "pseudo"
    common = ["--hub-dataset", str(synthetic / "ds"), "--same-id-checkpoint", str(synthetic / "pipe" / "transformer"),
              "--pretrained", str(synthetic / "pipe"), "--per-clip", "1", "--num-inference-steps", "2",
              "--num-frames", "9", "--long-side", "64", "--output-dir", str(out)]
    assert pseudo_main(common + ["--min-mask-iou", "0", "--no-appearance-check"]) == 0
    report = json.loads((out / "pseudo_report.json").read_text())
    assert len(report) == 2 and all(r["accepted"] for r in report.values())
    ds = load_dataset(out, require_pseudo=True)
    for clip in ds.split("train"):
        ours = [p for p in clip.pseudo_driving if "__" in p.file_name]
        assert len(ours) == 1 and ours[0].identity != clip.identity and ours[0].path.is_file()
    assert "pseudo cross-ID" in (out / "README.md").read_text()

    # an untrained model draws no person: a real motion threshold rejects every candidate, from the stored
    # scores (nothing is generated again)
    videos = {p: p.stat().st_mtime_ns for p in (out / "pseudo").iterdir()}
    assert pseudo_main(common + ["--min-mask-iou", "0.5"]) == 0
    report = json.loads((out / "pseudo_report.json").read_text())
    assert all(r["mask_iou"] < 0.5 and not r["accepted"] for r in report.values())
    assert {p: p.stat().st_mtime_ns for p in (out / "pseudo").iterdir()} == videos
    ds = load_dataset(out)
    assert not any("__" in p.file_name for c in ds.clips for p in c.pseudo_driving)


def test_pseudo_videos_for_the_test_split_leave_the_train_candidates_as_they_were(synthetic, tmp_path, capsys):
    """--splits train,test: the test rows get pseudo driving videos of other identities (the cross-ID evaluation
    protocol's driving), and every train candidate keeps its identity and seed."""
    from directanimator.protocol import protocol_pairs
    from trainers.pseudo import main as pseudo_main

    common = ["--hub-dataset", str(synthetic / "ds"), "--same-id-checkpoint", str(synthetic / "pipe" / "transformer"),
              "--pretrained", str(synthetic / "pipe"), "--per-clip", "1", "--num-inference-steps", "1",
              "--num-frames", "9", "--long-side", "64", "--min-mask-iou", "0", "--no-appearance-check"]
    assert pseudo_main(common + ["--output-dir", str(tmp_path / "train")]) == 0
    assert pseudo_main(common + ["--output-dir", str(tmp_path / "both"), "--splits", "train,test"]) == 0
    train = json.loads((tmp_path / "train" / "pseudo_report.json").read_text())
    both = json.loads((tmp_path / "both" / "pseudo_report.json").read_text())
    test_clips = {c.file_name: c.identity for c in load_dataset(synthetic / "ds").split("test")}
    assert {k: (r["identity"], r["seed"]) for k, r in both.items() if r["clip"] not in test_clips} \
        == {k: (r["identity"], r["seed"]) for k, r in train.items()}
    ours = {k: r for k, r in both.items() if r["clip"] in test_clips}
    assert len(ours) == len(test_clips) and all(r["identity"] != test_clips[r["clip"]] for r in ours.values())
    pairs = protocol_pairs(load_dataset(tmp_path / "both"))
    assert {p["driving"].split("/pseudo/")[-1] for p in pairs if "__" in p["driving"]} \
        == {k.split("/")[-1] for k in ours}

    capsys.readouterr()
    assert pseudo_main(common + ["--output-dir", str(tmp_path / "bad"), "--splits", "validation"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --splits is a comma list of train, test, got 'validation'"]
    assert not (tmp_path / "bad").exists()


def test_location_masks_follow_the_vaes_grid():
    """A VAE with 3 blocks compresses 4x: the cached masks must sit on its latent grid, not on CogVideoX's 8x one."""
    from diffusers import AutoencoderKLCogVideoX

    from trainers.precompute import encode_video, masks_to_latent_grid

    vae = AutoencoderKLCogVideoX(down_block_types=("CogVideoXDownBlock3D",) * 3,
                                 up_block_types=("CogVideoXUpBlock3D",) * 3, block_out_channels=(8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2).eval()
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 48, 3), dtype=np.uint8)
    latents = encode_video(vae, frames)
    masks = masks_to_latent_grid(np.ones((9, 32, 48), np.float32), vae)
    assert masks.shape == (latents.shape[0], 1, *latents.shape[-2:]) == (3, 1, 8, 12)
    assert masks_to_latent_grid(np.ones((9, 32, 48), np.float32)).shape == (3, 1, 4, 6)  # CogVideoX's default


def test_a_clip_without_usable_cues_is_left_out_not_fatal(synthetic, tmp_path, caplog):
    import shutil

    from PIL import Image

    ds_dir = tmp_path / "ds"
    shutil.copytree(synthetic / "ds", ds_dir)
    train = load_dataset(ds_dir, require_pseudo=True).split("train")
    blank = train[1].reference_path
    Image.new("RGB", Image.open(blank).size, (128, 128, 128)).save(blank)  # no person in this reference
    c = load_components(str(synthetic / "pipe"))
    settings = PrecomputeSettings(num_frames=9, long_side=64, max_text_length=8, storage_dtype="float32")
    pre = Precomputer(tmp_path / "cache", settings, c.vae, c.tokenizer, c.text_encoder)
    assert len(train) == 2
    with pytest.raises(Exception, match=r"1 of 2 clips have no usable cues \(.*no person"):
        pre.run(train, with_pseudo=True, max_failed=0.1)  # 50% > 10%: a setting problem, stop
    assert pre.failure_path(pre.sample_key(train[1])).is_file()
    entries = pre.run(train, with_pseudo=True, max_failed=0.5)  # the failure is remembered, not retried
    assert [e.clip_index for e in entries] == [0] and len(entries[0].pseudo_paths) == 1
    assert "left out" in caplog.text
