"""DirectAnimator: animate a reference photo with the motion and expressions of a driving video.

Run locally with ``python app.py`` (binds 127.0.0.1:7860; ``--host 0.0.0.0`` or GRADIO_SERVER_NAME to expose it),
or as a Hugging Face Space (this file is the Space's ``app_file``). The UI only: cue extraction, the pipeline and
the trainers live in ``directanimator`` and ``trainers``. Hosted publicly, the Train tab and the inputs that name
server folders are the owner's only (``Hosting`` in ``directanimator.app_helpers``; README "The app").
"""

import os

# No outbound version checks or telemetry: the app must work offline and must not phone home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from directanimator import app_helpers as H  # noqa: E402
from directanimator.errors import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
OUTPUT_DIR = Path(os.environ.get("DIRECTANIMATOR_APP_DIR", ROOT / "outputs" / "app")).resolve()
DEMO_DIR = ROOT / "models" / "demo"
DEMO_MODEL = "embedded demo model (models/demo: small, trained on synthetic figures, 64 px)"
TINY_MODEL = "tiny random-weights model (checks the plumbing, output is noise)"
FOLDER_MODEL = "local folder or Hub repo id"
MODELS = ([DEMO_MODEL] if (DEMO_DIR / "model_index.json").is_file() else []) + [TINY_MODEL, FOLDER_MODEL]
SEGMENTERS = ["mediapipe", "grounded-sam"]
FACE_DETECTORS = ["mediapipe", "insightface"]
MEMORY_MODES = ["none", "model CPU offload", "sequential CPU offload", "VAE tiling + slicing"]
RESOLUTIONS = {DEMO_MODEL: [64], TINY_MODEL: [64, 96, 128], FOLDER_MODEL: [480, 720, 768, 1024, 1360]}
MAX_FRAMES = {DEMO_MODEL: 49, TINY_MODEL: 17, FOLDER_MODEL: 121}
DEFAULT_FRAMES = {DEMO_MODEL: 17, TINY_MODEL: 9, FOLDER_MODEL: 49}
DEFAULT_STEPS = {DEMO_MODEL: 25, TINY_MODEL: 4, FOLDER_MODEL: 50}
# (prompt, negative prompt): the demo and tiny models have random text encoders and were trained with empty captions,
# so any text is noise to them; equal prompts also skip the unconditional pass.
DEFAULT_PROMPTS = {DEMO_MODEL: ("", ""), TINY_MODEL: ("", ""),
                   FOLDER_MODEL: ("a person dancing, high quality", "blurry, distorted, low quality")}
PREVIEW_HEIGHT = 256
EDITOR_CANVAS = (512, 512)  # the cues' working long side: editor images are padded to this square
MAX_SEED = 2**31 - 1
TRAINER_MODULES = {"same-ID": "trainers.same_id", "Same2X": "trainers.same2x"}
HOSTING = None  # H.Hosting: set by main() from --host / --share and the environment (see ``hosting``)

log = logging.getLogger("directanimator.app")

try:  # On a ZeroGPU Space, GPU work must run inside a spaces.GPU function; elsewhere this is a no-op.
    import spaces

    gpu = spaces.GPU(duration=240)
    # ZeroGPU runs that function in another process and pickles what crosses over: no closures (progress and
    # cancel callbacks) go there, so generation shows gradio's own progress bar and cannot stop half-way.
    CROSS_PROCESS = bool(os.environ.get("SPACES_ZERO_GPU"))
except ImportError:
    CROSS_PROCESS = False

    def gpu(fn):
        return fn


def path_unopened(payload):
    """Preprocess for the reference upload: hand the file's path over unopened, so that a corrupt or unsupported
    file reaches ``directanimator.video.read_image`` and gets its one-line message (gr.Image's own preprocessing
    opens it with PIL first and fails with a generic error). An instance attribute rather than a gr.Image subclass,
    because gradio writes a ``.pyi`` stub next to any module that subclasses a component."""
    return None if payload is None else payload.path


# --- sessions and errors ------------------------------------------------------------------------------------------


class Session:
    """One browser session's cues and files (kept in gr.State; its folder goes when the session closes)."""

    def __init__(self):
        (OUTPUT_DIR / "sessions").mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="s-", dir=OUTPUT_DIR / "sessions"))
        self.cues = None  # DrivingCues
        self.auto_transform = None  # the eq. 9-12 alignment before the user's override
        self.cancel = threading.Event()
        self.lock = threading.Lock()  # edits in one session apply one after another (each builds on the last)
        self.editor_frame = None  # the driving frame whose mask is in the frame mask editor
        self.version = 0  # bumps on every cue change so file names never collide with a cached video
        self.training = None  # H.TrainerProcess: this session's training run (public apps: no other session sees it)

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
        if session.training is not None and hosting().public:
            threading.Thread(target=session.training.stop, daemon=True).start()  # stop() may wait 20 s
        shutil.rmtree(session.dir, ignore_errors=True)


def hosting():
    """Who may use the Train tab and the server-folder inputs (``H.Hosting``): what main() set, else the
    environment's."""
    global HOSTING
    if HOSTING is None:
        HOSTING = read_hosting()
    return HOSTING


def read_hosting(host=None, share=False):
    """``H.Hosting.from_env``, without the sign-in when gradio's oauth extra is missing (the page would not load)."""
    found = H.Hosting.from_env(host, share)
    if found.sign_in and not H.oauth_installed():
        log.warning("Sign in with Hugging Face is off: it needs gradio's oauth extra (pip install 'gradio[oauth]')")
        found = replace(found, oauth=False)
    return found


