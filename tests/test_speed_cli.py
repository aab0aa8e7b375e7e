"""python -m directanimator.animate with the speed and memory flags: --cache / --cache-threshold, --memory, --fp8
(tiny model folder, CPU); bad combinations are one line, exit 2."""

import numpy as np
import pytest

from directanimator.animate import main
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues
from directanimator.video import read_video


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("speedcli")
    make_tiny_pipeline(root / "model")
    tiny_driving_cues(num_frames=9, fps=8.0).save(root / "cues")
    return root


def _args(folders, out, *extra):
    return ["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out", str(out),
            "--steps", "2", "--device", "cpu", *extra]


def test_cache_memory_and_fp8_flags_run(folders):
    assert main(_args(folders, folders / "plain.mp4")) == 0
    # a cache that never skips + group offload (hooks on the CPU) is the plain video; --cpu-offload off CUDA is
    # resident, as before
    assert main(_args(folders, folders / "same.mp4", "--cache", "first-block", "--cache-threshold", "0",
                      "--memory", "group-offload")) == 0
    plain = read_video(str(folders / "plain.mp4")).frames
    same = read_video(str(folders / "same.mp4")).frames
    # within what two identical CLI calls already differ by now and then (see test_parallel.py); the pipeline's
    # outputs are compared exactly in test_caching.py and test_memory.py
    assert same.shape == plain.shape and np.abs(same.astype(int) - plain.astype(int)).mean() < 3
    assert main(_args(folders, folders / "alias.mp4", "--cpu-offload", "--cache", "taylorseer")) == 0
    assert main(_args(folders, folders / "fp8.mp4", "--fp8")) == 0
    assert read_video(str(folders / "fp8.mp4")).frames.shape == plain.shape


@pytest.mark.parametrize("extra, message", [
    (["--cache-threshold", "0.5"], "needs a cache"),
    (["--cache", "taylorseer", "--cache-threshold", "1.5"], "whole number"),
    (["--memory", "sequential-offload"], "needs a GPU"),
    (["--cpu-offload", "--memory", "group-offload"], "cannot go with --memory group-offload"),
    (["--context-parallel"], "launch with `torchrun"),
    (["--context-parallel", "--cache", "pab"], "--cache cannot go with --context-parallel"),
])
def test_bad_speed_flags_are_one_line_exit_2(folders, capsys, extra, message):
    code = main(_args(folders, folders / "bad.mp4", *extra))
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in err
    assert not (folders / "bad.mp4").exists()
