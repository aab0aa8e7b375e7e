"""trainers.reproduce: the one-command reproduction (smoke preset, one configuration end to end) and its pieces."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from directanimator.cues.pose import rgb_pose_cue
from directanimator.errors import InputError
from trainers.loop import drop_cues, parse_drop_cues
from trainers.precompute import PrecomputeSettings
from trainers.reproduce import PRESETS, configs
from trainers.reproduce_report import _compare, steps_to_reach, trailing_mean

ROOT = Path(__file__).resolve().parent.parent


def _run(out, *extra):
    cmd = [sys.executable, "-m", "trainers.reproduce", "--out", str(out), "--preset", "smoke", "--seeds", "0",
           "--jobs", "2", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # ~75 s on 2 cores: four runs of the real command (world, both stages, cues, evaluation, report)
def test_end_to_end_smoke_and_resume(tmp_path):
    out = tmp_path / "repro"
    first = _run(out, "--only", "stage1_only,full")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "start  s1-base-s0" in first.stdout and "done   eval-stage1_only-s0" in first.stdout
    md = (out / "results.md").read_text()
    assert "## Table 3: driving cues" in md and "## Table 5: cue injection" in md
    row = next(line for line in md.splitlines() if line.startswith("| stage 1 only"))
    ssim = float(row.split("|")[2].split("±")[0])
    assert 0.0 < ssim <= 1.0
    for png in ("loss_curves.png", "bars_table3.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "results.json").read_text())
    assert set(data["results"]["stage1_only"]["0"]) == {"ssim", "psnr", "l1"}
    # the stage-1 run logged every step it trained
    losses = [json.loads(line)["loss/denoise"] for line in
              (out / "train" / "s1-base-s0" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == PRESETS["smoke"]["s1_steps"]

    # a re-run skips every finished job ...
    again = _run(out, "--only", "stage1_only,full")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "start" not in again.stdout and "skip s1-base-s0 (finished)" in again.stdout
    # ... and redoes only what is missing (an evaluation whose result was lost)
    (out / "eval" / "stage1_only-s0.json").unlink()
    third = _run(out, "--only", "stage1_only,full")
    assert third.returncode == 0, third.stderr[-2000:]
    started = [line for line in third.stdout.splitlines() if " start " in line]
    assert len(started) == 1 and "eval-stage1_only-s0" in started[0]

    # another preset in the same folder is refused (its finished runs would be reused wrongly)
    other = subprocess.run([sys.executable, "-m", "trainers.reproduce", "--out", str(out), "--preset", "small",
                            "--report-only"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and other.stderr.startswith("error: ") and "Traceback" not in other.stderr


def test_only_rejects_unknown_names(tmp_path):
    res = _run(tmp_path / "x", "--only", "nonsense")
    assert res.returncode == 2 and "unknown configuration" in res.stderr


def test_configurations_cover_the_tables():
    names = {c.name for c in configs(PRESETS["small"])}
    assert {"full", "no_s2x", "no_face", "rgb_pose", "no_lowpass", "no_location", "hard_mask", "concat",
            "cross_attention", "depth_2", "depth_3", "lambda_0.1", "lambda_1"} <= names
    full = next(c for c in configs(PRESETS["small"]) if c.name == "full")
    assert full.s2x_weight == 0.5 and full.align_depth == PRESETS["small"]["align_depth"]


def test_steps_to_reach_and_speedup_maths():
    losses = np.array([1.0, 0.9, 0.8, 0.5, 0.4, 0.3])
    assert np.allclose(trailing_mean(losses, 2), [1.0, 0.95, 0.85, 0.65, 0.45, 0.35])
    assert steps_to_reach(losses, 0.5, 2) == 5
    assert steps_to_reach(losses, 0.1, 2) is None
    full = {0: {"ssim": 0.5, "psnr": 20, "l1": 0.1}, 1: {"ssim": 0.52, "psnr": 21, "l1": 0.1}}
    worse = {0: {"ssim": 0.4, "psnr": 20.01, "l1": 0.2}, 1: {"ssim": 0.41, "psnr": 20.99, "l1": 0.21}}
    assert _compare(worse, full, "ssim", [0, 1]) == "worse"
    assert _compare(worse, full, "l1", [0, 1]) == "worse"
    assert _compare(worse, full, "psnr", [0, 1]) == "same"


def test_drop_cues_and_rgb_pose_options():
    assert parse_drop_cues("") == set() and parse_drop_cues("face, location") == {"face", "location"}
    with pytest.raises(InputError):
        parse_drop_cues("hands")
    batch = {k: torch.zeros(1) for k in ("latents", "pose_latents", "face_latents", "body_mask", "face_mask")}
    assert set(drop_cues(batch, {"face"})) == {"latents", "pose_latents", "body_mask"}
    assert set(drop_cues(batch, {"location"})) == {"latents", "pose_latents", "face_latents"}
    assert drop_cues(batch, set()) is batch
    frames = np.full((2, 4, 4, 3), 200, np.uint8)
    masks = np.zeros((2, 4, 4), np.float32)
    masks[:, 1:3, 1:3] = 1.0
    cue = rgb_pose_cue(frames, masks, dropped=np.array([False, True]))
    assert cue.shape == (2, 4, 4, 3) and cue[0, 1, 1, 0] == 200 and cue[0, 0, 0, 0] == 0 and not cue[1].any()
    # the default pose mode leaves the precompute cache key as it was; "rgb" changes it
    assert "pose_mode" not in PrecomputeSettings().key_dict()
    assert PrecomputeSettings(pose_mode="rgb").key_dict()["pose_mode"] == "rgb"


def test_eval_pairs_without_a_person_are_left_out_and_listed(tmp_path):
    from PIL import Image

    from trainers.reproduce_eval import prepare_pairs
    from trainers.synthetic import generate_dataset

    world = generate_dataset(tmp_path / "w", identities=4, motions=2, frames=3, size=64, seed=0, pseudo_per_clip=1,
                             test_identities=2, test_motions=1, show_progress=False)
    rows = [json.loads(line) for line in (world / "metadata.jsonl").read_text().splitlines()]
    blank = next(r for r in rows if r["split"] == "test")["reference"]
    Image.new("RGB", (64, 64), (128, 128, 128)).save(world / blank)  # nobody in this reference photo
    usable = prepare_pairs(str(world), str(tmp_path / "pairs"), size=64, num_frames=3)
    skipped = json.loads((tmp_path / "pairs" / "skipped.json").read_text())
    assert [p["reference"] for p in skipped] == [blank] and "no person" in skipped[0]["reason"]
    assert len(usable) == 1 and usable[0]["reference"] != blank
    assert json.loads((tmp_path / "pairs" / "pairs.json").read_text()) == usable
    assert (tmp_path / "pairs" / usable[0]["name"] / "cues.json").is_file()
