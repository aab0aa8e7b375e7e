"""trainers.experiments.reproduce: the one-command reproduction (smoke preset, one configuration end to end) and its pieces."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from directanimator.cues.pose import rgb_pose_cue
from directanimator.errors import InputError
from trainers.batch import drop_cues, parse_drop_cues
from trainers.precompute import PrecomputeSettings
from trainers.experiments.reproduce import PRESETS, configs
from trainers.experiments.reproduce_report import _compare, steps_to_reach, trailing_mean

ROOT = Path(__file__).resolve().parent.parent


def _run(out, *extra):
    cmd = [sys.executable, "-m", "trainers.experiments.reproduce", "--out", str(out), "--preset", "smoke", "--seeds", "0",
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
    assert set(data["results"]["stage1_only"]["0"]) == {"ssim", "psnr", "l1", "moving_l1"}
    # the autoencoder's ceiling (the ground truth through the fixed VAE) is reported, and a 3-step model is far
    # below it
    ceiling = json.loads((out / "eval" / "vae_ceiling.json").read_text())["mean"]
    assert "Ceiling of the fixed VAE" in md and ceiling["l1"] < data["results"]["stage1_only"]["0"]["l1"]
    # a contact sheet of one pair: driving, truth, VAE ceiling and the model, every second frame after the reference
    from PIL import Image

    from trainers.experiments.contact_sheet import LABEL_WIDTH, main as sheet_main

    pair = json.loads((out / "eval" / "pairs" / "pairs.json").read_text())[0]["name"]
    assert sheet_main([str(out / "eval" / "pairs"), str(out / "world"), str(ROOT / "models" / "demo"), "--pair", pair,
                       "--model", "stage 1=" + str(out / "train" / "s1-base-s0" / "transformer"),
                       "--out", str(tmp_path / "sheet.png"), "--steps", "1"]) == 0
    size, frames = PRESETS["smoke"]["size"], PRESETS["smoke"]["frames"]
    assert Image.open(tmp_path / "sheet.png").size == (LABEL_WIDTH + size * (1 + (frames + 1) // 2), 4 * size)
    assert sheet_main([str(out / "eval" / "pairs"), str(out / "world"), str(ROOT / "models" / "demo"), "--pair", "x",
                       "--out", str(tmp_path / "bad.png")]) == 2 and not (tmp_path / "bad.png").exists()
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
    other = subprocess.run([sys.executable, "-m", "trainers.experiments.reproduce", "--out", str(out), "--preset", "small",
                            "--report-only"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and other.stderr.startswith("error: ") and "Traceback" not in other.stderr


def test_only_rejects_unknown_names(tmp_path):
    res = _run(tmp_path / "x", "--only", "nonsense")
    assert res.returncode == 2 and "unknown configuration" in res.stderr


def test_configurations_cover_the_tables():
    names = {c.name for c in configs(PRESETS["small"])}
    assert {"full", "no_s2x", "no_face", "face_in_place", "rgb_pose", "no_lowpass", "skeleton", "no_location",
            "hard_mask", "concat", "cross_attention", "depth_2", "depth_3", "lambda_0.1", "lambda_1"} <= names
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


def test_moving_l1_scores_only_the_motion_and_old_evaluations_still_report(tmp_path):
    from trainers.experiments.reproduce import configs
    from directanimator.metrics import moving_l1
    from trainers.experiments.reproduce_report import write_report

    reference = np.full((8, 8, 3), 100, np.uint8)
    truth = np.repeat(reference[None], 3, 0)
    truth[:, 2:4, 2:4] = 250  # the figure's arm, moved
    still = np.repeat(reference[None], 3, 0)
    assert moving_l1(still, truth, reference) == pytest.approx(150 / 255)
    assert moving_l1(truth, truth, reference) == 0.0
    noisy_background = truth.copy()
    noisy_background[:, 6:, 6:] = 0  # errors where nothing moves do not count
    assert moving_l1(noisy_background, truth, reference) == 0.0
    assert np.isnan(moving_l1(still, still, reference))
    # evaluations written before the metric existed still make a report (that column shows "—")
    (tmp_path / "eval").mkdir()
    for name, v in (("full", 0.5), ("no_face", 0.4)):
        (tmp_path / "eval" / f"{name}-s0.json").write_text(json.dumps({"mean": {"ssim": v, "psnr": 20.0, "l1": 0.1}}))
    (tmp_path / "eval" / "no_location-s0.json").write_text(json.dumps(
        {"mean": {"ssim": 0.5, "psnr": 20.0, "l1": 0.1, "moving_l1": 0.2}}))
    chosen = [c for c in configs(PRESETS["small"]) if c.name in ("full", "no_face", "no_location")]
    md = write_report(tmp_path, PRESETS["small"], "small", [0], chosen, wall_s=None).read_text()
    row = next(line for line in md.splitlines() if line.startswith("| w/o face cue"))
    assert "0.400 ± 0.000" in row and "| — |" in row


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


def test_skeleton_pose_cue_is_a_thin_connected_drawing_inside_the_body():
    """S5's cue: the thinned body mask -- one connected line drawing, a small part of the body's area, inside it,
    reaching the hands and feet; dropped frames and empty masks give black frames."""
    import cv2

    from directanimator.cues.pose import skeleton_pose_cue
    from trainers.synthetic import render_clip

    _, masks, _ = render_clip(3, 5, frames=4, size=128)
    masks = masks.astype(np.float32)
    masks[2] = 0.0
    cue = skeleton_pose_cue(masks, dropped=np.array([False, True, False, False]))
    assert cue.shape == masks.shape and cue.dtype == np.uint8 and set(np.unique(cue)) <= {0, 255}
    assert not cue[1].any() and not cue[2].any()
    for t in (0, 3):
        body, line = masks[t] > 0.5, cue[t] > 0
        assert 0.1 < line.sum() / body.sum() < 0.5
        grown = cv2.dilate(body.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert not (line & ~grown).any()  # never outside the (slightly grown) body
        assert cv2.connectedComponents(line.astype(np.uint8))[0] == 2  # background + one drawing
        ys, xs = np.nonzero(body)
        lys, lxs = np.nonzero(line)
        # spans the body: ends near its extremes (hands, feet; the head's line stops near its centre)
        tol = 0.12 * (ys.max() - ys.min())
        assert lys.min() - ys.min() <= tol and ys.max() - lys.max() <= tol
        assert lxs.min() - xs.min() <= tol and xs.max() - lxs.max() <= tol


def test_in_place_face_cue_keeps_the_face_region_where_it_is():
    """S2's cue: the square face_cue crops, unscaled, at its place in the frame; no-face frames are black."""
    from directanimator.cues.face_cue import in_place_face_cue

    rng = np.random.default_rng(0)
    frames = rng.integers(1, 255, (3, 40, 60, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 20, 20], [np.nan] * 4, [50, 30, 58, 40]], np.float32)
    cue = in_place_face_cue(frames, boxes, enlarge=1.6)
    assert cue.shape == frames.shape and not cue[1].any()
    # box 0: side 16 centred on (15, 15) -> rows/cols 7..22
    assert (cue[0, 7:23, 7:23] == frames[0, 7:23, 7:23]).all()
    assert not cue[0, :7].any() and not cue[0, 23:].any() and not cue[0, :, 23:].any()
    # box 2: side 16 centred on (54, 35) crosses the right and bottom edges: the inside part is kept
    assert (cue[2, 27:, 46:] == frames[2, 27:, 46:]).all() and not cue[2, :27].any()


