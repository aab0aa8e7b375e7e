"""Publishing a prepared dataset on the Hugging Face Hub (``--push-to-hub REPO``) with ``huggingface_hub``'s
``upload_folder``, or listing what would be uploaded (``--hub-dry-run``), which needs no network."""

from __future__ import annotations

import re
from pathlib import Path

from directanimator.errors import InputError
from trainers.dataset import UNFINISHED_MARKER

__all__ = ["HUB_IGNORE", "check_repo_id", "files_to_upload", "push_dataset"]

HUB_IGNORE = [".*", "**/.*", UNFINISHED_MARKER]
"""Never uploaded: hidden files (leftovers of interrupted atomic writes) and the unfinished marker."""

_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def check_repo_id(repo: str) -> str:
    """``repo`` when it reads as a Hub repo id ``org/name``, else ``InputError``."""
    if not _REPO.match(repo or "") or ".." in repo or len(repo) > 96:
        raise InputError(f"--push-to-hub {repo!r} is not a Hub repo id; give it as org/name (e.g. you/dance-clips)")
    return repo


def files_to_upload(out: Path) -> list[str]:
    """The files of ``out`` that ``upload_folder`` sends with :data:`HUB_IGNORE` (paths relative to ``out``)."""
    from huggingface_hub.utils import filter_repo_objects

    paths = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=HUB_IGNORE))


def push_dataset(out: Path, repo: str, dry_run: bool = False, private: bool = False) -> str:
    """Upload the finished dataset folder ``out`` to the dataset repo ``repo`` (created if needed); with
    ``dry_run`` only say what would be uploaded. Returns the line to print.

    Raises:
        InputError: the folder is unfinished, or the Hub cannot be reached or refuses (login, permissions).
    """
    if (out / UNFINISHED_MARKER).exists():
        raise InputError(f"{out} is unfinished and is not pushed; rerun the same trainers.prepare command to finish it")
    files = files_to_upload(out)
    size = sum((out / f).stat().st_size for f in files)
    if dry_run:
        listing = "\n".join(f"  {f}" for f in files)
        return f"would upload {len(files)} files ({size / 2**20:.1f} MiB) to the dataset repo {repo}:\n{listing}"
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=str(out), repo_type="dataset", ignore_patterns=HUB_IGNORE,
                          commit_message="Add clips prepared by trainers.prepare")
    except (HfHubHTTPError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise InputError(f"could not push {out} to the Hub dataset {repo} ({reason}); check the network and your "
                         f"login (hf auth login), then push with `hf upload --repo-type dataset {repo} {out}`") from None
    return f"pushed {len(files)} files ({size / 2**20:.1f} MiB) to https://huggingface.co/datasets/{repo}"
