"""Training runs from the outside: the trainer command line for a set of settings, one trainer subprocess at a time,
and readers of what a run writes in its folder (``metrics.jsonl``, checkpoints, ``train.log``).

What the app's Train tab starts, stops and shows; nothing here imports gradio.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from directanimator.errors import InputError


def trainer_command(module, dataset, pretrained, same_id_checkpoint, output_dir, steps, lr, batch, block, lam,
                    checkpoint_every, same2x=False) -> list[str]:
    """The trainer CLI call (``python -m <module> ...``) for the Train tab's settings: the same command a user
    would type. Raises InputError when something the stage needs is missing."""
    dataset, pretrained = (dataset or "").strip(), (pretrained or "").strip()
    same_id_checkpoint = (same_id_checkpoint or "").strip()
    if not dataset:
        raise InputError("Give a dataset: a local folder with metadata.jsonl or a Hub dataset repo id.")
    if not same2x and not pretrained:
        raise InputError("Give the base model to start from: a CogVideoX1.5-I2V or DirectAnimator pipeline folder.")
    if same2x and not same_id_checkpoint:
        raise InputError("Same2X starts from a same-ID run: give its output folder or checkpoint.")
    cmd = [sys.executable, "-m", module, "--hub-dataset", dataset, "--output-dir", str(output_dir),
           "--max-steps", str(int(steps)), "--learning-rate", str(float(lr)), "--train-batch-size", str(int(batch)),
           "--checkpointing-steps", str(max(1, int(checkpoint_every)))]
    if pretrained:
        cmd += ["--pretrained", pretrained]
    if same2x:
        cmd += ["--same-id-checkpoint", same_id_checkpoint, "--align-depth", str(int(block)),
                "--s2x-weight", str(float(lam))]
    return cmd


class TrainerProcess:
    """One trainer subprocess at a time, its output folder and its log file (stdout and stderr)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.output_dir: Path | None = None
        self.log_path: Path | None = None

    def exit_code(self) -> int | None:
        """None while running (or before any run), else the exit code."""
        return None if self.proc is None else self.proc.poll()

    @property
    def running(self) -> bool:
        """A run was started and has not ended."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, cmd: list[str], output_dir, cwd=None) -> None:
        """Run ``cmd`` with its output in ``output_dir/train.log``; InputError if a run is still going."""
        with self.lock:
            if self.running:
                raise InputError("A training run is already going; stop it first.")
            out = Path(output_dir)
            out.mkdir(parents=True, exist_ok=True)
            log_path = out / "train.log"
            with open(log_path, "w") as f:
                f.write("$ " + " ".join(cmd) + "\n")
                f.flush()
                # A session of its own: stopping signals the whole group (dataloader workers included).
                self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            self.output_dir, self.log_path = out, log_path

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the run's process group, SIGKILL after ``timeout`` seconds; a finished run is left alone."""
        with self.lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass  # it ended between the poll and the signal


def read_metrics(path: str | os.PathLike):
    """metrics.jsonl of a training run -> a long pandas DataFrame (step, value, loss) with one row per logged loss
    term: keys containing "loss" (e.g. ``loss_denoise``, ``loss_s2x``). Missing file -> empty frame."""
    import pandas as pd  # here: pandas comes with gradio (the app); the trainers themselves do not need it

    rows = []
    p = Path(path)
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the trainer may be half-way through writing the last line
            step = rec.get("step")
            if not isinstance(step, (int, float)):
                continue
            for k, v in rec.items():
                if "loss" in k and isinstance(v, (int, float)) and math.isfinite(v):
                    rows.append({"step": step, "value": float(v), "loss": k})
    return pd.DataFrame(rows, columns=["step", "value", "loss"])


def split_losses(df):
    """Split a ``read_metrics`` frame into (denoise terms, Same2X terms) so each gets its own plot and scale."""
    s2x = df["loss"].str.contains("s2x|align|repa", case=False, regex=True)
    return df[~s2x].reset_index(drop=True), df[s2x].reset_index(drop=True)


def list_checkpoints(output_dir: str | os.PathLike) -> list[str]:
    """Transformer folders a training run wrote under ``output_dir`` (a ``config.json`` beside diffusers
    safetensors weights: ``checkpoints/checkpoint-<step>/transformer`` and the final ``transformer``), in
    training order: checkpoints by step, the final folder last."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p.parent for p in root.rglob("config.json")
             if any(p.parent.glob("diffusion_pytorch_model*.safetensors"))
             and not any(part.startswith(".tmp") for part in p.relative_to(root).parts)]

    def key(d: Path):
        steps = [int(m.group(1)) for part in d.relative_to(root).parts for m in [re.search(r"-(\d+)$", part)] if m]
        return (0, steps[-1]) if steps else (1, 0)

    return [str(d) for d in sorted(found, key=key)]


def tail_text(path: str | os.PathLike, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ("" when it does not exist yet)."""
    p = Path(path)
    if not p.is_file():
        return ""
    with open(p, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
