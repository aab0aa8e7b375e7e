"""One browser session's cues and files (kept in a gr.State), and what goes when gradio ends the session."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr

from ui import server


class Session:
    """One browser session's cues and files (kept in gr.State; its folder goes when the session closes)."""

    def __init__(self):
        (server.OUTPUT_DIR / "sessions").mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="s-", dir=server.OUTPUT_DIR / "sessions"))
        self.cues = None  # DrivingCues
        self.auto_transform = None  # the eq. 9-12 alignment before the user's override
        self.cancel = threading.Event()
        self.lock = threading.Lock()  # edits in one session apply one after another (each builds on the last)
        self.editor_frame = None  # the driving frame whose mask is in the frame mask editor
        self.version = 0  # bumps on every cue change so file names never collide with a cached video
        self.training = None  # trainers.runs.TrainerProcess: this session's run (public apps: no other session sees it)

    def path(self, name: str) -> str:
        """A fresh file name for ``name``; older versions go (gradio already served its own copy of them)."""
        for old in self.dir.glob(f"*-{name}"):
            old.unlink(missing_ok=True)
        self.version += 1
        return str(self.dir / f"{self.version:04d}-{name}")


def close_session(session):
    """gr.State delete callback: the session's files go with it. On a public app its training run stops too (no one
    else could see or stop it); the run's folder and checkpoints stay. Locally a run outlives its tab."""
    if isinstance(session, Session):
        if session.training is not None and server.hosting().public:
            threading.Thread(target=session.training.stop, daemon=True).start()  # stop() may wait 20 s
        shutil.rmtree(session.dir, ignore_errors=True)


def need_cues(session):
    """The session's cues, or a message saying what to do first."""
    if not isinstance(session, Session) or session.cues is None:
        raise gr.Error("Extract cues first (upload a reference image and a driving video, then press Extract cues).")
    return session.cues
