"""MediaPipe's native log lines stay off the console unless --verbose / DIRECTANIMATOR_VERBOSE=1 asks for them."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from directanimator import quiet

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"
ASTRONAUT = ROOT / "examples" / "reference_astronaut.jpg"
# What mediapipe 0.10.21 prints on every run without the hush (absl, TensorFlow Lite, GL).
PATTERNS = ("W0000", "I0000", "absl::InitializeLog", "TensorFlow Lite", "inference_feedback_manager", "gl_context")

FEEDBACK = (b"W0000 00:00:1796357282.804067    7239 inference_feedback_manager.cc:114] Feedback manager requires a "
            b"model with a single signature inference. Disabling support for feedback tensors.\n")
ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
TFLITE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
ERROR = b"E0000 00:00:1796357282.9    7239 calculator_graph.cc:887] a real native error\n"


def _chatter(text: str) -> list[str]:
    return [line for line in text.replace("\r", "\n").splitlines() if any(p in line for p in PATTERNS)]


@pytest.fixture
def quiet_env(monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)


def test_filter_drops_chatter_and_keeps_errors_and_bars():
    bar = b"\rsegmenting (mediapipe):  17%|#7        | 00:01"
    data = ABSL + FEEDBACK + b"I0000 00:00:1.5    12 gl_context.cc:357] GL version: 3.2\n" + TFLITE + ERROR + bar
    assert quiet.filter_chatter(data) == ERROR + bar
    other = b"plain text\nWARNING: disk almost full\n"
    assert quiet.filter_chatter(other) == other


def test_hush_hides_native_chatter_only(quiet_env, capfd):
    os.write(2, b"before\n")
    with quiet.hush():
        os.write(2, FEEDBACK + TFLITE + ERROR)
        with quiet.hush():  # nested windows share one redirection
            os.write(2, ABSL + b"nested note\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert err == "before\n" + ERROR.decode() + "nested note\nafter\n"


def test_hush_shows_everything_when_the_call_fails(quiet_env, capfd):
    with pytest.raises(RuntimeError, match="graph failed"):
        with quiet.hush():
            os.write(2, FEEDBACK)
            raise RuntimeError("graph failed")
    assert capfd.readouterr().err == FEEDBACK.decode()
    with quiet.hush():  # and the next window is quiet again
        os.write(2, FEEDBACK)
    assert capfd.readouterr().err == ""


def test_hush_is_a_no_op_when_verbose(monkeypatch, capfd):
    monkeypatch.setenv(quiet.VERBOSE_ENV, "1")
    assert quiet.verbose()
    with quiet.hush():
        os.write(2, FEEDBACK)
    assert capfd.readouterr().err == FEEDBACK.decode()
    for off in ("0", "false", "", "off"):
        monkeypatch.setenv(quiet.VERBOSE_ENV, off)
        assert not quiet.verbose()


def test_hush_from_many_threads_restores_stderr(quiet_env, capfd):
    start = threading.Barrier(4)

    def work(i):
        start.wait()
        for _ in range(50):
            with quiet.hush():
                os.write(2, FEEDBACK)
        with quiet.hush():
            os.write(2, f"thread {i} done\n".encode())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"main after\n")
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == sorted([f"thread {i} done" for i in range(4)] + ["main after"])


def test_real_mediapipe_graphs_are_quiet(quiet_env, capfd):
    import numpy as np

    from directanimator.cues.faces import get_face_detector
    from directanimator.cues.segment import get_segmenter
    from directanimator.video import read_image

    from directanimator.metrics import face_landmarks, pose_landmarks

    image = read_image(str(ASTRONAUT), max_side=256)
    segmenter = get_segmenter("mediapipe")
    assert segmenter.segment_image(image).scores[0] > 0.5
    video = np.stack([image] * 3)
    assert segmenter.segment_video(video).scores.min() > 0.5  # video mode: graphs built, run, reset
    assert get_face_detector("mediapipe").detect(video).found.all()
    assert np.isfinite(pose_landmarks(image)).any() and np.isfinite(face_landmarks(image)).any()
    assert _chatter(capfd.readouterr().err) == []


def _cues_cli(tmp_path, *extra, env=None, frames=5):
    cmd = [sys.executable, "-m", "directanimator.cues", str(ASTRONAUT), str(WALK), "--out", str(tmp_path / "cues"),
           "--frames", str(frames), "--size", "128", "--no-preview", *extra]
    env = {k: v for k, v in os.environ.items() if k != quiet.VERBOSE_ENV} | (env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote" in proc.stdout
    return proc.stderr


def test_cue_cli_is_quiet_by_default_and_verbose_on_request(tmp_path):
    assert _chatter(_cues_cli(tmp_path)) == []
    # the lines are really there to hide: the environment variable brings them back
    verbose = _chatter(_cues_cli(tmp_path, env={quiet.VERBOSE_ENV: "1"}))
    assert any("inference_feedback_manager" in line for line in verbose)


@pytest.mark.slow
def test_cue_cli_segmentation_workers_are_quiet(tmp_path):
    # 16 frames, 2 workers: the clip is split over two spawned processes, each building its own graphs
    assert _chatter(_cues_cli(tmp_path, "--workers", "2", frames=16)) == []
    # --verbose reaches the workers too (they inherit it through the environment)
    assert _chatter(_cues_cli(tmp_path, "--workers", "2", "--verbose", frames=16))


@pytest.mark.slow
def test_animate_cli_from_a_video_is_quiet(tmp_path):
    from directanimator.tiny import make_tiny_pipeline

    make_tiny_pipeline(tmp_path / "model")
    cmd = [sys.executable, "-m", "directanimator.animate", "--reference", str(ASTRONAUT), "--driving", str(WALK),
           "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out.mp4"), "--steps", "1", "--frames", "5",
           "--size", "64"]
    env = {k: v for k, v in os.environ.items() if k != quiet.VERBOSE_ENV} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out.mp4").is_file()
    assert _chatter(proc.stderr) == []
    verbose = subprocess.run(cmd + ["--verbose"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert _chatter(verbose.stderr)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_fork_while_another_thread_is_hushed(quiet_env, capfd):
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with quiet.hush():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    inside.wait(10)
    pid = os.fork()
    if pid == 0:  # the child has its real stderr back and a working hush
        try:
            os.write(2, b"child real\n")
            with quiet.hush():
                os.write(2, FEEDBACK + b"child kept\n")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    leave.set()
    t.join()
    assert capfd.readouterr().err.splitlines() == ["child real", "child kept"]