def owner_only(profile, what):
    """Refuse ``what`` (training, a server folder) to a visitor of a public app who is not its owner. The message
    depends on ``what`` alone, never on the value typed, so it never tells whether a path exists."""
    if hosting().allows(getattr(profile, "username", None)):
        return
    how = f"{H.ALLOW_ENV}=1" + (" or signs in with Hugging Face" if hosting().sign_in else "")
    raise gr.Error(f"{what} is off on this public app (it would use the server's folders and GPU); the owner "
                   f"turns it on with {how}. The built-in models work for everyone.", print_exception=False)


def server_folders():
    """(folder, shown as) pairs for ``H.hide_folders``: the app's output folder shows as ".", the others by name
    (the virtualenv, when the app runs in one)."""
    venv = [(sys.prefix, "<python>")] if sys.prefix != sys.base_prefix else []
    return [(OUTPUT_DIR, "."), (ROOT, "<app>"), *venv, (tempfile.gettempdir(), "<tmp>"), (Path.home(), "~")]


def hide_server_folders(text):
    """``text`` with the server's folders replaced on a public app (what every message and log line the app shows
    goes through); locally the user sees their own paths as they are."""
    return H.hide_folders(str(text), server_folders()) if hosting().public else str(text)


def server_path(text):
    """A typed folder: a relative path found under the app's output folder (how the app shows run folders and
    checkpoints) means that one; anything else stays as typed (relative to the working folder, or a Hub id)."""
    text = (text or "").strip()
    if text and not os.path.isabs(text) and (OUTPUT_DIR / text).exists():
        return str(OUTPUT_DIR / text)
    return text


def ui_errors(fn):
    """Show InputError and anything unexpected as a one-line gr.Error (never a traceback in the page, never a server
    folder: ``hide_server_folders``); the session and the server stay usable."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            e.message = hide_server_folders(e.message)
            raise
        except InputError as e:
            raise gr.Error(hide_server_folders(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - one user's failure must not take the app down
            log.exception("%s failed", fn.__name__)
            line = hide_server_folders((str(e).strip().splitlines() or [""])[0][:300])
            raise gr.Error(f"{fn.__name__} failed: {type(e).__name__}: {line}", print_exception=False) from None

    return wrapper


def need_cues(session):
    """The session's cues, or a message saying what to do first."""
    if not isinstance(session, Session) or session.cues is None:
        raise gr.Error("Extract cues first (upload a reference image and a driving video, then press Extract cues).")
    return session.cues


EXAMPLE_PAIRS = [  # (reference, driving) in examples/: first the demo model's own world (the one it can animate)
    ("reference_world.png", "driving_world.mp4"),
    ("reference_astronaut.jpg", "driving_walk.mp4"),
    ("reference_grace_hopper.jpg", "driving_walk.mp4"),
    ("reference_synthetic.png", "driving_synthetic.mp4"),
    ("reference_astronaut.jpg", "driving_synthetic.mp4"),
]


def examples():
    """[reference, driving] pairs from examples/ (those whose files are present)."""
    pairs = [(EXAMPLES_DIR / r, EXAMPLES_DIR / d) for r, d in EXAMPLE_PAIRS]
    return [[str(r), str(d)] for r, d in pairs if r.is_file() and d.is_file()]


# --- cue views ----------------------------------------------------------------------------------------------------


def write_mp4(session, name, frames, fps, audio_from=None, preset="veryfast"):
    """Write frames as an H.264 mp4 in the session folder (fast preset for previews)."""
    from directanimator.video import write_video

    return write_video(session.path(name), H.to_rgb_video(frames), fps, audio_from=audio_from, preset=preset)


def warped_silhouettes(cues, i=None):
    """Driving masks (all, or frame ``i`` as a batch of one) warped onto the reference by the current alignment."""
    from directanimator.cues.location import warp_masks

    masks = cues.driving_masks if i is None else cues.driving_masks[i : i + 1]
    return warp_masks(masks, cues.transform, cues.reference_mask.shape[:2])


def cue_videos(session, which=("pose", "face", "location", "silhouette")):
    """mp4 paths for the cue views in ``which`` (``gr.skip()`` for the others, which keep what they show)."""
    c = session.cues
    out = dict.fromkeys(("pose", "face", "location", "silhouette"), gr.skip())
    if "pose" in which:
        out["pose"] = write_mp4(session, "pose_cue.mp4", c.pose_cue, c.fps)
    if "face" in which:
        out["face"] = write_mp4(session, "face_cue.mp4", c.face_cue, c.fps)
    if "location" in which:
        from directanimator.cues.preview import location_overlay

        frames = [location_overlay(c.reference, b, f) for b, f in zip(c.body_location, c.face_location)]
        out["location"] = write_mp4(session, "location.mp4", np.stack(frames), c.fps)
    if "silhouette" in which:
        frames = H.silhouette_overlay(c.reference, warped_silhouettes(c), c.reference_mask)
        out["silhouette"] = write_mp4(session, "silhouette.mp4", frames, c.fps)
    return [out["pose"], out["face"], out["location"], out["silhouette"]]


def frame_panels(cues, i, pose_frame=None):
    """One frame of every cue side by side, at preview size (see ``app_helpers.compose_preview``)."""
    i = int(np.clip(i, 0, cues.num_frames - 1))
    return H.compose_preview(cues, i, PREVIEW_HEIGHT, pose_frame, warped_silhouettes(cues, i)[0])


def frame_outputs(session, i):
    """Preview image and the frame's face box (for the override boxes)."""
    c = session.cues
    i = int(np.clip(i, 0, c.num_frames - 1))
    box = [None if np.isnan(v) else round(float(v), 1) for v in c.face_boxes[i]]
    return [frame_panels(c, i), *box]


