"""Pure helpers behind the Gradio app (``app.py``): image compositing, mask editor values, frame presets,
training-run files, who may use the owner's tools when the app is hosted publicly. Nothing here imports gradio, so
every function is testable on plain arrays and folders.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Colours of the overlays, chosen to stay distinct from skin and from each other.
FACE_COLOR = (255, 170, 0)
SILHOUETTE_COLOR = (64, 150, 255)
MASK_COLOR = (255, 40, 160)


def overlay_mask(image: np.ndarray, mask: np.ndarray, color=MASK_COLOR, alpha: float = 0.5) -> np.ndarray:
    """Tint ``image`` [H,W,3] uint8 with ``color`` where ``mask`` [H,W] in [0,1] is on (soft masks blend softly)."""
    m = np.clip(np.asarray(mask, np.float32), 0, 1)[..., None] * alpha
    tint = np.asarray(color, np.float32)[None, None]
    return (image.astype(np.float32) * (1 - m) + tint * m).round().astype(np.uint8)


def silhouette_overlay(reference: np.ndarray, warped_masks: np.ndarray, reference_mask: np.ndarray | None = None):
    """The aligned driving silhouettes [T,H,W] drawn over the reference (blue fill, reference outline in magenta),
    so a user sees at a glance whether scale and offset match the reference person."""
    ref = fit_to(reference, warped_masks.shape[1:])
    out = np.empty(warped_masks.shape + (3,), np.uint8)
    contours = []
    if reference_mask is not None:
        binary = (fit_to(reference_mask, warped_masks.shape[1:]) > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for t in range(len(warped_masks)):
        frame = overlay_mask(ref, warped_masks[t], SILHOUETTE_COLOR, 0.5)
        if contours:
            cv2.drawContours(frame, contours, -1, MASK_COLOR, max(1, ref.shape[0] // 200))
        out[t] = frame
    return out


def fit_to(image: np.ndarray, hw) -> np.ndarray:
    """Resize ``image`` ([H,W] or [H,W,C]) to exactly ``hw`` (a no-op when it already has that size)."""
    h, w = int(hw[0]), int(hw[1])
    if image.shape[:2] == (h, w):
        return image
    interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """Grayscale uint8 [H,W] or float mask in [0,1] -> RGB uint8 [H,W,3]; RGB passes through."""
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    return frame


def hstack(panels, height: int) -> np.ndarray:
    """Panels (RGB, gray or masks, any sizes) scaled to ``height`` and placed side by side with a 4-px gap."""
    height = int(height) - int(height) % 2
    gap = np.full((height, 4, 3), 255, np.uint8)
    row = []
    for p in panels:
        p = to_rgb(p)
        w = max(2, round(p.shape[1] * height / p.shape[0]))
        row += [fit_to(p, (height, w - w % 2)), gap]
    return np.concatenate(row[:-1], axis=1)


def side_by_side_video(columns, height: int = 256) -> np.ndarray:
    """Videos [T,H,W(,3)] of equal length -> one [T,height,W',3] video with the columns next to each other."""
    n = min(len(c) for c in columns)
    return np.stack([hstack([c[t] for c in columns], height) for t in range(n)])


def frame_ranges(flags) -> str:
    """Indices where ``flags`` is True as compact ranges, e.g. ``"3-5, 9"`` ("none" when there are none)."""
    idx = np.flatnonzero(np.asarray(flags, bool))
    if idx.size == 0:
        return "none"
    parts, start = [], idx[0]
    for a, b in zip(idx, list(idx[1:]) + [None]):
        if b is None or b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(parts)


def frame_report(dropped, no_face, num_frames: int, fps: float) -> str:
    """Markdown summary of which frames were dropped (bad segmentation) and which had no face."""
    d, f = int(np.sum(dropped)), int(np.sum(no_face))
    return (
        f"**{num_frames} frames** at {fps:.3g} fps. "
        f"Dropped (bad or empty person mask, pose cue blank): **{d}** ({frame_ranges(dropped)}). "
        f"No face found (face cue blank): **{f}** ({frame_ranges(no_face)})."
    )


# --- mask editor (gr.ImageEditor values) -------------------------------------------------------------------------


def editor_value(image: np.ndarray, mask: np.ndarray, color=MASK_COLOR, alpha: int = 140) -> dict:
    """An ImageEditor value: the image as background and the mask as a painted RGBA layer, both padded to a
    centred square. Users add to the mask with the brush and remove with the eraser; ``mask_from_editor`` reads
    the layer back. The square matches the editor's square canvas: gradio 6 draws a layer off-place when the
    background is smaller than the canvas."""
    side = max(image.shape[:2])
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    background = np.full((side, side, 3), 255, np.uint8)
    background[top : top + image.shape[0], left : left + image.shape[1]] = image
    layer = np.zeros((side, side, 4), np.uint8)
    on = np.zeros((side, side), bool)
    on[top : top + image.shape[0], left : left + image.shape[1]] = np.asarray(mask) > 0.5
    layer[on, :3] = color
    layer[on, 3] = alpha
    return {"background": background, "layers": [layer], "composite": None}


def mask_from_editor(value, hw) -> np.ndarray | None:
    """The edited mask [H,W] float32 in {0,1} from an ImageEditor value (union of the alpha of all layers, the
    centred square of ``editor_value`` cropped back to ``hw``); None when the editor holds no layers."""
    if not value or not value.get("layers"):
        return None
    alpha = None
    for layer in value["layers"]:
        if layer is None:
            continue
        a = np.asarray(layer)
        a = a[..., 3] if a.ndim == 3 and a.shape[2] == 4 else (a.max(axis=-1) if a.ndim == 3 else a)
        alpha = a if alpha is None else np.maximum(alpha, fit_to(a, alpha.shape))
    if alpha is None:
        return None
    h, w = int(hw[0]), int(hw[1])
    side = max(h, w)
    alpha = fit_to(alpha.astype(np.uint8), (side, side))
    top, left = (side - h) // 2, (side - w) // 2
    return (alpha[top : top + h, left : left + w] > 0).astype(np.float32)


# --- generation settings ----------------------------------------------------------------------------------------


def valid_num_frames(n: int, temporal_compression: int = 4) -> int:
    """The largest frame count <= n of the form k*temporal_compression + 1 (the CogVideoX VAE rule), at least 1+tc."""
    tc = max(1, int(temporal_compression))
    return max(tc + 1, ((int(n) - 1) // tc) * tc + 1)


def frame_choices(max_frames: int, temporal_compression: int = 4, available: int | None = None) -> list[int]:
    """Frame counts offered in the UI: valid counts up to ``max_frames`` (and up to the driving clip's length)."""
    top = max_frames if available is None else min(max_frames, max(available, temporal_compression + 1))
    picks = {valid_num_frames(x, temporal_compression) for x in (9, 13, 17, 25, 33, 49, 81, 121) if x <= top}
    picks.add(valid_num_frames(top, temporal_compression))
    return sorted(picks)


def working_hw(height: int, width: int, long_side: int, multiple: int = 16) -> tuple[int, int]:
    """(h, w) keeping the aspect of height x width, long side ``long_side``, both multiples of ``multiple``."""
    s = long_side / max(height, width)
    return tuple(max(multiple, round(v * s / multiple) * multiple) for v in (height, width))


def eta_text(fraction: float, elapsed: float, desc: str = "") -> str:
    """``desc`` plus the time left, extrapolated from the fraction done so far, e.g. 'denoising 3/20 · 4 s left'."""
    if fraction <= 0.02 or elapsed < 0.5:
        return desc
    left = elapsed / fraction * (1.0 - fraction)
    return f"{desc} · {left:.0f} s left" if left < 120 else f"{desc} · {left / 60:.1f} min left"


# --- training runs ----------------------------------------------------------------------------------------------


def trainer_command(module, dataset, pretrained, same_id_checkpoint, output_dir, steps, lr, batch, block, lam,
                    checkpoint_every, same2x=False) -> list[str]:
    """The trainer CLI call (``python -m <module> ...``) for the Train tab's settings: the same command a user
    would type. Raises InputError when something the stage needs is missing."""
    from directanimator.errors import InputError

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
        from directanimator.errors import InputError

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


# --- hosting -----------------------------------------------------------------------------------------------------

PUBLIC_ENV = "DIRECTANIMATOR_PUBLIC"
"""1: treat the app as reachable by anyone even on a loopback address (e.g. behind a reverse proxy)."""
ALLOW_ENV = "DIRECTANIMATOR_ALLOW_SERVER_ACCESS"
"""1: every visitor of a public app may train and type server folders (the owner trusts them all)."""


def env_flag(name: str, environ=None) -> bool:
    """A 0/1 switch from the environment (unset or empty: off); InputError naming the variable for other values."""
    from directanimator.errors import InputError

    value = (os.environ if environ is None else environ).get(name, "").strip()
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    raise InputError(f"{name}={value!r} is not a switch; set it to 1 (on) or 0 (off).")


def is_loopback(host) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost); anything else (0.0.0.0, a LAN
    address, a host name) is reachable from outside."""
    host = str(host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Hosting:
    """Who may use the owner's tools: the Train tab and the inputs that name server folders (model, transformer,
    dataset, base pipeline and checkpoint folders). A local app gives them to everyone; a public one only to its
    owner.

    Attributes:
        public: others can reach the app: bound to a non-loopback address (``--host 0.0.0.0``,
            ``GRADIO_SERVER_NAME``), a ``--share`` link, a Hugging Face Space (``SPACE_ID``) or ``PUBLIC_ENV=1``.
        open_to_all: ``ALLOW_ENV=1``: the owner gives the tools to every visitor.
        owner: the Space owner's user name (``SPACE_AUTHOR_NAME``).
        oauth: the app runs on a Space (``SYSTEM=spaces``) with "Sign in with Hugging Face" (``hf_oauth: true``
            sets ``OAUTH_CLIENT_ID``); the owner, signed in, gets the tools.
    """

    public: bool = False
    open_to_all: bool = False
    owner: str | None = None
    oauth: bool = False

    @classmethod
    def from_env(cls, host=None, share: bool = False, environ=None) -> "Hosting":
        """The app's hosting from its bind address (``host``; default ``GRADIO_SERVER_NAME`` or 127.0.0.1),
        ``share`` and the environment."""
        env = os.environ if environ is None else environ
        host = env.get("GRADIO_SERVER_NAME", "127.0.0.1") if host is None else host
        space = bool(env.get("SPACE_ID"))
        public = bool(share) or space or not is_loopback(host) or env_flag(PUBLIC_ENV, env)
        return cls(public=public, open_to_all=env_flag(ALLOW_ENV, env), owner=env.get("SPACE_AUTHOR_NAME") or None,
                   oauth=space and env.get("SYSTEM") == "spaces" and bool(env.get("OAUTH_CLIENT_ID")))

    @property
    def everyone(self) -> bool:
        """Every visitor gets the tools (a local app, or the owner opened them)."""
        return not self.public or self.open_to_all

    @property
    def sign_in(self) -> bool:
        """The owner gets the tools by signing in with Hugging Face."""
        return not self.everyone and self.oauth and bool(self.owner)

    def allows(self, username: str | None = None) -> bool:
        """Whether the visitor signed in as ``username`` (None: not signed in) may use the tools."""
        return self.everyone or (self.sign_in and username is not None and username == self.owner)


def oauth_installed() -> bool:
    """Whether gradio's "Sign in with Hugging Face" can run: it needs gradio's oauth extra (authlib, itsdangerous)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("authlib", "itsdangerous"))


