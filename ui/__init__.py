"""The Gradio app's pieces, beside ``app.py`` (which builds the page from them and runs it).

- ``hosting.py``: who may use the owner's tools when the app is reachable by others (pure, no gradio);
- ``server.py``: the app's folders, its hosting in force, owner-only checks and the errors a page shows;
- ``session.py``: one browser session's cues and files;
- ``editor.py``, ``text.py``: mask editor values and the report lines (pure);
- ``cue_handlers.py``, ``people.py``, ``generation.py``, ``animate_tab.py``: the Animate tab (cue extraction and
  editing, who drives and who is animated when several people show, the models and generation, the components and
  their wiring);
- ``train_tab.py``: the Train tab (the runs themselves are ``trainers.runs``).

Nothing in ``directanimator`` or ``trainers`` imports this package.
"""

import os

# No outbound version checks or telemetry: the app must work offline and must not phone home. Set here, before any
# module of the package imports gradio (gradio reads it when it is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
