"""DirectAnimator: animate a reference photo with the motion and expressions of a driving video.

Run locally with ``python app.py`` (binds 127.0.0.1:7860; ``--host 0.0.0.0`` or GRADIO_SERVER_NAME to expose it),
or as a Hugging Face Space (this file is the Space's ``app_file``). The UI only: cue extraction, the pipeline and
the trainers live in ``directanimator`` and ``trainers``; the tabs, their handlers and the hosting rules in ``ui/``
beside this file. Hosted publicly, the Train tab and the inputs that name server folders are the owner's only
(``ui.hosting.Hosting``; README "The app").
"""

import argparse
import logging
import os
from pathlib import Path

# ``ui`` (beside this file) before gradio: it turns gradio's analytics and the Hub's telemetry off first.
from ui import animate_tab, server, train_tab
from ui.generation import models
from ui.hosting import ALLOW_ENV
from ui.session import close_session

import gradio as gr

from directanimator.errors import InputError
from directanimator.quiet import set_verbose

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLE_PAIRS = [  # (reference, driving) in examples/: first the demo model's own world (the one it can animate)
    ("reference_world.png", "driving_world.mp4"),
    ("reference_astronaut.jpg", "driving_walk.mp4"),
    ("reference_grace_hopper.jpg", "driving_walk.mp4"),
    ("reference_synthetic.png", "driving_synthetic.mp4"),
    ("reference_astronaut.jpg", "driving_synthetic.mp4"),
]
TITLE = "DirectAnimator"
INTRO = ("# DirectAnimator\nAnimate a reference photo with the motion and expressions of a driving video, driven "
         "directly by cues cut out of the driving pixels (no skeletons).")

log = logging.getLogger("directanimator.app")


def examples():
    """[reference, driving] pairs from examples/ (those whose files are present)."""
    pairs = [(EXAMPLES_DIR / r, EXAMPLES_DIR / d) for r, d in EXAMPLE_PAIRS]
    return [[str(r), str(d)] for r, d in pairs if r.is_file() and d.is_file()]


def owner_view(profile: gr.OAuthProfile | None = None):
    """On page load, for a public app with "Sign in with Hugging Face": the owner's tools for the signed-in owner
    (model choices with the folder model, the transformer folder box, the Train tab)."""
    allowed = server.hosting().allows(getattr(profile, "username", None))
    return (gr.update(choices=models(allowed)), gr.update(visible=allowed), gr.update(visible=allowed))


def build_ui():
    """The page: both tabs, the events between them and, on a public app with sign-in, the owner's view on load."""
    # Hosted publicly, the owner's tools (Train tab, server-folder inputs) start hidden; with "Sign in with Hugging
    # Face" they appear for the signed-in owner (owner_view). Their handlers refuse others either way.
    hosting = server.hosting()
    everyone = hosting.everyone
    # delete_cache: gradio's copies of served files older than an hour are removed every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        session = gr.State(None, delete_callback=close_session)
        gr.Markdown(INTRO)
        if hosting.sign_in:
            gr.LoginButton(value="Sign in with Hugging Face (the Space owner gets the Train tab)")
        with gr.Tabs(selected="animate") as tabs:
            animate = animate_tab.build(session, everyone, examples())
            train = train_tab.build(session, everyone)
        train.use_btn.click(train_tab.use_checkpoint, [train.ckpt, train.pretrained],
                            [animate.model, animate.model_path, animate.transformer_path, tabs],
                            api_name="use_checkpoint")
        if hosting.sign_in:
            demo.load(owner_view, None, [animate.model, animate.transformer_path, train.tab],
                      api_visibility="private")
    return demo


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
        set_verbose()
    try:
        server.HOSTING = hosting = server.read_hosting(args.host, args.share)
    except InputError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO)
    if hosting.public:
        log.info("hosted publicly: the Train tab and server folders are %s", "on for everyone" if hosting.everyone
                 else ("the signed-in owner's only" if hosting.sign_in else f"off ({ALLOW_ENV}=1 turns them on)"))
    (server.OUTPUT_DIR / "sessions").mkdir(parents=True, exist_ok=True)
    demo = build_ui()
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, allowed_paths=server.served_folders(),
                footer_links=["api", "settings"])


if __name__ == "__main__":
    main()
