"""The Train tab: its components, and the handlers that start, stop and show a trainer run (``trainers.runs``).

A run belongs to the browser session that started it (on a public app no other session sees or stops it); one run
goes at a time on the app; locally every tab sees the latest run (one user, who may have reloaded the page).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from types import SimpleNamespace

import gradio as gr

from trainers.runs import TrainerProcess, list_checkpoints, read_metrics, split_losses, tail_text, trainer_command
from ui import server
from ui.generation import FOLDER_MODEL, TINY_MODEL
from ui.server import hide_server_folders, owner_only, server_path, ui_errors
from ui.session import Session

TRAINER_MODULES = {"same-ID": "trainers.same_id", "Same2X": "trainers.same2x"}

_RUNS: set = set()  # every session's started runs: one goes at a time (training takes the whole machine)
_RUNS_LOCK = threading.Lock()
_LATEST_RUN = None  # the run started last: what a local app shows every tab (one user), never a public app


def session_run(session):
    """The run a session sees: its own; locally, without one of its own, the app's latest (a reloaded tab still
    shows the run it started)."""
    run = session.training if isinstance(session, Session) else None
    if run is None and not server.hosting().public:
        run = _LATEST_RUN
    return run


@ui_errors
def start_training(stage, dataset, pretrained, same_id_checkpoint, steps, lr, batch, block, lam, checkpoint_every,
                   session, profile: gr.OAuthProfile | None = None):
    """Start the trainer CLI in a subprocess writing into a fresh run folder under the app's output folder. The run
    is this session's: only it sees the run's status, log and checkpoints and can stop it."""
    owner_only(profile, "Training")
    out = server.OUTPUT_DIR / "train" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    cmd = trainer_command(TRAINER_MODULES[stage], server_path(dataset), server_path(pretrained),
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
        session.training = mine or TrainerProcess()
        session.training.start(cmd, out, cwd=server.ROOT)
        _RUNS.add(session.training)
        _LATEST_RUN = session.training
    return [session, os.path.relpath(out, server.OUTPUT_DIR), *training_status(session), gr.Timer(active=True)]


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
        empty = read_metrics("")
        return [empty, empty, "", gr.update(choices=[], value=None), "No run yet."]
    out = run.output_dir
    denoise, s2x = split_losses(read_metrics(out / "metrics.jsonl"))
    ckpts = [os.path.relpath(p, server.OUTPUT_DIR) for p in list_checkpoints(out)]
    code = run.exit_code()
    state = "running" if code is None else ("finished" if code == 0 else f"stopped (exit code {code})")
    step = int(denoise["step"].max()) if len(denoise) else 0
    run_dir = os.path.relpath(out, server.OUTPUT_DIR)
    return [denoise, s2x, hide_server_folders(tail_text(run.log_path, 40)),
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


def build(session, everyone):
    """The Train tab (inside the page's gr.Tabs) and its events; ``everyone``: the tab starts visible. Returns the
    components the page wires further (``tab``, ``ckpt``, ``pretrained``, ``use_btn``)."""
    with gr.Tab("Train", id="train", visible=everyone) as tab:
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

    t_inputs = [stage, dataset, pretrained, same_id_ckpt, t_steps, t_lr, t_batch, t_block, t_lam, t_every]
    t_outputs = [denoise_plot, s2x_plot, log_tail, ckpt, status]
    start_btn.click(start_training, [*t_inputs, session], [session, run_dir, *t_outputs, timer],
                    api_name="train_start", concurrency_limit=1)
    stop_btn.click(stop_training, session, [*t_outputs, timer], api_name="train_stop")
    timer.tick(poll_training, session, [*t_outputs, timer], api_visibility="private", show_progress="hidden")
    refresh_btn.click(poll_training, session, [*t_outputs, timer], api_name="train_status")
    return SimpleNamespace(tab=tab, ckpt=ckpt, pretrained=pretrained, use_btn=use_btn)

