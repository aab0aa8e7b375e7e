"""Atomic writes (directanimator.files): a target appears whole or not at all, and failures leave what was there."""

import os
import stat

import pytest

from directanimator.files import atomic_folder, atomic_path, atomic_write_json, atomic_write_text, is_temporary


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if is_temporary(p)]


def test_text_and_json_land_whole_with_umask_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert path.read_text() == "hello"
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    assert (tmp_path / "b.json").read_text() == '{\n  "x": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, suffix=".mp4") as tmp:
            assert tmp.name.endswith(".mp4") and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_folder_replaces_only_what_it_may_and_restores_on_error(tmp_path):
    target = tmp_path / "cues"
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"

    with pytest.raises(FileExistsError):  # a non-empty folder is not replaced by default
        with atomic_folder(target) as tmp:
            (tmp / "a").write_text("2")
    assert (target / "a").read_text() == "1"

    with atomic_folder(target, replaceable=lambda p: (p / "a").is_file()) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(os.listdir(target)) == ["b"]

    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target, replaceable=lambda p: True) as tmp:
            (tmp / "c").write_text("4")
            raise KeyboardInterrupt
    assert sorted(os.listdir(target)) == ["b"]
    assert _leftovers(tmp_path) == []
