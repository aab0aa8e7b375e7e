"""Who may use the owner's tools when the app is hosted publicly: the bind address and environment switches read
as a :class:`Hosting`, and the folders a public app never names (``hide_folders``). Pure: no gradio."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from dataclasses import dataclass

from directanimator.errors import InputError

PUBLIC_ENV = "DIRECTANIMATOR_PUBLIC"
"""1: treat the app as reachable by anyone even on a loopback address (e.g. behind a reverse proxy)."""
ALLOW_ENV = "DIRECTANIMATOR_ALLOW_SERVER_ACCESS"
"""1: every visitor of a public app may train and type server folders (the owner trusts them all)."""


def env_flag(name: str, environ=None) -> bool:
    """A 0/1 switch from the environment (unset or empty: off); InputError naming the variable for other values."""
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
