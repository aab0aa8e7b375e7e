"""Checks on what the trainer CLIs are given, run before anything is loaded or written.

Every CLI in ``trainers/`` builds its parser with ``ArgumentParser`` from this module and gives each numeric flag
one of the range types below (``positive_int``, ``fraction``, ``integer(32, 2048)`` ...). A bad value is an
``InputError``, which the CLIs print as ONE line on stderr with exit status 2 (``directanimator.errors.run_cli``;
argparse's own status for a bad argument), before anything is loaded or written::

    error: --max-steps must be an integer >= 1, got -1 (see python -m trainers.same_id --help)

The same module has the checks on paths that the trainers share, all raising ``InputError``: an output folder that
cannot be made (``check_output_dir``), a ``--resume`` folder that is not a whole checkpoint (``check_checkpoint``),
model folders without safetensors weights (``check_model_folder``, which is the animate CLI's
``directanimator.pipeline.check_pipeline_folder``), damaged weight files (``loading``) and a full disk
(``writing``, which also removes the half-written folder).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
from pathlib import Path

from directanimator.errors import InputError
from directanimator.model_folders import check_pipeline_folder

__all__ = [
    "ArgumentParser", "integer", "number", "integer_list", "positive_int", "nonnegative_int", "random_seed", "fraction",
    "positive", "nonnegative", "check_output_dir", "check_model_folder", "check_checkpoint", "check_training_run",
    "loading", "writing",
]


# ------------------------------------------------------------------------------------------------ the parser

class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are an ``InputError`` with one line (``--flag must be ...``), which
    the CLIs print as ``error: ...`` with exit status 2 (as argparse itself would, minus the usage text); sub-parsers
    made with ``add_subparsers`` are of this class too. ``--help`` still prints and exits."""

    def error(self, message: str):
        # argparse says "argument --max-steps: must be ..."; the flag alone reads better
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + " ", message)
        raise InputError(f"{message} (see {self.prog} --help)")


# ------------------------------------------------------------------------------------------------ range types

def _bounds(low, high, low_open=False, high_open=False) -> str:
    """"in 1..10", "in [0, 1)", ">= 1", "> 0" ..."""
    def fmt(v):
        return f"{v:g}" if isinstance(v, float) else str(v)

    if low is not None and high is not None:
        if isinstance(low, int) and isinstance(high, int):
            return f"in {low}..{high}"
        return f"in {'(' if low_open else '['}{fmt(low)}, {fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {fmt(high)}"
    return ""


