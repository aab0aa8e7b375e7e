"""``DrivingCues``: the driving cue triplet of one (reference, driving video) pair, and its folder format.

A cue folder (format version 2) holds ``frames/`` (every per-frame array as chunked video streams, decoded lazily
on load: ``storage.py``), ``cues.safetensors`` (the reference image and mask, face boxes and the per-frame flags),
``cues.json`` (alignment transform, fps, settings with the inputs by file name, warnings, timings, how each array is
stored and what its storage lost) and, when the driving video has sound, ``audio.m4a`` (its audio over the clip). It
is written whole or not at all (``directanimator.files``). Folders of version 1 (every array raw in
``cues.safetensors``, about 2.5 MB per frame at 512 px against ~0.1 MB now) still load.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ..errors import InputError
from ..files import atomic_folder
from ..video import write_audio
from .location import SimilarityTransform
from .settings import CueSettings
from .storage import FrameArray, FrameWriter, iter_chunks

__all__ = ["AUDIO_FILE", "CUES_FILE", "META_FILE", "DrivingCues", "is_cue_folder", "quantize_mask"]

CUES_FILE = "cues.safetensors"
META_FILE = "cues.json"
AUDIO_FILE = "audio.m4a"  # the driving video's sound over the cue clip, when it has any
FORMAT = "directanimator-cues"
FORMAT_VERSION = 2

PATH_SETTINGS = ("reference_path", "driving_path")
"""Settings naming input files. ``save`` writes their file names only, so a cue folder that is shared (the app's cue
zip) does not show where the files were; folders saved before keep the full paths they recorded and load as is."""

_MASKS = ("reference_mask", "driving_masks", "body_location", "face_location")
"""Mask arrays: kept on a 1/255 grid in memory (``quantize_mask``) and stored as uint8, 4x smaller on disk."""

_PER_FRAME = {  # stored as chunked video streams (storage.py): name -> channels
    "driving": 3,
    "driving_masks": 1,
    "pose_cue": 1,
    "face_cue": 3,
    "body_location": 1,
    "face_location": 1,
}

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

    All frames and masks are at the working size ``H x W`` (the reference's aspect). Loaded from a cue folder, the
    per-frame arrays (``driving`` to ``face_location``) are lazily decoded
    :class:`~directanimator.cues.storage.FrameArray` objects (index them, or ``frames(start, stop)``, to read a
    window; ``np.asarray`` reads all).

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
            ``grid``, ``size``, ``reference_path``, ``driving_path``, ``transform_manual``; ``shots`` (the driving
            clip's shots and the one used, ``directanimator.shots.ShotChoice.to_dict``); ``person`` /
            ``reference_person`` (who drives and who is animated, ``directanimator.cues.people``); ``alignment``
            (the setting, absent = ``"paper"``), ``alignment_used`` / ``alignment_reason`` (``"paper"``,
            ``"face"`` or ``"top"`` and why, ``directanimator.cues.framing``), ``reference_face_box``
            (``[x0, y0, x1, y1]`` or None); ``warnings`` (list of strings), ``timings_ms`` (per stage). Keys added
            later are absent in older folders. The two paths are full paths in memory; a saved cue folder records
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
    def cue_settings(self) -> CueSettings:
        """The :class:`CueSettings` these cues were made with (the defaults for what ``settings`` does not say)."""
        return CueSettings.from_dict(self.settings)

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

    def save(self, path, lossless: bool = False) -> str:
        """Write the cues to folder ``path`` (created or replaced as a whole; nothing half-written).

        Per-frame arrays go to compact chunked video streams (``storage.py``): masks and the pose cue losslessly,
        the driving frames and face cue near-losslessly (max abs error 2, or exactly with ``lossless``); masks are
        stored with 8-bit precision, and cues from ``extract_cues`` / ``rebuild_cues`` already are on that grid,
        so they load back exactly. ``cues.json`` records each array's codec, size and measured error.
        An existing folder is only replaced when it is a cue folder or empty.

        Returns:
            the folder path.
        """
        path = Path(path)
        if not is_cue_folder(path, empty_ok=True):
            raise InputError(f"{path} exists and is not a cue folder; choose another folder or remove it")
        with atomic_folder(path, replaceable=lambda p: is_cue_folder(p, empty_ok=True)) as tmp:
            self.write_into(tmp, lossless=lossless)
        return str(path)

    def write_into(self, folder, lossless: bool = False) -> None:
        """Write the folder's files (``frames/``, ``cues.safetensors``, ``cues.json``) into an existing folder (no
        atomicity; see ``save``). Lazily loaded arrays are copied a chunk at a time."""
        folder = Path(folder)
        storage = {}
        for name, channels in _PER_FRAME.items():
            writer = FrameWriter(folder, name, _ARRAYS[name], channels, lossless=lossless)
            for _, block in iter_chunks(getattr(self, name)):
                writer.append(block)
            storage[name] = writer.close()
        write_small(folder, self, storage)
        if self.audio_source is not None:  # the folder keeps the sound, since it names its inputs by file name only
            write_audio(folder / AUDIO_FILE, self.audio_source, self.num_frames / float(self.fps))

    @classmethod
    def load(cls, path, cache: int = 2) -> "DrivingCues":
        """Read a cue folder written by :meth:`save` (or a version-1 folder, every array raw).

        The per-frame arrays of a version-2 folder are :class:`~directanimator.cues.storage.FrameArray` objects:
        indexing or ``frames(start, stop)`` decodes only the chunks it touches (``cache`` chunks are kept per
        array), ``np.asarray`` all of it.

        Raises:
            InputError: the folder does not exist, is not a cue folder, or is incomplete/corrupt.
        """
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
        streams = meta.get("storage", {}).get("arrays", {}) if meta.get("version", 1) >= 2 else {}
        if not isinstance(streams, dict):
            raise InputError(f"{meta_path} is corrupt (storage); re-extract the cues")
        missing = [name for name in _ARRAYS if name not in arrays and name not in streams]
        if missing:
            raise InputError(f"{path} is incomplete (missing {', '.join(missing)}); re-extract the cues")
        values = {}
        for name, dtype in _ARRAYS.items():
            if name not in arrays:
                try:
                    values[name] = FrameArray(path, name, streams[name], cache=cache)
                except (KeyError, TypeError, ValueError) as exc:
                    raise InputError(f"{meta_path} is incomplete (storage of {name}: {exc}); re-extract the cues") \
                        from None
                continue
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


def write_small(folder, cues, storage: dict) -> None:
    """Write ``cues.safetensors`` (the arrays that are not per-frame video streams) and ``cues.json`` of ``cues``
    into ``folder``, whose ``frames/`` ``storage`` describes (``FrameWriter.close`` records by name). ``cues``
    needs the attributes of :class:`DrivingCues` but its per-frame video arrays are not read (the streaming
    extraction writes those itself)."""
    folder = Path(folder)
    tensors = {}
    for name, dtype in _ARRAYS.items():
        if name in _PER_FRAME:
            continue
        value = np.ascontiguousarray(getattr(cues, name), dtype=dtype)
        if name in _MASKS:
            value = np.round(np.clip(value, 0.0, 1.0) * 255.0).astype(np.uint8)
        tensors[name] = value.astype(np.uint8) if dtype is np.bool_ else value
    save_file(tensors, str(folder / CUES_FILE))
    num = int(len(cues.dropped))
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "num_frames": num,
        "height": int(cues.reference.shape[0]),
        "width": int(cues.reference.shape[1]),
        "fps": float(cues.fps),
        "transform": cues.transform.to_dict(),
        "mask_encoding": "uint8/255",
        "storage": {"arrays": storage,
                    "bytes_per_frame": round(sum(r["bytes"] for r in storage.values()) / max(num, 1), 1)},
        "settings": _shareable(cues.settings),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))


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


def is_cue_folder(path, empty_ok: bool = False) -> bool:
    """Whether ``path`` is a cue folder (has ``cues.json``), or does not exist / is an empty folder when ``empty_ok``
    (the folders :meth:`DrivingCues.save` may replace: it never deletes anything else)."""
    path = Path(path)
    if not path.exists():
        return empty_ok
    if not path.is_dir():
        return False
    return (path / META_FILE).is_file() or (empty_ok and not any(path.iterdir()))
