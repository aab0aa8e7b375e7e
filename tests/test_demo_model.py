"""The embedded demo model (models/demo): ships as safetensors, loads offline, generates the right frames.

The driving cues come from the synthetic world's ground truth (rendered clip, masks and face boxes, turned into
pose/face/location cues by ``rebuild_cues``), so no segmentation backend runs and the test stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"
SIZE = 64


def ground_truth_cues(ref_identity: int, drive_identity: int, motion: int, frames: int):
    """Cues of ``drive_identity`` performing ``motion`` for a reference photo of ``ref_identity`` (the world's
    ground truth masks and face boxes, no backends), plus the ground truth video of ``ref_identity``."""
    from directanimator.cues import DrivingCues, SimilarityTransform, rebuild_cues
    from trainers.synthetic import render_clip, render_reference

    image, ref_mask, _ = render_reference(ref_identity, motion, frames=frames, size=SIZE)
    driving, masks, boxes = render_clip(drive_identity, motion, frames=frames, size=SIZE)
    target, _, _ = render_clip(ref_identity, motion, frames=frames, size=SIZE)
    masks = masks.astype(np.float32)
    placeholder = DrivingCues(
        reference=image, reference_mask=ref_mask.astype(np.float32), driving=driving, driving_masks=masks,
        pose_cue=np.zeros(masks.shape, np.uint8), face_cue=np.zeros_like(driving), body_location=masks,
        face_location=masks, face_boxes=boxes.astype(np.float32), dropped=np.zeros(frames, bool),
        no_face=np.zeros(frames, bool), transform=SimilarityTransform(1.0, 0.0, 0.0), fps=8.0,
        settings={"size": SIZE},
    )
    return rebuild_cues(placeholder, transform="auto"), target


@pytest.fixture(scope="module")
def pipe():
    from directanimator.pipeline import DirectAnimatorPipeline

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # conftest: nothing may be fetched
    pipe = DirectAnimatorPipeline.from_pretrained(str(DEMO), use_safetensors=True, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_demo_folder_is_small_safetensors_only():
    index = json.loads((DEMO / "model_index.json").read_text())
    assert index["_class_name"] == "DirectAnimatorPipeline"
    assert index["transformer"] == ["directanimator.modeling", "CueFusionTransformer3DModel"]
    files = [p for p in DEMO.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    for part in ("vae", "transformer", "text_encoder"):
        assert list((DEMO / part).glob("*.safetensors")), part
    assert sum(p.stat().st_size for p in files) < 20 * 2**20
    assert (DEMO / "README.md").is_file()


def test_demo_model_generates_offline(pipe):
    cues, _ = ground_truth_cues(8, 9, 6, frames=9)
    out = pipe(image=cues.reference, cues=cues, num_inference_steps=2, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    frames = out.frames[0]
    assert frames.shape == (9, SIZE, SIZE, 3)
    assert np.isfinite(frames).all() and 0.0 <= frames.min() and frames.max() <= 1.0
    # fewer frames than the cues carry: exactly that many come back
    out = pipe(image=cues.reference, cues=cues, num_frames=5, num_inference_steps=1, output_type="np",
               generator=torch.Generator().manual_seed(0))
    assert out.frames[0].shape == (5, SIZE, SIZE, 3)


def test_demo_model_animates_the_reference_not_noise(pipe):
    """Cross-ID on two of its training identities (identity 0's reference, identity 1 dancing motion 1): the result
    is much closer to the exact ground truth (identity 0 performing motion 1) than mid-grey and closer than the
    driving video itself."""
    cues, target = ground_truth_cues(0, 1, 1, frames=9)
    out = pipe(image=cues.reference, cues=cues, num_inference_steps=8, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    generated = out.frames[0] * 255.0
    target = target.astype(np.float32)
    l1 = np.abs(generated - target).mean()
    assert l1 < np.abs(127.5 - target).mean() * 0.5
    assert l1 < np.abs(cues.driving.astype(np.float32) - target).mean()


def test_demo_model_follows_the_driving_motion_on_held_out_figures(pipe):
    """Held-out identities and motions (never trained on): one reference driven by two different motions gives two
    videos; over three such pairs, each video is on average closer to the exact ground truth of its own motion than
    to the other motion's (a model that ignores its cues scores the same on both). Measured: 16.9 vs 17.9 /255; the
    previous demo model (48 training clips learned by heart): 21.8 vs 22.4."""
    own, swapped = [], []
    for ref, drive, motions in [(41, 42, (80, 81)), (42, 43, (81, 82)), (43, 41, (80, 82))]:
        outs, truths = [], []
        for motion in motions:
            cues, target = ground_truth_cues(ref, drive, motion, frames=9)
            out = pipe(image=cues.reference, cues=cues, num_inference_steps=8, guidance_scale=1.0,
                       generator=torch.Generator().manual_seed(0), output_type="np")
            outs.append(out.frames[0] * 255.0)
            truths.append(target.astype(np.float32))
        for k in (0, 1):
            own.append(np.abs(outs[k] - truths[k]).mean())
            swapped.append(np.abs(outs[k] - truths[1 - k]).mean())
    assert np.mean(own) < np.mean(swapped) - 0.6, (own, swapped)
    assert np.mean(own) < 19.0, own  # and close to the truth: the previous demo model scored 21.8 here


def test_animate_cli_defaults_to_the_demo_model_at_its_native_size(tmp_path):
    """`python -m directanimator.animate` with no --model uses models/demo at 64 px (its RoPE table refuses more)."""
    from directanimator.animate import main
    from directanimator.video import read_video

    examples = Path(__file__).resolve().parent.parent / "examples"
    out = tmp_path / "out.mp4"
    rc = main(["--reference", str(examples / "reference_world.png"), "--driving", str(examples / "driving_world.mp4"),
               "--out", str(out), "--frames", "9", "--steps", "2"])
    assert rc == 0
    video = read_video(str(out))
    assert video.frames.shape == (9, 64, 64, 3)