def frame_report(c):
    """The line above the cue views: dropped and no-face frames, and the working size the boxes are given in."""
    return (H.frame_report(c.dropped, c.no_face, c.num_frames, c.fps)
            + f" Working size {c.width}×{c.height} px (face boxes are in these pixels).")


def mask_editor(image, mask):
    """Mask editor value for an image (padded to the editor's square canvas)."""
    return H.editor_value(image, mask)


def all_outputs(session, frame=0):
    """Everything the Animate tab shows for freshly extracted cues."""
    c = session.cues
    report = frame_report(c)
    scrub = gr.update(maximum=max(1, c.num_frames - 1), value=min(int(frame), c.num_frames - 1), interactive=True)
    ref_editor = mask_editor(c.reference, c.reference_mask)
    return [session, *cue_videos(session), report, scrub, ref_editor, *frame_outputs(session, frame)]


# --- Animate tab handlers -----------------------------------------------------------------------------------------


def load_driving(path, max_frames, fps):
    """The driving clip, resampled to ``fps`` (0 = keep) and cut to its first ``max_frames`` frames (0 = all)."""
    from directanimator.video import Video, read_video, resample_video

    video = read_video(path)
    if fps:
        video = resample_video(video, fps=float(fps))
    if max_frames and video.num_frames > int(max_frames):
        video = Video(video.frames[: int(max_frames)], video.fps, video.source, video.has_audio)
    return video


@ui_errors
def extract_cues(reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid, max_frames, fps,
                 session, progress=gr.Progress()):
    """Segment, find faces and build the three driving cues; show them."""
    from directanimator.cues import extract_cues as extract

    if not reference:
        raise gr.Error("Upload a reference image (a photo of the person to animate).")
    if not driving:
        raise gr.Error("Upload a driving video (the motion to copy).")
    progress(0, desc="reading the driving video")
    cues = extract(
        reference, load_driving(driving, max_frames, fps), segmenter=segmenter, face_detector=face_detector,
        lowpass=float(lowpass), face_enlarge=float(face_enlarge), grid=int(grid),
        progress=lambda f, desc="extracting cues": progress(f, desc=desc),
    )
    session = session if isinstance(session, Session) else Session()  # only now: a failed first try leaves no files
    session.cues, session.auto_transform = cues, cues.transform
    for warning in cues.settings.get("warnings", []):
        gr.Warning(warning)
    session.editor_frame = None
    return [*all_outputs(session), None, 1.0, 0.0, 0.0]


@ui_errors
def show_frame(session, frame):
    """The scrubber moved: that frame of every cue, and its face box."""
    need_cues(session)
    return frame_outputs(session, frame)


@ui_errors
def preview_lowpass(session, strength, frame):
    """Live preview while the slider moves: recompute the pose cue of the shown frame only."""
    from directanimator.cues.pose import pose_cue

    c = need_cues(session)
    i = int(np.clip(frame, 0, c.num_frames - 1))
    pose = pose_cue(c.driving[i : i + 1], c.driving_masks[i : i + 1], float(strength), c.dropped[i : i + 1])[0]
    return frame_panels(c, i, pose_frame=pose)


def rebuild(session, frame, which, **changes):
    """Apply edits with ``rebuild_cues`` (no re-segmentation) and refresh the views in ``which``."""
    from directanimator.cues import rebuild_cues

    with session.lock:
        session.cues = c = rebuild_cues(session.cues, **changes)
        report = frame_report(c)
        return [*cue_videos(session, which), report, *frame_outputs(session, frame)]


def alignment(session, scale, dx, dy, reference_mask=None, driving_masks=None, dropped=None):
    """The transform to use: the automatic one (eqs. 9-12, re-estimated when masks change) or, when the user moved
    the alignment sliders, that one scaled by ``scale`` about the reference person's centre and shifted by
    (dx, dy) x the frame size."""
    from directanimator.cues.location import estimate_alignment

    c = session.cues
    ref_mask = c.reference_mask if reference_mask is None else reference_mask
    if reference_mask is not None or driving_masks is not None:
        masks = c.driving_masks if driving_masks is None else driving_masks
        keep = ~(c.dropped if dropped is None else dropped)
        session.auto_transform = estimate_alignment(ref_mask, masks, valid=keep)
    k, dx, dy = float(scale), float(dx), float(dy)
    if k == 1.0 and dx == 0.0 and dy == 0.0:
        return "auto"
    auto = session.auto_transform
    cx, cy = H.mask_centre(ref_mask)
    return replace(auto, scale=auto.scale * k, tx=k * auto.tx + (1 - k) * cx + dx * c.width,
                   ty=k * auto.ty + (1 - k) * cy + dy * c.height)


@ui_errors
def set_lowpass(session, strength, frame):
    """The full pose cue at the new low-pass strength (on slider release)."""
    need_cues(session)
    return rebuild(session, frame, ("pose",), lowpass=float(strength))


@ui_errors
def set_face_enlarge(session, enlarge, frame):
    """The face cue with a tighter or looser crop around each face box."""
    need_cues(session)
    return rebuild(session, frame, ("face",), face_enlarge=float(enlarge))


@ui_errors
def set_face_box(session, frame, x0, y0, x1, y1, all_frames):
    """Override the face box of the shown frame (or of every frame) with the typed one (driving-frame pixels)."""
    c = need_cues(session)
    box = np.array([np.nan if v is None else v for v in (x0, y0, x1, y1)], np.float32)
    if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise gr.Error("A face box needs x0 < x1 and y0 < y1 (pixels of the driving frame shown on the left).")
    boxes = np.repeat(box[None], c.num_frames, 0) if all_frames else {int(frame): box}
    return rebuild(session, frame, ("face", "location"), face_boxes=boxes)


