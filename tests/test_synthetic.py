"""The synthetic world: deterministic, cross-ID renders share the motion, identities differ, valid datasets."""

import json

import numpy as np
import pytest

from directanimator.errors import InputError
from trainers.synthetic import clip_annotations, generate_dataset, main, render_clip, render_reference
from trainers.synthetic.people import JOINTS, face_visible, make_identity, make_motion


def _motion_with_turn(kind, seed=0):
    return next(m for m in range(50) if make_motion(seed, m).turn == kind)


def test_render_shapes_and_ranges():
    frames, masks, boxes = render_clip(1, 2, frames=5, size=48, seed=3)
    assert frames.shape == (5, 48, 48, 3) and frames.dtype == np.uint8
    assert masks.shape == (5, 48, 48) and masks.dtype == np.float32
    assert boxes.shape == (5, 4) and boxes.dtype == np.float32
    assert 0.0 <= masks.min() and masks.max() <= 1.0
    area = (masks > 0.5).mean((1, 2))
    assert np.all(area > 0.03) and np.all(area < 0.6)  # a person, not the whole frame


def test_deterministic_per_seed():
    a = render_clip(3, 2, frames=6, size=48, seed=5)
    b = render_clip(3, 2, frames=6, size=48, seed=5)
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()
    c = render_clip(3, 2, frames=6, size=48, seed=6)
    assert a[0].tobytes() != c[0].tobytes()
    assert make_identity(5, 3) == make_identity(5, 3) and make_identity(5, 3) != make_identity(5, 4)


def test_cross_id_renders_share_the_motion_exactly():
    motion = make_motion(0, 4)
    anns = [clip_annotations(i, motion, frames=9, size=64) for i in range(4)]
    ref = anns[0]
    for ann in anns[1:]:
        # Root path (pelvis position), turn and expressions are the motion's: equal bit for bit.
        assert np.array_equal(ann["root"][:, :2], ref["root"][:, :2])
        for key in ("yaw", "mouth_open", "smile", "eye_open"):
            assert np.array_equal(ann[key], ref[key])
        # Bones point the same way for everyone; only their lengths (proportions) differ.
        for a, b in [("pelvis", "chest"), ("l_shoulder", "l_elbow"), ("r_elbow", "r_wrist"), ("l_hip", "l_knee"),
                     ("r_knee", "r_ankle")]:
            ia, ib = JOINTS.index(a), JOINTS.index(b)
            u = ann["joints"][:, ib] - ann["joints"][:, ia]
            v = ref["joints"][:, ib] - ref["joints"][:, ia]
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            np.testing.assert_allclose(u, v, atol=1e-4)
        assert not np.allclose(ann["joints"], ref["joints"], atol=0.5)  # proportions do differ
    # The drawn masks follow the same root: the pelvis of the shared path is inside every person's mask.
    for i in range(3):
        _, masks, _ = render_clip(i, motion, frames=9, size=64)
        px = np.round(ref["root"][:, :2]).astype(int)
        assert all(masks[t, y, x] > 0.5 for t, (x, y) in enumerate(px))


def test_identities_look_different():
    means, frames0 = [], []
    for i in range(6):
        frames, masks, _ = render_clip(i, 0, frames=3, size=64, seed=0)
        person = masks[1] > 0.5
        means.append(frames[1][person].mean(0))
        frames0.append(frames[1].astype(np.float32))
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(means[i] - means[j]).max() > 8, (i, j)
            assert np.abs(frames0[i] - frames0[j]).mean() > 8, (i, j)


