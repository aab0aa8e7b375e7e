"""Framing-robust alignment (directanimator.cues.framing): a drawn person under known similarity transforms, cut by
the frame's bottom edge at the waist, the chest or the neck (head only) or whole, in the reference and the driving
frames; the real offline backends on a real photo under known transforms; the alignment modes in cues.json."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from directanimator.cues import CueSettings, DrivingCues, extract_cues, rebuild_cues
from directanimator.cues.framing import align_person, content_box, edge_cuts
from directanimator.cues.location import SimilarityTransform, estimate_alignment, transform_boxes
from directanimator.cues.settings import add_cue_arguments, cue_settings_from_args
from directanimator.errors import InputError
from directanimator.video import fit_frames, read_image

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "reference_astronaut.jpg"  # real photo, cut by its bottom edge at the waist

HW = (256, 224)
FACE = np.array([-0.04, 0.035, 0.04, 0.12])  # the face box in body units (head top at (0, 0), feet at y = 1)
CUTS = {"full": None, "waist": 0.42, "chest": 0.30, "head": 0.15}  # body height at the frame's bottom edge


def _capsule(x, y, a, b, r):
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d @ d), 0, 1)
    return (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 < r * r


def draw_person(hw, px, origin, arm=0.0):
    """Mask of a drawn person ``px`` pixels tall (head ellipse, neck, torso, arms raised by ``arm``, legs), the top
    of the head at pixel-centre point ``origin``."""
    yy, xx = np.mgrid[:hw[0], :hw[1]].astype(np.float64)
    x, y = (xx - origin[0]) / px, (yy - origin[1]) / px
    on = (x / 0.05) ** 2 + ((y - 0.065) / 0.065) ** 2 < 1
    on |= (np.abs(x) < 0.022) & (y > 0.11) & (y < 0.17)
    half = np.interp(y, [0.16, 0.19, 0.40, 0.52], [0.08, 0.11, 0.075, 0.09])
    on |= (np.abs(x) < half) & (y > 0.16) & (y < 0.52)
    on |= _capsule(x, y, (-0.1, 0.19), (-0.15 - arm, 0.47 - arm), 0.025)
    on |= _capsule(x, y, (0.1, 0.19), (0.15 + arm, 0.47 - arm), 0.025)
    on |= _capsule(x, y, (-0.05, 0.52), (-0.06, 0.96), 0.035)
    on |= _capsule(x, y, (0.05, 0.52), (0.06, 0.96), 0.035)
    return on.astype(np.float32)


def face_box(px, origin):
    """The drawn person's face box in continuous pixel coordinates (pixel i spans [i, i + 1))."""
    return FACE * px + np.array([origin[0], origin[1]] * 2) + 0.5


def shot(cut, fill, cx):
    """``(px, origin)`` of a person cut at ``CUTS[cut]`` by the bottom edge (``fill``: that body height fills this
    fraction of the frame height; a whole person is centred)."""
    px = fill * HW[0] / (CUTS[cut] or 1.0)
    origin = (cx, (HW[0] - px) / 2) if CUTS[cut] is None else (cx, HW[0] - fill * HW[0] - 0.5)
    return px, origin


def scene(ref_cut, drv_cut, drv_fill, jitter=0.0):
    """Reference and 3 driving frames of the same drawn person; the true driving -> reference transform."""
    pr, o_r = shot(ref_cut, 0.8, 100.3)
    pd, o_d = shot(drv_cut, drv_fill, 131.7)
    ref_mask = draw_person(HW, pr, o_r)
    masks = np.stack([draw_person(HW, pd, o_d, arm) for arm in (0.0, 0.03, 0.06)])
    rng = np.random.default_rng(len(ref_cut) * 7 + len(drv_cut))
    boxes = np.stack([face_box(pd, o_d)] * 3) + rng.uniform(-jitter, jitter, (3, 4))
    s = pr / pd
    truth = SimilarityTransform(s, o_r[0] - s * o_d[0], o_r[1] - s * o_d[1])
    return ref_mask, face_box(pr, o_r), masks, boxes, face_box(pd, o_d), truth


