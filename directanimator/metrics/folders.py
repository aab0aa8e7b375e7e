"""Pairing an evaluation's folders by file name: generated videos with their ground truth, driving videos and
reference images.

A folder holds videos at its top (one dataset, named after the folder) and/or in subfolders, one dataset each
(``tiktok/335.mp4``, ``unseen/clip07.mp4``), as the paper reports TikTok and Unseen apart. Files pair by their
path inside the folder without the extension, so ``generated/tiktok/335.mp4`` goes with
``ground_truth/tiktok/335.mov`` and ``references/tiktok/335.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..files import is_temporary
from ..video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, probe_video

__all__ = ["VideoPair", "list_media", "pair_folders"]


@dataclass
class VideoPair:
    """The files of one generated video; ``name`` is its path inside the folder without extension."""

    name: str
    dataset: str
    generated: Path
    ground_truth: Path | None = None
    driving: Path | None = None
    reference: Path | None = None
    problems: list[str] = field(default_factory=list)


def _short(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def list_media(folder: str | Path, extensions: tuple[str, ...], what: str) -> dict[str, Path]:
    """``{name: path}`` of the files with ``extensions`` at the top of ``folder`` and one level down."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{what} folder {folder} does not exist or is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(list(root.glob("*")) + list(root.glob("*/*"))):
        rel = path.relative_to(root)
        if (not path.is_file() or path.suffix.lower() not in extensions or is_temporary(path)
                or any(part.startswith(".") for part in rel.parts)):
            continue
        name = rel.with_suffix("").as_posix()
        if name in found:
            raise InputError(f"{what} folder has two files for {name!r} ({found[name].name}, {path.name}); keep one")
        found[name] = path
    return found


def pair_folders(generated, ground_truth=None, driving=None, references=None, trim: bool = False) -> list[VideoPair]:
    """Pair the folders' files by name and check each pair's frame count and size from the file headers.

    Raises:
        InputError: no generated videos; generated videos with no ground truth / driving video / reference in the
            folders given (listed); pairs whose frame counts or sizes differ (listed, per pair; frame counts may
            differ with ``trim``, which then uses the first frames of each).
    """
    gen = list_media(generated, VIDEO_EXTENSIONS, "--generated")
    if not gen:
        raise InputError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in {generated} or its subfolders")
    top = Path(generated).resolve().name or "generated"
    pairs = [VideoPair(name, name.split("/")[0] if "/" in name else top, path) for name, path in gen.items()]
    for flag, folder, exts, attr in (("--ground-truth", ground_truth, VIDEO_EXTENSIONS, "ground_truth"),
                                     ("--driving", driving, VIDEO_EXTENSIONS, "driving"),
                                     ("--references", references, IMAGE_EXTENSIONS, "reference")):
        if folder is None:
            continue
        files = list_media(folder, exts, flag)
        unmatched = [p.name for p in pairs if p.name not in files]
        if unmatched:
            raise InputError(f"{len(unmatched)} generated video(s) have no file of the same name in {flag} {folder}: "
                             f"{_short(unmatched)}; name the files alike (extensions may differ)")
        for p in pairs:
            setattr(p, attr, files[p.name])
    bad = []
    for p in pairs:
        info = probe_video(str(p.generated))
        for attr, label in (("ground_truth", "ground truth"), ("driving", "driving")):
            other = getattr(p, attr)
            if other is None:
                continue
            o = probe_video(str(other))
            if attr == "ground_truth" and (o.width, o.height) != (info.width, info.height):
                p.problems.append(f"generated is {info.width}x{info.height}, ground truth {o.width}x{o.height}")
            if not trim and info.num_frames and o.num_frames and o.num_frames != info.num_frames:
                p.problems.append(f"generated has {info.num_frames} frames, {label} {o.num_frames}")
        if p.problems:
            bad.append(f"{p.name} ({'; '.join(p.problems)})")
    if bad:
        raise InputError(f"{len(bad)} pair(s) do not match: {_short(bad, 5)}; resize the videos to one size, and "
                         "trim them to the same frames or pass --trim to use the first frames of each")
    return pairs