def test_back_view_has_no_face_box_and_shows_hair():
    m = _motion_with_turn("back")
    ann = clip_annotations(0, m, frames=40, size=64)
    _, _, boxes = render_clip(0, m, frames=40, size=64)
    back = np.cos(ann["yaw"]) < 0
    front = np.cos(ann["yaw"]) > 0.9
    assert back.any() and front.any()
    assert np.isnan(boxes[back]).all()
    assert np.isfinite(boxes[front]).all()
    assert np.array_equal(np.isfinite(boxes[:, 0]), face_visible(ann["yaw"]))
    # From behind, the middle of the head is hair, not skin.
    idn = make_identity(0, 0)
    frames, _, _ = render_clip(idn, m, frames=40, size=64)
    head = JOINTS.index("head")
    for t in np.flatnonzero(np.cos(ann["yaw"]) < -0.9):
        x, y = np.round(ann["joints"][t, head]).astype(int)
        colour = frames[t, y, x].astype(float)
        assert np.abs(colour - idn.hair_colour).sum() < np.abs(colour - idn.skin).sum()


def test_reference_is_a_front_facing_still_at_the_motion_mean_place():
    img, mask, box = render_reference(2, 1, frames=9, size=64)
    assert img.shape == (64, 64, 3) and mask.shape == (64, 64) and np.isfinite(box).all()
    ann = clip_annotations(2, 1, frames=9, size=64)
    cx, cy = ann["root"][:, :2].mean(0)
    assert mask[int(round(cy)), int(round(cx))] > 0.5


def test_generate_dataset_is_valid_and_splits_are_disjoint(tmp_path):
    from directanimator.video import read_video
    from trainers.dataset import validate_dataset

    out = tmp_path / "world"
    generate_dataset(out, identities=4, motions=3, frames=4, size=32, seed=1, pseudo_per_clip=2,
                     test_identities=1, test_motions=1, show_progress=False)
    ds = validate_dataset(out, require_pseudo=True)
    world = json.loads((out / "world.json").read_text())
    train, test = ds.split("train"), ds.split("test")
    assert len(train) == 3 * 2 and len(test) == 1 * 1
    motion_of = {rel: v["motion"] for rel, v in world["videos"].items()}
    assert {c.identity for c in train}.isdisjoint({c.identity for c in test})
    assert {motion_of[c.file_name] for c in train}.isdisjoint({motion_of[c.file_name] for c in test})
    assert set(world["splits"]["test"]["identities"]) == {c.identity for c in test}
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "face_boxes" in card
    for clip in ds.clips:
        assert clip.path.is_file() and clip.reference_path.is_file()
        assert len(clip.pseudo_driving) == 2
        for p in clip.pseudo_driving:
            assert p.path.is_file() and p.identity != clip.identity
            assert motion_of[p.file_name] == motion_of[clip.file_name]  # same motion, other person
    # Each video has its ground truth next to it, and the mp4 decodes to the rendered frames.
    clip = train[0]
    ann = np.load(clip.path.with_suffix(".npz"))
    assert ann["masks"].shape == (4, 32, 32) and ann["face_boxes"].shape == (4, 4)
    assert list(ann["joint_names"]) == list(JOINTS) and str(ann["identity"]) == clip.identity
    idx, mo = int(clip.identity[3:]), int(motion_of[clip.file_name][3:])
    frames, masks, _ = render_clip(idx, mo, frames=4, size=32, seed=1)
    assert np.array_equal(ann["masks"], np.round(masks * 255).astype(np.uint8))
    video = read_video(str(clip.path))
    assert video.frames.shape == frames.shape
    mse = np.mean((video.frames.astype(float) - frames) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 28
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left


def test_generate_dataset_is_deterministic(tmp_path):
    kw = dict(identities=3, motions=2, frames=3, size=32, seed=2, pseudo_per_clip=1, test_identities=0,
              test_motions=0, show_progress=False)
    a, b = generate_dataset(tmp_path / "a", **kw), generate_dataset(tmp_path / "b", **kw)
    assert (a / "metadata.jsonl").read_bytes() == (b / "metadata.jsonl").read_bytes()
    for npz in sorted((a / "clips").glob("*.npz")):
        x, y = np.load(npz), np.load(b / "clips" / npz.name)
        assert all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x.files)
    assert (a / "refs" / "id_0000_mo_0000.png").read_bytes() == (b / "refs" / "id_0000_mo_0000.png").read_bytes()