def _errors(found, truth, drv_face, ref_face):
    scale_err = abs(found.scale / truth.scale - 1.0)
    face_err = float(np.abs(transform_boxes(drv_face[None], found)[0] - ref_face).max())
    return scale_err, face_err


FRAMINGS = [(r, d, f) for r in CUTS for d in CUTS for f in (0.6, 0.95)]


@pytest.mark.parametrize("ref_cut,drv_cut,fill", FRAMINGS)
def test_auto_recovers_scale_and_face_for_every_framing(ref_cut, drv_cut, fill):
    ref_mask, ref_face, masks, boxes, drv_face, truth = scene(ref_cut, drv_cut, fill, jitter=0.5)
    found = align_person(ref_mask, masks, ref_face=ref_face, face_boxes=boxes)
    scale_err, face_err = _errors(found.transform, truth, drv_face, ref_face)
    assert scale_err < 0.03 and face_err < 4.0, (found, truth)
    whole = ref_cut == drv_cut == "full"
    assert found.used == ("paper" if whole else "face")
    if not whole:
        assert "cut by the bottom" in found.reason
    if ref_cut != drv_cut:
        # the paper's eqs. 9-10 match the heights of different parts of the body: the face lands beside the
        # reference face
        assert _errors(estimate_alignment(ref_mask, masks), truth, drv_face, ref_face)[1] > 4.0


@pytest.mark.parametrize("ref_cut,drv_cut,fill", [c for c in FRAMINGS if not c[0] == c[1] == "full"])
def test_auto_without_faces_uses_the_top_of_the_body(ref_cut, drv_cut, fill):
    ref_mask, ref_face, masks, _, drv_face, truth = scene(ref_cut, drv_cut, fill)
    found = align_person(ref_mask, masks, ref_face=None, face_boxes=None)
    assert found.used == "top" and "no reference face box" in found.reason
    scale_err, face_err = _errors(found.transform, truth, drv_face, ref_face)
    assert scale_err < 0.03 and face_err < 4.0, (found, truth)
    # a reference face alone is not enough: the driving frames need faces too
    also = align_person(ref_mask, masks, ref_face=ref_face, face_boxes=np.full((3, 4), np.nan))
    assert also.used == "top" and "no face in the driving frames" in also.reason


@pytest.mark.parametrize("scale,shift", [(0.6, (-20.0, 5.0)), (1.0, (0.0, 0.0)), (1.5, (15.5, -30.25))])
def test_auto_on_whole_bodies_is_the_paper_exactly(scale, shift):
    pr = 140.0
    o_r = (110.0, 30.0)
    pd = pr / scale
    ref_mask = draw_person(HW, pr, o_r)
    o_d = (110.0 + shift[0], (HW[0] - pd) / 2 + shift[1])
    masks = np.stack([draw_person(HW, pd, (o_d[0] + k, o_d[1]), 0.02 * k) for k in range(3)])
    assert not edge_cuts(ref_mask) and not any(edge_cuts(m) for m in masks)
    boxes = np.stack([face_box(pd, (o_d[0] + k, o_d[1])) for k in range(3)])
    valid = np.array([True, False, True])
    found = align_person(ref_mask, masks, valid, ref_face=face_box(pr, o_r), face_boxes=boxes)
    assert found.used == "paper" and "no person cut" in found.reason
    assert found.transform == estimate_alignment(ref_mask, masks, valid=valid)  # bit-identical