def hide_folders(text: str, folders) -> str:
    """``text`` with each folder of ``folders`` (``(path, shown as)`` pairs) replaced by what it is shown as, so
    messages and logs the app shows never name where it runs. Longer folders go first (the output folder inside the
    app's folder); a folder matches whole only (``/tmp`` leaves ``/tmpfiles`` and ``http://host/tmp`` alone); the
    filesystem root is skipped."""
    for path, shown in sorted(((str(p).rstrip("/\\"), s) for p, s in folders), key=lambda f: -len(f[0])):
        if path:
            text = re.sub(r"(?<![\w.~-])" + re.escape(path) + r"(?![\w.-])", lambda m, s=shown: s, text)
    return text


# --- files -------------------------------------------------------------------------------------------------------


def zip_folder(folder: str | os.PathLike, zip_path: str | os.PathLike) -> str:
    """Zip ``folder`` into ``zip_path`` (atomically) and return the path."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as tmp:
        made = shutil.make_archive(os.path.join(tmp, "cues"), "zip", root_dir=folder)
        os.replace(made, zip_path)
    return str(zip_path)


def read_metrics(path: str | os.PathLike):
    """metrics.jsonl of a training run -> a long pandas DataFrame (step, value, loss) with one row per logged loss
    term: keys containing "loss" (e.g. ``loss_denoise``, ``loss_s2x``). Missing file -> empty frame."""
    import pandas as pd

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


def to_rgb_video(frames: np.ndarray) -> np.ndarray:
    """[T,H,W] gray/mask or [T,H,W,3] frames -> [T,H,W,3] uint8 (for writing as mp4)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=3)
    return frames


