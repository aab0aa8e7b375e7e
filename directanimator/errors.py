"""Errors a user can act on.

Every problem with user input (files, settings, model folders, datasets) is raised as ``InputError`` with a
one-line message that names the problem and what to do about it. The CLIs print it without a traceback and the
app shows it in the UI.
"""


class InputError(ValueError):
    """A problem with what the user gave us, with a message that says what to do."""
