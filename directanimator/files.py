"""Atomic writes: a file or folder appears whole at its final path, or not at all.

Everything the project writes for a user (cue folders, videos, zips, datasets, caches, checkpoints, reports) is
built under a hidden temporary name beside its target (the same filesystem, so the final ``os.replace`` is one
atomic step) and moved into place only when complete. A failure or a kill leaves the earlier file or folder as it
was, plus at most a hidden ``.NAME.*.tmp`` leftover that the next write does not trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_folder", "atomic_path", "atomic_write_json", "atomic_write_text", "is_temporary", "temp_path_beside"]

_TMP_MARK = ".tmp"


def temp_path_beside(path: str | os.PathLike, suffix: str = "") -> Path:
    """A unique hidden name next to ``path`` (nothing is created; its parent folder is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TMP_MARK}{suffix}"


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a leftover of an unfinished atomic write (made by :func:`temp_path_beside`)."""
    name = Path(path).name
    return name.startswith(".") and _TMP_MARK in name


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file (or folder) to; when the block ends without error it
    replaces ``path`` in one step, otherwise it is removed.

    ``suffix`` keeps an extension that a writer needs (FFmpeg picks the container from ``.mp4``). Files get the
    writer's usual permissions (umask), unlike ``mkstemp``'s private 0600.
    """
    tmp = temp_path_beside(path, suffix)
    try:
        yield tmp
        if tmp.is_file():  # on disk before the rename: a crash never leaves a renamed, empty file
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike, value, **dumps) -> Path:
    """Write ``value`` as JSON (``indent=2`` unless told otherwise) to ``path`` atomically; returns ``path``."""
    dumps.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(value, **dumps) + "\n")


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike,
                  replaceable: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to fill; when the block ends without error it becomes ``path``.

    An existing ``path`` is replaced only when ``replaceable(path)`` says so (default: never a non-empty folder
    or a file; the caller raises its own error first where it can say more): it is moved aside, the new folder
    moved in, and the old one deleted; if the swap fails the old one is put back. On error the new folder is
    removed and ``path`` is untouched.

    Raises:
        FileExistsError: ``path`` exists and may not be replaced.
    """
    path = Path(path)
    tmp = temp_path_beside(path)
    tmp.mkdir()
    try:
        yield tmp
        _check_replaceable(path, replaceable)
        old = None
        if path.exists():
            old = temp_path_beside(path, ".old")
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
        if old is not None:
            _remove(old)
    finally:
        _remove(tmp)


def _check_replaceable(path: Path, replaceable: Callable[[Path], bool] | None) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    allowed = replaceable(path) if replaceable is not None else path.is_dir() and not any(path.iterdir())
    if not allowed:
        raise FileExistsError(f"{path} exists and is not replaced")
