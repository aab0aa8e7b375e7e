"""What the whole app shares: its folders, the hosting in force (who may use the owner's tools), and how a handler's
error reaches the page (one line, never a traceback, never a server folder on a public app).

``OUTPUT_DIR`` and ``HOSTING`` are read at call time (``server.OUTPUT_DIR``), so ``app.main`` and the tests can set
them before building the page.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import gradio as gr

from directanimator.errors import InputError
from ui.hosting import ALLOW_ENV, Hosting, hide_folders, oauth_installed

ROOT = Path(__file__).resolve().parents[1]  # the app's folder (app.py, examples/, models/)
OUTPUT_DIR = Path(os.environ.get("DIRECTANIMATOR_APP_DIR", ROOT / "outputs" / "app")).resolve()
HOSTING = None  # Hosting: set by app.main() from --host / --share and the environment (see ``hosting``)

log = logging.getLogger("directanimator.app")


def hosting() -> Hosting:
    """Who may use the Train tab and the server-folder inputs: what main() set, else the environment's."""
    global HOSTING
    if HOSTING is None:
        HOSTING = read_hosting()
    return HOSTING


def read_hosting(host=None, share=False) -> Hosting:
    """``Hosting.from_env``, without the sign-in when gradio's oauth extra is missing (the page would not load)."""
    found = Hosting.from_env(host, share)
    if found.sign_in and not oauth_installed():
        log.warning("Sign in with Hugging Face is off: it needs gradio's oauth extra (pip install 'gradio[oauth]')")
        found = replace(found, oauth=False)
    return found


def owner_only(profile, what):
    """Refuse ``what`` (training, a server folder) to a visitor of a public app who is not its owner. The message
    depends on ``what`` alone, never on the value typed, so it never tells whether a path exists."""
    if hosting().allows(getattr(profile, "username", None)):
        return
    how = f"{ALLOW_ENV}=1" + (" or signs in with Hugging Face" if hosting().sign_in else "")
    raise gr.Error(f"{what} is off on this public app (it would use the server's folders and GPU); the owner "
                   f"turns it on with {how}. The built-in models work for everyone.", print_exception=False)


def server_folders():
    """(folder, shown as) pairs for ``hide_folders``: the app's output folder shows as ".", the others by name
    (the virtualenv, when the app runs in one)."""
    venv = [(sys.prefix, "<python>")] if sys.prefix != sys.base_prefix else []
    return [(OUTPUT_DIR, "."), (ROOT, "<app>"), *venv, (tempfile.gettempdir(), "<tmp>"), (Path.home(), "~")]


def hide_server_folders(text):
    """``text`` with the server's folders replaced on a public app (what every message and log line the app shows
    goes through); locally the user sees their own paths as they are."""
    return hide_folders(str(text), server_folders()) if hosting().public else str(text)


def server_path(text):
    """A typed folder: a relative path found under the app's output folder (how the app shows run folders and
    checkpoints) means that one; anything else stays as typed (relative to the working folder, or a Hub id)."""
    text = (text or "").strip()
    if text and not os.path.isabs(text) and (OUTPUT_DIR / text).exists():
        return str(OUTPUT_DIR / text)
    return text


def served_folders():
    """The folders gradio may serve files from: the sessions' (cue views, results, zips), never the training runs'
    folders beside them."""
    return [str(OUTPUT_DIR / "sessions")]


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
