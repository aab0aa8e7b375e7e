"""scripts/check_behaviour.py stays runnable: record + compare of its cue part on 3 frames, and a changed output is
reported (the full check, with the pipeline and training runs, is run by hand around refactors)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_behaviour.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_record_then_compare_cues(tmp_path):
    from safetensors.numpy import load_file, save_file

    rec = _run("record", str(tmp_path), "--only", "cues", "--frames", "3")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert "recorded cues/synthetic_rebuilt" in rec.stdout
    same = _run("compare", str(tmp_path))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "cues/synthetic_default pose_cue: identical" in same.stdout
    assert "SUMMARY: all" in same.stdout and "DIFFERS" not in same.stdout

    # a recorded output that no longer matches: one pixel of one pose cue
    path = tmp_path / "cues__synthetic_default.safetensors"
    arrays = load_file(str(path))
    arrays["pose_cue"] = arrays["pose_cue"].copy()
    value = int(arrays["pose_cue"].flat[0])
    arrays["pose_cue"].flat[0] = value + 7 if value < 200 else value - 7
    save_file(arrays, str(path))
    changed = _run("compare", str(tmp_path))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "cues/synthetic_default pose_cue: DIFFERS: max abs diff 7, 1 of" in changed.stdout
    assert "SUMMARY: 1 of" in changed.stdout
