"""World 2 of the reproduction (docs/reproduction/preregistration-2.md): OpenPose-style skeletons and their
estimator failures, the 128 px world with big faces and moved references, the openpose pose cues through the
precompute, the world metrics (mask IoU, background L1, pulse) and the claims driver's dry run."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from directanimator.cues.settings import CueSettings
from directanimator.cues.skeleton_video import read_skeleton_cue, skeleton_video_path
from directanimator.cues.variants import pose_frames
from directanimator.errors import InputError
from trainers.synthetic import generate_dataset
from trainers.synthetic.openpose import COLOURS, KEYPOINTS, NOISY, FailureRates, add_failures, draw_openpose

ROOT = Path(__file__).resolve().parent.parent


def test_openpose_drawing_uses_the_standard_limb_colours_and_skips_invisible_keypoints():
    xy = np.zeros((1, 18, 2), np.float32)
    xy[0, 1], xy[0, 2] = (10, 32), (54, 32)  # neck -> right shoulder: OpenPose's first limb, red
    visible = np.zeros((1, 18), bool)
    visible[0, [1, 2]] = True
    img = draw_openpose(xy, visible, 64)[0]
    mid = img[32, 32].astype(int)
    assert abs(mid[0] - int(0.6 * COLOURS[0][0])) <= 8 and mid[1] <= 8 and mid[2] <= 8
    assert img[5, 5].max() == 0 and img[60, 32].max() == 0  # black elsewhere
    visible[0, 2] = False  # no limb without both ends: only the neck's dot is left
    img = draw_openpose(xy, visible, 64)[0]
    assert img[32, 32].max() == 0 and tuple(img[32, 10]) == pytest.approx(COLOURS[1], abs=40)


def _turning(frames=400):
    xy = np.tile(np.linspace(10, 50, 36, dtype=np.float32).reshape(1, 18, 2), (frames, 1, 1))
    yaw = np.where(np.arange(frames) < frames // 2, 0.0, np.pi)  # facing the camera, then turned away
    return xy, np.ones((frames, 18), bool), np.zeros((frames, 18), bool), np.full(frames, 100.0, np.float32), yaw


def test_estimator_failures_are_seeded_and_follow_the_turn():
    xy, vis, behind, height, yaw = _turning()
    a = add_failures(xy, vis, behind, height, yaw, NOISY, 0, "clip")
    b = add_failures(xy, vis, behind, height, yaw, NOISY, 0, "clip")
    c = add_failures(xy, vis, behind, height, yaw, NOISY, 0, "other")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])  # same seed and clip: same failures
    assert not np.array_equal(a[0], c[0])
    swap = a[2]["swap"]
    assert swap[:200].mean() < 0.08 and 0.35 < swap[200:].mean() < 0.65  # rare facing, ~half turned away
    assert not a[2]["ghost_face"][:200].any() and a[2]["ghost_face"][200:].mean() > 0.3
    assert 0.01 < 1 - a[1][:200].mean() < 0.06  # keypoints dropped at about 3 %
    unswapped = ~swap
    noise = (a[0] - xy)[unswapped][:, [0, 1]]  # nose and neck are never swapped
    assert noise.std() == pytest.approx(NOISY.jitter * 100, rel=0.15)
    clean = add_failures(xy, vis, behind, height, yaw, FailureRates(), 0, "clip")
    assert np.array_equal(clean[0], xy) and clean[1].all()
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        FailureRates(jitter=2.0)


def test_occluded_limbs_are_dropped_at_the_rate():
    xy, vis, behind, height, yaw = _turning()
    behind[:, KEYPOINTS.index("l_wrist")] = True
    _, visible, _ = add_failures(xy, vis, behind, height, np.zeros(len(xy)), FailureRates(drop_occluded=0.5), 3, "k")
    lost = ~visible[:, KEYPOINTS.index("l_wrist")]
    assert 0.4 < lost.mean() < 0.6
    assert np.array_equal(lost, ~visible[:, KEYPOINTS.index("l_elbow")])  # the whole forearm goes
    assert visible[:, KEYPOINTS.index("r_wrist")].all()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2")
    kw = dict(identities=3, motions=2, frames=9, size=128, pseudo_per_clip=1, test_identities=1, test_motions=1,
              show_progress=False)
    generate_dataset(root / "plain", **kw)
    generate_dataset(root / "w2", face_scale=1.6, reference_jitter=0.3, skeletons=True, **kw)
    return root


def test_128px_world_has_big_faces_moved_references_and_skeleton_videos(worlds):
    from PIL import Image

    rel = "clips/id_0000_mo_0000"
    with np.load(worlds / "plain" / f"{rel}.npz") as a, np.load(worlds / "w2" / f"{rel}.npz") as b:
        ha, hb = a["face_boxes"][:, 3] - a["face_boxes"][:, 1], b["face_boxes"][:, 3] - b["face_boxes"][:, 1]
        assert np.nanmedian(hb) / np.nanmedian(ha) == pytest.approx(1.6, rel=0.1) and np.nanmedian(hb) > 18
    moved = 0
    for ref in sorted((worlds / "w2" / "refs").glob("*.npz")):
        with np.load(ref) as a, np.load(worlds / "plain" / "refs" / ref.name) as b:
            ma, mb = a["mask"] > 127, b["mask"] > 127
            ya, xa = np.nonzero(ma)
            yb, xb = np.nonzero(mb)
            assert ma.sum() > 200 and not ma[0].any() and not ma[-1].any()  # a whole figure, inside the frame
            moved += abs(xa.mean() - xb.mean()) > 2 or abs(ma.sum() / mb.sum() - 1) > 0.05
    assert moved >= 2
    clean = read_skeleton_cue(worlds / "w2" / f"{rel}.mp4", "openpose", 128, 128)
    noisy = read_skeleton_cue(worlds / "w2" / f"{rel}.mp4", "openpose_noisy", 128, 128)
    assert clean.shape == (9, 128, 128, 3) and clean.max() > 200 and (clean.mean(-1) < 10).mean() > 0.8
    assert np.abs(clean.astype(int) - noisy).mean() > 0.1
    assert np.asarray(Image.open(worlds / "w2" / "preview.png")).shape[0] == 2 * 128  # one row per train identity
    with pytest.raises(InputError, match="skeleton video"):
        read_skeleton_cue(worlds / "plain" / f"{rel}.mp4", "openpose", 128, 128)


@pytest.mark.slow  # ~14 s: real cue extraction at 128 px, twice
def test_openpose_pose_cue_through_the_precompute(worlds, tmp_path):
    from test_trainers import _save_tiny_pipeline
    from trainers.components import load_components
    from trainers.dataset import load_dataset
    from trainers.precompute import Precomputer, PrecomputeSettings, load_entry

    _save_tiny_pipeline(tmp_path / "pipe")
    c = load_components(str(tmp_path / "pipe"))
    clip = load_dataset(worlds / "w2").split("train")[0]
    entries = {}
    for mode in ("openpose", "openpose_noisy"):
        settings = PrecomputeSettings(num_frames=9, long_side=128, max_text_length=8, storage_dtype="float32",
                                      pose_mode=mode)
        pre = Precomputer(tmp_path / "cache", settings, c.vae, c.tokenizer, c.text_encoder)
        key = pre.sample_key(clip)
        pre.compute_sample(clip, pre.path_for(key))
        entries[mode] = (key, load_entry(pre.path_for(key))["pose_latents"])
    assert len({k for k, _ in entries.values()}) == 2
    # the entry's pose cue is the skeleton video beside the clip, fitted to the working size, through the VAE
    from trainers.precompute import encode_video

    expect = encode_video(c.vae, read_skeleton_cue(clip.path, "openpose", 128, 128, num_frames=9))
    assert np.allclose(entries["openpose"][1].numpy(), expect.numpy(), atol=1e-5)
    assert not np.allclose(entries["openpose"][1].numpy(), entries["openpose_noisy"][1].numpy())
    with pytest.raises(InputError, match="needs its skeleton video"):
        pose_frames(type("Cues", (), {"num_frames": 9, "height": 128, "width": 128})(),
                    CueSettings(pose_cue="openpose"))
    assert skeleton_video_path("a/b/x.mp4", "openpose_noisy") == Path("a/b/x.openpose_noisy.mp4")


def test_world_metrics_mask_iou_background_and_pulse(worlds):
    from directanimator.cues.segment import get_segmenter
    from directanimator.video import read_video
    from trainers.experiments.reproduce_eval import pulse_ratios, truth_masks, world_metrics

    video = read_video(str(worlds / "w2" / "clips" / "id_0000_mo_0000.mp4")).frames
    masks = truth_masks(worlds / "w2", "clips/id_0000_mo_0000.mp4", 9, 128, 128)
    seg = get_segmenter("mediapipe")
    same = world_metrics(video, video, masks, seg)
    assert same["mask_iou"] > 0.8 and same["background_l1"] == 0 and same["pulse"] == pytest.approx(1.0)
    shifted = np.roll(video, 30, axis=2)  # the figure 30 px off where the motion puts it
    off = world_metrics(shifted, video, masks, seg)
    assert off["mask_iou"] < same["mask_iou"] - 0.3 and off["background_l1"] > 0.01
    held = video.copy()
    held[1::4], held[2::4] = held[0::4][: len(held[1::4])], held[0::4][: len(held[2::4])]  # changes bunched up
    ratios = pulse_ratios(held, video)
    # positions 0 and 1 of each 4-frame group no longer change, position 2 carries their change, 3 is untouched
    assert ratios[0] == ratios[1] == 0 and ratios[2] > 1.2 and ratios[3] == pytest.approx(1.0)


def test_claims_dry_run_prints_tiers_and_time_and_writes_nothing(tmp_path):
    out = tmp_path / "claims"
    res = subprocess.run([sys.executable, "-m", "trainers.experiments.reproduce", "--out", str(out), "--preset",
                          "claims", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "s1-openpose_noisy-s2" in res.stdout and "pseudo-s0" in res.stdout and "s2-no_s2x_mp-s1" in res.stdout
    lines = res.stdout.splitlines()
    first_b = next(i for i, l in enumerate(lines) if "tier B" in l and l.startswith("  run"))
    assert all("tier A" in l for l in lines[:first_b] if l.startswith("  run"))  # tier A first, every seed
    assert "estimated wall time" in res.stdout and not out.exists()


def test_the_preregistered_counting_rule():
    from trainers.experiments.claims_report import counts

    full = {0: {"moving_l1": 0.150, "mask_iou": 0.70}, 1: {"moving_l1": 0.152, "mask_iou": 0.71},
            2: {"moving_l1": 0.151, "mask_iou": 0.69}}
    worse = {s: {"moving_l1": m["moving_l1"] + 0.004, "mask_iou": m["mask_iou"] - 0.05} for s, m in full.items()}
    assert counts(worse, full, "moving_l1", [0, 1, 2]) == "worse" and counts(worse, full, "mask_iou", [0, 1, 2]) == "worse"
    assert counts(full, worse, "moving_l1", [0, 1, 2]) == "better"
    small = {s: {"moving_l1": m["moving_l1"] + 0.001} for s, m in full.items()}  # one sign, below the minimum effect
    assert counts(small, full, "moving_l1", [0, 1, 2]) == "no difference"
    mixed = {0: {"moving_l1": 0.160}, 1: {"moving_l1": 0.160}, 2: {"moving_l1": 0.140}}  # signs disagree
    assert counts(mixed, full, "moving_l1", [0, 1, 2]) == "no difference"
    assert counts({0: worse[0]}, full, "moving_l1", [0, 1, 2]) == "incomplete"