@ui_errors
def set_alignment(session, scale, dx, dy, grid, frame):
    """Location cue with the user's scale/offset on top of the automatic alignment, and the softening grid."""
    need_cues(session)
    return rebuild(session, frame, ("location", "silhouette"), transform=alignment(session, scale, dx, dy),
                   grid=int(grid))


@ui_errors
def set_reference_mask(session, editor, scale, dx, dy, frame):
    """Use the painted reference mask (re-estimates the alignment, keeps the user's override on top)."""
    c = need_cues(session)
    mask = H.mask_from_editor(editor, c.reference_mask.shape)
    if mask is None or mask.sum() == 0:
        raise gr.Error("The edited reference mask is empty: paint the person with the brush.")
    transform = alignment(session, scale, dx, dy, reference_mask=mask)
    return rebuild(session, frame, ("location", "silhouette"), reference_mask=mask, transform=transform)


@ui_errors
def load_frame_mask(session, frame):
    """Put the shown driving frame and its person mask into the mask editor."""
    c = need_cues(session)
    session.editor_frame = i = int(np.clip(frame, 0, c.num_frames - 1))
    return gr.update(value=mask_editor(c.driving[i], c.driving_masks[i]), label=f"Mask of driving frame {i}")


@ui_errors
def set_frame_mask(session, editor, scale, dx, dy, frame):
    """Use the painted mask for the driving frame loaded in the editor (an empty mask drops the frame)."""
    c = need_cues(session)
    mask = H.mask_from_editor(editor, c.driving_masks.shape[1:])
    if mask is None or session.editor_frame is None:
        raise gr.Error("Nothing to apply: press 'Edit the mask of the shown frame' first.")
    i = session.editor_frame
    masks, dropped = c.driving_masks.copy(), c.dropped.copy()
    masks[i], dropped[i] = mask, mask.sum() == 0
    if dropped.all():
        raise gr.Error("That would leave no frame with a person; paint the person or undo with Extract cues.")
    transform = alignment(session, scale, dx, dy, driving_masks=masks, dropped=dropped)
    return rebuild(session, frame, ("pose", "location", "silhouette"), driving_masks=masks, dropped=dropped,
                   transform=transform)


# --- generation ---------------------------------------------------------------------------------------------------

_PIPELINES: dict = {}
_PIPELINE_LOCK = threading.Lock()


def load_pipeline(model, path, transformer_path, memory_mode):
    """Load the pipeline for a model choice once and cache it (one at a time, to bound memory); returns its cache
    key. A trained transformer folder (a checkpoint of the Train tab) replaces the pipeline's transformer."""
    import torch

    key = (model, (path or "").strip(), (transformer_path or "").strip(), memory_mode)
    with _PIPELINE_LOCK:
        if key not in _PIPELINES:
            _PIPELINES.clear()
            cuda = torch.cuda.is_available()
            dtype = torch.bfloat16 if cuda else torch.float32
            extra = {}
            if key[2]:
                from directanimator.modeling import CueFusionTransformer3DModel

                if not os.path.isfile(os.path.join(key[2], "config.json")):
                    raise gr.Error(f"{key[2]}: not a transformer folder (no config.json); pick a checkpoint's "
                                   "transformer folder.")
                extra["transformer"] = CueFusionTransformer3DModel.from_pretrained(
                    key[2], dtype=dtype, use_safetensors=True)
            if model == TINY_MODEL:
                pipe = tiny_pipeline()
                if extra:
                    pipe.register_modules(**extra)
            else:
                from directanimator.pipeline import DirectAnimatorPipeline

                folder = str(DEMO_DIR) if model == DEMO_MODEL else key[1]
                if not folder:
                    raise gr.Error("Type a local model folder or a Hub repo id (e.g. your-name/directanimator).")
                pipe = DirectAnimatorPipeline.from_pretrained(folder, dtype=dtype, use_safetensors=True,
                                                              **extra)
            pipe.set_progress_bar_config(disable=True)
            if memory_mode == "model CPU offload" and cuda:
                pipe.enable_model_cpu_offload()
            elif memory_mode == "sequential CPU offload" and cuda:
                pipe.enable_sequential_cpu_offload()
            else:
                pipe.to("cuda" if cuda else "cpu")
            if memory_mode == "VAE tiling + slicing":
                pipe.vae.enable_tiling()
                pipe.vae.enable_slicing()
            _PIPELINES[key] = pipe
        return key


def tiny_pipeline():
    """The tiny random-weights pipeline of the test suite: it exercises every step of generation in seconds on a
    CPU, and its output is noise (it checks the plumbing, not the method)."""
    from directanimator.tiny import make_tiny_pipeline

    return make_tiny_pipeline()


@gpu
def run_pipeline(key, cues, settings, report=None, on_step=None):
    """The GPU part of generation (a ZeroGPU slot on Spaces): denoise and decode with the cached pipeline ``key``."""
    import torch

    settings = dict(settings)
    generator = torch.Generator("cpu").manual_seed(settings.pop("seed"))
    out = _PIPELINES[key](cues=cues, generator=generator, output_type="np", progress=report,
                          callback_on_step_end=on_step, **settings)
    return out.frames[0]