def test_motions_per_identity_spreads_many_motions_over_the_identities(tmp_path):
    from trainers.dataset import validate_dataset

    out = generate_dataset(tmp_path / "w", identities=7, motions=12, frames=2, size=32, seed=3, pseudo_per_clip=1,
                           test_identities=1, test_motions=2, show_progress=False, motions_per_identity=5)
    ds = validate_dataset(out, require_pseudo=True)
    world = json.loads((out / "world.json").read_text())
    motion_of = {rel: v["motion"] for rel, v in world["videos"].items()}
    train = ds.split("train")
    assert len(train) == 6 * 5 and len(ds.split("test")) == 1 * 2
    per_identity = {}
    for clip in train:
        per_identity.setdefault(clip.identity, set()).add(motion_of[clip.file_name])
    assert all(len(m) == 5 for m in per_identity.values())  # 5 distinct motions each
    counts = np.unique([motion_of[c.file_name] for c in train], return_counts=True)[1]
    assert len(counts) == 10 and counts.min() == counts.max() == 3  # all 10 train motions, dealt equally
    assert len({frozenset(m) for m in per_identity.values()}) == 6  # no two identities dance the same set
    for clip in train:  # the pseudo driver is another identity's clip of the same motion: nothing extra rendered
        (p,) = clip.pseudo_driving
        assert p.file_name.startswith("clips/") and p.identity != clip.identity
        assert motion_of[p.file_name] == motion_of[clip.file_name]
    assert world["motions_per_identity"] == 5 and "--motions-per-identity 5" in (out / "README.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["--motions-per-identity", "0"], "--motions-per-identity must be an integer >= 1, got 0"),
    (["--identities", "4", "--motions", "12", "--motions-per-identity", "2"], "cannot cover"),
    (["--size", "40"], "multiple of 16"),
    (["--identities", "2", "--test-identities", "1"], "train identities"),
    (["--test-identities", "0"], "both"),
    (["--pseudo-per-clip", "12"], "pseudo_per_clip"),
])
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, words):
    out = tmp_path / "x"
    assert main(["--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["--out", str(tmp_path), "--identities", "3", "--motions", "1", "--test-identities", "0",
                 "--test-motions", "0", "--frames", "2", "--size", "32"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(InputError):
        render_clip(-1, 0)


def test_arm_behind_the_body_is_hidden_by_it():
    from trainers.synthetic.draw import draw_clip
    from trainers.synthetic.people import CHANNELS, MotionTrack, project_joints

    idn = next(d for d in (make_identity(0, i) for i in range(200))
               if d.pattern == "plain" and not d.long_sleeves and np.abs(np.subtract(d.top, d.skin)).sum() > 150)
    c = {n: i for i, n in enumerate(CHANNELS)}
    angles = np.zeros((2, len(CHANNELS)), np.float32)
    angles[:, c["l_arm_abduct"]] = angles[:, c["r_arm_abduct"]] = 0.05
    angles[:, c["l_arm_swing"]] = -0.2  # the left arm hangs by the torso
    angles[:, c["r_arm_swing"]] = 1.3  # the right arm points forward, out of the way
    one = lambda v: np.full(2, v, np.float32)  # noqa: E731
    # Side views from both sides: the left arm is the far arm (behind the torso), then the near arm.
    track = MotionTrack(angles, one(32), one(34), one(48), np.array([np.pi / 2, -np.pi / 2], np.float32),
                        one(0), one(0), one(1))
    frames, _, boxes = draw_clip(idn, track, 64)
    x, y = np.round(project_joints(idn, track)[0, JOINTS.index("l_elbow")]).astype(int)
    far, near = frames[0, y, x].astype(float), frames[1, y, x].astype(float)
    assert np.abs(far - idn.top).sum() < 30  # shirt covers the far arm
    assert np.abs(near - idn.skin).sum() < 30  # the near arm covers the shirt
    assert np.isnan(boxes).all()  # profile views carry no face box
