"""Errors a user can act on.

Every problem with user input (files, settings, model folders, datasets) is raised as ``InputError`` with a
one-line message that names the problem and what to do about it. The CLIs print it without a traceback and the
app shows it in the UI.
"""

import sys


class InputError(ValueError):
    """A problem with what the user gave us, with a message that says what to do."""


def run_cli(work, done: str | None = "done: {}", stopped: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command-line tool's ``work()`` and return its exit status (every CLI of the project ends through it).

    An ``InputError`` prints ``error: <message>`` on stderr (no traceback, open progress bars closed first) and
    gives 2; one of ``stopped`` (a run that stopped itself on purpose, e.g. a training run's NaN guard) the same
    with 1. Otherwise ``done`` (with ``{}`` replaced by what ``work`` returned) is printed when given and the status
    is ``work``'s own integer result, or 0.
    """
    try:
        result = work()
    except InputError as exc:
        close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except stopped as exc:
        close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if done:
        print(done.format(result))
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def close_progress_bars() -> None:
    """Close the tqdm bars still open (a command that stopped half-way), so that its error line starts on a line
    of its own and no bar redraws after it."""
    if "tqdm" not in sys.modules:
        return
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