@ui_errors
def generate(session, model, model_path, transformer_path, prompt, negative_prompt, steps, guidance, seed,
             randomize, num_frames, resolution, pose_scale, face_scale, memory_mode,
             profile: gr.OAuthProfile | None = None, progress=gr.Progress()):
    """Animate the reference with the current cues; returns the mp4 (driving audio kept), the side-by-side mp4,
    the cue folder zip, the seed used and a summary line."""
    if model == FOLDER_MODEL or (model_path or "").strip():
        owner_only(profile, "Loading a model folder or Hub repo")
    if (transformer_path or "").strip():
        owner_only(profile, "Loading a trained transformer folder")
    c = need_cues(session)
    session.cancel.clear()
    seed = random.randint(0, MAX_SEED) if randomize else int(seed)
    progress(0, desc="loading the model")
    key = load_pipeline(model, server_path(model_path), server_path(transformer_path), memory_mode)
    if session.cancel.is_set():
        raise gr.Error("Generation cancelled.", print_exception=False)
    num_frames = min(int(num_frames), c.num_frames)
    height, width = H.working_hw(c.height, c.width, int(resolution))
    start = time.monotonic()

    def report(fraction, desc):
        progress(fraction, desc=H.eta_text(fraction, time.monotonic() - start, desc))

    def on_step(pipeline, i, t, kwargs):
        if session.cancel.is_set():
            raise gr.Error("Generation cancelled.", print_exception=False)
        return {}

    settings = dict(prompt=prompt or "", negative_prompt=negative_prompt or "", num_frames=num_frames,
                    height=height, width=width, num_inference_steps=int(steps), guidance_scale=float(guidance),
                    cue_scale=(float(pose_scale), float(face_scale)), seed=seed)
    callbacks = () if CROSS_PROCESS else (report, on_step)
    frames = H.to_uint8_video(run_pipeline(key, c, settings, *callbacks))
    progress(1, desc="writing the videos")
    result = write_mp4(session, "result.mp4", frames, c.fps, audio_from=c.audio_source,
                       preset="medium")
    n = len(frames)
    columns = [c.driving[:n], c.pose_cue[:n], c.face_cue[:n], frames]
    side = write_mp4(session, "side-by-side.mp4", H.side_by_side_video(columns, c.height), c.fps,
                     audio_from=c.audio_source)
    cue_dir = session.dir / "cues"
    c.save(cue_dir)
    zipped = H.zip_folder(cue_dir, session.path("cues.zip"))
    info = f"Seed {seed} · {n} frames at {width}×{height} · {time.monotonic() - start:.1f} s"
    return result, side, zipped, seed, info


def cancel_generation(session):
    """Stop this session's generation at the next denoising step (gradio's cancel alone cannot stop a thread)."""
    if isinstance(session, Session):
        session.cancel.set()


# --- Train tab ----------------------------------------------------------------------------------------------------


_RUNS: set = set()  # every session's started runs: one goes at a time (training takes the whole machine)
_RUNS_LOCK = threading.Lock()
_LATEST_RUN = None  # the run started last: what a local app shows every tab (one user), never a public app


def session_run(session):
    """The run a session sees: its own; locally, without one of its own, the app's latest (a reloaded tab still
    shows the run it started)."""
    run = session.training if isinstance(session, Session) else None
    if run is None and not hosting().public:
        run = _LATEST_RUN
    return run


@ui_errors
def start_training(stage, dataset, pretrained, same_id_checkpoint, steps, lr, batch, block, lam, checkpoint_every,
                   session, profile: gr.OAuthProfile | None = None):
    """Start the trainer CLI in a subprocess writing into a fresh run folder under the app's output folder. The run
    is this session's: only it sees the run's status, log and checkpoints and can stop it."""
    owner_only(profile, "Training")
    out = OUTPUT_DIR / "train" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    cmd = H.trainer_command(TRAINER_MODULES[stage], server_path(dataset), server_path(pretrained),
                            server_path(same_id_checkpoint), out, steps, lr, batch, block, lam, checkpoint_every,
                            same2x=stage == "Same2X")
    global _LATEST_RUN
    with _RUNS_LOCK:
        _RUNS.difference_update([r for r in _RUNS if not r.running])
        mine = session_run(session)
        if any(r is not mine for r in _RUNS):
            raise gr.Error("Another training run is going on this app (one at a time: training takes the whole "
                           "machine); start yours when it has finished.", print_exception=False)
        session = session if isinstance(session, Session) else Session()
        session.training = mine or H.TrainerProcess()
        session.training.start(cmd, out, cwd=ROOT)
        _RUNS.add(session.training)
        _LATEST_RUN = session.training
    return [session, os.path.relpath(out, OUTPUT_DIR), *training_status(session), gr.Timer(active=True)]


@ui_errors
def stop_training(session):
    """Stop this session's run (SIGTERM to its process group, SIGKILL after 20 s); its checkpoints stay."""
    run = session_run(session)
    if run is not None:
        run.stop()
    return [*training_status(session), gr.Timer(active=False)]


def training_status(session):
    """Denoise plot, Same2X plot, log tail, checkpoint choices and a status line for this session's run. Paths are
    relative to the app's output folder."""
    run = session_run(session)
    if run is None or run.output_dir is None:
        empty = H.read_metrics("")
        return [empty, empty, "", gr.update(choices=[], value=None), "No run yet."]
    out = run.output_dir
    denoise, s2x = H.split_losses(H.read_metrics(out / "metrics.jsonl"))
    ckpts = [os.path.relpath(p, OUTPUT_DIR) for p in H.list_checkpoints(out)]
    code = run.exit_code()
    state = "running" if code is None else ("finished" if code == 0 else f"stopped (exit code {code})")
    step = int(denoise["step"].max()) if len(denoise) else 0
    run_dir = os.path.relpath(out, OUTPUT_DIR)
    return [denoise, s2x, hide_server_folders(H.tail_text(run.log_path, 40)),
            gr.update(choices=[(os.path.relpath(p, run_dir), p) for p in ckpts], value=ckpts[-1] if ckpts else None),
            f"Run `{run_dir}`: **{state}**, step {step}, {len(ckpts)} checkpoint(s)."]


