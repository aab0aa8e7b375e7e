"""A synthetic world of drawn dancing people, written as a DirectAnimator training dataset.

    python -m trainers.synthetic --out data/synthetic [--identities 12 --motions 10 --frames 25 --size 96
        --seed 0 --pseudo-per-clip 2 --test-identities 2 --test-motions 2 --fps 8 --crf 10]

Every identity performs every motion of its split (train identities x train motions, test identities x test
motions, never mixed) — or, with ``--motions-per-identity K``, each train identity performs K of the train motions,
so many more motions fit the same number of clips and a model cannot learn the motions by heart. Each clip has
exact cross-ID ground truth: the same motion rendered with another
identity shares the joint angles, turns, expressions and the root path (pelvis position and pixel scale) exactly;
only the person's proportions and looks differ. Backgrounds belong to the identity, like a person's own room,
so the ground truth of "identity B performs motion M" has B's background, as in a reference photo of B.

The dataset (see ``trainers/dataset.py`` for the metadata schema)::

    metadata.jsonl                 one row per clip (file_name, identity, caption, reference, split, pseudo_driving)
    README.md                      dataset card
    world.json                     the world's parameters and, per video, its identity, motion and annotations
    preview.png                    contact sheet: a reference and six frames of a few train clips
    clips/id_0003_mo_0002.mp4      identity 3 performing motion 2 (also the ground truth for cross-ID tests)
    clips/id_0003_mo_0002.npz      per-frame ground truth of that video (see ``ANNOTATIONS``)
    refs/id_0003_mo_0002.png       reference photo: the identity standing still, facing the camera, placed at
    refs/id_0003_mo_0002.npz       the motion's mean position and scale (+ its mask and face box)
    pseudo/mo_0002_id_0005.mp4     a pseudo driving video whose (identity, motion) is not a clip of the set
                                   (only test clips need them; train clips point at other clips)
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from directanimator.cues.skeleton_video import skeleton_video_path
from directanimator.files import atomic_folder
from directanimator.errors import InputError, run_cli
from trainers.synthetic.draw import draw_clip
from trainers.synthetic.people import (
    JOINTS, Identity, Motion, MotionTrack, face_visible, make_identity, make_motion, project_joints, rest_track,
    sample_motion)

__all__ = ["render_clip", "render_reference", "reference_placement", "scaled_face", "clip_annotations",
           "skeleton_video_path", "generate_dataset", "make_identity", "make_motion", "ANNOTATIONS", "main"]

ANNOTATIONS = """\
Each video `X.mp4` has a sidecar `X.npz` (numpy, no pickles) with per-frame ground truth:
`masks` uint8 [T,H,W] person coverage x255 (hair and clothes included), `face_boxes` float32 [T,4]
(x0,y0,x1,y1 pixels of the head ellipse, NaN rows when the face is not visible, i.e. turned more than about 70
degrees away), `joints` float32 [T,18,2] pixels in the order of `joint_names`, `root` float32 [T,3]
(pelvis x, pelvis y, pixels per body unit = the motion's scale x the identity's height factor; pelvis x and y
are shared exactly by every identity performing the motion), `yaw` float32 [T] radians (0 = facing the camera, pi = back view), `mouth_open`,
`smile`, `eye_open` float32 [T] in [0,1], plus `identity` and `motion` ids. Reference images `refs/X.png`
have `refs/X.npz` with `mask` uint8 [H,W] x255 and `face_box` float32 [4]."""


def _as_identity(identity, seed: int) -> Identity:
    if isinstance(identity, Identity):
        return identity
    if isinstance(identity, (int, np.integer)) and identity >= 0:
        return make_identity(seed, int(identity))
    raise InputError(f"identity must be an Identity or a non-negative index, got {identity!r}")


def _as_motion(motion, seed: int) -> Motion:
    if isinstance(motion, Motion):
        return motion
    if isinstance(motion, (int, np.integer)) and motion >= 0:
        return make_motion(seed, int(motion))
    raise InputError(f"motion must be a Motion or a non-negative index, got {motion!r}")


def _check_render_args(frames, size):
    if not isinstance(frames, (int, np.integer)) or not 1 <= frames <= 2000:
        raise InputError(f"frames must be an integer in 1..2000, got {frames!r}")
    if not isinstance(size, (int, np.integer)) or not 16 <= size <= 1024:
        raise InputError(f"size must be an integer in 16..1024 pixels, got {size!r}")


def render_clip(identity, motion, frames: int = 25, size: int = 96, seed: int = 0, upsample: int = 2):
    """Render a person performing a dance.

    Args:
        identity: an ``Identity`` or an identity index (made with ``make_identity(seed, index)``).
        motion: a ``Motion`` or a motion index (made with ``make_motion(seed, index)``).
        frames: number of frames T; the whole dance is sampled at T evenly spaced phases.
        size: side of the square frame in pixels.
        seed: world seed, used only for indices given as ``identity`` / ``motion``.
        upsample: supersampling factor of the drawing (2 = drawn at twice the size, then area-downsampled).
    Returns:
        (frames [T, size, size, 3] uint8 RGB, masks [T, size, size] float32 in [0, 1], face_boxes [T, 4]
        float32 (x0, y0, x1, y1) with NaN rows where the face is not visible).
    """
    _check_render_args(frames, size)
    idn, mo = _as_identity(identity, seed), _as_motion(motion, seed)
    return draw_clip(idn, sample_motion(mo, int(frames), int(size)), int(size), upsample)


def render_reference(identity, motion, frames: int = 25, size: int = 96, seed: int = 0, upsample: int = 2,
                     jitter: float = 0.0):
    """A reference photo: the identity standing still and facing the camera, neutral face, in its own background,
    at the mean position and scale of ``motion`` sampled at ``frames`` (so aligning a clip to it is mild), or
    moved and rescaled from there by ``jitter`` (``reference_placement``).

    Args: as for ``render_clip``; jitter: 0 = the motion's mean placement, J > 0 = see ``reference_placement``
        (seeded by ``seed``, the identity and the motion).
    Returns:
        (image [size, size, 3] uint8, mask [size, size] float32, face_box [4] float32).
    """
    _check_render_args(frames, size)
    idn, mo = _as_identity(identity, seed), _as_motion(motion, seed)
    track = rest_track(sample_motion(mo, int(frames), int(size)))
    if jitter:
        track = reference_placement(track, int(size), float(jitter),
                                    np.random.default_rng([int(seed) & 0xFFFFFFFF, 11, idn.idx, mo.idx]))
    img, mask, box = draw_clip(idn, track, int(size), upsample)
    return img[0], mask[0], box[0]


def reference_placement(track: MotionTrack, size: int, jitter: float, rng: np.random.Generator) -> MotionTrack:
    """A reference pose moved away from the driving clip's placement, so the location cue has work to do.

    The pixel scale is multiplied by a factor drawn log-uniformly in [1 - J, 1 + J / 3] and the pelvis shifted by up
    to ±0.4 J of the frame in x and ±J / 6 in y, then pulled back so the figure (about 0.6 body units above the
    pelvis, 0.5 below) stays inside the frame.
    """
    if not 0 <= jitter < 1:
        raise InputError(f"reference jitter must be in [0, 1), got {jitter!r}")
    factor = float(np.exp(rng.uniform(np.log(1 - jitter), np.log(1 + jitter / 3))))
    dx, dy = rng.uniform(-0.4 * jitter, 0.4 * jitter), rng.uniform(-jitter / 6, jitter / 6)
    px = track.px_per_unit * np.float32(factor)
    x = np.clip(track.root_x + np.float32(dx * size), 0.3 * px, size - 0.3 * px)
    y = np.clip(track.root_y + np.float32(dy * size), 0.62 * px, size - 0.52 * px)
    f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
    return MotionTrack(track.angles, f32(x), f32(y), f32(px), track.yaw, track.mouth_open, track.smile,
                       track.eye_open)


def scaled_face(identity: Identity, face_scale: float) -> Identity:
    """The identity with its head (and so its face) ``face_scale`` times larger; 1 returns it unchanged."""
    if face_scale == 1:
        return identity
    from dataclasses import replace

    return replace(identity, head_h=identity.head_h * face_scale, head_w=identity.head_w * face_scale)


def clip_annotations(identity, motion, frames: int = 25, size: int = 96, seed: int = 0) -> dict:
    """Ground truth of a clip that needs no drawing: joints, root path, turn and expressions per frame.

    Args: as for ``render_clip``.
    Returns:
        dict with ``joints`` [T, 18, 2] (order ``JOINTS``), ``root`` [T, 3] (pelvis x, pelvis y, pixels per body
        unit of this identity), ``yaw`` [T], ``mouth_open`` [T], ``smile`` [T], ``eye_open`` [T], ``face_visible``
        [T] bool; float32 arrays in frame pixels.
    """
    _check_render_args(frames, size)
    idn, mo = _as_identity(identity, seed), _as_motion(motion, seed)
    track = sample_motion(mo, int(frames), int(size))
    return {
        "joints": project_joints(idn, track),
        "root": np.stack([track.root_x, track.root_y, track.px_per_unit * np.float32(idn.height)], 1),
        "yaw": track.yaw, "mouth_open": track.mouth_open, "smile": track.smile, "eye_open": track.eye_open,
        "face_visible": face_visible(track.yaw),
    }


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


#: the skeleton videos written beside every video with ``skeletons=True``: suffix -> failure rates (None = clean)
SKELETON_SUFFIXES = (".openpose.mp4", ".openpose_noisy.mp4")


def _write_clip(root: Path, rel: str, idn: Identity, mo: Motion, frames: int, size: int, fps: float, crf: int,
                skeletons: bool = False, seed: int = 0):
    from directanimator.video import write_video

    track = sample_motion(mo, frames, size)
    video, masks, boxes = draw_clip(idn, track, size)
    ann = clip_annotations(idn, mo, frames, size)
    write_video(root / rel, video, fps, crf=crf)
    if skeletons:
        from trainers.synthetic.openpose import NOISY, openpose_video

        for mode, rates in (("openpose", None), ("openpose_noisy", NOISY)):
            write_video(skeleton_video_path(root / rel, mode), openpose_video(idn, track, size, rates, seed, rel)[0],
                        fps, crf=crf)
    _save_npz((root / rel).with_suffix(".npz"), masks=np.round(masks * 255).astype(np.uint8), face_boxes=boxes,
              joints=ann["joints"], joint_names=np.array(JOINTS), root=ann["root"], yaw=ann["yaw"],
              mouth_open=ann["mouth_open"], smile=ann["smile"], eye_open=ann["eye_open"],
              identity=np.array(idn.name), motion=np.array(mo.name))


def _preview(people, dances, ids, mos, frames, size, rows=4, columns=6, seed=0, jitter=0.0) -> np.ndarray:
    """A contact sheet: per row a reference and evenly spaced frames of one train clip."""
    picks = np.linspace(0, frames - 1, columns).round().astype(int)
    out = []
    for r, i in enumerate(ids[:rows]):
        m = mos[r % len(mos)]
        ref = render_reference(people[i], dances[m], frames, size, seed=seed, jitter=jitter)[0]
        video = render_clip(people[i], dances[m], frames, size)[0]
        out.append(np.concatenate([ref] + [video[k] for k in picks], 1))
    return np.concatenate(out, 0)


def _check_dataset_args(identities, motions, frames, size, pseudo_per_clip, test_identities, test_motions, fps, crf,
                        seed=0, motions_per_identity=None):
    if not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    ints = dict(identities=identities, motions=motions, frames=frames, size=size, pseudo_per_clip=pseudo_per_clip,
                test_identities=test_identities, test_motions=test_motions, crf=crf)
    for name, value in ints.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    if size < 32 or size > 512 or size % 16:
        raise InputError(f"size must be a multiple of 16 in 32..512 (the VAE and patching need it), got {size}")
    if not 2 <= frames <= 1000:
        raise InputError(f"frames must be in 2..1000, got {frames}")
    if identities - test_identities < 2:
        raise InputError(f"need at least 2 train identities (identities - test_identities), got "
                         f"{identities} - {test_identities}; raise --identities")
    if motions - test_motions < 1:
        raise InputError(f"need at least 1 train motion (motions - test_motions), got {motions} - {test_motions}; "
                         "raise --motions")
    if motions_per_identity is not None:
        if not isinstance(motions_per_identity, (int, np.integer)) or not 1 <= motions_per_identity <= motions - test_motions:
            raise InputError(f"motions_per_identity must be in 1..{motions - test_motions} (the train motions), "
                             f"got {motions_per_identity!r}")
        if motions_per_identity * (identities - test_identities) < motions - test_motions:
            raise InputError(f"{identities - test_identities} train identities x {motions_per_identity} motions each "
                             f"cannot cover {motions - test_motions} train motions; raise --motions-per-identity or "
                             "lower --motions")
    if (test_identities == 0) != (test_motions == 0):
        raise InputError("a test split needs both held-out identities and held-out motions; set both "
                         "--test-identities and --test-motions above 0, or both to 0")
    if pseudo_per_clip > identities - 1:
        raise InputError(f"pseudo_per_clip must be at most identities - 1 = {identities - 1}, got {pseudo_per_clip}")
    if not isinstance(fps, (int, float)) or not 0 < fps <= 120:
        raise InputError(f"fps must be in (0, 120], got {fps!r}")
    if crf > 51:
        raise InputError(f"crf must be in 0..51, got {crf}")


def _deal_motions(ids: list, mos: list, per_identity: int, seed: int) -> dict:
    """Give each identity ``per_identity`` distinct motions, every motion dealt equally often (±1), in a seeded
    random order, so which identities share a motion varies (a fixed stride would pair the same identities)."""
    rng = np.random.default_rng([seed, 7])
    deck = [mos[t % len(mos)] for t in range(len(ids) * per_identity)]
    for _ in range(1000):
        order = rng.permutation(len(deck))
        hands = [[deck[t] for t in order[k * per_identity:(k + 1) * per_identity]] for k in range(len(ids))]
        if all(len(set(hand)) == per_identity for hand in hands):
            return {i: sorted(hand) for i, hand in zip(ids, hands)}
    # a deck this crowded rarely deals cleanly at random: fall back to a stride that is duplicate-free
    return {i: sorted({mos[(k * per_identity + j) % len(mos)] for j in range(per_identity)}) for k, i in enumerate(ids)}


def generate_dataset(out_dir, identities: int = 12, motions: int = 10, frames: int = 25, size: int = 96,
                     seed: int = 0, pseudo_per_clip: int = 2, test_identities: int = 2, test_motions: int = 2,
                     fps: float = 8.0, crf: int = 10, overwrite: bool = False, progress=None,
                     show_progress: bool = True, motions_per_identity: int | None = None, face_scale: float = 1.0,
                     reference_jitter: float = 0.0, skeletons: bool = False) -> Path:
    """Write the synthetic world as a DirectAnimator dataset folder (atomically: a temp folder, then a rename).

    Args:
        out_dir: the dataset folder to create; must not exist or be empty unless ``overwrite``.
        identities: number of identities; the last ``test_identities`` are held out for the test split.
        motions: number of motions; the last ``test_motions`` are held out for the test split.
        frames: frames per clip (the whole dance is sampled at this many phases).
        size: frame side in pixels (a multiple of 16).
        seed: world seed; the same arguments give the same dataset.
        pseudo_per_clip: pseudo driving videos per clip: the clip's motion performed by other identities
            (first of the same split, then of the other split).
        test_identities, test_motions: held-out identities and motions; test rows pair only these.
        fps: frame rate written in the mp4s.
        crf: x264 quality of the mp4s (low keeps small faces and textures; 0 is lossless).
        overwrite: replace an existing non-empty ``out_dir``.
        progress: optional ``progress(fraction, desc)`` callback.
        show_progress: show a tqdm bar.
        motions_per_identity: ``None`` = every train identity performs every train motion; K = the k-th train
            identity performs train motions k*K .. k*K+K-1 (cyclically), so each train motion is performed by about
            ``train identities * K / train motions`` identities. Test clips always pair every held-out identity
            with every held-out motion.
        face_scale: every head drawn this much larger (1: as before; 1.6 at 128 px: heads about 24 px tall, mouth
            and eye state visible).
        reference_jitter: 0 = each reference photo at its clip's mean placement; J in (0, 1) = moved and rescaled
            from there (``reference_placement``), seeded per clip.
        skeletons: also write an OpenPose-style skeleton video beside every video (``X.openpose.mp4`` clean,
            ``X.openpose_noisy.mp4`` with the pre-registered estimator failures, ``trainers.synthetic.openpose``).
    Returns:
        the dataset folder.
    """
    _check_dataset_args(identities, motions, frames, size, pseudo_per_clip, test_identities, test_motions, fps, crf,
                        seed, motions_per_identity)
    if not isinstance(face_scale, (int, float)) or not 0.5 <= face_scale <= 2.5:
        raise InputError(f"face_scale must be in 0.5..2.5, got {face_scale!r}")
    if not isinstance(reference_jitter, (int, float)) or not 0 <= reference_jitter < 1:
        raise InputError(f"reference_jitter must be in [0, 1), got {reference_jitter!r}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"output {str(out)!r} already exists and is not empty; pass --overwrite or choose another "
                         "folder")
    from tqdm.auto import tqdm

    from trainers.dataset import write_dataset_card, write_metadata

    people = [scaled_face(make_identity(seed, i), face_scale) for i in range(identities)]
    dances = [make_motion(seed, m) for m in range(motions)]
    split_ids = {"train": list(range(identities - test_identities)),
                 "test": list(range(identities - test_identities, identities))}
    split_mos = {"train": list(range(motions - test_motions)), "test": list(range(motions - test_motions, motions))}
    clip_rel = {}
    performed = {i: split_mos[s] for s in split_ids for i in split_ids[s]}
    if motions_per_identity is not None and split_ids["train"]:
        performed.update(_deal_motions(split_ids["train"], split_mos["train"], motions_per_identity, seed))
    for split in ("train", "test"):
        for i in split_ids[split]:
            for m in performed[i]:
                clip_rel[(i, m)] = f"clips/{people[i].name}_{dances[m].name}.mp4"
    # Plan rows and every video to render before drawing anything.
    rows, videos = [], dict((rel, key) for key, rel in clip_rel.items())
    for (i, m), rel in clip_rel.items():
        split = "train" if i in split_ids["train"] else "test"
        other = "test" if split == "train" else "train"
        ring = split_ids[split]
        k = ring.index(i)
        # who else performs this motion as a clip comes first (no extra render), then the ring order
        candidates = ring[k + 1:] + ring[:k] + split_ids[other]
        candidates = sorted(candidates, key=lambda j: (j, m) not in clip_rel)
        pseudo = []
        for j in candidates[:pseudo_per_clip]:
            prel = clip_rel.get((j, m), f"pseudo/{dances[m].name}_{people[j].name}.mp4")
            videos.setdefault(prel, (j, m))
            pseudo.append({"file_name": prel, "identity": people[j].name})
        row = {"file_name": rel, "identity": people[i].name,
               "caption": f"{people[i].describe()} dancing", "reference": f"refs/{Path(rel).stem}.png",
               "split": split}
        if pseudo:
            row["pseudo_driving"] = pseudo
        rows.append(row)
    # an existing world is replaced only with --overwrite (checked above); an empty folder always
    with atomic_folder(out, replaceable=lambda p: overwrite or (p.is_dir() and not any(p.iterdir()))) as tmp:
        total = len(videos) + len(rows)
        bar = tqdm(total=total, desc="synthetic world", unit="file", disable=not show_progress)
        done = 0
        for rel, (i, m) in videos.items():
            _write_clip(tmp, rel, people[i], dances[m], frames, size, fps, crf, skeletons, seed)
            done += 1
            bar.update(1)
            if progress is not None:
                progress(done / total, f"rendering {rel}")
        for row in rows:
            i, m = next(key for key, rel in clip_rel.items() if rel == row["file_name"])
            img, mask, box = render_reference(people[i], dances[m], frames, size, seed=seed, jitter=reference_jitter)
            _write_png(tmp / row["reference"], img)
            _save_npz((tmp / row["reference"]).with_suffix(".npz"), mask=np.round(mask * 255).astype(np.uint8),
                      face_box=box)
            done += 1
            bar.update(1)
            if progress is not None:
                progress(done / total, f"rendering {row['reference']}")
        bar.close()
        write_metadata(tmp, rows)
        _write_png(tmp / "preview.png", _preview(people, dances, split_ids["train"], split_mos["train"], frames, size,
                                                 seed=seed, jitter=reference_jitter))
        world = {
            "generator": "python -m trainers.synthetic", "seed": seed, "frames": frames, "size": size, "fps": fps,
            "crf": crf, "motions_per_identity": motions_per_identity,
            **({"face_scale": face_scale} if face_scale != 1 else {}),
            **({"reference_jitter": reference_jitter} if reference_jitter else {}),
            **({"skeletons": list(SKELETON_SUFFIXES)} if skeletons else {}), "splits": {s: {"identities": [people[i].name for i in split_ids[s]],
                                       "motions": [dances[m].name for m in split_mos[s]]} for s in split_ids},
            "identities": [asdict(p) for p in people],
            "motions": [{"name": d.name, "turn": d.turn} for d in dances],
            "videos": {rel: {"identity": people[i].name, "motion": dances[m].name,
                             "annotations": str(Path(rel).with_suffix(".npz"))} for rel, (i, m) in videos.items()},
        }
        (tmp / "world.json").write_text(json.dumps(world, indent=1), encoding="utf-8")
        n_test = len(split_ids["test"]) * len(split_mos["test"])
        pairing = (f"the first {identities - test_identities} identities with the first {motions - test_motions} "
                   "motions" if motions_per_identity is None else
                   f"each of the first {identities - test_identities} identities with {motions_per_identity} of the "
                   f"first {motions - test_motions} motions")
        mpi = "" if motions_per_identity is None else f" --motions-per-identity {motions_per_identity}"
        mpi += (f" --face-scale {face_scale:g}" if face_scale != 1 else "") + (
            f" --reference-jitter {reference_jitter:g}" if reference_jitter else "") + (
            " --skeletons" if skeletons else "")
        write_dataset_card(
            tmp, pretty_name="DirectAnimator synthetic world",
            description=(
                f"Procedurally drawn people dancing (seed {seed}): {identities} identities x {motions} motions, "
                f"{frames} frames of {size}x{size} px at {fps:g} fps. {len(rows) - n_test} train clips pair "
                f"{pairing}; "
                f"{n_test} test clips pair only the held-out identities with the held-out motions. Made with "
                f"`python -m trainers.synthetic --out DIR --identities {identities} --motions {motions} "
                f"--frames {frames} --size {size} --seed {seed} --pseudo-per-clip {pseudo_per_clip} "
                f"--test-identities {test_identities} --test-motions {test_motions} --fps {fps:g} --crf {crf}{mpi}`."),
            license="cc0-1.0", tags=["synthetic"],
            extra_sections=_CARD_SECTION + "\n" + ANNOTATIONS + "\n",
        )
    return out


_CARD_SECTION = """
## The synthetic world

