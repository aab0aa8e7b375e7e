"""DrivingCues end to end with the real offline backends (MediaPipe) on real media, save/load, rebuild, preview."""

import json
from pathlib import Path

import numpy as np
import pytest

from directanimator.cues import CueSettings, DrivingCues, SimilarityTransform, extract_cues, rebuild_cues
from directanimator.cues.location import mask_box
from directanimator.cues.preview import preview_frame, render_preview
from directanimator.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"  # real footage: a woman walking, whole body (see examples/LICENSES.md)
SYNTH = ROOT / "examples" / "driving_synthetic.mp4"  # drawn figure with a visible face and an audio track
ASTRONAUT = ROOT / "examples" / "reference_astronaut.jpg"  # real photo (scikit-image, public domain)
SIZE = 256


@pytest.fixture(scope="module")
def walk_frames():
    from directanimator.video import read_video

    return read_video(WALK).frames[::8][:6]  # 6 real frames spread over the clip


@pytest.fixture(scope="module")
def cues(walk_frames):
    return extract_cues(str(ASTRONAUT), walk_frames, size=SIZE, fps=10.0)


def _assert_same(a: DrivingCues, b: DrivingCues, exact: bool = False):
    """``b`` is ``a`` saved and loaded: equal arrays (the near-lossless RGB streams, driving frames and face cue,
    within the error their folder recorded, at most 3 gray levels, unless ``exact``) and settings, the input paths
    cut to their file names."""
    for name in ("reference", "reference_mask", "driving", "driving_masks", "pose_cue", "face_cue", "body_location",
                 "face_location", "dropped", "no_face"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name in ("driving", "face_cue") and not exact:
            error = np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max()
            assert error <= y.max_abs_error <= 3, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_array_equal(a.face_boxes, b.face_boxes)  # NaN == NaN for assert_array_equal
    assert a.transform == b.transform and a.fps == b.fps
    names = {k: Path(a.settings[k]).name for k in ("reference_path", "driving_path") if a.settings.get(k)}
    assert b.settings == {**a.settings, **names}


def test_extract_cues_on_real_media(cues):
    num, height, width = 6, SIZE, SIZE
    assert (cues.num_frames, cues.height, cues.width) == (num, height, width)
    assert cues.pose_cue.shape == (num, height, width) and cues.pose_cue.dtype == np.uint8
    assert cues.face_cue.shape == (num, height, width, 3) and cues.face_cue.dtype == np.uint8
    assert cues.body_location.shape == (num, height, width) and cues.body_location.dtype == np.float32
    assert cues.face_location.shape == (num, height, width)
    assert cues.face_boxes.shape == (num, 4) and cues.dropped.shape == (num,) and cues.no_face.shape == (num,)
    assert cues.fps == 10.0
    # the offline segmenter finds the walking woman in every frame and the astronaut in the photo
    assert not cues.dropped.any()
    assert (cues.reference_mask > 0.5).mean() > 0.2
    areas = (cues.driving_masks > 0.5).mean(axis=(1, 2))
    assert (areas > 0.01).all() and (areas < 0.3).all()
    # pose cue: foreground only (background of the lawn removed), low-passed
    outside = cues.driving_masks < 0.01
    assert cues.pose_cue[outside].mean() < 0.1 * cues.pose_cue[~outside].mean() + 2
    # location: the aligned body sits on the reference person (the astronaut's box), softened
    ref_box = np.array(mask_box(cues.reference_mask))
    hard = (cues.body_location > 0.5).any(axis=0)
    assert abs(np.mean(np.nonzero(hard)[0]) - np.mean(np.nonzero(cues.reference_mask > 0.5)[0])) < 0.25 * SIZE
    assert cues.transform.scale > 1.0  # a small walker is scaled up to the astronaut's height
    assert ref_box[3] - ref_box[2] > 0.5 * SIZE
    assert ((cues.body_location > 0.05) & (cues.body_location < 0.95)).mean() > 0.01
    # face: flags agree with boxes and zero frames
    no_box = ~np.isfinite(cues.face_boxes).all(axis=1)
    np.testing.assert_array_equal(cues.no_face, no_box)
    assert not cues.face_cue[cues.no_face].any()
    if cues.no_face.all():
        assert any("no face" in w for w in cues.settings["warnings"])
    timings = cues.settings["timings_ms"]
    assert set(timings) >= {"segment", "faces", "pose", "face", "location"}
    assert cues.settings["segmenter"] == "mediapipe" and cues.settings["lowpass"] == 0.5


def test_extract_cues_with_visible_face_and_partial_person(walk_frames):
    from directanimator.video import read_video

    synth = read_video(SYNTH).frames[::12][:4]
    # A person in only some frames: the blank frames are dropped and flagged, not an error.
    from directanimator.video import fit_frames

    blank = np.full((2,) + synth.shape[1:], 90, np.uint8)
    frames = np.concatenate([synth[:2], blank, synth[2:]])
    progress = []
    cues = extract_cues(str(ASTRONAUT), frames, size=SIZE, progress=lambda f, d="": progress.append(f))
    assert cues.dropped.tolist() == [False, False, True, True, False, False]
    assert not cues.pose_cue[2:4].any() and cues.pose_cue[[0, 1, 4, 5]].any()
    assert any("2 of 6" in w for w in cues.settings["warnings"])
    # the drawn face is found where the figure is, the crop is centred and not empty
    assert not cues.no_face[[0, 1, 4, 5]].any()
    assert cues.face_cue[0].any()
    # dropped frames take the location of their nearest kept neighbour
    np.testing.assert_array_equal(cues.body_location[2], cues.body_location[1])
    assert progress and progress[-1] == 1.0 and all(0 <= p <= 1 for p in progress)
    # working size follows the reference's aspect; the 384x512 driving frames are padded into it
    assert (cues.height, cues.width) == (SIZE, SIZE)
    expected = fit_frames(synth[:1], SIZE, SIZE, policy="pad")[0]
    np.testing.assert_array_equal(cues.driving[0], expected)


def test_no_person_errors(walk_frames):
    blank = np.full((3, 128, 128, 3), 128, np.uint8)
    with pytest.raises(InputError, match="no person found in the driving video"):
        extract_cues(str(ASTRONAUT), blank, size=128)
    with pytest.raises(InputError, match="no person found in the reference"):
        extract_cues(np.full((200, 160, 3), 60, np.uint8), walk_frames[:2], size=128)


def test_grayscale_alpha_reference(walk_frames, tmp_path):
    from PIL import Image

    # a grayscale photo with an alpha channel (LA): composited on gray, converted to RGB, person still found
    photo = Image.open(ASTRONAUT).convert("LA")
    path = tmp_path / "gray_alpha.png"
    photo.save(path)
    cues = extract_cues(str(path), walk_frames[:2], size=128)
    assert cues.reference.shape == (128, 128, 3)
    assert np.array_equal(cues.reference[..., 0], cues.reference[..., 1])  # gray stays gray
    assert (cues.reference_mask > 0.5).mean() > 0.2


def test_bad_settings():
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    for kwargs in ({"lowpass": 1.5}, {"face_enlarge": 0.2}, {"grid": -1}, {"size": 8}):
        with pytest.raises(InputError):
            extract_cues(str(ASTRONAUT), frames, **kwargs)


def test_save_load_round_trip_exactly(cues, tmp_path):
    out = tmp_path / "cues"
    assert cues.save(out) == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["cues.json", "cues.safetensors", "frames"]
    loaded = DrivingCues.load(out)
    _assert_same(cues, loaded)
    cues.save(out, lossless=True)
    _assert_same(cues, DrivingCues.load(out), exact=True)
    # saving again replaces the folder as a whole; no temp folders left
    rebuilt = rebuild_cues(cues, lowpass=0.9)
    rebuilt.save(out)
    _assert_same(rebuilt, DrivingCues.load(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cues"]


def test_saved_cue_folder_names_no_server_folder(tmp_path):
    """cues.json records the inputs' file names, never where they were; folders saved with full paths still load."""
    from directanimator.video import read_video

    cues = extract_cues(str(ASTRONAUT), read_video(WALK, max_frames=2), size=64)
    assert cues.settings["driving_path"] == str(WALK)  # in memory: the full path (the app takes the audio from it)
    out = tmp_path / "cues"
    cues.save(out)
    text = (out / "cues.json").read_text()
    assert str(ROOT) not in text and str(tmp_path) not in text
    settings = DrivingCues.load(out).settings
    assert (settings["reference_path"], settings["driving_path"]) == (ASTRONAUT.name, WALK.name)
    meta = json.loads(text)  # a folder saved before: full paths
    meta["settings"].update(reference_path=str(ASTRONAUT), driving_path=str(WALK))
    (out / "cues.json").write_text(json.dumps(meta))
    old = DrivingCues.load(out)
    assert old.settings["driving_path"] == str(WALK) and old.num_frames == 2


def test_save_refuses_to_replace_other_folders(cues, tmp_path):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a cue folder"):
        cues.save(other)
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_load_errors(cues, tmp_path):
    with pytest.raises(InputError, match="not found"):
        DrivingCues.load(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="not a cue folder"):
        DrivingCues.load(empty)
    good = tmp_path / "good"
    cues.save(good)
    broken = tmp_path / "broken"
    cues.save(broken)
    (broken / "cues.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt"):
        DrivingCues.load(broken)
    cues.save(broken)
    data = (broken / "cues.safetensors").read_bytes()
    (broken / "cues.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError):
        DrivingCues.load(broken)
    cues.save(broken)
    meta = json.loads((broken / "cues.json").read_text())
    del meta["transform"]
    (broken / "cues.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="incomplete"):
        DrivingCues.load(broken)


def test_rebuild_cues_changes_only_what_was_asked(cues):
    stronger = rebuild_cues(cues, lowpass=1.0)
    assert stronger.settings["lowpass"] == 1.0 and cues.settings["lowpass"] == 0.5
    assert not np.array_equal(stronger.pose_cue, cues.pose_cue)
    np.testing.assert_array_equal(stronger.face_cue, cues.face_cue)
    np.testing.assert_array_equal(stronger.body_location, cues.body_location)
    assert stronger.transform == cues.transform
    # grid 0 = hard masks: only 0/1 (plus bilinear warp edges)
    hard = rebuild_cues(cues, grid=0)
    assert ((hard.body_location > 0.05) & (hard.body_location < 0.95)).mean() < \
        ((cues.body_location > 0.05) & (cues.body_location < 0.95)).mean()


def test_rebuild_cues_alignment_overrides(cues):
    # the paper's alignment (eqs. 9-10): the translation is recomputed so the mean driving centre still lands on
    # the reference centre
    paper = rebuild_cues(cues, CueSettings(alignment="paper"))
    assert paper.settings["alignment_used"] == "paper" and "alignment" not in paper.settings
    scaled = rebuild_cues(paper, scale=paper.transform.scale * 0.5)
    assert scaled.settings["transform_manual"]
    assert abs(scaled.transform.scale - 0.5 * paper.transform.scale) < 1e-9
    ys = np.nonzero(cues.reference_mask > 0.5)[0]
    ref_cy = (ys.min() + ys.max()) / 2
    boxes = [mask_box(m) for m in cues.driving_masks]
    mean_cy = np.mean([(b[2] + b[3]) / 2 for b in boxes])
    assert abs(scaled.transform.apply([0, mean_cy])[1] - ref_cy) < 1.0
    # the default ("auto"): the astronaut is cut by the bottom edge and the walker shows no face, so the top of the
    # head is the anchor, and a manual scale keeps the mean head top on the reference's
    assert cues.settings["alignment_used"] == "top" and "bottom edge" in cues.settings["alignment_reason"]
    auto_scaled = rebuild_cues(cues, scale=cues.transform.scale * 0.5)
    mean_top = np.mean([b[2] for b in boxes])
    assert abs(auto_scaled.transform.apply([0, mean_top - 0.5])[1] - (ys.min() - 0.5)) < 1e-6
    assert (auto_scaled.transform.scale, auto_scaled.settings["alignment_used"]) == (0.5 * cues.transform.scale, "top")
    assert (scaled.body_location > 0.5).sum() < (paper.body_location > 0.5).sum()
    # a manual transform is kept by later rebuilds until "auto"
    shifted = rebuild_cues(scaled, offset=(3.0, -4.0))
    assert (shifted.transform.tx, shifted.transform.ty) == (3.0, -4.0)
    kept = rebuild_cues(shifted, lowpass=0.2)
    assert kept.transform == shifted.transform
    assert rebuild_cues(kept, transform="auto").transform == paper.transform
    assert rebuild_cues(kept, CueSettings(), transform="auto").transform == cues.transform
    given = SimilarityTransform(1.0, 0.0, 0.0)
    assert rebuild_cues(cues, transform=given).transform == given
    with pytest.raises(InputError):
        rebuild_cues(cues, scale=-1.0)


def test_rebuild_cues_edits(cues):
    num = cues.num_frames
    box = (100.0, 40.0, 140.0, 90.0)
    edited = rebuild_cues(cues, face_boxes={1: box, 2: None})
    assert not edited.no_face[1] and edited.no_face[2]
    np.testing.assert_array_equal(edited.face_boxes[1], np.array(box, np.float32))
    assert edited.face_cue[1].any() and not edited.face_cue[2].any()
    assert edited.face_location[1].sum() > 0 and edited.face_location[2].sum() == 0
    # an edited (erased) driving mask drops that frame: zero pose cue, flagged
    masks = cues.driving_masks.copy()
    masks[3] = 0
    erased = rebuild_cues(cues, driving_masks=masks)
    assert erased.dropped[3] and not erased.pose_cue[3].any()
    assert any("1 of" in w for w in erased.settings["warnings"])
    # edited reference mask: a smaller reference person gives a smaller scale
    ref = np.zeros_like(cues.reference_mask)
    ref[100:164, 100:140] = 1.0
    small = rebuild_cues(cues, reference_mask=ref)
    assert small.transform.scale < cues.transform.scale
    with pytest.raises(InputError):
        rebuild_cues(cues, driving_masks=np.zeros((num, 5, 5)))
    with pytest.raises(InputError):
        rebuild_cues(cues, face_boxes={0: (5, 5, 1, 1)})
    with pytest.raises(InputError, match="every driving frame"):
        rebuild_cues(cues, dropped=np.ones(num, bool))


def test_preview(cues, tmp_path):
    from directanimator.video import read_video

    flagged = rebuild_cues(cues, dropped=np.array([False, True] + [False] * (cues.num_frames - 2)),
                           face_boxes={0: None})
    before = flagged.driving.copy(), flagged.face_cue.copy()
    frame = preview_frame(flagged, 1)
    assert frame.shape == (SIZE, 4 * SIZE, 3) and frame.dtype == np.uint8
    pose_panel = frame[:, SIZE : 2 * SIZE]
    red = (pose_panel[..., 0] > 200) & (pose_panel[..., 1] < 80) & (pose_panel[..., 2] < 80)
    assert red.sum() > 20  # the red DROPPED label
    face_panel = preview_frame(flagged, 0)[:, 2 * SIZE : 3 * SIZE]
    assert ((face_panel[..., 0] > 200) & (face_panel[..., 1] < 80)).sum() > 20  # the red NO FACE label
    path = tmp_path / "preview.mp4"
    frames = render_preview(flagged, path)
    assert frames.shape == (cues.num_frames, SIZE, 4 * SIZE, 3)
    video = read_video(path)
    assert video.frames.shape[:3] == (cues.num_frames, SIZE, 4 * SIZE) and video.fps == pytest.approx(cues.fps)
    # drawing the labels leaves the cues untouched
    np.testing.assert_array_equal(flagged.driving, before[0])
    np.testing.assert_array_equal(flagged.face_cue, before[1])