@ui_errors
def poll_training(session):
    """This session's run: plots, log tail, checkpoints and status; the timer keeps polling while it is going."""
    run = session_run(session)
    running = run is not None and run.running
    return [*training_status(session), gr.Timer(active=running)]


@ui_errors
def use_checkpoint(path, pretrained, profile: gr.OAuthProfile | None = None):
    """Load a trained transformer in the Animate tab, on top of the run's base pipeline (or the tiny one)."""
    owner_only(profile, "Loading a trained transformer folder")
    if not path:
        raise gr.Error("Pick a checkpoint first.")
    model = FOLDER_MODEL if (pretrained or "").strip() else TINY_MODEL
    return (gr.update(value=model), gr.update(value=(pretrained or "").strip(), visible=model == FOLDER_MODEL),
            gr.update(value=path), gr.Tabs(selected="animate"))


def owner_view(profile: gr.OAuthProfile | None = None):
    """On page load, for a public app with "Sign in with Hugging Face": the owner's tools for the signed-in owner
    (model choices with the folder model, the transformer folder box, the Train tab)."""
    allowed = hosting().allows(getattr(profile, "username", None))
    return (gr.update(choices=models(allowed)), gr.update(visible=allowed), gr.update(visible=allowed))


def models(allowed):
    """The Model choices: the folder / Hub model only for those who may name server folders."""
    return [m for m in MODELS if allowed or m != FOLDER_MODEL]


# --- layout -------------------------------------------------------------------------------------------------------


def model_changed(model):
    """Presets that fit the chosen model: resolutions, frame counts (1 + 4k, the VAE's rule), steps and prompts."""
    res = RESOLUTIONS[model]
    frames = H.frame_choices(MAX_FRAMES[model])
    prompt, negative = DEFAULT_PROMPTS[model]
    return (gr.update(visible=model == FOLDER_MODEL), gr.update(choices=res, value=res[0]),
            gr.update(choices=frames, value=DEFAULT_FRAMES[model]), gr.update(value=DEFAULT_STEPS[model]),
            gr.update(value=prompt), gr.update(value=negative))