def test_ablation_cue_inputs_and_cache_keys():
    """The eval feeds each ablation the cues its model was trained on; default settings keep old cache keys."""
    from directanimator.cues import DrivingCues
    from trainers.experiments.reproduce_eval import cue_inputs

    settings = PrecomputeSettings()
    assert "face_mode" not in settings.key_dict() and "pose_mode" not in settings.key_dict()
    assert PrecomputeSettings(face_mode="in_place").key_dict()["face_mode"] == "in_place"
    assert PrecomputeSettings(pose_mode="skeleton").key_dict()["pose_mode"] == "skeleton"
    with pytest.raises(InputError, match="face cue must be one of"):
        PrecomputeSettings(face_mode="sideways").face_frames(None)
    t, h, w = 2, 32, 32
    masks = np.zeros((t, h, w), np.float32)
    masks[:, 4:28, 12:20] = 1.0
    boxes = np.array([[12, 4, 20, 12]] * t, np.float32)
    cues = DrivingCues(
        reference=np.zeros((h, w, 3), np.uint8), reference_mask=masks[0], driving=np.full((t, h, w, 3), 90, np.uint8),
        driving_masks=masks, pose_cue=np.zeros((t, h, w), np.uint8), face_cue=np.zeros((t, h, w, 3), np.uint8),
        body_location=masks, face_location=masks, face_boxes=boxes, dropped=np.zeros(t, bool),
        no_face=np.zeros(t, bool), transform=None, fps=8.0, settings={"face_enlarge": 1.6})
    sk = cue_inputs(cues, "skeleton")
    assert set(sk) == {"pose_cue"} and sk["pose_cue"].any() and sk["pose_cue"].shape == (t, h, w)
    face = cue_inputs(cues, "face_in_place")
    assert set(face) == {"pose_cue", "face_cue", "body_location", "face_location"}
    assert face["face_cue"][0, 8, 16, 0] == 90 and not face["face_cue"][0, 30, 2].any()


@pytest.mark.slow  # ~40 s: both new ablations through the real trainers (their own cue caches) and the evaluation
def test_skeleton_and_in_place_face_ablations_run_end_to_end(tmp_path):
    out = tmp_path / "repro"
    res = _run(out, "--only", "skeleton,face_in_place")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    md = (out / "results.md").read_text()
    for label in ("mask skeleton instead of the triplet", "face cue not enlarged/centred"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {label}"))
        assert 0.0 < float(row.split("|")[2].split("±")[0]) <= 1.0
    data = json.loads((out / "results.json").read_text())
    assert set(data["results"]) >= {"skeleton", "face_in_place"}
    # each stage 1 was trained on its own cue variant
    skeleton = json.loads((out / "train" / "s1-skeleton-s0" / "training_args.json").read_text())
    assert skeleton["pose_cue"] == "skeleton" and skeleton["drop_cues"] == "face,location"
    face = json.loads((out / "train" / "s1-face_in_place-s0" / "training_args.json").read_text())
    assert face["face_cue"] == "in-place" and face["pose_cue"] == "gray"


def test_eval_pairs_without_a_person_are_left_out_and_listed(tmp_path):
    from PIL import Image

    from trainers.experiments.reproduce_eval import prepare_pairs
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


def test_the_old_experiment_commands_still_run_with_a_deprecation_warning():
    for module in ("reproduce", "reproduce_eval", "make_demo_pipeline", "vae"):
        done = subprocess.run([sys.executable, "-m", f"trainers.{module}", "--help"], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert done.returncode == 0 and "usage" in done.stdout, (module, done.stderr[-500:])
        assert f"trainers.experiments.{module}" in done.stderr and "DeprecationWarning" in done.stderr
