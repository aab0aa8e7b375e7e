"""Driving cues (paper section 3.1, appendix A.2): the pose, face and location cues of a driving video.

``extract_cues(reference, driving)`` segments the person in every driving frame and in the reference, finds the
face in every driving frame, and builds

- the **pose cue**: grayscale foreground, frequency low-passed (``pose.py``); frames with a bad mask are zero;
- the **face cue**: the face cropped square, enlarged and centred (``face.py``); frames where the segmenter's
  landmarks show the person from behind (``Segmentation.facing`` < ``MIN_FACING``) are not searched for a face,
  since face detectors take the back of a head for one; they get a zero face frame and the no-face flag;
- the **location cue**: body and face masks of the driving frames aligned to the reference person with one
  similarity transform, the body mask softened on a coarse grid (``location.py``).

Everything lives at one working size that follows the reference image's aspect (``video.working_size``); the
driving frames are fitted into it with the ``pad`` policy (scaled to fit, centred, black bars).

``rebuild_cues(cues, ...)`` recomputes the three cues from the stored frames, masks and face boxes with changed
settings or user edits, without segmenting again (the app's live controls use it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from .location import SimilarityTransform

__all__ = ["DrivingCues", "extract_cues", "rebuild_cues", "SimilarityTransform"]

ProgressFn = Callable[[float, str], None]

CUES_FILE = "cues.safetensors"
META_FILE = "cues.json"
AUDIO_FILE = "audio.m4a"  # the driving video's sound over the cue clip, when it has any
FORMAT = "directanimator-cues"
FORMAT_VERSION = 1
DEFAULT_SIZE = 512
DEFAULTS = {"lowpass": 0.5, "face_enlarge": 1.6, "grid": 16}

PATH_SETTINGS = ("reference_path", "driving_path")
"""Settings naming input files. ``save`` writes their file names only, so a cue folder that is shared (the app's cue
zip) does not show where the files were; folders saved before keep the full paths they recorded and load as is."""

_MASKS = ("reference_mask", "driving_masks", "body_location", "face_location")
"""Mask arrays: kept on a 1/255 grid in memory (``quantize_mask``) and stored as uint8, 4x smaller on disk."""

_ARRAYS = {  # name -> in-memory dtype
    "reference": np.uint8,
    "reference_mask": np.float32,
    "driving": np.uint8,
    "driving_masks": np.float32,
    "pose_cue": np.uint8,
    "face_cue": np.uint8,
    "body_location": np.float32,
    "face_location": np.float32,
    "face_boxes": np.float32,
    "dropped": np.bool_,
    "no_face": np.bool_,
}


@dataclass
class DrivingCues:
    """The driving cue triplet of one (reference, driving video) pair, plus what produced it.

    All frames and masks are at the working size ``H x W`` (the reference's aspect).

    Args:
        reference: reference image ``[H, W, 3]`` uint8.
        reference_mask: reference person mask ``[H, W]`` float32 in [0, 1].
        driving: driving frames fitted to the working size ``[T, H, W, 3]`` uint8.
        driving_masks: driving person masks ``[T, H, W]`` float32 (in driving-frame pixels).
        pose_cue: ``[T, H, W]`` uint8 low-passed grayscale foreground; dropped frames are 0.
        face_cue: ``[T, H, W, 3]`` uint8 centred face crops; no-face frames are 0.
        body_location: ``[T, H, W]`` float32 aligned, grid-softened body masks (reference pixels).
        face_location: ``[T, H, W]`` float32 aligned face-box masks (reference pixels).
        face_boxes: ``[T, 4]`` float32 (x0, y0, x1, y1) smoothed face boxes in driving-frame pixels, NaN = none.
        dropped: ``[T]`` bool, frames whose person mask was rejected (empty, low score, sudden area jump).
        no_face: ``[T]`` bool, frames without a face box.
        transform: driving -> reference similarity transform (eqs. 9-11).
        fps: frame rate of the driving frames.
        settings: how the cues were made: ``segmenter``, ``face_detector``, ``lowpass``, ``face_enlarge``,
            ``grid``, ``size``, ``reference_path``, ``driving_path``, ``transform_manual``, ``warnings`` (list of
            strings), ``timings_ms`` (per stage). The two paths are full paths in memory; a saved cue folder records
            their file names only (``PATH_SETTINGS``).
    """

    reference: np.ndarray
    reference_mask: np.ndarray
    driving: np.ndarray
    driving_masks: np.ndarray
    pose_cue: np.ndarray
    face_cue: np.ndarray
    body_location: np.ndarray
    face_location: np.ndarray
    face_boxes: np.ndarray
    dropped: np.ndarray
    no_face: np.ndarray
    transform: SimilarityTransform
    fps: float
    settings: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Number of driving frames ``T``."""
        return int(self.driving.shape[0])

    @property
    def height(self) -> int:
        """Working height ``H``."""
        return int(self.reference.shape[0])

    @property
    def width(self) -> int:
        """Working width ``W``."""
        return int(self.reference.shape[1])

    @property
    def audio_source(self) -> str | None:
        """The file to take the driving audio from: the cue folder's ``audio.m4a`` when loaded from one that has
        it, else the driving video when it is on this machine and has sound; ``None`` for a silent result."""
        for key in ("driving_audio", "driving_path"):
            path = self.settings.get(key)
            if isinstance(path, (str, os.PathLike)) and os.path.isfile(path) and (
                    key == "driving_audio" or self.settings.get("driving_has_audio", True)):
                return os.fspath(path)
        return None

    # ------------------------------------------------------------------------------------------------------------
    # folder I/O

    def save(self, path) -> str:
        """Write the cues to folder ``path`` (created or replaced as a whole; nothing half-written).

        The folder holds ``cues.safetensors`` (every array) and ``cues.json`` (transform, fps, settings). Masks
        are stored with 8-bit precision; cues from ``extract_cues`` / ``rebuild_cues`` already are on that grid,
        so they load back exactly.
        An existing folder is only replaced when it is a cue folder or empty.

        Returns:
            the folder path.
        """
        path = Path(path)
        tmp = _temp_dir_beside(path)
        try:
            self.write_into(tmp)
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(path)

    def write_into(self, folder) -> None:
        """Write ``cues.safetensors`` and ``cues.json`` into an existing folder (no atomicity; see ``save``)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        tensors = {}
        for name, dtype in _ARRAYS.items():
            value = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if name in _MASKS:
                value = np.round(np.clip(value, 0.0, 1.0) * 255.0).astype(np.uint8)
            tensors[name] = value.astype(np.uint8) if dtype is np.bool_ else value
        save_file(tensors, str(folder / CUES_FILE))
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "num_frames": self.num_frames,
            "height": self.height,
            "width": self.width,
            "fps": float(self.fps),
            "transform": self.transform.to_dict(),
            "mask_encoding": "uint8/255",
            "settings": _shareable(self.settings),
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
        for name in (CUES_FILE, META_FILE):
            os.chmod(folder / name, 0o666 & ~_umask())
        if self.audio_source is not None:  # the folder keeps the sound, since it names its inputs by file name only
            from ..video import write_audio

            write_audio(folder / AUDIO_FILE, self.audio_source, self.num_frames / float(self.fps))

    @classmethod
    def load(cls, path) -> "DrivingCues":
        """Read a cue folder written by :meth:`save`.

        Raises:
            InputError: the folder does not exist, is not a cue folder, or is incomplete/corrupt.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.is_dir():
            raise InputError(f"cue folder not found: {path}; make one with `python -m directanimator.cues`")
        meta_path, arrays_path = path / META_FILE, path / CUES_FILE
        if not meta_path.is_file() or not arrays_path.is_file():
            raise InputError(f"{path} is not a cue folder (needs {META_FILE} and {CUES_FILE}); re-extract the cues")
        try:
            meta = json.loads(meta_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{meta_path} is corrupt ({exc}); re-extract the cues") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise InputError(f"{meta_path} is not a DirectAnimator cue file; re-extract the cues")
        if meta.get("version", 0) > FORMAT_VERSION:
            raise InputError(f"{path} was written by a newer DirectAnimator (format {meta.get('version')}); upgrade")
        try:
            arrays = load_file(str(arrays_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{arrays_path} is corrupt ({exc}); re-extract the cues") from None
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise InputError(f"{arrays_path} is incomplete (missing {', '.join(missing)}); re-extract the cues")
        values = {}
        for name, dtype in _ARRAYS.items():
            value = arrays[name]
            if name in _MASKS and value.dtype == np.uint8:
                value = value.astype(np.float32) / np.float32(255.0)  # the same operation as quantize_mask
            values[name] = value.astype(dtype, copy=False)
        try:
            transform = SimilarityTransform(**{k: float(meta["transform"][k]) for k in ("scale", "tx", "ty")})
            settings = dict(meta.get("settings", {}))
            if (path / AUDIO_FILE).is_file():
                settings["driving_audio"] = str(path / AUDIO_FILE)
            cues = cls(**values, transform=transform, fps=float(meta["fps"]), settings=settings)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{meta_path} is incomplete ({exc}); re-extract the cues") from None
        _check_shapes(cues, str(path))
        return cues


def quantize_mask(mask: np.ndarray) -> np.ndarray:
    """Masks on the 1/255 grid as float32 (how cue folders store them, so saving and loading is exact)."""
    return (np.round(np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.float32)
            / np.float32(255.0))


def _shareable(settings: dict) -> dict:
    """``settings`` with the input file paths (``PATH_SETTINGS``) cut to their file names."""
    names = {k: Path(settings[k]).name for k in PATH_SETTINGS if isinstance(settings.get(k), (str, os.PathLike))}
    return {k: v for k, v in {**settings, **names}.items() if k != "driving_audio"}  # a path of this machine


def _json_default(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _check_shapes(cues: DrivingCues, where: str) -> None:
    """Raise InputError when the arrays of ``cues`` do not fit together."""
    num, (height, width) = cues.num_frames, cues.reference.shape[:2]
    expected = {
        "reference": (height, width, 3),
        "reference_mask": (height, width),
        "driving": (num, height, width, 3),
        "driving_masks": (num, height, width),
        "pose_cue": (num, height, width),
        "face_cue": (num, height, width, 3),
        "body_location": (num, height, width),
        "face_location": (num, height, width),
        "face_boxes": (num, 4),
        "dropped": (num,),
        "no_face": (num,),
    }
    for name, shape in expected.items():
        if tuple(getattr(cues, name).shape) != shape:
            raise InputError(f"{where}: {name} has shape {tuple(getattr(cues, name).shape)}, expected {shape}; "
                             "re-extract the cues")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_dir_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=str(path.parent)))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the finished folder should not be
    return tmp


def _is_replaceable(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return not any(path.iterdir()) or (path / META_FILE).is_file()


def replace_dir(tmp, path) -> None:
    """Move the finished folder ``tmp`` to ``path`` in one step, replacing an earlier cue folder there.

    Raises:
        InputError: ``path`` exists and is neither empty nor a cue folder (we never delete user data).
    """
    tmp, path = Path(tmp), Path(path)
    if not _is_replaceable(path):
        raise InputError(f"{path} exists and is not a cue folder; choose another --out folder or remove it")
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=str(path.parent)))
        os.replace(path, old / "old")
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old / "old", path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# extraction


def _report(progress: ProgressFn | None, start: float, end: float):
    """A progress callback mapping a stage's [0, 1] onto [start, end] of the whole run."""
    if progress is None:
        return None

    def sub(fraction, desc=""):
        progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0), desc)

    return sub