@pytest.mark.parametrize("ref_cut,drv_cut", [("waist", "full"), ("full", "chest"), ("head", "head")])
def test_paper_mode_is_eqs_9_10_whatever_the_framing(ref_cut, drv_cut):
    ref_mask, ref_face, masks, boxes, _, _ = scene(ref_cut, drv_cut, 0.9)
    found = align_person(ref_mask, masks, mode="paper", ref_face=ref_face, face_boxes=boxes)
    assert found.used == "paper" and found.transform == estimate_alignment(ref_mask, masks)
    assert found.record() == {"alignment_used": "paper", "alignment_reason": found.reason}
    with pytest.raises(InputError, match="alignment must be"):
        align_person(ref_mask, masks, mode="faces")
    with pytest.raises(InputError, match="no person found in the reference"):
        align_person(np.zeros(HW, np.float32), masks)


def test_a_manual_scale_keeps_the_face_on_the_reference_face():
    ref_mask, ref_face, masks, boxes, drv_face, truth = scene("chest", "waist", 0.7)
    found = align_person(ref_mask, masks, ref_face=ref_face, face_boxes=boxes, scale=0.5 * truth.scale)
    assert found.transform.scale == 0.5 * truth.scale
    centre = transform_boxes(drv_face[None], found.transform)[0]
    np.testing.assert_allclose([(centre[0] + centre[2]) / 2, (centre[1] + centre[3]) / 2],
                               [(ref_face[0] + ref_face[2]) / 2, (ref_face[1] + ref_face[3]) / 2], atol=1e-6)
    top = align_person(ref_mask, masks, scale=0.5 * truth.scale)  # no faces: the top of the head stays
    ref_top, drv_top = np.flatnonzero(ref_mask.any(1))[0], np.flatnonzero(masks[0].any(1))[0]
    assert top.used == "top" and abs(top.transform.apply([0, drv_top - 0.5])[1] - (ref_top - 0.5)) < 1e-6


def test_edge_cuts():
    whole = draw_person(HW, 200, (112, 20))
    assert edge_cuts(whole) == () and edge_cuts(np.zeros(HW)) == ()
    assert edge_cuts(draw_person(HW, 500, (112, 40))) == ("bottom",)  # cut at the waist
    assert set(edge_cuts(draw_person(HW, 500, (112, -25)))) == {"top", "bottom"}  # the head cut as well
    assert edge_cuts(draw_person(HW, 200, (5, 20))) == ("left",)  # half the body out on the left
    assert edge_cuts(draw_person(HW, 200, (HW[1] - 6, 20))) == ("right",)
    # a hand reaching out of the frame is not a cut body
    assert edge_cuts(draw_person(HW, 200, (HW[1] - 36, 20), arm=0.1)) == ()
    # a wide clip padded into the working frame: its bottom edge is where the black bar starts
    picture = np.full((120, 224, 3), 90, np.uint8)
    mask = draw_person((120, 224), 260, (112, 10))
    assert edge_cuts(mask) == ("bottom",)
    frames = fit_frames(picture[None], *HW, policy="pad")
    padded = fit_frames(mask[None], *HW, policy="pad")[0]
    area = content_box(frames)
    assert area == (0, 68, 223, 187)
    assert edge_cuts(padded) == () and edge_cuts(padded, area) == ("bottom",)
    assert content_box(np.zeros((2, 8, 8, 3), np.uint8)) == (0, 0, 7, 7)


# ------------------------------------------------------------------------------------------- end to end


def _photo_shots(ref, k, t, shifts=(-2, 0, 2)):
    """Driving frames: the reference photo scaled by ``k`` and shifted by ``t`` (+ a small sideways sway); pixel
    centres map as ``p_d = k p_r + t``."""
    return np.stack([cv2.warpAffine(ref, np.array([[k, 0, t[0] + d], [0, k, t[1]]], np.float64), ref.shape[1::-1],
                                    flags=cv2.INTER_LINEAR, borderValue=(120, 130, 140)) for d in shifts])


