"""Keep MediaPipe's native log lines off the console, unless asked for (``--verbose``, ``DIRECTANIMATOR_VERBOSE=1``).

MediaPipe's C++ code (absl logging, TensorFlow Lite) writes lines such as ``W0000 ... inference_feedback_manager.cc:114]
Feedback manager requires a model with a single signature inference`` and ``INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.`` straight to file descriptor 2, through the progress bar. Python's ``logging`` cannot reach them,
and the usual environment variables do not either (measured with mediapipe 0.10.21: ``GLOG_minloglevel``,
``TF_CPP_MIN_LOG_LEVEL``, ``ABSL_MIN_LOG_LEVEL`` all left every line in place; absl prints everything to stderr
before ``absl::InitializeLog()``, which mediapipe never calls). The lines come from the graph's own threads while
it opens its calculators (after construction and after every ``reset()``, asynchronously) and on a graph's first
frames, so :class:`QuietGraph` wraps construction, ``reset``, ``process`` and ``close`` of a MediaPipe solution in
:func:`hush`, waiting for the graph to settle before the window closes.

:func:`hush` points fd 2 at a temporary file for the duration of the native call only (the progress bar, drawn
between calls, is untouched), then puts it back and writes again what it caught, less the known chatter (absl/glog
``I``/``W`` lines, TensorFlow Lite ``INFO:`` lines, absl's "before InitializeLog" notice): native errors (``E``/``F``
lines) and anything another thread printed meanwhile still reach the console, a little late. When the wrapped call
raises, everything caught is shown. Nested and concurrent windows (threads) share one redirection; each process
(segmentation workers are spawned) has its own. A native crash inside a window loses its last lines: rerun with
``DIRECTANIMATOR_VERBOSE=1`` to see them.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

VERBOSE_ENV = "DIRECTANIMATOR_VERBOSE"

# What is dropped from a window's output (one line at a time).
CHATTER = re.compile(
    rb"^\s*(?:"
    rb"[IW]\d{4} [\d:.]+\s+\d+ [\w./+-]+:\d+\]"  # absl/glog INFO and WARNING lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|INFO: "  # TensorFlow Lite's own info lines ("Created TensorFlow Lite XNNPACK delegate for CPU.")
    rb")"
)


def verbose() -> bool:
    """True when ``DIRECTANIMATOR_VERBOSE`` asks for the native log lines (anything but empty/0/false/no/off)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def set_verbose(on: bool = True) -> None:
    """Show (or hide) the native log lines from now on, in this process and in processes it starts later."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def filter_chatter(data: bytes) -> bytes:
    """``data`` without its chatter lines (lines end at ``\\n`` or ``\\r``; the rest is kept byte for byte)."""
    return b"".join(line for line in re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data)
                    if not CHATTER.match(line))


_lock = threading.Lock()
_depth = 0  # windows open in this process
_saved = None  # dup of the real fd 2 while a window is open
_capture = None  # the temporary file fd 2 points at meanwhile
_failed = False  # a window raised: show everything it caught


def _flush() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # closed or replaced streams
            pass


def _enter() -> None:
    global _depth, _saved, _capture
    with _lock:
        if _depth == 0:
            try:
                if _capture is None:
                    _capture = tempfile.TemporaryFile()
                _flush()
                _saved = os.dup(2)
                os.dup2(_capture.fileno(), 2)
            except OSError:  # no fd 2 (daemon) or no temp folder: run unhushed
                if _saved is not None:
                    os.close(_saved)
                _saved = None
        _depth += 1


def _exit(failed: bool) -> None:
    global _depth, _saved, _failed
    with _lock:
        _depth -= 1
        _failed = _failed or failed
        if _depth or _saved is None:
            if not _depth:
                _failed = False
            return
        _flush()
        os.dup2(_saved, 2)
        os.close(_saved)
        _saved = None
        fd = _capture.fileno()
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        data = b"".join(chunks)
        show = data if _failed else filter_chatter(data)
        _failed = False
        while show:
            try:
                show = show[os.write(2, show):]
            except OSError:
                break


def _after_fork_in_child() -> None:
    # A fork while another thread had a window open: the child gets its own, closed, state and its real stderr.
    global _lock, _depth, _saved, _capture, _failed
    _lock = threading.Lock()
    if _saved is not None:
        with contextlib.suppress(OSError):
            os.dup2(_saved, 2)
            os.close(_saved)
    if _capture is not None:
        with contextlib.suppress(OSError):
            _capture.close()
    _depth, _saved, _capture, _failed = 0, None, None, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def hush():
    """Hide the native chatter written to fd 2 inside the ``with`` block (a no-op when verbose).

    Keep the block to the native call: Python output written inside it (this thread's or another's) is held back
    until the block ends.
    """
    if verbose():
        yield
        return
    _enter()
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        _exit(failed)


def _settle(graph) -> None:
    """Wait until a just-started MediaPipe graph has opened its calculators (they log from their own threads)."""
    inner = getattr(graph, "_graph", None)
    if inner is not None:
        with contextlib.suppress(Exception):
            inner.wait_until_idle()


class QuietGraph:
    """A MediaPipe solution (``mp.solutions.pose.Pose``, ``FaceDetection``, ``FaceMesh``, ...) whose native log
    lines are hidden (see the module docstring).

    ``QuietGraph(mp.solutions.pose.Pose, static_image_mode=True)`` builds the solution with these arguments;
    ``process``, ``reset`` and ``close`` are the solution's, and it is a context manager like the solution.
    """

    def __init__(self, factory, **kwargs):
        with hush():
            self.solution = factory(**kwargs)
            _settle(self.solution)

    def process(self, image):
        with hush():
            return self.solution.process(image)

    def reset(self) -> None:
        with hush():
            self.solution.reset()
            _settle(self.solution)

    def close(self) -> None:
        with hush():
            self.solution.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