def to_uint8_video(frames) -> np.ndarray:
    """Pipeline output (float in [0,1], torch or numpy, [T,H,W,3] or [T,3,H,W]) -> [T,H,W,3] uint8."""
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def draw_box(image: np.ndarray, box, color=FACE_COLOR) -> np.ndarray:
    """A copy of ``image`` with the (x0, y0, x1, y1) box outlined; NaN boxes draw nothing."""
    out = image.copy()
    box = np.asarray(box, np.float32)
    if np.isfinite(box).all():
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, max(1, image.shape[0] // 150))
    return out


def mask_centre(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of the tight box of ``mask > 0.5`` (the frame centre when the mask is empty)."""
    on = np.asarray(mask) > 0.5
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if rows.size == 0:
        return (mask.shape[1] - 1) / 2.0, (mask.shape[0] - 1) / 2.0
    return (cols[0] + cols[-1]) / 2.0, (rows[0] + rows[-1]) / 2.0


def draw_outline(image: np.ndarray, mask: np.ndarray, color=MASK_COLOR) -> np.ndarray:
    """A copy of ``image`` with the outline of ``mask > 0.5`` drawn on it."""
    out = np.ascontiguousarray(image).copy()
    contours, _ = cv2.findContours((np.asarray(mask) > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, max(1, image.shape[0] // 200))
    return out


def label(image: np.ndarray, text: str, color=(255, 255, 255)) -> np.ndarray:
    """A copy of ``image`` with ``text`` at the top left (a leading newline: second line), outlined so it reads on
    any content."""
    out = np.ascontiguousarray(image).copy()
    scale = max(0.35, image.shape[0] / 720.0)
    thick = max(1, round(scale * 2))
    row = 1 if text.startswith("\n") else 0
    org = (round(8 * scale), round((row + 1) * 26 * scale + 4))
    cv2.putText(out, text.strip(), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(out, text.strip(), org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return out


# Panel colours of the location cue, as in directanimator.cues.preview (body green, face magenta).
BODY_LOCATION_COLOR = (40, 220, 90)
FACE_LOCATION_COLOR = (255, 60, 200)
RED = (235, 30, 30)


def compose_preview(cues, i: int, height: int, pose_frame: np.ndarray | None = None, warped_mask=None):
    """One frame of every cue side by side, built at preview size (everything is shrunk first, so a frame costs a
    few milliseconds): driving (mask outline, face box) | pose cue | face cue | location cues over the reference |
    aligned driving silhouette over the reference. ``pose_frame`` replaces frame ``i``'s pose cue (live low-pass
    preview); ``warped_mask`` is frame ``i``'s driving mask warped onto the reference."""
    scale = height / cues.height
    w = max(2, round(cues.width * scale))

    def small(a):
        return cv2.resize(np.ascontiguousarray(a), (w, height), interpolation=cv2.INTER_AREA)

    driving = draw_outline(small(cues.driving[i]), small(cues.driving_masks[i]))
    driving = draw_box(driving, np.asarray(cues.face_boxes[i], np.float32) * scale, FACE_COLOR)
    pose = to_rgb(small(cues.pose_cue[i] if pose_frame is None else pose_frame))
    face = small(cues.face_cue[i])
    ref = small(cues.reference)
    location = overlay_mask(overlay_mask((ref * 0.6).astype(np.uint8), small(cues.body_location[i]),
                                         BODY_LOCATION_COLOR, 0.6), small(cues.face_location[i]),
                            FACE_LOCATION_COLOR, 0.6)
    panels = [label(driving, f"driving {i + 1}/{cues.num_frames}"), label(pose, "pose cue"),
              label(face, "face cue"), label(location, "location")]
    if warped_mask is not None:
        panels.append(label(silhouette_overlay(ref, small(warped_mask)[None], small(cues.reference_mask))[0],
                            "alignment"))
    if cues.dropped[i]:
        panels[1] = label(panels[1], "\nDROPPED", RED)
    if cues.no_face[i]:
        panels[2] = label(panels[2], "\nNO FACE", RED)
    return hstack(panels, height)