@pytest.fixture(scope="module")
def astronaut():
    return cv2.resize(read_image(ASTRONAUT), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("k,t", [(0.75, (70.0, 80.0)), (1.6, (-90.0, 30.0))])
def test_extract_cues_puts_the_face_on_the_reference_face(astronaut, k, t, tmp_path):
    """The real offline backends (MediaPipe segmentation and face detection) on a real half-body photo and the
    same photo zoomed out (more of the cut-off body shown) or in (head and shoulders), known transforms."""
    frames = _photo_shots(astronaut, k, t)
    cues = extract_cues(astronaut, frames, size=256)
    assert cues.settings["alignment"] == "auto" and cues.settings["alignment_used"] == "face"
    assert "reference cut by the bottom edge" in cues.settings["alignment_reason"]
    ref_face = np.asarray(cues.settings["reference_face_box"])
    assert ref_face.shape == (4,) and not cues.no_face.any()
    true_drv_face = (ref_face - 0.5) * k + np.array([*t, *t]) + 0.5
    truth = SimilarityTransform(1.0 / k, -t[0] / k, -t[1] / k)
    scale_err, face_err = _errors(cues.transform, truth, true_drv_face, ref_face)
    assert scale_err < 0.03 and face_err < 4.0
    # the paper's mode on the same frames: the cut-off heights make the face land beside the reference face
    paper = rebuild_cues(cues, CueSettings(alignment="paper"))
    assert paper.settings["alignment_used"] == "paper" and "alignment" not in paper.settings
    assert _errors(paper.transform, truth, true_drv_face, ref_face)[1] > 4.0
    # cues.json keeps the setting, the mode used and the reference face box
    loaded = DrivingCues.load(cues.save(tmp_path / "cues"))
    assert loaded.transform == cues.transform and loaded.cue_settings == CueSettings()
    for key in ("alignment", "alignment_used", "alignment_reason", "reference_face_box"):
        assert loaded.settings[key] == cues.settings[key]
    assert rebuild_cues(loaded).transform == cues.transform


def test_extract_cues_sees_the_cut_of_a_wide_clip_padded_into_the_frame(astronaut):
    """A 16:9 clip of the half-body photo fitted into the square working frame: black bars above and below, and the
    clip's bottom edge (where the body is cut) inside the frame."""
    k, t = 0.8, (80.0, 10.0)
    wide = np.stack([cv2.warpAffine(astronaut, np.array([[k, 0, t[0] + d], [0, k, t[1]]]), (320, 180),
                                    borderValue=(120, 130, 140)) for d in (-2, 0, 2)])
    cues = extract_cues(astronaut, wide, size=256)
    assert "driving person cut by the bottom edge" in cues.settings["alignment_reason"]
    assert content_box(cues.driving)[1::2] == (56, 199)
    ref_face = np.asarray(cues.settings["reference_face_box"])
    fit = 256 / 320  # the clip's pixels in the working frame: p = fit * p_clip + (0, 56)
    true_drv_face = ((ref_face - 0.5) * k + np.array([*t, *t]) + 0.5) * fit + np.array([0, 56, 0, 56])
    truth = SimilarityTransform(1.0 / (k * fit), 0.0, 0.0)
    scale_err, face_err = _errors(cues.transform, truth, true_drv_face, ref_face)
    assert cues.settings["alignment_used"] == "face" and scale_err < 0.03 and face_err < 4.0


def test_auto_equals_paper_on_whole_bodies_end_to_end():
    from directanimator.video import read_video

    frames = read_video(ROOT / "examples" / "driving_walk.mp4").frames
    auto = extract_cues(frames[20], frames[::8][:6], size=128, fps=10.0)
    paper = extract_cues(frames[20], frames[::8][:6], CueSettings(alignment="paper"), size=128, fps=10.0)
    assert auto.settings["alignment_used"] == paper.settings["alignment_used"] == "paper"
    assert auto.transform == paper.transform
    for name in ("body_location", "face_location", "pose_cue", "face_cue"):
        np.testing.assert_array_equal(getattr(auto, name), getattr(paper, name), err_msg=name)


def test_cue_folders_made_before_the_alignment_modes_load_and_rebuild(astronaut, tmp_path):
    cues = extract_cues(astronaut, _photo_shots(astronaut, 0.75, (70.0, 80.0)), size=256)
    folder = Path(cues.save(tmp_path / "old"))
    meta = json.loads((folder / "cues.json").read_text())
    for key in ("alignment", "alignment_used", "alignment_reason", "reference_face_box"):
        meta["settings"].pop(key)
    paper = estimate_alignment(cues.reference_mask, cues.driving_masks, valid=~cues.dropped)
    meta["transform"] = paper.to_dict()  # what eqs. 9-10 gave when it was made
    (folder / "cues.json").write_text(json.dumps(meta))
    old = DrivingCues.load(folder)
    assert old.cue_settings.alignment == "paper"
    rebuilt = rebuild_cues(old, lowpass=0.3)  # keeps its meaning: eqs. 9-10
    assert rebuilt.transform == paper and rebuilt.settings["alignment_used"] == "paper"
    assert "alignment" not in rebuilt.settings
    # asked for "auto", it uses what the folder has (no reference face box: the top of the body) and says so
    auto = rebuild_cues(old, CueSettings())
    assert auto.settings["alignment_used"] == "top" and "predate" in auto.settings["alignment_reason"]
    # given the reference face box, "auto" aligns by the face again
    given = rebuild_cues(old, CueSettings(), reference_face_box=cues.settings["reference_face_box"])
    assert given.settings["alignment_used"] == "face"
    np.testing.assert_allclose(given.transform.to_dict()["scale"], cues.transform.scale, rtol=1e-5)
    with pytest.raises(InputError, match="face box"):
        rebuild_cues(old, reference_face_box=(10, 10, 5, 20))


def test_alignment_flag_and_cache_keys():
    import argparse

    from trainers.precompute import PrecomputeSettings

    parser = argparse.ArgumentParser()
    add_cue_arguments(parser)
    assert cue_settings_from_args(parser.parse_args([])).alignment == "auto"
    assert cue_settings_from_args(parser.parse_args(["--alignment", "paper"])) == CueSettings(alignment="paper")
    with pytest.raises(SystemExit):
        parser.parse_args(["--alignment", "faces"])
    # the trainers' cache keys: unchanged for "paper" (what caches were made with), new for the default
    assert "alignment" not in PrecomputeSettings(alignment="paper").key_dict()
    assert PrecomputeSettings().key_dict()["alignment"] == "auto"
    assert PrecomputeSettings().cue_settings == CueSettings()


def test_top_search_scores_every_scale_as_one_at_a_time():
    # the vectorised search picks the scale the straightforward per-scale loop picks
    from directanimator.cues import framing

    def loop_costs(ref_w, w, scales):
        out = np.full(len(scales), np.inf)
        for i, s in enumerate(scales):
            n = int(min(len(ref_w), np.floor(s * len(w))))
            if n >= 8:
                scaled = s * np.interp((np.arange(n) + 0.5) / s - 0.5, np.arange(len(w)), w)
                out[i] = np.abs(ref_w[:n] - scaled).sum() / max((ref_w[:n] + scaled).sum(), 1e-9)
        return out

    rng = np.random.default_rng(0)
    for _ in range(20):
        length = int(rng.integers(20, 400))
        w = np.abs(np.cumsum(rng.normal(0, 2, length))) + rng.uniform(5, 40)
        s = float(np.exp(rng.uniform(-0.7, 0.7)))
        n = int(min(480, length * s * rng.uniform(0.5, 1.2))) + 8
        ref = s * np.interp((np.arange(n) + 0.5) / s - 0.5, np.arange(length), w) + rng.normal(0, 1, n)
        best = framing._SCALES[int(np.argmin(loop_costs(ref, w, framing._SCALES)))]
        fine = best * np.exp(np.linspace(-0.015, 0.015, 61))
        assert framing._match_scale(ref, w) == float(fine[int(np.argmin(loop_costs(ref, w, fine)))])