![reference and frames of a few train clips](preview.png)

People are drawn with OpenCV (anti-aliased polygons at 2x, area-downsampled): a 3D stick skeleton turned by
a yaw angle and projected, body parts painted back to front (so arms pass behind the body and turns show the
back of the head), identity = proportions, skin, hair style and colour, clothes (colours, stripes/checks/dots,
sleeves, pants/shorts/skirt), face (eye spacing and colour, brows, nose, mouth width, glasses) and a backdrop
(gradient, shapes, stripes, room). A motion = joint angles as sums of sinusoids, turns (none, a full spin, or to
the back and round again), a root path (position and scale across the frame) and expressions (mouth opening,
smile, blinks). Every identity performs every motion of its split, and `pseudo_driving` lists the same motion
performed by other identities: exact cross-ID ground truth (the generator renders them itself; no
`trainers.pseudo` run is needed). `world.json` lists each video's identity and motion and the parameters of every
identity. Train clips and their pseudo driving videos use train identities and motions only; test rows use
held-out identities and motions (their extra pseudo drivers may be train identities performing a test motion).

"""


def main(argv=None) -> int:
    """Command line entry point (``python -m trainers.synthetic``)."""
    from trainers.cli_checks import (
        ArgumentParser, check_output_dir, integer, nonnegative_int, number, positive_int, random_seed, writing)

    parser = ArgumentParser(prog="python -m trainers.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="dataset folder to create")
    # the cross-field rules (train identities >= 2, size a multiple of 16, ...) are generate_dataset's
    parser.add_argument("--identities", type=nonnegative_int, default=12, help="number of identities (default 12)")
    parser.add_argument("--motions", type=nonnegative_int, default=10, help="number of motions (default 10)")
    parser.add_argument("--frames", type=integer(2, 1000), default=25, help="frames per clip (default 25)")
    parser.add_argument("--size", type=integer(32, 512), default=96,
                        help="frame side in pixels, a multiple of 16 (default 96)")
    parser.add_argument("--seed", type=random_seed, default=0, help="world seed (default 0)")
    parser.add_argument("--pseudo-per-clip", type=nonnegative_int, default=2,
                        help="pseudo driving videos per clip (default 2)")
    parser.add_argument("--test-identities", type=nonnegative_int, default=2, help="held-out identities (default 2)")
    parser.add_argument("--test-motions", type=nonnegative_int, default=2, help="held-out motions (default 2)")
    parser.add_argument("--fps", type=number(0, 120, low_open=True), default=8.0,
                        help="frame rate of the mp4s (default 8)")
    parser.add_argument("--crf", type=integer(0, 51), default=10, help="x264 quality, 0 = lossless (default 10)")
    parser.add_argument("--motions-per-identity", type=positive_int, default=None,
                        help="each train identity performs only this many train motions (default: all of them); "
                             "with many motions this keeps the clip count while the motions stay too many to learn "
                             "by heart")
    parser.add_argument("--face-scale", type=number(0.5, 2.5), default=1.0,
                        help="draw every head this much larger (default 1; 1.6 at 128 px carries mouth and eyes)")
    parser.add_argument("--reference-jitter", type=number(0, 1, high_open=True), default=0.0,
                        help="move and rescale each reference photo away from its clip's placement, in [0, 1) "
                             "(default 0: at the clip's mean placement)")
    parser.add_argument("--skeletons", action="store_true",
                        help="also write OpenPose-style skeleton videos beside every video (X.openpose.mp4 clean, "
                             "X.openpose_noisy.mp4 with estimator failures)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")

    def work():
        args = parser.parse_args(argv)
        out = Path(args.out)
        check_output_dir(out.parent if args.overwrite else out, "--out")  # --overwrite may replace a file
        # generate_dataset renders into a temp folder beside --out and removes it when anything fails
        with writing(f"the dataset {out}", out.parent):
            return generate_dataset(
                args.out, identities=args.identities, motions=args.motions, frames=args.frames, size=args.size,
                seed=args.seed, pseudo_per_clip=args.pseudo_per_clip, test_identities=args.test_identities,
                test_motions=args.test_motions, fps=args.fps, crf=args.crf, overwrite=args.overwrite,
                motions_per_identity=args.motions_per_identity, face_scale=args.face_scale,
                reference_jitter=args.reference_jitter, skeletons=args.skeletons)

    return run_cli(work, done="wrote {}")


if __name__ == "__main__":
    sys.exit(main())
