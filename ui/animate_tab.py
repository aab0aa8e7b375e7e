"""The Animate tab: its components (inputs, cue views, cue edits, generation) and their events; the handlers are
in ``cue_handlers``, ``people`` (who drives, who is animated) and ``generation``."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from directanimator.cues.settings import CueSettings

from ui.cue_handlers import (extract_cues, load_frame_mask, preview_lowpass, set_alignment, set_face_box,
                             set_face_enlarge, set_frame_mask, set_lowpass, set_reference_mask, show_frame)
from ui.generation import (CACHE_CHOICES, DEFAULT_FRAMES, DEFAULT_PROMPTS, DEFAULT_STEPS, MAX_FRAMES, MEMORY_MODES,
                           MODELS, RESOLUTIONS, cancel_generation, frame_choices, generate, model_changed, models)
from ui.people import choose_driving_person, choose_reference_person, show_people

SEGMENTERS = ["mediapipe", "grounded-sam"]
FACE_DETECTORS = ["mediapipe", "insightface"]
EDITOR_CANVAS = (512, 512)  # the cues' working long side: editor images are padded to this square

CUE_DEFAULTS = CueSettings()  # the sliders start at the paper's settings


def path_unopened(payload):
    """Preprocess for the reference upload: hand the file's path over unopened, so that a corrupt or unsupported
    file reaches ``directanimator.video.read_image`` and gets its one-line message (gr.Image's own preprocessing
    opens it with PIL first and fails with a generic error). An instance attribute rather than a gr.Image subclass,
    because gradio writes a ``.pyi`` stub next to any module that subclasses a component."""
    return None if payload is None else payload.path


def build(session, everyone, examples=()):
    """The Animate tab (inside the page's gr.Tabs) and its events. ``everyone``: the owner's inputs (the folder
    model, the transformer folder) start visible; ``examples``: [reference, driving] pairs to offer. Returns the
    components the page wires further (``model``, ``model_path``, ``transformer_path``)."""
    with gr.Tab("Animate", id="animate"):
        c = SimpleNamespace(session=session)
        _inputs(c, examples)
        _cue_views(c)
        _cue_edits(c)
        _generation(c, everyone)
    _wire(c)
    return SimpleNamespace(model=c.model, model_path=c.model_path, transformer_path=c.transformer_path)


def _inputs(c, examples):
    """Reference and driving uploads, the examples, cue extraction settings and the Extract button."""
    with gr.Row():
        c.reference = gr.Image(label="Reference image", type="filepath", height=300, elem_id="reference")
        c.driving = gr.Video(label="Driving video", height=300, elem_id="driving")
        c.reference.preprocess = path_unopened
    if examples:
        gr.Examples(examples, [c.reference, c.driving], label="Examples", examples_per_page=4)
    with gr.Accordion("Cue extraction settings", open=False):
        with gr.Row():
            c.segmenter = gr.Dropdown(SEGMENTERS, value="mediapipe", label="Person segmenter")
            c.face_detector = gr.Dropdown(FACE_DETECTORS, value="mediapipe", label="Face detector")
            c.max_frames = gr.Number(49, precision=0, label="Max frames (0 = all)", minimum=0, elem_id="max_frames")
            c.fps = gr.Number(0, label="Resample to fps (0 = keep)", minimum=0)
            c.shot = gr.Dropdown(["longest", "all"], value="longest", label="Shot", elem_id="shot",
                                 info="a driving video with cuts: the longest shot, all frames, or shot N")
    c.extract_btn = gr.Button("Extract cues", variant="primary", elem_id="extract")


def _cue_views(c):
    """The report line, the people pickers (shown when several people were found), the four cue videos, the frame
    scrubber and its side-by-side preview."""
    c.report = gr.Markdown("Cues appear here after **Extract cues**.", elem_id="report")
    c.people_line = gr.Markdown(visible=False, elem_id="people-line")  # several people: who drives, who is animated
    with gr.Row():
        pick = dict(type="numpy", format="png", interactive=False, visible=False, height=480, buttons=[])
        c.driving_people = gr.Image(label="People in the first driving frame: click one to choose who drives",
                                    elem_id="driving-people", **pick)
        c.reference_people = gr.Image(label="People in the reference photo: click the one to animate",
                                      elem_id="reference-people", **pick)
    with gr.Row():
        shown = dict(interactive=False, loop=True, autoplay=True)
        c.pose_video = gr.Video(label="Pose cue", elem_id="pose-video", **shown)
        c.face_video = gr.Video(label="Face cue", elem_id="face-video", **shown)
        c.location_video = gr.Video(label="Location masks over the reference (body green, face magenta)",
                                    elem_id="location-video", **shown)
        c.silhouette_video = gr.Video(label="Aligned driving silhouette over the reference",
                                      elem_id="silhouette-video", **shown)
    c.frame = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame",
                        info="driving (mask outline, face box) | pose cue | face cue | location (body "
                             "green, face magenta) | alignment (driving silhouette blue, reference "
                             "outline pink)")
    c.preview = gr.Image(show_label=False, type="numpy", format="jpeg", interactive=False, elem_id="preview")


def _cue_edits(c):
    """Low-pass, face crop, grid and alignment sliders, the face box override and the two mask editors."""
    with gr.Accordion("Edit cues (no re-segmentation)", open=True):
        with gr.Row():
            c.lowpass = gr.Slider(0, 1, value=CUE_DEFAULTS.lowpass, step=0.01, label="Pose cue low-pass strength", elem_id="lowpass")
            c.face_enlarge = gr.Slider(1.0, 3.0, value=CUE_DEFAULTS.face_enlarge, step=0.05, label="Face crop enlarge")
            c.grid = gr.Slider(0, 64, value=CUE_DEFAULTS.grid, step=1, label="Location grid size (0 = hard masks)")
        with gr.Row():
            c.align_scale = gr.Slider(0.5, 2.0, value=1.0, step=0.01, label="Alignment scale ×",
                                      elem_id="align_scale")
            c.align_dx = gr.Slider(-0.5, 0.5, value=0.0, step=0.005, label="Offset x (× width)", elem_id="align_dx")
            c.align_dy = gr.Slider(-0.5, 0.5, value=0.0, step=0.005, label="Offset y (× height)", elem_id="align_dy")
        with gr.Row():
            c.box = [gr.Number(label=n, precision=1) for n in ("face x0", "face y0", "face x1", "face y1")]
            c.box_all = gr.Checkbox(label="apply to all frames")
            c.box_btn = gr.Button("Set face box")
        with gr.Row():
            # The brush paints in the cue views' mask colour (directanimator.cues.preview.MASK_COLOUR).
            brush = gr.Brush(colors=[("#ff28a0", 0.55)], default_color=("#ff28a0", 0.55), color_mode="fixed")
            with gr.Column():
                c.ref_editor = gr.ImageEditor(label="Reference mask (brush adds, eraser removes)", type="numpy",
                                              brush=brush, height=360, sources=[], format="png",
                                              canvas_size=EDITOR_CANVAS, transforms=[], layers=False)
                c.ref_mask_btn = gr.Button("Apply reference mask")
            with gr.Column():
                c.load_mask_btn = gr.Button("Edit the mask of the shown frame")
                c.frame_editor = gr.ImageEditor(label="Driving frame mask", type="numpy", brush=brush, height=360,
                                                sources=[], transforms=[], format="png", canvas_size=EDITOR_CANVAS,
                                                layers=False)
                c.frame_mask_btn = gr.Button("Apply frame mask")


def _generation(c, everyone):
    """Model, prompt, frames, resolution, seed, the advanced settings, Generate / Cancel and the results."""
    gr.Markdown("## Generate")
    with gr.Row():
        c.model = gr.Dropdown(models(everyone), value=MODELS[0], label="Model", scale=2, elem_id="model")
        c.model_path = gr.Textbox("", label="Model folder, training run folder or Hub repo id", visible=False, scale=2)
        c.transformer_path = gr.Textbox("", label="Trained transformer folder (optional)", scale=2,
                                        visible=everyone)
    c.prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPTS[MODELS[0]][0],
                          placeholder="optional (the demo model ignores text)")
    with gr.Row():
        c.num_frames = gr.Dropdown(frame_choices(MAX_FRAMES[MODELS[0]]), value=DEFAULT_FRAMES[MODELS[0]],
                                   label="Frames")
        c.resolution = gr.Dropdown(RESOLUTIONS[MODELS[0]], value=RESOLUTIONS[MODELS[0]][0],
                                   label="Resolution (long side)")
        c.seed = gr.Number(42, precision=0, label="Seed")
        c.randomize = gr.Checkbox(False, label="Randomise seed")
    with gr.Accordion("Advanced", open=False):
        c.negative = gr.Textbox(label="Negative prompt", value=DEFAULT_PROMPTS[MODELS[0]][1])
        with gr.Row():
            c.steps = gr.Slider(1, 100, value=DEFAULT_STEPS[MODELS[0]], step=1, label="Steps")
            c.guidance = gr.Slider(1.0, 12.0, value=6.0, step=0.5, label="Guidance (CFG)")
            c.pose_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Pose cue strength")
            c.face_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Face cue strength")
        with gr.Row():
            c.memory = gr.Radio(MEMORY_MODES, value="none", label="Memory mode")
            c.cache = gr.Dropdown(CACHE_CHOICES, value="off", label="Step cache (faster, slightly different)")
    with gr.Row():
        c.gen_btn = gr.Button("Generate", variant="primary", elem_id="generate")
        c.cancel_btn = gr.Button("Cancel", variant="stop")
    c.info = gr.Markdown(elem_id="gen-info")
    with gr.Row():
        c.result = gr.Video(label="Result", interactive=False, height=360, elem_id="result")
        with gr.Column():
            c.side = gr.Video(label="Driving | pose cue | face cue | result", interactive=False, height=250,
                              elem_id="side")
            c.cue_zip = gr.File(label="Cue folder (zip)", height=90, elem_id="cue-zip")


def _wire(c):
    """The tab's events. Live previews skip the queue (they take milliseconds); everything else is queued,
    generation one at a time (one GPU)."""
    session = c.session
    videos = [c.pose_video, c.face_video, c.location_video, c.silhouette_video]
    frame_outs = [c.preview, *c.box]
    edit_outs = [*videos, c.report, *frame_outs]
    # Progress (and an error badge) only on the report line: a failed edit must not blank the cue views.
    on_report = dict(show_progress_on=[c.report], concurrency_limit=4)
    extract_in = [c.reference, c.driving, c.segmenter, c.face_detector, c.lowpass, c.face_enlarge, c.grid,
                  c.max_frames, c.fps, session, c.shot]
    extract_outs = [session, *videos, c.report, c.frame, c.ref_editor, *frame_outs, c.frame_editor, c.align_scale,
                    c.align_dx, c.align_dy, c.shot]
    people_outs = [c.people_line, c.driving_people, c.reference_people]
    c.extract_btn.click(extract_cues, extract_in, extract_outs, api_name="extract_cues", concurrency_limit=2,
                        show_progress_on=[c.report]).success(show_people, session, people_outs, queue=False,
                                                             api_visibility="private")
    for picture, pick in ((c.driving_people, choose_driving_person), (c.reference_people, choose_reference_person)):
        picture.select(pick, extract_in, extract_outs, api_visibility="private", concurrency_limit=2,
                       show_progress_on=[c.report]).success(show_people, session, people_outs, queue=False,
                                                            api_visibility="private")
    c.frame.change(show_frame, [session, c.frame], frame_outs, api_name="show_frame", show_progress="hidden",
                   trigger_mode="always_last", queue=False)
    c.lowpass.input(preview_lowpass, [session, c.lowpass, c.frame], c.preview, api_name="preview_lowpass",
                    show_progress="hidden", trigger_mode="always_last", queue=False)
    c.lowpass.release(set_lowpass, [session, c.lowpass, c.frame], edit_outs, api_name="set_lowpass", **on_report)
    c.face_enlarge.release(set_face_enlarge, [session, c.face_enlarge, c.frame], edit_outs,
                           api_name="set_face_enlarge", **on_report)
    align_in = [session, c.align_scale, c.align_dx, c.align_dy, c.grid, c.frame]
    for s in (c.grid, c.align_scale, c.align_dx, c.align_dy):  # grid first: it owns the public api_name
        s.release(set_alignment, align_in, edit_outs,
                  api_name="set_alignment" if s is c.grid else f"set_alignment_{s.elem_id}",
                  api_visibility="public" if s is c.grid else "private", **on_report)
    c.box_btn.click(set_face_box, [session, c.frame, *c.box, c.box_all], edit_outs, api_name="set_face_box",
                    **on_report)
    c.ref_mask_btn.click(set_reference_mask, [session, c.ref_editor, c.align_scale, c.align_dx, c.align_dy, c.frame],
                         edit_outs, api_name="set_reference_mask", **on_report)
    c.load_mask_btn.click(load_frame_mask, [session, c.frame], c.frame_editor, api_name="load_frame_mask")
    c.frame_mask_btn.click(set_frame_mask, [session, c.frame_editor, c.align_scale, c.align_dx, c.align_dy, c.frame],
                           edit_outs, api_name="set_frame_mask", **on_report)
    c.model.change(model_changed, c.model, [c.model_path, c.resolution, c.num_frames, c.steps, c.prompt, c.negative],
                   api_visibility="private")
    gen_inputs = [session, c.model, c.model_path, c.transformer_path, c.prompt, c.negative, c.steps, c.guidance,
                  c.seed, c.randomize, c.num_frames, c.resolution, c.pose_scale, c.face_scale, c.memory, c.cache]
    gen = c.gen_btn.click(generate, gen_inputs, [c.result, c.side, c.cue_zip, c.seed, c.info], api_name="generate",
                          concurrency_limit=1, show_progress_on=[c.result])
    c.cancel_btn.click(cancel_generation, session, None, cancels=[gen], api_name="cancel", queue=False)