def _load_driving(driving, fps, num_frames, max_side):
    from ..video import Video, read_video, resample_video

    if isinstance(driving, (str, os.PathLike)):
        video = read_video(driving, max_side=max_side)
    elif isinstance(driving, Video):
        video = read_video(driving, max_side=max_side)
    else:
        frames = np.asarray(driving)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError(f"driving frames must be [T,H,W,3] uint8, got shape {frames.shape}")
        video = read_video(frames, max_side=max_side)
        if fps is not None and num_frames is None:
            # A bare array has no frame rate of its own: take the given one as its rate rather than resampling.
            video = Video(video.frames, float(fps), video.source, video.has_audio)
            fps = None
    if fps is not None or num_frames is not None:
        if fps is not None and not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if num_frames is not None and int(num_frames) < 1:
            raise InputError(f"num_frames must be at least 1, got {num_frames}")
        video = resample_video(video, fps=fps, num_frames=num_frames)
    return video


def extract_cues(
    reference,
    driving,
    *,
    segmenter="mediapipe",
    face_detector="mediapipe",
    lowpass: float = 0.5,
    face_enlarge: float = 1.6,
    grid: int = 16,
    size: int | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    progress: ProgressFn | None = None,
) -> DrivingCues:
    """Extract the driving cue triplet of ``driving`` aligned to the person in ``reference``.

    Args:
        reference: reference image: path, PIL image or ``[H, W, 3]`` uint8 array.
        driving: driving video: path, ``video.Video`` or ``[T, H, W, 3]`` uint8 array.
        segmenter: person segmenter name (``"mediapipe"`` offline default, ``"grounded-sam"``) or an object with
            ``segment_video`` / ``segment_image``.
        face_detector: face detector name (``"mediapipe"``, ``"insightface"``) or an object with ``detect``.
        lowpass: pose-cue low-pass strength in [0, 1] (0 = off, 1 = strongest).
        face_enlarge: face crop side = ``face_enlarge`` x the face box's longer side.
        grid: location-cue softening grid (cells along the longer side; 0 = hard masks).
        size: working long side in pixels (multiple of 16; default 512).
        fps: resample the driving clip to this frame rate (default: keep).
        num_frames: resample the driving clip to this many frames (default: keep).
        progress: optional ``progress(fraction, desc)`` callback.

    Returns:
        :class:`DrivingCues`.

    Raises:
        InputError: unreadable inputs, no person in the reference, no person in any driving frame, bad settings.
    """
    from ..video import fit_frames, read_image, working_size
    from .faces import FaceTrack, get_face_detector, smooth_boxes
    from .segment import drop_bad_frames, get_segmenter

    _check_settings(lowpass, face_enlarge, grid)
    size = DEFAULT_SIZE if size is None else int(size)
    if size < 32 or size > 2048:
        raise InputError(f"size must be between 32 and 2048 pixels, got {size}")
    timings = {}
    start = time.perf_counter()
    if progress:
        progress(0.0, "reading inputs")
    ref_image = read_image(reference)
    height, width = working_size(ref_image.shape[0], ref_image.shape[1], long_side=size)
    # The reference's own aspect only differs from the working one by the rounding to multiples of 16, so a
    # crop loses a few pixels at most where padding would add black bars.
    ref = fit_frames(ref_image, height, width, policy="crop")
    video = _load_driving(driving, fps, num_frames, max_side=max(1024, 2 * size))
    frames = fit_frames(video.frames, height, width, policy="pad")
    timings["read"] = _ms(start)

    start = time.perf_counter()
    seg_model = get_segmenter(segmenter) if isinstance(segmenter, str) else segmenter
    face_model = get_face_detector(face_detector) if isinstance(face_detector, str) else face_detector
    timings["load_models"] = _ms(start)

    start = time.perf_counter()
    ref_mask = quantize_mask(seg_model.segment_image(ref).masks[0])
    if not (ref_mask > 0.5).any():
        raise InputError("no person found in the reference image; use a photo in which one person is clearly visible")
    timings["segment_reference"] = _ms(start)
    start = time.perf_counter()
    if progress:
        progress(0.05, "segmenting the driving video")
    seg = seg_model.segment_video(frames, progress=_report(progress, 0.05, 0.65))
    masks = quantize_mask(seg.masks)
    dropped = np.asarray(drop_bad_frames(seg), dtype=bool)
    empty = ~(masks > 0.5).reshape(len(masks), -1).any(axis=1)
    dropped |= empty
    timings["segment"] = _ms(start)
    if dropped.all():
        raise InputError("no person found in the driving video; use a clip in which one person is clearly "
                         "visible in most frames")

    start = time.perf_counter()
    if progress:
        progress(0.65, "finding faces")
    # A face detector also "finds" the back of a head; the segmenter's landmarks say when the person is turned
    # away, and those frames are not searched (no face is better than hair in the face cue).
    turned_away = _turned_away(seg, len(frames))
    search = np.flatnonzero(~turned_away)
    boxes = np.full((len(frames), 4), np.nan, np.float32)
    if search.size:
        track = face_model.detect(frames[search], masks=masks[search], progress=_report(progress, 0.65, 0.9))
        found = np.asarray(track.boxes, dtype=np.float32).reshape(-1, 4)
        boxes[search] = found
        scores = np.zeros(len(frames), np.float32)
        scores[search] = np.asarray(track.scores, np.float32).reshape(-1)
        boxes = np.asarray(smooth_boxes(FaceTrack(boxes=boxes, scores=scores)).boxes, dtype=np.float32)
    timings["faces"] = _ms(start)

    warnings = []
    if dropped.any():
        warnings.append(f"{int(dropped.sum())} of {len(dropped)} driving frames have no usable person mask; their "
                        "pose cue is zero")
    if turned_away.any():
        warnings.append(f"{int(turned_away.sum())} of {len(turned_away)} driving frames show the person from behind; "
                        "their face cue is empty")
    if not np.isfinite(boxes).all(axis=1).any():
        warnings.append("no face found in the driving video; the face cue is empty (expressions will not be "
                        "transferred)")
    settings = {
        "segmenter": getattr(seg_model, "name", str(segmenter)),
        "face_detector": getattr(face_model, "name", str(face_detector)),
        "lowpass": float(lowpass),
        "face_enlarge": float(face_enlarge),
        "grid": int(grid),
        "size": size,
        "reference_path": str(reference) if isinstance(reference, (str, os.PathLike)) else None,
        "driving_path": video.source,
        "driving_has_audio": bool(video.has_audio),
        "transform_manual": False,
        "warnings": warnings,
        "timings_ms": timings,
    }
    if progress:
        progress(0.9, "building the cues")
    cues = _build(ref, ref_mask, frames, masks, boxes, dropped, video.fps, settings, transform=None)
    if progress:
        progress(1.0, "done")
    return cues


