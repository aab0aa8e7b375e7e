"""The source files of a raw footage folder and who is in them.

Every file under ``RAW_DIR`` (hidden files and folders aside) is either a source video (a video file extension
that FFmpeg reads) or a skipped file, listed with the reason. Identities come from the folder layout by default
(``RAW_DIR/<identity>/.../*.mp4``; a video directly in ``RAW_DIR`` is an identity of its own, named after the
file) or from a CSV file with the columns ``file`` (relative to ``RAW_DIR``) and ``identity``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from directanimator.errors import InputError

__all__ = ["SOURCE_SUFFIXES", "Source", "find_sources", "identities_from_csv"]

SOURCE_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif", ".mpg", ".mpeg", ".ts", ".m2ts",
                   ".mts", ".flv", ".wmv", ".3gp", ".ogv")
"""File extensions taken as source videos (anything else in the folder is listed as skipped)."""


@dataclass(frozen=True)
class Source:
    """One source video.

    Args:
        rel: its path relative to ``RAW_DIR`` (POSIX separators): the stable name used in every report.
        path: its absolute path.
        identity: who is in it.
        key: a file-name-safe unique name derived from ``rel`` (clip, reference and report names start with it).
    """

    rel: str
    path: Path
    identity: str
    key: str


def source_key(rel: str) -> str:
    """A file-name-safe, unique name for a relative path: its characters outside ``[A-Za-z0-9._-]`` replaced,
    its folders joined by ``__``, and 8 hex digits of its hash (two paths never share a key)."""
    stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__")).strip("._") or "video"
    return f"{safe[:80]}-{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:8]}"


def _walk(root: Path) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(folder) / n for n in sorted(names) if not n.startswith(".")]
    return files


def identities_from_csv(path: str | os.PathLike) -> dict[str, str]:
    """``{relative file: identity}`` from a CSV file with a header naming the columns ``file`` and ``identity``.

    Raises:
        InputError: a missing or unreadable file, missing columns, an empty identity, a file listed twice.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            columns = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--identities {path} cannot be read ({exc}); give a UTF-8 CSV file with the columns "
                         "file,identity") from None
    if not rows or "file" not in columns or "identity" not in columns:
        raise InputError(f"--identities {path} needs a header line with the columns file,identity and one line "
                         "per video (file relative to RAW_DIR)")
    out = {}
    for n, row in enumerate(rows, start=2):
        rel = Path((row.get("file") or "").strip()).as_posix()
        identity = (row.get("identity") or "").strip()
        if not rel or rel == "." or not identity:
            raise InputError(f"--identities {path} line {n}: both file and identity must be given")
        if rel in out:
            raise InputError(f"--identities {path} line {n}: {rel} is listed twice")
        out[rel] = identity
    return out


def find_sources(raw_dir: Path, identities: dict[str, str] | None = None) -> tuple[list[Source], list[dict]]:
    """The source videos of ``raw_dir`` (sorted by relative path) and the skipped files (``{"file", "reason"}``).

    Args:
        raw_dir: the raw footage folder.
        identities: ``{relative file: identity}`` (from :func:`identities_from_csv`), or None for the folder layout.

    Raises:
        InputError: no video file at all, or videos that the identities CSV does not list.
    """
    sources, skipped, unlisted = [], [], []
    for path in _walk(raw_dir):
        rel = path.relative_to(raw_dir).as_posix()
        if path.suffix.lower() not in SOURCE_SUFFIXES:
            skipped.append({"file": rel, "reason": f"not a video file ({path.suffix or 'no extension'})"})
            continue
        if identities is not None:
            identity = identities.get(rel)
            if identity is None:
                unlisted.append(rel)
                continue
        else:
            parts = rel.split("/")
            identity = parts[0] if len(parts) > 1 else path.stem
        sources.append(Source(rel, path, identity, source_key(rel)))
    if unlisted:
        more = f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else ""
        raise InputError(f"{len(unlisted)} video(s) of {raw_dir} are not in the --identities CSV "
                         f"({', '.join(unlisted[:3])}{more}); add a line for each, or move them out of the folder")
    if not sources:
        found = f" (it holds {len(skipped)} other file(s), e.g. {skipped[0]['file']})" if skipped else " (it is empty)"
        raise InputError(f"{raw_dir} has no video file{found}; put the raw videos there, one sub-folder per "
                         f"identity (RAW_DIR/<identity>/*.mp4); video extensions: {', '.join(SOURCE_SUFFIXES)}")
    return sources, skipped