def build_ui():
    # Hosted publicly, the owner's tools (Train tab, server-folder inputs) start hidden; with "Sign in with Hugging
    # Face" they appear for the signed-in owner (owner_view). Their handlers refuse others either way.
    everyone = hosting().everyone
    # delete_cache: gradio's copies of served files older than an hour are removed every hour.
    with gr.Blocks(title="DirectAnimator", delete_cache=(3600, 3600)) as demo:
        session = gr.State(None, delete_callback=close_session)
        gr.Markdown("# DirectAnimator\nAnimate a reference photo with the motion and expressions of a driving "
                    "video, driven directly by cues cut out of the driving pixels (no skeletons).")
        if hosting().sign_in:
            gr.LoginButton(value="Sign in with Hugging Face (the Space owner gets the Train tab)")
        with gr.Tabs(selected="animate") as tabs:
            with gr.Tab("Animate", id="animate"):
                with gr.Row():
                    reference = gr.Image(label="Reference image", type="filepath", height=300, elem_id="reference")
                    driving = gr.Video(label="Driving video", height=300, elem_id="driving")
                    reference.preprocess = path_unopened
                if examples():
                    gr.Examples(examples(), [reference, driving], label="Examples", examples_per_page=4)
                with gr.Accordion("Cue extraction settings", open=False):
                    with gr.Row():
                        segmenter = gr.Dropdown(SEGMENTERS, value="mediapipe", label="Person segmenter")
                        face_detector = gr.Dropdown(FACE_DETECTORS, value="mediapipe", label="Face detector")
                        max_frames = gr.Number(49, precision=0, label="Max frames (0 = all)", minimum=0,
                                               elem_id="max_frames")
                        fps = gr.Number(0, label="Resample to fps (0 = keep)", minimum=0)
                extract_btn = gr.Button("Extract cues", variant="primary", elem_id="extract")
                report = gr.Markdown("Cues appear here after **Extract cues**.", elem_id="report")
                with gr.Row():
                    shown = dict(interactive=False, loop=True, autoplay=True)
                    pose_video = gr.Video(label="Pose cue", elem_id="pose-video", **shown)
                    face_video = gr.Video(label="Face cue", elem_id="face-video", **shown)
                    location_video = gr.Video(label="Location masks over the reference (body green, face magenta)",
                                              elem_id="location-video", **shown)
                    silhouette_video = gr.Video(label="Aligned driving silhouette over the reference",
                                                elem_id="silhouette-video", **shown)
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame",
                                  info="driving (mask outline, face box) | pose cue | face cue | location (body "
                                       "green, face magenta) | alignment (driving silhouette blue, reference "
                                       "outline pink)")
                preview = gr.Image(show_label=False, type="numpy", format="jpeg", interactive=False,
                                   elem_id="preview")
                with gr.Accordion("Edit cues (no re-segmentation)", open=True):
                    with gr.Row():
                        lowpass = gr.Slider(0, 1, value=0.5, step=0.01, label="Pose cue low-pass strength",
                                            elem_id="lowpass")
                        face_enlarge = gr.Slider(1.0, 3.0, value=1.6, step=0.05, label="Face crop enlarge")
                        grid = gr.Slider(0, 64, value=16, step=1, label="Location grid size (0 = hard masks)")
                    with gr.Row():
                        align_scale = gr.Slider(0.5, 2.0, value=1.0, step=0.01, label="Alignment scale ×",
                                                elem_id="align_scale")
                        align_dx = gr.Slider(-0.5, 0.5, value=0.0, step=0.005, label="Offset x (× width)",
                                             elem_id="align_dx")
                        align_dy = gr.Slider(-0.5, 0.5, value=0.0, step=0.005, label="Offset y (× height)",
                                             elem_id="align_dy")
                    with gr.Row():
                        box = [gr.Number(label=n, precision=1) for n in ("face x0", "face y0", "face x1", "face y1")]
                        box_all = gr.Checkbox(label="apply to all frames")
                        box_btn = gr.Button("Set face box")
                    with gr.Row():
                        brush = gr.Brush(colors=[("#ff28a0", 0.55)], default_color=("#ff28a0", 0.55),
                                         color_mode="fixed")
                        with gr.Column():
                            ref_editor = gr.ImageEditor(label="Reference mask (brush adds, eraser removes)",
                                                        type="numpy", brush=brush, height=360, sources=[],
                                                        format="png", canvas_size=EDITOR_CANVAS,
                                                        transforms=[], layers=False)
                            ref_mask_btn = gr.Button("Apply reference mask")
                        with gr.Column():
                            load_mask_btn = gr.Button("Edit the mask of the shown frame")
                            frame_editor = gr.ImageEditor(label="Driving frame mask", type="numpy",
                                                          brush=brush, height=360, sources=[], transforms=[],
                                                          format="png", canvas_size=EDITOR_CANVAS, layers=False)
                            frame_mask_btn = gr.Button("Apply frame mask")
                gr.Markdown("## Generate")
                with gr.Row():
                    model = gr.Dropdown(models(everyone), value=MODELS[0], label="Model", scale=2, elem_id="model")
                    model_path = gr.Textbox("", label="Model folder or Hub repo id", visible=False, scale=2)
                    transformer_path = gr.Textbox("", label="Trained transformer folder (optional)", scale=2,
                                                  visible=everyone)
                prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPTS[MODELS[0]][0],
                                    placeholder="optional (the demo model ignores text)")
                with gr.Row():
                    num_frames = gr.Dropdown(H.frame_choices(MAX_FRAMES[MODELS[0]]), value=DEFAULT_FRAMES[MODELS[0]],
                                             label="Frames")
                    resolution = gr.Dropdown(RESOLUTIONS[MODELS[0]], value=RESOLUTIONS[MODELS[0]][0],
                                             label="Resolution (long side)")
                    seed = gr.Number(42, precision=0, label="Seed")
                    randomize = gr.Checkbox(False, label="Randomise seed")
                with gr.Accordion("Advanced", open=False):
                    negative = gr.Textbox(label="Negative prompt", value=DEFAULT_PROMPTS[MODELS[0]][1])
                    with gr.Row():
                        steps = gr.Slider(1, 100, value=DEFAULT_STEPS[MODELS[0]], step=1, label="Steps")
                        guidance = gr.Slider(1.0, 12.0, value=6.0, step=0.5, label="Guidance (CFG)")
                        pose_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Pose cue strength")
                        face_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Face cue strength")
                    memory = gr.Radio(MEMORY_MODES, value="none", label="Memory mode")
                with gr.Row():
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                    cancel_btn = gr.Button("Cancel", variant="stop")
                info = gr.Markdown(elem_id="gen-info")
                with gr.Row():
                    result = gr.Video(label="Result", interactive=False, height=360, elem_id="result")
                    with gr.Column():
                        side = gr.Video(label="Driving | pose cue | face cue | result", interactive=False,
                                        height=250, elem_id="side")
                        cue_zip = gr.File(label="Cue folder (zip)", height=90, elem_id="cue-zip")

            with gr.Tab("Train", id="train", visible=everyone) as train_tab:
                gr.Markdown("Runs the trainer CLI (`python -m trainers.same_id` / `trainers.same2x`) in a "
                            "subprocess, one run at a time. The run is this browser session's: only it sees and "
                            "stops the run, and it stops when the session ends (folders are relative to the app's "
                            "output folder). On a Space, train on a dedicated GPU machine instead.")
                with gr.Row():
                    dataset = gr.Textbox("", label="Dataset (local folder with metadata.jsonl, or Hub dataset id)")
                    stage = gr.Radio(list(TRAINER_MODULES), value="same-ID", label="Stage")
                with gr.Row():
                    pretrained = gr.Textbox("", label="Base pipeline (CogVideoX1.5-I2V / DirectAnimator folder)")
                    same_id_ckpt = gr.Textbox("", label="Same-ID run or checkpoint (Same2X only)")
                with gr.Row():
                    t_steps = gr.Number(1000, precision=0, label="Steps", minimum=1)
                    t_lr = gr.Number(2e-5, label="Learning rate")
                    t_batch = gr.Number(1, precision=0, label="Batch size", minimum=1)
                    t_block = gr.Number(10, precision=0, label="Same2X block D", minimum=1)
                    t_lam = gr.Number(0.5, label="Same2X weight λ")
                    t_every = gr.Number(500, precision=0, label="Checkpoint every", minimum=1)
                with gr.Row():
                    start_btn = gr.Button("Start training", variant="primary")
                    stop_btn = gr.Button("Stop", variant="stop")
                    refresh_btn = gr.Button("Refresh")
                run_dir = gr.Textbox(label="Run folder", interactive=False)
                status = gr.Markdown("No run yet.")
                with gr.Row():
                    denoise_plot = gr.LinePlot(x="step", y="value", color="loss", title="Denoising loss")
                    s2x_plot = gr.LinePlot(x="step", y="value", color="loss", title="Same2X alignment loss")
                log_tail = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True)
                with gr.Row():
                    ckpt = gr.Dropdown([], label="Checkpoints (or type a transformer folder)", allow_custom_value=True,
                                       scale=3)
                    use_btn = gr.Button("Use this checkpoint in Animate", scale=1)
                timer = gr.Timer(2.0, active=False)

        # Wiring. Live previews skip the queue (they take milliseconds); everything else is queued, generation one
        # at a time (one GPU).
        videos = [pose_video, face_video, location_video, silhouette_video]
        frame_outs = [preview, *box]
        edit_outs = [*videos, report, *frame_outs]
        # Progress (and an error badge) only on the report line: a failed edit must not blank the cue views.
        on_report = dict(show_progress_on=[report], concurrency_limit=4)
        extract_btn.click(extract_cues, [reference, driving, segmenter, face_detector, lowpass, face_enlarge, grid,
                                         max_frames, fps, session],
                          [session, *videos, report, frame, ref_editor, *frame_outs, frame_editor, align_scale,
                           align_dx, align_dy], api_name="extract_cues", concurrency_limit=2, show_progress_on=[report])
        frame.change(show_frame, [session, frame], frame_outs, api_name="show_frame", show_progress="hidden",
                     trigger_mode="always_last", queue=False)
        lowpass.input(preview_lowpass, [session, lowpass, frame], preview, api_name="preview_lowpass",
                      show_progress="hidden", trigger_mode="always_last", queue=False)
        lowpass.release(set_lowpass, [session, lowpass, frame], edit_outs, api_name="set_lowpass", **on_report)
        face_enlarge.release(set_face_enlarge, [session, face_enlarge, frame], edit_outs,
                             api_name="set_face_enlarge", **on_report)
        align_in = [session, align_scale, align_dx, align_dy, grid, frame]
        for s in (grid, align_scale, align_dx, align_dy):  # grid first: it owns the public api_name
            s.release(set_alignment, align_in, edit_outs,
                      api_name="set_alignment" if s is grid else f"set_alignment_{s.elem_id}",
                      api_visibility="public" if s is grid else "private", **on_report)
        box_btn.click(set_face_box, [session, frame, *box, box_all], edit_outs, api_name="set_face_box", **on_report)
        ref_mask_btn.click(set_reference_mask, [session, ref_editor, align_scale, align_dx, align_dy, frame],
                           edit_outs, api_name="set_reference_mask", **on_report)
        load_mask_btn.click(load_frame_mask, [session, frame], frame_editor, api_name="load_frame_mask")
        frame_mask_btn.click(set_frame_mask, [session, frame_editor, align_scale, align_dx, align_dy, frame],
                             edit_outs, api_name="set_frame_mask", **on_report)
        model.change(model_changed, model, [model_path, resolution, num_frames, steps, prompt, negative],
                     api_visibility="private")
        gen_inputs = [session, model, model_path, transformer_path, prompt, negative, steps, guidance, seed,
                      randomize, num_frames, resolution, pose_scale, face_scale, memory]
        gen = gen_btn.click(generate, gen_inputs, [result, side, cue_zip, seed, info], api_name="generate",
                            concurrency_limit=1, show_progress_on=[result])
        cancel_btn.click(cancel_generation, session, None, cancels=[gen], api_name="cancel", queue=False)

        t_inputs = [stage, dataset, pretrained, same_id_ckpt, t_steps, t_lr, t_batch, t_block, t_lam, t_every]
        t_outputs = [denoise_plot, s2x_plot, log_tail, ckpt, status]
        start_btn.click(start_training, [*t_inputs, session], [session, run_dir, *t_outputs, timer],
                        api_name="train_start", concurrency_limit=1)
        stop_btn.click(stop_training, session, [*t_outputs, timer], api_name="train_stop")
        timer.tick(poll_training, session, [*t_outputs, timer], api_visibility="private", show_progress="hidden")
        refresh_btn.click(poll_training, session, [*t_outputs, timer], api_name="train_status")
        use_btn.click(use_checkpoint, [ckpt, pretrained], [model, model_path, transformer_path, tabs],
                      api_name="use_checkpoint")
        if hosting().sign_in:
            demo.load(owner_view, None, [model, transformer_path, train_tab], api_visibility="private")
    return demo


def served_folders():
    """The folders gradio may serve files from: the sessions' (cue views, results, zips), never the training runs'
    folders beside them."""
    return [str(OUTPUT_DIR / "sessions")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="open a public gradio.live link")
    parser.add_argument("--verbose", action="store_true",
                        help="also show MediaPipe's native log lines in the console (or DIRECTANIMATOR_VERBOSE=1)")
    args = parser.parse_args(argv)
    if args.verbose:
        from directanimator.quiet import set_verbose

        set_verbose()
    global HOSTING
    try:
        HOSTING = read_hosting(args.host, args.share)
    except InputError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO)
    if HOSTING.public:
        log.info("hosted publicly: the Train tab and server folders are %s", "on for everyone" if HOSTING.everyone
                 else ("the signed-in owner's only" if HOSTING.sign_in else f"off ({H.ALLOW_ENV}=1 turns them on)"))
    (OUTPUT_DIR / "sessions").mkdir(parents=True, exist_ok=True)
    demo = build_ui()
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, allowed_paths=served_folders(),
                footer_links=["api", "settings"])


if __name__ == "__main__":
    main()