MIN_FACING = 0.2
"""Frames whose segmentation ``facing`` is below this are treated as seen from behind (no face searched).
0.5 is a profile; the walk example's back views are below 0.01, frontal people above 0.99."""


def _turned_away(seg, num: int) -> np.ndarray:
    """bool ``[T]``: frames where the segmenter says the person is turned away from the camera.

    Unknown facing (NaN, or a segmenter that does not report it, like Grounded SAM) never rejects a frame.
    """
    facing = getattr(seg, "facing", None)
    if facing is None:
        return np.zeros(num, dtype=bool)
    facing = np.asarray(facing, dtype=np.float32).reshape(-1)
    if facing.shape != (num,):
        return np.zeros(num, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(facing, nan=1.0) < MIN_FACING


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


def _check_settings(lowpass, face_enlarge, grid) -> None:
    if not 0.0 <= float(lowpass) <= 1.0:
        raise InputError(f"low-pass strength must be between 0 and 1, got {lowpass}")
    if not 1.0 <= float(face_enlarge) <= 4.0:
        raise InputError(f"face enlarge factor must be between 1 and 4, got {face_enlarge}")
    if int(grid) != grid or not 0 <= int(grid) <= 256:
        raise InputError(f"grid must be a whole number between 0 (off) and 256, got {grid}")


def _fill_from_nearest(masks: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Masks where frames not in ``keep`` take the nearest kept frame's mask (ties: the earlier one)."""
    kept = np.flatnonzero(keep)
    if kept.size == len(masks) or kept.size == 0:
        return masks
    nearest = kept[np.abs(np.arange(len(masks))[:, None] - kept[None, :]).argmin(axis=1)]
    return masks[nearest]


@contextlib.contextmanager
def _torch_threads(threads: int):
    """Run with ``threads`` torch intra-op threads, then restore the caller's setting.

    The pose cue's FFTs are ~3 ms/frame on one thread; with two OpenMP threads on a CPU that other processes keep
    busy they took 14-29 ms/frame (the threads wait for each other), and ~2 ms on an idle one: one thread is the
    robust choice. Results do not depend on the thread count (the FFTs are split over independent rows).
    """
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build(ref, ref_mask, frames, masks, boxes, dropped, fps, settings, transform) -> DrivingCues:
    """Compute the three cues from frames, masks and boxes (shared by extract_cues and rebuild_cues)."""
    from .face_cue import face_cue
    from .location import align_and_soften, box_masks, estimate_alignment, transform_boxes
    from .pose import pose_cue

    height, width = ref.shape[:2]
    timings = settings.setdefault("timings_ms", {})
    start = time.perf_counter()
    with _torch_threads(1):
        pose = pose_cue(frames, masks, strength=settings["lowpass"], dropped=dropped)
    timings["pose"] = _ms(start)

    start = time.perf_counter()
    face, no_face = face_cue(frames, boxes, enlarge=settings["face_enlarge"], out_hw=(height, width))
    timings["face"] = _ms(start)

    start = time.perf_counter()
    if transform is None:
        transform = estimate_alignment(ref_mask, masks, valid=~dropped)
    # A dropped frame's mask is what made it fail; its location comes from the nearest kept frame instead.
    body = align_and_soften(_fill_from_nearest(masks, ~dropped), transform, (height, width), settings["grid"])
    face_loc = box_masks(transform_boxes(boxes, transform), (height, width))
    timings["location"] = _ms(start)
    return DrivingCues(
        reference=ref, reference_mask=ref_mask, driving=frames, driving_masks=masks, pose_cue=pose,
        face_cue=face, body_location=quantize_mask(body), face_location=quantize_mask(face_loc), face_boxes=boxes, dropped=dropped,
        no_face=no_face, transform=transform, fps=float(fps), settings=settings,
    )


def rebuild_cues(
    cues: DrivingCues,
    *,
    lowpass: float | None = None,
    face_enlarge: float | None = None,
    grid: int | None = None,
    scale: float | None = None,
    offset: tuple[float, float] | None = None,
    transform: SimilarityTransform | str | None = None,
    reference_mask: np.ndarray | None = None,
    driving_masks: np.ndarray | None = None,
    face_boxes=None,
    dropped: np.ndarray | None = None,
) -> DrivingCues:
    """Recompute the pose, face and location cues with changed settings or edits, without segmenting again.

    Args:
        cues: the cues to start from (not modified).
        lowpass: new low-pass strength in [0, 1].
        face_enlarge: new face crop enlarge factor.
        grid: new softening grid (0 = hard masks).
        scale: override the alignment scale; unless ``offset`` is given too, the translation is recomputed
            (eq. 10) so that the person stays centred on the reference person.
        offset: override the alignment translation ``(tx, ty)`` in reference pixels.
        transform: a full :class:`SimilarityTransform` to use, or ``"auto"`` to re-estimate it from the masks
            (dropping an earlier manual override). By default a manual transform is kept and an estimated one is
            re-estimated (the same unless masks changed).
        reference_mask: an edited reference mask ``[H, W]``.
        driving_masks: edited driving masks ``[T, H, W]``.
        face_boxes: edited face boxes: a full ``[T, 4]`` array, or ``{frame_index: (x0, y0, x1, y1) or None}``
            for some frames (None removes the face of that frame). Edited boxes are used as given.
        dropped: edited ``[T]`` bool dropped flags (e.g. to drop or restore frames by hand).

    Returns:
        a new :class:`DrivingCues`.

    Raises:
        InputError: bad settings or edits of the wrong shape, or no usable person mask left.
    """
    from .location import estimate_alignment

    # Segmentation and face timings stay those of the original extraction; pose/face/location are re-timed.
    settings = json.loads(json.dumps(cues.settings, default=_json_default))
    for name, value in (("lowpass", lowpass), ("face_enlarge", face_enlarge), ("grid", grid)):
        if value is not None:
            settings[name] = value
        settings.setdefault(name, DEFAULTS[name])  # cues built by hand may not record every setting
    _check_settings(settings["lowpass"], settings["face_enlarge"], settings["grid"])
    settings["lowpass"], settings["face_enlarge"] = float(settings["lowpass"]), float(settings["face_enlarge"])
    settings["grid"] = int(settings["grid"])
    num, height, width = cues.num_frames, cues.height, cues.width

    ref_mask = cues.reference_mask
    if reference_mask is not None:
        ref_mask = _as_mask(reference_mask, (height, width), "reference mask")
    masks = cues.driving_masks
    if driving_masks is not None:
        masks = _as_mask(driving_masks, (num, height, width), "driving masks")
    boxes = cues.face_boxes.copy()
    if isinstance(face_boxes, dict):
        for index, box in face_boxes.items():
            if not 0 <= int(index) < num:
                raise InputError(f"face box frame {index} is out of range (0..{num - 1})")
            boxes[int(index)] = np.nan if box is None else _as_box(box)
    elif face_boxes is not None:
        boxes = np.asarray(face_boxes, dtype=np.float32)
        if boxes.shape != (num, 4):
            raise InputError(f"face boxes must have shape ({num}, 4), got {boxes.shape}")
    flags = cues.dropped.copy() if dropped is None else np.asarray(dropped, dtype=bool)
    if flags.shape != (num,):
        raise InputError(f"dropped flags must have shape ({num},), got {flags.shape}")
    if driving_masks is not None:
        flags = flags | ~(masks > 0.5).reshape(num, -1).any(axis=1)
    if flags.all():
        raise InputError("every driving frame is dropped; keep at least one frame with a person mask")

    start = time.perf_counter()
    if isinstance(transform, SimilarityTransform):
        new_transform, manual = transform, True
    elif transform == "auto":
        new_transform, manual = None, False
    elif transform is None:
        manual = bool(settings.get("transform_manual"))
        new_transform = cues.transform if manual else None
    else:
        raise InputError(f"transform must be a SimilarityTransform or 'auto', got {transform!r}")
    if scale is not None or offset is not None:
        if scale is not None and not float(scale) > 0:
            raise InputError(f"alignment scale must be positive, got {scale}")
        base = new_transform or estimate_alignment(ref_mask, masks, valid=~flags)
        s = float(scale) if scale is not None else base.scale
        if offset is not None:
            tx, ty = (float(v) for v in offset)
        elif scale is not None:
            centred = estimate_alignment(ref_mask, masks, valid=~flags, scale=s)
            tx, ty = centred.tx, centred.ty
        else:
            tx, ty = base.tx, base.ty
        new_transform, manual = SimilarityTransform(s, tx, ty), True
    elif new_transform is None:
        new_transform = estimate_alignment(ref_mask, masks, valid=~flags)
    settings["transform_manual"] = manual
    align_ms = _ms(start)

    warnings = [w for w in settings.get("warnings", []) if "driving frames have no usable" not in w]
    if flags.any():
        warnings.insert(0, f"{int(flags.sum())} of {num} driving frames have no usable person mask; their pose "
                           "cue is zero")
    settings["warnings"] = warnings
    rebuilt = _build(cues.reference, ref_mask, cues.driving, masks, boxes, flags, cues.fps, settings, new_transform)
    rebuilt.settings["timings_ms"]["location"] = rebuilt.settings["timings_ms"]["location"] + align_ms
    return rebuilt


def _as_mask(value, shape, what) -> np.ndarray:
    mask = np.asarray(value, dtype=np.float32)
    if mask.shape != shape:
        raise InputError(f"{what} must have shape {shape}, got {mask.shape}")
    if mask.size and (np.nanmax(mask) > 1.0 + 1e-6 or np.nanmin(mask) < 0.0):
        # Accept 0/255 paint masks from image editors.
        mask = mask / 255.0 if np.nanmax(mask) <= 255.0 and np.nanmin(mask) >= 0.0 else mask
    return quantize_mask(np.nan_to_num(mask))


def _as_box(box) -> np.ndarray:
    box = np.asarray(box, dtype=np.float32).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise InputError(f"a face box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box.tolist()}")
    return box
