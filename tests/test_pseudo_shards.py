"""``trainers.pseudo`` on several processes: two processes launched with ``accelerate launch`` (CPU) write one shard
each and the last one merges; the result equals one process's for the same seeds; a run cut short on one process
count is finished on another, generating only the candidates that are missing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_trainers import _save_tiny_pipeline
from directanimator.video import read_video
from trainers.dataset import load_dataset
from trainers.pseudo import main as pseudo_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from trainers.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("pseudo-shards")
    _save_tiny_pipeline(root / "pipe")
    # 3 train identities x 1 motion, one candidate each
    generate_dataset(root / "ds", identities=4, motions=2, frames=9, size=64, pseudo_per_clip=1,
                     test_identities=1, test_motions=1, show_progress=False)
    return root


def _args(world, out):
    return ["--hub-dataset", str(world / "ds"), "--same-id-checkpoint", str(world / "pipe" / "transformer"),
            "--pretrained", str(world / "pipe"), "--per-clip", "1", "--num-inference-steps", "2",
            "--num-frames", "9", "--long-side", "64", "--min-mask-iou", "0", "--output-dir", str(out)]


def _result(out: Path) -> dict:
    """The scores and seed of every candidate, the dataset's rows and the candidate videos' names and sizes.

    (Not the videos' pixels here: the processes of ``accelerate launch`` run with OMP_NUM_THREADS=1, and float
    sums over another thread count may round differently; the seeds recorded per candidate tell a shard from a
    single run. Two runs with the same settings give identical pixels: ``test_two_identical_runs_give_the_same_
    frames``.)"""
    report = json.loads((out / "pseudo_report.json").read_text())
    videos = {p.name: read_video(p).frames.shape for p in sorted((out / "pseudo").glob("*__*.mp4"))}
    return {"report": report, "videos": videos, "metadata": (out / "metadata.jsonl").read_text()}


@pytest.fixture(scope="module")
def one_process(world):
    out = world / "one"
    assert pseudo_main(_args(world, out)) == 0
    return _result(out)


@pytest.mark.slow
def test_two_launched_processes_equal_one(world, one_process):
    assert len(one_process["report"]) == 3
    assert sorted(r["seed"] for r in one_process["report"].values()) == [0, 1, 2]
    out = world / "two"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "trainers.pseudo",
           *_args(world, out)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shards = sorted(p.name for p in (out / "pseudo_shards").iterdir())
    assert shards == ["00000-of-00002.json", "00001-of-00002.json"]
    assert [len(json.loads((out / "pseudo_shards" / s).read_text())) for s in shards] == [2, 1]
    assert _result(out) == one_process
    # progress: candidates done by all processes / total, and the acceptance rate so far
    assert re.search(r"all processes: [2-3]/3 done, \d accepted \(\d+%\)", proc.stderr), proc.stderr[-2000:]
    load_dataset(out, require_pseudo=True)


@pytest.mark.slow
def test_a_run_cut_short_is_finished_on_another_process_count(world, one_process, capsys):
    out = world / "resumed"
    assert pseudo_main(_args(world, out) + ["--process-index", "1", "--num-processes", "3"]) == 0
    assert "are left to the other processes" in capsys.readouterr().err
    assert not (out / "metadata.jsonl").exists()
    first = {p.name: p.stat().st_mtime_ns for p in (out / "pseudo").glob("*__*.mp4")}
    assert len(first) == 1
    assert pseudo_main(_args(world, out)) == 0  # one process does the 2 that are missing
    assert {p: (out / "pseudo" / p).stat().st_mtime_ns for p in first} == first
    assert _result(out) == one_process


def _frames(out: Path) -> dict:
    return {p.name: read_video(p).frames for p in sorted((out / "pseudo").glob("*__*.mp4"))}


@pytest.mark.slow
def test_two_identical_runs_give_the_same_frames(world, one_process):
    # x264's mbtree reads an uninitialised stack value: the same frames were encoded differently (up to 20 levels)
    # until write_video turned it off
    out = world / "again"
    assert pseudo_main(_args(world, out)) == 0
    assert _result(out) == one_process
    first, again = _frames(world / "one"), _frames(out)
    assert sorted(first) == sorted(again) and len(first) == 3
    for name in first:
        assert np.array_equal(first[name], again[name]), name
