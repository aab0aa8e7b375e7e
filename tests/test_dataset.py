import json
import os
import shutil

import av
import numpy as np
import pytest
from PIL import Image

from directanimator.errors import InputError
from trainers.dataset import load_dataset, validate_dataset, write_dataset_card, write_metadata


def _write_clip(path, frames=4, size=32, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())


def _good_dataset(root):
    _write_clip(root / "clips/a.mp4")
    _write_clip(root / "clips/b.mp4", seed=1)
    _write_clip(root / "pseudo/a_id1.mp4", seed=2)
    (root / "refs").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "refs/a.png")
    rows = [
        {"file_name": "clips/a.mp4", "identity": "id0", "caption": "a person", "reference": "refs/a.png",
         "pseudo_driving": [{"file_name": "pseudo/a_id1.mp4", "identity": "id1"}]},
        {"file_name": "clips/b.mp4", "identity": "id1", "split": "test"},
    ]
    write_metadata(root, rows)
    write_dataset_card(root, description="test clips")
    return rows


def test_good_folder_loads(tmp_path):
    _good_dataset(tmp_path)
    ds = load_dataset(tmp_path, require_pseudo=True)
    assert [c.identity for c in ds.clips] == ["id0", "id1"]
    assert ds.split("test")[0].file_name == "clips/b.mp4"
    assert ds.clips[0].reference_path == tmp_path / "refs/a.png"
    assert ds.clips[0].pseudo_driving[0].path == tmp_path / "pseudo/a_id1.mp4"
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "task_categories:" in card and "| 2 | 2 | 1 |" in card


def test_malformed_dataset_lists_every_problem_at_once(tmp_path):
    _write_clip(tmp_path / "clips/ok.mp4")
    (tmp_path / "clips/corrupt.mp4").write_bytes(b"not a video at all")
    lines = [
        json.dumps({"file_name": "clips/ok.mp4", "identity": "id0", "split": "val"}),
        json.dumps({"file_name": "clips/missing.mp4", "identity": "id1"}),
        json.dumps({"file_name": "clips/corrupt.mp4"}),
        "{not json",
        json.dumps({"file_name": "clips/ok.mp4", "identity": "id0", "pseudo_driving": [{"file_name": "p.mp4"}]}),
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        validate_dataset(tmp_path, require_pseudo=True)
    msg = str(info.value)
    for needle in ["'split' must be one of", "missing file 'clips/missing.mp4'", "'clips/corrupt.mp4' cannot be decoded",
                   "required key 'identity' is missing", "line 4: not valid JSON", "repeats line 1",
                   "pseudo_driving[0]: must be an object", "no train clip has 'pseudo_driving'"]:
        assert needle in msg, needle
    assert msg.splitlines()[0].startswith(f"dataset '{tmp_path}' has 8 problem(s)")


def test_missing_metadata_and_bad_source(tmp_path):
    with pytest.raises(InputError, match="no metadata.jsonl"):
        validate_dataset(tmp_path)
    with pytest.raises(InputError, match="neither an existing folder nor a Hub repo id"):
        load_dataset(str(tmp_path / "nope" / "deeper"))


def _build_hf_cache(cache, repo_id, files_from):
    """Write a dataset into the HF cache snapshot layout, as `hf download` leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / ("datasets--" + repo_id.replace("/", "--"))
    snap = repo_dir / "snapshots" / commit
    shutil.copytree(files_from, snap)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snap


def test_hub_repo_id_from_offline_cache(tmp_path, monkeypatch):
    src = tmp_path / "src"
    _good_dataset(src)
    cache = tmp_path / "hub"
    snap = _build_hf_cache(cache, "someone/tiny-dance", src)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = load_dataset("someone/tiny-dance", cache_dir=str(cache))
    assert ds.root == snap and len(ds.clips) == 2
    with pytest.raises(InputError, match="not in the local HF cache"):
        load_dataset("someone/absent", cache_dir=str(cache))