def integer(low: int | None = None, high: int | None = None):
    """An argparse ``type``: a whole number in ``low..high`` (either end open when None)."""
    what = f"an integer {_bounds(low, high)}".rstrip()

    def parse(text):
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    parse.__name__ = what
    return parse


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """An argparse ``type``: a finite number between ``low`` and ``high`` (excluded when ``*_open``)."""
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    what = f"a number {_bounds(low, high, low_open, high_open)}".rstrip()

    def parse(text):
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) or (
                high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = what
    return parse


def integer_list(low: int | None = None, high: int | None = None):
    """An argparse ``type``: a comma list of at least one integer in ``low..high`` ("0,1,2" -> [0, 1, 2])."""
    one = integer(low, high)
    what = f"a comma list of integers {_bounds(low, high)}".rstrip()

    def parse(text):
        parts = [p for p in str(text).split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        try:
            return [one(p) for p in parts]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None

    parse.__name__ = what
    return parse


positive_int = integer(1)
nonnegative_int = integer(0)
random_seed = integer(0, 2**32 - 1)  # numpy's seeds are unsigned 32-bit
fraction = number(0, 1)
positive = number(0, low_open=True)
nonnegative = number(0)


# ------------------------------------------------------------------------------------------------ paths

def check_output_dir(path: str | os.PathLike, flag: str = "--output-dir") -> Path:
    """``path`` as a Path if it is a folder or can be made as one (nothing is created), else ``InputError``."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {path} is a file; pass a folder")
    parent = p
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path} cannot be made: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path} cannot be written: no write permission in {parent}; choose another folder")
    return p


def check_model_folder(folder: str | os.PathLike, components=None, hint: str | None = None) -> None:
    """Safetensors weights in ``folder``'s ``components`` sub-folders (None: ``folder`` itself is the model
    folder), else the animate CLI's ``InputError`` (config-only and pickle-only folders are refused)."""
    folder = os.path.abspath(os.fspath(folder))
    if components is None:
        check_pipeline_folder(os.path.dirname(folder), [os.path.basename(folder)], hint=hint)
    else:
        check_pipeline_folder(folder, list(components), hint=hint)


def check_checkpoint(path: str | os.PathLike, flag: str = "--resume", stage: str | None = None) -> dict:
    """The ``trainer_state.json`` of a whole checkpoint folder written by ``trainers.trainer``, else ``InputError``.

    A whole checkpoint has a readable trainer state (written last, so a checkpoint cut short has none), a
    non-empty ``accelerate/`` state folder and a ``transformer/`` with safetensors weights; ``stage`` must match
    the stage that wrote it when given.
    """
    from trainers.checkpoints import STATE_FILE  # checkpoints uses this module's writing(): imported here

    p = Path(path)
    what = "pass OUTPUT/checkpoints/checkpoint-<step> of an earlier run, or 'latest'"
    if not p.exists():
        raise InputError(f"{flag} {path} does not exist; {what}")
    if not p.is_dir() or not (p / STATE_FILE).is_file():
        raise InputError(f"{flag} {path} is not a checkpoint folder (no {STATE_FILE}); {what}")
    damaged = f"{flag} {path} is damaged"
    earlier = "resume from an earlier checkpoint or start again without --resume"
    try:
        state = json.loads((p / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{damaged}: {STATE_FILE} is unreadable ({exc}); {earlier}") from None
    keys = ("global_step", "micro_step", "nan_streak")
    if not isinstance(state, dict) or not all(isinstance(state.get(k), int) and state[k] >= 0 for k in keys):
        raise InputError(f"{damaged}: {STATE_FILE} lacks {', '.join(keys)}; {earlier}")
    if stage is not None and state.get("stage", stage) != stage:
        raise InputError(f"{flag} {path} is a checkpoint of the {state['stage']} stage, this is the {stage} stage; "
                         "pass a checkpoint of this stage's own --output-dir")
    accelerate = p / "accelerate"
    if not accelerate.is_dir() or not any(accelerate.iterdir()):
        raise InputError(f"{damaged}: its accelerate/ training state is missing; {earlier}")
    check_model_folder(p, ["transformer"], hint=earlier)
    return state


def check_training_run(args, stage: str) -> tuple[str | None, Path | None]:
    """Check what a training stage was given, before anything is loaded or written; return (stage-1 transformer
    folder or None, checkpoint to resume from or None). Fills in ``args.pretrained`` from the stage-1 run."""
    from diffusers.optimization import SchedulerType

    from trainers.checkpoints import latest_checkpoint, resolve_same_id_checkpoint  # (see check_checkpoint)
    from trainers.components import check_components

    out = check_output_dir(args.output_dir)
    if args.cache_dir:
        check_output_dir(args.cache_dir, "--cache-dir")
    schedules = [t.value for t in SchedulerType]
    if args.lr_scheduler not in schedules:
        raise InputError(f"--lr-scheduler {args.lr_scheduler!r} is not a schedule; use one of {', '.join(schedules)}")
    teacher_path = None
    if stage == "same2x":
        teacher_path, recorded = resolve_same_id_checkpoint(args.same_id_checkpoint)
        args.pretrained = args.pretrained or recorded
        if not args.pretrained:
            raise InputError("pass --pretrained (the pipeline folder used by stage 1); the checkpoint does not "
                             "record it")
        if out.resolve() in Path(teacher_path).resolve().parents:
            raise InputError(f"--output-dir {args.output_dir} holds the stage-1 model this run starts from "
                             "(--same-id-checkpoint); give the Same2X stage a folder of its own")
    check_components(args.pretrained, teacher_path or getattr(args, "transformer", None))
    resume_from = None
    if args.resume:
        resume_from = latest_checkpoint(out / "checkpoints") if args.resume == "latest" else Path(args.resume)
        if resume_from is not None:
            check_checkpoint(resume_from, stage=stage)
    return teacher_path, resume_from


# ------------------------------------------------------------------------------------------------ load and write

try:
    from safetensors import SafetensorError as _SafetensorError
except ImportError:  # an older safetensors: its errors are plain exceptions
    _SafetensorError = OSError


@contextlib.contextmanager
def loading(what: str, hint: str = "re-download it or pass another folder", extra: tuple = ()):
    """Turn a failure to read model or state files (a missing shard, a truncated or corrupt file, a broken
    config) into one ``InputError`` naming ``what`` and what to do; ``extra``: more exception types that mean
    the same there (torch.load reports a truncated file as a ``RuntimeError``)."""
    try:
        yield
    except InputError:
        raise
    except (OSError, EOFError, _SafetensorError, json.JSONDecodeError, UnicodeDecodeError, *extra) as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise InputError(f"could not load {what} ({reason}); {hint}") from None


_IO_WORDS = re.compile(r"no space|os error|i/o error|ioerror|file write failed|quota|read-only", re.I)
LOW_SPACE = 256 << 20  # bytes: a failing write with less free than this is taken to be the full disk


def _free_bytes(folder: Path) -> int | None:
    for p in (folder, *folder.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


@contextlib.contextmanager
def writing(what: str, folder: str | os.PathLike, partial: str | os.PathLike | None = None, kept=""):
    """Turn a failed write in ``folder`` (disk full, quota, read-only disk) into one ``InputError``.

    ``partial`` (a file or folder) is removed first, so nothing half-written is left; ``kept`` (text, or a
    callable giving it, asked only on failure) says what is still intact (e.g. the previous checkpoint).
    torch.save reports a full disk as a bare ``RuntimeError`` ("unexpected pos ..."), so a ``RuntimeError`` counts
    as a failed write when it names an I/O problem or the disk is (nearly) full when it happens; any other error
    is raised as it is.
    """
    folder = Path(folder)
    try:
        yield
    except InputError:
        raise
    except (OSError, RuntimeError, _SafetensorError) as exc:
        free = _free_bytes(folder)
        full = free is not None and free < LOW_SPACE
        if not isinstance(exc, OSError) and not _IO_WORDS.search(str(exc)) and not full:
            raise
        if partial is not None:
            p = Path(partial)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                with contextlib.suppress(OSError):
                    p.unlink()
        kept = kept() if callable(kept) else kept
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        elif full:  # torch.save's words for it are "unexpected pos 247680 vs 247568"
            reason = "the disk is full"
        else:
            reason = " ".join(str(exc).split())[:200]
        space = f", {free / (1 << 20):.1f} MiB free there" if free is not None else ""
        raise InputError(f"could not write {what} ({reason}{space}); free disk space (or choose a folder on another "
                         f"disk) and rerun{'; ' + kept if kept else ''}") from None
